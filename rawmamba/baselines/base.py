"""The one interface every de-rendering method offers, RAWMamba and the baselines alike.

A method turns sRGB frames plus metadata into RAW: ``derender(srgb, metadata) -> raw`` with
``srgb: (T, 3, H, W)`` in [0, 1] and ``metadata`` a :class:`rawmamba.metadata.Metadata` whose tensors are
``(3, H, W)``, ``(C_raw, H, W)`` and, for sampled image metadata, a ``(1, H, W)`` mask. The result is
``(T, C_raw, H, W)`` in [0, 1]. ``metadata_kinds`` says which metadata a method can use: ``"sampled"``
(sparse RAW samples of the image itself), ``"frame"`` (a dense first-frame pair of a video) or both.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch

from rawmamba.errors import RawMambaError


class DerenderMethod(ABC):
    """A de-rendering method: a name, the metadata it accepts, and ``derender``."""

    name: str = ""
    metadata_kinds: tuple[str, ...] = ("sampled", "frame")

    def check(self, srgb: torch.Tensor, metadata) -> None:
        """Raise a clear error when the inputs do not fit this method."""
        if srgb.ndim != 4 or srgb.shape[1] != 3:
            raise RawMambaError(f"{self.name}: srgb must be (T, 3, H, W), got {tuple(srgb.shape)}")
        if metadata.kind not in self.metadata_kinds:
            raise RawMambaError(
                f"{self.name} takes {' or '.join(self.metadata_kinds)} metadata, got {metadata.kind} metadata"
            )
        if tuple(metadata.srgb.shape[-2:]) != tuple(srgb.shape[-2:]):
            raise RawMambaError(
                f"{self.name}: metadata is for {tuple(metadata.srgb.shape[-2:])} images, "
                f"the sRGB frames are {tuple(srgb.shape[-2:])}"
            )

    @abstractmethod
    def derender(self, srgb: torch.Tensor, metadata) -> torch.Tensor:
        """(T, 3, H, W) sRGB + metadata -> (T, C_raw, H, W) RAW in [0, 1]."""
