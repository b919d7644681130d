"""Inference beyond one forward pass: tiled de-rendering of large images and streamed video.

Tiling (``derender_tiled``): a large image is cut into ``tile x tile`` windows that overlap by at least
``overlap`` pixels; every window is de-rendered on its own (sampled metadata cropped to the window, so
each tile sees exactly its own RAW samples; dense first-frame metadata cropped the same way) and the
windows are blended with feathered weights. Along an edge shared with a neighbour a tile's weight is
0 for the first ``margin`` pixels (where its own zero/mirror padding disturbs a convolutional network),
then ramps up linearly or with a raised cosine over the rest of the overlap to 1; at the image border
the weight stays 1. Weights are divided out (``sum w * out / sum w``), so a constant output stays exactly
constant and no seam appears. For a network whose receptive field reaches at most ``margin`` pixels,
tiled and untiled outputs agree to float rounding. RAWMamba's global scans and global prior see the
whole input, so for it tiling is an approximation that trades a little quality for bounded memory.

Memory: the network's activations are bounded by the tile; the whole-image buffers are the input, the
weighted sum and the weights, about ``(3 + C_raw + 1) * 4`` bytes per pixel and frame in float32. A
24-megapixel image with ``tile=512`` therefore needs about 670 MB besides the model (not tested here;
the tests use small images).

Video streaming (``derender_stream``): frames come from any iterable (a folder of images, a video file
through OpenCV, a dataset) and are de-rendered ``window`` frames at a time, every window with the same
first-frame metadata; each window's predictions are yielded frame by frame before the next window is
read, so memory is bounded by one window whatever the video length.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from rawmamba.baselines.base import DerenderMethod
from rawmamba.cli_choices import BLENDS
from rawmamba.data.io import read_image, to_float
from rawmamba.errors import RawMambaError
from rawmamba.metadata import Metadata

__all__ = [
    "BLENDS",
    "FRAME_SUFFIXES",
    "as_method",
    "derender_stream",
    "derender_tiled",
    "feather_weights",
    "iter_frames",
    "precision_context",
    "resolve_device",
    "tile_starts",
]

FRAME_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp")
PRECISIONS = ("fp32", "bf16")


def resolve_device(device: str) -> torch.device:
    """``"cpu"`` or ``"cuda"`` (``"cuda:N"``) as a ``torch.device``; a clear error when CUDA is missing."""
    try:
        resolved = torch.device(device)
    except RuntimeError as err:
        raise RawMambaError(f"--device {device!r} is not a device name (cpu, cuda, cuda:N)") from err
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise RawMambaError(f"--device {device}: CUDA is not available on this machine; use --device cpu")
    if resolved.type not in ("cpu", "cuda"):
        raise RawMambaError(f"--device must be cpu or cuda, got {device!r}")
    return resolved


def precision_context(device: torch.device, precision: str = "fp32") -> AbstractContextManager:
    """``fp32`` (no autocast) or ``bf16`` (``torch.autocast`` in bfloat16, meant for GPUs; outputs stay float32)."""
    if precision not in PRECISIONS:
        raise RawMambaError(f"--precision must be one of {PRECISIONS}, got {precision!r}")
    return torch.autocast(device.type, dtype=torch.bfloat16) if precision == "bf16" else nullcontext()


def as_method(method_or_model: DerenderMethod | torch.nn.Module) -> DerenderMethod:
    """A ``DerenderMethod`` as is; a network with the ``RAWMamba.forward`` signature wrapped in ``NetworkMethod``
    on the device of its parameters."""
    if isinstance(method_or_model, DerenderMethod):
        return method_or_model
    if isinstance(method_or_model, torch.nn.Module):
        from rawmamba.inference import NetworkMethod

        parameter = next(method_or_model.parameters(), None)
        return NetworkMethod(method_or_model, device=parameter.device if parameter is not None else "cpu")
    raise RawMambaError(f"expected a DerenderMethod or a torch.nn.Module, got {type(method_or_model).__name__}")


def tile_starts(size: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of windows of ``tile`` pixels covering ``[0, size)`` with overlaps of at least ``overlap``.

    Windows step by ``tile - overlap``; the last one is moved back to end at ``size`` (its overlap with
    the one before then grows). ``size <= tile`` gives the single window ``[0]``.
    """
    if tile < 1 or not 0 <= overlap < tile:
        raise RawMambaError(f"tile must be positive and 0 <= overlap < tile, got tile={tile}, overlap={overlap}")
    if size <= tile:
        return [0]
    step = tile - overlap
    count = math.ceil((size - tile) / step) + 1
    return [min(i * step, size - tile) for i in range(count)]


def _ramp(length: int, overlap: int, margin: int, blend: str, before: bool, after: bool) -> torch.Tensor:
    """1-D weights of one window: 1 inside, feathered within ``overlap`` of each side shared with a neighbour."""
    distance = torch.arange(length, dtype=torch.float64)
    weight = torch.ones(length, dtype=torch.float64)
    span = max(overlap - 2 * margin, 1)
    for shared, d in ((before, distance), (after, length - 1 - distance)):
        if shared:
            x = ((d + 0.5 - margin) / span).clamp(0, 1)  # 0 inside the margin, 1 beyond the ramp
            weight = weight * (x if blend == "linear" else 0.5 - 0.5 * torch.cos(math.pi * x))
    return weight


def feather_weights(height: int, width: int, *, top: bool, bottom: bool, left: bool, right: bool, overlap: int,
                    margin: int, blend: str = "cosine") -> torch.Tensor:
    """``(height, width)`` float64 blending weights of one tile, in [0, 1].

    Args:
        top, bottom, left, right: whether that side is shared with a neighbouring tile (feathered) or lies
            on the image border (weight 1 up to the edge).
        overlap: the smallest overlap between neighbouring tiles; the ramp fits inside it.
        margin: pixels next to a shared side with weight 0 (then the ramp runs over ``overlap - 2 * margin``).
        blend: ``"linear"`` or ``"cosine"`` (raised cosine: smooth at both ends of the ramp).
    """
    if blend not in BLENDS:
        raise RawMambaError(f"blend must be one of {BLENDS}, got {blend!r}")
    return _ramp(height, overlap, margin, blend, top, bottom)[:, None] * _ramp(width, overlap, margin, blend, left,
                                                                            right)[None, :]


def _crop_metadata(metadata: Metadata, y: slice, x: slice) -> Metadata:
    mask = None if metadata.mask is None else metadata.mask[..., y, x]
    return Metadata(metadata.srgb[..., y, x], metadata.raw[..., y, x], mask, check_values=False)


def derender_tiled(method_or_model: DerenderMethod | torch.nn.Module, srgb: torch.Tensor, metadata: Metadata,
                   tile: int = 512, overlap: int = 64, *, margin: int | None = None, blend: str = "cosine",
                   progress: bool = False) -> torch.Tensor:
    """De-render ``srgb (T, 3, H, W)`` tile by tile and blend the tiles; returns ``(T, C_raw, H, W)`` float32 on CPU.

    Args:
        method_or_model: a ``DerenderMethod`` or a network with the ``RAWMamba.forward`` signature.
        srgb: ``(T, 3, H, W)`` sRGB frames in [0, 1] (an image is ``T = 1``).
        metadata: ``Metadata`` of size ``(H, W)``; each tile gets its crop (sampled or dense).
        tile: tile side in pixels; ``tile <= 0`` or an image no larger than one tile runs in one call.
        overlap: minimum overlap between neighbouring tiles, ``0 <= overlap < tile``.
        margin: zero-weight pixels along shared tile edges (default ``overlap // 4``); make it at least the
            reach of the network's border effects.
        blend: ramp shape, ``"cosine"`` (default) or ``"linear"``.
        progress: show a tqdm bar over tiles.
    """
    method = as_method(method_or_model)
    if srgb.dim() != 4 or srgb.shape[1] != 3:
        raise RawMambaError(f"srgb must be (T, 3, H, W), got {tuple(srgb.shape)}")
    height, width = srgb.shape[-2:]
    if metadata.size != (height, width):
        raise RawMambaError(f"metadata is for {metadata.size} images, the sRGB is {(height, width)}")
    if tile <= 0 or (height <= tile and width <= tile):
        return method.derender(srgb, metadata).float().cpu()
    margin = overlap // 4 if margin is None else margin
    if not 0 <= 2 * margin < max(overlap, 1):
        raise RawMambaError(f"tile margin must satisfy 0 <= 2 * margin < overlap, got margin={margin}, "
                            f"overlap={overlap}")
    ys, xs = tile_starts(height, tile, overlap), tile_starts(width, tile, overlap)
    total = torch.zeros(srgb.shape[0], metadata.raw_channels, height, width, dtype=torch.float64)
    weights = torch.zeros(height, width, dtype=torch.float64)
    bar = tqdm(total=len(ys) * len(xs), desc="tiles", disable=not progress, leave=False, dynamic_ncols=True)
    for y0 in ys:
        y = slice(y0, min(y0 + tile, height))
        for x0 in xs:
            x = slice(x0, min(x0 + tile, width))
            part = _crop_metadata(metadata, y, x)
            if part.mask is not None and not part.mask.any():
                raise RawMambaError(f"tile at ({y0}, {x0}) holds no metadata sample; use a larger --tile")
            out = method.derender(srgb[..., y, x], part).to("cpu", torch.float64)
            w = feather_weights(y.stop - y.start, x.stop - x.start, top=y0 > 0, bottom=y.stop < height,
                                left=x0 > 0, right=x.stop < width, overlap=overlap, margin=margin, blend=blend)
            total[..., y, x] += out * w
            weights[y, x] += w
            bar.update()
    bar.close()
    return (total / weights).float()


def derender_stream(method_or_model: DerenderMethod | torch.nn.Module, frames: Iterable[torch.Tensor],
                    metadata: Metadata, *, window: int = 5, tile: int = 0, overlap: int = 64,
                    blend: str = "cosine") -> Iterator[torch.Tensor]:
    """Yield ``(C_raw, H, W)`` RAW frame by frame for an iterable of ``(3, H, W)`` sRGB frames.

    Frames are grouped into windows of ``window`` consecutive frames (the last may be shorter); each
    window is one ``derender`` call with the same ``metadata`` (the first frame's pair), tiled when
    ``tile > 0``. Only one window of frames is held at a time.
    """
    if window < 1:
        raise RawMambaError(f"--window must be at least 1 frame, got {window}")
    method = as_method(method_or_model)
    batch: list[torch.Tensor] = []

    def flush() -> Iterator[torch.Tensor]:
        clip = torch.stack(batch)
        batch.clear()
        yield from derender_tiled(method, clip, metadata, tile, overlap, blend=blend)

    for frame in frames:
        batch.append(frame)
        if len(batch) == window:
            yield from flush()
    if batch:
        yield from flush()


def _video_frames(path: Path) -> Iterator[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise RawMambaError(f"cannot open video file {path} with OpenCV")
    try:
        count = 0
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            count += 1
            yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        if count == 0:
            raise RawMambaError(f"video file {path} holds no readable frame")
    finally:
        capture.release()


def frame_names(source: str | Path) -> list[str] | None:
    """Sorted frame file names of a folder source (None for a video file)."""
    source = Path(source)
    if not source.is_dir():
        return None
    names = sorted(p.name for p in source.iterdir()
                   if p.is_file() and p.suffix.lower() in FRAME_SUFFIXES and not p.name.startswith("."))
    if not names:
        raise RawMambaError(f"frame folder {source} holds no images ({', '.join(FRAME_SUFFIXES)})")
    return names


def iter_frames(source: str | Path) -> Iterator[torch.Tensor]:
    """``(3, H, W)`` float sRGB frames in [0, 1] from a folder of images (sorted by name) or a video file.

    Frames are decoded lazily, one at a time; every frame must have the first frame's size.
    """
    source = Path(source)
    if not source.exists():
        raise RawMambaError(f"video input {source} does not exist")
    names = frame_names(source)
    arrays = (read_image(source / n) for n in names) if names is not None else _video_frames(source)
    size = None
    for index, array in enumerate(arrays):
        where = source / names[index] if names is not None else f"{source} frame {index}"
        if array.ndim != 3 or array.shape[2] != 3:
            raise RawMambaError(f"sRGB frame {where} must have 3 colour channels, got shape {array.shape}")
        size = size or array.shape[:2]
        if array.shape[:2] != size:
            raise RawMambaError(f"sRGB frame {where} is {array.shape[:2]}, the first frame is {size}")
        yield to_float(array)
