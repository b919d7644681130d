"""Global and local cross-attention fusing two feature maps (the RVD-style baseline's two encoders).

The query map (features of the current sRGB frame) reads the context map (features of the warped
previous RAW) twice: globally, every position attending to every position (multi-head attention over
the flattened map), and locally, every position attending to the ``window x window`` neighbourhood
around itself (single-head, dot product over channels). Both results are added to the query map
through 1x1 projections initialised small, so the fusion starts close to the identity on the query.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class LocalCrossAttention(nn.Module):
    """Each query position attends to the ``window x window`` context positions around it.

    Args:
        dim: channels of both maps.
        window: odd neighbourhood side.
    """

    def __init__(self, dim: int, window: int = 3) -> None:
        super().__init__()
        self.window = window
        self.query = nn.Conv2d(dim, dim, 1)
        self.key = nn.Conv2d(dim, dim, 1)
        self.value = nn.Conv2d(dim, dim, 1)

    def forward(self, query: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` maps -> ``(N, C, H, W)``; outside the map the context is zero."""
        n, c, h, w = query.shape
        k = self.window
        q = self.query(query).view(n, c, 1, h * w)
        keys = F.unfold(self.key(context), k, padding=k // 2).view(n, c, k * k, h * w)
        values = F.unfold(self.value(context), k, padding=k // 2).view(n, c, k * k, h * w)
        weights = ((q * keys).sum(1) / math.sqrt(c)).softmax(dim=1)  # (N, k*k, H*W)
        return (values * weights[:, None]).sum(2).view(n, c, h, w)


class CrossAttentionFusion(nn.Module):
    """``query + P_g(global attention) + P_l(local attention)`` of the query map over the context map.

    Args:
        dim: channels of both maps.
        heads: heads of the global attention.
        window: neighbourhood side of the local attention.
    """

    def __init__(self, dim: int, *, heads: int = 4, window: int = 3) -> None:
        super().__init__()
        self.norm_query = nn.LayerNorm(dim)
        self.norm_context = nn.LayerNorm(dim)
        self.global_attention = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.local_attention = LocalCrossAttention(dim, window)
        self.project_global = nn.Conv2d(dim, dim, 1)
        self.project_local = nn.Conv2d(dim, dim, 1)
        for projection in (self.project_global, self.project_local):
            nn.init.normal_(projection.weight, std=0.01)
            nn.init.zeros_(projection.bias)

    def forward(self, query: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` maps -> the fused ``(N, C, H, W)``."""
        n, c, h, w = query.shape
        q = self.norm_query(query.flatten(2).transpose(1, 2))
        kv = self.norm_context(context.flatten(2).transpose(1, 2))
        attended, _ = self.global_attention(q, kv, kv, need_weights=False)
        global_map = attended.transpose(1, 2).reshape(n, c, h, w)
        local_map = self.local_attention(query, context)
        return query + self.project_global(global_map) + self.project_local(local_map)
