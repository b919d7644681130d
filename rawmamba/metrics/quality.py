"""PSNR and SSIM on ``(*, C, H, W)`` tensors, computed in float64 with an explicit data range.

Both return one value per image (the leading shape ``*``), or their mean with ``reduction="mean"``.

SSIM (Wang et al. 2004) follows scikit-image's ``structural_similarity(im1, im2, data_range=R,
gaussian_weights=True, sigma=1.5, use_sample_covariance=False, channel_axis=...)`` exactly:
local statistics under a normalised separable Gaussian window of radius ``int(truncate * sigma + 0.5)``
(11x11 for sigma 1.5, truncate 3.5), population (co)variances, ``C1 = (K1 R)^2``, ``C2 = (K2 R)^2``,
the SSIM map averaged over the pixels at least one radius away from the border (scikit-image filters
with reflect padding and then crops that border off, so only "valid" windows count; we convolve
without padding, which gives the same numbers) and then over channels.

``ssim(..., dtype=None)`` keeps the input dtype and is differentiable: the training loss uses that
float32 path (``rawmamba.losses``). Metrics use the default float64. The filtering never runs under
autocast, so a loss computed inside ``torch.autocast`` keeps its float32 statistics.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from rawmamba.errors import RawMambaError

__all__ = ["psnr", "ssim", "ssim_map", "gaussian_window", "reduce_values"]

_REDUCTIONS = ("none", "mean")


def reduce_values(values: torch.Tensor, reduction: str) -> torch.Tensor:
    """Apply a metric reduction: ``"none"`` keeps per-image values, ``"mean"`` averages them all."""
    if reduction == "none":
        return values
    if reduction == "mean":
        return values.mean()
    raise RawMambaError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def _check_pair(pred: torch.Tensor, target: torch.Tensor) -> None:
    if pred.shape != target.shape:
        raise RawMambaError(f"pred and target must have the same shape, got {tuple(pred.shape)} and "
                            f"{tuple(target.shape)}")
    if pred.dim() < 3:
        raise RawMambaError(f"pred and target must be (*, C, H, W) images, got shape {tuple(pred.shape)}")


def _check_range(data_range: float) -> None:
    if not (data_range > 0 and math.isfinite(data_range)):
        raise RawMambaError(f"data_range must be a positive finite number, got {data_range}")


def psnr(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0, *, max_db: float | None = None,
         reduction: str = "none") -> torch.Tensor:
    """Peak signal-to-noise ratio ``10 log10(R^2 / MSE)`` in dB, per image, in float64.

    Args:
        pred: ``(*, C, H, W)`` prediction, any real dtype; values are used as given (no clipping).
        target: ``(*, C, H, W)`` ground truth, same shape.
        data_range: the peak ``R`` (1 for [0, 1] images, 65535 for 16-bit values).
        max_db: ``None`` (default) returns ``inf`` for an image with zero error, which keeps means honest
            (a perfect image makes the mean infinite rather than silently picking a number); a float caps
            every value at that many dB instead.
        reduction: ``"none"`` -> shape ``*``; ``"mean"`` -> scalar mean over all images.

    Returns:
        float64 tensor of PSNR values in dB.
    """
    _check_pair(pred, target)
    _check_range(data_range)
    diff = pred.to(torch.float64) - target.to(torch.float64)
    mse = diff.square().mean(dim=(-3, -2, -1))
    values = 10.0 * torch.log10(data_range**2 / mse)  # mse == 0 -> +inf
    if max_db is not None:
        values = values.clamp(max=max_db)
    return reduce_values(values, reduction)


def gaussian_window(sigma: float = 1.5, truncate: float = 3.5, *, dtype: torch.dtype = torch.float64,
                    device: torch.device | str | None = None) -> torch.Tensor:
    """1-D normalised Gaussian taps ``exp(-x^2 / 2 sigma^2)`` for ``|x| <= int(truncate * sigma + 0.5)``.

    The same radius and weights as ``scipy.ndimage.gaussian_filter`` (11 taps for the defaults).
    """
    if not sigma > 0:
        raise RawMambaError(f"sigma must be positive, got {sigma}")
    radius = int(truncate * sigma + 0.5)
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    taps = torch.exp(-0.5 * (x / sigma) ** 2)
    return (taps / taps.sum()).to(dtype=dtype, device=device)


def _filter_valid(x: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """Separable filtering of ``(N, 1, H, W)`` without padding -> ``(N, 1, H - 2r, W - 2r)``."""
    k = taps.numel()
    x = F.conv2d(x, taps.view(1, 1, k, 1))
    return F.conv2d(x, taps.view(1, 1, 1, k))


def ssim_map(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0, *, sigma: float = 1.5,
             truncate: float = 3.5, k1: float = 0.01, k2: float = 0.03) -> torch.Tensor:
    """The local SSIM map over valid windows, in the inputs' dtype (differentiable).

    Args:
        pred, target: ``(*, C, H, W)`` floating tensors of the same shape and dtype; ``H, W`` at least the
            window size ``2 * int(truncate * sigma + 0.5) + 1``.
        data_range, sigma, truncate, k1, k2: as in ``ssim``.

    Returns:
        ``(*, C, H - 2r, W - 2r)`` SSIM values, 1 where the images agree.
    """
    _check_pair(pred, target)
    _check_range(data_range)
    if not pred.is_floating_point() or pred.dtype != target.dtype:
        raise RawMambaError(f"ssim_map needs two floating tensors of one dtype, got {pred.dtype} and {target.dtype}")
    taps = gaussian_window(sigma, truncate, dtype=pred.dtype, device=pred.device)
    win = taps.numel()
    *lead, c, h, w = pred.shape
    if h < win or w < win:
        raise RawMambaError(f"SSIM needs images of at least {win}x{win} pixels (sigma={sigma}), got {h}x{w}")
    x = pred.reshape(-1, 1, h, w)
    y = target.reshape(-1, 1, h, w)
    # One filtering pass over the five stacked statistics. Autocast is off: in bfloat16/float16 the
    # variance differences below cancel catastrophically.
    n = x.shape[0]
    with torch.autocast(device_type=pred.device.type, enabled=False):
        stats = _filter_valid(torch.cat([x, y, x * x, y * y, x * y], dim=0), taps)
    ux, uy, uxx, uyy, uxy = stats.split(n, dim=0)
    vx = uxx - ux * ux  # population (co)variances: use_sample_covariance=False
    vy = uyy - uy * uy
    vxy = uxy - ux * uy
    c1 = (k1 * data_range) ** 2
    c2 = (k2 * data_range) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return s.reshape(*lead, c, h - win + 1, w - win + 1)


def ssim(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0, *, sigma: float = 1.5,
         truncate: float = 3.5, k1: float = 0.01, k2: float = 0.03, dtype: torch.dtype | None = torch.float64,
         reduction: str = "none") -> torch.Tensor:
    """Structural similarity with a Gaussian window, per image (mean over valid pixels, then channels).

    Args:
        pred: ``(*, C, H, W)`` prediction; ``H, W >= 2 * int(truncate * sigma + 0.5) + 1`` (11 by default).
        target: ``(*, C, H, W)`` ground truth, same shape.
        data_range: the dynamic range ``R`` of the values (1 for [0, 1], 65535 for 16-bit values).
        sigma: Gaussian window standard deviation in pixels (Wang et al.: 1.5).
        truncate: window radius in sigmas, as scipy's ``truncate`` (scikit-image fixes 3.5 for Gaussian SSIM).
        k1, k2: the SSIM stabilising constants.
        dtype: computation dtype; float64 (default) for metrics, ``None`` keeps the input dtype (the
            differentiable float32 path of the training loss). Gradients flow in both cases.
        reduction: ``"none"`` -> shape ``*``; ``"mean"`` -> scalar mean over all images.

    Returns:
        SSIM values in [-1, 1], 1 for identical images.
    """
    _check_pair(pred, target)
    if dtype is None:
        dtype = pred.dtype if pred.is_floating_point() else torch.float32
    s = ssim_map(pred.to(dtype), target.to(dtype), data_range, sigma=sigma, truncate=truncate, k1=k1, k2=k2)
    values = s.mean(dim=(-2, -1)).mean(dim=-1)
    return reduce_values(values, reduction)
