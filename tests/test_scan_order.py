"""Scan orders: permutations, unit steps, locality, exact round trips."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from rawmamba.errors import RawMambaError
from rawmamba.models import scan_order
from rawmamba.models.scan_order import from_sequence, hilbert_order, inverse_order, raster_order, to_sequence
from rawmamba.models.volume_conv import VOLUME_FORMAT


def coords(order: torch.Tensor, h: int, w: int) -> np.ndarray:
    o = order.numpy()
    return np.stack([o // (h * w), (o // w) % h, o % w], axis=1)


def step_lengths(t: int, h: int, w: int) -> np.ndarray:
    """Manhattan distance between consecutive tokens of the Hilbert order."""
    return np.abs(np.diff(coords(hilbert_order(t, h, w), h, w), axis=0)).sum(axis=1)


@pytest.mark.parametrize("shape", [(1, 32, 32), (5, 64, 64), (5, 80, 180), (3, 7, 9), (1, 1, 1), (2, 1, 9)])
def test_hilbert_is_a_permutation(shape):
    order = hilbert_order(*shape)
    assert order.dtype == torch.long and order.shape == (int(np.prod(shape)),)
    assert torch.equal(order.sort().values, torch.arange(order.numel()))


@pytest.mark.parametrize("shape", [(1, 32, 32), (5, 64, 64), (5, 80, 180), (4, 6, 10), (2, 2, 2)])
def test_even_shapes_have_only_unit_steps(shape):
    steps = step_lengths(*shape)
    assert (steps == 1).all(), f"{(steps != 1).sum()} non-unit steps, largest {steps.max()}"


def test_odd_and_mixed_sizes_have_only_unit_steps_too():
    """Documented behaviour for odd sizes: the top level takes an even side as major axis when there is one
    (else the volume is odd), and every split keeps sub-boxes walkable, so no diagonal jumps for any shape we
    checked: every (t, h, w) up to 9^3, plus the awkward ones below."""
    shapes = [*itertools.product(range(1, 10), repeat=3), (3, 7, 9), (5, 45, 81), (1, 33, 65), (7, 1, 13)]
    bad = {s: int(step_lengths(*s).max()) for s in shapes if np.prod(s) > 1 and (step_lengths(*s) != 1).any()}
    assert not bad, f"shapes with non-unit steps (largest step): {bad}"


def test_hilbert_order_is_local():
    """Any 64 consecutive tokens of a 64x64 image stay in a small box (raster: a 64-pixel line)."""

    def mean_extent(order):
        c = coords(order, 64, 64)[: 64 * 64].reshape(-1, 64, 3)
        return (c.max(axis=1) - c.min(axis=1)).max(axis=1).mean()

    hil, ras = mean_extent(hilbert_order(1, 64, 64)), mean_extent(raster_order(1, 64, 64))
    assert hil <= 10 and ras == 63, (hil, ras)


def test_hilbert_uses_time_as_a_scan_axis():
    """Video: the curve moves between frames inside the volume, not frame after frame."""
    t = coords(hilbert_order(4, 16, 16), 16, 16)[:, 0]
    assert (np.diff(t) != 0).sum() > 3


def test_orders_are_cached_per_shape():
    assert hilbert_order(3, 7, 9) is hilbert_order(3, 7, 9)
    assert raster_order(2, 3, 4) is raster_order(2, 3, 4)
    assert torch.equal(raster_order(2, 3, 4), torch.arange(24))
    order = hilbert_order(3, 7, 9)
    assert inverse_order(order) is inverse_order(order)
    assert torch.equal(order[inverse_order(order)], torch.arange(order.numel()))


@pytest.mark.parametrize("kind", [hilbert_order, raster_order])
@pytest.mark.parametrize("size", [(1, 5, 7), (3, 8, 6)])
def test_round_trip_is_exact(kind, size):
    x = torch.randn(2, 4, *size, generator=torch.Generator().manual_seed(0))
    order = kind(*size)
    seq = to_sequence(x, order)
    assert seq.shape == (2, int(np.prod(size)), 4)
    assert torch.equal(from_sequence(seq, order, size), x)
    # The sequence really is in scan order: token i is the voxel with raster index order[i].
    assert torch.equal(seq[:, 5], x.flatten(2)[:, :, order[5]])
    assert torch.equal(seq, x.flatten(2)[:, :, order].transpose(1, 2))


@pytest.mark.parametrize("kind", [hilbert_order, raster_order])
def test_cpu_sequences_are_the_rows_of_channels_last_volumes(kind):
    """On the CPU the tokens are gathered as whole rows of a channels-last volume, and scattered back into one
    (the layout of the CPU's volume convs): same values, either input layout."""
    size = (3, 8, 6)
    x = torch.randn(2, 4, *size, generator=torch.Generator().manual_seed(1))
    order = kind(*size)
    seq = to_sequence(x.contiguous(memory_format=VOLUME_FORMAT), order)
    assert seq.is_contiguous() and torch.equal(seq, to_sequence(x, order))
    back = from_sequence(seq, order, size)
    assert back.is_contiguous(memory_format=VOLUME_FORMAT) and torch.equal(back, x)


def test_bad_sizes_and_shapes_are_reported():
    with pytest.raises(RawMambaError, match="size h"):
        hilbert_order(1, 0, 4)
    with pytest.raises(RawMambaError, match="to_sequence"):
        to_sequence(torch.zeros(1, 2, 3, 4), raster_order(1, 3, 4))
    with pytest.raises(RawMambaError, match="from_sequence"):
        from_sequence(torch.zeros(1, 11, 2), raster_order(1, 3, 4), (1, 3, 4))


def walked_order(t: int, h: int, w: int) -> np.ndarray:
    """The Hilbert order by walking every sub-box with absolute vectors (no reuse of curves): the plain form of
    the construction, as ``scan_order`` computed it before it reused each box size's curve."""
    runs = []

    def walk(p, a, b, c):
        w_, h_, d_ = (scan_order._length(v) for v in (a, b, c))
        if h_ == 1 and d_ == 1:
            runs.extend(tuple(p[i] + k * scan_order._unit(a)[i] for i in range(3)) for k in range(w_))
        elif w_ == 1:
            walk(p, b, c, a) if (h_ % 2 == 0 or d_ % 2) else walk(p, c, b, a)
        else:
            for q in scan_order._split(p, a, b, c):
                walk(*q)

    sizes = (t, h, w)
    major = max([i for i in range(3) if sizes[i] % 2 == 0] or range(3), key=lambda i: (sizes[i], i))
    axes = (major, *sorted({0, 1, 2} - {major}))
    walk((0, 0, 0), *(tuple(sizes[i] if j == i else 0 for j in range(3)) for i in axes))
    cells = np.array(runs)
    return cells[:, 0] * h * w + cells[:, 1] * w + cells[:, 2]


def test_reused_box_curves_give_the_walked_order():
    # The trained models depend on the exact order: the fast construction must be the same permutation.
    shapes = [*itertools.product(range(1, 8), repeat=3), (5, 40, 90), (1, 94, 125), (3, 33, 47), (2, 50, 36)]
    for shape in shapes:
        assert np.array_equal(hilbert_order(*shape).numpy(), walked_order(*shape)), shape
