"""``Metadata``: the (sRGB, RAW) pair every kind of RAWMamba metadata is turned into (paper Sec. 3.3).

Image task ("sampled"): ``srgb = x * mask``, ``raw = y * mask`` with a binary ``mask`` marking the stored
RAW samples (about 1.5% of the pixels). Video task ("frame"): the first frame's dense sRGB and RAW, no mask.
Shapes follow docs/CONVENTIONS.md: ``srgb (*, 3, H, W)``, ``raw (*, C_raw, H, W)`` with ``C_raw = 3``
(demosaiced raw-RGB, same size as the sRGB) or ``C_raw = 4`` (packed R, Gr, Gb, B at half resolution,
with the sRGB resized by the caller to that half resolution), ``mask (*, 1, H, W)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from rawmamba.errors import RawMambaError

__all__ = ["Metadata", "RAW_CHANNELS", "sample_image_metadata", "first_frame_metadata"]

RAW_CHANNELS = (3, 4)  # raw-RGB or packed Bayer (R, Gr, Gb, B)


def _check_image(x: torch.Tensor, name: str, values: bool) -> None:
    if not isinstance(x, torch.Tensor):
        raise RawMambaError(f"metadata {name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() < 3:
        raise RawMambaError(f"metadata {name} must be (*, C, H, W), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise RawMambaError(f"metadata {name} must be a floating tensor in [0, 1], got {x.dtype}")
    if values and x.numel():
        if not torch.isfinite(x).all():
            raise RawMambaError(f"metadata {name} contains NaN or inf values")
        lo, hi = x.min().item(), x.max().item()
        if lo < 0 or hi > 1:
            raise RawMambaError(f"metadata {name} must lie in [0, 1], got values in [{lo:.4g}, {hi:.4g}]")


@dataclass(eq=False)
class Metadata:
    """The metadata (sRGB, RAW) pair, plus the sample mask for sampled image metadata.

    Args:
        srgb: ``(*, 3, H, W)`` float sRGB in [0, 1]; zero outside the mask for sampled metadata.
        raw: ``(*, C_raw, H, W)`` float RAW in [0, 1], ``C_raw`` 3 (raw-RGB) or 4 (packed Bayer).
        mask: ``(*, 1, H, W)`` float in {0, 1}, or None for dense first-frame (video) metadata.
        check_values: also check values (finite, in [0, 1], binary mask, zero outside the mask). That reads
            every element and, on a GPU, synchronises; pass False in hot loops over already-checked data.
            Shapes and dtypes are always checked.
    """

    srgb: torch.Tensor
    raw: torch.Tensor
    mask: torch.Tensor | None = None
    check_values: bool = field(default=True, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.validate(values=self.check_values)

    def validate(self, *, values: bool = True) -> None:
        """Raise ``RawMambaError`` if shapes, dtypes or (with ``values``) the values break the contract."""
        _check_image(self.srgb, "srgb", values)
        _check_image(self.raw, "raw", values)
        if self.srgb.shape[-3] != 3:
            raise RawMambaError(f"metadata srgb must have 3 channels, got shape {tuple(self.srgb.shape)}")
        if self.raw.shape[-3] not in RAW_CHANNELS:
            raise RawMambaError(f"metadata raw must have 3 (raw-RGB) or 4 (packed Bayer) channels, got shape "
                                f"{tuple(self.raw.shape)}")
        lead, size = self.srgb.shape[:-3], self.srgb.shape[-2:]
        if self.raw.shape[:-3] != lead or self.raw.shape[-2:] != size:
            hint = " (resize the sRGB to the packed RAW's half resolution)" if self.raw.shape[-3] == 4 else ""
            raise RawMambaError(f"metadata raw {tuple(self.raw.shape)} does not match srgb {tuple(self.srgb.shape)} "
                                f"in leading shape and H, W{hint}")
        if self.mask is None:
            return
        _check_image(self.mask, "mask", values)
        if self.mask.shape != (*lead, 1, *size):
            raise RawMambaError(f"metadata mask must have shape {(*lead, 1, *size)}, got {tuple(self.mask.shape)}")
        if values:
            if not ((self.mask == 0) | (self.mask == 1)).all():
                raise RawMambaError("metadata mask must be binary (0 or 1)")
            outside = self.mask == 0
            if (self.srgb * outside).any() or (self.raw * outside).any():
                raise RawMambaError("sampled metadata must be zero outside its mask (srgb = x * mask, raw = y * mask);"
                                    " build it with sample_image_metadata")

    @property
    def kind(self) -> str:
        """``"sampled"`` (image metadata with a mask) or ``"frame"`` (dense first frame of a video)."""
        return "frame" if self.mask is None else "sampled"

    @property
    def size(self) -> tuple[int, int]:
        """``(H, W)`` of the metadata (half the sensor resolution for packed RAW)."""
        return int(self.srgb.shape[-2]), int(self.srgb.shape[-1])

    @property
    def raw_channels(self) -> int:
        """3 for raw-RGB, 4 for packed Bayer."""
        return int(self.raw.shape[-3])

    @property
    def batch_shape(self) -> tuple[int, ...]:
        """The leading shape ``*`` (empty for one image)."""
        return tuple(self.srgb.shape[:-3])

    @property
    def num_samples(self) -> int:
        """Stored RAW pixels per image: the mask's count (mean over a batch), or ``H * W`` for a dense frame."""
        h, w = self.size
        if self.mask is None:
            return h * w
        per_image = self.mask.reshape(-1, h * w).sum(dim=1)
        return int(round(per_image.double().mean().item()))

    @property
    def rate(self) -> float:
        """Fraction of pixels stored: ``num_samples / (H * W)`` (1.0 for a dense frame)."""
        h, w = self.size
        return self.num_samples / (h * w)

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> Metadata:
        """A copy on ``device`` and/or in floating ``dtype`` (values are not re-checked)."""
        def move(x: torch.Tensor | None) -> torch.Tensor | None:
            return None if x is None else x.to(device=device, dtype=dtype)

        return Metadata(move(self.srgb), move(self.raw), move(self.mask), check_values=False)


def sample_image_metadata(srgb: torch.Tensor, raw: torch.Tensor, mask: torch.Tensor, *,
                          check_values: bool = True) -> Metadata:
    """Sampled image metadata ``(x * mask, y * mask, mask)`` from a full image pair and a sampler's mask.

    Args:
        srgb: ``(*, 3, H, W)`` sRGB in [0, 1]; for packed RAW already resized to the RAW's half resolution.
        raw: ``(*, C_raw, H, W)`` RAW in [0, 1], ``C_raw`` 3 or 4, same ``H, W`` as the sRGB.
        mask: ``(1, H, W)`` or ``(*, 1, H, W)`` binary mask (e.g. from ``grid_mask``); broadcast over ``*``.
        check_values: see ``Metadata``.
    """
    if not isinstance(mask, torch.Tensor) or mask.dim() < 3 or mask.shape[-3] != 1:
        shape = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise RawMambaError(f"mask must be a (*, 1, H, W) tensor, got {shape}")
    if srgb.dim() < 3 or mask.shape[-2:] != srgb.shape[-2:]:
        raise RawMambaError(f"mask {tuple(mask.shape)} does not match the sRGB {tuple(srgb.shape)} in H, W")
    full_mask = torch.broadcast_to(mask.to(srgb), (*srgb.shape[:-3], *mask.shape[-3:])).contiguous()
    return Metadata(srgb * full_mask, raw * full_mask.to(raw), full_mask, check_values=check_values)


def first_frame_metadata(srgb_frames: torch.Tensor, raw_frames: torch.Tensor, *,
                         check_values: bool = True) -> Metadata:
    """Dense video metadata: the first frame's (sRGB, RAW) pair, no mask.

    Args:
        srgb_frames: ``(*, T, 3, H, W)`` sRGB frames in [0, 1], ``T >= 1``.
        raw_frames: ``(*, T, C_raw, H, W)`` RAW frames in [0, 1].
        check_values: see ``Metadata``.

    Returns:
        ``Metadata`` with ``srgb (*, 3, H, W)``, ``raw (*, C_raw, H, W)`` (copies, not views of the clip).
    """
    for name, x in (("srgb_frames", srgb_frames), ("raw_frames", raw_frames)):
        if not isinstance(x, torch.Tensor) or x.dim() < 4 or x.shape[-4] < 1:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise RawMambaError(f"{name} must be (*, T, C, H, W) with T >= 1, got {shape}")
    if srgb_frames.shape[-4] != raw_frames.shape[-4]:
        raise RawMambaError(f"srgb_frames and raw_frames have different frame counts: {srgb_frames.shape[-4]} "
                            f"and {raw_frames.shape[-4]}")
    return Metadata(srgb_frames[..., 0, :, :, :].clone(), raw_frames[..., 0, :, :, :].clone(),
                    check_values=check_values)
