"""Local tone mapping: base/detail operators on log2 luminance, the ISP step the paper calls hardest to invert.

Every operator splits ``log2 Y`` into a smooth *base* and a *detail* layer, compresses the base towards
an anchor (a quantile of the base, so highlights keep their level and shadows are lifted), scales the
detail, and rescales the three channels by the luminance ratio (hue and saturation kept):

    base' = anchor + (1 - strength) (base - anchor),  log2 Y' = base' + detail_gain * detail.

Operators differ in how they find the base: ``"bilateral"`` (Durand & Dorsey 2002, paper ref. [10],
with their piecewise-linear fast bilateral filter), ``"guided"`` (He et al. 2010 self-guided filter),
``"laplacian"`` (a Laplacian pyramid whose coarsest level is the base and whose band-pass levels are
boosted with edge-aware attenuation). ``strength = 0`` and ``detail_gain = 1`` is the identity.

Input and output are linear sRGB ``(*, 3, H, W)``; outputs may exceed 1 (the pipeline clips).
Spatial sizes are fractions of ``max(H, W)`` so the look does not depend on resolution. Pure torch.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from rawmamba.errors import RawMambaError
from rawmamba.isp.color import luminance

__all__ = ["LOCAL_TONE_OPERATORS", "bilateral_tone_map", "guided_tone_map", "laplacian_tone_map", "local_tone_map"]


def _check(rgb: torch.Tensor, strength: float) -> None:
    if not isinstance(rgb, torch.Tensor) or rgb.ndim < 3 or rgb.shape[-3] != 3:
        raise RawMambaError(f"rgb must be a (*, 3, H, W) tensor, got {getattr(rgb, 'shape', type(rgb))}")
    if not 0.0 <= strength < 1.0:
        raise RawMambaError(f"strength={strength} must be in [0, 1)")


def _log_luminance(rgb: torch.Tensor, eps: float) -> torch.Tensor:
    """``(N, 1, H, W)`` log2 luminance of ``rgb`` flattened over leading dims."""
    h, w = rgb.shape[-2:]
    return torch.log2(luminance(rgb.reshape(-1, 3, h, w)).clamp_min(eps))


def _anchor(base: torch.Tensor, quantile: float) -> torch.Tensor:
    if not 0.0 <= quantile <= 1.0:
        raise RawMambaError(f"anchor_quantile={quantile} must be in [0, 1]")
    return torch.quantile(base.flatten(1), quantile, dim=1).view(-1, 1, 1, 1)


def _recombine(rgb: torch.Tensor, log_y: torch.Tensor, new_log_y: torch.Tensor) -> torch.Tensor:
    ratio = torch.exp2(new_log_y - log_y).reshape(*rgb.shape[:-3], 1, *rgb.shape[-2:])
    return rgb * ratio


def _compress(log_y, base, strength, detail_gain, anchor_quantile):
    anchor = _anchor(base, anchor_quantile)
    return anchor + (1.0 - strength) * (base - anchor) + detail_gain * (log_y - base)


def _gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of ``(N, C, H, W)`` with replicated borders, radius ``ceil(3 sigma)``."""
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    n, c, h, w = x.shape
    y = F.pad(x.reshape(n * c, 1, h, w), (radius, radius, radius, radius), mode="replicate")
    y = F.conv2d(F.conv2d(y, k.view(1, 1, -1, 1)), k.view(1, 1, 1, -1))
    return y.reshape(n, c, h, w)


def _box_mean(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Mean over a ``(2r+1)^2`` window clipped to the image (separable average pooling)."""
    k = 2 * radius + 1
    x = F.avg_pool2d(x, (k, 1), stride=1, padding=(radius, 0), count_include_pad=False)
    return F.avg_pool2d(x, (1, k), stride=1, padding=(0, radius), count_include_pad=False)


def bilateral_tone_map(
    rgb: torch.Tensor,
    strength: float = 0.5,
    *,
    detail_gain: float = 1.25,
    sigma_space: float = 0.02,
    sigma_range: float = 1.0,
    anchor_quantile: float = 0.95,
    downsample: int | None = None,
    max_levels: int = 32,
    eps: float = 1e-4,
) -> torch.Tensor:
    """Durand-Dorsey local tone mapping: bilateral-filter base of log2 luminance, compressed.

    Args:
        rgb: linear sRGB ``(*, 3, H, W)``, non-negative.
        strength: fraction of the base layer's contrast removed, in [0, 1).
        detail_gain: factor on the detail layer (> 1 raises local contrast).
        sigma_space: spatial Gaussian sigma as a fraction of ``max(H, W)`` (Durand used 2%).
        sigma_range: range sigma in stops (log2 units; Durand's 0.4 log10 is 1.33 stops).
        anchor_quantile: the base value kept fixed, as a quantile of the base over the image.
        downsample: grid subsampling of the fast bilateral filter; ``None`` picks ``sigma_px / 2``.
        max_levels: most intensity levels of the piecewise-linear filter (levels are ``sigma_range`` apart,
            wider when the batch spans more than ``max_levels - 2`` of them).
        eps: luminance floor before the logarithm.
    """
    _check(rgb, strength)
    log_y = _log_luminance(rgb, eps)
    h, w = log_y.shape[-2:]
    sigma_px = sigma_space * max(h, w)
    ds = downsample or max(1, int(sigma_px / 2))
    small = F.interpolate(log_y, size=(max(1, -(-h // ds)), max(1, -(-w // ds))), mode="area")
    # Levels sit at absolute multiples of sigma_range, so an image's result does not depend on the others
    # in its batch (unless max_levels forces a wider spacing).
    first = math.floor(float(log_y.min()) / sigma_range)
    k = math.floor(float(log_y.max()) / sigma_range) - first + 2
    spacing = sigma_range if k <= max_levels else (float(log_y.max()) - first * sigma_range) / (max_levels - 1)
    k = min(k, max_levels)
    values = first * sigma_range + spacing * torch.arange(k, dtype=log_y.dtype, device=log_y.device).view(1, k, 1, 1)
    weight = torch.exp(-0.5 * ((small - values) / sigma_range) ** 2)  # (N, K, h, w)
    blurred_weight = _gaussian_blur(weight, sigma_px / ds)
    blurred_value = _gaussian_blur(weight * small, sigma_px / ds)
    levels = blurred_value / blurred_weight.clamp_min(1e-30)
    levels = F.interpolate(levels, size=(h, w), mode="bilinear", align_corners=False)
    position = (log_y - values[:, :1]) / spacing
    index = position.floor().clamp(0, k - 2)
    frac = position - index
    index = index.long()
    base = levels.gather(1, index) * (1 - frac) + levels.gather(1, index + 1) * frac
    return _recombine(rgb, log_y, _compress(log_y, base, strength, detail_gain, anchor_quantile))


def guided_tone_map(
    rgb: torch.Tensor,
    strength: float = 0.5,
    *,
    detail_gain: float = 1.25,
    radius: float = 0.03,
    edge_eps: float = 1.0,
    anchor_quantile: float = 0.95,
    eps: float = 1e-4,
) -> torch.Tensor:
    """Local tone mapping with a self-guided filter (He et al. 2010) as the edge-preserving base.

    Args:
        rgb: linear sRGB ``(*, 3, H, W)``, non-negative.
        strength: fraction of the base layer's contrast removed, in [0, 1).
        detail_gain: factor on the detail layer.
        radius: box radius as a fraction of ``max(H, W)``.
        edge_eps: the guided filter's regulariser in stops squared: structures whose local variance is
            well above it are edges kept in the base, those below are detail.
        anchor_quantile: the base value kept fixed, as a quantile of the base over the image.
        eps: luminance floor before the logarithm.
    """
    _check(rgb, strength)
    log_y = _log_luminance(rgb, eps)
    r = max(1, round(radius * max(log_y.shape[-2:])))
    mean = _box_mean(log_y, r)
    var = (_box_mean(log_y * log_y, r) - mean * mean).clamp_min(0.0)
    a = var / (var + edge_eps)
    b = mean - a * mean
    base = _box_mean(a, r) * log_y + _box_mean(b, r)
    return _recombine(rgb, log_y, _compress(log_y, base, strength, detail_gain, anchor_quantile))


def laplacian_tone_map(
    rgb: torch.Tensor,
    strength: float = 0.5,
    *,
    detail_gain: float = 1.5,
    edge_sigma: float = 0.5,
    levels: int | None = None,
    anchor_quantile: float = 0.95,
    eps: float = 1e-4,
) -> torch.Tensor:
    """Multi-scale local contrast: Laplacian pyramid of log2 luminance, coarse level compressed.

    Band-pass coefficients ``d`` become ``d (1 + (detail_gain - 1) exp(-d^2 / (2 edge_sigma^2)))``: small
    texture is boosted, large edges keep their size (fewer halos).

    Args:
        rgb: linear sRGB ``(*, 3, H, W)``, non-negative.
        strength: fraction of the coarsest level's contrast removed, in [0, 1).
        detail_gain: boost of small band-pass coefficients.
        edge_sigma: coefficient size (stops) above which the boost fades.
        levels: pyramid depth; ``None`` makes the coarsest level about 8 pixels on its short side.
        anchor_quantile: the coarse value kept fixed, as a quantile over the image.
        eps: luminance floor before the logarithm.
    """
    _check(rgb, strength)
    log_y = _log_luminance(rgb, eps)
    depth = levels if levels is not None else max(1, int(math.log2(max(1, min(log_y.shape[-2:]) // 8))))
    if depth < 1:
        raise RawMambaError(f"levels={levels} must be >= 1")
    gaussians = [log_y]
    for _ in range(depth):
        gaussians.append(F.avg_pool2d(gaussians[-1], 2, ceil_mode=True))
    bands = [
        fine - F.interpolate(coarse, size=fine.shape[-2:], mode="bilinear", align_corners=False)
        for fine, coarse in zip(gaussians[:-1], gaussians[1:], strict=True)
    ]
    coarse = gaussians[-1]
    anchor = _anchor(coarse, anchor_quantile)
    out = anchor + (1.0 - strength) * (coarse - anchor)
    for band in reversed(bands):
        boost = 1.0 + (detail_gain - 1.0) * torch.exp(-0.5 * (band / edge_sigma) ** 2)
        out = F.interpolate(out, size=band.shape[-2:], mode="bilinear", align_corners=False) + band * boost
    return _recombine(rgb, log_y, out)


LOCAL_TONE_OPERATORS = {
    "bilateral": bilateral_tone_map,
    "guided": guided_tone_map,
    "laplacian": laplacian_tone_map,
}


def local_tone_map(rgb: torch.Tensor, kind: str, strength: float = 0.5, **params) -> torch.Tensor:
    """Dispatch to the operator named ``kind`` (one of ``LOCAL_TONE_OPERATORS``) with its keyword ``params``."""
    if kind not in LOCAL_TONE_OPERATORS:
        raise RawMambaError(f"local tone kind={kind!r} is not one of {sorted(LOCAL_TONE_OPERATORS)}")
    return LOCAL_TONE_OPERATORS[kind](rgb, strength, **params)
