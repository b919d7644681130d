"""Training sets named by the config: synthetic pools made at start-up, or the CAM / RVD / folder layouts.

Synthetic training draws ``synthetic_count`` scenes once (``rawmamba.data.synth_image`` /
``synth_video``, a pure function of ``(seed, index)``) with a few worker processes, keeps them in
memory, and serves fresh random crops, flips and metadata samples from them every epoch: the
renderer is far slower than a training step of the tiny model, so the pool keeps the accelerator busy.
Task ``"mixed"`` trains one network on both kinds at once (alternating image and video batches),
the way the bundled model that must handle images and videos with the same weights is trained.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from rawmamba.data import CamDataset, PairFolderDataset, RandomCropFlip, RVDDataset, synth_image, synth_video
from rawmamba.data.items import add_image_metadata, item_generator, resolve_sampler
from rawmamba.errors import RawMambaError
from rawmamba.isp import CFA, mosaic, pack
from rawmamba.models.optical_flow import dis_flow
from rawmamba.train.config import TrainConfig


def to_packed_bayer(srgb: torch.Tensor, raw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Raw-RGB ``(*, 3, H, W)`` -> packed RGGB ``(*, 4, H/2, W/2)``, sRGB resized to match (RVD style)."""
    packed = pack(mosaic(raw, CFA.RGGB), CFA.RGGB)
    half = F.avg_pool2d(srgb.reshape(-1, *srgb.shape[-3:]), 2).reshape(*srgb.shape[:-2], *packed.shape[-2:])
    return half, packed


class _Maker(Dataset):
    """Draws scene ``index`` of the synthetic stream; used only to render the pool in parallel."""

    def __init__(self, kind: str, count: int, size: int, frames: int, seed: int, raw_channels: int, flow: str,
                 plain_prob: float):
        self.kind, self.count, self.size, self.frames = kind, count, size, frames
        self.seed, self.raw_channels, self.flow, self.plain_prob = seed, raw_channels, flow, plain_prob

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> dict:
        if self.kind == "image":
            pair = synth_image(self.seed, index, height=self.size, width=self.size, plain_prob=self.plain_prob)
            item = {"srgb": pair.srgb[None], "raw": pair.raw[None]}
        else:
            clip = synth_video(self.seed, index, height=self.size, width=self.size, frames=self.frames,
                               plain_prob=self.plain_prob)
            flow = clip.flow if self.flow == "exact" else dis_flow(clip.srgb[None], clip.srgb[:1])[0]
            item = {"srgb": clip.srgb, "raw": clip.raw, "flow": flow}
        if self.raw_channels == 4:
            item["srgb"], item["raw"] = to_packed_bayer(item["srgb"], item["raw"])
            if "flow" in item:
                item["flow"] = F.avg_pool2d(item["flow"], 2) / 2  # pixels at half resolution
        return item


class SyntheticPool(Dataset):
    """``count`` synthetic scenes rendered once; every access crops, flips and samples metadata afresh.

    Args:
        kind: ``"image"`` (one frame, sampled metadata) or ``"video"`` (``frames`` frames, first-frame
            metadata and the exact backward flow).
        count, size, frames, seed: the scenes drawn (``size`` x ``size`` pixels of raw-RGB).
        patch: side of the random crop served (packed pixels when ``raw_channels == 4``).
        sampler: image metadata sampler name, or ``"dense"``: the whole frame as metadata with no mask (for a
            network with its own learned sampler, which picks the samples from it).
        raw_channels: 3 (raw-RGB) or 4 (packed RGGB, sRGB at half resolution).
        workers: processes rendering the pool.
        flow: video flow served: ``"dis"`` (OpenCV DIS on the sRGB frames, what the network meets at
            inference time) or ``"exact"`` (the renderer's ground truth).
        plain_prob: share of scenes rendered with a plain raw converter's look (``rawmamba.isp.plain_look``).
    """

    def __init__(self, kind: str, *, count: int, size: int, patch: int, frames: int = 5, sampler: str = "grid",
                 seed: int = 0, raw_channels: int = 3, workers: int = 0, flow: str = "dis", plain_prob: float = 0.0):
        scene_side = size // 2 if raw_channels == 4 else size
        if patch > scene_side:
            raise RawMambaError(f"patch_size {patch} is larger than the synthetic scenes ({scene_side} pixels)")
        if flow not in ("dis", "exact"):
            raise RawMambaError(f"flow must be 'dis' or 'exact', got {flow!r}")
        if not 0.0 <= plain_prob <= 1.0:
            raise RawMambaError(f"synthetic_plain_prob must be in [0, 1], got {plain_prob}")
        maker = _Maker(kind, count, size, frames, seed, raw_channels, flow, plain_prob)
        loader = DataLoader(maker, batch_size=None, num_workers=workers)
        self.items = list(loader)
        self.kind = kind
        self.sampler = None if sampler == "dense" else resolve_sampler(sampler)
        self.transform = RandomCropFlip(size=(patch, patch), transpose=True)
        self.seed: int | None = None  # of the augmentation: None draws afresh on every access (see item_generator)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        rng = item_generator(self.seed, index)
        item = self.transform({**self.items[index], "name": f"synthetic-{self.kind}-{index}"}, rng)
        if self.kind == "image" and self.sampler is not None:
            return add_image_metadata(item, self.sampler, rng)
        return {**item, "meta_srgb": item["srgb"][0], "meta_raw": item["raw"][0]}


def build_train_datasets(config: TrainConfig) -> list[Dataset]:
    """The training set(s) of ``config``: one per task, two (image, video) for ``task="mixed"``."""
    tasks = ("image", "video") if config.task == "mixed" else (config.task,)
    if config.data == "synthetic":
        return [
            SyntheticPool(
                task,
                count=config.synthetic_count,
                size=config.synthetic_size,
                patch=config.patch_size,
                frames=config.frames,
                sampler=config.sampler,
                seed=config.seed + index,
                raw_channels=config.raw_channels,
                workers=config.num_workers,
                flow=config.synthetic_flow,
                plain_prob=config.synthetic_plain_prob,
            )
            for index, task in enumerate(tasks)
        ]
    if config.sampler == "dense":
        raise RawMambaError(f"sampler=dense is offered by synthetic data only, not data={config.data}")
    if not config.data_root:
        raise RawMambaError(f"data={config.data} needs data_root (the dataset folder)")
    crop = RandomCropFlip(size=(config.patch_size, config.patch_size), transpose=True)
    if config.data == "rvd":
        if config.task != "video":
            raise RawMambaError("data=rvd holds videos: use task=video")
        return [RVDDataset(config.data_root, "train", frames=config.frames, load_flow=True, transform=crop, seed=None)]
    if config.task != "image":
        raise RawMambaError(f"data={config.data} holds images: use task=image")
    if config.data == "cam":
        cameras = config.cameras or None
        return [CamDataset(config.data_root, "train", cameras=cameras, sampler=config.sampler, transform=crop,
                           seed=None)]
    return [PairFolderDataset(config.data_root, sampler=config.sampler, transform=crop, seed=None)]
