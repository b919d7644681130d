"""Running a trained network as a de-rendering method, and the bundled pretrained model.

``NetworkMethod`` gives a trained network (RAWMamba or a learned baseline of ``rawmamba.models``) the
same ``derender(srgb, metadata)`` interface as every baseline (``rawmamba.baselines.DerenderMethod``).
What a network declares shapes the method: ``metadata_kinds`` (the CAM-style network takes sampled
metadata only, the RVD-style one a dense first frame only), a learned ``sampler`` (then ``capture`` stores
the pixels it chooses, one per cell, instead of the given mask's) and ``finetune_steps`` (CAM's online
fine-tuning on the samples before de-rendering). A raw-RGB network (3 channels) also runs on packed Bayer
data (4 channels, RVD layout): each packed pixel is read as one raw-RGB pixel (R, mean of the two
greens, B) and the prediction is written back as (R, G, G, B).

``bundled_checkpoint(name)`` is the path of weights shipped inside the package (``rawmamba_tiny``, and
the learned baselines ``cam_unet``, ``rvd_net``, ``blind_unet``; all trained on synthetic data, see
``configs/bundled_*.yaml`` and ``docs/BUNDLED_MODEL.md``), loaded from disk, never downloaded.
"""

from __future__ import annotations

from pathlib import Path

import torch

from rawmamba.baselines.base import DerenderMethod, as_frames
from rawmamba.baselines.online_finetune import finetune_on_samples
from rawmamba.errors import RawMambaError
from rawmamba.metadata import sample_image_metadata
from rawmamba.train.checkpoint import load_model

BUNDLED_DIR = Path(__file__).resolve().parent / "weights"


def bundled_checkpoint(name: str = "rawmamba_tiny") -> Path:
    """Path (stem) of a checkpoint shipped with the package; a clear error if it is not there."""
    stem = BUNDLED_DIR / name
    if not stem.with_suffix(".safetensors").is_file():
        raise RawMambaError(f"no bundled checkpoint {stem.with_suffix('.safetensors')}; pass --checkpoint PATH")
    return stem


def packed_as_raw_rgb(packed: torch.Tensor) -> torch.Tensor:
    """Packed Bayer ``(*, 4, H, W)`` (R, Gr, Gb, B) -> raw-RGB ``(*, 3, H, W)`` (R, mean green, B)."""
    return torch.stack([packed[..., 0, :, :], packed[..., 1:3, :, :].mean(-3), packed[..., 3, :, :]], dim=-3)


def raw_rgb_as_packed(rgb: torch.Tensor) -> torch.Tensor:
    """Raw-RGB ``(*, 3, H, W)`` -> packed Bayer ``(*, 4, H, W)`` (R, G, G, B): the inverse of
    ``packed_as_raw_rgb`` for equal greens."""
    return torch.cat([rgb[..., :2, :, :], rgb[..., 1:, :, :]], dim=-3)


class NetworkMethod(DerenderMethod):
    """A trained network (RAWMamba or a learned baseline) behind the common interface.

    Args:
        model: a network with the ``RAWMamba.forward`` signature.
        name: the name shown in tables.
        device: where to run it.
        finetune_steps: Adam steps of online fine-tuning on the RAW samples before de-rendering sampled
            metadata (``rawmamba.baselines.online_finetune``; CAM: 10); 0 = none.
        finetune_lr: their learning rate (CAM: 1e-4).
    """

    def __init__(self, model: torch.nn.Module, *, name: str = "RAWMamba", device: str | torch.device = "cpu",
                 finetune_steps: int = 0, finetune_lr: float = 1e-4):
        self.model = model.to(device).eval()
        self.name, self.device = name, torch.device(device)
        self.metadata_kinds = getattr(model, "metadata_kinds", DerenderMethod.metadata_kinds)
        self.finetune_steps, self.finetune_lr = finetune_steps, finetune_lr

    @classmethod
    def from_checkpoint(cls, path: str | Path, *, device: str | torch.device = "cpu", name: str = "RAWMamba",
                        sample_refinement: str | None = None, **options):
        """The network of a checkpoint (``options``: ``finetune_steps``, ``finetune_lr``); ``sample_refinement``
        (``"rbf"`` or ``"none"``) overrides the checkpoint's setting of a RAWMamba, None keeps it."""
        model, _ = load_model(path, map_location=device)
        if sample_refinement is not None:
            if not hasattr(model, "sample_refinement"):
                raise RawMambaError(f"the network of {path} has no sample refinement to set")
            model.sample_refinement = sample_refinement  # the model checks the value
        return cls(model, name=name, device=device, **options)

    @property
    def learned_sampler(self) -> bool:
        """Whether the network chooses its own sample positions (CAM-style)."""
        return getattr(self.model, "sampler", None) is not None

    def capture(self, srgb: torch.Tensor, raw: torch.Tensor, mask: torch.Tensor | None = None):
        """As ``DerenderMethod.capture``; a network with a learned sampler stores the pixels its sampler
        chooses on the first frame (one per cell) wherever a mask asks for sampled metadata."""
        if not self.learned_sampler or mask is None:
            return super().capture(srgb, raw, mask)
        srgb, raw = as_frames(srgb, "srgb", self.name), as_frames(raw, "raw", self.name)
        with torch.no_grad():
            chosen = self.model.sampler.hard_mask(srgb[:1].to(self.device))[0].cpu()
        return sample_image_metadata(srgb[0], raw[0], chosen)

    @torch.no_grad()
    def derender(self, srgb: torch.Tensor, metadata) -> torch.Tensor:
        self.check(srgb, metadata)
        channels = metadata.raw.shape[0]
        adapt = channels == 4 and self.model.raw_channels == 3
        if channels != self.model.raw_channels and not adapt:
            raise RawMambaError(
                f"{self.name} predicts {self.model.raw_channels}-channel RAW, the metadata has {channels}"
            )
        meta = metadata.to(self.device)
        meta_raw = packed_as_raw_rgb(meta.raw)[None] if adapt else meta.raw[None]
        mask = None if meta.mask is None else meta.mask[None]
        x = srgb[None].to(self.device)
        model = self.model
        if self.finetune_steps and mask is not None:
            model, _ = finetune_on_samples(model, x, meta.srgb[None], meta_raw, mask, steps=self.finetune_steps,
                                           lr=self.finetune_lr)
        pred = model(x, meta.srgb[None], meta_raw, meta_mask=mask)[0]
        return (raw_rgb_as_packed(pred) if adapt else pred).float().cpu()
