"""The RVD-Part2 video dataset layout (RVD, Zhang et al. 2024; frames from Real-RawVSR)::

    <root>/Part2/{train,test}/data.json              [{"video_name": str, "frames": [frame_id, ...]}, ...]
    <root>/Part2/<split>/RAW/<video>/<frame>.tiff    single-channel uint16 Bayer mosaic, RGGB
    <root>/Part2/<split>/sRGB/<video>/<frame>.png    8-bit sRGB, same full resolution
    <root>/Part2/<split>/flow/<video>/<frame>_flow.npy   optional (H, W, 2) float flow, full resolution

RAW is packed to 4 channels R, Gr, Gb, B (``[0::2, 0::2]``, ``[0::2, 1::2]``, ``[1::2, 0::2]``,
``[1::2, 1::2]``) and divided by 2**14 - 1 with no black-level subtraction (RVD's convention); the sRGB
is resized bilinearly to the packed half resolution (an exact 2x2 mean); flow is resized the same way
and multiplied by 0.5 so that it is in half-resolution pixels.

Flow files are read as *backward flow from each frame to the first frame of its video* (our
convention, docs/CONVENTIONS.md, and what ``rawmamba data synth`` writes).

Items are clips of ``frames`` consecutive frames (``None``: whole videos). The dense metadata
(``meta_srgb``, ``meta_raw``; no mask) is the first frame of the *video* for evaluation (RVD's
protocol: only the first RAW of each test video is given) or the first frame of the *clip* for
training; ``reference`` chooses, by default ``"video"`` on the test split and ``"clip"`` otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from rawmamba.data.io import read_image, read_json, read_npy, to_float
from rawmamba.data.items import item_generator
from rawmamba.errors import RawMambaError
from rawmamba.isp.cfa import CFA, as_cfa, pack

__all__ = ["RVDDataset", "RVD_WHITE_LEVEL", "find_rvd_split", "rvd_frame_paths"]

RVD_WHITE_LEVEL = 2**14 - 1
_REFERENCES = ("video", "clip")


@dataclass(frozen=True)
class _Clip:
    video: str
    frames: tuple[str, ...]  # frame ids of the clip
    start: int  # index of the clip's first frame in the video
    first_frame: str  # the video's first frame id


def find_rvd_split(root: str | Path, split: str) -> Path:
    """The ``<root>/Part2/<split>`` folder (``root`` may also be the ``Part2`` folder itself).

    Raises ``RawMambaError`` naming the missing ``data.json``.
    """
    root = Path(root)
    for candidate in (root / "Part2" / split, root / split):
        if (candidate / "data.json").is_file():
            return candidate
    raise RawMambaError(f"RVD-Part2 index {root / 'Part2' / split / 'data.json'} does not exist")


def rvd_frame_paths(split_dir: Path, video: str, frame: str) -> tuple[Path, Path, Path]:
    """``(raw, srgb, flow)`` file paths of one frame."""
    return (split_dir / "RAW" / video / f"{frame}.tiff", split_dir / "sRGB" / video / f"{frame}.png",
            split_dir / "flow" / video / f"{frame}_flow.npy")


def _parse_index(path: Path) -> list[tuple[str, tuple[str, ...]]]:
    data = read_json(path)
    videos = []
    if not isinstance(data, list):
        raise RawMambaError(f"{path} must hold a list of {{'video_name', 'frames'}} entries")
    for entry in data:
        if not (isinstance(entry, dict) and isinstance(entry.get("video_name"), str)
                and isinstance(entry.get("frames"), list) and entry["frames"]):
            raise RawMambaError(f"{path}: entry {entry!r} needs a 'video_name' string and a non-empty 'frames' list")
        videos.append((entry["video_name"], tuple(str(f) for f in entry["frames"])))
    if not videos:
        raise RawMambaError(f"{path} lists no videos")
    return videos


class RVDDataset(Dataset):
    """Clips of RVD-Part2 videos (or anything written in its layout).

    Args:
        root: folder holding ``Part2/`` (or the ``Part2`` folder itself).
        split: ``"train"`` or ``"test"``.
        frames: clip length T; ``None`` gives one item per whole video (lengths may then differ: batch 1).
        stride: step between clip starts (default ``frames``: non-overlapping clips); a video shorter
            than ``frames`` raises.
        reference: ``"video"`` (metadata = first frame of the video, evaluation) or ``"clip"`` (first
            frame of the clip, training); ``None`` picks ``"video"`` for ``split == "test"``.
        load_flow: return ``flow (T, 2, h, w)`` from the ``flow/`` files (backward flow to the video's
            first frame, so only with ``reference="video"`` or clips that start at frame 0).
        white_level: RAW divisor (RVD: 2**14 - 1, no black-level subtraction).
        cfa: Bayer pattern of the stored mosaics (RVD: RGGB).
        transform: ``transform(item, rng)`` applied to the whole item, metadata and flow included
            (e.g. ``RandomCropFlip``).
        seed: base seed of the per-item generators passed to ``transform``; ``None``: fresh every access.

    All files are checked to exist when the dataset is built. Item names are ``<video>/<first frame id>``.
    """

    def __init__(self, root: str | Path, split: str = "test", *, frames: int | None = None,
                 stride: int | None = None, reference: str | None = None, load_flow: bool = False,
                 white_level: float = RVD_WHITE_LEVEL, cfa: CFA | str = CFA.RGGB,
                 transform: Callable[[dict, torch.Generator], dict] | None = None, seed: int | None = 0) -> None:
        self.split_dir = find_rvd_split(root, split)
        if frames is not None and frames < 1:
            raise RawMambaError(f"frames must be a positive clip length or None, got {frames}")
        stride = frames if stride is None else stride
        if stride is not None and stride < 1:
            raise RawMambaError(f"stride must be positive, got {stride}")
        reference = reference or ("video" if split == "test" else "clip")
        if reference not in _REFERENCES:
            raise RawMambaError(f"reference must be one of {_REFERENCES}, got {reference!r}")
        self.frames, self.reference, self.load_flow = frames, reference, load_flow
        self.white_level, self.cfa, self.transform, self.seed = float(white_level), as_cfa(cfa), transform, seed
        self.videos = _parse_index(self.split_dir / "data.json")
        self.clips: list[_Clip] = []
        for video, ids in self.videos:
            if frames is not None and len(ids) < frames:
                raise RawMambaError(f"video {video!r} in {self.split_dir / 'data.json'} has {len(ids)} frames, "
                                    f"fewer than frames={frames}")
            length = len(ids) if frames is None else frames
            for start in range(0, len(ids) - length + 1, stride or len(ids)):
                self.clips.append(_Clip(video, ids[start:start + length], start, ids[0]))
        if load_flow and reference == "clip" and any(c.start > 0 for c in self.clips):
            raise RawMambaError("load_flow=True: the flow files point to each video's first frame, so use "
                                "reference='video' (or whole-video clips)")
        for video, ids in self.videos:
            self._check_files(video, ids)

    def _check_files(self, video: str, ids: tuple[str, ...]) -> None:
        for frame in ids:
            raw, srgb, flow = rvd_frame_paths(self.split_dir, video, frame)
            if not srgb.is_file():
                raise RawMambaError(f"sRGB frame {srgb} listed in {self.split_dir / 'data.json'} does not exist")
            if not raw.is_file():
                raise RawMambaError(f"sRGB frame {srgb} has no RAW frame {raw}")
            if self.load_flow and not flow.is_file():
                raise RawMambaError(f"frame {srgb} has no flow file {flow} (load_flow=True)")

    def __len__(self) -> int:
        return len(self.clips)

    def load_frame(self, video: str, frame: str) -> tuple[torch.Tensor, torch.Tensor]:
        """``(srgb (3, h, w), raw (4, h, w))`` of one frame at the packed half resolution."""
        raw_path, srgb_path, _ = rvd_frame_paths(self.split_dir, video, frame)
        mosaic = read_image(raw_path)
        if mosaic.ndim != 2 or mosaic.dtype != np.uint16:
            raise RawMambaError(f"RAW frame {raw_path} must be a single-channel uint16 mosaic, got "
                                f"{mosaic.dtype} {mosaic.shape}")
        if mosaic.shape[0] % 2 or mosaic.shape[1] % 2:
            raise RawMambaError(f"RAW frame {raw_path} must have even height and width, got {mosaic.shape}")
        srgb_image = read_image(srgb_path)
        if srgb_image.ndim != 3 or srgb_image.shape[:2] != mosaic.shape:
            raise RawMambaError(f"sRGB frame {srgb_path} has shape {srgb_image.shape}, RAW {raw_path} has "
                                f"{mosaic.shape}; expected (H, W, 3) and (H, W)")
        raw = pack(to_float(mosaic, max_value=self.white_level), self.cfa)
        srgb = _half(to_float(srgb_image))
        return srgb, raw

    def load_flow_frame(self, video: str, frame: str) -> torch.Tensor:
        """``(2, h, w)`` backward flow of one frame to the video's first frame, in half-resolution pixels."""
        raw_path, _, flow_path = rvd_frame_paths(self.split_dir, video, frame)
        flow = read_npy(flow_path)
        if flow.ndim != 3 or flow.shape[2] != 2 or not np.issubdtype(flow.dtype, np.floating):
            raise RawMambaError(f"flow file {flow_path} must hold a float (H, W, 2) array, "
                                f"got {flow.dtype} {flow.shape}")
        return _half(torch.from_numpy(flow.astype(np.float32)).permute(2, 0, 1)) * 0.5

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(index)
        clip = self.clips[index]
        pairs = [self.load_frame(clip.video, f) for f in clip.frames]
        srgb = torch.stack([s for s, _ in pairs])
        raw = torch.stack([r for _, r in pairs])
        if self.reference == "clip" or clip.start == 0:
            meta_srgb, meta_raw = srgb[0].clone(), raw[0].clone()
        else:
            meta_srgb, meta_raw = self.load_frame(clip.video, clip.first_frame)
        item = {"srgb": srgb, "raw": raw, "meta_srgb": meta_srgb, "meta_raw": meta_raw,
                "name": f"{clip.video}/{clip.frames[0]}"}
        if self.load_flow:
            flow = torch.stack([self.load_flow_frame(clip.video, f) for f in clip.frames])
            if flow.shape[-2:] != srgb.shape[-2:]:
                raise RawMambaError(f"flow of video {clip.video!r} is {tuple(flow.shape[-2:])} at half resolution, "
                                    f"frames are {tuple(srgb.shape[-2:])}")
            item["flow"] = flow
        if self.transform is not None:
            item = self.transform(item, item_generator(self.seed, index))
        return item


def _half(x: torch.Tensor) -> torch.Tensor:
    """Bilinear resize of ``(C, H, W)`` to half size (with even H, W: the mean of each 2x2 block)."""
    return F.interpolate(x[None], scale_factor=0.5, mode="bilinear", align_corners=False)[0]
