"""Scan orders of a (T, H, W) feature volume: raster (paper eq. 16) and a 3-D generalised Hilbert curve (eq. 14).

An order is a LongTensor ``order`` of length ``T*H*W``: ``order[i]`` is the raster index ``t*H*W + y*W + x``
of the i-th token of the sequence. :func:`to_sequence` gathers a volume into that sequence and
:func:`from_sequence` scatters it back (exactly, through the inverse permutation).

The Hilbert curve is our own "generalised" construction for boxes of any size (the idea of the gilbert
algorithm: recursive splits into sub-boxes, each traversed from one corner to the corner next to it along its
major axis, so that consecutive sub-boxes touch). A box with major axis ``a`` (length w) and side axes ``b``,
``c`` is split by one of:

- halving ``a`` (two sub-boxes in a row), when the box is long in ``a``;
- a U in the plane (``a``, ``b``) or (``a``, ``c``): up the first half of ``a``, across the far half, back
  down the second half (3 sub-boxes, the third axis carried whole), when one side axis dominates;
- the 3-D "octant" route (the Gray-code order of the 8 half-boxes, merged into 5 sub-boxes), for boxes of
  similar sides.

A sub-box can be traversed corner-to-adjacent-corner only if its major length is even or its volume odd
(the grid is bipartite); split points are chosen, near the halves, to keep every sub-box so, trying the
other split kinds before giving up. The top level takes an even side as its major axis when one exists.
Result: for every size we tried (all even, odd and mixed shapes up to 12^3 once by hand, up to 9^3 in the tests,
and the network's real ones) consecutive tokens are unit steps (Manhattan distance 1). If a shape ever has no
valid split, the curve stays a permutation but may take a short jump there; ``max_step`` in the tests bounds it.
"""

from __future__ import annotations

import functools
import weakref

import numpy as np
import torch

from rawmamba.errors import RawMambaError
from rawmamba.models.volume_conv import volume_layout

Vec = tuple[int, int, int]


def _add(*vs: Vec) -> Vec:
    x = y = z = 0
    for v in vs:
        x, y, z = x + v[0], y + v[1], z + v[2]
    return (x, y, z)


def _length(v: Vec) -> int:
    return abs(v[0] + v[1] + v[2])


def _unit(v: Vec) -> Vec:
    return ((v[0] > 0) - (v[0] < 0), (v[1] > 0) - (v[1] < 0), (v[2] > 0) - (v[2] < 0))


def _scaled(v: Vec, n: int) -> Vec:
    """The vector along ``v`` with length ``n`` (same sign)."""
    u = _unit(v)
    return (u[0] * n, u[1] * n, u[2] * n)


def _neg(v: Vec) -> Vec:
    return (-v[0], -v[1], -v[2])


def _traversable(major: int, volume: int) -> bool:
    """Can a box be walked with unit steps from a corner to the corner next to it along the major axis?"""
    return volume == 1 or (major >= 2 and (major % 2 == 0 or volume % 2 == 1))


def _split_points(n: int) -> list[int]:
    """Where to cut a side of length ``n`` >= 2: near the half, even cuts first."""
    near = sorted({n // 2, (n + 1) // 2, n // 2 - 1, n // 2 + 1} & set(range(1, n)), key=lambda s: abs(2 * s - n))
    return [s for s in near if s % 2 == 0] + [s for s in near if s % 2]


def _ok(*parts: tuple[int, int]) -> bool:
    """Every (major length, volume) pair is traversable."""
    return all(_traversable(major, volume) for major, volume in parts)


# Each split kind yields (all sub-boxes traversable?, function building the sub-boxes) per choice of cut points;
# validity is decided from the sizes alone so that rejected candidates cost no vector arithmetic.


def _halve(p, a, b, c, w, h, d):
    for s in _split_points(w):

        def make(s=s):
            a1 = _scaled(a, s)
            return [(p, a1, b, c), (_add(p, a1), _add(a, _neg(a1)), b, c)]

        yield _ok((s, s * h * d), (w - s, (w - s) * h * d)), make


def _u_turn(p, a, b, c, w, h, d):
    """U in the plane (a, b); c carried whole."""
    for s_b in _split_points(h):
        for s_a in _split_points(w):

            def make(s_a=s_a, s_b=s_b):
                a2, b2 = _scaled(a, s_a), _scaled(b, s_b)
                return [
                    (p, b2, a2, c),
                    (_add(p, b2), a, _add(b, _neg(b2)), c),
                    (_add(p, a, _neg(_unit(a)), b2, _neg(_unit(b))), _neg(b2), _neg(_add(a, _neg(a2))), c),
                ]

            yield _ok((s_b, s_b * s_a * d), (w, w * (h - s_b) * d), (s_b, s_b * (w - s_a) * d)), make


def _octants(p, a, b, c, w, h, d):
    """Gray-code order of the 8 half-boxes (b first, then c), merged into 5 sub-boxes."""
    for s_b in _split_points(h):
        for s_a in _split_points(w):
            for s_c in _split_points(d):

                def make(s_a=s_a, s_b=s_b, s_c=s_c):
                    a2, b2, c2 = _scaled(a, s_a), _scaled(b, s_b), _scaled(c, s_c)
                    a_rest, b_rest, c_rest = _add(a, _neg(a2)), _add(b, _neg(b2)), _add(c, _neg(c2))
                    far_a, ub, uc = _add(a, _neg(_unit(a))), _unit(b), _unit(c)
                    return [
                        (p, b2, a2, c2),
                        (_add(p, b2), c, a2, b_rest),
                        (_add(p, b2, _neg(ub), c, _neg(uc)), a, _neg(b2), _neg(c_rest)),
                        (_add(p, far_a, b2, c, _neg(uc)), _neg(c), _neg(a_rest), b_rest),
                        (_add(p, far_a, b2, _neg(ub)), _neg(b2), _neg(a_rest), c2),
                    ]

                ok = _ok(
                    (s_b, s_a * s_b * s_c),
                    (d, s_a * (h - s_b) * d),
                    (w, w * s_b * (d - s_c)),
                    (d, (w - s_a) * (h - s_b) * d),
                    (s_b, (w - s_a) * s_b * s_c),
                )
                yield ok, make


def _split(p: Vec, a: Vec, b: Vec, c: Vec) -> list:
    """Sub-boxes (origin, major, side, side) of a box, all traversable if any split kind allows it."""
    w, h, d = _length(a), _length(b), _length(c)
    kinds = {
        "halve": (w >= 2, lambda: _halve(p, a, b, c, w, h, d)),
        "u_b": (w >= 2 and h >= 2, lambda: _u_turn(p, a, b, c, w, h, d)),
        "u_c": (w >= 2 and d >= 2, lambda: _u_turn(p, a, c, b, w, d, h)),
        "oct_b": (min(w, h, d) >= 2, lambda: _octants(p, a, b, c, w, h, d)),
        "oct_c": (min(w, h, d) >= 2, lambda: _octants(p, a, c, b, w, d, h)),
    }
    # Preference by proportions keeps sub-boxes close to cubes (good locality).
    if 2 * w > 3 * h and 2 * w > 3 * d:
        order = ("halve", "u_b", "u_c", "oct_b", "oct_c")
    elif 3 * h > 4 * d:
        order = ("u_b", "oct_b", "oct_c", "u_c", "halve")
    elif 3 * d > 4 * h:
        order = ("u_c", "oct_c", "oct_b", "u_b", "halve")
    else:
        order = ("oct_b", "oct_c", "u_b", "u_c", "halve")
    fallback = None
    for name in order:
        feasible, candidates = kinds[name]
        if not feasible:
            continue
        for ok, make in candidates():
            if ok:
                return make()
            fallback = fallback or make
    return fallback()


def _box_curve(w: int, h: int, d: int, memo: dict) -> np.ndarray:
    """The curve through a box of sides (w, h, d) along its axes (major a, sides b, c), from its corner at the
    origin: (w*h*d, 3) cell coordinates (i along a, j along b, k along c), in curve order.

    Every choice of :func:`_split` depends on the side lengths alone and its sub-boxes are linear in (a, b, c),
    so the curve of a sub-box is that of its sizes, moved to its origin and turned onto its axes; ``memo`` keeps
    each size's curve once (a halving recursion meets few distinct sizes: 40-70x faster than walking every box).
    """
    cells = memo.get((w, h, d))
    if cells is not None:
        return cells
    if h == 1 and d == 1:  # a line
        cells = np.zeros((w, 3), dtype=np.int64)
        cells[:, 0] = np.arange(w)
    elif w == 1:  # a flat box entered along a side of length 1: walked as the 2-D box of its other sides
        if h % 2 == 0 or d % 2:
            cells = _box_curve(h, d, 1, memo)[:, [2, 0, 1]]  # the box (b, c, a)
        else:
            cells = _box_curve(d, h, 1, memo)[:, [2, 1, 0]]  # the box (c, b, a)
    else:
        parts = []
        for origin, a, b, c in _split((0, 0, 0), (w, 0, 0), (0, h, 0), (0, 0, d)):
            turn = np.array([_unit(a), _unit(b), _unit(c)], dtype=np.int64)  # rows: the sub-box's axes here
            sub = _box_curve(_length(a), _length(b), _length(c), memo)
            parts.append(np.asarray(origin, dtype=np.int64) + sub @ turn)
        cells = np.concatenate(parts)
    memo[(w, h, d)] = cells
    return cells


@functools.lru_cache(maxsize=64)
def _hilbert_cpu(t: int, h: int, w: int) -> torch.Tensor:
    sizes = (t, h, w)
    # Major axis: the longest even side (unit steps everywhere then), else the longest side.
    even = [i for i in range(3) if sizes[i] % 2 == 0]
    major = max(even or range(3), key=lambda i: (sizes[i], i))
    axes = (major, *(i for i in range(3) if i != major))
    local = _box_curve(*(sizes[i] for i in axes), {})
    cells = np.empty_like(local)
    cells[:, list(axes)] = local
    return torch.from_numpy(cells[:, 0] * h * w + cells[:, 1] * w + cells[:, 2])


def _check_size(t: int, h: int, w: int) -> None:
    for name, v in (("t", t), ("h", h), ("w", w)):
        if not isinstance(v, int) or v < 1:
            raise RawMambaError(f"scan order: size {name} must be a positive int, got {v!r}")


@functools.lru_cache(maxsize=128)
def hilbert_order(t: int, h: int, w: int, device: torch.device | str | None = None) -> torch.Tensor:
    """3-D generalised Hilbert order of a (t, h, w) volume: (t*h*w,) raster indices, cached per shape/device.

    The returned tensor is shared by all callers: do not modify it in place.
    """
    _check_size(t, h, w)
    return _hilbert_cpu(t, h, w).to(device or "cpu")


@functools.lru_cache(maxsize=128)
def raster_order(t: int, h: int, w: int, device: torch.device | str | None = None) -> torch.Tensor:
    """Line-by-line order (frame by frame, row by row): the identity permutation, cached per shape/device."""
    _check_size(t, h, w)
    return torch.arange(t * h * w, device=device or "cpu")


# id(order) -> (weak reference to order, its inverse); an entry disappears with its order.
_INVERSES: dict[int, tuple[weakref.ref, torch.Tensor]] = {}


def inverse_order(order: torch.Tensor) -> torch.Tensor:
    """The inverse permutation ``inv`` (``inv[order[i]] = i``), cached for as long as ``order`` lives."""
    key = id(order)
    entry = _INVERSES.get(key)
    if entry is not None and entry[0]() is order:
        return entry[1]
    inv = torch.empty_like(order)
    inv[order] = torch.arange(order.numel(), device=order.device)
    _INVERSES[key] = (weakref.ref(order, lambda _, key=key: _INVERSES.pop(key, None)), inv)
    return inv


def to_sequence(x: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """Volume (b, c, t, h, w) -> token sequence (b, t*h*w, c) in ``order``."""
    if x.dim() != 5 or order.numel() != x.shape[2] * x.shape[3] * x.shape[4]:
        raise RawMambaError(
            f"to_sequence: x must be (b, c, t, h, w) with t*h*w = {order.numel()}, got {tuple(x.shape)}"
        )
    if x.device.type == "cpu":  # channels-last volumes: the tokens are their rows, gathered whole
        return volume_layout(x).permute(0, 2, 3, 4, 1).flatten(1, 3).index_select(1, order.to(x.device))
    return x.flatten(2).index_select(2, order.to(x.device)).transpose(1, 2)


def from_sequence(seq: torch.Tensor, order: torch.Tensor, size: tuple[int, int, int]) -> torch.Tensor:
    """Token sequence (b, l, c) in ``order`` -> volume (b, c, t, h, w), the exact inverse of :func:`to_sequence`."""
    t, h, w = size
    if seq.dim() != 3 or seq.shape[1] != t * h * w or order.numel() != t * h * w:
        raise RawMambaError(f"from_sequence: seq must be (b, {t * h * w}, c) for size {size}, got {tuple(seq.shape)}")
    if seq.device.type == "cpu":  # a channels-last volume (volume_layout), gathered by rows
        rows = seq.index_select(1, inverse_order(order).to(seq.device))
        return rows.view(seq.shape[0], t, h, w, seq.shape[2]).permute(0, 4, 1, 2, 3)
    volume = seq.transpose(1, 2).index_select(2, inverse_order(order).to(seq.device))
    return volume.reshape(seq.shape[0], seq.shape[2], t, h, w)
