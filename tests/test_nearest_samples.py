"""Tests of the bucketed k-nearest-sample search of the joint interpolation's fast path."""

import numpy as np
import pytest

from rawmamba.numba_support import numba_available

pytestmark = pytest.mark.skipif(not numba_available(), reason="the search needs numba")


def brute_force(queries: np.ndarray, samples: np.ndarray, k: int) -> np.ndarray:
    """Each query's k smallest (squared distance, index) pairs, sorted by index."""
    distances = np.zeros((len(queries), len(samples)))
    for f in range(samples.shape[1]):  # summed over the features in order, as the search sums them
        distances += (queries[:, f, None] - samples[None, :, f]) ** 2
    return np.stack([np.sort(np.lexsort((np.arange(len(samples)), row))[:k]) for row in distances])


def search(samples, queries, k, dims=(3, 4)):
    from rawmamba.metadata.nearest_samples import BucketGrid

    return BucketGrid(samples, dims=dims).query(queries, k)


@pytest.mark.parametrize("trial", range(12))
def test_search_equals_brute_force(trial):
    # random sizes and k; quantised features (ties at the k-th distance); samples on a line in position;
    # queries beyond the samples' extent on every side
    rng = np.random.default_rng(trial)
    n = int(rng.integers(1, 200))
    k = int(rng.integers(1, n + 1))
    samples, queries = rng.random((n, 5)), rng.random((150, 5)) * 1.6 - 0.3
    if trial % 3 == 0:
        samples, queries = np.round(samples * 4) / 4, np.round(queries * 4) / 4
    if trial % 4 == 1:
        samples[:, 3] = 0.5
    assert np.array_equal(search(samples, queries, k), brute_force(queries, samples, k))


def test_search_on_an_image_grid_with_ties_equals_brute_force():
    # samples at the centres of 8x8 cells of flat colours: many equal distances
    rng = np.random.default_rng(0)
    ys, xs = np.meshgrid(np.arange(4, 64, 8), np.arange(4, 96, 8), indexing="ij")
    colours = rng.integers(0, 3, (xs.size, 3)) / 2
    samples = np.column_stack([colours, xs.ravel() / 128, ys.ravel() / 128])
    py, px = np.meshgrid(np.arange(64), np.arange(96), indexing="ij")
    pixel_colours = colours[(py.ravel() // 8) * 12 + px.ravel() // 8]
    queries = np.column_stack([pixel_colours, px.ravel() / 128, py.ravel() / 128])
    for k in (1, 4, 32, len(samples)):
        assert np.array_equal(search(samples, queries, k), brute_force(queries, samples, k)), k


def test_search_handles_degenerate_samples_and_any_dims():
    rng = np.random.default_rng(1)
    one = np.zeros((1, 5))
    queries = rng.random((20, 5))
    assert np.array_equal(search(one, queries, 1), np.zeros((20, 1), dtype=np.int64))
    same = np.tile(rng.random(5), (6, 1))  # all samples at one point: ties by index
    assert np.array_equal(search(same, queries, 3), np.tile([0, 1, 2], (20, 1)))
    samples = rng.random((80, 5))  # bucketing by colour features instead of position: still exact
    assert np.array_equal(search(samples, queries, 7, dims=(0, 2)), brute_force(queries, samples, 7))


def test_search_ends_on_non_finite_queries_and_checks_k():
    from rawmamba.metadata.nearest_samples import BucketGrid

    rng = np.random.default_rng(2)
    grid = BucketGrid(rng.random((50, 5)))
    queries = rng.random((3, 5))
    queries[1, 3] = np.nan
    got = grid.query(queries, 4)  # every bucket visited for the NaN query; the others as usual
    assert got.shape == (3, 4)
    assert np.array_equal(got[[0, 2]], brute_force(queries[[0, 2]], grid.samples[np.argsort(grid.index)], 4))
    with pytest.raises(ValueError, match="k must be in 1..50"):
        grid.query(queries, 51)
    with pytest.raises(ValueError, match="finite features"):
        BucketGrid(np.full((4, 5), np.nan))
    with pytest.raises(ValueError, match="at least one sample"):
        BucketGrid(np.zeros((0, 5)))
