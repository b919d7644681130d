"""Numba kernels of the joint interpolation's fast path (imported only when numba is importable).

The interpolant is scipy's ``RBFInterpolator`` with ``kernel="linear"``, ``degree=0``, ``smoothing=0`` and
``neighbors=k``, computed without its per-neighbourhood Python loop: every pixel's ``k`` nearest samples are
found by the caller (scipy's ``KDTree.query``, on torch's threads); pixels whose neighbourhoods are the same set
share one local system, as in scipy. For one neighbourhood ``y_1..y_k`` with values ``d`` the system is

    [ -|y_i - y_j|   1 ] [ c  ]   [ d ]
    [       1^T      0 ] [ c0 ] = [ 0 ]

(the linear kernel ``phi(r) = -r`` and a constant term; scipy's domain shift and scale only enter the polynomial
part, which is the constant 1 here), solved by Gaussian elimination with partial pivoting as LAPACK's ``dgesv``,
and a pixel ``x`` gets ``sum_j c_j (-|x - y_j|) + c0``. The groups run in parallel (``prange``).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

_OPTIONS = dict(cache=True, nogil=True, error_model="numpy")
# Odd multipliers of the rolling hash of a sorted neighbour list (any fixed odd 64-bit constants).
_HASH_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)
_HASH_SEED = np.uint64(0x632BE59BD9B4E019)


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
def _solve_(lhs: np.ndarray, rhs: np.ndarray) -> bool:
    """Solve ``lhs x = rhs`` in place (``rhs`` becomes ``x``) by elimination with partial pivoting; False if
    a pivot is exactly zero (singular)."""
    m = lhs.shape[0]
    for col in range(m):
        pivot = col
        for row in range(col + 1, m):
            if abs(lhs[row, col]) > abs(lhs[pivot, col]):
                pivot = row
        if lhs[pivot, col] == 0.0:
            return False
        if pivot != col:
            for k in range(m):
                lhs[col, k], lhs[pivot, k] = lhs[pivot, k], lhs[col, k]
            for k in range(rhs.shape[1]):
                rhs[col, k], rhs[pivot, k] = rhs[pivot, k], rhs[col, k]
        inv = 1.0 / lhs[col, col]
        for row in range(col + 1, m):
            factor = lhs[row, col] * inv
            if factor != 0.0:
                for k in range(col + 1, m):
                    lhs[row, k] -= factor * lhs[col, k]
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
def _distance(a: np.ndarray, i: int, b: np.ndarray, j: int) -> float:
    total = 0.0
    for f in range(a.shape[1]):
        diff = a[i, f] - b[j, f]
        total += diff * diff
    return math.sqrt(total)


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
    each member. Returns the number of singular systems (their pixels get NaN)."""
    k, channels = neighbours.shape[1], values.shape[1]
    singular = 0
    for g in prange(starts.shape[0] - 1):
        members = order[starts[g] : starts[g + 1]]
        nbrs = neighbours[members[0]]
        lhs = np.empty((k + 1, k + 1))
        rhs = np.empty((k + 1, channels))
        for i in range(k):
            lhs[i, i] = 0.0
            for j in range(i + 1, k):
                phi = -_distance(samples, nbrs[i], samples, nbrs[j])
                lhs[i, j] = phi
                lhs[j, i] = phi
            lhs[i, k] = 1.0
            lhs[k, i] = 1.0
            for c in range(channels):
                rhs[i, c] = values[nbrs[i], c]
        lhs[k, k] = 0.0
        rhs[k, :] = 0.0
        if not _solve_(lhs, rhs):
            singular += 1
            for p in members:
                out[p, :] = np.nan
            continue
        for p in members:
            for c in range(channels):
                out[p, c] = rhs[k, c]
            for j in range(k):
                phi = -_distance(queries, p, samples, nbrs[j])
                for c in range(channels):
                    out[p, c] += rhs[j, c] * phi
    return singular
