"""Metadata-fitted global colour prior (our extension beyond the paper).

The paper's GEB (eq. 9-10) lets the network learn the "global operation-wise information of the ISP"
(white balance, colour matrix, global tone curve) from the metadata through attention, which is slow
to learn: a lightly trained network stays below a plain least-squares colour fit. The global part of
the ISP has a closed-form estimate, so the network gets it for free: per batch element, a polynomial
map ``g: sRGB -> RAW`` of total degree ``degree`` in (r, g, b) is fitted to the metadata pairs by
weighted least squares (the same model as ``rawmamba.baselines.GlobalColourFit``) and applied to every
frame. ``RAWMamba(global_prior=True)`` starts its output at this prior and learns local corrections
(local tone mapping, spatially varying effects) on top of it (decoder.py).

Choices (arguments where they are choices):
- Weights are the metadata mask (sampled image metadata: the samples; dense first-frame metadata: the
  real image extent, padding excluded). At most ``max_pairs`` pairs per element are used: every k-th
  weighted pixel in raster order, k the smallest stride that fits (deterministic, as the baseline).
- The normal equations ``(Phi^T W Phi + lambda I) c = Phi^T W y`` are solved batched in float64, outside
  autocast, with a Tikhonov ``lambda = ridge * mean(diag(Phi^T W Phi))`` (relative, so it does not
  depend on the sample count); the ridge keeps the solve defined with few or colour-poor samples.
- The prior is evaluated in float64 too and returned clamped to [0, 1] in the frames' dtype.
- It is differentiable in every input and has no parameters.
"""

from __future__ import annotations

import torch
from torch import nn

from rawmamba.baselines.global_fit import apply_polynomial, polynomial_features
from rawmamba.errors import RawMambaError


class GlobalColourPrior(nn.Module):
    """Per-image least-squares polynomial sRGB -> RAW map, fitted on the metadata, applied to all frames.

    Args:
        degree: total polynomial degree in (r, g, b) (3: 20 terms).
        ridge: Tikhonov weight relative to the mean diagonal of the weighted normal matrix (> 0).
        max_pairs: at most this many metadata pairs per batch element enter the fit.
    """

    def __init__(self, *, degree: int = 3, ridge: float = 1e-6, max_pairs: int = 65_536) -> None:
        super().__init__()
        if degree < 1:
            raise RawMambaError(f"global prior: degree must be at least 1, got {degree}")
        if ridge <= 0:
            raise RawMambaError(f"global prior: ridge must be positive, got {ridge}")
        if max_pairs < 1:
            raise RawMambaError(f"global prior: max_pairs must be at least 1, got {max_pairs}")
        self.degree, self.ridge, self.max_pairs = degree, ridge, max_pairs

    def select_pairs(
        self, meta_srgb: torch.Tensor, meta_raw: torch.Tensor, meta_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Gather at most ``max_pairs`` weighted pixels per element: ``(B, P, 3)``, ``(B, P, C_raw)``,
        weights ``(B, P)`` (zero where an element has fewer pairs than ``P``)."""
        b = meta_srgb.shape[0]
        weights = meta_mask.reshape(b, -1)
        valid = weights > 0
        rank = valid.cumsum(dim=1) - 1  # index of each valid pixel among its element's valid pixels
        stride = (valid.sum(dim=1, keepdim=True) + self.max_pairs - 1) // self.max_pairs
        keep = valid & (rank % stride.clamp(min=1) == 0)
        count = int(keep.sum(dim=1).max())
        index = keep.to(weights.dtype).topk(count, dim=1, sorted=False).indices  # every kept pixel, padded
        weights = (weights * keep).gather(1, index)
        srgb = meta_srgb.reshape(b, 3, -1).gather(2, index[:, None].expand(-1, 3, -1)).transpose(1, 2)
        raw = meta_raw.reshape(b, meta_raw.shape[1], -1)
        raw = raw.gather(2, index[:, None].expand(-1, raw.shape[1], -1)).transpose(1, 2)
        return srgb, raw, weights

    def fit(self, srgb: torch.Tensor, raw: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Coefficients ``(B, F, C_raw)`` from pairs ``(B, P, 3)``, ``(B, P, C_raw)``, weights ``(B, P)``."""
        features = polynomial_features(srgb.double(), self.degree)  # (B, P, F)
        weighted = features * weights.double()[..., None]
        normal = weighted.transpose(1, 2) @ features  # (B, F, F)
        scale = self.ridge * normal.diagonal(dim1=1, dim2=2).mean(dim=1)
        eye = torch.eye(normal.shape[-1], dtype=normal.dtype, device=normal.device)
        return torch.linalg.solve(normal + scale[:, None, None] * eye, weighted.transpose(1, 2) @ raw.double())

    def fit_metadata(self, meta_srgb: torch.Tensor, meta_raw: torch.Tensor, meta_mask: torch.Tensor) -> torch.Tensor:
        """Coefficients ``(B, F, C_raw)`` (float64) fitted on the weighted metadata pairs.

        Args:
            meta_srgb: ``(B, 3, H', W')`` metadata sRGB.
            meta_raw: ``(B, C_raw, H', W')`` metadata RAW.
            meta_mask: ``(B, 1, H', W')`` non-negative weights (0: not a pair); each element needs one > 0.
        """
        b = meta_srgb.shape[0]
        if meta_raw.shape[0] != b or meta_mask.shape[0] != b:
            raise RawMambaError("global prior: the metadata tensors must have the same batch size")
        if meta_srgb.shape[1] != 3 or meta_mask.shape[1] != 1:
            raise RawMambaError("global prior: meta_srgb must have 3 channels and meta_mask 1")
        with torch.autocast(meta_srgb.device.type, enabled=False):
            return self.fit(*self.select_pairs(meta_srgb, meta_raw, meta_mask))

    def apply(self, coefficients: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """The fitted map applied to ``frames (B, *, 3, H, W)``: ``(B, *, C_raw, H, W)`` in [0, 1], ``frames.dtype``."""
        if coefficients.shape[0] != frames.shape[0]:
            raise RawMambaError("global prior: frames and metadata must have the same batch size")
        with torch.autocast(frames.device.type, enabled=False):
            # (B, *, C_raw, H W), computed in float64 a chunk of pixels at a time
            prior = apply_polynomial(coefficients, frames.flatten(-2), self.degree, dtype=frames.dtype)
            prior = prior.view(*prior.shape[:-1], *frames.shape[-2:])
        return prior.clamp(0.0, 1.0)

    def forward(
        self, frames: torch.Tensor, meta_srgb: torch.Tensor, meta_raw: torch.Tensor, meta_mask: torch.Tensor
    ) -> torch.Tensor:
        """Fit on the metadata and apply to the frames.

        Args:
            frames: ``(B, T, 3, H, W)`` sRGB in [0, 1].
            meta_srgb, meta_raw, meta_mask: the metadata, as in ``fit_metadata``.

        Returns:
            ``(B, T, C_raw, H, W)`` prior RAW in [0, 1], in ``frames.dtype``.
        """
        return self.apply(self.fit_metadata(meta_srgb, meta_raw, meta_mask), frames)
