"""Bayer colour filter arrays: mosaic, pack/unpack to 4 channels, bilinear demosaic.

Conventions (docs/CONVENTIONS.md): images are ``(*, C, H, W)`` float tensors; a mosaic is
``(*, 1, H, W)``; a packed Bayer image is ``(*, 4, H/2, W/2)`` in the order R, Gr, Gb, B, where Gr is
the green pixel on the red rows and Gb the green pixel on the blue rows (RVD-Part2 layout).

``demosaic_bilinear`` is the "standard bilinear interpolation" the CAM dataset used to turn NUS
Bayer images into 3-channel raw-RGB (paper Sec. 4.1). All functions here are pure indexing or
convolution: NaN values propagate (to the pixel and, after demosaicing, its neighbours) and never raise.
"""

from __future__ import annotations

from enum import Enum

import torch
import torch.nn.functional as F

from rawmamba.errors import RawMambaError

__all__ = ["CFA", "as_cfa", "mosaic", "pack", "unpack", "demosaic_bilinear"]

# Colour index of each pixel of the 2x2 tile, row-major: 0 = red, 1 = green, 2 = blue.
_TILES: dict[str, tuple[tuple[int, int], tuple[int, int]]] = {
    "RGGB": ((0, 1), (1, 2)),
    "BGGR": ((2, 1), (1, 0)),
    "GRBG": ((1, 0), (2, 1)),
    "GBRG": ((1, 2), (0, 1)),
}


class CFA(str, Enum):
    """A 2x2 Bayer pattern, named by reading its tile row by row from the top-left pixel.

    ``RGGB``: top-left pixel red, then green; second row green, blue (RVD-Part2's pattern).
    ``BGGR``: top-left pixel blue. ``GRBG``: top-left green with red to its right.
    ``GBRG``: top-left green with blue to its right.
    Cropping one column off a mosaic turns RGGB into GRBG; one row turns it into GBRG (``shifted``).
    """

    RGGB = "RGGB"
    BGGR = "BGGR"
    GRBG = "GRBG"
    GBRG = "GBRG"

    @property
    def tile(self) -> tuple[tuple[int, int], tuple[int, int]]:
        """The 2x2 tile as colour indices (0 = R, 1 = G, 2 = B), ``tile[row][col]``."""
        return _TILES[self.value]

    @property
    def offsets(self) -> tuple[tuple[int, int], ...]:
        """``(row, col)`` of R, Gr, Gb, B inside the tile: the packing order of ``pack``."""
        t = self.tile
        red = next((r, c) for r in range(2) for c in range(2) if t[r][c] == 0)
        blue = next((r, c) for r in range(2) for c in range(2) if t[r][c] == 2)
        green_on_red_row = (red[0], 1 - red[1])
        green_on_blue_row = (blue[0], 1 - blue[1])
        return red, green_on_red_row, green_on_blue_row, blue

    def shifted(self, dy: int, dx: int) -> CFA:
        """The pattern seen after cropping ``dy`` rows off the top and ``dx`` columns off the left."""
        t = self.tile
        new = tuple(tuple(t[(r + dy) % 2][(c + dx) % 2] for c in range(2)) for r in range(2))
        return next(cfa for cfa in CFA if cfa.tile == new)

    @classmethod
    def from_raw_pattern(cls, raw_pattern, color_desc: str | bytes = "RGBG") -> CFA:
        """The pattern from rawpy's ``raw_pattern`` (2x2 indices into ``color_desc``, e.g. ``b"RGBG"``)."""
        desc = color_desc.decode() if isinstance(color_desc, bytes) else color_desc
        try:
            letters = "".join(desc[int(raw_pattern[r][c])] for r in range(2) for c in range(2))
        except (IndexError, TypeError, ValueError) as exc:
            raise RawMambaError(f"raw_pattern {raw_pattern!r} is not a 2x2 index array into {desc!r}") from exc
        try:
            return cls(letters.upper())
        except ValueError as exc:
            raise RawMambaError(f"raw_pattern {raw_pattern!r} with color_desc {desc!r} is not a Bayer CFA") from exc


def as_cfa(cfa: CFA | str) -> CFA:
    """``cfa`` as a ``CFA``; strings are case-insensitive (``"rggb"``). Unknown names raise RawMambaError."""
    if isinstance(cfa, CFA):
        return cfa
    try:
        return CFA(str(cfa).upper())
    except ValueError as exc:
        raise RawMambaError(f"cfa={cfa!r} is not one of {[c.value for c in CFA]}") from exc


def _check_image(x: torch.Tensor, name: str, channels: int, *, even: bool = True) -> None:
    if not isinstance(x, torch.Tensor):
        raise RawMambaError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim < 3 or x.shape[-3] != channels:
        raise RawMambaError(f"{name} must have shape (*, {channels}, H, W), got {tuple(x.shape)}")
    if even and (x.shape[-2] % 2 or x.shape[-1] % 2):
        raise RawMambaError(f"{name} must have even H and W for a 2x2 Bayer pattern, got {tuple(x.shape[-2:])}")


def _color_masks(cfa: CFA, h: int, w: int, origin: int, like: torch.Tensor) -> torch.Tensor:
    """``(3, h, w)`` one-hot colour masks of the pattern whose pixel ``(origin, origin)`` is its top-left."""
    rows = (torch.arange(h, device=like.device) + origin) % 2
    cols = (torch.arange(w, device=like.device) + origin) % 2
    tile = torch.tensor(cfa.tile, device=like.device)
    index = tile[rows[:, None], cols[None, :]]
    return (index[None] == torch.arange(3, device=like.device)[:, None, None]).to(like.dtype)


def mosaic(rgb: torch.Tensor, cfa: CFA | str) -> torch.Tensor:
    """Sample a ``(*, 3, H, W)`` RGB image through the Bayer pattern ``cfa``: ``(*, 1, H, W)``, same range."""
    cfa = as_cfa(cfa)
    _check_image(rgb, "rgb", 3)
    masks = _color_masks(cfa, rgb.shape[-2], rgb.shape[-1], 0, rgb)
    # A gather rather than a masked sum, so that NaN in one colour does not leak into the others.
    index = masks.argmax(0).expand(*rgb.shape[:-3], 1, *rgb.shape[-2:])
    return torch.gather(rgb, -3, index)


def pack(mosaic: torch.Tensor, cfa: CFA | str) -> torch.Tensor:
    """Pack a ``(*, 1, H, W)`` Bayer mosaic into ``(*, 4, H/2, W/2)`` ordered R, Gr, Gb, B."""
    cfa = as_cfa(cfa)
    _check_image(mosaic, "mosaic", 1)
    planes = [mosaic[..., 0, r::2, c::2] for r, c in cfa.offsets]
    return torch.stack(planes, dim=-3)


def unpack(packed: torch.Tensor, cfa: CFA | str) -> torch.Tensor:
    """Inverse of ``pack``: ``(*, 4, h, w)`` planes R, Gr, Gb, B to a ``(*, 1, 2h, 2w)`` mosaic."""
    cfa = as_cfa(cfa)
    _check_image(packed, "packed", 4, even=False)
    h, w = packed.shape[-2:]
    out = packed.new_empty(*packed.shape[:-3], 1, 2 * h, 2 * w)
    for plane, (r, c) in enumerate(cfa.offsets):
        out[..., 0, r::2, c::2] = packed[..., plane, :, :]
    return out


def _pad_same_colour_linear(x: torch.Tensor) -> torch.Tensor:
    """Pad the last two dims by one with period-2 linear extrapolation: ``x[-1] = 2 x[1] - x[3]``.

    Each padded pixel is extrapolated from the two nearest pixels of the same CFA colour, so any
    image that is linear (or bilinear) in x and y is extended exactly.
    """
    top = 2 * x[..., 1:2, :] - x[..., 3:4, :]
    bottom = 2 * x[..., -2:-1, :] - x[..., -4:-3, :]
    x = torch.cat([top, x, bottom], dim=-2)
    left = 2 * x[..., :, 1:2] - x[..., :, 3:4]
    right = 2 * x[..., :, -2:-1] - x[..., :, -4:-3]
    return torch.cat([left, x, right], dim=-1)


def demosaic_bilinear(mosaic: torch.Tensor, cfa: CFA | str, *, border: str = "reflect") -> torch.Tensor:
    """Bilinear demosaic of a ``(*, 1, H, W)`` Bayer mosaic into ``(*, 3, H, W)`` RGB.

    Each missing colour is the mean of its nearest same-colour neighbours (2 or 4 of them); measured
    colours are kept. Exact on constant images everywhere and on linear ramps away from the border.

    Args:
        mosaic: ``(*, 1, H, W)`` with even H and W, any range.
        cfa: the Bayer pattern of ``mosaic``.
        border: how the one-pixel border is extended before interpolating.
            ``"reflect"`` (default) mirrors about the edge pixel, which keeps the CFA phase; outputs stay
            within the range of the input; exact on ramps only for pixels not on the border.
            ``"linear"`` extrapolates each colour linearly from its own samples; exact on linear (and
            bilinear) ramps everywhere, may overshoot the input range at the border; needs H, W >= 4.
    """
    cfa = as_cfa(cfa)
    _check_image(mosaic, "mosaic", 1)
    h, w = mosaic.shape[-2:]
    flat = mosaic.reshape(-1, 1, h, w)
    if border == "reflect":
        padded = F.pad(flat, (1, 1, 1, 1), mode="reflect")
    elif border == "linear":
        if h < 4 or w < 4:
            raise RawMambaError(f"demosaic_bilinear(border='linear') needs H, W >= 4, got {(h, w)}")
        padded = _pad_same_colour_linear(flat)
    else:
        raise RawMambaError(f"border={border!r} is not one of ['reflect', 'linear']")
    masks = _color_masks(cfa, h + 2, w + 2, -1, flat)
    # (N, 3, H+2, W+2): each colour plane keeps its own samples; a select, not a product, so that a NaN
    # sample stays in its own colour plane.
    sparse = torch.where(masks[None].bool(), padded, torch.zeros((), dtype=flat.dtype, device=flat.device))
    cross = torch.tensor([[0.0, 1.0, 0.0], [1.0, 4.0, 1.0], [0.0, 1.0, 0.0]]) / 4
    box = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]) / 4
    kernels = torch.stack([box, cross, box])[:, None].to(device=flat.device, dtype=flat.dtype)
    rgb = F.conv2d(sparse, kernels, groups=3)
    return rgb.reshape(*mosaic.shape[:-3], 3, h, w)
