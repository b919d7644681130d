"""Fast pure-PyTorch selective scan: chunked over the sequence, blocked inside each chunk, hand-written backward.

Same semantics as :func:`rawmamba.ssm.backends.reference.selective_scan_reference` (the spec), built for speed
on CPU and for bounded memory:

- The sequence is cut into chunks of ``chunk_size`` positions, run one after another with the state carried
  from chunk to chunk; every temporary is ``(chunk, batch, d, n)``, so memory is bounded by the chunk size,
  not by the length. Autograd saves only the inputs and one ``(batch, d, n)`` state per chunk; the backward
  recomputes each chunk's states, in reverse chunk order, and runs the adjoint recurrence with the same scan.
- Inside a chunk the first-order recurrence ``h_t = a_t h_{t-1} + x_t`` (``a_t = exp(dt_t A)``) is solved by
  a two-level blocked scan over blocks of ``block_size`` positions, vectorised across all blocks of the chunk:
  (1) every block is scanned from a zero state, (2) the block-start states are carried across blocks with the
  block decays ``prod a``, (3) every block is rescanned from its true start state, in place. One Python step
  handles one position of every block at once, so a chunk costs ``2 * block + chunk / block`` vector steps.

Why not the quadratic "segment-sum" form (``exp(S_t - S_s)`` for all pairs in a chunk, as in Mamba-2's SSD)?
With Mamba-1's per-(channel, state) decay there is no matrix product to gain: it costs ``chunk`` times more
exponentials and memory than this linear form. The blocked form has the same stability property: it only ever multiplies
decays ``exp(dt A) <= 1`` (for ``dt >= 0``, ``A <= 0``) and never divides by a cumulative decay, so no
intermediate can overflow where the sequential reference does not.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from rawmamba.errors import RawMambaError
from rawmamba.ssm.backends.reference import compute_dtype

# Positions per chunk when the caller gives none: on CPU a chunk's temporaries should stay cache-sized; on a GPU
# every position of a block is a kernel launch, so fewer, longer chunks win (measured on an H100 at d=192, n=16).
DEFAULT_CHUNK_SIZE = {"cpu": 1024, "cuda": 16384}


def default_block_size(length: int) -> int:
    """Block length minimising the vector steps ``2 * block + length / block`` of one chunk."""
    return max(1, math.isqrt(max(1, length // 2)))


def _scan_(a: torch.Tensor, x: torch.Tensor, h0: torch.Tensor, block: int, reverse: bool) -> torch.Tensor:
    """In place along dim 0 (time): ``x[t] <- a[t] * h + x[t]``, ``h`` the previous result (the next one if
    ``reverse``), ``h0`` before the first. ``a``, ``x``: (L, *S) contiguous; ``h0``: (*S). Returns the last h."""
    length = x.shape[0]
    n_blocks = length // block
    h = h0
    if n_blocks >= 2:
        main = n_blocks * block
        span = slice(length - main, length) if reverse else slice(0, main)
        xb = x[span].view(n_blocks, block, *x.shape[1:])
        ab = a[span].view(n_blocks, block, *a.shape[1:])
        steps = range(block - 1, -1, -1) if reverse else range(block)
        # (1) local scans from a zero state, keeping only each block's final state.
        local = xb[:, steps[0]]
        for t in steps[1:]:
            local = torch.addcmul(xb[:, t], ab[:, t], local)
        # (2) carry the true start state across blocks.
        decay = ab.prod(dim=1)
        starts = torch.empty_like(local)
        for j in range(n_blocks - 1, -1, -1) if reverse else range(n_blocks):
            starts[j] = h
            h = torch.addcmul(local[j], decay[j], h)
        # (3) rescan every block from its start state, writing the states in place.
        state = starts
        for t in steps:
            xt = xb[:, t]
            xt.addcmul_(ab[:, t], state)
            state = xt
        rest = range(length - main - 1, -1, -1) if reverse else range(main, length)
    else:
        rest = range(length - 1, -1, -1) if reverse else range(length)
    for t in rest:
        x[t].addcmul_(a[t], h)
        h = x[t]
    return h


def _time_major(t: torch.Tensor) -> torch.Tensor:
    """(b, ..., l) -> contiguous (l, b, ...)."""
    return t.permute(t.dim() - 1, *range(t.dim() - 1)).contiguous()


def _chunk_inputs(u, dt, A, B, l0, l1, groups):
    """Decays ``exp(dt A)`` and inputs ``dt u B`` of positions [l0, l1), time-major (lg, b, d, n)."""
    dt_t, u_t, b_t = _time_major(dt[:, :, l0:l1]), _time_major(u[:, :, l0:l1]), _time_major(B[..., l0:l1])
    lg, batch, dim = dt_t.shape
    a = torch.exp(dt_t.unsqueeze(-1) * A)
    x = ((dt_t * u_t).view(lg, batch, groups, dim // groups, 1) * b_t.unsqueeze(3)).view(lg, batch, dim, -1)
    return a, x, dt_t, u_t, b_t


class _ChunkedScan(torch.autograd.Function):
    """Core recurrence (no bias/softplus/D/z): u, dt (b, d, l); A (d, n); B, C (b, g, n, l) -> y, h_last."""

    @staticmethod
    def forward(ctx, u, dt, A, B, C, chunk: int, block: int | None):
        batch, dim, length = u.shape
        groups, n = B.shape[1], A.shape[1]
        y = u.new_empty(batch, dim, length)
        h = u.new_zeros(batch, dim, n)
        starts = []
        for l0 in range(0, length, chunk):
            l1 = min(l0 + chunk, length)
            starts.append(h)
            a, x, _, _, _ = _chunk_inputs(u, dt, A, B, l0, l1, groups)
            h = _scan_(a, x, h, block or default_block_size(l1 - l0), reverse=False).clone()
            c_t = _time_major(C[..., l0:l1])
            # y_t = C_t . h_t. (einsum picks a faster contraction than bmm's many tiny mat-vecs here.)
            y_t = torch.einsum("lbgdn,lbgn->lbgd", x.view(l1 - l0, batch, groups, dim // groups, n), c_t)
            y[:, :, l0:l1] = y_t.reshape(l1 - l0, batch, dim).permute(1, 2, 0)
        ctx.save_for_backward(u, dt, A, B, C, torch.stack(starts) if starts else h.unsqueeze(0))
        ctx.chunk, ctx.block = chunk, block
        ctx.set_materialize_grads(False)
        return y, h

    @staticmethod
    def backward(ctx, dy, dh_last):
        u, dt, A, B, C, starts = ctx.saved_tensors
        batch, dim, length = u.shape
        groups, n = B.shape[1], A.shape[1]
        dg = dim // groups
        # every position of du, ddt, dB, dC is written below; dA accumulates over chunks.
        du, ddt, dA = torch.empty_like(u), torch.empty_like(dt), torch.zeros_like(A)
        dB, dC = torch.empty_like(B), torch.empty_like(C)
        if dy is None:
            dy = torch.zeros_like(u)
        carry = torch.zeros_like(starts[0]) if dh_last is None else dh_last.contiguous()
        for k in range(len(starts) - 1, -1, -1):
            l0 = k * ctx.chunk
            l1 = min(l0 + ctx.chunk, length)
            lg = l1 - l0
            block = ctx.block or default_block_size(lg)
            a, hs, dt_t, u_t, b_t = _chunk_inputs(u, dt, A, B, l0, l1, groups)
            # decay of the position after each one: exp(dt_{t+1} A); 1 after the sequence end.
            a_next = torch.empty_like(a)
            a_next[:-1] = a[1:]
            a_next[-1] = torch.exp(dt[:, :, l1].unsqueeze(-1) * A) if l1 < length else 1.0
            _scan_(a, hs, starts[k], block, reverse=False)  # hs: states h_t
            dy_t, c_t = _time_major(dy[:, :, l0:l1]), _time_major(C[..., l0:l1])
            # adjoint g_t = dL/dh_t = C_t dy_t + a_{t+1} g_{t+1}, g after the chunk = carry.
            g = (dy_t.view(lg, batch, groups, dg, 1) * c_t.unsqueeze(3)).view(lg, batch, dim, n)
            _scan_(a_next, g, carry, block, reverse=True)
            carry = g[0].clone()
            hv, gv = hs.view(lg, batch, groups, dg, n), g.view(lg, batch, groups, dg, n)
            dC[..., l0:l1] = torch.einsum("lbgdn,lbgd->bgnl", hv, dy_t.view(lg, batch, groups, dg))
            dB[..., l0:l1] = torch.einsum("lbgdn,lbgd->bgnl", gv, (dt_t * u_t).view(lg, batch, groups, dg))
            g_b = torch.einsum("lbgdn,lbgn->lbgd", gv, b_t).reshape(lg, batch, dim)
            # s_t = dL/d(dt_t A) = g_t * a_t * h_{t-1}
            s = a.mul_(g)
            s[1:].mul_(hs[:-1])
            s[0].mul_(starts[k])
            dA += (s * dt_t.unsqueeze(-1)).sum((0, 1))
            du[:, :, l0:l1] = (g_b * dt_t).permute(1, 2, 0)
            ddt[:, :, l0:l1] = (g_b * u_t + (s * A).sum(-1)).permute(1, 2, 0)
        return du, ddt, dA, dB, dC, None, None


def selective_scan_chunked(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
    delta_bias: torch.Tensor | None = None,
    delta_softplus: bool = False,
    return_last_state: bool = False,
    chunk_size: int | None = None,
    block_size: int | None = None,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Selective scan, chunked and blocked (see the module docstring); same contract as the reference.

    Args:
        chunk_size: positions per chunk (>= 1); memory of the forward and backward is O(chunk_size * b * d * n).
            None: :data:`DEFAULT_CHUNK_SIZE` for the device type (1024 for unknown devices).
        block_size: positions per block inside a chunk; None picks ``sqrt(chunk / 2)`` (fewest vector steps).
    """
    if chunk_size is None:
        chunk_size = DEFAULT_CHUNK_SIZE.get(u.device.type, 1024)
    for name, value in (("chunk_size", chunk_size), ("block_size", block_size)):
        if value is not None and (not isinstance(value, int) or value < 1):
            raise RawMambaError(f"selective_scan_chunked: argument {name} must be a positive int, got {value!r}")
    dtype_in = u.dtype
    cdt = compute_dtype(dtype_in)
    dt = delta.to(cdt)
    if delta_bias is not None:
        dt = dt + delta_bias.to(cdt)[:, None]
    if delta_softplus:
        dt = F.softplus(dt)
    u_c = u.to(cdt)
    B4 = B if B.dim() == 4 else B.unsqueeze(1)
    C4 = C if C.dim() == 4 else C.unsqueeze(1)
    y, h_last = _ChunkedScan.apply(u_c, dt, A.to(cdt), B4.to(cdt), C4.to(cdt), chunk_size, block_size)
    if D is not None:
        y = y + u_c * D.to(cdt)[:, None]
    if z is not None:
        y = y * F.silu(z.to(cdt))
    y = y.to(dtype_in)
    return (y, h_last) if return_last_state else y
