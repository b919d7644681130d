"""The one interface every de-rendering method offers, RAWMamba and the baselines alike.

A method turns sRGB frames plus metadata into RAW: ``derender(srgb, metadata) -> raw`` with
``srgb: (T, 3, H, W)`` in [0, 1]. The result is ``(T, C_raw, H, W)`` in [0, 1]. ``metadata_kinds`` says
which metadata a method can use:

- ``"sampled"``: a :class:`rawmamba.metadata.Metadata` of sparse RAW samples of the image itself
  (tensors ``(3, H, W)``, ``(C_raw, H, W)`` and a ``(1, H, W)`` mask);
- ``"frame"``: a ``Metadata`` holding a dense first-frame pair of a video (no mask);
- ``"parameters"``: a method's own parameter object fitted at capture time (RIR-style methods); it has a
  ``kind`` attribute equal to ``"parameters"``.

Every method also offers the capture side, so that one benchmark can run any method as
``capture -> save_metadata -> load_metadata -> derender``:

- ``capture(srgb, raw, mask=None)`` builds the metadata from the full (sRGB, RAW) pair. The default builds
  sampled metadata with ``mask`` (from a ``rawmamba.metadata`` sampler) when the method takes sampled
  metadata and a mask is given, else the dense first-frame metadata when it takes frame metadata.
- ``save_metadata(path, metadata)`` / ``load_metadata(path, expect_size, expect_channels)`` write and read
  it; the default is the standard ``.npz`` format of ``rawmamba.metadata.io``. ``metadata_suffix`` is the
  file suffix the method's files use.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from pathlib import Path

import torch

from rawmamba.errors import RawMambaError
from rawmamba.metadata import Metadata, first_frame_metadata, load_metadata, sample_image_metadata, save_metadata


def as_frames(x: torch.Tensor, name: str, method: str) -> torch.Tensor:
    """``(3, H, W)`` or ``(T, C, H, W)`` -> ``(T, C, H, W)``."""
    if not isinstance(x, torch.Tensor) or x.ndim not in (3, 4):
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise RawMambaError(f"{method}: {name} must be (C, H, W) or (T, C, H, W), got {shape}")
    return x[None] if x.ndim == 3 else x


class DerenderMethod(ABC):
    """A de-rendering method: a name, the metadata it accepts, capture/save/load of it, and ``derender``."""

    name: str = ""
    metadata_kinds: tuple[str, ...] = ("sampled", "frame")
    metadata_suffix: str = ".npz"

    def check(self, srgb: torch.Tensor, metadata) -> None:
        """Raise a clear error when the inputs do not fit this method."""
        if srgb.ndim != 4 or srgb.shape[1] != 3:
            raise RawMambaError(f"{self.name}: srgb must be (T, 3, H, W), got {tuple(srgb.shape)}")
        kind = getattr(metadata, "kind", None)
        if not isinstance(kind, str):
            raise RawMambaError(f"{self.name} takes {' or '.join(self.metadata_kinds)} metadata, got a "
                                f"{type(metadata).__name__}")
        if kind not in self.metadata_kinds:
            raise RawMambaError(f"{self.name} takes {' or '.join(self.metadata_kinds)} metadata, got {kind} metadata")
        if isinstance(metadata, Metadata) and tuple(metadata.srgb.shape[-2:]) != tuple(srgb.shape[-2:]):
            raise RawMambaError(
                f"{self.name}: metadata is for {tuple(metadata.srgb.shape[-2:])} images, "
                f"the sRGB frames are {tuple(srgb.shape[-2:])}"
            )

    def capture(self, srgb: torch.Tensor, raw: torch.Tensor, mask: torch.Tensor | None = None):
        """The metadata this method stores for a (sRGB, RAW) pair or clip.

        Args:
            srgb: ``(3, H, W)`` or ``(T, 3, H, W)`` sRGB in [0, 1]; metadata comes from the first frame.
            raw: ``(C_raw, H, W)`` or ``(T, C_raw, H, W)`` RAW in [0, 1].
            mask: ``(1, H, W)`` sample mask (e.g. ``rawmamba.metadata.grid_mask``) or None.

        Returns:
            Sampled ``Metadata`` when the method takes sampled metadata and ``mask`` is given, else the dense
            first-frame ``Metadata`` when it takes frame metadata.
        """
        srgb, raw = as_frames(srgb, "srgb", self.name), as_frames(raw, "raw", self.name)
        if mask is not None and "sampled" in self.metadata_kinds:
            return sample_image_metadata(srgb[0], raw[0], mask)
        if "frame" in self.metadata_kinds:
            return first_frame_metadata(srgb, raw)
        raise RawMambaError(f"{self.name} stores sampled metadata: capture needs a sample mask")

    def save_metadata(self, path: str | os.PathLike, metadata, **info: object) -> Path:
        """Write ``metadata`` (from ``capture``) to ``path`` atomically; returns the path."""
        return save_metadata(path, metadata, method=self.name, **info)

    def load_metadata(self, path: str | os.PathLike, expect_size: tuple[int, int] | None = None,
                      expect_channels: int | None = None):
        """Read metadata written by ``save_metadata`` (checked against the image size and RAW channels)."""
        return load_metadata(path, expect_size=expect_size, expect_channels=expect_channels)

    @abstractmethod
    def derender(self, srgb: torch.Tensor, metadata) -> torch.Tensor:
        """(T, 3, H, W) sRGB + metadata -> (T, C_raw, H, W) RAW in [0, 1]."""
