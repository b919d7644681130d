"""The "search block" of paper sec. 3.3: a channel-wise transformer that queries the metadata
embedding E with the sRGB features, at several encoder scales.

Attention is Restormer's MDTA ("transposed" attention, Zamir et al. 2022) turned into cross
attention: queries come from the sRGB feature map, keys and values from E resampled to that scale.
Each head forms a ``c x c`` channel-affinity matrix from L2-normalised (over pixels) queries and keys
with a learned temperature, so the cost is linear in the number of pixels; a gated depth-wise
feed-forward (Restormer's GDFN) follows. Both sub-layers are pre-norm residuals; the embedding is
*not* layer-normalised, because its magnitude carries RAW intensity (white balance, exposure) that a
per-pixel normalisation would remove.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from timm.layers import LayerNorm2d
from torch import nn

from rawmamba.errors import RawMambaError


def _pointwise_depthwise(in_channels: int, out_channels: int) -> nn.Sequential:
    """1x1 convolution then 3x3 depth-wise convolution (MDTA's local context for q, k, v)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 1),
        nn.Conv2d(out_channels, out_channels, 3, padding=1, groups=out_channels),
    )


class ChannelCrossAttention(nn.Module):
    """MDTA-style channel attention with queries from ``x`` and keys/values from ``context``.

    Args:
        dim: channels of ``x`` (and of the output).
        context_dim: channels of ``context`` (the metadata embedding).
        heads: heads; must divide ``dim``.
    """

    def __init__(self, dim: int, context_dim: int, *, heads: int = 1) -> None:
        super().__init__()
        if dim % heads:
            raise RawMambaError(f"search block: dim {dim} is not divisible by heads {heads}")
        self.heads = heads
        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))
        self.q = _pointwise_depthwise(dim, dim)
        self.kv = _pointwise_depthwise(context_dim, 2 * dim)
        self.proj = nn.Conv2d(dim, dim, 1)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """``x (N, dim, H, W)``, ``context (N, context_dim, H, W)`` -> ``(N, dim, H, W)``."""
        n, c, h, w = x.shape
        q = self.q(x).view(n, self.heads, c // self.heads, h * w)
        k, v = self.kv(context).view(n, 2, self.heads, c // self.heads, h * w).unbind(1)
        q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
        attn = (q @ k.transpose(-2, -1) * self.temperature).softmax(dim=-1)  # (N, heads, c, c)
        return self.proj((attn @ v).reshape(n, c, h, w))


class GatedFeedForward(nn.Module):
    """Restormer's GDFN: 1x1 expand, 3x3 depth-wise, GELU gate, 1x1 project.

    Args:
        dim: channels in and out.
        expansion: hidden width is ``round(dim * expansion)``.
    """

    def __init__(self, dim: int, *, expansion: float = 2.0) -> None:
        super().__init__()
        hidden = max(1, round(dim * expansion))
        self.expand = nn.Conv2d(dim, 2 * hidden, 1)
        self.dw = nn.Conv2d(2 * hidden, 2 * hidden, 3, padding=1, groups=2 * hidden)
        self.project = nn.Conv2d(hidden, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, dim, H, W)`` -> same."""
        a, b = self.dw(self.expand(x)).chunk(2, dim=1)
        return self.project(F.gelu(a) * b)


class SearchBlock(nn.Module):
    """One channel-wise transformer block: ``x += attn(LN(x), E)``, ``x += FFN(LN(x))``.

    Args:
        dim: channels of the sRGB feature map at this scale.
        context_dim: channels of the metadata embedding E.
        heads: channel-attention heads.
        ffn_expansion: GDFN width factor.
    """

    def __init__(self, dim: int, context_dim: int, *, heads: int = 1, ffn_expansion: float = 2.0) -> None:
        super().__init__()
        self.norm_x = LayerNorm2d(dim)
        self.attention = ChannelCrossAttention(dim, context_dim, heads=heads)
        self.norm_ffn = LayerNorm2d(dim)
        self.ffn = GatedFeedForward(dim, expansion=ffn_expansion)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """``x (N, dim, H, W)``, ``context (N, context_dim, H', W')`` -> ``(N, dim, H, W)``.

        The context is resized to ``(H, W)`` first: bilinear when enlarging, area average when shrinking.
        """
        if context.shape[-1] < x.shape[-1]:
            context = F.interpolate(context, size=x.shape[-2:], mode="bilinear", align_corners=False)
        elif context.shape[-1] > x.shape[-1]:
            context = F.adaptive_avg_pool2d(context, x.shape[-2:])
        x = x + self.attention(self.norm_x(x), context)
        return x + self.ffn(self.norm_ffn(x))
