"""Small U-Net parts shared by the learned baselines (U-Net: Ronneberger et al., MICCAI 2015).

The CAM-style, RVD-style and blind baselines are U-Nets of a few hundred thousand parameters:
``UNetEncoder`` keeps the feature map of every level (full resolution, then halved per level),
``UNetDecoder`` upsamples from the deepest level and concatenates the skips of one or more encoders on
the way up. Inputs of any size are padded by the caller to a multiple of ``unet_multiple(widths)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def unet_multiple(widths: tuple[int, ...]) -> int:
    """The height and width a U-Net with these level widths needs to be a multiple of."""
    return 2 ** (len(widths) - 1)


class ConvBlock(nn.Sequential):
    """Two 3x3 convolutions with LeakyReLU: the unit of every U-Net level."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
        )


class UNetEncoder(nn.Module):
    """Level 0 at full resolution, each further level a stride-2 convolution then a ``ConvBlock``.

    Args:
        in_channels: input channels.
        widths: channels per level, shallow to deep.
    """

    def __init__(self, in_channels: int, widths: tuple[int, ...]) -> None:
        super().__init__()
        self.widths = tuple(widths)
        self.levels = nn.ModuleList([ConvBlock(in_channels, widths[0])])
        for before, after in zip(widths[:-1], widths[1:], strict=True):
            self.levels.append(nn.Sequential(nn.Conv2d(before, before, 2, stride=2), ConvBlock(before, after)))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``(N, C_in, H, W)`` -> the feature map of every level, ``(N, widths[i], H / 2**i, W / 2**i)``."""
        features = []
        for level in self.levels:
            x = level(x)
            features.append(x)
        return features


class UNetDecoder(nn.Module):
    """From the deepest level up: bilinear x2, concatenate that level's skips, ``ConvBlock``; a 1x1 head.

    Args:
        widths: channels per level of the decoder, shallow to deep (the deepest is its input's width).
        skip_widths: channels of the skips concatenated at each level (the sum over the encoders), shallow
            to deep; the deepest entry is unused (that level is the input).
        out_channels: channels of the output.
        small_head: initialise the head's weights small (std 1e-3) and its bias at zero, so that a network
            adding the output to a base starts close to the base (yet every parameter has a gradient).
    """

    def __init__(self, widths: tuple[int, ...], skip_widths: tuple[int, ...], out_channels: int, *,
                 small_head: bool = True) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            ConvBlock(widths[i + 1] + skip_widths[i], widths[i]) for i in range(len(widths) - 1)
        )
        self.head = nn.Conv2d(widths[0], out_channels, 1)
        if small_head:
            nn.init.normal_(self.head.weight, std=1e-3)
            nn.init.zeros_(self.head.bias)

    def forward(self, deepest: torch.Tensor, skips: list[torch.Tensor]) -> torch.Tensor:
        """``deepest``: the bottleneck map; ``skips[i]``: level ``i``'s concatenated skips (shallow to deep)."""
        x = deepest
        for level in reversed(range(len(self.blocks))):
            x = F.interpolate(x, size=skips[level].shape[-2:], mode="bilinear", align_corners=False)
            x = self.blocks[level](torch.cat([x, skips[level]], dim=1))
        return self.head(x)
