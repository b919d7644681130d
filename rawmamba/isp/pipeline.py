"""The simulated camera ISP: demosaiced raw-RGB -> sRGB (``render``), and its inverse (``unprocess``).

Forward steps, in order (``Camera`` fixes the look, ``Shot`` the white balance and exposure):

    1. sensor noise (optional, Poisson-Gaussian)      6. clip to [0, 1]
    2. residual lens shading (vignette)                7. local tone mapping (optional; not inverted)
    3. exposure x white-balance gains (camera space)   8. global tone curve, clip
    4. colour matrix: camera RGB -> XYZ -> linear sRGB 9. sRGB OETF
    5. look edits (highlights/shadows, colour)        10. 8-bit quantisation and JPEG (optional)

``unprocess`` runs the inverse of steps 9, 8, 5, 4, 3, 2 exactly, so with local tone mapping, noise and
quantisation off it recovers the raw wherever nothing was clipped (steps 6 and 8).
``unprocess_photo`` is Brooks et al. (2019) unprocessing with our camera models: any sRGB photo to a
plausible linear raw-RGB.

Raw here is 3-channel demosaiced raw-RGB ``(*, 3, H, W)``, linear, in [0, 1], in camera space before
white balance (the CAM dataset's RAW). One shot is applied to every image of a batch.
Non-finite inputs raise ``RawMambaError`` (JPEG and the local operators cannot work with them).
"""

from __future__ import annotations

import numpy as np
import torch

from rawmamba.errors import RawMambaError
from rawmamba.isp.cameras import Camera, Shot
from rawmamba.isp.color import apply_ccm, apply_white_balance
from rawmamba.isp.edits import apply_edits, vignette
from rawmamba.isp.jpeg import jpeg_roundtrip
from rawmamba.isp.jpeg import quantize as quantize_levels
from rawmamba.isp.local_tone import local_tone_map
from rawmamba.isp.noise import NoiseLevels, add_poisson_gaussian_noise, sample_noise_levels
from rawmamba.isp.rng import as_generator
from rawmamba.isp.tone import apply_tone_curve, srgb_oetf, srgb_oetf_inverse

__all__ = ["render", "render_with_shot", "unprocess", "unprocess_photo"]


def _check(x: torch.Tensor, name: str) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim < 3 or x.shape[-3] != 3:
        raise RawMambaError(f"{name} must be a (*, 3, H, W) tensor, got {getattr(x, 'shape', type(x))}")
    if not x.is_floating_point():
        raise RawMambaError(f"{name} must be a floating-point tensor in [0, 1], got {x.dtype}")
    if not bool(torch.isfinite(x).all()):
        raise RawMambaError(f"{name} contains NaN or inf values")


def _gains(shot: Shot) -> tuple[float, float, float]:
    return tuple(g * shot.exposure for g in shot.wb_gains)


def render_with_shot(
    raw: torch.Tensor,
    camera: Camera,
    rng: torch.Generator | np.random.Generator,
    *,
    shot: Shot | None = None,
    local_tone: bool = True,
    noise: bool | NoiseLevels = False,
    quantize: bool = True,
    bits: int = 8,
    jpeg: bool | int = False,
) -> tuple[torch.Tensor, Shot]:
    """Render raw-RGB through ``camera``'s ISP; returns ``(srgb, shot)``.

    Args:
        raw: ``(*, 3, H, W)`` linear camera RGB in [0, 1] (before white balance).
        camera: the ISP profile.
        rng: generator for the shot and the noise (``rawmamba.isp.rng``; torch.Generator preferred).
        shot: per-shot parameters; ``None`` draws them with ``camera.draw_shot(rng)``.
        local_tone: run the camera's local tone operator (if it has one).
        noise: ``True`` draws noise levels with ``sample_noise_levels(rng)``; a ``NoiseLevels`` uses those;
            ``False`` adds no noise.
        quantize: round the output to ``bits``-bit levels.
        bits: quantisation depth.
        jpeg: ``False`` no JPEG; ``True`` a JPEG round trip at ``camera.jpeg_quality``; an int, that quality.

    Returns:
        sRGB ``(*, 3, H, W)`` in [0, 1] (same dtype as ``raw``), and the shot used.
    """
    _check(raw, "raw")
    gen = as_generator(rng)
    if shot is None:
        shot = camera.draw_shot(gen)
    x = raw
    if noise:
        levels = noise if isinstance(noise, NoiseLevels) else sample_noise_levels(gen)
        x = add_poisson_gaussian_noise(x, levels, gen, clip=True)
    x = vignette(x, camera.vignette)
    x = apply_white_balance(x, _gains(shot))
    x = apply_ccm(x, camera.color_matrix)
    x = apply_edits(x, camera.edits)
    x = x.clamp(0.0, 1.0)
    if local_tone and camera.local_tone is not None:
        x = local_tone_map(x, camera.local_tone, camera.local_tone_strength, **camera.local_tone_params)
        x = x.clamp(0.0, 1.0)
    x = apply_tone_curve(x, camera.tone_curve, mode=camera.tone_mode).clamp(0.0, 1.0)
    srgb = srgb_oetf(x)
    if quantize:
        srgb = quantize_levels(srgb, bits=bits)
    if jpeg:
        srgb = jpeg_roundtrip(srgb, quality=camera.jpeg_quality if jpeg is True else int(jpeg))
    return srgb, shot


def render(
    raw: torch.Tensor,
    camera: Camera,
    rng: torch.Generator | np.random.Generator,
    *,
    shot: Shot | None = None,
    local_tone: bool = True,
    noise: bool | NoiseLevels = False,
    quantize: bool = True,
    bits: int = 8,
    jpeg: bool | int = False,
) -> torch.Tensor:
    """``render_with_shot`` without the shot: raw-RGB ``(*, 3, H, W)`` -> sRGB ``(*, 3, H, W)`` in [0, 1]."""
    srgb, _ = render_with_shot(
        raw, camera, rng, shot=shot, local_tone=local_tone, noise=noise, quantize=quantize, bits=bits, jpeg=jpeg
    )
    return srgb


def unprocess(srgb: torch.Tensor, camera: Camera, shot: Shot, *, clip: bool = False) -> torch.Tensor:
    """Invert the global steps of ``render``: sRGB ``(*, 3, H, W)`` -> linear camera raw-RGB.

    Inverse OETF, inverse tone curve, inverse edits, inverse colour matrix, division by the exposure
    and white-balance gains, inverse vignette. Local tone mapping, noise, quantisation and JPEG are
    not inverted. ``clip=True`` clips the result to [0, 1] (the raw range).
    """
    _check(srgb, "srgb")
    x = srgb_oetf_inverse(srgb.clamp(0.0, 1.0))
    x = apply_tone_curve(x, camera.tone_curve, mode=camera.tone_mode, inverse=True)
    x = apply_edits(x, camera.edits, inverse=True)
    x = apply_ccm(x, torch.linalg.inv(camera.color_matrix))
    x = apply_white_balance(x, _gains(shot), inverse=True)
    x = vignette(x, camera.vignette, inverse=True)
    return x.clamp(0.0, 1.0) if clip else x


def unprocess_photo(
    srgb: torch.Tensor,
    camera: Camera,
    rng: torch.Generator | np.random.Generator,
    *,
    return_shot: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, Shot]:
    """Turn any sRGB photo ``(*, 3, H, W)`` in [0, 1] into a plausible raw-RGB of ``camera`` (Brooks et al. 2019).

    A shot is drawn from ``rng``, ``unprocess`` is applied and the result clipped to [0, 1]. With
    ``return_shot=True`` returns ``(raw, shot)``, so that ``render(raw, camera, rng, shot=shot)``
    reproduces the photo up to the camera's local tone mapping and clipping.
    """
    shot = camera.draw_shot(as_generator(rng))
    raw = unprocess(srgb, camera, shot, clip=True)
    return (raw, shot) if return_shot else raw
