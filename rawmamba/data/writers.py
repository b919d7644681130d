"""Writing image pairs and videos in the CAM and RVD-Part2 layouts read by ``CamDataset`` and ``RVDDataset``.

Values are quantised by rounding: sRGB to 8 bits (``round(x * 255)``), CAM raw-RGB to 16 bits
(``round(x * 65535)``), RVD mosaics to 14 bits in uint16 (``round(x * 16383)``), so a reader gets back
the written values within half a quantisation step. Every file is written atomically (``rawmamba.data.io``).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch

from rawmamba.data.io import write_image, write_json, write_npy
from rawmamba.data.rvd import RVD_WHITE_LEVEL, rvd_frame_paths
from rawmamba.errors import RawMambaError

__all__ = [
    "quantize",
    "cam_pair_paths",
    "write_cam_pair",
    "rvd_video_paths",
    "write_rvd_frame",
    "write_rvd_index",
    "check_free",
]


def quantize(x: torch.Tensor, max_value: int, dtype: type = np.uint16) -> np.ndarray:
    """``(C, H, W)`` (or ``(1, H, W)``) floats in [0, 1] to channels-last integers ``round(clip(x) * max_value)``;
    a single channel gives ``(H, W)``."""
    array = np.rint(x.detach().to(torch.float64).clamp(0, 1).cpu().numpy() * max_value).astype(dtype)
    return array[0] if array.shape[0] == 1 else np.ascontiguousarray(array.transpose(1, 2, 0))


def cam_pair_paths(root: str | Path, camera: str, split: str, name: str) -> tuple[Path, Path]:
    """``(srgb, raw)`` paths of one CAM-layout pair: ``<root>/<camera>/<split>/{sRGB,raw}/<name>.png``."""
    base = Path(root) / camera / split
    return base / "sRGB" / f"{name}.png", base / "raw" / f"{name}.png"


def write_cam_pair(srgb_path: Path, raw_path: Path, srgb: torch.Tensor, raw: torch.Tensor) -> None:
    """Write a ``(3, H, W)`` sRGB as 8-bit PNG and a ``(3, H, W)`` raw-RGB as 16-bit PNG."""
    if srgb.shape != raw.shape or srgb.shape[0] != 3:
        raise RawMambaError(f"CAM pairs need (3, H, W) sRGB and RAW of one size, got {tuple(srgb.shape)}, "
                            f"{tuple(raw.shape)}")
    write_image(raw_path, quantize(raw, 65535, np.uint16))
    write_image(srgb_path, quantize(srgb, 255, np.uint8))


def rvd_video_paths(split_dir: Path, video: str, frame_ids: Iterable[str], *, flow: bool) -> list[Path]:
    """Every file one RVD-layout video writes (RAW, sRGB and, with ``flow``, flow per frame)."""
    paths = []
    for frame in frame_ids:
        raw, srgb, flow_path = rvd_frame_paths(split_dir, video, frame)
        paths += [raw, srgb] + ([flow_path] if flow else [])
    return paths


def write_rvd_frame(split_dir: Path, video: str, frame: str, srgb: torch.Tensor, mosaic: torch.Tensor,
                    flow: torch.Tensor | None = None, *, white_level: int = RVD_WHITE_LEVEL) -> None:
    """Write one full-resolution RVD frame.

    Args:
        srgb: ``(3, H, W)`` sRGB in [0, 1] -> 8-bit PNG.
        mosaic: ``(1, H, W)`` Bayer mosaic in [0, 1] -> uint16 TIFF of ``round(x * white_level)``.
        flow: optional ``(2, H, W)`` backward flow to the video's first frame, full-resolution pixels ->
            ``(H, W, 2)`` float32 ``.npy``.
    """
    if mosaic.shape[0] != 1 or srgb.shape[0] != 3 or mosaic.shape[-2:] != srgb.shape[-2:]:
        raise RawMambaError(f"RVD frames need (3, H, W) sRGB and a (1, H, W) mosaic, got {tuple(srgb.shape)}, "
                            f"{tuple(mosaic.shape)}")
    raw_path, srgb_path, flow_path = rvd_frame_paths(split_dir, video, frame)
    write_image(raw_path, quantize(mosaic, white_level, np.uint16))
    write_image(srgb_path, quantize(srgb, 255, np.uint8))
    if flow is not None:
        write_npy(flow_path, flow.detach().to(torch.float32).cpu().numpy().transpose(1, 2, 0).copy())


def write_rvd_index(split_dir: Path, videos: Iterable[tuple[str, Iterable[str]]]) -> None:
    """Write ``data.json``: ``[{"video_name": name, "frames": [id, ...]}, ...]``."""
    write_json(Path(split_dir) / "data.json", [{"video_name": v, "frames": list(f)} for v, f in videos])


def check_free(paths: Iterable[Path], *, force: bool) -> None:
    """Refuse (``RawMambaError`` naming the first one) if any of ``paths`` exists, unless ``force``."""
    if force:
        return
    existing = [p for p in paths if p.exists()]
    if existing:
        raise RawMambaError(f"{existing[0]} already exists ({len(existing)} of the files to write do); "
                            "use --force to overwrite")
