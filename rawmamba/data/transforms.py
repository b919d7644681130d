"""Random crops, flips and transpositions applied consistently to every spatial entry of a dataset item.

An item (docs/CONVENTIONS.md) holds ``srgb (T, 3, H, W)``, ``raw (T, C_raw, H, W)``, ``meta_srgb (3, H, W)``,
``meta_raw (C_raw, H, W)``, optionally ``meta_mask (1, H, W)`` and ``flow (T, 2, H, W)``. ``RandomCropFlip``
draws one geometric change per item and applies it to all of them, so that sRGB, RAW, metadata and flow
stay aligned:

- flow is backward flow in pixels, channel 0 = x: a horizontal flip negates channel 0, a vertical flip
  negates channel 1, a transposition swaps the two channels;
- 3-channel raw-RGB is moved like any image;
- 4-channel packed Bayer RAW (planes R, Gr, Gb, B of a 2x2 pattern ``cfa``) is handled in the mosaic
  domain. Mirroring the packed planes naively would turn an RGGB mosaic into GRBG (the red sample moves
  to the right of its 2x2 block). Here a flip is a mirror of the mosaic about a *pixel centre*, which
  keeps every pixel's column parity and therefore the pattern: red samples stay red samples at the
  top-left of each block, and the output is again a valid ``cfa`` mosaic, exactly. The price is that
  the flipped 2x2 blocks straddle two original blocks, half a packed pixel away from the old grid, so
  the half-resolution sRGB, metadata sRGB and flow are resampled there by averaging the two
  neighbouring pixels (exact for images that are linear across the pair; otherwise a slight blur of
  the input, never of the RAW target). A flipped axis therefore needs one spare packed pixel: with
  ``size=None`` a packed item loses one row/column on every axis that may flip. A transposition keeps
  RGGB and BGGR exactly (Gr and Gb swap planes); other patterns raise.
- a sample mask is moved by nearest neighbour, and when a mask is present the metadata is re-derived
  from the transformed frame (``meta = frame * mask``, image task, T = 1), so ``Metadata``'s invariant
  holds exactly.

Crops are whole (packed) pixels, so a packed crop is always at an even mosaic offset.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rawmamba.errors import RawMambaError
from rawmamba.isp.cfa import CFA, as_cfa

__all__ = ["RandomCropFlip", "SPATIAL_KEYS"]

# Entries moved by the transform; anything else in an item passes through unchanged.
SPATIAL_KEYS = ("srgb", "raw", "meta_srgb", "meta_raw", "meta_mask", "flow")


@dataclass(frozen=True)
class _Axis:
    """Source indices along one axis: ``sub[s][k]`` for packed planes whose sample sits at sub-offset ``s``
    (0 = first, 1 = second pixel of the 2x2 block along this axis); ``pixel = (a, b)`` for pixel-centred
    tensors, whose output is the mean of ``x[a]`` and ``x[b]`` (``a == b`` when no resampling is needed)."""

    sub: tuple[torch.Tensor, torch.Tensor]
    pixel: tuple[torch.Tensor, torch.Tensor]
    flipped: bool


def _plan_axis(length: int, n: int, flip: bool, packed: bool, rng: torch.Generator, name: str) -> _Axis:
    spare = 1 if (flip and packed) else 0
    if n + spare > length:
        raise RawMambaError(f"crop {name}={n} does not fit an item of {name} {length}" + (
            " (a flipped packed Bayer axis needs one spare pixel)" if spare else ""))
    start = int(torch.randint(0, length - n - spare + 1, (1,), generator=rng))
    k = torch.arange(n)
    if not flip:
        idx = start + k
        return _Axis(sub=(idx, idx), pixel=(idx, idx), flipped=False)
    if not packed:
        idx = start + n - 1 - k
        return _Axis(sub=(idx, idx), pixel=(idx, idx), flipped=True)
    # Mosaic column s = 2j + o (o = sub-offset). Mirroring the mosaic window [2*start + 1, 2*(start + n) + 1)
    # about its centre maps output column i to source column 2*(start + n) - i, which has i's parity:
    # sub-offset 0 of output block k comes from block start + n - k, sub-offset 1 from start + n - 1 - k.
    # The new block's centre lies midway between old blocks start + n - 1 - k and start + n - k.
    first, second = start + n - k, start + n - 1 - k
    return _Axis(sub=(first, second), pixel=(second, first), flipped=True)


def _take_pixels(x: torch.Tensor, rows: _Axis, cols: _Axis, *, nearest: bool) -> torch.Tensor:
    def along(t: torch.Tensor, axis: _Axis, dim: int) -> torch.Tensor:
        a, b = axis.pixel
        if torch.equal(a, b) or nearest:
            return t.index_select(dim, b)
        return 0.5 * (t.index_select(dim, a) + t.index_select(dim, b))

    return along(along(x, rows, -2), cols, -1)


def _take_planes(x: torch.Tensor, rows: _Axis, cols: _Axis, cfa: CFA) -> torch.Tensor:
    planes = []
    for plane, (r, c) in enumerate(cfa.offsets):
        p = x[..., plane, :, :].index_select(-2, rows.sub[r]).index_select(-1, cols.sub[c])
        planes.append(p)
    return torch.stack(planes, dim=-3)


def _transpose_planes(x: torch.Tensor, cfa: CFA) -> torch.Tensor:
    offsets = cfa.offsets
    order = []
    for r, c in offsets:
        if cfa.tile[c][r] != cfa.tile[r][c]:
            raise RawMambaError(f"transposing packed Bayer RAW with cfa={cfa.value} would change the pattern; "
                                "use transpose=False (only RGGB and BGGR are symmetric about the diagonal)")
        order.append(offsets.index((c, r)))
    return x[..., order, :, :].transpose(-2, -1)


class RandomCropFlip:
    """Random crop, horizontal/vertical flip and transposition of a dataset item, consistent across entries.

    Args:
        size: output ``(H, W)`` in item pixels (packed pixels for 4-channel RAW); ``None`` keeps the
            item's size (minus one spare packed pixel on each axis that may flip, see the module doc).
        hflip: flip left-right with probability 1/2.
        vflip: flip top-bottom with probability 1/2.
        transpose: swap H and W with probability 1/2 (with both flips: all eight 90-degree rotations and
            reflections). Then ``size`` must be square, or ``None`` with a square item, so that batch
            shapes do not change.
        cfa: Bayer pattern of 4-channel packed RAW (RVD-Part2: RGGB); unused for 3-channel RAW.

    Call as ``transform(item, rng)`` with a ``torch.Generator``; returns a new dict.
    """

    def __init__(self, *, size: tuple[int, int] | None = None, hflip: bool = True, vflip: bool = True,
                 transpose: bool = False, cfa: CFA | str = CFA.RGGB) -> None:
        if size is not None and (len(size) != 2 or min(size) < 1):
            raise RawMambaError(f"size must be (H, W) with positive entries, got {size!r}")
        if transpose and size is not None and size[0] != size[1]:
            raise RawMambaError(f"transpose=True needs a square size, got {size!r}")
        self.size = None if size is None else (int(size[0]), int(size[1]))
        self.hflip, self.vflip, self.transpose = hflip, vflip, transpose
        self.cfa = as_cfa(cfa)

    def __repr__(self) -> str:
        return (f"RandomCropFlip(size={self.size}, hflip={self.hflip}, vflip={self.vflip}, "
                f"transpose={self.transpose}, cfa={self.cfa.value})")

    def __call__(self, item: dict, rng: torch.Generator) -> dict:
        sizes = {key: tuple(item[key].shape[-2:]) for key in SPATIAL_KEYS if item.get(key) is not None}
        if "raw" not in sizes:
            raise RawMambaError("RandomCropFlip needs an item with a 'raw' entry")
        h, w = sizes["raw"]
        if any(s != (h, w) for s in sizes.values()):
            raise RawMambaError(f"item entries have different spatial sizes: {sizes}")
        packed = item["raw"].shape[-3] == 4
        if self.transpose and self.size is None and h != w:
            raise RawMambaError(f"transpose=True with size=None needs a square item, got {h}x{w}")
        flip_v = self.vflip and bool(torch.rand((), generator=rng) < 0.5)
        flip_h = self.hflip and bool(torch.rand((), generator=rng) < 0.5)
        swap = self.transpose and bool(torch.rand((), generator=rng) < 0.5)
        if self.size is None:
            out_h, out_w = h - int(packed and self.vflip), w - int(packed and self.hflip)
        else:
            out_h, out_w = self.size
        rows = _plan_axis(h, out_h, flip_v, packed, rng, "H")
        cols = _plan_axis(w, out_w, flip_h, packed, rng, "W")

        out = dict(item)
        for key in sizes:
            x = item[key]
            if key in ("raw", "meta_raw") and packed:
                x = _take_planes(x, rows, cols, self.cfa)
                x = _transpose_planes(x, self.cfa) if swap else x
            else:
                x = _take_pixels(x, rows, cols, nearest=key == "meta_mask")
                x = x.transpose(-2, -1) if swap else x
            out[key] = x.contiguous()
        if "flow" in sizes:
            flow = out["flow"].clone()
            # Backward flow in pixels: mirroring x negates u, mirroring y negates v; the plan above was in
            # the untransposed frame, so negate before swapping the components.
            if flip_h:
                flow[..., 0, :, :] *= -1
            if flip_v:
                flow[..., 1, :, :] *= -1
            out["flow"] = flow.flip(-3) if swap else flow
        if "meta_mask" in sizes and (rows.flipped or cols.flipped) and packed:
            if out["srgb"].shape[0] != 1:
                raise RawMambaError("an item with meta_mask must hold one frame (image task)")
            out["meta_srgb"] = out["srgb"][0] * out["meta_mask"]
            out["meta_raw"] = out["raw"][0] * out["meta_mask"]
        return out
