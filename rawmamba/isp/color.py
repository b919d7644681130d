"""Colour science of the pipeline: black/white levels, white balance, camera -> XYZ -> linear sRGB, Oklab.

Matrices follow dcraw / the Adobe DNG specification: a camera is described by its ``ColorMatrix``
``xyz_to_camera`` (XYZ -> camera RGB under a D65 illuminant; rawpy calls it ``rgb_xyz_matrix``).
``camera_to_srgb_matrix`` normalises its rows so that camera white after white balance, ``(1, 1, 1)``,
maps to the reference white (as dcraw does with ``pre_mul``), inverts it and chains XYZ -> linear sRGB.

All images are ``(*, C, H, W)`` tensors; matrices are built in float64 and cast to the image dtype.
NaN propagates through every function here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from rawmamba.errors import RawMambaError
from rawmamba.isp.cfa import CFA, as_cfa

__all__ = [
    "SRGB_TO_XYZ",
    "WHITEPOINTS",
    "apply_ccm",
    "apply_white_balance",
    "bradford_adaptation",
    "camera_to_srgb_matrix",
    "camera_to_xyz_matrix",
    "cct_to_xy",
    "illuminant_wb_gains",
    "luminance",
    "normalize_levels",
    "oklab_to_srgb_linear",
    "srgb_linear_to_oklab",
]

# Linear sRGB (D65) -> CIE XYZ, IEC 61966-2-1 primaries at dcraw's precision (its ``xyz_rgb``).
SRGB_TO_XYZ = torch.tensor(
    [[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]],
    dtype=torch.float64,
)
# Reference whites in XYZ with Y = 1: D65 is the sRGB white (row sums of SRGB_TO_XYZ), D50 the ICC/DNG PCS white.
WHITEPOINTS: dict[str, torch.Tensor] = {
    "D65": SRGB_TO_XYZ.sum(1),
    "D50": torch.tensor([0.96422, 1.0, 0.82521], dtype=torch.float64),
}
_BRADFORD = torch.tensor(
    [[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]], dtype=torch.float64
)
# Oklab (Ottosson 2020): linear sRGB -> LMS, then cube root, then LMS' -> Lab.
_OKLAB_M1 = torch.tensor(
    [[0.4122214708, 0.5363325363, 0.0514459929], [0.2119034982, 0.6806995451, 0.1073969566],
     [0.0883024619, 0.2817188376, 0.6299787005]], dtype=torch.float64,
)  # fmt: skip
_OKLAB_M2 = torch.tensor(
    [[0.2104542553, 0.7936177850, -0.0040720468], [1.9779984951, -2.4285922050, 0.4505937099],
     [0.0259040371, 0.7827717662, -0.8086757660]], dtype=torch.float64,
)  # fmt: skip
# Rec. 709 / sRGB luminance weights (the Y row of SRGB_TO_XYZ, rounded as in the standard).
_LUMA = (0.2126, 0.7152, 0.0722)


def _matrix(m, name: str) -> torch.Tensor:
    m = torch.as_tensor(m, dtype=torch.float64)
    if m.shape != (3, 3):
        raise RawMambaError(f"{name} must be a 3x3 matrix, got shape {tuple(m.shape)}")
    return m


def _white(white: str | Sequence[float]) -> torch.Tensor:
    if isinstance(white, str):
        if white not in WHITEPOINTS:
            raise RawMambaError(f"white={white!r} is not one of {sorted(WHITEPOINTS)} (or give XYZ values)")
        return WHITEPOINTS[white]
    return torch.as_tensor(white, dtype=torch.float64).reshape(3)


def _check_rgb(x: torch.Tensor, name: str) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim < 3 or x.shape[-3] != 3:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise RawMambaError(f"{name} must be a (*, 3, H, W) tensor, got {shape}")


def apply_ccm(rgb: torch.Tensor, matrix) -> torch.Tensor:
    """Multiply every pixel's colour vector by a 3x3 ``matrix``: ``out[i] = sum_j matrix[i, j] rgb[j]``.

    ``rgb``: ``(*, 3, H, W)`` linear values, any range. Returns the same shape and dtype.
    """
    _check_rgb(rgb, "rgb")
    m = _matrix(matrix, "matrix").to(device=rgb.device, dtype=rgb.dtype)
    return torch.matmul(m, rgb.flatten(-2)).reshape(rgb.shape)


def apply_white_balance(rgb: torch.Tensor, gains, *, inverse: bool = False) -> torch.Tensor:
    """Multiply (or with ``inverse=True`` divide) the three channels of ``(*, 3, H, W)`` by ``gains``.

    ``gains``: 3 positive numbers (R, G, B), or a ``(*, 3)`` tensor matching the leading dims.
    """
    _check_rgb(rgb, "rgb")
    g = torch.as_tensor(gains, dtype=rgb.dtype, device=rgb.device)
    if g.shape[-1:] != (3,):
        raise RawMambaError(f"gains must have 3 values (R, G, B) in its last dim, got shape {tuple(g.shape)}")
    if not bool((g > 0).all()):
        raise RawMambaError(f"gains must be positive, got {g.tolist()}")
    g = g[..., :, None, None]
    return rgb / g if inverse else rgb * g


def luminance(rgb: torch.Tensor) -> torch.Tensor:
    """Relative luminance Y of linear sRGB ``(*, 3, H, W)`` with Rec. 709 weights: ``(*, 1, H, W)``."""
    _check_rgb(rgb, "rgb")
    w = torch.tensor(_LUMA, dtype=rgb.dtype, device=rgb.device)
    return torch.einsum("j,...jhw->...hw", w, rgb).unsqueeze(-3)


def normalize_levels(
    raw: torch.Tensor,
    black_level_per_channel: float | Sequence[float],
    white_level: float,
    *,
    cfa: CFA | str | None = None,
    clip: bool = True,
) -> torch.Tensor:
    """``(raw - black) / (white_level - black)`` per channel, rawpy vocabulary; optionally clipped to [0, 1].

    Args:
        raw: sensor values in digital numbers: a packed ``(*, 4, h, w)`` Bayer image (black levels in the
            order R, Gr, Gb, B of ``pack``), a ``(*, 3, H, W)`` raw-RGB image (R, G, B), or a
            ``(*, 1, H, W)`` mosaic with ``cfa`` given (black levels R, Gr, Gb, B). rawpy's
            ``black_level_per_channel`` is indexed by ``raw_pattern`` colour (R, G, B, G2); for the usual
            ``color_desc = b"RGBG"`` reorder it as ``[bl[0], bl[1], bl[3], bl[2]]``.
        black_level_per_channel: one value for all channels or one per channel as above.
        white_level: the saturation value (rawpy ``white_level``), greater than every black level.
        cfa: the Bayer pattern, required for a 1-channel mosaic only.
        clip: clip the result to [0, 1] (the default), else keep values outside.
    """
    if not isinstance(raw, torch.Tensor) or raw.ndim < 3 or raw.shape[-3] not in (1, 3, 4):
        raise RawMambaError(f"raw must be a (*, 1|3|4, H, W) tensor, got {getattr(raw, 'shape', type(raw))}")
    channels = raw.shape[-3]
    black = torch.as_tensor(black_level_per_channel, dtype=raw.dtype, device=raw.device).reshape(-1)
    expected = 4 if channels in (1, 4) else 3
    if black.numel() == 1:
        black = black.expand(expected)
    if black.numel() != expected:
        raise RawMambaError(f"black_level_per_channel needs 1 or {expected} values for this raw, got {black.numel()}")
    if not bool((white_level > black).all()):
        raise RawMambaError(f"white_level={white_level} must exceed every black level {black.tolist()}")
    if channels == 1:
        if cfa is None:
            raise RawMambaError("normalize_levels needs cfa= for a 1-channel mosaic")
        cfa = as_cfa(cfa)
        h, w = raw.shape[-2:]
        plane = torch.zeros(h, w, dtype=torch.long, device=raw.device)
        for index, (r, c) in enumerate(cfa.offsets):
            plane[r::2, c::2] = index
        black_map = black[plane][None]
    else:
        black_map = black[:, None, None]
    out = (raw - black_map) / (white_level - black_map)
    return out.clamp(0.0, 1.0) if clip else out


def bradford_adaptation(src_white: str | Sequence[float], dst_white: str | Sequence[float]) -> torch.Tensor:
    """3x3 Bradford chromatic adaptation matrix taking XYZ under ``src_white`` to XYZ under ``dst_white``."""
    src = _BRADFORD @ _white(src_white)
    dst = _BRADFORD @ _white(dst_white)
    return torch.linalg.inv(_BRADFORD) @ torch.diag(dst / src) @ _BRADFORD


def camera_to_xyz_matrix(xyz_to_camera, *, white: str | Sequence[float] = "D65") -> torch.Tensor:
    """Camera RGB (white balanced) -> XYZ, normalised so camera ``(1, 1, 1)`` maps to ``white``.

    ``xyz_to_camera`` is a published ColorMatrix (XYZ -> camera, any overall scale, e.g. dcraw's
    integers / 10000). Each row is divided by its response to ``white`` (dcraw's ``pre_mul`` step),
    then the matrix is inverted.
    """
    m = _matrix(xyz_to_camera, "xyz_to_camera")
    response = m @ _white(white)
    if not bool((response > 0).all()):
        raise RawMambaError(f"xyz_to_camera gives a non-positive response {response.tolist()} to white={white!r}")
    return torch.linalg.inv(m / response[:, None])


def camera_to_srgb_matrix(xyz_to_camera, *, white: str | Sequence[float] = "D65") -> torch.Tensor:
    """White-balanced camera RGB -> linear sRGB: ``XYZ_to_sRGB @ Bradford(white -> D65) @ camera_to_xyz``.

    Its rows sum to 1: a neutral camera colour stays neutral. ``white="D65"`` is dcraw's ``rgb_cam``;
    ``white="D50"`` goes through the DNG profile connection space first.
    """
    cam_to_xyz = camera_to_xyz_matrix(xyz_to_camera, white=white)
    return torch.linalg.inv(SRGB_TO_XYZ) @ bradford_adaptation(white, "D65") @ cam_to_xyz


def cct_to_xy(cct: float) -> tuple[float, float]:
    """CIE 1931 chromaticity of a light of correlated colour temperature ``cct`` kelvin (1667..25000).

    Below 4000 K the Planckian locus (Kim et al. 2002 cubic fit), from 4000 K the CIE daylight locus.
    """
    t = float(cct)
    if not 1667.0 <= t <= 25000.0:
        raise RawMambaError(f"cct={cct} K is outside the supported 1667..25000 K")
    if t < 4000.0:
        x = -0.2661239e9 / t**3 - 0.2343589e6 / t**2 + 0.8776956e3 / t + 0.179910
        if t < 2222.0:
            y = -1.1063814 * x**3 - 1.34811020 * x**2 + 2.18555832 * x - 0.20219683
        else:
            y = -0.9549476 * x**3 - 1.37418593 * x**2 + 2.09137015 * x - 0.16748867
        return x, y
    if t <= 7000.0:
        x = -4.6070e9 / t**3 + 2.9678e6 / t**2 + 0.09911e3 / t + 0.244063
    else:
        x = -2.0064e9 / t**3 + 1.9018e6 / t**2 + 0.24748e3 / t + 0.237040
    return x, -3.0 * x**2 + 2.870 * x - 0.275


def illuminant_wb_gains(xyz_to_camera, cct: float, *, tint: float = 0.0) -> tuple[float, float, float]:
    """White-balance gains (R, G, B; G = 1) that make a neutral surface lit by ``cct`` kelvin neutral.

    The camera's response to the illuminant is ``xyz_to_camera @ XYZ(cct)``; the gains are its
    reciprocal. ``tint`` moves the illuminant along the green-magenta axis: its y chromaticity is
    multiplied by ``exp(tint)`` (small values, about +-0.05).
    """
    x, y = cct_to_xy(cct)
    y = y * math.exp(tint)
    xyz = torch.tensor([x / y, 1.0, (1.0 - x - y) / y], dtype=torch.float64)
    response = _matrix(xyz_to_camera, "xyz_to_camera") @ xyz
    if not bool((response > 0).all()):
        raise RawMambaError(f"camera response {response.tolist()} to {cct} K is not positive")
    gains = response[1] / response
    return float(gains[0]), float(gains[1]), float(gains[2])


def _cbrt(x: torch.Tensor) -> torch.Tensor:
    return torch.sign(x) * x.abs().pow(1.0 / 3.0)


def srgb_linear_to_oklab(rgb: torch.Tensor) -> torch.Tensor:
    """Linear sRGB ``(*, 3, H, W)`` -> Oklab ``(*, 3, H, W)`` (L in [0, 1] for in-gamut input, then a, b).

    Negative (out-of-gamut) values use a signed cube root, so the transform stays invertible.
    """
    lms = apply_ccm(rgb, _OKLAB_M1)
    return apply_ccm(_cbrt(lms), _OKLAB_M2)


def oklab_to_srgb_linear(lab: torch.Tensor) -> torch.Tensor:
    """Inverse of ``srgb_linear_to_oklab``."""
    lms = apply_ccm(lab, torch.linalg.inv(_OKLAB_M2))
    return apply_ccm(lms**3, torch.linalg.inv(_OKLAB_M1))
