"""Running a trained network as a de-rendering method, and the bundled pretrained model.

``NetworkMethod`` gives a RAWMamba network the same ``derender(srgb, metadata)`` interface as every
baseline (``rawmamba.baselines.DerenderMethod``). ``bundled_checkpoint()`` is the path of the
``rawmamba_tiny`` weights shipped inside the package (trained on synthetic data; see
``configs/bundled_tiny.yaml`` and ``docs/BUNDLED_MODEL.md``), loaded from disk, never downloaded.
"""

from __future__ import annotations

from pathlib import Path

import torch

from rawmamba.baselines.base import DerenderMethod
from rawmamba.errors import RawMambaError
from rawmamba.train.checkpoint import load_model

BUNDLED_DIR = Path(__file__).resolve().parent / "weights"


def bundled_checkpoint(name: str = "rawmamba_tiny") -> Path:
    """Path (stem) of a checkpoint shipped with the package; a clear error if it is not there."""
    stem = BUNDLED_DIR / name
    if not stem.with_suffix(".safetensors").is_file():
        raise RawMambaError(f"no bundled checkpoint {stem.with_suffix('.safetensors')}; pass --checkpoint PATH")
    return stem


class NetworkMethod(DerenderMethod):
    """A trained network (RAWMamba or a learned baseline) behind the common interface.

    Args:
        model: a network with the ``RAWMamba.forward`` signature.
        name: the name shown in tables.
        device: where to run it.
    """

    def __init__(self, model: torch.nn.Module, *, name: str = "RAWMamba", device: str | torch.device = "cpu"):
        self.model = model.to(device).eval()
        self.name, self.device = name, torch.device(device)

    @classmethod
    def from_checkpoint(cls, path: str | Path, *, device: str | torch.device = "cpu", name: str = "RAWMamba"):
        model, _ = load_model(path, map_location=device)
        return cls(model, name=name, device=device)

    @torch.no_grad()
    def derender(self, srgb: torch.Tensor, metadata) -> torch.Tensor:
        self.check(srgb, metadata)
        if metadata.raw.shape[0] != self.model.raw_channels:
            raise RawMambaError(
                f"{self.name} predicts {self.model.raw_channels}-channel RAW, the metadata has {metadata.raw.shape[0]}"
            )
        meta = metadata.to(self.device)
        mask = None if meta.mask is None else meta.mask[None]
        pred = self.model(srgb[None].to(self.device), meta.srgb[None], meta.raw[None], meta_mask=mask)
        return pred[0].float().cpu()
