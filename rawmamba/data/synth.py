"""Synthetic (sRGB, RAW) image pairs and videos that need nothing downloaded, and writing them to disk.

Content: a procedural dead-leaves scene (``scenes.dead_leaves``, already linear raw-RGB) or, with
probability ``photo_prob``, a crop of a photo bundled with scikit-image, turned into raw-RGB with
``rawmamba.isp.unprocess_photo``. Every pair is rendered through ``rawmamba.isp.render`` with a camera
profile (a named one from ``rawmamba.isp.CAMERAS``, or ``random_camera`` for each item); the RAW
ground truth is the clean linear raw-RGB (no sensor noise: the ISP renders the same raw, so the pair
is exactly consistent). Videos: a camera moving (translation, zoom) over such content with moving
objects (``motion.render_motion``), every frame rendered with one shot (white balance and exposure
fixed for the clip), with exact backward flow to the first frame. An item is a pure function of
``(seed, index)``.

``synthesize(out, kind, count, ...)`` writes them: images in the CAM layout
(``<out>/<camera>/<split>/{sRGB,raw}/<name>.png``), videos in the RVD-Part2 layout
(``<out>/Part2/<split>/{data.json, RAW, sRGB, flow}``, the mosaic RGGB in 14 bits), plus
``<out>/synth.json`` recording the arguments and each item's camera and source.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from rawmamba.data.io import write_json
from rawmamba.data.motion import render_motion
from rawmamba.data.scenes import dead_leaves, random_photo_crop
from rawmamba.data.writers import (
    cam_pair_paths,
    check_free,
    rvd_video_paths,
    write_cam_pair,
    write_rvd_frame,
    write_rvd_index,
)
from rawmamba.errors import RawMambaError
from rawmamba.isp import CFA, Camera, get_camera, mosaic, plain_look, random_camera, render, unprocess_photo

__all__ = ["SynthImage", "SynthVideo", "synth_image", "synth_video", "synthesize", "KINDS"]

KINDS = ("image", "video")
_KIND_STREAM = {"image": 0, "video": 1}


@dataclass(frozen=True)
class SynthImage:
    """A synthetic pair: ``srgb``, ``raw`` ``(3, H, W)`` in [0, 1] (sRGB 8-bit levels; raw linear raw-RGB)."""

    srgb: torch.Tensor
    raw: torch.Tensor
    camera: str
    source: str  # "dead_leaves" or "photo:<name>"


@dataclass(frozen=True)
class SynthVideo:
    """A synthetic video at full resolution: ``srgb (T, 3, H, W)``, linear raw-RGB ``raw (T, 3, H, W)``,
    backward ``flow (T, 2, H, W)`` to frame 0 in pixels."""

    srgb: torch.Tensor
    raw: torch.Tensor
    flow: torch.Tensor
    camera: str
    source: str


def _generators(seed: int, index: int, kind: str) -> tuple[np.random.Generator, torch.Generator]:
    np_rng = np.random.default_rng([int(seed), _KIND_STREAM[kind], int(index)])
    torch_rng = torch.Generator().manual_seed(int(np_rng.integers(2**62)))
    return np_rng, torch_rng


def _camera(camera: str | Camera, rng: torch.Generator, plain_prob: float) -> Camera:
    if isinstance(camera, Camera):
        cam = camera
    else:
        cam = random_camera(rng) if camera == "random" else get_camera(camera)
    if plain_prob > 0 and float(torch.rand((), generator=rng)) < plain_prob:  # no draw when 0: streams unchanged
        cam = plain_look(cam)
    return cam


def _content(height: int, width: int, np_rng: np.random.Generator, torch_rng: torch.Generator, camera: Camera,
             photo_prob: float) -> tuple[np.ndarray, object, str]:
    """Linear raw-RGB content ``(H, W, 3)``, the shot to render it with, and its source.

    Dead-leaves colours are reflectances; they are lit by the shot's illuminant, i.e. multiplied by the
    camera's response to it (the inverse of the shot's white-balance gains, normalised to a maximum of 1),
    so that grey surfaces render grey.
    """
    if np_rng.uniform() < photo_prob:
        name, photo = random_photo_crop(height, width, np_rng)
        raw, shot = unprocess_photo(torch.from_numpy(photo).permute(2, 0, 1), camera, torch_rng, return_shot=True)
        return raw.permute(1, 2, 0).numpy(), shot, f"photo:{name}"
    shot = camera.draw_shot(torch_rng)
    light = 1.0 / np.asarray(shot.wb_gains, dtype=np.float32)
    return dead_leaves(height, width, np_rng) * (light / light.max()), shot, "dead_leaves"


def synth_image(seed: int, index: int, *, height: int = 256, width: int = 384, camera: str | Camera = "random",
                photo_prob: float = 0.5, jpeg: bool = False, plain_prob: float = 0.0) -> SynthImage:
    """Synthetic image pair number ``index`` of the stream ``seed``.

    Args:
        seed, index: the pair is a pure function of these.
        height, width: size in pixels.
        camera: a camera profile, a name for ``rawmamba.isp.get_camera``, or ``"random"``
            (``random_camera`` per item).
        photo_prob: probability of unprocessed bundled-photo content instead of a dead-leaves scene.
        jpeg: add a JPEG round trip at the camera's quality to the rendering.
        plain_prob: probability of rendering with the camera's ``plain_look`` (a plain raw converter's
            global rendering) instead of its full look.
    """
    np_rng, torch_rng = _generators(seed, index, "image")
    cam = _camera(camera, torch_rng, plain_prob)
    raw, shot, source = _content(height, width, np_rng, torch_rng, cam, photo_prob)
    raw_t = torch.from_numpy(np.ascontiguousarray(raw)).permute(2, 0, 1).float().clamp(0, 1)
    srgb = render(raw_t, cam, torch_rng, shot=shot, jpeg=jpeg)
    return SynthImage(srgb=srgb, raw=raw_t, camera=cam.name, source=source)


def synth_video(seed: int, index: int, *, height: int = 256, width: int = 448, frames: int = 8,
                camera: str | Camera = "random", photo_prob: float = 0.5, plain_prob: float = 0.0) -> SynthVideo:
    """Synthetic video number ``index`` of the stream ``seed`` (arguments as for ``synth_image``).

    The background canvas is a dead-leaves scene or an unprocessed photo; sprites are dead-leaves patches.
    """
    np_rng, torch_rng = _generators(seed, index, "video")
    cam = _camera(camera, torch_rng, plain_prob)
    found: dict = {}

    def background(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
        content, found["shot"], found["source"] = _content(h, w, rng, torch_rng, cam, photo_prob)
        return content

    video, flow = render_motion(height, width, frames, np_rng, background=background)
    raw = torch.from_numpy(video).permute(0, 3, 1, 2).contiguous()
    srgb = render(raw, cam, torch_rng, shot=found["shot"])  # one batch: one shot for the whole clip
    return SynthVideo(srgb=srgb, raw=raw, flow=torch.from_numpy(flow).permute(0, 3, 1, 2).contiguous(),
                      camera=cam.name, source=found["source"])


def _folder_name(camera: str | Camera) -> str:
    name = camera.name if isinstance(camera, Camera) else camera
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


def synthesize(out: str | Path, kind: str, count: int, *, height: int | None = None, width: int | None = None,
               frames: int = 8, seed: int = 0, camera: str = "random", split: str = "train",
               photo_prob: float = 0.5, force: bool = False, progress: bool = True) -> list[Path]:
    """Write ``count`` synthetic image pairs (CAM layout) or videos (RVD-Part2 layout) under ``out``.

    Args:
        out: output folder (created).
        kind: ``"image"`` or ``"video"``.
        count: number of pairs or videos.
        height, width: full-resolution size (default 256x384 images, 256x448 videos; even for videos).
        frames: frames per video.
        seed: the data are a pure function of ``seed`` (and the other arguments).
        camera: camera profile name or ``"random"``; images go to ``<out>/<camera>/<split>/``.
        split: split folder name.
        photo_prob: probability of bundled-photo content per item.
        force: overwrite existing files; otherwise any existing target raises ``RawMambaError`` before
            anything is written.
        progress: show a tqdm progress bar.

    Returns:
        Every file written.
    """
    if kind not in KINDS:
        raise RawMambaError(f"kind must be one of {KINDS}, got {kind!r}")
    if count < 1:
        raise RawMambaError(f"count must be at least 1, got {count}")
    height = height or 256
    width = width or (448 if kind == "video" else 384)
    if height < 16 or width < 16 or (kind == "video" and (height % 2 or width % 2)):
        raise RawMambaError(f"size {height}x{width} must be at least 16x16 (and even for videos)")
    if kind == "video" and frames < 1:
        raise RawMambaError(f"frames must be at least 1, got {frames}")
    if camera != "random":
        get_camera(camera)  # an unknown name fails before anything is written
    out = Path(out)
    names = [f"{'video' if kind == 'video' else 'image'}_{i:04d}" for i in range(count)]
    frame_ids = [f"{t:05d}" for t in range(frames)]
    split_dir = out / "Part2" / split
    if kind == "image":
        planned = [p for name in names for p in cam_pair_paths(out, _folder_name(camera), split, name)]
    else:
        planned = [p for name in names for p in rvd_video_paths(split_dir, name, frame_ids, flow=True)]
        planned.append(split_dir / "data.json")
    planned.append(out / "synth.json")
    check_free(planned, force=force)

    records = []
    for i, name in enumerate(tqdm(names, desc=f"synth {kind}", unit=kind, disable=not progress)):
        if kind == "image":
            item = synth_image(seed, i, height=height, width=width, camera=camera, photo_prob=photo_prob)
            write_cam_pair(*cam_pair_paths(out, _folder_name(camera), split, name), item.srgb, item.raw)
        else:
            item = synth_video(seed, i, height=height, width=width, frames=frames, camera=camera,
                               photo_prob=photo_prob)
            mosaics = mosaic(item.raw, CFA.RGGB)
            for t, frame in enumerate(frame_ids):
                write_rvd_frame(split_dir, name, frame, item.srgb[t], mosaics[t], item.flow[t])
        records.append({"name": name, "camera": item.camera, "source": item.source})
    if kind == "video":
        write_rvd_index(split_dir, [(name, frame_ids) for name in names])
    write_json(out / "synth.json", {
        "kind": kind, "count": count, "height": height, "width": width, "frames": frames if kind == "video" else 1,
        "seed": seed, "camera": camera, "split": split, "photo_prob": photo_prob, "items": records,
    })
    return planned
