"""The k nearest samples of every pixel in the joint colour + position space, on a grid of position buckets.

The joint interpolation's fast path (:mod:`rawmamba.metadata.joint_interpolation`) needs, for every pixel, the
``k`` samples nearest in Euclidean distance over all features. The samples of an image are spread over its
positions, so they are sorted into square buckets of two position features, and each pixel visits the buckets
around its own in rings of growing Chebyshev radius. A sample outside the rings visited so far is at least as
far from the pixel as the rings' edge is in position alone, so the search stops once that bound exceeds the
``k``-th distance found: the result is exact, whatever the colours. Ties are broken by the lower sample index:
the neighbours are the ``k`` smallest ``(squared distance, index)`` pairs. (scipy's ``KDTree`` breaks them by its
traversal order, so on images with exactly equal distances, such as flat colours on a pixel grid, the two may
pick different but equally near samples.)

On 2 threads, 32 neighbours of every pixel of a 1024x1024 image with one sample per 8x8 cell: a photograph 1.05 s
against 3.1 s for ``scipy.spatial.KDTree.query`` (which this search replaced), uniform noise 2.5 against 4.9 s
(same run); the 3.1 MP photograph of ``python benchmarks/joint_interpolation_cpu.py`` 2.9 against 6.3 s.

The kernels need numba; this module is imported only when it is available.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

_OPTIONS = dict(cache=True, nogil=True, error_model="numpy")
# samples per bucket on average (the bucket side follows from the samples' position extent); 1, 2 and 4 took
# 1.05, 1.30 and 1.19 s on the photograph below
SAMPLES_PER_BUCKET = 1.0
# pixels per parallel task: consecutive pixels (raster order) visit the same buckets
_BLOCK = 256
# the rings' position bound is shrunk by this fraction of a bucket side before it ends a search, so that rounding
# in a sample's bucket (its position on a bucket edge) can never end it early
_BOUND_MARGIN = 1e-9


class BucketGrid:
    """Samples sorted into square buckets of two of their features (``dims``, the position features).

    Args:
        samples: ``(N, F)`` float64 features.
        dims: the two feature columns to bucket by; any two give exact results, position ones fast ones.
    """

    def __init__(self, samples: np.ndarray, dims: tuple[int, int] = (3, 4)) -> None:
        samples = np.ascontiguousarray(samples, dtype=np.float64)
        self.dims = dims
        points = samples[:, list(dims)]
        if len(samples) == 0 or not np.isfinite(points).all():
            raise ValueError("BucketGrid needs at least one sample, with finite features in dims")
        self.origin = points.min(axis=0)
        extent = points.max(axis=0) - self.origin
        area = max(extent[0], 0.0) * max(extent[1], 0.0)
        if area > 0:
            side = math.sqrt(area * SAMPLES_PER_BUCKET / len(samples))
        else:  # the samples on one line or one point: buckets along the line
            side = max(extent.max(), 1.0) * SAMPLES_PER_BUCKET / len(samples)
        self.side = side if side > 0 and math.isfinite(side) else 1.0
        self.shape = tuple(int(n) for n in np.floor(extent / self.side).astype(np.int64) + 1)  # (columns, rows)
        cells = np.floor((points - self.origin) / self.side).astype(np.int64)
        cells = np.minimum(cells, np.array(self.shape) - 1)
        bucket = cells[:, 1] * self.shape[0] + cells[:, 0]
        order = np.argsort(bucket, kind="stable")  # by bucket, then by index
        self.index = order.astype(np.int64)
        self.samples = samples[order]
        self.starts = np.searchsorted(bucket[order], np.arange(self.shape[0] * self.shape[1] + 1)).astype(np.int64)

    def query(self, queries: np.ndarray, k: int) -> np.ndarray:
        """``(P, k)`` int64 indices of each query's ``k`` nearest samples, each row sorted ascending."""
        if not 1 <= k <= len(self.index):
            raise ValueError(f"k must be in 1..{len(self.index)}, got {k}")
        queries = np.ascontiguousarray(queries, dtype=np.float64)
        out = np.empty((len(queries), k), dtype=np.int64)
        k_nearest(queries, self.samples, self.index, self.starts, self.shape[0], self.shape[1], self.origin[0],
                  self.origin[1], self.side, self.dims[0], self.dims[1], out)  # fmt: skip
        return out


@njit(inline="always", **_OPTIONS)
def _insert(best_d: np.ndarray, best_i: np.ndarray, count: int, d: float, index: int) -> int:
    """Insert ``(d, index)`` into the ascending ``(d, index)`` pairs ``best_*[:count]``, dropping the last pair
    when full; the new count."""
    k = best_d.shape[0]
    if count == k:
        if d > best_d[k - 1] or (d == best_d[k - 1] and index > best_i[k - 1]):
            return count
        pos = k - 1
    else:
        pos = count
        count += 1
    while pos > 0 and (best_d[pos - 1] > d or (best_d[pos - 1] == d and best_i[pos - 1] > index)):
        best_d[pos] = best_d[pos - 1]
        best_i[pos] = best_i[pos - 1]
        pos -= 1
    best_d[pos] = d
    best_i[pos] = index
    return count


@njit(inline="always", **_OPTIONS)
def _visit(query, samples, index, start, end, best_d, best_i, count) -> int:
    """Offer the samples ``start:end`` (one bucket) to the running ``k`` nearest; the new count."""
    n_features = samples.shape[1]
    for j in range(start, end):
        d = 0.0
        for f in range(n_features):  # summed over the features in order
            diff = query[f] - samples[j, f]
            d += diff * diff
        count = _insert(best_d, best_i, count, d, index[j])
    return count


@njit(parallel=True, **_OPTIONS)
def k_nearest(queries, samples, index, starts, columns, rows, origin_x, origin_y, side, dim_x, dim_y, out) -> None:
    """``out[p]``: the ``k = out.shape[1]`` nearest samples of query ``p`` (see the module), sorted by index."""
    k = out.shape[1]
    margin = _BOUND_MARGIN * side
    for block in prange((queries.shape[0] + _BLOCK - 1) // _BLOCK):
        best_d = np.empty(k)
        best_i = np.empty(k, dtype=np.int64)
        for p in range(block * _BLOCK, min(queries.shape[0], (block + 1) * _BLOCK)):
            query = queries[p]
            qx, qy = query[dim_x], query[dim_y]
            cx = min(max(math.floor((qx - origin_x) / side), 0), columns - 1) if math.isfinite(qx) else 0
            cy = min(max(math.floor((qy - origin_y) / side), 0), rows - 1) if math.isfinite(qy) else 0
            count, radius = 0, 0
            while True:
                for by in range(max(cy - radius, 0), min(cy + radius, rows - 1) + 1):
                    edge_row = by == cy - radius or by == cy + radius
                    step = 1 if edge_row or radius == 0 else 2 * radius
                    for bx in range(cx - radius, cx + radius + 1, step):
                        if 0 <= bx < columns:
                            bucket = by * columns + bx
                            count = _visit(query, samples, index, starts[bucket], starts[bucket + 1], best_d, best_i,
                                           count)  # fmt: skip
                # the nearest a sample in an unvisited bucket can be, in position alone
                bound, unvisited = math.inf, False
                if cx - radius > 0:
                    bound, unvisited = min(bound, qx - (origin_x + (cx - radius) * side)), True
                if cx + radius < columns - 1:
                    bound, unvisited = min(bound, origin_x + (cx + radius + 1) * side - qx), True
                if cy - radius > 0:
                    bound, unvisited = min(bound, qy - (origin_y + (cy - radius) * side)), True
                if cy + radius < rows - 1:
                    bound, unvisited = min(bound, origin_y + (cy + radius + 1) * side - qy), True
                if not unvisited:
                    break
                bound -= margin
                if count == k and bound > 0 and bound * bound > best_d[k - 1]:
                    break
                radius += 1
            for j in range(k):  # sorted by index, as the local systems take them
                value, pos = best_i[j], j
                while pos > 0 and out[p, pos - 1] > value:
                    out[p, pos] = out[p, pos - 1]
                    pos -= 1
                out[p, pos] = value
