"""The on-disk metadata format: one small compressed ``.npz`` per image (sampled) or video (first frame).

Format version 1. A NumPy ``np.savez_compressed`` archive whose members all load with
``allow_pickle=False``:

``header``
    0-d unicode array holding one JSON object::

        {"format": "rawmamba-metadata", "version": 1,
         "kind": "sampled" | "frame",
         "height": H, "width": W,            # the metadata's size (half the sensor size for packed RAW)
         "layout": "raw-rgb" | "packed-RGGB" | "packed-BGGR" | "packed-GRBG" | "packed-GBRG",
         "raw_channels": 3 | 4,
         "num_samples": N, "rate": N / (H * W),   # N = H * W and rate 1 for a frame
         "raw_bits": 16, "srgb_bits": 8 | 16,
         "info": {...}}                        # caller's entries: sampler, cell, rate, camera, source ...

    ``raw-rgb`` is 3-channel demosaiced camera RGB; ``packed-<CFA>`` is 4-channel packed Bayer whose
    channels are always R, Gr, Gb, B, with ``<CFA>`` the sensor's pattern (needed to unpack it again).

For ``kind == "sampled"`` only the samples are stored, never dense arrays:

``yx``   int32 ``(2, N)``: row and column of each sample, in raster order.
``raw``  uint16 ``(C, N)``: RAW values ``round(y * 65535)``, channel-planar (compresses better).
``srgb`` uint8 ``(3, N)``: sRGB values ``round(x * 255)`` (uint16 ``round(x * 65535)`` if ``srgb_bits`` 16).

For ``kind == "frame"`` the dense first frame: ``raw`` uint16 ``(C, H, W)`` and ``srgb`` uint8/uint16
``(3, H, W)``, quantised the same way.

RAW values are therefore exact to 1/65535 (finer than the 14-bit RVD and 16-bit CAM data). An 8x8-grid
file holds 17 bytes per sample before compression (a 512x512 image: 4,096 samples, about 70 KB raw,
typically 20-40 KB compressed); 8-bit sRGB loses nothing for 8-bit sources such as JPEG/PNG.

``save_metadata`` writes atomically (a temporary file in the same folder, then ``os.replace``), so a
reader never sees half a file. ``load_metadata`` rebuilds the dense ``Metadata`` (zeros outside the mask)
and raises ``RawMambaError`` naming the file for a missing file, a file that is not such an archive, another
format version, metadata for another image size, or another RAW channel count.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import zipfile
import zlib
from pathlib import Path

import numpy as np
import torch

from rawmamba.errors import RawMambaError
from rawmamba.isp import CFA
from rawmamba.metadata.container import Metadata

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "LAYOUTS", "save_metadata", "load_metadata", "read_metadata_info"]

FORMAT_NAME = "rawmamba-metadata"
FORMAT_VERSION = 1
LAYOUTS: dict[str, int] = {"raw-rgb": 3, **{f"packed-{c.value}": 4 for c in CFA}}
_RAW_PEAK = 65535
_SRGB_DTYPES = {8: np.uint8, 16: np.uint16}


def _quantise(x: torch.Tensor, dtype: type[np.integer]) -> np.ndarray:
    peak = np.iinfo(dtype).max
    values = torch.round(x.detach().to("cpu", torch.float64).clamp(0, 1) * peak)
    return values.numpy().astype(dtype)


def _single(meta: Metadata, path: Path) -> Metadata:
    if any(n != 1 for n in meta.batch_shape):
        raise RawMambaError(f"cannot save metadata with batch shape {meta.batch_shape} to {path}: "
                            "save one image per file")
    h, w = meta.size
    mask = None if meta.mask is None else meta.mask.reshape(1, h, w)
    return Metadata(meta.srgb.reshape(3, h, w), meta.raw.reshape(meta.raw_channels, h, w), mask, check_values=False)


def save_metadata(path: str | os.PathLike, meta: Metadata, *, layout: str | None = None, srgb_bits: int = 8,
                  **info: object) -> Path:
    """Write ``meta`` to ``path`` in the format above, atomically.

    Args:
        path: destination file (``.npz`` by convention; the name is used as given). Its folder must exist.
        meta: one image's ``Metadata`` (leading shape empty or all ones).
        layout: RAW layout name (see ``LAYOUTS``); None means ``"raw-rgb"`` for 3 channels and
            ``"packed-RGGB"`` (RVD-Part2's sensor) for 4.
        srgb_bits: 8 (default; the sRGB of JPEG/PNG sources) or 16 (16-bit TIFF sources such as CAM's Sony
            and Olympus images).
        info: JSON-serialisable entries stored under ``header["info"]`` (e.g. ``**sampler.info()``).

    Returns:
        The path written.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise RawMambaError(f"cannot write metadata to {path}: folder {path.parent} does not exist")
    if not isinstance(meta, Metadata):
        raise RawMambaError(f"save_metadata needs a Metadata object for {path}, got {type(meta).__name__}")
    meta = _single(meta, path)
    layout = layout or ("raw-rgb" if meta.raw_channels == 3 else "packed-RGGB")
    if LAYOUTS.get(layout) != meta.raw_channels:
        raise RawMambaError(f"layout {layout!r} for {path} does not fit {meta.raw_channels}-channel RAW; "
                            f"layouts: {LAYOUTS}")
    if srgb_bits not in _SRGB_DTYPES:
        raise RawMambaError(f"srgb_bits must be 8 or 16, got {srgb_bits}")
    h, w = meta.size
    header = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "kind": meta.kind, "height": h, "width": w,
              "layout": layout, "raw_channels": meta.raw_channels, "num_samples": meta.num_samples,
              "rate": meta.rate, "raw_bits": 16, "srgb_bits": srgb_bits, "info": info}
    try:
        header_text = json.dumps(header)
    except (TypeError, ValueError) as err:
        raise RawMambaError(f"metadata info for {path} must be JSON-serialisable: {err}") from err
    srgb_dtype = _SRGB_DTYPES[srgb_bits]
    if meta.mask is None:
        arrays = {"raw": _quantise(meta.raw, np.uint16), "srgb": _quantise(meta.srgb, srgb_dtype)}
    else:
        ys, xs = torch.nonzero(meta.mask[0] > 0, as_tuple=True)  # raster order
        arrays = {"yx": torch.stack([ys, xs]).numpy().astype(np.int32),
                  "raw": _quantise(meta.raw[:, ys, xs], np.uint16),
                  "srgb": _quantise(meta.srgb[:, ys, xs], srgb_dtype)}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez_compressed(f, header=np.array(header_text), **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def _read(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    """Header and arrays of a metadata file, checked for format and version."""
    if not path.is_file():
        raise RawMambaError(f"metadata file {path} does not exist")
    try:
        with open(path, "rb") as f:  # our own handle: np.load leaks its own when the zip directory is broken
            loaded = np.load(f, allow_pickle=False)
            if not isinstance(loaded, np.lib.npyio.NpzFile):
                raise RawMambaError(f"{path} is not a rawmamba metadata file (a .npy array, not an .npz archive)")
            with loaded as archive:
                arrays = {k: archive[k] for k in archive.files}
        header = json.loads(str(arrays.pop("header")))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        raise RawMambaError(f"{path} is not a readable rawmamba metadata file ({type(err).__name__}: {err})") from err
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise RawMambaError(f"{path} is not a rawmamba metadata file (no '{FORMAT_NAME}' header)")
    if header.get("version") != FORMAT_VERSION:
        raise RawMambaError(f"{path} has metadata format version {header.get('version')!r}; this rawmamba reads "
                            f"version {FORMAT_VERSION}")
    return header, arrays


def read_metadata_info(path: str | os.PathLike) -> dict:
    """The header of a metadata file (kind, size, layout, rate, the caller's ``info``) without decoding it."""
    return _read(Path(path))[0]


def _expect(path: Path, arrays: dict[str, np.ndarray], name: str, dtype: type, shape: tuple[int, ...]) -> np.ndarray:
    a = arrays.get(name)
    if a is None or a.dtype != dtype or a.shape != shape:
        got = "missing" if a is None else f"{a.dtype} {a.shape}"
        raise RawMambaError(f"{path} is corrupt: member {name!r} should be {np.dtype(dtype)} {shape}, got {got}")
    return a


def load_metadata(path: str | os.PathLike, expect_size: tuple[int, int] | None = None,
                  expect_channels: int | None = None) -> Metadata:
    """Read a metadata file back into a dense ``Metadata`` (``srgb (3, H, W)``, ``raw (C, H, W)``, mask).

    Args:
        path: the ``.npz`` written by ``save_metadata``.
        expect_size: ``(H, W)`` the metadata must have (the size of the image it is used with, halved for
            packed RAW); None skips the check.
        expect_channels: RAW channels the caller needs (3 or 4); None skips the check.

    Returns:
        float32 ``Metadata`` with values ``k / 65535`` (RAW) and ``k / 255`` (8-bit sRGB).
    """
    path = Path(path)
    header, arrays = _read(path)
    try:
        kind, h, w = header["kind"], int(header["height"]), int(header["width"])
        channels, srgb_bits = int(header["raw_channels"]), int(header["srgb_bits"])
    except (KeyError, TypeError, ValueError) as err:
        raise RawMambaError(f"{path} is corrupt: incomplete header ({err})") from err
    if expect_size is not None and (h, w) != tuple(expect_size):
        raise RawMambaError(f"{path} holds metadata for a {h}x{w} image, but the image is "
                            f"{expect_size[0]}x{expect_size[1]}")
    if expect_channels is not None and channels != expect_channels:
        raise RawMambaError(f"{path} holds {channels}-channel RAW metadata ({header.get('layout')}), but "
                            f"{expect_channels} channels are expected")
    if kind not in ("sampled", "frame") or channels not in (3, 4) or srgb_bits not in _SRGB_DTYPES or h < 1 or w < 1:
        raise RawMambaError(f"{path} is corrupt: bad header values {header}")
    srgb_dtype = _SRGB_DTYPES[srgb_bits]
    srgb_peak = float(np.iinfo(srgb_dtype).max)

    def levels(a: np.ndarray, peak: float) -> torch.Tensor:  # k / peak, correctly rounded to float32
        return torch.from_numpy((a.astype(np.float64) / peak).astype(np.float32))

    if kind == "frame":
        raw = _expect(path, arrays, "raw", np.uint16, (channels, h, w))
        srgb = _expect(path, arrays, "srgb", srgb_dtype, (3, h, w))
        return Metadata(levels(srgb, srgb_peak), levels(raw, _RAW_PEAK), check_values=False)
    yx = arrays.get("yx")
    n = -1 if yx is None or yx.ndim != 2 else yx.shape[1]
    yx = _expect(path, arrays, "yx", np.int32, (2, max(n, 0)))
    raw = _expect(path, arrays, "raw", np.uint16, (channels, n))
    srgb = _expect(path, arrays, "srgb", srgb_dtype, (3, n))
    ys, xs = torch.from_numpy(yx[0].astype(np.int64)), torch.from_numpy(yx[1].astype(np.int64))
    if n == 0 or ys.min() < 0 or xs.min() < 0 or ys.max() >= h or xs.max() >= w:
        raise RawMambaError(f"{path} is corrupt: no samples or sample positions outside the {h}x{w} image")
    mask = torch.zeros(1, h, w)
    mask[0, ys, xs] = 1.0
    if int(mask.sum()) != n:
        raise RawMambaError(f"{path} is corrupt: repeated sample positions")
    dense_raw = torch.zeros(channels, h, w)
    dense_raw[:, ys, xs] = levels(raw, _RAW_PEAK)
    dense_srgb = torch.zeros(3, h, w)
    dense_srgb[:, ys, xs] = levels(srgb, srgb_peak)
    return Metadata(dense_srgb, dense_raw, mask, check_values=False)
