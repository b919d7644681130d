"""Reading camera RAW files: LibRaw (through rawpy) for camera formats and DNG, plus headerless ``.raw`` dumps.

``open_raw(path)`` is a context manager yielding a ``RawFile``; everything it returns follows
docs/CONVENTIONS.md:

- ``mosaic()``: the visible Bayer mosaic ``(1, H, W)`` in [0, 1], black-subtracted and divided by
  ``white - black`` per CFA site (rawpy's ``black_level_per_channel``, ``white_level``), clipped;
  cropped to even ``H, W`` so that the 2x2 pattern tiles it.
- ``packed(downscale)``: ``(4, h, w)`` planes R, Gr, Gb, B (``rawmamba.isp.pack``), whatever the sensor's
  pattern; ``downscale`` > 1 averages ``downscale x downscale`` blocks of each plane.
- ``raw_rgb(downscale)``: bilinear-demosaiced raw-RGB ``(3, H, W)`` (``rawmamba.isp.demosaic_bilinear``,
  the CAM data's "standard bilinear interpolation"), then ``downscale x downscale`` area averaging:
  the CAM data were made this way from the NUS images with ``downscale = 4``.
- ``render_libraw(downscale)``: LibRaw's own rendering (``rawpy.postprocess``: camera white balance, AHD,
  sRGB, 8 bits, auto-brightness) aligned pixel for pixel with ``raw_rgb`` (``user_flip=0``).
- ``info``: a ``RawInfo`` with what a DNG needs (``rawmamba.rawio.dng``) in rawpy's vocabulary.

Everything stays in sensor orientation; ``RawInfo.orientation`` (the EXIF/TIFF code) says how a viewer
should turn it and is copied into DNGs we write.

Colour matrix: rawpy's ``rgb_xyz_matrix`` (dcraw's ``adobe_coeff`` table) when LibRaw fills it; LibRaw
leaves it empty for DNG files, so for those the DNG's own ``ColorMatrix1``/``ColorMatrix2`` tag is read
with tifffile (the one calibrated under a daylight illuminant when there are two).

Headerless files (``HeaderlessLayout``) are plain little- or big-endian integer dumps of a Bayer mosaic
with a known size, pattern and levels; LibRaw's rendering is not available for them.

A file that cannot be read (missing, unsupported, truncated, not Bayer, a size that disagrees with its
layout) raises one ``RawMambaError`` naming it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from rawmamba.errors import RawMambaError
from rawmamba.isp import CFA, as_cfa, demosaic_bilinear, normalize_levels, pack

__all__ = ["HeaderlessLayout", "RawFile", "RawInfo", "open_raw", "DAYLIGHT_ILLUMINANTS"]

# DNG CalibrationIlluminant codes of daylight-like lights: daylight, D55, D65, D75, D50.
DAYLIGHT_ILLUMINANTS = (1, 20, 21, 22, 23)
# LibRaw's ``flip`` code -> EXIF/TIFF Orientation (dcraw maps Orientation v to flip "50132467"[v & 7]).
_FLIP_TO_ORIENTATION = {0: 1, 1: 2, 2: 4, 3: 3, 4: 5, 5: 8, 6: 6, 7: 7}
_COLOR_MATRIX_TAGS = ((50721, 50778), (50722, 50779))  # (ColorMatrixN, CalibrationIlluminantN)


@dataclass(frozen=True)
class RawInfo:
    """What is known about a RAW file's sensor data, in rawpy's vocabulary, normalised to our conventions.

    Args:
        cfa: the Bayer pattern of the (even-cropped) visible mosaic.
        black_level_per_channel: black levels in digital numbers, ordered R, Gr, Gb, B (``pack``'s order,
            not rawpy's colour-index order).
        white_level: the saturation value in digital numbers.
        camera_whitebalance: as-shot white-balance gains (R, G, B) normalised to G = 1.
        rgb_xyz_matrix: the XYZ -> camera ``ColorMatrix`` (9 values, row-major, any scale), or None if unknown.
        orientation: EXIF/TIFF Orientation code (1 = as stored; 2 = mirrored; 3 = 180 degrees; 6, 8 = 90 degrees).
        camera: make and model (free text).
        height: height of the visible mosaic (even).
        width: width of the visible mosaic (even).
    """

    cfa: CFA
    black_level_per_channel: tuple[float, float, float, float]
    white_level: float
    camera_whitebalance: tuple[float, float, float]
    rgb_xyz_matrix: tuple[float, ...] | None
    orientation: int = 1
    camera: str = "unknown"
    height: int = 0
    width: int = 0

    def to_json(self) -> dict:
        """A JSON-serialisable dict (``cfa`` as its name); ``from_json`` reverses it."""
        return {**asdict(self), "cfa": self.cfa.value}

    @classmethod
    def from_json(cls, data: dict, *, source: str = "camera info") -> RawInfo:
        """Rebuild from ``to_json``'s dict; missing or malformed entries raise ``RawMambaError`` naming ``source``."""
        try:
            matrix = data.get("rgb_xyz_matrix")
            info = cls(
                cfa=as_cfa(data["cfa"]),
                black_level_per_channel=tuple(float(v) for v in data["black_level_per_channel"]),
                white_level=float(data["white_level"]),
                camera_whitebalance=tuple(float(v) for v in data["camera_whitebalance"]),
                rgb_xyz_matrix=None if matrix is None else tuple(float(v) for v in matrix),
                orientation=int(data.get("orientation", 1)),
                camera=str(data.get("camera", "unknown")),
                height=int(data.get("height", 0)),
                width=int(data.get("width", 0)),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise RawMambaError(f"{source} is not a RAW description (needs cfa, black_level_per_channel, "
                                f"white_level, camera_whitebalance): {exc!r}") from exc
        if len(info.black_level_per_channel) != 4 or len(info.camera_whitebalance) != 3 or (
                info.rgb_xyz_matrix is not None and len(info.rgb_xyz_matrix) != 9):
            raise RawMambaError(f"{source}: need 4 black levels, 3 white-balance gains and 9 matrix values")
        return info


@dataclass(frozen=True)
class HeaderlessLayout:
    """The layout of a headerless RAW dump: ``height * width`` unsigned integers, row-major, no header.

    Args:
        width: columns.
        height: rows.
        bits: significant bits per sample (10, 12, 14, 16...); samples are stored in 8-bit words when
            ``bits <= 8``, else in 16-bit words; the default white level is ``2**bits - 1``.
        cfa: Bayer pattern of the top-left 2x2 tile.
        black: black level, one value or four (R, Gr, Gb, B).
        white: white level; None uses ``2**bits - 1``.
        wb: as-shot white-balance gains (R, G, B); unknown is (1, 1, 1).
        byte_order: ``"<"`` little-endian (the usual) or ``">"`` big-endian.
        offset: bytes to skip before the first sample.
        rgb_xyz_matrix: XYZ -> camera matrix (9 values) if known.
        camera: free-text camera name.
    """

    width: int
    height: int
    bits: int = 16
    cfa: CFA | str = CFA.RGGB
    black: float | tuple[float, ...] = 0.0
    white: float | None = None
    wb: tuple[float, float, float] = (1.0, 1.0, 1.0)
    byte_order: str = "<"
    offset: int = 0
    rgb_xyz_matrix: tuple[float, ...] | None = None
    camera: str = "unknown"

    def dtype(self) -> np.dtype:
        """The stored sample type."""
        return np.dtype(np.uint8) if self.bits <= 8 else np.dtype(f"{self.byte_order}u2")


def _normalise_wb(gains) -> tuple[float, float, float]:
    r, g, b = (float(v) for v in list(gains)[:3])
    if not all(np.isfinite(v) and v > 0 for v in (r, g, b)):
        return 1.0, 1.0, 1.0  # no usable as-shot white balance recorded
    return r / g, 1.0, b / g


def _downscale(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Average ``factor x factor`` blocks of a ``(C, H, W)`` image (crops H, W to multiples of ``factor``)."""
    if factor < 1:
        raise RawMambaError(f"downscale must be a positive integer, got {factor}")
    if factor == 1:
        return x
    h, w = (x.shape[-2] // factor) * factor, (x.shape[-1] // factor) * factor
    if h == 0 or w == 0:
        raise RawMambaError(f"an image of {tuple(x.shape[-2:])} pixels is too small to downscale by {factor}")
    return F.avg_pool2d(x[None, :, :h, :w], factor)[0]


def _dng_tags(path: Path) -> tuple[tuple[float, ...] | None, str | None]:
    """The daylight ColorMatrix (else ColorMatrix1) and UniqueCameraModel of a DNG's IFD0; Nones otherwise."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            tags = tif.pages[0].tags
            model = str(tags[50708].value) if 50708 in tags else None
            found = []
            for matrix_code, illuminant_code in _COLOR_MATRIX_TAGS:
                if matrix_code in tags:
                    v = tags[matrix_code].value
                    matrix = tuple(v[i] / v[i + 1] for i in range(0, 18, 2)) if len(v) == 18 else tuple(v)
                    illuminant = tags[illuminant_code].value if illuminant_code in tags else 0
                    found.append((illuminant in DAYLIGHT_ILLUMINANTS, matrix))
    except Exception:  # noqa: BLE001 - not a TIFF-based file: there are no DNG tags to read
        return None, None
    daylight = [m for ok, m in found if ok]
    return (daylight or [m for _, m in found] or [None])[0], model


class RawFile:
    """An opened RAW file: sensor data normalised to [0, 1] and its ``RawInfo`` (see the module docstring).

    Build it with ``open_raw``. ``levels`` holds the stored integers of the even-cropped visible mosaic.
    """

    def __init__(self, path: Path, levels: np.ndarray, info: RawInfo, libraw=None):
        self.path = path
        self.levels = levels
        self.info = info
        self._libraw = libraw

    def mosaic(self) -> torch.Tensor:
        """``(1, H, W)`` float32 mosaic in [0, 1]: ``(x - black) / (white - black)`` per CFA site, clipped."""
        x = torch.from_numpy(self.levels.astype(np.float32))[None]
        return normalize_levels(x, self.info.black_level_per_channel, self.info.white_level, cfa=self.info.cfa)

    def packed(self, downscale: int = 1) -> torch.Tensor:
        """``(4, H/2/downscale, W/2/downscale)`` planes R, Gr, Gb, B in [0, 1]."""
        return _downscale(pack(self.mosaic(), self.info.cfa), downscale)

    def raw_rgb(self, downscale: int = 1) -> torch.Tensor:
        """``(3, H/downscale, W/downscale)`` bilinear-demosaiced raw-RGB in [0, 1] (camera space, no white balance)."""
        return _downscale(demosaic_bilinear(self.mosaic(), self.info.cfa), downscale).clamp(0, 1)

    def render_libraw(self, downscale: int = 1, **postprocess) -> torch.Tensor:
        """LibRaw's sRGB rendering ``(3, H/downscale, W/downscale)`` in [0, 1], aligned with ``raw_rgb``.

        Args:
            downscale: area downscaling factor, as for ``raw_rgb``; the result is re-quantised to 8 bits.
            postprocess: ``rawpy.postprocess`` arguments overriding ours (``use_camera_wb=True``,
                ``user_flip=0``, ``output_bps=8``).
        """
        if self._libraw is None:
            raise RawMambaError(f"{self.path} is a headerless RAW dump: LibRaw cannot render it; "
                                "use one of our camera profiles instead")
        import rawpy

        options = {"use_camera_wb": True, "user_flip": 0, "output_bps": 8, **postprocess}
        try:
            rendered = self._libraw.postprocess(**options)
        except rawpy.LibRawError as exc:
            raise RawMambaError(f"LibRaw cannot render RAW file {self.path}: {exc}") from exc
        h, w = self.levels.shape
        if rendered.shape[0] < h or rendered.shape[1] < w:
            raise RawMambaError(f"LibRaw rendered {self.path} at {rendered.shape[:2]}, below its mosaic {(h, w)}")
        peak = float(np.iinfo(rendered.dtype).max)
        srgb = torch.from_numpy(rendered[:h, :w].astype(np.float32) / peak).permute(2, 0, 1)
        return torch.round(_downscale(srgb, downscale) * 255) / 255


def _read_libraw(path: Path, raw) -> tuple[np.ndarray, RawInfo]:
    import rawpy

    if raw.raw_type != rawpy.RawType.Flat or raw.num_colors != 3:
        raise RawMambaError(f"RAW file {path} is not a Bayer sensor image (LibRaw raw type {raw.raw_type.name}, "
                            f"{raw.num_colors} colours); only Bayer CFA files are supported")
    levels = raw.raw_image_visible
    colours = raw.raw_colors_visible
    h, w = (levels.shape[0] // 2) * 2, (levels.shape[1] // 2) * 2
    if h < 2 or w < 2:
        raise RawMambaError(f"RAW file {path} has a visible area of {levels.shape}, too small")
    desc = raw.color_desc.decode()
    letters = "".join(desc[colours[r, c]] for r in range(2) for c in range(2))
    try:
        cfa = CFA(letters)
    except ValueError as exc:
        raise RawMambaError(f"RAW file {path} has a {letters} colour filter array; only Bayer is supported") from exc
    black = tuple(float(raw.black_level_per_channel[colours[r, c]]) for r, c in cfa.offsets)
    matrix = np.asarray(raw.rgb_xyz_matrix, dtype=np.float64)[:3]
    dng_matrix, model = _dng_tags(path)
    xyz_to_camera = tuple(float(v) for v in matrix.ravel()) if np.abs(matrix).sum() > 0 else dng_matrix
    info = RawInfo(
        cfa=cfa,
        black_level_per_channel=black,
        white_level=float(raw.white_level),
        camera_whitebalance=_normalise_wb(raw.camera_whitebalance),
        rgb_xyz_matrix=xyz_to_camera,
        orientation=_FLIP_TO_ORIENTATION.get(int(raw.sizes.flip), 1),
        camera=model or path.stem,
        height=h,
        width=w,
    )
    return np.ascontiguousarray(levels[:h, :w]), info


def _read_headerless(path: Path, layout: HeaderlessLayout) -> tuple[np.ndarray, RawInfo]:
    dtype = layout.dtype()
    expected = layout.offset + layout.width * layout.height * dtype.itemsize
    size = path.stat().st_size
    if size != expected:
        raise RawMambaError(f"headerless RAW file {path} has {size} bytes; {layout.height}x{layout.width} "
                            f"{dtype.itemsize * 8}-bit samples after {layout.offset} bytes need {expected}")
    levels = np.fromfile(path, dtype=dtype, offset=layout.offset).reshape(layout.height, layout.width)
    h, w = (layout.height // 2) * 2, (layout.width // 2) * 2
    black = layout.black if isinstance(layout.black, (tuple, list)) else (layout.black,) * 4
    white = float(layout.white if layout.white is not None else 2**layout.bits - 1)
    if len(black) != 4 or not all(white > b for b in black):
        raise RawMambaError(f"headerless RAW file {path}: need 1 or 4 black levels below the white level {white}, "
                            f"got {black}")
    info = RawInfo(
        cfa=as_cfa(layout.cfa),
        black_level_per_channel=tuple(float(b) for b in black),
        white_level=white,
        camera_whitebalance=_normalise_wb(layout.wb),
        rgb_xyz_matrix=layout.rgb_xyz_matrix,
        camera=layout.camera,
        height=h,
        width=w,
    )
    return np.ascontiguousarray(levels[:h, :w].astype(np.uint16)), info


@contextmanager
def open_raw(path: str | Path, layout: HeaderlessLayout | None = None) -> Iterator[RawFile]:
    """Open a camera RAW/DNG file with LibRaw, or a headerless dump described by ``layout``.

    Args:
        path: the file.
        layout: for a headerless ``.raw`` dump, its layout; None reads the file with LibRaw (rawpy).
    Raises:
        RawMambaError naming ``path`` for a missing, unsupported or corrupt file.
    """
    path = Path(path)
    if not path.is_file():
        raise RawMambaError(f"RAW file {path} does not exist")
    if layout is not None:
        levels, info = _read_headerless(path, layout)
        yield RawFile(path, levels, info)
        return
    import rawpy

    try:
        handle = rawpy.imread(str(path))
    except (rawpy.LibRawError, OSError, ValueError) as exc:
        raise RawMambaError(f"cannot read RAW file {path} (unsupported or corrupt): {exc}") from exc
    with handle:
        try:
            levels, info = _read_libraw(path, handle)
        except rawpy.LibRawError as exc:
            raise RawMambaError(f"cannot read RAW file {path} (unsupported or corrupt): {exc}") from exc
        yield RawFile(path, levels, info, libraw=handle)
