"""Writing de-rendered RAW as DNG (Adobe Digital Negative 1.4), our own minimal encoder over tifffile.

One uncompressed IFD0 holds the image (NewSubfileType 0, one strip) with the DNG tags written by hand
through tifffile's ``extratags``:

- Bayer CFA (``PhotometricInterpretation = 32803``) for a ``(1, H, W)`` mosaic or ``(4, h, w)`` packed
  R, Gr, Gb, B (unpacked with ``RawInfo.cfa``): ``CFARepeatPatternDim = (2, 2)``, ``CFAPattern`` (colour
  indices 0 = R, 1 = G, 2 = B of the 2x2 tile, row-major), ``CFAPlaneColor``, ``CFALayout = 1`` and
  ``BlackLevelRepeatDim = (2, 2)`` with one ``BlackLevel`` per tile site;
- LinearRaw (``PhotometricInterpretation = 34892``) for ``(3, H, W)`` raw-RGB, ``BlackLevelRepeatDim =
  (1, 1)`` with one ``BlackLevel`` per sample (R, mean of the two greens, B);
- both: ``DNGVersion 1.4``, ``DNGBackwardVersion 1.1``, ``UniqueCameraModel``, ``WhiteLevel``,
  ``ColorMatrix1`` (XYZ -> camera, SRATIONAL / 10000), ``CalibrationIlluminant1``, ``AsShotNeutral``
  (the reciprocal white-balance gains), ``Orientation``.

Values in [0, 1] become ``round(black + clip(x) * (white - black))`` per CFA site (levels are rounded to
integers first), so LibRaw's ``(v - black) / (white - black)`` gives ``x`` back within half a level.
Integer ``uint16`` arrays are written unchanged. With no colour matrix known, the camera space is taken
to be linear sRGB (``ColorMatrix1 = XYZ -> linear sRGB``, D65). Files are written under a temporary
name in the destination folder and renamed (``rawmamba.data.io.atomic_path``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from rawmamba.data.io import atomic_path
from rawmamba.errors import RawMambaError
from rawmamba.isp import CFA, unpack
from rawmamba.isp.color import SRGB_TO_XYZ
from rawmamba.rawio.read import RawInfo

__all__ = ["DEFAULT_INFO", "write_dng", "dng_levels", "default_color_matrix"]

PHOTOMETRIC_CFA = 32803
PHOTOMETRIC_LINEAR_RAW = 34892
ILLUMINANT_D65 = 21
_MATRIX_DENOMINATOR = 10000
_NEUTRAL_DENOMINATOR = 1_000_000
# TIFF field types (TIFF 6.0): BYTE, ASCII, SHORT, LONG, RATIONAL, SRATIONAL.
_BYTE, _ASCII, _SHORT, _LONG, _RATIONAL, _SRATIONAL = 1, 2, 3, 4, 5, 10

DEFAULT_INFO = RawInfo(cfa=CFA.RGGB, black_level_per_channel=(0.0, 0.0, 0.0, 0.0), white_level=65535.0,
                       camera_whitebalance=(1.0, 1.0, 1.0), rgb_xyz_matrix=None, camera="rawmamba")


def default_color_matrix() -> tuple[float, ...]:
    """XYZ -> linear sRGB (D65), row-major: the ColorMatrix of a camera whose RGB is linear sRGB."""
    return tuple(float(v) for v in torch.linalg.inv(SRGB_TO_XYZ).reshape(-1))


def _levels(info: RawInfo) -> tuple[list[int], int]:
    black = [int(round(b)) for b in info.black_level_per_channel]
    white = int(round(info.white_level))
    if not 0 < white <= 65535 or not all(0 <= b < white for b in black):
        raise RawMambaError(f"DNG levels need 0 <= black < white <= 65535, got black {black}, white {white}")
    return black, white


def dng_levels(raw: torch.Tensor, info: RawInfo) -> np.ndarray:
    """``(1|3|4, H, W)`` RAW in [0, 1] to the ``uint16`` array a DNG stores: ``(H, W)`` mosaic or ``(H, W, 3)``.

    Packed ``(4, h, w)`` R, Gr, Gb, B is unpacked with ``info.cfa`` to a ``(2h, 2w)`` mosaic first.
    """
    if not isinstance(raw, torch.Tensor) or raw.ndim != 3 or raw.shape[0] not in (1, 3, 4):
        raise RawMambaError(f"DNG RAW must be a (1|3|4, H, W) tensor, got {getattr(raw, 'shape', type(raw))}")
    black, white = _levels(info)
    x = raw.detach().to("cpu", torch.float64).clamp(0, 1)
    if x.shape[0] == 4:
        x = unpack(x, info.cfa)
    if x.shape[0] == 1:
        h, w = x.shape[-2:]
        if h % 2 or w % 2:
            raise RawMambaError(f"a Bayer DNG needs even height and width, got {(h, w)}")
        site = torch.zeros(h, w, dtype=torch.float64)
        for value, (r, c) in zip(black, info.cfa.offsets, strict=True):
            site[r::2, c::2] = value
        return np.rint((site + x[0] * (white - site)).numpy()).astype(np.uint16)
    bk = torch.tensor([black[0], (black[1] + black[2]) / 2, black[3]], dtype=torch.float64)[:, None, None]
    return np.ascontiguousarray(np.rint((bk + x * (white - bk)).numpy()).astype(np.uint16).transpose(1, 2, 0))


def _rationals(values, denominator: int) -> tuple[int, ...]:
    out: list[int] = []
    for v in values:
        out += [int(round(float(v) * denominator)), denominator]
    return tuple(out)


def _tags(info: RawInfo, bayer: bool, illuminant: int) -> list[tuple]:
    black, white = _levels(info)
    matrix = info.rgb_xyz_matrix if info.rgb_xyz_matrix is not None else default_color_matrix()
    if len(matrix) != 9 or not np.all(np.isfinite(matrix)):
        raise RawMambaError(f"the colour matrix needs 9 finite values, got {matrix}")
    gains = np.asarray(info.camera_whitebalance, dtype=np.float64)
    if gains.shape != (3,) or not np.all(gains > 0):
        raise RawMambaError(f"white-balance gains must be 3 positive values, got {info.camera_whitebalance}")
    neutral = gains[1] / gains  # AsShotNeutral: the camera's response to a neutral, G = 1
    model = info.camera or "rawmamba"
    tags = [
        (274, _SHORT, 1, int(info.orientation), True),  # Orientation
        (50706, _BYTE, 4, (1, 4, 0, 0), True),  # DNGVersion
        (50707, _BYTE, 4, (1, 1, 0, 0), True),  # DNGBackwardVersion
        (50708, _ASCII, 0, model, True),  # UniqueCameraModel
        (50717, _LONG, 1, white, True),  # WhiteLevel
        (50721, _SRATIONAL, 9, _rationals(matrix, _MATRIX_DENOMINATOR), True),  # ColorMatrix1
        (50728, _RATIONAL, 3, _rationals(neutral, _NEUTRAL_DENOMINATOR), True),  # AsShotNeutral
        (50778, _SHORT, 1, int(illuminant), True),  # CalibrationIlluminant1
    ]
    if bayer:
        tile = info.cfa.tile
        site_black = [0] * 4
        for value, (r, c) in zip(black, info.cfa.offsets, strict=True):
            site_black[2 * r + c] = value
        tags += [
            (33421, _SHORT, 2, (2, 2), True),  # CFARepeatPatternDim
            (33422, _BYTE, 4, (tile[0][0], tile[0][1], tile[1][0], tile[1][1]), True),  # CFAPattern
            (50710, _BYTE, 3, (0, 1, 2), True),  # CFAPlaneColor
            (50711, _SHORT, 1, 1, True),  # CFALayout: rectangular
            (50713, _SHORT, 2, (2, 2), True),  # BlackLevelRepeatDim
            (50714, _LONG, 4, tuple(site_black), True),  # BlackLevel, tile row-major
        ]
    else:
        tags += [
            (50713, _SHORT, 2, (1, 1), True),
            (50714, _LONG, 3, (black[0], (black[1] + black[2]) // 2, black[3]), True),  # per sample R, G, B
        ]
    return tags


def write_dng(path: str | Path, raw: torch.Tensor | np.ndarray, info: RawInfo | None = None, *,
              calibration_illuminant: int = ILLUMINANT_D65, force: bool = True) -> Path:
    """Write ``raw`` as a DNG file, atomically.

    Args:
        path: destination (``.dng``).
        raw: a float tensor in [0, 1], ``(1, H, W)`` mosaic or ``(4, h, w)`` packed R, Gr, Gb, B (Bayer DNG),
            or ``(3, H, W)`` raw-RGB (LinearRaw DNG); or ``uint16`` levels ``(H, W)`` (Bayer) or ``(H, W, 3)``
            (LinearRaw) written unchanged.
        info: CFA, levels, white balance, colour matrix, orientation, camera name (``RawInfo``, e.g. from
            ``open_raw`` or a capture JSON); None uses ``DEFAULT_INFO`` (RGGB, black 0, white 65535, no
            white balance, linear-sRGB camera).
        calibration_illuminant: the DNG ``CalibrationIlluminant1`` code of the colour matrix (21 = D65).
        force: overwrite an existing file; False raises ``RawMambaError`` instead.
    Returns:
        ``path`` as a ``Path``.
    """
    import tifffile

    path = Path(path)
    info = info or DEFAULT_INFO
    if path.exists() and not force:
        raise RawMambaError(f"{path} already exists; use --force to overwrite")
    if isinstance(raw, np.ndarray):
        if raw.dtype != np.uint16 or not (raw.ndim == 2 or (raw.ndim == 3 and raw.shape[2] == 3)):
            raise RawMambaError(f"DNG levels must be uint16 (H, W) or (H, W, 3), got {raw.dtype} {raw.shape}")
        levels = raw
    else:
        levels = dng_levels(raw, info)
    bayer = levels.ndim == 2
    if bayer and (levels.shape[0] % 2 or levels.shape[1] % 2):
        raise RawMambaError(f"a Bayer DNG needs even height and width, got {levels.shape}")
    tags = _tags(info, bayer, calibration_illuminant)
    photometric = PHOTOMETRIC_CFA if bayer else PHOTOMETRIC_LINEAR_RAW
    with atomic_path(path) as tmp:
        tifffile.imwrite(tmp, levels, photometric=photometric, planarconfig="contig", extratags=tags,
                         metadata=None, software="rawmamba", subfiletype=0)
    return path
