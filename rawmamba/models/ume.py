"""Unified Metadata Embedding (UME, paper sec. 3.3, eq. 6-12): GEB, LEB and their weighted sum.

Every kind of metadata is an (sRGB, RAW) pair (eq. 6-7): the first frame for video (dense, no mask),
``x * mask`` / ``y * mask`` for images (sparse). Both are brought to one grid with one feature per
``cell x cell`` block (``cell`` = the stride of the encoder stage the UME works at, 8 by default,
matching the paper's one-sample-per-8x8-cell metadata; see encoders.MetadataEncoder). A validity
map marks the cells that hold metadata: for sparse metadata, only those cells are keys (the fixed
per-cell structure replaces gathering a variable number of samples per batch element: empty cells
are masked out of the softmax), and padding added to reach the network's size multiple is invalid.

- GEB (eq. 9-10): ``E_global = softmax(Q K^T) V`` over all valid metadata cells, with
  ``Q = F_srgb`` per frame, ``K = F'_srgb``, ``V = F'_raw`` (after learned linear projections),
  computed with ``scaled_dot_product_attention`` in query chunks to bound memory. Our extension:
  a key budget (``geb_max_keys``, default 1024). Every query attends to every metadata cell, so with
  sampled image metadata (keys ~ pixels / 64) the GEB's cost grows with the square of the pixel count.
  Above the budget, the keys are a deterministic, evenly strided subsample of the valid cells (in raster
  order): a uniform subsample of the metadata whose softmax-weighted mean estimates the full one, and
  linear cost in pixels. Training patches (128^2: 256 keys) and 256^2 inputs (1024 keys) stay below
  the budget and are computed exactly as without it.
- LEB (eq. 11-12): 2-D sinusoidal encodings PE are added to queries (``F_srgb + PE``), keys
  (``F'_srgb + PE'``) and values (``F'_raw + PE'``). For video, ``PE'`` is evaluated at the positions
  the backward optical flow points to and the metadata features are warped to each frame with the
  flow; deformable attention (offsets + per-point bias B) corrects the remaining misalignment.
- ``E = a * E_local + b * E_global`` with learned scalars ``a, b``.

The sRGB query combines the ConvNeXt context feature (f1) with the metadata sRGB encoder f2 applied
to the frame itself (``colour_query=True``), so that a query and a metadata key of the same colour
start close in the shared space (the colour-affinity prior of scattered-data de-rendering methods).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from rawmamba.errors import RawMambaError
from rawmamba.models.deformable_attention import DeformableAttention
from rawmamba.models.encoders import MetadataEncoder
from rawmamba.models.optical_flow import downsample_flow, flow_warp
from rawmamba.models.positional_encoding import pixel_grid, sinusoidal_pe_2d


class GlobalEmbeddingBlock(nn.Module):
    """GEB, eq. 9-10: attention of every frame position over all valid metadata cells.

    Args:
        dim: feature channels of queries, keys, values and output.
        heads: attention heads (the paper's eq. 9 is one head).
        query_chunk: queries per ``scaled_dot_product_attention`` call (bounds memory on big inputs).
        max_keys: key budget (our extension, see the module docstring): at most this many metadata cells
            per batch element are keys, an evenly strided subsample when there are more; None: all.
    """

    def __init__(self, dim: int, *, heads: int = 1, query_chunk: int = 4096, max_keys: int | None = 1024) -> None:
        super().__init__()
        if dim % heads:
            raise RawMambaError(f"GEB: dim {dim} is not divisible by heads {heads}")
        if max_keys is not None and (not isinstance(max_keys, int) or max_keys < 1):
            raise RawMambaError(f"GEB: max_keys must be a positive int or None, got {max_keys!r}")
        self.heads, self.query_chunk, self.max_keys = heads, query_chunk, max_keys
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """``query (B, T, C, h, w)``; ``key, value (B, C, h', w')``; ``valid (B, 1, h', w')`` -> ``(B, T, C, h, w)``."""
        b, t, c, h, w = query.shape
        heads, ch = self.heads, c // self.heads

        def split(tokens: torch.Tensor) -> torch.Tensor:  # (B, L, C) -> (B, heads, L, ch)
            return tokens.view(b, tokens.shape[1], heads, ch).transpose(1, 2)

        q = split(self.q_proj(query.permute(0, 1, 3, 4, 2).reshape(b, t * h * w, c)))
        key, value = key.flatten(2).transpose(1, 2), value.flatten(2).transpose(1, 2)  # (B, S, C)
        keep = valid.flatten(1) > 0.5  # (B, S): only metadata cells are keys
        if self.max_keys is not None and int(keep.sum(1).max()) > self.max_keys:
            index, keep = budget_keys(keep, self.max_keys)
            key, value = (tokens.gather(1, index[..., None].expand(-1, -1, c)) for tokens in (key, value))
        k, v = split(self.k_proj(key)), split(self.v_proj(value))
        mask = None if bool(keep.all()) else keep[:, None, None, :]
        out = torch.cat(
            [
                F.scaled_dot_product_attention(q[:, :, i : i + self.query_chunk], k, v, attn_mask=mask)
                for i in range(0, q.shape[2], self.query_chunk)
            ],
            dim=2,
        )
        out = self.out_proj(out.transpose(1, 2).reshape(b, t * h * w, c))
        return out.view(b, t, h, w, c).permute(0, 1, 4, 2, 3)


def budget_keys(keep: torch.Tensor, max_keys: int) -> tuple[torch.Tensor, torch.Tensor]:
    """At most ``max_keys`` of each row's valid cells, evenly strided in raster order.

    Args:
        keep: ``(B, S)`` bool, the valid cells.
        max_keys: the budget K.

    Returns:
        ``index (B, K)``: cell indices; ``kept (B, K)`` bool: which of them are keys. A row with
        ``n > K`` valid cells keeps its valid cells number ``floor(i n / K)``, ``i < K`` (all distinct);
        a row with ``n <= K`` keeps all of them, followed by unused entries (``kept`` False).
    """
    counts = keep.sum(1, keepdim=True)  # (B, 1)
    valid_first = torch.argsort((~keep).to(torch.uint8), dim=1, stable=True)  # valid cells, raster order
    slots = torch.arange(max_keys, device=keep.device)[None]  # (1, K)
    strided = torch.div(slots * counts, max_keys, rounding_mode="floor")
    rank = torch.where(counts > max_keys, strided, slots.clamp(max=keep.shape[1] - 1))
    return valid_first.gather(1, rank), slots < counts


def _repeat_frames(maps: torch.Tensor, frames: int) -> torch.Tensor:
    """``(B, *S)`` -> ``(B * frames, *S)``, each batch element repeated for its frames."""
    return maps.unsqueeze(1).expand(maps.shape[0], frames, *maps.shape[1:]).flatten(0, 1)


class LocalEmbeddingBlock(nn.Module):
    """LEB, eq. 11-12: positional encodings, flow alignment and deformable attention.

    Args:
        dim: feature channels (a multiple of 4 for the positional encoding).
        heads: deformable-attention heads.
        points: sampling points per head.
        pe_temperature: see positional_encoding.sinusoidal_pe_2d.
    """

    def __init__(self, dim: int, *, heads: int = 4, points: int = 4, pe_temperature: float = 10000.0) -> None:
        super().__init__()
        if dim % 4:
            raise RawMambaError(f"LEB: dim {dim} must be a multiple of 4 (sin/cos per axis of the positional encoding)")
        self.dim, self.pe_temperature = dim, pe_temperature
        self.attention = DeformableAttention(dim, heads=heads, points=points)

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        valid: torch.Tensor,
        flow: torch.Tensor | None,
    ) -> torch.Tensor:
        """``query (B, T, C, h, w)``; ``key, value (B, C, h, w)``; ``valid (B, 1, h, w)``;
        ``flow (B, T, 2, h, w)`` backward flow at this grid's scale (pixels) or None (aligned) ->
        ``(B, T, C, h, w)``."""
        b, t, c, h, w = query.shape
        grid = pixel_grid(h, w, device=query.device)
        pe = sinusoidal_pe_2d(grid, c, temperature=self.pe_temperature)
        q = (query + pe).reshape(b * t, c, h, w)  # F_srgb + PE
        key, value, valid = (_repeat_frames(m, t) for m in (key, value, valid))
        if flow is None:
            pe_meta = pe.expand(b * t, c, h, w)
        else:
            flow = flow.reshape(b * t, 2, h, w)
            key, value, valid = (flow_warp(m, flow) for m in (key, value, valid))
            pe_meta = sinusoidal_pe_2d(grid + flow, c, temperature=self.pe_temperature)  # PE' (warped)
        out = self.attention(q, key + pe_meta, value + pe_meta, valid)  # eq. 11-12
        return out.view(b, t, c, h, w)


class UnifiedMetadataEmbedding(nn.Module):
    """The UME: encoders f2/f3, GEB and/or LEB, and ``E = a * E_local + b * E_global``.

    Args:
        query_channels: channels of the f1 (ConvNeXt) feature at the UME stage.
        raw_channels: ``C_raw`` (3 raw-RGB or 4 packed Bayer).
        dim: embedding channels (a multiple of 4 and of the heads).
        cell: stride of the UME grid relative to the input (8: one cell per 8x8 block).
        meta_hidden: hidden width of the f2/f3 per-pixel MLPs.
        use_geb: build the global branch.
        use_leb: build the local branch.
        geb_heads: GEB attention heads.
        leb_heads: LEB deformable-attention heads.
        leb_points: LEB sampling points per head.
        colour_query: add f2(frame) to the query (see the module docstring).
        pe_temperature: positional-encoding temperature.
        query_chunk: GEB queries per attention call.
        geb_max_keys: GEB key budget (None: every metadata cell is a key).
    """

    def __init__(
        self,
        query_channels: int,
        raw_channels: int,
        *,
        dim: int = 64,
        cell: int = 8,
        meta_hidden: int = 64,
        use_geb: bool = True,
        use_leb: bool = True,
        geb_heads: int = 1,
        leb_heads: int = 4,
        leb_points: int = 4,
        colour_query: bool = True,
        pe_temperature: float = 10000.0,
        query_chunk: int = 4096,
        geb_max_keys: int | None = 1024,
    ) -> None:
        super().__init__()
        if not (use_geb or use_leb):
            raise RawMambaError("UnifiedMetadataEmbedding needs use_geb or use_leb (or build no UME at all)")
        self.cell, self.colour_query = cell, colour_query
        self.query_proj = nn.Conv2d(query_channels, dim, 1)
        self.f2 = MetadataEncoder(3, dim, hidden=meta_hidden, cell=cell)
        self.f3 = MetadataEncoder(raw_channels, dim, hidden=meta_hidden, cell=cell)
        self.geb = (
            GlobalEmbeddingBlock(dim, heads=geb_heads, query_chunk=query_chunk, max_keys=geb_max_keys)
            if use_geb
            else None
        )
        self.leb = (
            LocalEmbeddingBlock(dim, heads=leb_heads, points=leb_points, pe_temperature=pe_temperature)
            if use_leb
            else None
        )
        self.weight_global = nn.Parameter(torch.ones(())) if use_geb else None  # b
        self.weight_local = nn.Parameter(torch.ones(())) if use_leb else None  # a

    def forward(
        self,
        query_feature: torch.Tensor,
        frames: torch.Tensor,
        meta_srgb: torch.Tensor,
        meta_raw: torch.Tensor,
        meta_mask: torch.Tensor,
        flow: torch.Tensor | None,
    ) -> torch.Tensor:
        """Metadata embedding E for every frame.

        Args:
            query_feature: ``(B, T, query_channels, H/cell, W/cell)`` f1 features (F_srgb).
            frames: ``(B, T, 3, H, W)`` the sRGB frames.
            meta_srgb: ``(B, 3, H, W)`` metadata sRGB (x').
            meta_raw: ``(B, C_raw, H, W)`` metadata RAW (y').
            meta_mask: ``(B, 1, H, W)`` where metadata exists (sample mask, or the un-padded extent).
            flow: ``(B, T, 2, H, W)`` backward flow to the metadata frame in pixels, or None (aligned).

        Returns:
            ``(B, T, dim, H/cell, W/cell)``.
        """
        b, t = frames.shape[:2]
        h, w = query_feature.shape[-2:]
        query = self.query_proj(query_feature.flatten(0, 1))
        if self.colour_query:
            query = query + self.f2(frames.flatten(0, 1))[0]
        query = query.view(b, t, -1, h, w)
        key, valid = self.f2(meta_srgb, meta_mask)  # F'_srgb, eq. 8
        value, _ = self.f3(meta_raw, meta_mask)  # F'_raw, eq. 8
        embedding = torch.zeros_like(query)
        if self.geb is not None:
            embedding = embedding + self.weight_global * self.geb(query, key, value, valid)
        if self.leb is not None:
            flow_cells = None
            if flow is not None:
                flow_cells = downsample_flow(flow.flatten(0, 1), self.cell).view(b, t, 2, h, w)
            embedding = embedding + self.weight_local * self.leb(query, key, value, valid, flow_cells)
        return embedding
