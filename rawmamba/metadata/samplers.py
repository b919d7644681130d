"""Image metadata samplers: which RAW pixels to store. Each returns a ``(1, H, W)`` float32 mask in {0, 1}.

- ``grid_mask``: one sample per ``cell x cell`` cell (8x8 -> 1.5625%, the "1.5%" of CAM and the paper),
  as SAM (Punnappurath & Brown 2021) stores uniformly sampled pixels.
- ``random_mask``: exactly ``round(rate * H * W)`` pixels drawn without replacement.
- ``superpixel_mask``: content-aware, one sample per SLIC superpixel with the grid's budget, in the spirit
  of CAM's superpixel sampler (Nam et al. 2022) but fixed rather than learned.

Randomness comes only from an explicit ``torch.Generator``; ``rng=None`` is allowed where a deterministic
rule exists (grid centre, colour-centroid pick) and refused where it does not (``random_mask``).
``make_sampler(name, **options)`` builds any of them by name with a common ``sampler(srgb, rng)`` call.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from rawmamba.errors import RawMambaError

__all__ = ["grid_budget", "grid_mask", "random_mask", "superpixel_mask", "Sampler", "SAMPLERS", "make_sampler"]

_EDGES = ("sample", "skip")


def _check_size(h: int, w: int) -> None:
    if not (isinstance(h, int) and isinstance(w, int) and h > 0 and w > 0):
        raise RawMambaError(f"mask size must be two positive integers, got h={h!r}, w={w!r}")


def _cells(length: int, cell: int, edge: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Start and extent of the cells along one axis."""
    count = math.ceil(length / cell) if edge == "sample" else length // cell
    starts = torch.arange(count) * cell
    return starts, (length - starts).clamp(max=cell)


def grid_budget(h: int, w: int, cell: int = 8, *, edge: str = "sample") -> int:
    """Number of samples ``grid_mask(h, w, cell, edge=edge)`` stores (also the superpixel sampler's budget)."""
    if edge not in _EDGES:
        raise RawMambaError(f"edge must be one of {_EDGES}, got {edge!r}")
    rows = math.ceil(h / cell) if edge == "sample" else h // cell
    cols = math.ceil(w / cell) if edge == "sample" else w // cell
    return rows * cols


def grid_mask(h: int, w: int, cell: int = 8, rng: torch.Generator | None = None, *,
              edge: str = "sample") -> torch.Tensor:
    """One sample in every ``cell x cell`` cell of an ``h x w`` image.

    Args:
        h, w: image size in pixels.
        cell: cell side; 8 gives 1/64 = 1.5625% of the pixels.
        rng: None puts each sample at the cell centre (pixel ``cell // 2`` along each axis); a generator
            draws its position uniformly inside the cell.
        edge: what to do with the partial cells at the bottom/right when ``h`` or ``w`` is not a multiple of
            ``cell``: ``"sample"`` (default) stores one sample in each partial cell too (centre or uniform
            position inside its actual extent), so no border strip is left unsampled; ``"skip"`` stores none
            there (exactly ``(h // cell) * (w // cell)`` samples).

    Returns:
        ``(1, h, w)`` float32 mask with ``grid_budget(h, w, cell, edge=edge)`` ones.
    """
    _check_size(h, w)
    if not (isinstance(cell, int) and cell >= 1):
        raise RawMambaError(f"cell must be a positive integer, got {cell!r}")
    if grid_budget(h, w, cell, edge=edge) == 0:
        raise RawMambaError(f"a {h}x{w} image has no full {cell}x{cell} cell to sample with edge='skip'")
    y0, ey = _cells(h, cell, edge)
    x0, ex = _cells(w, cell, edge)
    if rng is None:
        ys = (y0 + ey // 2)[:, None].expand(-1, x0.numel())
        xs = (x0 + ex // 2)[None, :].expand(y0.numel(), -1)
    else:
        u = torch.rand((2, y0.numel(), x0.numel()), generator=rng, dtype=torch.float64)
        ys = y0[:, None] + torch.minimum((u[0] * ey[:, None]).long(), ey[:, None] - 1)
        xs = x0[None, :] + torch.minimum((u[1] * ex[None, :]).long(), ex[None, :] - 1)
    mask = torch.zeros(1, h, w)
    mask[0, ys.reshape(-1), xs.reshape(-1)] = 1.0
    return mask


def random_mask(h: int, w: int, rate: float, rng: torch.Generator) -> torch.Tensor:
    """Exactly ``round(rate * h * w)`` distinct pixels, uniformly at random.

    Args:
        h, w: image size in pixels.
        rate: fraction of pixels in (0, 1] (1/64 matches the 8x8 grid).
        rng: the generator to draw from (required).

    Returns:
        ``(1, h, w)`` float32 mask.
    """
    _check_size(h, w)
    if not isinstance(rng, torch.Generator):
        raise RawMambaError("random_mask needs an explicit torch.Generator (rng)")
    if not (0 < rate <= 1):
        raise RawMambaError(f"rate must be in (0, 1], got {rate}")
    count = round(rate * h * w)
    if count < 1:
        raise RawMambaError(f"rate {rate} of a {h}x{w} image rounds to no sample at all")
    mask = torch.zeros(h * w)
    mask[torch.randperm(h * w, generator=rng)[:count]] = 1.0
    return mask.view(1, h, w)


def _first_per_label(labels: np.ndarray, key: np.ndarray) -> np.ndarray:
    """Flat index of the pixel with the smallest ``key`` in every label (ties: lowest index)."""
    order = np.lexsort((np.arange(labels.size), key, labels))
    first = np.ones(order.size, dtype=bool)
    first[1:] = labels[order[1:]] != labels[order[:-1]]
    return order[first]


def superpixel_mask(srgb: torch.Tensor, cell: int = 8, rng: torch.Generator | None = None, *,
                    compactness: float = 20.0, refine: int = 2) -> torch.Tensor:
    """One sample per SLIC superpixel, with the budget of ``grid_mask(H, W, cell)`` exactly.

    Steps: SLIC (scikit-image, on the sRGB converted to Lab) with ``n_segments`` = the grid budget; SLIC
    returns fewer segments than asked (often 70-95%), so it is re-run up to ``refine`` times with
    ``n_segments`` scaled by budget / count. In each superpixel we store the pixel whose sRGB colour is
    closest (Euclidean, in [0, 1] sRGB) to the superpixel's mean colour (``rng=None``; ties go to the first
    pixel in raster order), or a uniformly random pixel of the superpixel (``rng`` given). The count is then
    made exactly the budget: surplus samples of the smallest superpixels are dropped; missing ones are
    filled with grid-cell samples (``grid_mask(H, W, cell, rng)``) in cells that hold no sample yet, spread
    evenly over those cells in raster order (or chosen at random with ``rng``).

    Args:
        srgb: ``(3, H, W)`` sRGB image in [0, 1] (the full image, not the masked one).
        cell: grid cell side defining the budget (8 -> 1.5625%).
        rng: None for the deterministic colour-centroid pick; a generator for random picks.
        compactness: SLIC compactness (higher: more regular, closer to the grid; scikit-image default 10).
        refine: extra SLIC runs to bring the superpixel count near the budget (0 disables).

    Returns:
        ``(1, H, W)`` float32 mask with ``grid_budget(H, W, cell)`` ones.
    """
    from skimage.segmentation import slic

    if not isinstance(srgb, torch.Tensor) or srgb.dim() != 3 or srgb.shape[0] != 3:
        shape = tuple(srgb.shape) if isinstance(srgb, torch.Tensor) else type(srgb).__name__
        raise RawMambaError(f"superpixel_mask needs one (3, H, W) sRGB image, got {shape}")
    _, h, w = srgb.shape
    budget = grid_budget(h, w, cell)
    image = srgb.detach().to("cpu", torch.float64).clamp(0, 1).permute(1, 2, 0).numpy()
    asked = budget
    for attempt in range(refine + 1):
        labels = slic(image, n_segments=asked, compactness=compactness, start_label=0, channel_axis=-1).reshape(-1)
        count = int(labels.max()) + 1
        if count >= budget or attempt == refine:
            break
        asked = min(h * w, math.ceil(asked * budget / count))
    pixels = image.reshape(-1, 3)
    sizes = np.bincount(labels, minlength=count)
    if rng is None:
        means = np.stack([np.bincount(labels, pixels[:, c], minlength=count) for c in range(3)], 1) / sizes[:, None]
        key = ((pixels - means[labels]) ** 2).sum(axis=1)
    else:
        key = torch.rand(h * w, generator=rng, dtype=torch.float64).numpy()
    picks = _first_per_label(labels, key)  # one per label, in label order
    if picks.size > budget:  # keep the samples of the largest superpixels
        keep = np.argsort(-sizes, kind="stable")[:budget]
        picks = picks[np.sort(keep)]
    mask = torch.zeros(1, h, w)
    mask.view(-1)[torch.from_numpy(picks)] = 1.0
    missing = budget - picks.size
    if missing > 0:
        cell_of = (torch.arange(h)[:, None] // cell) * math.ceil(w / cell) + torch.arange(w)[None, :] // cell
        free = torch.ones(budget, dtype=torch.bool)
        free[cell_of[mask[0] > 0]] = False
        free_cells = free.nonzero().squeeze(1)
        if rng is None:
            chosen = free_cells[torch.linspace(0, free_cells.numel() - 1, missing).round().long()]
        else:
            chosen = free_cells[torch.randperm(free_cells.numel(), generator=rng)[:missing]]
        take = torch.zeros(budget, dtype=torch.bool)
        take[chosen] = True
        mask[0][(grid_mask(h, w, cell, rng)[0] > 0) & take[cell_of]] = 1.0
    return mask


_SamplerFn = Callable[..., torch.Tensor]


def _grid(srgb: torch.Tensor, rng: torch.Generator | None, **options) -> torch.Tensor:
    return grid_mask(int(srgb.shape[-2]), int(srgb.shape[-1]), rng=rng, **options)


def _random(srgb: torch.Tensor, rng: torch.Generator | None, **options) -> torch.Tensor:
    return random_mask(int(srgb.shape[-2]), int(srgb.shape[-1]), rng=rng, **options)


def _superpixel(srgb: torch.Tensor, rng: torch.Generator | None, **options) -> torch.Tensor:
    return superpixel_mask(srgb, rng=rng, **options)


# name -> (function of (srgb, rng, **options), accepted options, default options)
SAMPLERS: dict[str, tuple[_SamplerFn, tuple[str, ...], dict[str, object]]] = {
    "grid": (_grid, ("cell", "edge"), {"cell": 8}),
    "random": (_random, ("rate",), {"rate": 1 / 64}),
    "superpixel": (_superpixel, ("cell", "compactness", "refine"), {"cell": 8}),
}


@dataclass(frozen=True)
class Sampler:
    """A named sampler with fixed options: ``sampler(srgb, rng) -> (1, H, W)`` mask. Build with ``make_sampler``.

    Attributes:
        name: registry name (``"grid"``, ``"random"``, ``"superpixel"``).
        options: keyword options passed to the sampler function (``cell``, ``rate``, ...).
    """

    name: str
    options: dict[str, object] = field(default_factory=dict)

    def __call__(self, srgb: torch.Tensor, rng: torch.Generator | None = None) -> torch.Tensor:
        """Mask for the ``(3, H, W)`` sRGB image ``srgb`` (only its size matters for grid and random)."""
        if not isinstance(srgb, torch.Tensor) or srgb.dim() < 2:
            raise RawMambaError(f"sampler {self.name!r} needs a (3, H, W) sRGB tensor")
        return SAMPLERS[self.name][0](srgb, rng, **self.options)

    def info(self) -> dict[str, object]:
        """What to record with saved metadata: ``{"sampler": name, **options}``."""
        return {"sampler": self.name, **self.options}


def make_sampler(name: str, **options: object) -> Sampler:
    """The sampler registered as ``name`` with ``options`` over its defaults (grid and superpixel: ``cell=8``;
    random: ``rate=1/64``). Unknown names or options raise ``RawMambaError``."""
    if name not in SAMPLERS:
        raise RawMambaError(f"unknown sampler {name!r}; choose one of {sorted(SAMPLERS)}")
    _, accepted, defaults = SAMPLERS[name]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise RawMambaError(f"sampler {name!r} does not take {unknown}; it accepts {list(accepted)}")
    return Sampler(name, {**defaults, **options})
