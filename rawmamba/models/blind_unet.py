"""Blind U-Net: de-rendering from the sRGB alone, the lower bound of the learned methods.

A U-Net (unet.py) maps every sRGB frame to RAW on its own; the metadata is accepted, for the common
``forward`` signature, and ignored, so the network can only learn the average camera of its training
data. It starts at the inverse sRGB OETF (``InverseGamma``; the head is initialised small) and learns a
correction to it.
"""

from __future__ import annotations

import torch
from torch import nn

from rawmamba.errors import RawMambaError
from rawmamba.isp.tone import srgb_oetf_inverse
from rawmamba.models.padding import crop_to, pad_to_multiple
from rawmamba.models.unet import UNetDecoder, UNetEncoder, unet_multiple


def base_raw(srgb: torch.Tensor, raw_channels: int) -> torch.Tensor:
    """The inverse sRGB OETF of ``(N, 3, H, W)`` sRGB, as ``raw_channels`` channels (G repeated for packed
    Bayer ``R, Gr, Gb, B``)."""
    linear = srgb_oetf_inverse(srgb)
    if raw_channels == 4:
        return torch.cat([linear[:, :2], linear[:, 1:]], dim=1)
    return linear


def check_frames(x: torch.Tensor, meta_raw: torch.Tensor, raw_channels: int) -> None:
    """Raise ``RawMambaError`` unless ``x`` is ``(B, T, 3, H, W)`` and ``meta_raw`` ``(B, C_raw, H, W)``."""
    if x.dim() != 5 or x.shape[2] != 3:
        raise RawMambaError(f"x must be (B, T, 3, H, W) sRGB frames, got {tuple(x.shape)}")
    b, _, _, h, w = x.shape
    if tuple(meta_raw.shape) != (b, raw_channels, h, w):
        raise RawMambaError(f"meta_raw must be (B, C_raw, H, W) = {(b, raw_channels, h, w)}, "
                            f"got {tuple(meta_raw.shape)}")


class BlindUNet(nn.Module):
    """sRGB -> RAW with no metadata.

    Args:
        raw_channels: 3 (raw-RGB) or 4 (packed Bayer at the sRGB's size).
        widths: channels per U-Net level.
    """

    metadata_kinds = ("sampled", "frame")

    def __init__(self, *, raw_channels: int = 3, widths: tuple[int, ...] = (24, 48, 96, 128)) -> None:
        super().__init__()
        if raw_channels not in (3, 4):
            raise RawMambaError(f"raw_channels must be 3 or 4, got {raw_channels}")
        self.config = {"raw_channels": raw_channels, "widths": tuple(widths)}
        self.raw_channels = raw_channels
        self.multiple = unet_multiple(widths)
        self.encoder = UNetEncoder(3, widths)
        self.decoder = UNetDecoder(widths, widths, raw_channels)

    def forward(self, x: torch.Tensor, meta_srgb: torch.Tensor, meta_raw: torch.Tensor,
                meta_mask: torch.Tensor | None = None, flow: torch.Tensor | None = None) -> torch.Tensor:
        """``x (B, T, 3, H, W)`` -> ``(B, T, C_raw, H, W)``; the metadata arguments are checked and unused."""
        check_frames(x, meta_raw, self.raw_channels)
        b, t, _, h, w = x.shape
        frames = pad_to_multiple(x.flatten(0, 1), self.multiple)
        features = self.encoder(frames)
        out = base_raw(frames, self.raw_channels) + self.decoder(features[-1], features)
        return crop_to(out, h, w).view(b, t, self.raw_channels, h, w)


def blind_unet(**overrides) -> BlindUNet:
    """The blind lower bound, 0.85 M parameters."""
    return BlindUNet(**overrides)
