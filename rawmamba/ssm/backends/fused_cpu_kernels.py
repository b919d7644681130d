"""Numba kernels of the fused CPU selective scan (imported only when numba is importable).

Layout (the wrapper in :mod:`rawmamba.ssm.backends.fused_cpu` prepares it): ``u, delta, z``: (b, d, l);
``A``: (d, n); ``B, C``: time-major per group, (b, g, l, n), so that one position's ``n`` values are contiguous;
``D, delta_bias``: (d,). All arrays share one float dtype (float32 or float64), the compute dtype.

The forward keeps one channel's (n,) state in a small local array and walks the sequence once; it never
materialises a (b, d, l, n) tensor. It stores the state every ``interval`` positions (the checkpoints,
(b, d, ceil(l / interval), n)). The backward walks the segments between checkpoints in reverse: it recomputes a
segment's states and decays from its checkpoint into an (interval, n) scratch buffer, then runs the adjoint
recurrence (the transpose of paper eq. 2) backwards through the segment. Memory is O(b d n l / interval).

Exponentials: ``exp(dt * A)`` is computed for every (channel, position, state), the dominant cost. In float32
the kernels use :func:`exp_f32`, a branch-free exponential (Cody-Waite range reduction, degree-7 polynomial,
2**k assembled from its exponent bits) that LLVM vectorises across the ``n`` states; libm's scalar ``expf``
is not vectorised without Intel's SVML. Float64 uses ``math.exp``.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import njit, prange, types
from numba.extending import overload

# Cody-Waite split of ln 2 (the high part has few mantissa bits, so k * LN2_HI is exact for |k| < 2**9).
_LN2_HI = np.float32(0.693359375)
_LN2_LO = np.float32(-2.12194440e-4)
_LOG2E = np.float32(1.44269504)
# Inputs below exp's float32 range give 2**-126 * p(r) (~1e-38) instead of a subnormal or 0: an absolute
# error below 1.2e-38, far under every tolerance; above 88.3, exp overflows and the result is clamped to 2**127*p.
_X_MIN = np.float32(-87.33)
_X_MAX = np.float32(88.37)
_KERNEL_OPTIONS = dict(cache=True, nogil=True, fastmath=False)


@njit(inline="always", **_KERNEL_OPTIONS)
def exp_f32(x: np.float32) -> np.float32:
    """exp(x) for float32 x within about 2 ulp, vectorisable (no libm call, no branch)."""
    x = min(max(x, _X_MIN), _X_MAX)
    k = math.floor(x * _LOG2E + np.float32(0.5))
    r = x - k * _LN2_HI - k * _LN2_LO  # |r| <= ln2 / 2
    # exp(r) by its Taylor series to degree 7 (truncation error < 2e-9 relative on |r| <= 0.347), Horner form.
    p = np.float32(1.0 / 5040.0)
    p = p * r + np.float32(1.0 / 720.0)
    p = p * r + np.float32(1.0 / 120.0)
    p = p * r + np.float32(1.0 / 24.0)
    p = p * r + np.float32(1.0 / 6.0)
    p = p * r + np.float32(0.5)
    p = p * r + np.float32(1.0)
    p = p * r + np.float32(1.0)
    scale = np.int32((np.int32(k) + np.int32(127)) << np.int32(23)).view(np.float32)
    return p * scale


def _exp(x):
    """exp for the scan's decays: :func:`exp_f32` in float32, ``math.exp`` otherwise (chosen at compile time)."""
    return math.exp(x)


@overload(_exp, inline="always")
def _exp_typed(x):
    if isinstance(x, types.Float) and x.bitwidth == 32:
        return lambda x: exp_f32(x)
    return lambda x: math.exp(x)


@njit(inline="always", **_KERNEL_OPTIONS)
def _step(raw, bias, softplus, one):
    """dt = softplus(raw + bias) (torch's, threshold 20) or raw + bias, and d dt / d raw; ``one``: 1 typed."""
    x = raw + bias
    if not softplus or x > 20:
        return x, one
    e = math.exp(x)
    return math.log1p(e), e / (one + e)


@njit(parallel=True, **_KERNEL_OPTIONS)
def scan_forward(u, delta, A, B, C, D, z, bias, softplus, has_z, interval, y, h_last, checkpoints):
    """y (b, d, l), h_last (b, d, n) and checkpoints (b, d, n_seg, n), all written here."""
    batch, dim, length = u.shape
    groups, n = B.shape[1], A.shape[1]
    per_group = dim // groups
    for item in prange(batch * dim):
        b, d = item // dim, item % dim
        g = d // per_group
        one = u.dtype.type(1)
        h = np.zeros(n, dtype=u.dtype)
        a = np.empty(n, dtype=u.dtype)
        for t in range(length):
            if t % interval == 0:
                checkpoints[b, d, t // interval, :] = h
            dt, _ = _step(delta[b, d, t], bias[d], softplus, one)
            x = dt * u[b, d, t]
            for j in range(n):
                a[j] = _exp(dt * A[d, j])
            s = one - one
            for j in range(n):  # eq. 2 (ZOH decay exp(dt A), input dt B u) and eq. 3 (y = C h)
                h[j] = a[j] * h[j] + x * B[b, g, t, j]
                s += C[b, g, t, j] * h[j]
            s += D[d] * u[b, d, t]
            if has_z:
                zt = z[b, d, t]
                s *= zt / (one + math.exp(-zt))
            y[b, d, t] = s
        h_last[b, d, :] = h


@njit(parallel=True, **_KERNEL_OPTIONS)
def scan_backward(
    u,
    delta,
    A,
    B,
    C,
    D,
    z,
    bias,
    softplus,
    has_z,
    interval,
    checkpoints,
    dy,
    dh_last,
    parts,
    du,
    ddelta,
    dz,
    dA_b,
    dD_b,
    dbias_b,
    dB_p,
    dC_p,
):
    """Gradients. du, ddelta, dz: (b, d, l); dA_b (b, d, n), dD_b, dbias_b (b, d): per batch item, summed by
    the caller; dB_p, dC_p (b, g, parts, l, n): per part of a group's channels, summed by the caller.

    One work item is (batch item, group, part): it owns a contiguous slice of the group's channels and its own
    dB/dC buffer, so no two threads write the same element.
    """
    batch, dim, length = u.shape
    groups, n = B.shape[1], A.shape[1]
    per_group = dim // groups
    n_seg = checkpoints.shape[2]
    zero, one = u.dtype.type(0), u.dtype.type(1)
    for item in prange(batch * groups * parts):
        b, g, p = item // (groups * parts), (item // parts) % groups, item % parts
        hs = np.empty((interval, n), dtype=u.dtype)  # a segment's states h_t
        decays = np.empty((interval, n), dtype=u.dtype)  # its decays exp(dt_t A)
        carry = np.empty(n, dtype=u.dtype)  # exp(dt_{t+1} A) * dL/dh_{t+1}
        lo, hi = g * per_group + (per_group * p) // parts, g * per_group + (per_group * (p + 1)) // parts
        for d in range(lo, hi):
            carry[:] = dh_last[b, d, :]
            dA_acc = np.zeros(n, dtype=u.dtype)
            dD_acc, dbias_acc = zero, zero
            for seg in range(n_seg - 1, -1, -1):
                t0 = seg * interval
                t1 = min(t0 + interval, length)
                # recompute the segment's states from its checkpoint, exactly as the forward did.
                for t in range(t0, t1):
                    dt, _ = _step(delta[b, d, t], bias[d], softplus, one)
                    x = dt * u[b, d, t]
                    i = t - t0
                    for j in range(n):
                        decays[i, j] = _exp(dt * A[d, j])
                    prev = hs[i - 1] if i > 0 else checkpoints[b, d, seg]
                    for j in range(n):
                        hs[i, j] = decays[i, j] * prev[j] + x * B[b, g, t, j]
                for t in range(t1 - 1, t0 - 1, -1):
                    i = t - t0
                    ut = u[b, d, t]
                    dt, ddt_draw = _step(delta[b, d, t], bias[d], softplus, one)
                    # y = (s + D u) * silu(z): the gradient reaching s = C . h
                    ds = dy[b, d, t]
                    if has_z:
                        zt = z[b, d, t]
                        sig = one / (one + math.exp(-zt))
                        s = zero
                        for j in range(n):
                            s += C[b, g, t, j] * hs[i, j]
                        dz[b, d, t] = ds * (s + D[d] * ut) * sig * (one + zt * (one - sig))
                        ds = ds * zt * sig
                    dD_acc += ds * ut
                    prev = hs[i - 1] if i > 0 else checkpoints[b, d, seg]
                    dt_acc, du_acc = zero, ds * D[d]
                    for j in range(n):
                        gj = ds * C[b, g, t, j] + carry[j]  # dL/dh_t
                        dC_p[b, g, p, t, j] += ds * hs[i, j]
                        dB_p[b, g, p, t, j] += gj * dt * ut
                        du_acc += gj * dt * B[b, g, t, j]
                        ghp = gj * decays[i, j] * prev[j]  # dL/d(dt A) through the decay
                        dA_acc[j] += ghp * dt
                        dt_acc += ghp * A[d, j] + gj * B[b, g, t, j] * ut
                        carry[j] = decays[i, j] * gj
                    du[b, d, t] = du_acc
                    dt_acc *= ddt_draw
                    ddelta[b, d, t] = dt_acc
                    dbias_acc += dt_acc
            dA_b[b, d, :] = dA_acc
            dD_b[b, d] = dD_acc
            dbias_b[b, d] = dbias_acc


def set_threads(threads: int) -> None:
    """Use ``threads`` numba threads (clamped to numba's pool size) for the next kernel calls."""
    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
