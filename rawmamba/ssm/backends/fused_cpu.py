"""Fused CPU selective scan: one compiled pass over the sequence per channel (numba), forward and backward.

Same semantics as :func:`rawmamba.ssm.backends.reference.selective_scan_reference` (the spec). Everything of the
scan (bias, softplus, ZOH decay, state update of paper eq. 2, readout of eq. 3, ``D`` skip, ``silu(z)`` gate)
happens inside one pass over the sequence per (batch item, block of 16 channels), parallel over the blocks, SIMD
across the block's channels, with the states in a small local array: no (b, d, l, n) temporary exists, in the
forward or the backward. The backward recomputes the states from checkpoints stored every ``checkpoint_interval``
positions (see :mod:`rawmamba.ssm.backends.fused_cpu_kernels`). Threads: ``torch.get_num_threads()``.

numba is an optional dependency (``pip install rawmamba[fast]``): :func:`fused_cpu_available` is False when it
cannot be imported, and the kernels module is imported only on first use, so ``import rawmamba`` never needs it.
The first call per dtype compiles the kernels (about 10 s); numba caches them on disk for later processes.
"""

from __future__ import annotations

import functools
import importlib

import torch

from rawmamba.errors import RawMambaError
from rawmamba.numba_support import numba_available, numba_threads
from rawmamba.ssm.backends.reference import compute_dtype

DEFAULT_CHECKPOINT_INTERVAL = 128
# Below this many (batch x channel x position x state) updates the kernels run on the calling thread: waking the
# thread pool costs more than it saves on small scans (measured: 8 ms vs 0.12 ms at d=32, l=256 on a busy machine).
PARALLEL_MIN_WORK = 1 << 20


def _threads(u: torch.Tensor, n: int) -> int:
    """Threads for one kernel call: torch's thread count, 1 for small scans."""
    return 1 if u.numel() * n < PARALLEL_MIN_WORK else torch.get_num_threads()


def _launch(kernels, name: str, threads: int, *args) -> None:
    """Run ``kernels.<name>`` on ``threads`` threads, or ``<name>_serial`` for one (no thread pool)."""
    if threads > 1:
        with numba_threads(threads):
            getattr(kernels, name)(*args)
    else:
        getattr(kernels, name + "_serial")(*args)


def fused_cpu_available() -> bool:
    """True when numba imports (the kernels then compile on first use)."""
    return numba_available()


@functools.cache
def _kernels():
    return importlib.import_module("rawmamba.ssm.backends.fused_cpu_kernels")


def _np(t: torch.Tensor):
    return t.detach().contiguous().numpy()


class _FusedScan(torch.autograd.Function):
    """u, delta, z (b, d, l); A (d, n); B, C (b, g, n, l); D, bias (d,); all in the compute dtype, on the CPU.
    Returns y (b, d, l) and the last state (b, d, n)."""

    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, z, bias, softplus: bool, has_z: bool, interval: int):
        kernels = _kernels()
        batch, dim, length = u.shape
        n = A.shape[1]
        threads = _threads(u, n)
        # time-major B, C: (b, g, l, n), so that one position's n values are contiguous; A as (n, d).
        B_t, C_t, At = B.transpose(2, 3).contiguous(), C.transpose(2, 3).contiguous(), A.t().contiguous()
        y = u.new_empty(batch, dim, length)
        h_last = u.new_empty(batch, dim, n)
        checkpoints = u.new_empty(batch, -(-length // interval), n, dim)
        _launch(
            kernels, "scan_forward", threads,
            _np(u), _np(delta), _np(At), _np(B_t), _np(C_t), _np(D), _np(z), _np(bias), softplus, has_z, interval,
            y.numpy(), h_last.numpy(), checkpoints.numpy(),
        )  # fmt: skip
        ctx.save_for_backward(u, delta, At, B_t, C_t, D, z, bias, checkpoints)
        ctx.softplus, ctx.has_z, ctx.interval = softplus, has_z, interval
        ctx.set_materialize_grads(False)
        return y, h_last

    @staticmethod
    def backward(ctx, dy, dh_last):
        u, delta, At, B_t, C_t, D, z, bias, checkpoints = ctx.saved_tensors
        kernels = _kernels()
        batch, dim, length = u.shape
        groups, n = B_t.shape[1], At.shape[0]
        threads = _threads(u, n)
        dy = torch.zeros_like(u) if dy is None else dy.contiguous()
        dh_last = u.new_zeros(batch, dim, n) if dh_last is None else dh_last.contiguous()
        # each (batch item, group) is cut into `parts` ranges of lane blocks with private dB/dC buffers, enough
        # work items to keep every thread busy; the buffers are summed below.
        blocks = -(-(dim // groups) // kernels.LANES)
        parts = max(1, min(blocks, -(-threads // (batch * groups))))
        du, ddelta, dz = torch.empty_like(u), torch.empty_like(u), torch.zeros_like(u)
        dA_b, dD_b, dbias_b = u.new_empty(batch, n, dim), u.new_empty(batch, dim), u.new_empty(batch, dim)
        dB_p = u.new_zeros(batch, groups, parts, length, n)
        dC_p = u.new_zeros(batch, groups, parts, length, n)
        _launch(
            kernels, "scan_backward", threads,
            _np(u), _np(delta), _np(At), _np(B_t), _np(C_t), _np(D), _np(z), _np(bias), ctx.softplus, ctx.has_z,
            ctx.interval, _np(checkpoints), _np(dy), _np(dh_last), parts, kernels.LANES,
            du.numpy(), ddelta.numpy(), dz.numpy(), dA_b.numpy(), dD_b.numpy(), dbias_b.numpy(), dB_p.numpy(),
            dC_p.numpy(),
        )  # fmt: skip
        dB = dB_p.sum(2).transpose(2, 3)
        dC = dC_p.sum(2).transpose(2, 3)
        dz = dz if ctx.has_z else None
        return du, ddelta, dA_b.sum(0).t(), dB, dC, dD_b.sum(0), dz, dbias_b.sum(0), None, None, None


def selective_scan_fused_cpu(
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
    checkpoint_interval: int = DEFAULT_CHECKPOINT_INTERVAL,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Selective scan with numba-compiled CPU kernels; same contract as the reference (float64 stays float64,
    other dtypes compute in float32).

    Args:
        checkpoint_interval: positions between stored states (>= 1), also the backward's segment length. The
            backward keeps ``b * d * n * ceil(l / checkpoint_interval)`` checkpoint values plus two
            (interval, n, 16) buffers per thread; 128 was fastest at d=192, n=16 (32 and 256 slower).

    Raises:
        RawMambaError: an input is not on the CPU, numba is missing, or ``checkpoint_interval`` is not positive.
    """
    if not fused_cpu_available():
        raise RawMambaError("selective_scan_fused_cpu: needs numba (pip install 'rawmamba[fast]')")
    if not isinstance(checkpoint_interval, int) or checkpoint_interval < 1:
        raise RawMambaError(
            "selective_scan_fused_cpu: argument checkpoint_interval must be a positive int, "
            f"got {checkpoint_interval!r}"
        )
    tensors = {"u": u, "delta": delta, "A": A, "B": B, "C": C, "D": D, "z": z, "delta_bias": delta_bias}
    for name, t in tensors.items():
        if t is not None and t.device.type != "cpu":
            raise RawMambaError(f"selective_scan_fused_cpu: argument {name} is on {t.device}; this backend is CPU-only")
    dtype_in = u.dtype
    cdt = compute_dtype(dtype_in)
    dim = u.shape[1]
    B4 = B if B.dim() == 4 else B.unsqueeze(1)
    C4 = C if C.dim() == 4 else C.unsqueeze(1)
    zeros = u.new_zeros(dim, dtype=cdt)
    y, h_last = _FusedScan.apply(
        u.to(cdt),
        delta.to(cdt),
        A.to(cdt),
        B4.to(cdt),
        C4.to(cdt),
        zeros if D is None else D.to(cdt),
        u.new_zeros(1, 1, 1, dtype=cdt) if z is None else z.to(cdt),
        zeros if delta_bias is None else delta_bias.to(cdt),
        bool(delta_softplus),
        z is not None,
        checkpoint_interval,
    )
    y = y.to(dtype_in)
    return (y, h_last) if return_last_state else y
