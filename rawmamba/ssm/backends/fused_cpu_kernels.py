"""Numba kernels of the fused CPU selective scan (imported only when numba is importable).

Layout (the wrapper in :mod:`rawmamba.ssm.backends.fused_cpu` prepares it): ``u, delta, z``: (b, d, l);
``At``: A transposed, (n, d); ``B, C``: time-major per group, (b, g, l, n); ``D, delta_bias``: (d,); the
checkpoints (b, ceil(l / interval), n, d). All arrays share one float dtype (float32 or float64).

Vectorisation: one work item walks the sequence for :data:`LANES` neighbouring channels of one group at once,
their (n, LANES) states in a small local array; every inner loop runs over the lanes (channels), so each
channel's sum over the n states keeps the reference's order and LLVM turns the lane loops into SIMD code.
No (b, d, l, n) tensor is ever materialised. The forward stores the states every ``interval`` positions; the
backward walks the segments between checkpoints in reverse: it recomputes a segment's states and decays into
(interval, n, LANES) buffers, then runs the adjoint recurrence (the transpose of paper eq. 2) backwards through
the segment. Memory is O(b d n l / interval). Each kernel has a parallel version (``prange`` over work items)
and a ``*_serial`` one for small inputs. ``error_model="numpy"``: divisions follow IEEE (no zero check), which
is what lets them vectorise. Measured limits: the backward's reverse loop does not vectorise (about 2.5 ns per
(channel, position, state) against 0.5 ns for the forward's), and gathering a tile's channel rows, which lie
``l`` elements apart, is a large share of the forward (see :func:`_gather`).

Exponentials: ``exp(dt * A)`` for every (channel, position, state) is the dominant cost. In float32 the kernels
use :func:`exp_f32`, a branch-free exponential (Cody-Waite range reduction, degree-7 polynomial, 2**k assembled
from its exponent bits) that LLVM vectorises; libm's scalar ``expf`` is not vectorised without Intel's SVML.
Softplus uses :func:`log1p_unit_f32` likewise. Float64 uses ``math.exp`` / ``math.log1p``.
"""

from __future__ import annotations

import math

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
# fastmath "contract" only: a multiply followed by an add may become one fused multiply-add (one rounding instead
# of two); nothing is reordered (measured: forward 58 -> 48 ms at d=192, n=16, l=20480, one thread).
_KERNEL_OPTIONS = dict(cache=True, nogil=True, fastmath={"contract"}, error_model="numpy")
# Channels per work item, a compile-time constant so that the loops over them become fixed-width SIMD code.
LANES = 16
# Positions per tile of the forward: the inputs of a tile are gathered lane by lane (channel rows are far apart in
# memory), and long tiles keep those strided reads cheap (measured: 32 -> 512 positions halves the gather time).
FORWARD_TILE = 512
# Only the cross-lane sums of the backward (dB, dC: sums over channels) may be reordered, so that they vectorise.
_REORDERED_SUM_OPTIONS = dict(cache=True, nogil=True, fastmath={"reassoc", "nsz", "contract"}, error_model="numpy")


@njit(inline="always", **_KERNEL_OPTIONS)
def exp_f32(x: np.float32) -> np.float32:
    """exp(x) for float32 x within about 2 ulp, vectorisable (no libm call, no branch)."""
    x = min(max(x, _X_MIN), _X_MAX)
    k = np.floor(x * _LOG2E + np.float32(0.5))  # float32 (math.floor would give an int64)
    r = x - k * _LN2_HI - k * _LN2_LO  # |r| <= ln2 / 2
    # exp(r) by its Taylor series to degree 7 (truncation error < 1e-8 relative on |r| <= 0.347), Horner form.
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
def log1p_unit_f32(e: np.float32) -> np.float32:
    """log(1 + e) for float32 e in [0, 1] within about 2 ulp, vectorisable: 2 atanh(s), s = e / (2 + e) <= 1/3."""
    s = e / (np.float32(2.0) + e)
    s2 = s * s
    p = np.float32(1.0 / 15.0)
    p = p * s2 + np.float32(1.0 / 13.0)
    p = p * s2 + np.float32(1.0 / 11.0)
    p = p * s2 + np.float32(1.0 / 9.0)
    p = p * s2 + np.float32(1.0 / 7.0)
    p = p * s2 + np.float32(1.0 / 5.0)
    p = p * s2 + np.float32(1.0 / 3.0)
    p = p * s2 + np.float32(1.0)
    return np.float32(2.0) * s * p


def _log1p_unit(e):
    """log(1 + e) for e in [0, 1]: :func:`log1p_unit_f32` in float32, ``math.log1p`` otherwise."""
    return math.log1p(e)


@overload(_log1p_unit, inline="always")
def _log1p_unit_typed(e):
    if isinstance(e, types.Float) and e.bitwidth == 32:
        return lambda e: log1p_unit_f32(e)
    return lambda e: math.log1p(e)


@njit(inline="always", **_KERNEL_OPTIONS)
def _softplus(x, one):
    """softplus(x) = max(x, 0) + log1p(exp(-|x|)) and its derivative sigmoid(x); branch-free."""
    e = _exp(-abs(x))  # in (0, 1]
    inv = one / (one + e)
    return max(x, x - x) + _log1p_unit(e), inv if x >= 0 else e * inv


@njit(**_REORDERED_SUM_OPTIONS)
def _lane_sum(values):
    total = values[0] - values[0]
    for c in range(LANES):
        total += values[c]
    return total


@njit(inline="always", **_KERNEL_OPTIONS)
def _block_params(At, D, bias, c0, cw):
    """The block's A (n, LANES), D and bias (LANES,), padding lanes repeating the last channel."""
    A_blk = np.empty((At.shape[0], LANES), dtype=At.dtype)
    D_blk, bias_blk = np.empty((2, LANES), dtype=At.dtype)
    for c in range(LANES):
        src = c0 + min(c, cw - 1)
        A_blk[:, c] = At[:, src]
        D_blk[c], bias_blk[c] = D[src], bias[src]
    return A_blk, D_blk, bias_blk


@njit(inline="always", **_KERNEL_OPTIONS)
def _gather(src, b, c0, cw, t0, count, out):
    """out[i, c] = src[b, c0 + c, t0 + i] for i < count, c < LANES (padding lanes repeat the last channel).

    Position-major: the stores to the tile are contiguous and only the loads are strided. The channel-major order
    vectorised into scatter stores, which are slow (measured, AMD Zen 4: forward 72 -> 59 ms, forward+backward
    336 -> 269 ms at d=192, n=16, l=20480, one thread)."""
    for i in range(count):
        for c in range(LANES):
            out[i, c] = src[b, c0 + min(c, cw - 1), t0 + i]


@njit(inline="always", **_KERNEL_OPTIONS)
def _scatter(tile, dst, b, c0, cw, t0, count):
    """dst[b, c0 + c, t0 + i] = tile[i, c] for i < count, c < cw (the real lanes)."""
    for c in range(cw):
        for i in range(count):
            dst[b, c0 + c, t0 + i] = tile[i, c]


@njit(inline="always", **_KERNEL_OPTIONS)
def _step_sizes(raw, bias_blk, softplus, count, dt, ddt):
    """dt = softplus(raw + bias) or raw + bias, ddt = d dt / d raw, for a tile (count, LANES)."""
    one = raw.dtype.type(1)
    if softplus:
        for i in range(count):
            for c in range(LANES):
                dt[i, c], ddt[i, c] = _softplus(raw[i, c] + bias_blk[c], one)
    else:
        for i in range(count):
            for c in range(LANES):
                dt[i, c], ddt[i, c] = raw[i, c] + bias_blk[c], one


@njit(inline="always", **_KERNEL_OPTIONS)
def _forward_item(item, u, delta, At, B, C, D, z, bias, softplus, has_z, interval, y, h_last, checkpoints):
    """One work item of :func:`scan_forward`: batch item, group and block of LANES channels from ``item``."""
    batch, dim, length = u.shape
    groups, n = B.shape[1], At.shape[0]
    per_group = dim // groups
    blocks = (per_group + LANES - 1) // LANES
    b, g, blk = item // (groups * blocks), (item // blocks) % groups, item % blocks
    c0, cw = g * per_group + blk * LANES, min(LANES, per_group - blk * LANES)
    one = u.dtype.type(1)
    A_blk, D_blk, bias_blk = _block_params(At, D, bias, c0, cw)
    h = np.zeros((n, LANES), dtype=u.dtype)
    s = np.zeros(LANES, dtype=u.dtype)
    # separate buffers (no in-place reuse): LLVM vectorises loops only over arrays it sees do not overlap.
    ut, raw, dt, ddt, xu, zt, yt = np.zeros((7, FORWARD_TILE, LANES), dtype=u.dtype)
    for t0 in range(0, length, FORWARD_TILE):
        count = min(FORWARD_TILE, length - t0)
        _gather(u, b, c0, cw, t0, count, ut)
        _gather(delta, b, c0, cw, t0, count, raw)
        _step_sizes(raw, bias_blk, softplus, count, dt, ddt)
        for i in range(count):
            for c in range(LANES):
                xu[i, c] = dt[i, c] * ut[i, c]
        for i in range(count):
            t = t0 + i
            if t % interval == 0:
                for j in range(n):
                    for c in range(cw):
                        checkpoints[b, t // interval, j, c0 + c] = h[j, c]
            for c in range(LANES):
                s[c] = 0
            for j in range(n):
                bj, cj = B[b, g, t, j], C[b, g, t, j]
                for c in range(LANES):  # eq. 2 (ZOH decay exp(dt A), input dt B u) and eq. 3 (y = C h)
                    hv = _exp(dt[i, c] * A_blk[j, c]) * h[j, c] + xu[i, c] * bj
                    h[j, c] = hv
                    s[c] += cj * hv
            for c in range(LANES):
                yt[i, c] = s[c]
        for i in range(count):
            for c in range(LANES):
                yt[i, c] += D_blk[c] * ut[i, c]
        if has_z:
            _gather(z, b, c0, cw, t0, count, zt)
            for i in range(count):
                for c in range(LANES):
                    yt[i, c] *= zt[i, c] / (one + _exp(-zt[i, c]))
        _scatter(yt, y, b, c0, cw, t0, count)
    for j in range(n):
        for c in range(cw):
            h_last[b, c0 + c, j] = h[j, c]


@njit(parallel=True, **_KERNEL_OPTIONS)
def scan_forward(u, delta, At, B, C, D, z, bias, softplus, has_z, interval, y, h_last, checkpoints):
    """y (b, d, l), h_last (b, d, n) and checkpoints (b, n_seg, n, d), all written here. Each work item walks
    the sequence in tiles of :data:`FORWARD_TILE` positions: gather the tile's inputs, step sizes for the whole
    tile, the recurrence position by position, then the D skip and silu(z) gate for the whole tile."""
    per_group = u.shape[1] // B.shape[1]
    for item in prange(u.shape[0] * B.shape[1] * ((per_group + LANES - 1) // LANES)):
        _forward_item(item, u, delta, At, B, C, D, z, bias, softplus, has_z, interval, y, h_last, checkpoints)


@njit(**_KERNEL_OPTIONS)
def scan_forward_serial(u, delta, At, B, C, D, z, bias, softplus, has_z, interval, y, h_last, checkpoints):
    """:func:`scan_forward` on the calling thread (no thread-pool launch: for small inputs or one thread)."""
    per_group = u.shape[1] // B.shape[1]
    for item in range(u.shape[0] * B.shape[1] * ((per_group + LANES - 1) // LANES)):
        _forward_item(item, u, delta, At, B, C, D, z, bias, softplus, has_z, interval, y, h_last, checkpoints)


@njit(inline="always", **_KERNEL_OPTIONS)
def _backward_item(
    item, u, delta, At, B, C, D, z, bias, softplus, has_z, interval, checkpoints, dy, dh_last, parts, lanes,
    du, ddelta, dz, dA_b, dD_b, dbias_b, dB_p, dC_p,
):  # fmt: skip
    """One work item of :func:`scan_backward`: batch item, group and part from ``item``."""
    batch, dim, length = u.shape
    groups, n = B.shape[1], At.shape[0]
    per_group = dim // groups
    blocks = (per_group + LANES - 1) // LANES
    n_seg = checkpoints.shape[1]
    b, g, p = item // (groups * parts), (item // parts) % groups, item % parts
    zero, one = u.dtype.type(0), u.dtype.type(1)
    hs = np.empty((interval, n, LANES), dtype=u.dtype)  # a segment's states h_t
    decays = np.empty((interval, n, LANES), dtype=u.dtype)  # its decays exp(dt_t A)
    # per-position tiles of the segment (separate buffers, so that LLVM sees they do not overlap)
    ut, raw, dts, dts_draw, xu, zt, dyt, dst, dzt, dut, ddtt = np.zeros((11, interval, LANES), dtype=u.dtype)
    h0, carry, dA_acc = np.zeros((3, n, LANES), dtype=u.dtype)
    dD_acc, dbias_acc, sc, tmp_b, tmp_c = np.zeros((5, LANES), dtype=u.dtype)
    for blk in range(blocks * p // parts, blocks * (p + 1) // parts):
        c0, cw = g * per_group + blk * LANES, min(LANES, per_group - blk * LANES)
        A_blk, D_blk, bias_blk = _block_params(At, D, bias, c0, cw)
        carry[:] = 0  # exp(dt_{t+1} A) dL/dh_{t+1}; after the last position dL/dh_last
        for j in range(n):
            for c in range(cw):
                carry[j, c] = dh_last[b, c0 + c, j]
        dA_acc[:] = 0
        dD_acc[:] = 0
        dbias_acc[:] = 0
        for seg in range(n_seg - 1, -1, -1):
            t0 = seg * interval
            count = min(interval, length - t0)
            for j in range(n):
                for c in range(LANES):
                    h0[j, c] = checkpoints[b, seg, j, c0 + min(c, cw - 1)]
            _gather(u, b, c0, cw, t0, count, ut)
            _gather(delta, b, c0, cw, t0, count, raw)
            _gather(dy, b, c0, cw, t0, count, dyt)
            _step_sizes(raw, bias_blk, softplus, count, dts, dts_draw)
            for i in range(count):
                for c in range(LANES):
                    xu[i, c] = dts[i, c] * ut[i, c]
                    dst[i, c] = dyt[i, c] if c < cw else zero  # padding lanes: no output gradient
            # recompute the segment's states from its checkpoint, exactly as the forward did.
            for i in range(count):
                prev = hs[i - 1] if i > 0 else h0
                for j in range(n):
                    bj = B[b, g, t0 + i, j]
                    for c in range(LANES):
                        a = _exp(dts[i, c] * A_blk[j, c])
                        decays[i, j, c] = a
                        hs[i, j, c] = a * prev[j, c] + xu[i, c] * bj
            # y = (s + D u) * silu(z): dz, and the gradient ds reaching s = C . h
            if has_z:
                _gather(z, b, c0, cw, t0, count, zt)
                for i in range(count):
                    sc[:] = 0
                    for j in range(n):
                        cj = C[b, g, t0 + i, j]
                        for c in range(LANES):
                            sc[c] += cj * hs[i, j, c]
                    for c in range(LANES):
                        sig = one / (one + _exp(-zt[i, c]))
                        dzt[i, c] = dst[i, c] * (sc[c] + D_blk[c] * ut[i, c]) * sig * (one + zt[i, c] * (one - sig))
                        dst[i, c] = dst[i, c] * zt[i, c] * sig
            for i in range(count - 1, -1, -1):
                t = t0 + i
                for c in range(LANES):
                    dD_acc[c] += dst[i, c] * ut[i, c]
                    dut[i, c] = dst[i, c] * D_blk[c]
                    ddtt[i, c] = zero
                prev = hs[i - 1] if i > 0 else h0
                for j in range(n):
                    bj, cj = B[b, g, t, j], C[b, g, t, j]
                    # `lanes` == LANES but opaque to LLVM: with a constant trip count this small body is fully
                    # unrolled and then not vectorised.
                    for c in range(lanes):
                        gj = dst[i, c] * cj + carry[j, c]  # dL/dh_t
                        gdt = gj * dts[i, c]
                        ghp = gj * decays[i, j, c] * prev[j, c]  # dL/d(dt A) through the decay
                        dA_acc[j, c] += ghp * dts[i, c]
                        ddtt[i, c] += ghp * A_blk[j, c] + gj * bj * ut[i, c]
                        dut[i, c] += gdt * bj
                        carry[j, c] = decays[i, j, c] * gj
                        tmp_b[c] = gdt * ut[i, c]
                        tmp_c[c] = dst[i, c] * hs[i, j, c]
                    dB_p[b, g, p, t, j] += _lane_sum(tmp_b)
                    dC_p[b, g, p, t, j] += _lane_sum(tmp_c)
            for i in range(count):
                for c in range(LANES):
                    ddtt[i, c] *= dts_draw[i, c]
                    dbias_acc[c] += ddtt[i, c]
            _scatter(dut, du, b, c0, cw, t0, count)
            _scatter(ddtt, ddelta, b, c0, cw, t0, count)
            if has_z:
                _scatter(dzt, dz, b, c0, cw, t0, count)
        for j in range(n):
            dA_b[b, j, c0 : c0 + cw] = dA_acc[j, :cw]
        dD_b[b, c0 : c0 + cw] = dD_acc[:cw]
        dbias_b[b, c0 : c0 + cw] = dbias_acc[:cw]


@njit(parallel=True, **_KERNEL_OPTIONS)
def scan_backward(
    u, delta, At, B, C, D, z, bias, softplus, has_z, interval, checkpoints, dy, dh_last, parts, lanes,
    du, ddelta, dz, dA_b, dD_b, dbias_b, dB_p, dC_p,
):  # fmt: skip
    """Gradients. du, ddelta, dz: (b, d, l); dA_b (b, n, d), dD_b, dbias_b (b, d): per batch item, summed by
    the caller; dB_p, dC_p (b, g, parts, l, n): per part of a group's channels, summed by the caller.

    One work item is (batch item, group, part): it owns a contiguous range of the group's lane blocks and its own
    dB/dC buffer, so no two threads write the same element. Padding lanes get a zero output gradient and a zero
    final-state gradient, so their adjoints stay zero and add nothing to the sums over channels.
    """
    for item in prange(u.shape[0] * B.shape[1] * parts):
        _backward_item(
            item, u, delta, At, B, C, D, z, bias, softplus, has_z, interval, checkpoints, dy, dh_last, parts, lanes,
            du, ddelta, dz, dA_b, dD_b, dbias_b, dB_p, dC_p,
        )  # fmt: skip


@njit(**_KERNEL_OPTIONS)
def scan_backward_serial(
    u, delta, At, B, C, D, z, bias, softplus, has_z, interval, checkpoints, dy, dh_last, parts, lanes,
    du, ddelta, dz, dA_b, dD_b, dbias_b, dB_p, dC_p,
):  # fmt: skip
    """:func:`scan_backward` on the calling thread."""
    for item in range(u.shape[0] * B.shape[1] * parts):
        _backward_item(
            item, u, delta, At, B, C, D, z, bias, softplus, has_z, interval, checkpoints, dy, dh_last, parts, lanes,
            du, ddelta, dz, dA_b, dD_b, dbias_b, dB_p, dC_p,
        )  # fmt: skip
