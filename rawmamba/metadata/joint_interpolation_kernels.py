"""Numba kernels of the joint interpolation's fast path (imported only when numba is importable).

The interpolant is scipy's ``RBFInterpolator`` with ``kernel="linear"``, ``degree=0``, ``smoothing=0`` and
``neighbors=k``, computed without its per-neighbourhood Python loop: every pixel's ``k`` nearest samples are
found by the caller (:mod:`rawmamba.metadata.nearest_samples`); pixels whose neighbourhoods are the same set
share one local system, as in scipy. For one neighbourhood ``y_1..y_k`` with values ``d`` the system is

    [ -|y_i - y_j|   1 ] [ c  ]   [ d ]
    [       1^T      0 ] [ c0 ] = [ 0 ]

(the linear kernel ``phi(r) = -r`` and a constant term; scipy's domain shift and scale only enter the polynomial
part, which is the constant 1 here), solved by Gaussian elimination with partial pivoting as LAPACK's ``dgesv``,
and a pixel ``x`` gets ``sum_j c_j (-|x - y_j|) + c0``. The groups run in parallel (``prange``). Each group
gathers its neighbours' features feature-major, so that the distance loops run along the neighbours and
vectorise; the elimination updates rows from a copy of the pivot row, for the same reason (same operations in the
same order: the results are bit for bit those of the plain loops, 1.3-1.5x faster).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

_OPTIONS = dict(cache=True, nogil=True, error_model="numpy")
# Odd multipliers of the rolling hash of a sorted neighbour list (any fixed odd 64-bit constants).
_HASH_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)
_HASH_SEED = np.uint64(0x632BE59BD9B4E019)
# neighbourhoods per parallel task (each task allocates its scratch arrays once)
_GROUPS_PER_TASK = 64


@njit(parallel=True, **_OPTIONS)
def neighbourhood_keys(neighbours: np.ndarray) -> np.ndarray:
    """A 64-bit hash per row of sorted neighbour indices ``(P, k)``: equal rows give equal keys (unequal rows
    almost never do; the grouping below compares rows exactly, so a collision only costs a solve)."""
    keys = np.empty(neighbours.shape[0], dtype=np.uint64)
    for p in prange(neighbours.shape[0]):
        key = _HASH_SEED
        for j in range(neighbours.shape[1]):
            key = (key ^ np.uint64(neighbours[p, j])) * _HASH_MULTIPLIER
        keys[p] = key
    return keys


@njit(**_OPTIONS)
def group_starts(neighbours: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Start positions in ``order`` (pixels sorted by key) of runs of identical neighbour rows, and the end."""
    starts = [0]
    for i in range(1, order.shape[0]):
        a, b = order[i - 1], order[i]
        for j in range(neighbours.shape[1]):
            if neighbours[a, j] != neighbours[b, j]:
                starts.append(i)
                break
    starts.append(order.shape[0])
    return np.array(starts, dtype=np.int64)


@njit(**_OPTIONS)
def _solve_(lhs: np.ndarray, rhs: np.ndarray, pivot_row: np.ndarray) -> bool:
    """Solve ``lhs x = rhs`` in place (``rhs`` becomes ``x``) by elimination with partial pivoting; False if
    a pivot is exactly zero (singular). ``pivot_row``: scratch of ``lhs``'s width, which holds the pivot row while
    the rows below are updated (then the compiler knows the rows apart and vectorises the update)."""
    m = lhs.shape[0]
    for col in range(m):
        pivot, largest = col, abs(lhs[col, col])
        for row in range(col + 1, m):
            if abs(lhs[row, col]) > largest:
                pivot, largest = row, abs(lhs[row, col])
        if largest == 0.0:
            return False
        if pivot != col:
            for k in range(m):
                lhs[col, k], lhs[pivot, k] = lhs[pivot, k], lhs[col, k]
            for k in range(rhs.shape[1]):
                rhs[col, k], rhs[pivot, k] = rhs[pivot, k], rhs[col, k]
        inv = 1.0 / lhs[col, col]
        rest = m - col - 1
        for k in range(rest):
            pivot_row[k] = lhs[col, col + 1 + k]
        for row in range(col + 1, m):
            factor = lhs[row, col] * inv
            if factor != 0.0:
                for k in range(rest):  # indexed, not sliced: a view per row cost 8% of the solve
                    lhs[row, col + 1 + k] -= factor * pivot_row[k]
                for k in range(rhs.shape[1]):
                    rhs[row, k] -= factor * rhs[col, k]
    for col in range(m - 1, -1, -1):
        for k in range(rhs.shape[1]):
            total = rhs[col, k]
            for j in range(col + 1, m):
                total -= lhs[col, j] * rhs[j, k]
            rhs[col, k] = total / lhs[col, col]
    return True


@njit(inline="always", **_OPTIONS)
def _distances_(features: np.ndarray, point: np.ndarray, out: np.ndarray) -> None:
    """``out[j] = |point - features[:, j]|``; ``features`` is feature-major ``(F, k)``: the loops run along j
    (vectorised), the sum over features in order."""
    k = features.shape[1]
    for j in range(k):
        out[j] = 0.0
    for f in range(features.shape[0]):
        for j in range(k):
            diff = point[f] - features[f, j]
            out[j] += diff * diff
    for j in range(k):
        out[j] = math.sqrt(out[j])


@njit(**_OPTIONS)
def _evaluate_group(queries, samples, values, members, nbrs, local, lhs, rhs, distance, out) -> bool:
    """The local system of one neighbourhood ``nbrs`` solved and evaluated at its ``members`` (pixels) into
    ``out``; False if singular (the members get NaN). ``local``, ``lhs``, ``rhs``, ``distance``: scratch."""
    k, channels, n_features = nbrs.shape[0], values.shape[1], samples.shape[1]
    for j in range(k):
        for f in range(n_features):
            local[f, j] = samples[nbrs[j], f]
    for i in range(k + 1):
        for j in range(k + 1):
            lhs[i, j] = 0.0
    for f in range(n_features):  # squared distances, summed over the features in order (as _distances_)
        for i in range(k):
            here = local[f, i]
            for j in range(k):
                diff = here - local[f, j]
                lhs[i, j] += diff * diff
    for i in range(k):
        for j in range(k):
            lhs[i, j] = -math.sqrt(lhs[i, j])
        lhs[i, i] = 0.0
        lhs[i, k] = 1.0
        lhs[k, i] = 1.0
        for c in range(channels):
            rhs[i, c] = values[nbrs[i], c]
    rhs[k, :] = 0.0
    if not _solve_(lhs, rhs, distance):
        for p in members:
            out[p, :] = np.nan
        return False
    for p in members:
        _distances_(local, queries[p], distance)
        for c in range(channels):
            total = rhs[k, c]
            for j in range(k):
                total += rhs[j, c] * -distance[j]
            out[p, c] = total
    return True


@njit(parallel=True, **_OPTIONS)
def evaluate_groups(
    queries: np.ndarray,
    samples: np.ndarray,
    values: np.ndarray,
    neighbours: np.ndarray,
    order: np.ndarray,
    starts: np.ndarray,
    out: np.ndarray,
) -> int:
    """``out[p]`` for every pixel ``p``: the local system of its group's neighbourhood solved once, evaluated at
    each member. Returns the number of singular systems (their pixels get NaN). Groups run in parallel tasks of
    :data:`_GROUPS_PER_TASK`, each with its own scratch arrays."""
    k, channels, n_features = neighbours.shape[1], values.shape[1], samples.shape[1]
    groups = starts.shape[0] - 1
    singular = 0
    for task in prange((groups + _GROUPS_PER_TASK - 1) // _GROUPS_PER_TASK):
        local = np.empty((n_features, k))  # the neighbours' features, feature-major
        lhs, rhs, distance = np.empty((k + 1, k + 1)), np.empty((k + 1, channels)), np.empty(k)
        for g in range(task * _GROUPS_PER_TASK, min(groups, (task + 1) * _GROUPS_PER_TASK)):
            members = order[starts[g] : starts[g + 1]]
            if not _evaluate_group(queries, samples, values, members, neighbours[members[0]], local, lhs, rhs,
                                   distance, out):  # fmt: skip
                singular += 1
    return singular
