"""Reading and writing the image, array and JSON files of the dataset layouts.

Reading: ``read_image`` returns the stored integers (``uint8`` or ``uint16``) channels-last, RGB order,
and raises ``RawMambaError`` naming the file for anything it cannot decode; ``to_float`` divides by
a chosen maximum (the dtype's by default) and moves channels first.

Writing: every writer puts the bytes in a hidden temporary file in the destination folder and then
renames it over the destination (``os.replace``), so an interrupted run never leaves a half-written
file under a final name. PNG and TIFF keep 8 or 16 bits exactly.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
import tifffile
import torch

from rawmamba.errors import RawMambaError

__all__ = [
    "IMAGE_SUFFIXES",
    "read_image",
    "to_float",
    "to_landscape",
    "read_json",
    "read_npy",
    "write_image",
    "write_npy",
    "write_json",
    "atomic_path",
]

IMAGE_SUFFIXES = (".png", ".tif", ".tiff")
_TIFF = (".tif", ".tiff")


def read_image(path: str | Path) -> np.ndarray:
    """Decode a PNG or TIFF file to ``(H, W)`` or ``(H, W, C)`` integers, colour in RGB order.

    Returns the stored ``uint8``/``uint16`` values unchanged. An alpha channel is dropped.
    Raises ``RawMambaError`` naming ``path`` if it is missing, unreadable or not 8/16-bit.
    """
    path = Path(path)
    if not path.is_file():
        raise RawMambaError(f"image file {path} does not exist")
    try:
        if path.suffix.lower() in _TIFF:
            image = tifffile.imread(path)
        else:
            image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            if image is not None and image.ndim == 3:
                image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGB if image.shape[2] == 4 else cv2.COLOR_BGR2RGB)
    except Exception as exc:  # tifffile raises many exception types for broken files
        raise RawMambaError(f"cannot decode image file {path}: {exc}") from exc
    if image is None or image.size == 0:
        raise RawMambaError(f"cannot decode image file {path} (corrupt or not an image)")
    if image.ndim == 3 and image.shape[2] == 4:
        image = image[..., :3]
    if image.dtype not in (np.uint8, np.uint16) or image.ndim not in (2, 3):
        raise RawMambaError(
            f"image file {path} holds {image.dtype} data of shape {image.shape}; expected 8- or 16-bit (H, W[, C])"
        )
    return np.ascontiguousarray(image)


def to_float(image: np.ndarray, *, max_value: float | None = None) -> torch.Tensor:
    """Integers ``(H, W[, C])`` to a float32 tensor ``(C, H, W)``: ``image / max_value``.

    Args:
        image: ``uint8`` or ``uint16`` array, channels last.
        max_value: the divisor; ``None`` uses the dtype's maximum (255 or 65535), so 8-bit PNGs and
            16-bit TIFFs of the same picture land on the same [0, 1] scale.
    """
    divisor = float(np.iinfo(image.dtype).max) if max_value is None else float(max_value)
    tensor = torch.from_numpy(image.astype(np.float32) / divisor)
    return tensor[None] if tensor.ndim == 2 else tensor.permute(2, 0, 1).contiguous()


def to_landscape(image: torch.Tensor) -> torch.Tensor:
    """Rotate a portrait ``(*, C, H, W)`` image (H > W) by 90 degrees counter-clockwise; landscape unchanged."""
    return torch.rot90(image, 1, dims=(-2, -1)) if image.shape[-2] > image.shape[-1] else image


def read_json(path: str | Path) -> object:
    """Parse a JSON file; a missing or malformed file raises ``RawMambaError`` naming it."""
    path = Path(path)
    if not path.is_file():
        raise RawMambaError(f"JSON file {path} does not exist")
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RawMambaError(f"cannot parse JSON file {path}: {exc}") from exc


def read_npy(path: str | Path) -> np.ndarray:
    """Load a ``.npy`` array (no pickles); a missing or broken file raises ``RawMambaError`` naming it."""
    path = Path(path)
    if not path.is_file():
        raise RawMambaError(f"array file {path} does not exist")
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise RawMambaError(f"cannot read array file {path}: {exc}") from exc


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same suffix); rename it to ``path`` if the block succeeds.

    The parent folder is created. On an exception the temporary file is removed and ``path`` untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _write(path: str | Path, writer: Callable[[Path], None]) -> None:
    with atomic_path(path) as tmp:
        writer(tmp)


def write_image(path: str | Path, image: np.ndarray) -> None:
    """Write ``uint8``/``uint16`` ``(H, W)`` or ``(H, W, 3)`` RGB integers losslessly to PNG or TIFF, atomically."""
    path = Path(path)
    if image.dtype not in (np.uint8, np.uint16) or not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)):
        raise RawMambaError(f"cannot write {image.dtype} array of shape {image.shape} to {path}")
    suffix = path.suffix.lower()
    if suffix in _TIFF:
        _write(path, lambda tmp: tifffile.imwrite(tmp, image, photometric="rgb" if image.ndim == 3 else None))
    elif suffix == ".png":
        bgr = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2BGR)

        def _png(tmp: Path) -> None:
            if not cv2.imwrite(str(tmp), bgr):
                raise RawMambaError(f"cannot write image file {path}")

        _write(path, _png)
    else:
        raise RawMambaError(f"image file {path} must end in one of {IMAGE_SUFFIXES}")


def write_npy(path: str | Path, array: np.ndarray) -> None:
    """Write a ``.npy`` array atomically."""
    def _npy(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.save(handle, array, allow_pickle=False)

    _write(path, _npy)


def write_json(path: str | Path, data: object) -> None:
    """Write JSON (indented) atomically."""
    _write(path, lambda tmp: tmp.write_text(json.dumps(data, indent=1) + "\n"))
