"""Multi-scale feature aggregation, paper eq. 13: ``F = Conv(sum_i up(F_enc^i))``.

The encoder stages have different widths, so each is first projected to the common width with a
1x1 convolution (needed for the sum), then upsampled bilinearly to the finest aggregated scale,
summed, and fused by a 3x3 convolution.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class MultiScaleAggregation(nn.Module):
    """Eq. 13 over ``k = len(in_channels)`` feature maps.

    Args:
        in_channels: channels of each input map (finest first).
        out_channels: channels of the aggregated map.
    """

    def __init__(self, in_channels: list[int] | tuple[int, ...], out_channels: int) -> None:
        super().__init__()
        self.project = nn.ModuleList(nn.Conv2d(c, out_channels, 1) for c in in_channels)
        self.fuse = nn.Conv2d(out_channels, out_channels, 3, padding=1)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        """Maps ``(N, in_channels[i], H_i, W_i)``, the first the largest -> ``(N, out_channels, H_0, W_0)``."""
        size = features[0].shape[-2:]
        total = 0
        for proj, feat in zip(self.project, features, strict=True):
            feat = proj(feat)
            if feat.shape[-2:] != size:
                feat = F.interpolate(feat, size=size, mode="bilinear", align_corners=False)
            total = total + feat
        return self.fuse(total)
