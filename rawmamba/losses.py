"""The training loss of RAWMamba: ``L = L_mse + lambda * L_ssim`` with ``L_ssim = 1 - SSIM`` (paper eq. 18).

The paper sets lambda = 0.5. SSIM is the differentiable Gaussian SSIM of ``rawmamba.metrics`` (11x11
window, sigma 1.5) computed in float32 (float64 inputs stay float64), with data range 1 for [0, 1] RAW.
Works on any ``(*, C, H, W)`` layout, in particular ``(B, T, C, H, W)`` clips and ``(B, C, H, W)`` images;
every frame counts as one image in the SSIM mean.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from rawmamba.errors import RawMambaError
from rawmamba.metrics.quality import ssim

__all__ = ["derender_loss", "DerenderLoss"]


def derender_loss(pred: torch.Tensor, target: torch.Tensor, ssim_weight: float = 0.5, *, data_range: float = 1.0,
                  sigma: float = 1.5) -> torch.Tensor:
    """MSE + ``ssim_weight`` * (1 - SSIM) (paper eq. 18), a differentiable scalar.

    Args:
        pred: ``(*, C, H, W)`` predicted RAW, floating, in [0, 1]; ``H, W >= 11`` for the default sigma.
        target: ground truth of the same shape.
        ssim_weight: lambda of eq. 18 (paper: 0.5); 0 gives plain MSE.
        data_range: value range of the RAW for the SSIM constants (1 for [0, 1]).
        sigma: SSIM Gaussian window sigma.

    Returns:
        0-d tensor, float32 (float64 for float64 inputs; half-precision inputs are promoted to float32);
        0 for identical inputs.
    """
    if pred.shape != target.shape:
        raise RawMambaError(f"pred and target must have the same shape, got {tuple(pred.shape)} and "
                            f"{tuple(target.shape)}")
    if ssim_weight < 0:
        raise RawMambaError(f"ssim_weight must be >= 0, got {ssim_weight}")
    dtype = torch.promote_types(pred.dtype, torch.float32)  # half/bfloat16 outputs are scored in float32
    pred, target = pred.to(dtype), target.to(dtype)
    mse = F.mse_loss(pred, target)
    if ssim_weight == 0:
        return mse
    similarity = ssim(pred, target, data_range, sigma=sigma, dtype=dtype, reduction="mean")
    return mse + ssim_weight * (1.0 - similarity)


class DerenderLoss(nn.Module):
    """Module form of ``derender_loss`` (paper eq. 18).

    Args:
        ssim_weight: lambda (paper: 0.5).
        data_range: value range of the RAW (1 for [0, 1]).
        sigma: SSIM Gaussian window sigma.
    """

    def __init__(self, ssim_weight: float = 0.5, data_range: float = 1.0, sigma: float = 1.5) -> None:
        super().__init__()
        if ssim_weight < 0:
            raise RawMambaError(f"ssim_weight must be >= 0, got {ssim_weight}")
        self.ssim_weight = ssim_weight
        self.data_range = data_range
        self.sigma = sigma

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return derender_loss(pred, target, self.ssim_weight, data_range=self.data_range, sigma=self.sigma)

    def extra_repr(self) -> str:
        return f"ssim_weight={self.ssim_weight}, data_range={self.data_range}, sigma={self.sigma}"
