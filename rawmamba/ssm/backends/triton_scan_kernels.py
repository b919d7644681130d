"""Triton kernels of :mod:`rawmamba.ssm.backends.triton_scan` (imported only when that backend runs).

Layouts (all contiguous): ``u, delta, z, y, dy``: (b, d, l); ``A``: (d, n); ``B, C``: (b, g, n, l);
``D, delta_bias``: (d,); per-chunk carries (n_chunks, b, d, n) and tile checkpoints (n_tiles, b, d, n), float32.
A program covers (chunk, batch item x group x block of ``BLOCK_D`` channels); padding channels get index ``dim``
and padding states/positions are masked, with decay 1 and input 0 so that they pass the state through.
"""

import triton
import triton.language as tl

# Decays exp(dt A) = 2^(dt A log2 e): tl.exp2 compiles to one MUFU.EX2 (ex2.approx.ftz), while tl.exp adds a multiply
# by log2 e and a guard for subnormal inputs, 6 instructions in all (sm_90 SASS of the loop forward: 460 -> 336
# instructions per position over its two passes, the log2 e folded into A once per program; 274 with step_size's
# series for log1p).
LOG2E: tl.constexpr = tl.constexpr(1.4426950408889634)


@triton.jit
def combine(a1, x1, a2, x2):
    # (a1, x1) then (a2, x2): h -> a2 (a1 h + x1) + x2
    return a1 * a2, a2 * x1 + x2


@triton.jit
def step_size(raw, bias, SOFTPLUS: tl.constexpr):
    """dt = softplus(raw + bias) or raw + bias, and d dt / d raw (sigmoid(raw + bias) or 1)."""
    x = raw + bias
    if SOFTPLUS:
        # softplus(x) = max(x, 0) + log1p(e) with e = exp(-|x|) in (0, 1], and log1p(e) = 2 atanh(s), s = e / (2 + e)
        # <= 1/3, by its series to s^15 (truncation < 2e-9): accurate for small e, where log(1 + e) loses e's digits,
        # and fewer instructions than tl.log (the sm_90 loop forward: 25 -> 15 per position and pass).
        e = tl.exp2(-tl.abs(x) * LOG2E)
        s = e / (2.0 + e)
        s2 = s * s
        p = 1.0 / 15.0
        p = p * s2 + 1.0 / 13.0
        p = p * s2 + 1.0 / 11.0
        p = p * s2 + 1.0 / 9.0
        p = p * s2 + 1.0 / 7.0
        p = p * s2 + 1.0 / 5.0
        p = p * s2 + 1.0 / 3.0
        p = p * s2 + 1.0
        dt = tl.maximum(x, 0.0) + 2.0 * s * p
        ddt = tl.where(x >= 0.0, 1.0, e) / (1.0 + e)
    else:
        dt = x
        ddt = tl.full(x.shape, 1.0, tl.float32)
    return dt, ddt


@triton.jit
def block_channels(pid, per_group, groups, dim, BLOCK_D: tl.constexpr):
    """Program ``pid``'s batch item b, group g and (BLOCK_D,) channel indices (a block of the group's channels);
    padding channels past the group's end get index ``dim``."""
    blocks_per_group = tl.cdiv(per_group, BLOCK_D)
    b, rest = pid // (groups * blocks_per_group), pid % (groups * blocks_per_group)
    g, blk = rest // blocks_per_group, rest % blocks_per_group
    d_loc = blk * BLOCK_D + tl.arange(0, BLOCK_D)
    return b, g, tl.where(d_loc < per_group, g * per_group + d_loc, dim)


@triton.jit
def channel_bias_and_skip(bias_ptr, D_ptr, d_idx, dm, HAS_BIAS: tl.constexpr, HAS_D: tl.constexpr):
    """delta_bias and D of the channels ``d_idx`` (``dm``: the real ones) in float32; 0 where not given."""
    bias = tl.load(bias_ptr + d_idx, mask=dm, other=0.0).to(tl.float32) if HAS_BIAS else 0.0
    Dv = tl.load(D_ptr + d_idx, mask=dm, other=0.0).to(tl.float32) if HAS_D else 0.0
    return bias, Dv


@triton.jit
def add_parameter_grads(
    dA_ptr, dD_ptr, dbias_ptr, d_idx, n_idx, n, dA, dD, dbias, dm, dn, HAS_D: tl.constexpr, HAS_BIAS: tl.constexpr
):
    """Add a program's sums of dA (over its states), dD and d delta_bias to the gradients, atomically (other
    programs hold other chunks of the same channels)."""
    tl.atomic_add(dA_ptr + d_idx * n + n_idx, dA, mask=dn, sem="relaxed")
    if HAS_D:
        tl.atomic_add(dD_ptr + d_idx, dD, mask=dm, sem="relaxed")
    if HAS_BIAS:
        tl.atomic_add(dbias_ptr + d_idx, dbias, mask=dm, sem="relaxed")


@triton.jit
def last_column(h, t_idx, BLOCK_T: tl.constexpr):
    return tl.sum(tl.where(t_idx == BLOCK_T - 1, h, 0.0), axis=2)


@triton.jit
def load_tile(
    u_ptr,
    dt_ptr,
    bias_ptr,
    A_ptr,
    B_ptr,
    row,
    d_idx,
    n_idx,
    t0,
    t_idx,
    bc_base,
    length,
    dim,
    n,
    SOFTPLUS: tl.constexpr,
    HAS_BIAS: tl.constexpr,
):
    """Decays a, inputs x (BD, BN, BT) of positions t0 + t_idx; masked positions get a = 1, x = 0."""
    t = t0 + t_idx  # (1, 1, BT)
    tm = t < length
    dm = d_idx < dim
    nm = n_idx < n
    u = tl.load(u_ptr + row + t, mask=dm & tm, other=0.0).to(tl.float32)  # (BD, 1, BT)
    raw = tl.load(dt_ptr + row + t, mask=dm & tm, other=0.0).to(tl.float32)
    if HAS_BIAS:
        bias = tl.load(bias_ptr + d_idx, mask=dm, other=0.0).to(tl.float32)
    else:
        bias = 0.0
    dt, ddt = step_size(raw, bias, SOFTPLUS)
    A = tl.load(A_ptr + d_idx * n + n_idx, mask=dm & nm, other=0.0).to(tl.float32)  # (BD, BN, 1)
    Bv = tl.load(B_ptr + bc_base + n_idx * length + t, mask=nm & tm, other=0.0).to(tl.float32)  # (1, BN, BT)
    a = tl.where(tm, tl.exp2(dt * (A * LOG2E)), 1.0)
    x = tl.where(tm, dt * u * Bv, 0.0)
    return a, x, u, dt, ddt, A, Bv, tm


@triton.jit
def forward_kernel(
    u_ptr,
    dt_ptr,
    A_ptr,
    B_ptr,
    C_ptr,
    D_ptr,
    z_ptr,
    bias_ptr,
    y_ptr,
    starts_ptr,
    local_ptr,
    decay_ptr,
    ckpt_ptr,
    length,
    dim,
    n,
    per_group,
    groups,
    rows,
    CHUNK: tl.constexpr,
    BLOCK_D: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_T: tl.constexpr,
    SOFTPLUS: tl.constexpr,
    HAS_D: tl.constexpr,
    HAS_Z: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    FINAL: tl.constexpr,
    SAVE: tl.constexpr,
):
    """FINAL False: local end state and decay product of the chunk from a zero state. FINAL True: y from the
    carried start state, and the tile-start checkpoints when SAVE."""
    chunk, pid = tl.program_id(0), tl.program_id(1)
    b, g, d_idx = block_channels(pid, per_group, groups, dim, BLOCK_D)
    d_idx = d_idx[:, None, None]  # dim marks padding channels
    n_idx = tl.arange(0, BLOCK_N)[None, :, None]
    t_idx = tl.arange(0, BLOCK_T)[None, None, :]
    row = (b * dim + d_idx) * length
    bc_base = (b * groups + g) * n * length
    dn = (d_idx < dim) & (n_idx < n)
    state_off = chunk * rows + (b * dim + d_idx) * n + n_idx  # (BD, BN, 1), arrays (n_chunks, b, d, n)
    if FINAL:
        h = tl.sum(tl.load(starts_ptr + state_off, mask=dn, other=0.0), axis=2)
    else:
        h = tl.zeros((BLOCK_D, BLOCK_N), tl.float32)
    decay = tl.full((BLOCK_D, BLOCK_N), 1.0, tl.float32)
    if HAS_D:
        Dv = tl.load(D_ptr + d_idx, mask=d_idx < dim, other=0.0).to(tl.float32)  # (BD, 1, 1)
    for k in range(0, CHUNK // BLOCK_T):
        t0 = chunk * CHUNK + k * BLOCK_T
        if t0 < length:
            a, x, u, dt, ddt, A, Bv, tm = load_tile(
                u_ptr,
                dt_ptr,
                bias_ptr,
                A_ptr,
                B_ptr,
                row,
                d_idx,
                n_idx,
                t0,
                t_idx,
                bc_base,
                length,
                dim,
                n,
                SOFTPLUS,
                HAS_BIAS,
            )
            if FINAL and SAVE:
                tile = t0 // BLOCK_T
                ck_off = tile * rows + (b * dim + d_idx) * n + n_idx  # (n_tiles, b, d, n)
                tl.store(ckpt_ptr + ck_off, h[:, :, None], mask=dn)
            cum_a, h_loc = tl.associative_scan((a, x), 2, combine)
            hs = h_loc + cum_a * h[:, :, None]
            h = last_column(hs, t_idx, BLOCK_T)
            decay = decay * last_column(cum_a, t_idx, BLOCK_T)
            if FINAL:
                t = t0 + t_idx
                Cv = tl.load(C_ptr + bc_base + n_idx * length + t, mask=(n_idx < n) & tm, other=0.0)
                y = tl.sum(hs * Cv.to(tl.float32), axis=1)[:, None, :]  # (BD, 1, BT), eq. 3
                if HAS_D:
                    y = y + Dv * u
                if HAS_Z:
                    zv = tl.load(z_ptr + row + t, mask=(d_idx < dim) & tm, other=0.0).to(tl.float32)
                    y = y * zv * tl.sigmoid(zv)
                tl.store(y_ptr + row + t, y.to(y_ptr.dtype.element_ty), mask=(d_idx < dim) & tm)
    if not FINAL:
        tl.store(local_ptr + state_off, h[:, :, None], mask=dn)
        tl.store(decay_ptr + state_off, decay[:, :, None], mask=dn)


@triton.jit
def masked_load(pointers, mask, EVEN: tl.constexpr):
    """``tl.load`` of ``pointers`` where ``mask`` (0 elsewhere); without a mask when EVEN (all exist)."""
    if EVEN:
        return tl.load(pointers)
    else:
        return tl.load(pointers, mask=mask, other=0.0)


@triton.jit
def load_position(u_row, dt_row, B_row, C_row, z_row, t, su_l, sdt_l, sB_l, sC_l, sz_l, dm, nm, EVEN_D: tl.constexpr,
                  EVEN_N: tl.constexpr, FINAL: tl.constexpr, HAS_Z: tl.constexpr):  # fmt: skip
    """The loop forward's inputs at position ``t`` as stored (u, raw delta, B; C and z in the FINAL pass, else
    u in their place)."""
    u = masked_load(u_row + t * su_l, dm, EVEN_D)
    raw = masked_load(dt_row + t * sdt_l, dm, EVEN_D)
    Bv = masked_load(B_row + t * sB_l, nm, EVEN_N)
    Cv, zv = u, u
    if FINAL:
        Cv = masked_load(C_row + t * sC_l, nm, EVEN_N)
        if HAS_Z:
            zv = masked_load(z_row + t * sz_l, dm, EVEN_D)
    return u, raw, Bv, Cv, zv


@triton.jit
def prefetch(pointers):
    """Ask for the cache lines that hold ``pointers`` in L1 (PTX ``prefetch.global.L1``, SASS ``CCTL.E.PF1``, one
    per thread): no register receives the data and nothing waits for it, so it can run many positions ahead of the
    loads at no register cost. A hint, without effect on results; the interpreter has no inline assembly, so the
    kernels are launched there without prefetching."""
    tl.inline_asm_elementwise("prefetch.global.L1 [$1];", "=r,l", [pointers], dtype=tl.int32, is_pure=False, pack=1)


@triton.jit
def prefetch_state_vector(first, row, t, s_n, s_l):
    """:func:`prefetch` of a B or C vector at position ``t`` (``first``: the pointer of its first state at position
    0, ``row``: of all its (1, BLOCK_N) states): one line from the first state when the states are adjacent
    (token-major: 64 bytes for n=16), else every state's."""
    if s_n == 1:
        prefetch(first + t * s_l)
    else:
        prefetch(row + t * s_l)


@triton.jit
def prefetch_position(u_row, dt_row, B_first, B_row, C_first, C_row, z_row, t, su_l, sdt_l, sB_n, sB_l, sC_n, sC_l,
                      sz_l, FINAL: tl.constexpr, HAS_Z: tl.constexpr):  # fmt: skip
    """:func:`prefetch` of what :func:`load_position` loads at position ``t`` (the pointers of position 0, with
    padding channels and states on real ones)."""
    prefetch(u_row + t * su_l)
    prefetch(dt_row + t * sdt_l)
    prefetch_state_vector(B_first, B_row, t, sB_n, sB_l)
    if FINAL:
        prefetch_state_vector(C_first, C_row, t, sC_n, sC_l)
        if HAS_Z:
            prefetch(z_row + t * sz_l)


@triton.jit
def walk_position(h, dt_sum, t, u, raw, Bv, Cv, zv, A2, bias, Dv, y_row, sy_l, ckpt_ptr, rows, state_off, dm, dn,
                  BLOCK_T: tl.constexpr, SOFTPLUS: tl.constexpr, HAS_D: tl.constexpr, HAS_Z: tl.constexpr,
                  FINAL: tl.constexpr, SAVE: tl.constexpr, EVEN_D: tl.constexpr):  # fmt: skip
    """One position of the loop forward: the state after it (eq. 2); in the FINAL pass ``y`` stored (eq. 3, D skip,
    silu(z) gate) and, when SAVE, the state before it at tile starts; else the sum of the step sizes."""
    u, raw, Bv = u.to(tl.float32), raw.to(tl.float32), Bv.to(tl.float32)
    if FINAL and SAVE:
        if t % BLOCK_T == 0:
            tl.store(ckpt_ptr + (t // BLOCK_T) * rows + state_off, h, mask=dn)
    dt, _ = step_size(raw, bias, SOFTPLUS)
    h = tl.exp2(dt * A2) * h + (dt * u) * Bv  # eq. 2 (exp(dt A) = 2^(dt A log2 e))
    if FINAL:
        y = tl.sum(h * Cv.to(tl.float32), axis=1)[:, None]  # (BD, 1), eq. 3
        if HAS_D:
            y = y + Dv * u
        if HAS_Z:
            zf = zv.to(tl.float32)
            y = y * zf * tl.sigmoid(zf)
        if EVEN_D:
            tl.store(y_row + t * sy_l, y.to(y_row.dtype.element_ty))
        else:
            tl.store(y_row + t * sy_l, y.to(y_row.dtype.element_ty), mask=dm)
    else:
        dt_sum += dt
    return h, dt_sum


@triton.jit
def walk_chunk(h, start, steps, length, u_row, dt_row, B_row, C_row, z_row, y_row, u_ahead, dt_ahead, B_first, B_ahead,
               C_first, C_ahead, z_ahead, su_l, sdt_l, sB_n, sB_l, sC_n, sC_l, sz_l, sy_l, A2, bias, Dv, ckpt_ptr, rows,
               state_off, dm, nm, dn, BLOCK_D: tl.constexpr, BLOCK_T: tl.constexpr, SOFTPLUS: tl.constexpr,
               HAS_D: tl.constexpr, HAS_Z: tl.constexpr, FINAL: tl.constexpr, SAVE: tl.constexpr,
               EVEN_D: tl.constexpr, EVEN_N: tl.constexpr, UNROLL: tl.constexpr, STAGES: tl.constexpr,
               PREFETCH: tl.constexpr):  # fmt: skip
    """One pass of :func:`forward_loop_kernel` over positions ``start`` to ``start + steps - 1`` from the state
    ``h``: the state after them and (not in the FINAL pass) the sum of their step sizes."""
    dt_sum = tl.zeros((BLOCK_D, 1), tl.float32)
    if PREFETCH > 0:  # the positions before the walk's first prefetch
        for k in range(0, tl.minimum(PREFETCH, steps)):
            prefetch_position(u_ahead, dt_ahead, B_first, B_ahead, C_first, C_ahead, z_ahead, start + k, su_l,
                              sdt_l, sB_n, sB_l, sC_n, sC_l, sz_l, FINAL, HAS_Z)  # fmt: skip
    if STAGES == 1:
        # position `start` loaded here; each step then loads the next position (clamped to the last one, so that
        # no load needs a mask for it) before using the current one
        u_n, raw_n, B_n, C_n, z_n = load_position(u_row, dt_row, B_row, C_row, z_row, start, su_l, sdt_l, sB_l,
                                                  sC_l, sz_l, dm, nm, EVEN_D, EVEN_N, FINAL, HAS_Z)  # fmt: skip
        for k in tl.range(0, steps, loop_unroll_factor=UNROLL):
            t = start + k
            if PREFETCH > 0:
                prefetch_position(u_ahead, dt_ahead, B_first, B_ahead, C_first, C_ahead, z_ahead,
                                  tl.minimum(t + PREFETCH, length - 1), su_l, sdt_l, sB_n, sB_l, sC_n, sC_l, sz_l,
                                  FINAL, HAS_Z)  # fmt: skip
            u, raw, Bv, Cv, zv = u_n, raw_n, B_n, C_n, z_n
            t_next = tl.minimum(t + 1, length - 1)
            u_n, raw_n, B_n, C_n, z_n = load_position(u_row, dt_row, B_row, C_row, z_row, t_next, su_l, sdt_l,
                                                      sB_l, sC_l, sz_l, dm, nm, EVEN_D, EVEN_N, FINAL,
                                                      HAS_Z)  # fmt: skip
            h, dt_sum = walk_position(h, dt_sum, t, u, raw, Bv, Cv, zv, A2, bias, Dv, y_row, sy_l, ckpt_ptr,
                                      rows, state_off, dm, dn, BLOCK_T, SOFTPLUS, HAS_D, HAS_Z, FINAL, SAVE,
                                      EVEN_D)  # fmt: skip
    else:
        # STAGES 0: num_stages 1, no pipelining
        for k in tl.range(0, steps, loop_unroll_factor=UNROLL, num_stages=STAGES if STAGES > 1 else 1):
            t = start + k
            if PREFETCH > 0:
                prefetch_position(u_ahead, dt_ahead, B_first, B_ahead, C_first, C_ahead, z_ahead,
                                  tl.minimum(t + PREFETCH, length - 1), su_l, sdt_l, sB_n, sB_l, sC_n, sC_l, sz_l,
                                  FINAL, HAS_Z)  # fmt: skip
            u, raw, Bv, Cv, zv = load_position(u_row, dt_row, B_row, C_row, z_row, t, su_l, sdt_l, sB_l, sC_l,
                                               sz_l, dm, nm, EVEN_D, EVEN_N, FINAL, HAS_Z)  # fmt: skip
            h, dt_sum = walk_position(h, dt_sum, t, u, raw, Bv, Cv, zv, A2, bias, Dv, y_row, sy_l, ckpt_ptr,
                                      rows, state_off, dm, dn, BLOCK_T, SOFTPLUS, HAS_D, HAS_Z, FINAL, SAVE,
                                      EVEN_D)  # fmt: skip
    return h, dt_sum


@triton.jit
def forward_loop_kernel(
    u_ptr,
    dt_ptr,
    A_ptr,
    B_ptr,
    C_ptr,
    D_ptr,
    z_ptr,
    bias_ptr,
    y_ptr,
    starts_ptr,
    local_ptr,
    decay_ptr,
    ckpt_ptr,
    flags_ptr,
    last_ptr,
    length,
    dim,
    n,
    per_group,
    groups,
    rows,
    su_b,
    su_d,
    su_l,
    sdt_b,
    sdt_d,
    sdt_l,
    sz_b,
    sz_d,
    sz_l,
    sy_b,
    sy_d,
    sy_l,
    sB_b,
    sB_g,
    sB_n,
    sB_l,
    sC_b,
    sC_g,
    sC_n,
    sC_l,
    CHUNK: tl.constexpr,
    BLOCK_D: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_T: tl.constexpr,
    SOFTPLUS: tl.constexpr,
    HAS_D: tl.constexpr,
    HAS_Z: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    FINAL: tl.constexpr,
    SAVE: tl.constexpr,
    EVEN_D: tl.constexpr,
    EVEN_N: tl.constexpr,
    UNROLL: tl.constexpr,
    STAGES: tl.constexpr,
    PREFETCH: tl.constexpr,
    LOOKBACK: tl.constexpr,
):
    """:func:`forward_kernel`'s work (same results) walking the chunk one position at a time: the state is a
    (BLOCK_D, BLOCK_N) register block updated by eq. 2 at every position, with no scan tree (``log2(BLOCK_T)``
    combine levels per tile there). Any strides (``s<tensor>_<axis>``, in elements): with token-major inputs
    (stride 1 along d, as ``(b, l, d)`` tensors viewed as ``(b, d, l)``) the ``BLOCK_D`` values of one position
    are one coalesced load. STAGES 1: the loads of position t + 1 are issued before position t is computed;
    more: plain loads, pipelined STAGES - 1 iterations ahead by Triton (through shared memory); 0: plain loads
    where the inputs are used, not pipelined (fewer registers; with PREFETCH, they find their lines in L1).
    PREFETCH > 0: the cache lines of position t + PREFETCH are also asked for in L1 at position t
    (:func:`prefetch`), so that the loads find them there.
    FINAL False: the chunk's end state from zero and its decay ``exp(A sum dt)``; FINAL True: ``y`` (eq. 3, D
    skip, silu(z) gate) from the carried start state, and the state at every tile start when SAVE.
    EVEN_D (``per_group % BLOCK_D == 0``) and EVEN_N (``n == BLOCK_N``): no padding channels / states, so the
    per-position loads and stores go without masks. UNROLL: positions per iteration of the walk.
    LOOKBACK: both passes in one launch of a 1-D grid (FINAL unused). Programs take (chunk, channel block) in the
    order they start, from a counter at ``flags_ptr``, chunk-major; between its passes each gets its start state
    from the chunks before it (:func:`chunk_carry`), so that none waits for a chunk not yet started: ``local_ptr``
    and ``decay_ptr`` then hold what each chunk publishes first, ``starts_ptr`` the state after each chunk, and the
    state after the last chunk also goes to ``last_ptr``."""
    if LOOKBACK:  # work in the order programs start: each waits only for chunks taken before its own
        n_chunks = tl.cdiv(length, CHUNK)
        blocks = tl.num_programs(0) // n_chunks
        ticket = tl.atomic_add(flags_ptr, 1, sem="relaxed")
        chunk, pid = ticket // blocks, ticket % blocks
    else:
        chunk, pid = tl.program_id(0), tl.program_id(1)
    b, g, d_idx = block_channels(pid, per_group, groups, dim, BLOCK_D)
    d_idx = d_idx[:, None]  # (BD, 1); dim marks padding channels
    n_idx = tl.arange(0, BLOCK_N)[None, :]  # (1, BN)
    dm, nm = d_idx < dim, n_idx < n
    dn = dm & nm
    u_row = u_ptr + b * su_b + d_idx * su_d  # (BD, 1) pointers; + t * s*_l per position
    dt_row = dt_ptr + b * sdt_b + d_idx * sdt_d
    B_first = B_ptr + b * sB_b + g * sB_g  # state 0 at position 0
    B_row = B_first + n_idx * sB_n  # (1, BN)
    state_off = (b * dim + d_idx) * n + n_idx  # (BD, BN) in one (b, d, n) slab
    A2 = tl.load(A_ptr + d_idx * n + n_idx, mask=dn, other=0.0).to(tl.float32) * LOG2E
    bias, Dv = channel_bias_and_skip(bias_ptr, D_ptr, d_idx, dm, HAS_BIAS, HAS_D)  # (BD, 1) each
    C_first = C_ptr + b * sC_b + g * sC_g
    C_row = C_first + n_idx * sC_n
    z_row = z_ptr + b * sz_b + d_idx * sz_d
    y_row = y_ptr + b * sy_b + d_idx * sy_d
    # prefetches take no mask: padding channels and states ask for the lines of the last real ones
    d_real = d_idx if EVEN_D else tl.minimum(d_idx, dim - 1)
    n_real = n_idx if EVEN_N else tl.minimum(n_idx, n - 1)
    u_ahead = u_ptr + b * su_b + d_real * su_d
    dt_ahead = dt_ptr + b * sdt_b + d_real * sdt_d
    z_ahead = z_ptr + b * sz_b + d_real * sz_d
    B_ahead, C_ahead = B_first + n_real * sB_n, C_first + n_real * sC_n
    start = chunk * CHUNK
    steps = tl.minimum(CHUNK, length - start)
    if LOOKBACK or not FINAL:  # the chunk from a zero state: its end state and decay
        h, dt_sum = walk_chunk(tl.zeros((BLOCK_D, BLOCK_N), tl.float32), start, steps, length, u_row, dt_row, B_row,
                               C_row, z_row, y_row, u_ahead, dt_ahead, B_first, B_ahead, C_first, C_ahead, z_ahead,
                               su_l, sdt_l, sB_n, sB_l, sC_n, sC_l, sz_l, sy_l, A2, bias, Dv, ckpt_ptr, rows, state_off,
                               dm, nm, dn, BLOCK_D, BLOCK_T, SOFTPLUS, HAS_D, HAS_Z, False, False, EVEN_D, EVEN_N,
                               UNROLL, STAGES, PREFETCH)  # fmt: skip
        decay = tl.exp2(dt_sum * A2)
        if LOOKBACK:
            h = chunk_carry(h, decay, chunk, pid, blocks, n_chunks, flags_ptr, local_ptr, decay_ptr, starts_ptr,
                            last_ptr, rows, state_off, dn, BLOCK_D, BLOCK_N)  # fmt: skip
        else:
            tl.store(local_ptr + chunk * rows + state_off, h, mask=dn)
            tl.store(decay_ptr + chunk * rows + state_off, decay, mask=dn)
    if LOOKBACK or FINAL:  # the chunk from its true start state: y
        if not LOOKBACK:
            h = tl.load(starts_ptr + chunk * rows + state_off, mask=dn, other=0.0)
        walk_chunk(h, start, steps, length, u_row, dt_row, B_row, C_row, z_row, y_row, u_ahead, dt_ahead, B_first,
                   B_ahead, C_first, C_ahead, z_ahead, su_l, sdt_l, sB_n, sB_l, sC_n, sC_l, sz_l, sy_l, A2, bias, Dv,
                   ckpt_ptr, rows, state_off, dm, nm, dn, BLOCK_D, BLOCK_T, SOFTPLUS, HAS_D, HAS_Z, True, SAVE,
                   EVEN_D, EVEN_N, UNROLL, STAGES, PREFETCH)  # fmt: skip


@triton.jit
def look_back(flags_ptr, local_ptr, decay_ptr, inclusive_ptr, chunk, block, blocks, rows, state_off, dn,
              BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr):  # fmt: skip
    """The state entering ``chunk`` (of the channel block ``block``), from the chunks before it as they publish
    (decoupled look-back): walking back from ``chunk - 1``, each chunk's flag is awaited; a chunk that knows the
    state after itself (flag 2, in ``inclusive``) ends the walk; one that knows only its own end state from zero and
    its decay (flag 1, in ``local`` and ``decay``) is composed in and the walk goes on. Flags of chunk j at
    ``flags_ptr + 1 + j * blocks + block``; states at ``j * rows + state_off``. 0 for the first chunk."""
    acc_a = tl.full((BLOCK_D, BLOCK_N), 1.0, tl.float32)  # the chunks walked so far, as h -> acc_a h + acc_x
    acc_x = tl.zeros((BLOCK_D, BLOCK_N), tl.float32)
    j = chunk - 1
    while j >= 0:
        flag_ptr = flags_ptr + 1 + j * blocks + block
        flag = tl.atomic_add(flag_ptr, 0, sem="acquire")
        while flag == 0:
            flag = tl.atomic_add(flag_ptr, 0, sem="acquire")
        tl.debug_barrier()
        if flag == 2:  # the state after chunk j: as a chunk of decay 0, it ends the composition
            x = tl.load(inclusive_ptr + j * rows + state_off, mask=dn, other=0.0, cache_modifier=".cg")
            a = tl.zeros((BLOCK_D, BLOCK_N), tl.float32)
            j = -1
        else:
            x = tl.load(local_ptr + j * rows + state_off, mask=dn, other=0.0, cache_modifier=".cg")
            a = tl.load(decay_ptr + j * rows + state_off, mask=dn, other=1.0, cache_modifier=".cg")
            j = j - 1
        acc_x += acc_a * x
        acc_a *= a
    return acc_x


@triton.jit
def chunk_carry(local, decay, chunk, block, blocks, n_chunks, flags_ptr, local_ptr, decay_ptr, inclusive_ptr,
                last_ptr, rows, state_off, dn, BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr):  # fmt: skip
    """The state entering ``chunk`` in the one-launch forward: publish the chunk's ``local`` end state from zero and
    its ``decay`` (flag 1), :func:`look_back` for the state entering it, then publish the state after it (flag 2;
    also into ``last_ptr`` for the last chunk). Each flag is raised by one release after all threads stored."""
    slot = flags_ptr + 1 + chunk * blocks + block
    if chunk > 0:
        tl.store(local_ptr + chunk * rows + state_off, local, mask=dn)
        tl.store(decay_ptr + chunk * rows + state_off, decay, mask=dn)
        tl.debug_barrier()
        tl.atomic_xchg(slot, 1, sem="release")
    carry = look_back(flags_ptr, local_ptr, decay_ptr, inclusive_ptr, chunk, block, blocks, rows, state_off, dn,
                      BLOCK_D, BLOCK_N)  # fmt: skip
    after = local + decay * carry
    tl.store(inclusive_ptr + chunk * rows + state_off, after, mask=dn)
    if chunk == n_chunks - 1:
        tl.store(last_ptr + state_off, after, mask=dn)
    tl.debug_barrier()
    tl.atomic_xchg(slot, 2, sem="release")
    return carry


@triton.jit
def carry_kernel(
    local_ptr,
    decay_ptr,
    out_ptr,
    init_ptr,
    final_ptr,
    n_chunks,
    rows,
    BLOCK: tl.constexpr,
    CHUNKS: tl.constexpr,
    REVERSE: tl.constexpr,
):
    """Per row r of (b, d, n), arrays (n_chunks, rows): out[c] = the carry entering chunk c, then
    carry <- local[c] + decay[c] * carry. Forward: from 0, chunks in order, the final carry written to
    final. Reverse: from init (dL/dh_last), chunks backwards.

    CHUNKS chunks are loaded at once and composed by a scan over them, so that their loads are in flight together;
    a loop over single chunks waits one memory latency per chunk (1,125 chunks at L=288,000, chunk 256). The
    state after chunk p (in processing order) is the carry entering chunk p + 1, stored there."""
    r = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    rm = r < rows
    if REVERSE:
        h = tl.load(init_ptr + r, mask=rm, other=0.0)
        tl.store(out_ptr + (n_chunks - 1) * rows + r, h, mask=rm)
    else:
        h = tl.zeros((BLOCK,), tl.float32)
        tl.store(out_ptr + r, h, mask=rm)
    i = tl.arange(0, CHUNKS)[:, None]
    for p0 in range(0, n_chunks, CHUNKS):
        p = p0 + i  # (CHUNKS, 1), processing order
        if REVERSE:
            chunk, following = n_chunks - 1 - p, n_chunks - 2 - p
        else:
            chunk, following = p, p + 1
        m = (p < n_chunks) & rm[None, :]
        # chunks past the end load as the identity (decay 1, local 0) and pass the state through
        a = tl.load(decay_ptr + chunk * rows + r[None, :], mask=m, other=1.0)
        x = tl.load(local_ptr + chunk * rows + r[None, :], mask=m, other=0.0)
        cum_a, x_acc = tl.associative_scan((a, x), 0, combine)
        after = x_acc + cum_a * h[None, :]
        tl.store(out_ptr + following * rows + r[None, :], after, mask=m & (p + 1 < n_chunks))
        h = tl.sum(tl.where(i == CHUNKS - 1, after, 0.0), axis=0)
    if not REVERSE:
        tl.store(final_ptr + r, h, mask=rm)


@triton.jit
def backward_kernel(
    u_ptr,
    dt_ptr,
    A_ptr,
    B_ptr,
    C_ptr,
    D_ptr,
    z_ptr,
    bias_ptr,
    dy_ptr,
    ckpt_ptr,
    carry_ptr,
    local_ptr,
    decay_ptr,
    du_ptr,
    ddt_ptr,
    dz_ptr,
    dA_ptr,
    dB_ptr,
    dC_ptr,
    dD_ptr,
    dbias_ptr,
    length,
    dim,
    n,
    per_group,
    groups,
    rows,
    CHUNK: tl.constexpr,
    BLOCK_D: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_T: tl.constexpr,
    SOFTPLUS: tl.constexpr,
    HAS_D: tl.constexpr,
    HAS_Z: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    FINAL: tl.constexpr,
):
    """Adjoint g_t = C_t ds_t + a_{t+1} g_{t+1}, tiles of the chunk in reverse. FINAL False: local adjoint at
    the chunk start (zero carry) and the product of a_{t+1} over the chunk. FINAL True: all gradients."""
    chunk, pid = tl.program_id(0), tl.program_id(1)
    b, g, d_idx = block_channels(pid, per_group, groups, dim, BLOCK_D)
    d_idx = d_idx[:, None, None]
    n_idx = tl.arange(0, BLOCK_N)[None, :, None]
    t_idx = tl.arange(0, BLOCK_T)[None, None, :]
    row = (b * dim + d_idx) * length
    bc_base = (b * groups + g) * n * length
    dm, nm = d_idx < dim, n_idx < n
    dn = dm & nm
    state_off = chunk * rows + (b * dim + d_idx) * n + n_idx  # (BD, BN, 1)
    if FINAL:
        gc = tl.sum(tl.load(carry_ptr + state_off, mask=dn, other=0.0), axis=2)
        dA_acc = tl.zeros((BLOCK_D, BLOCK_N), tl.float32)
        dD_acc = tl.zeros((BLOCK_D, 1), tl.float32)
        dbias_acc = tl.zeros((BLOCK_D, 1), tl.float32)
    else:
        gc = tl.zeros((BLOCK_D, BLOCK_N), tl.float32)
    decay = tl.full((BLOCK_D, BLOCK_N), 1.0, tl.float32)
    if HAS_D:
        Dv = tl.load(D_ptr + d_idx, mask=dm, other=0.0).to(tl.float32)
    else:
        Dv = tl.zeros((BLOCK_D, 1, 1), tl.float32)
    for kk in range(0, CHUNK // BLOCK_T):
        t0 = chunk * CHUNK + (CHUNK // BLOCK_T - 1 - kk) * BLOCK_T
        if t0 < length:
            a, x, u, dt, ddt, A, Bv, tm = load_tile(
                u_ptr,
                dt_ptr,
                bias_ptr,
                A_ptr,
                B_ptr,
                row,
                d_idx,
                n_idx,
                t0,
                t_idx,
                bc_base,
                length,
                dim,
                n,
                SOFTPLUS,
                HAS_BIAS,
            )
            t = t0 + t_idx
            Cv = tl.load(C_ptr + bc_base + n_idx * length + t, mask=nm & tm, other=0.0).to(tl.float32)
            dy = tl.load(dy_ptr + row + t, mask=dm & tm, other=0.0).to(tl.float32)  # (BD, 1, BT)
            if HAS_Z:
                zv = tl.load(z_ptr + row + t, mask=dm & tm, other=0.0).to(tl.float32)
                sig = tl.sigmoid(zv)
                ds = dy * zv * sig
            else:
                ds = dy
            # decay of the next position, a_{t+1}; 1 after the sequence end (where the carry is dL/dh_last).
            tn = t + 1
            raw_n = tl.load(dt_ptr + row + tn, mask=dm & (tn < length), other=0.0).to(tl.float32)
            if HAS_BIAS:
                raw_n = raw_n + tl.load(bias_ptr + d_idx, mask=dm, other=0.0).to(tl.float32)
            dt_n, _ = step_size(raw_n, 0.0, SOFTPLUS)
            an = tl.where(tn < length, tl.exp2(dt_n * (A * LOG2E)), 1.0)
            e = tl.where(tm, ds * Cv, 0.0)
            cum_f, g_f = tl.associative_scan((tl.flip(an, 2), tl.flip(e, 2)), 2, combine)
            cum, gs = tl.flip(cum_f, 2), tl.flip(g_f, 2)
            gs = gs + cum * gc[:, :, None]  # dL/dh_t
            gc = tl.sum(tl.where(t_idx == 0, gs, 0.0), axis=2)
            decay = decay * tl.sum(tl.where(t_idx == 0, cum, 0.0), axis=2)
            if FINAL:
                tile = t0 // BLOCK_T
                h0 = tl.load(ckpt_ptr + tile * rows + (b * dim + d_idx) * n + n_idx, mask=dn, other=0.0)
                cum_a, h_loc = tl.associative_scan((a, x), 2, combine)
                hs = h_loc + cum_a * h0
                gs = tl.where(tm, gs, 0.0)
                if HAS_Z:
                    yv = tl.sum(hs * Cv, axis=1)[:, None, :] + Dv * u
                    dzv = dy * yv * sig * (1.0 + zv * (1.0 - sig))
                    tl.store(dz_ptr + row + t, dzv, mask=dm & tm)
                ah = hs - x  # a_t h_{t-1}
                gdt = gs * dt
                bc_off = bc_base + n_idx * length + t
                tl.atomic_add(dC_ptr + bc_off, tl.sum(ds * hs, axis=0)[None, :, :], mask=nm & tm, sem="relaxed")
                tl.atomic_add(dB_ptr + bc_off, tl.sum(gdt * u, axis=0)[None, :, :], mask=nm & tm, sem="relaxed")
                duv = tl.sum(gdt * Bv, axis=1)[:, None, :] + ds * Dv
                tl.store(du_ptr + row + t, duv, mask=dm & tm)
                ddtv = tl.sum(gs * (A * ah + Bv * u), axis=1)[:, None, :] * ddt
                ddtv = tl.where(tm, ddtv, 0.0)
                tl.store(ddt_ptr + row + t, ddtv, mask=dm & tm)
                dA_acc += tl.sum(gdt * ah, axis=2)
                dD_acc += tl.sum(ds * u, axis=2)
                dbias_acc += tl.sum(ddtv, axis=2)
    if FINAL:
        add_parameter_grads(dA_ptr, dD_ptr, dbias_ptr, d_idx, n_idx, n, dA_acc[:, :, None], dD_acc[:, :, None],
                            dbias_acc[:, :, None], dm, dn, HAS_D, HAS_BIAS)  # fmt: skip
    else:
        tl.store(local_ptr + state_off, gc[:, :, None], mask=dn)
        tl.store(decay_ptr + state_off, decay[:, :, None], mask=dn)


@triton.jit
def prefetch_rewalk_inputs(u_ptr, dt_ptr, B_ptr, seq, bc_first, t, dim, bc_step):
    """:func:`prefetch` of what the loop backward's rewalk loads at position ``t``: u and delta ((b, l, d), ``seq``
    the channels' offsets) and B ((b, l, g, n), the line of its first state, which holds all 16 of n=16)."""
    prefetch(u_ptr + seq + t * dim)
    prefetch(dt_ptr + seq + t * dim)
    prefetch(B_ptr + bc_first + t * bc_step)


@triton.jit
def prefetch_adjoint_inputs(dy_ptr, z_ptr, C_ptr, seq, bc_first, t, dim, bc_step, HAS_Z: tl.constexpr):
    """:func:`prefetch` of dy, z and C at position ``t`` (what the adjoint needs besides the rewalk's inputs)."""
    prefetch(dy_ptr + seq + t * dim)
    if HAS_Z:
        prefetch(z_ptr + seq + t * dim)
    prefetch(C_ptr + bc_first + t * bc_step)


@triton.jit
def backward_loop_kernel(
    u_ptr,
    dt_ptr,
    A_ptr,
    B_ptr,
    C_ptr,
    D_ptr,
    z_ptr,
    bias_ptr,
    dy_ptr,
    ckpt_ptr,
    carry_ptr,
    local_ptr,
    decay_ptr,
    scratch_ptr,
    du_ptr,
    ddt_ptr,
    dz_ptr,
    dA_ptr,
    dB_ptr,
    dC_ptr,
    dD_ptr,
    dbias_ptr,
    length,
    dim,
    n,
    per_group,
    groups,
    rows,
    CHUNK: tl.constexpr,
    BLOCK_D: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_T: tl.constexpr,
    SOFTPLUS: tl.constexpr,
    HAS_D: tl.constexpr,
    HAS_Z: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    FINAL: tl.constexpr,
    PREFETCH: tl.constexpr,
):
    """:func:`backward_kernel`'s work (same results) walking the chunk one position at a time, like
    :func:`forward_loop_kernel`: each thread holds one channel's states, adjoints and dA sums in registers.
    Token-major layouts: ``u, delta, z, dy`` and the outputs ``du, ddelta, dz`` (b, l, d); ``B, C, dB, dC``
    (b, l, g, n), all contiguous.

    The adjoint g_t = C_t ds_t + a_{t+1} g_{t+1} runs backwards from g at the chunk's end (the carry, from the
    position after it). FINAL False: the local adjoint at the chunk start from a zero carry and the decay
    ``exp(A sum dt_{t+1})`` over the chunk. FINAL True: every gradient; the states h_t are needed backwards, so each
    tile of BLOCK_T positions is first walked forwards from its checkpoint, its states written to this program's
    (BLOCK_T, BLOCK_D, BLOCK_N) scratch area, which the backward walk through the tile then reads. ``a_t h_{t-1}`` is
    taken as ``h_t - dt_t u_t B_t`` as in :func:`backward_kernel`. dB and dC sum over the block's channels and are
    added atomically (one add per block of channels).

    PREFETCH > 0 (:func:`prefetch`, positions ahead in each walk's direction): the local adjoints' walk asks for the
    inputs of position t - PREFETCH at t. In the gradients' pass, the rewalk asks for its own inputs PREFETCH
    positions ahead and for the backward walk's (dy, C, z) of the position it reaches; the backward walk for the
    scratch states PREFETCH positions ahead and, in its first PREFETCH steps, for the first positions of the next
    rewalk (the tile before)."""
    chunk, pid = tl.program_id(0), tl.program_id(1)
    b, g, d_idx = block_channels(pid, per_group, groups, dim, BLOCK_D)
    d_idx = d_idx[:, None]  # (BD, 1); dim marks padding channels
    d_block = tl.arange(0, BLOCK_D)[:, None]
    n_idx = tl.arange(0, BLOCK_N)[None, :]  # (1, BN)
    dm, nm = d_idx < dim, n_idx < n
    dn = dm & nm
    seq = b.to(tl.int64) * length * dim + d_idx  # (BD, 1); + t * dim: (b, l, d)
    seq_ahead = seq + (tl.minimum(d_idx, dim - 1) - d_idx)  # for prefetches (no mask): padding asks for the last
    bc = (b.to(tl.int64) * length * groups + g) * n + n_idx  # (1, BN); + t * groups * n: (b, l, g, n)
    bc_step = groups * n
    bc_first = b.to(tl.int64) * length * groups * n + g * n  # state 0 of (b, 0, g, :)
    state_off = (b * dim + d_idx) * n + n_idx  # (BD, BN) in one (b, d, n) slab
    A = tl.load(A_ptr + d_idx * n + n_idx, mask=dn, other=0.0).to(tl.float32)  # exp(dt A) = 2^((dt log2 e) A)
    bias, Dv = channel_bias_and_skip(bias_ptr, D_ptr, d_idx, dm, HAS_BIAS, HAS_D)
    start = chunk * CHUNK
    end = tl.minimum(start + CHUNK, length)  # exclusive
    # dt at `end`, whose decay a_end carries the adjoint in from the next chunk; 0 (decay 1) after the sequence end
    raw_end = tl.load(dt_ptr + seq + tl.minimum(end, length - 1) * dim, mask=dm, other=0.0).to(tl.float32)
    dt_end, _ = step_size(raw_end, bias, SOFTPLUS)
    dt_next = tl.where(end < length, dt_end, 0.0)
    if FINAL:
        adj = tl.load(carry_ptr + chunk * rows + state_off, mask=dn, other=0.0)  # g_end
        dA_acc = tl.zeros((BLOCK_D, BLOCK_N), tl.float32)
        dD_acc = tl.zeros((BLOCK_D, 1), tl.float32)
        dbias_acc = tl.zeros((BLOCK_D, 1), tl.float32)
        scratch = scratch_ptr + (chunk * tl.num_programs(1) + pid).to(tl.int64) * (BLOCK_T * BLOCK_D * BLOCK_N)
        scratch_rows = scratch + d_block * BLOCK_N  # (BD, 1): each thread's BLOCK_N states lie together
        scratch = scratch_rows + n_idx  # (BD, BN); + i * BLOCK_D * BLOCK_N for position i of a tile
        tiles = tl.cdiv(end - start, BLOCK_T)
        if PREFETCH > 0:  # the first positions of the first rewalk (the last tile)
            for i in range(0, PREFETCH):
                t = tl.minimum(start + (tiles - 1) * BLOCK_T + i, end - 1)
                prefetch_rewalk_inputs(u_ptr, dt_ptr, B_ptr, seq_ahead, bc_first, t, dim, bc_step)
        for kk in range(0, tiles):
            t0 = start + (tiles - 1 - kk) * BLOCK_T
            count = tl.minimum(BLOCK_T, end - t0)
            h = tl.load(ckpt_ptr + (t0 // BLOCK_T) * rows + state_off, mask=dn, other=0.0)
            for i in range(0, count):  # the tile's states, forwards from its checkpoint (eq. 2)
                t = t0 + i
                if PREFETCH > 0:
                    ahead = tl.minimum(t + PREFETCH, t0 + count - 1)
                    prefetch_rewalk_inputs(u_ptr, dt_ptr, B_ptr, seq_ahead, bc_first, ahead, dim, bc_step)
                    prefetch_adjoint_inputs(dy_ptr, z_ptr, C_ptr, seq_ahead, bc_first, t, dim, bc_step, HAS_Z)
                u = tl.load(u_ptr + seq + t * dim, mask=dm, other=0.0).to(tl.float32)
                raw = tl.load(dt_ptr + seq + t * dim, mask=dm, other=0.0).to(tl.float32)
                Bv = tl.load(B_ptr + bc + t * bc_step, mask=nm, other=0.0).to(tl.float32)
                dt, _ = step_size(raw, bias, SOFTPLUS)
                h = tl.exp2((dt * LOG2E) * A) * h + (dt * u) * Bv
                tl.store(scratch + i * (BLOCK_D * BLOCK_N), h)
            for i in range(0, count):  # backwards through the tile
                t = t0 + count - 1 - i
                if PREFETCH > 0:
                    prefetch(scratch_rows + tl.maximum(count - 1 - i - PREFETCH, 0) * (BLOCK_D * BLOCK_N))
                    if i < PREFETCH and t0 > start:  # the next rewalk's first positions
                        before = t0 - BLOCK_T + i
                        prefetch_rewalk_inputs(u_ptr, dt_ptr, B_ptr, seq_ahead, bc_first, before, dim, bc_step)
                h = tl.load(scratch + (count - 1 - i) * (BLOCK_D * BLOCK_N))
                u = tl.load(u_ptr + seq + t * dim, mask=dm, other=0.0).to(tl.float32)
                raw = tl.load(dt_ptr + seq + t * dim, mask=dm, other=0.0).to(tl.float32)
                dy = tl.load(dy_ptr + seq + t * dim, mask=dm, other=0.0).to(tl.float32)
                Bv = tl.load(B_ptr + bc + t * bc_step, mask=nm, other=0.0).to(tl.float32)
                Cv = tl.load(C_ptr + bc + t * bc_step, mask=nm, other=0.0).to(tl.float32)
                dt, ddt = step_size(raw, bias, SOFTPLUS)
                if HAS_Z:
                    zv = tl.load(z_ptr + seq + t * dim, mask=dm, other=0.0).to(tl.float32)
                    sig = tl.sigmoid(zv)
                    ds = dy * zv * sig
                    y = tl.sum(h * Cv, axis=1)[:, None] + Dv * u  # (BD, 1), eq. 3 with the D skip
                    tl.store(dz_ptr + seq + t * dim, dy * y * sig * (1.0 + zv * (1.0 - sig)), mask=dm)
                else:
                    ds = dy
                adj = tl.exp2((dt_next * LOG2E) * A) * adj + Cv * ds  # g_t
                xb = (dt * u) * Bv
                ah = h - xb  # a_t h_{t-1}
                gdt = adj * dt
                dA_acc += gdt * ah
                ddt_t = tl.sum(adj * (A * ah + Bv * u), axis=1)[:, None] * ddt
                tl.store(ddt_ptr + seq + t * dim, ddt_t, mask=dm)
                tl.store(du_ptr + seq + t * dim, tl.sum(gdt * Bv, axis=1)[:, None] + ds * Dv, mask=dm)
                tl.atomic_add(dB_ptr + bc + t * bc_step, tl.sum(gdt * u, axis=0)[None, :], mask=nm, sem="relaxed")
                tl.atomic_add(dC_ptr + bc + t * bc_step, tl.sum(ds * h, axis=0)[None, :], mask=nm, sem="relaxed")
                dD_acc += ds * u
                dbias_acc += ddt_t
                dt_next = dt
        add_parameter_grads(dA_ptr, dD_ptr, dbias_ptr, d_idx, n_idx, n, dA_acc, dD_acc, dbias_acc, dm, dn, HAS_D,
                            HAS_BIAS)  # fmt: skip
    else:
        adj = tl.zeros((BLOCK_D, BLOCK_N), tl.float32)
        dt_sum = tl.zeros((BLOCK_D, 1), tl.float32)
        for k in range(0, end - start):
            t = end - 1 - k
            if PREFETCH > 0:
                ahead = tl.maximum(t - PREFETCH, start)
                prefetch_adjoint_inputs(dy_ptr, z_ptr, C_ptr, seq_ahead, bc_first, ahead, dim, bc_step, HAS_Z)
                prefetch(dt_ptr + seq_ahead + ahead * dim)
            raw = tl.load(dt_ptr + seq + t * dim, mask=dm, other=0.0).to(tl.float32)
            dy = tl.load(dy_ptr + seq + t * dim, mask=dm, other=0.0).to(tl.float32)
            Cv = tl.load(C_ptr + bc + t * bc_step, mask=nm, other=0.0).to(tl.float32)
            if HAS_Z:
                zv = tl.load(z_ptr + seq + t * dim, mask=dm, other=0.0).to(tl.float32)
                ds = dy * zv * tl.sigmoid(zv)
            else:
                ds = dy
            adj = tl.exp2((dt_next * LOG2E) * A) * adj + Cv * ds  # g_t from a zero carry
            dt_sum += dt_next
            dt_next, _ = step_size(raw, bias, SOFTPLUS)
        tl.store(local_ptr + chunk * rows + state_off, adj, mask=dn)
        tl.store(decay_ptr + chunk * rows + state_off, tl.exp2((dt_sum * LOG2E) * A), mask=dn)
