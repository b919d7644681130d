"""Deformable attention in pure PyTorch (Deformable DETR, Zhu et al. 2020), as used by the LEB.

Every query looks at ``points`` locations per head around its reference point: the locations are
``reference + offset`` with offsets predicted from the query, and keys/values are read there with
bilinear sampling (``grid_sample``). The attention logits combine the scaled dot product between
query and sampled key with a per-point bias predicted from the query; this is paper eq. 11,
``A2 = softmax((F + PE)(F' + PE') / sqrt(d) + B)``, where B is the deformable term, restricted to the
sampled points. An optional validity map (1 where the metadata exists) is sampled with the keys and
enters as ``log(valid)`` so that empty or out-of-frame locations get (almost) no weight.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from rawmamba.errors import RawMambaError
from rawmamba.models.positional_encoding import pixel_grid


def _sample(maps: torch.Tensor, locations: torch.Tensor) -> torch.Tensor:
    """Bilinear read of ``maps (M, C, H, W)`` at ``locations (M, P, L, 2)`` pixels -> ``(M, C, P, L)``."""
    h, w = maps.shape[-2:]
    gx = 2.0 * locations[..., 0] / max(w - 1, 1) - 1.0
    gy = 2.0 * locations[..., 1] / max(h - 1, 1) - 1.0
    return F.grid_sample(maps, torch.stack((gx, gy), dim=-1), mode="bilinear", padding_mode="zeros", align_corners=True)


def deformable_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    reference: torch.Tensor,
    offsets: torch.Tensor,
    bias: torch.Tensor,
    *,
    valid: torch.Tensor | None = None,
    eps: float = 1e-4,
) -> torch.Tensor:
    """Multi-head deformable attention (functional core, no projections).

    Args:
        query: ``(N, L, C)`` queries; ``C`` splits into ``heads`` equal parts.
        key: ``(N, C, H, W)`` key map.
        value: ``(N, C, H, W)`` value map.
        reference: ``(N, L, 2)`` reference points in pixels of the key/value grid (x, y).
        offsets: ``(N, L, heads, points, 2)`` sampling offsets in pixels, added to the reference.
        bias: ``(N, L, heads, points)`` additive logit per sampled point (the B of eq. 11).
        valid: ``(N, 1, H, W)`` in [0, 1] or None (all valid); sampled like the keys, added as
            ``log(max(valid, eps))`` to the logits. Reads outside the map count as invalid.
        eps: floor of the sampled validity inside the log.

    Returns:
        ``(N, L, C)``: per head, the softmax-weighted (over points) sum of the sampled values.
        With all offsets zero this is the value bilinearly sampled at the reference point.
    """
    n, length, c = query.shape
    heads, points = offsets.shape[2], offsets.shape[3]
    if c % heads:
        raise RawMambaError(f"deformable attention: {c} channels do not split into {heads} heads")
    if key.shape != value.shape or key.shape[:2] != (n, c):
        raise RawMambaError(f"deformable attention: key {tuple(key.shape)} / value {tuple(value.shape)} vs query {c}")
    ch = c // heads
    h, w = key.shape[-2:]
    # (N, L, heads, P, 2) -> (N * heads, P, L, 2)
    loc = (reference[:, :, None, None, :] + offsets).permute(0, 2, 3, 1, 4).reshape(n * heads, points, length, 2)
    k = _sample(key.reshape(n * heads, ch, h, w), loc)  # (N*heads, ch, P, L)
    v = _sample(value.reshape(n * heads, ch, h, w), loc)
    q = query.reshape(n, length, heads, ch).permute(0, 2, 3, 1).reshape(n * heads, ch, 1, length)
    logits = (q * k).sum(dim=1) / math.sqrt(ch)  # (N*heads, P, L)
    logits = logits + bias.permute(0, 2, 3, 1).reshape(n * heads, points, length)
    if valid is None:
        valid = key.new_ones(n, 1, h, w)
    val = _sample(valid.expand(n, heads, h, w).reshape(n * heads, 1, h, w), loc)[:, 0]  # (N*heads, P, L)
    logits = logits + val.clamp_min(eps).log()
    weights = logits.softmax(dim=1)  # softmax over the sampled points
    out = (v * weights[:, None]).sum(dim=2)  # (N*heads, ch, L)
    return out.reshape(n, heads * ch, length).transpose(1, 2)


class DeformableAttention(nn.Module):
    """Deformable attention on feature maps: every position of ``query`` is a query whose reference
    point is the same position in the key/value maps (the maps are aligned beforehand, e.g. warped).

    Args:
        dim: channels of query, key and value maps (and of the output).
        heads: attention heads; must divide ``dim``.
        points: sampling points per head and query.
        init_radius: at initialisation head ``h`` samples along direction ``2*pi*h/heads`` at
            distances ``init_radius * (p + 1)`` pixels for ``p = 0 .. points-1`` (Deformable DETR's init);
            the offsets are then learned from the query.
    """

    def __init__(self, dim: int, *, heads: int = 4, points: int = 4, init_radius: float = 1.0) -> None:
        super().__init__()
        if dim % heads:
            raise RawMambaError(f"DeformableAttention: dim {dim} is not divisible by heads {heads}")
        self.heads, self.points = heads, points
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Conv2d(dim, dim, 1)
        self.v_proj = nn.Conv2d(dim, dim, 1)
        self.offset = nn.Linear(dim, heads * points * 2)
        self.bias = nn.Linear(dim, heads * points)
        self.out_proj = nn.Linear(dim, dim)
        nn.init.zeros_(self.offset.weight)
        angles = torch.arange(heads, dtype=torch.float32) * (2 * math.pi / heads)
        ring = torch.stack((angles.cos(), angles.sin()), dim=-1)[:, None, :]  # (heads, 1, 2)
        radii = init_radius * torch.arange(1, points + 1, dtype=torch.float32)[None, :, None]
        with torch.no_grad():
            self.offset.bias.copy_((ring * radii).flatten())
        nn.init.zeros_(self.bias.weight)
        nn.init.zeros_(self.bias.bias)

    def forward(
        self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, valid: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``query, key, value: (N, dim, H, W)``, ``valid: (N, 1, H, W)`` or None -> ``(N, dim, H, W)``."""
        n, c, h, w = query.shape
        tokens = query.flatten(2).transpose(1, 2)  # (N, L, C)
        reference = pixel_grid(h, w, device=query.device).flatten(1).t().unsqueeze(0).expand(n, -1, -1)
        offsets = self.offset(tokens).view(n, h * w, self.heads, self.points, 2)
        bias = self.bias(tokens).view(n, h * w, self.heads, self.points)
        out = deformable_attention(
            self.q_proj(tokens), self.k_proj(key), self.v_proj(value), reference, offsets, bias, valid=valid
        )
        return self.out_proj(out).transpose(1, 2).reshape(n, c, h, w)
