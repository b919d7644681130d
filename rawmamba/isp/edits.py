"""Look edits that cameras and RAW editors apply, each with an exact inverse.

All act on linear sRGB ``(*, 3, H, W)``: highlight/shadow compression on luminance, saturation around
luminance, and in Oklab (a perceptual space) vibrance, hue shifts (uniform plus a smooth hue-dependent
warp) and a colour-appearance-like coupling of lightness and chroma. ``vignette`` is a radial gain.
``inverse=True`` undoes each edit exactly (up to float rounding) wherever the forward input was not
clipped; ``Edits`` bundles them in a fixed order and ``apply_edits`` runs them (or their inverse).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from rawmamba.errors import RawMambaError
from rawmamba.isp.color import luminance, oklab_to_srgb_linear, srgb_linear_to_oklab

__all__ = [
    "Edits",
    "adjust_chroma_lightness",
    "adjust_saturation",
    "adjust_vibrance",
    "apply_edits",
    "compress_highlights_shadows",
    "shift_hue",
    "vignette",
]

_EPS = 1e-6


def _check(rgb: torch.Tensor) -> None:
    if not isinstance(rgb, torch.Tensor) or rgb.ndim < 3 or rgb.shape[-3] != 3:
        raise RawMambaError(f"rgb must be a (*, 3, H, W) tensor, got {getattr(rgb, 'shape', type(rgb))}")


def compress_highlights_shadows(
    rgb: torch.Tensor, *, highlights: float = 1.0, shadows: float = 0.0, inverse: bool = False
) -> torch.Tensor:
    """Lift shadows and roll off highlights on luminance Y, keeping colour ratios.

    ``g(Y) = Y (1 + shadows) / (1 + shadows Y)`` lifts the shadows (1 stays 1); then above the knee
    ``t = highlights`` a soft shoulder ``t + (1 - t)(1 - exp(-(Y - t) / (1 - t)))`` maps ``[t, inf)`` into
    ``[t, 1)``, so over-exposed values are compressed instead of clipped (``highlights = 1``: no shoulder).

    Args:
        rgb: linear sRGB, ``(*, 3, H, W)``; luminance may exceed 1.
        highlights: knee in (0, 1].
        shadows: shadow lift >= 0.
        inverse: undo the edit.
    """
    _check(rgb)
    if not (0.0 < highlights <= 1.0 and shadows >= 0.0):
        raise RawMambaError(f"need 0 < highlights <= 1 and shadows >= 0, got {highlights}, {shadows}")
    y = luminance(rgb).clamp_min(_EPS)
    t, s = highlights, shadows
    if not inverse:
        z = y * (1 + s) / (1 + s * y)
        if t < 1.0:
            z = torch.where(z > t, t + (1 - t) * -torch.expm1(-(z - t) / (1 - t)), z)
    else:
        z = y
        if t < 1.0:
            z = torch.where(z > t, t - (1 - t) * torch.log1p(-((z - t) / (1 - t)).clamp_max(1 - 1e-7)), z)
        z = z / (1 + s - s * z).clamp_min(_EPS)
    return rgb * (z / y)


def adjust_saturation(rgb: torch.Tensor, saturation: float = 1.0, *, inverse: bool = False) -> torch.Tensor:
    """``Y + saturation (rgb - Y)``: scale the distance from grey at constant luminance Y (> 0)."""
    _check(rgb)
    if saturation <= 0:
        raise RawMambaError(f"saturation={saturation} must be > 0")
    y = luminance(rgb)
    factor = 1.0 / saturation if inverse else saturation
    return y + factor * (rgb - y)


def _chroma_scale(lab: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return torch.cat([lab[..., :1, :, :], lab[..., 1:, :, :] * scale], dim=-3)


def adjust_vibrance(
    rgb: torch.Tensor, vibrance: float = 0.0, *, chroma_ref: float = 0.1, inverse: bool = False
) -> torch.Tensor:
    """Saturate muted colours more than vivid ones: Oklab chroma ``C' = C (1 + v chroma_ref / (chroma_ref + C))``.

    Chroma near 0 is scaled by ``1 + v``, chroma well above ``chroma_ref`` by almost 1; the map is
    strictly increasing (never desaturates), so exactly invertible. ``vibrance >= 0``.
    """
    _check(rgb)
    if vibrance < 0 or chroma_ref <= 0:
        raise RawMambaError(f"need vibrance >= 0 and chroma_ref > 0, got {vibrance}, {chroma_ref}")
    return oklab_to_srgb_linear(_vibrance_lab(srgb_linear_to_oklab(rgb), vibrance, chroma_ref, inverse))


def _vibrance_lab(lab: torch.Tensor, v: float, c0: float, inverse: bool) -> torch.Tensor:
    c = lab[..., 1:, :, :].norm(dim=-3, keepdim=True)
    if not inverse:
        return _chroma_scale(lab, 1 + v * c0 / (c0 + c))
    # C' = C + v c0 C / (c0 + C)  <=>  C^2 + (c0 (1 + v) - C') C - c0 C' = 0; the positive root, stably.
    beta = c0 * (1 + v) - c
    root = (beta * beta + 4 * c0 * c).sqrt()
    original = torch.where(beta >= 0, 2 * c0 * c / (beta + root).clamp_min(_EPS), (root - beta) / 2)
    return _chroma_scale(lab, torch.where(c > 0, original / c.clamp_min(1e-30), 1 / (1 + v)))


def shift_hue(
    rgb: torch.Tensor,
    degrees: float = 0.0,
    *,
    warp: float = 0.0,
    warp_phase: float = 0.0,
    inverse: bool = False,
    iterations: int = 8,
) -> torch.Tensor:
    """Rotate Oklab hue by ``degrees + warp sin(h - warp_phase)`` (all in degrees) at constant L and chroma.

    The warp shifts some hues more than others (e.g. skin towards orange, sky towards cyan), like a
    camera's hue-dependent colour rendering. ``|warp| < 40`` keeps the map invertible; the inverse
    solves ``h = h' - degrees - warp sin(h - warp_phase)`` by Newton's method (``iterations`` steps).
    """
    _check(rgb)
    if abs(warp) >= 40.0:
        raise RawMambaError(f"warp={warp} degrees must be below 40 in magnitude to stay invertible")
    return oklab_to_srgb_linear(_hue_lab(srgb_linear_to_oklab(rgb), degrees, warp, warp_phase, inverse, iterations))


def _hue_lab(lab: torch.Tensor, degrees: float, warp: float, warp_phase: float, inverse: bool, iterations: int):
    a, b = lab[..., 1:2, :, :], lab[..., 2:3, :, :]
    c, h = torch.hypot(a, b), torch.atan2(b, a)
    shift, amp, phase = math.radians(degrees), math.radians(warp), math.radians(warp_phase)
    if not inverse:
        h = h + shift + amp * torch.sin(h - phase)
    elif amp != 0.0:
        # Newton on f(h) = h + amp sin(h - phase) - target; f' = 1 + amp cos(.) >= 1 - |amp| > 0 since
        # |warp| < 40 degrees, so it converges quadratically from h = target.
        target = h - shift
        h = target
        for _ in range(iterations):
            h = h - (h + amp * torch.sin(h - phase) - target) / (1 + amp * torch.cos(h - phase))
    else:
        h = h - shift
    return torch.cat([lab[..., :1, :, :], c * torch.cos(h), c * torch.sin(h)], dim=-3)


def adjust_chroma_lightness(
    rgb: torch.Tensor, *, brightness_by_chroma: float = 0.0, chroma_by_lightness: float = 0.0, inverse: bool = False
) -> torch.Tensor:
    """A colour-appearance-like coupling in Oklab (L, C, h), hue kept.

    First ``L' = L + brightness_by_chroma * C`` (vivid colours rendered lighter, as the eye sees them:
    the Helmholtz-Kohlrausch effect), then ``C' = C (1 + chroma_by_lightness * 4 L'(1 - L'))`` (chroma
    raised in the mid-tones and left alone in deep shadows and highlights). ``chroma_by_lightness > -1``.
    """
    _check(rgb)
    if chroma_by_lightness <= -1.0:
        raise RawMambaError(f"chroma_by_lightness={chroma_by_lightness} must be > -1")
    lab = srgb_linear_to_oklab(rgb)
    return oklab_to_srgb_linear(_chroma_lightness_lab(lab, brightness_by_chroma, chroma_by_lightness, inverse))


def _chroma_lightness_lab(lab: torch.Tensor, k_light: float, k_chroma: float, inverse: bool) -> torch.Tensor:
    light = lab[..., :1, :, :]
    ab = lab[..., 1:, :, :]
    if not inverse:
        light = light + k_light * ab.norm(dim=-3, keepdim=True)
        l01 = light.clamp(0.0, 1.0)
        ab = ab * (1 + k_chroma * 4 * l01 * (1 - l01))
    else:
        l01 = light.clamp(0.0, 1.0)
        ab = ab / (1 + k_chroma * 4 * l01 * (1 - l01))
        light = light - k_light * ab.norm(dim=-3, keepdim=True)
    return torch.cat([light, ab], dim=-3)


def vignette(x: torch.Tensor, strength: float = 0.0, *, exponent: float = 2.0, inverse: bool = False) -> torch.Tensor:
    """Radial gain ``1 - strength * rho^exponent`` (``rho`` = distance from the centre / half-diagonal).

    Darkens corners like an uncorrected lens (``strength`` in [0, 1); 1 - strength remains at the corner).
    Works on any ``(*, C, H, W)``; ``inverse=True`` divides by the gain.
    """
    if not 0.0 <= strength < 1.0 or exponent <= 0:
        raise RawMambaError(f"need 0 <= strength < 1 and exponent > 0, got {strength}, {exponent}")
    h, w = x.shape[-2:]
    ys = torch.linspace(-1.0, 1.0, h, dtype=x.dtype, device=x.device) * (h / math.hypot(h, w))
    xs = torch.linspace(-1.0, 1.0, w, dtype=x.dtype, device=x.device) * (w / math.hypot(h, w))
    rho = torch.sqrt(ys[:, None] ** 2 + xs[None, :] ** 2)
    gain = 1.0 - strength * rho**exponent
    return x / gain if inverse else x * gain


@dataclass(frozen=True)
class Edits:
    """A camera's look edits; the defaults do nothing. Applied in field order, inverted in reverse.

    Args:
        highlights: highlight shoulder knee in (0, 1] (``compress_highlights_shadows``).
        shadows: shadow lift >= 0.
        saturation: saturation factor > 0 around luminance.
        vibrance: Oklab vibrance >= 0 (``adjust_vibrance`` with ``chroma_ref = 0.1``).
        hue_shift: uniform Oklab hue rotation, degrees.
        hue_warp: hue-dependent rotation amplitude, degrees, |.| < 40.
        hue_warp_phase: hue (degrees) where the warp is zero and rising.
        brightness_by_chroma: lightness added per unit of Oklab chroma.
        chroma_by_lightness: mid-tone chroma gain, > -1.
    """

    highlights: float = 1.0
    shadows: float = 0.0
    saturation: float = 1.0
    vibrance: float = 0.0
    hue_shift: float = 0.0
    hue_warp: float = 0.0
    hue_warp_phase: float = 0.0
    brightness_by_chroma: float = 0.0
    chroma_by_lightness: float = 0.0


def apply_edits(rgb: torch.Tensor, edits: Edits, *, inverse: bool = False, hue_iterations: int = 8) -> torch.Tensor:
    """Run every edit of ``edits`` on linear sRGB ``(*, 3, H, W)``, or with ``inverse=True`` undo them.

    Edits left at their neutral value are skipped; the Oklab edits share one conversion.
    ``hue_iterations`` is the Newton step count of the inverse hue warp.
    """
    _check(rgb)
    e = edits
    if e.saturation <= 0 or e.vibrance < 0 or abs(e.hue_warp) >= 40.0 or e.chroma_by_lightness <= -1.0:
        raise RawMambaError(f"invalid edits {e}: need saturation > 0, vibrance >= 0, |hue_warp| < 40, "
                            "chroma_by_lightness > -1")  # fmt: skip
    lab_steps = []
    if e.vibrance != 0.0:
        lab_steps.append(lambda lab, inv: _vibrance_lab(lab, e.vibrance, 0.1, inv))
    if e.hue_shift != 0.0 or e.hue_warp != 0.0:
        lab_steps.append(lambda lab, inv: _hue_lab(lab, e.hue_shift, e.hue_warp, e.hue_warp_phase, inv, hue_iterations))
    if e.brightness_by_chroma != 0.0 or e.chroma_by_lightness != 0.0:
        lab_steps.append(
            lambda lab, inv: _chroma_lightness_lab(lab, e.brightness_by_chroma, e.chroma_by_lightness, inv)
        )

    def oklab_edits(x: torch.Tensor, inv: bool) -> torch.Tensor:
        if not lab_steps:
            return x
        lab = srgb_linear_to_oklab(x)
        for step in reversed(lab_steps) if inv else lab_steps:
            lab = step(lab, inv)
        return oklab_to_srgb_linear(lab)

    steps = [
        lambda x, inv: compress_highlights_shadows(x, highlights=e.highlights, shadows=e.shadows, inverse=inv),
        lambda x, inv: adjust_saturation(x, e.saturation, inverse=inv) if e.saturation != 1.0 else x,
        oklab_edits,
    ]
    for step in reversed(steps) if inverse else steps:
        rgb = step(rgb, inverse)
    return rgb
