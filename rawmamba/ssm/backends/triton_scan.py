"""Triton GPU selective scan, forward and backward, chunked over the sequence with the carry on the GPU.

Same semantics as :func:`rawmamba.ssm.backends.reference.selective_scan_reference`; the state and all arithmetic
are float32 (float32, float16 or bfloat16 inputs; float64 is refused). Work is split into programs of
(batch item, ``block_d`` channels, one chunk of ``chunk`` positions); a program walks its chunk in tiles of
``block_t`` positions, each tile a (block_d, n, block_t) register block solved by ``tl.associative_scan`` of the
first-order recurrence ``h_t = a_t h_{t-1} + x_t`` (paper eq. 2, ``a_t = exp(dt_t A)``, ``x_t = dt_t B_t u_t``).

Forward, three launches: (1) every chunk from a zero state -> its local end state and decay product; (2) a small
kernel carries the true start state across chunks (sequential in chunks, parallel in channels and states);
(3) every chunk again from its true start -> ``y`` (eq. 3, ``D`` skip, ``silu(z)`` gate), and, when autograd needs
it, the state at every tile start (the checkpoints, (b, d, ceil(l / block_t), n) float32).
``forward="loop"`` runs (1) and (3) with another kernel that walks the chunk one position at a time, the
(block_d, n) state in registers, one warp per program, instead of the tiles' scan tree; same results and
checkpoints. It reads its inputs through their strides, without copies: token-major inputs (stride 1 along d
and n, as :class:`rawmamba.models.bimamba.BiMamba` makes them for a ``token_major`` backend) give coalesced
loads of the ``block_d`` channels of one position, and ``y`` is then token-major too. ``forward="lookback"``
runs the loop kernel's (1) and (3) in one launch, each program getting its chunk's start state in between from
the chunks before it (decoupled look-back through flags in memory) instead of (2).

Backward, three launches mirroring the forward, in reverse time: the adjoint ``g_t = dL/dh_t`` obeys
``g_t = C_t ds_t + a_{t+1} g_{t+1}``; (1) local adjoints per chunk, (2) carry across chunks in reverse,
(3) per tile: states from the checkpoint, adjoints from the carry, and all gradients. ``a_t h_{t-1}`` is taken as
``h_t - x_t``, so no shifted state is needed. ``dB``, ``dC``, ``dA``, ``dD`` and ``ddelta_bias`` sum over programs
with float32 atomics (order not deterministic, within float32 rounding). ``backward="loop"`` runs (1) and (3)
position by position, one thread per channel as the loop forward, on token-major copies of its inputs; in (3) each
tile's states are first rewalked forwards from its checkpoint into a scratch buffer, then read backwards.

Triton and CUDA are optional: :func:`triton_available` is False without them, and the kernels are defined on
first use, so importing this module needs neither. ``TRITON_INTERPRET=1`` runs the kernels on the CPU (tests).
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
import re
import typing

import torch

from rawmamba.errors import RawMambaError

DEFAULT_CHUNK = 1024
DEFAULT_BLOCK_T = 64
DEFAULT_BLOCK_D = 2
# Forward kernels: "tile" solves (block_d, n, block_t) register tiles with tl.associative_scan (with the sizes of
# the backward); "loop" walks the chunk position by position with the state in registers, one thread per channel,
# with its own sizes (LOOP_*). The backward is the same for both. On an H100, d=192, n=16, L=288,000, float32,
# forward only, token-major inputs (benchmarks/results/gpu_checks_h100_0c63894.json): tile 3.43 ms; loop with
# chunk 1024 and 32 channels per program 2.11 ms; chunk 256 and 64 channels 1.76 ms, unrolled x2 1.63 ms and x4
# 1.52-1.59 ms; with 3 pipelining stages (LOOP_STAGES, the defaults) 1.01 ms against 1.36 ms for one-ahead loads
# (benchmarks/results/gpu_criterion_h100.json). rawmamba_base on 5 frames of 1440x640 in bf16: 155.0 ms with the
# loop forward's earlier defaults (chunk 1024, 32 channels, contiguous inputs), 132-136 ms since.
# "lookback" runs the loop forward's two passes in one launch: between them each program gets its chunk's start
# state from the chunks before it as they finish their first pass (decoupled look-back), in place of the carry
# kernel and two more launches (on the H100 it equals the two-pass forward bit for bit over five runs at
# L=288,000; not yet timed).
FORWARD_KERNELS = {"tile": "forward", "loop": "forward_loop", "lookback": "forward_loop"}
LOOP_FORWARDS = ("loop", "lookback")
DEFAULT_FORWARD = "loop"
# Backward kernels: "tile" as the tile forward (block_d channels, register tiles of block_t positions); "loop" walks
# the chunk position by position with loop_block_d channels per program (one per thread), rewalking each tile of
# block_t positions forwards from its checkpoint into a scratch buffer of b * d * n * l * block_t / chunk floats.
# On the H100, forward+backward at L=288,000 (token-major, float32; benchmarks/results/gpu_checks_h100_4a508e3.json):
# tile 99.2 ms (255 registers per thread, 8 warps per SM), loop with chunk 1024 and 64 channels 14.2 ms. Both added
# their gradient sums with acq_rel atomics, each a GPU-wide memory barrier and L1 invalidation; relaxed since
# (reductions without either): the loop 11.2 ms, and 2.9 ms at L=1,024 against 5 ms (gpu_checks_h100.json).
BACKWARD_KERNELS = ("tile", "loop")
DEFAULT_BACKWARD = "loop"
LOOP_CHUNK = 256
LOOP_BLOCK_D = 64
# positions per iteration of the loop forward's walk (tl.range's loop_unroll_factor). sm_90 SASS per position over
# its two passes (benchmarks/sass_counts.py): 274 instructions and 96 registers not unrolled, 264 and 140 unrolled
# twice, 259 and 128 four times; on the H100 1.76, 1.63 and 1.59 ms (above)
LOOP_UNROLL = 4
# how the loop forward's walk gets its inputs ahead of use: 1, by loading position t + 1 before computing position
# t; 2 or more, by Triton's software pipelining of plain loads through shared memory with that many stages (sm_90,
# unrolled x4, 3 stages: 114 + 192 instructions per position against 103 + 155, with cp.async copies and barriers
# in the walk); 0, not at all: each position's inputs are loaded where they are used, which frees the registers
# that held the next position's (pass 2 unrolled x4: 80 registers, 25 warps per SM, against 128 and 16; 167
# instructions per position against 155), meant with loop_prefetch so that the loads find their lines in L1
# (96 registers then). On the H100 (d=192, n=16, L=288,000, float32, token-major; five alternated rounds, spread
# under 0.3%; benchmarks/results/gpu_criterion_h100.json): 3 stages 1.010 ms, 0.974 ms without z (4.2x its byte
# floor); 2 stages 1.106 / 1.067 ms; one-ahead 1.358 / 1.322 ms (5.7x). In the sweep (one timing each): 0 stages
# 1.65 ms, 0 stages with 16 ahead in L1 1.29 ms.
LOOP_STAGES = 3
# registers per thread the loop forward may use (ptxas's maxnreg; None: as many as it wants). Fewer registers let more
# warps share an SM to hide the walk's load latency: unrolled x4, pass 2 takes 128 registers (16 warps per SM) and
# compiles at 96 (21 warps) without spilling, 3% more instructions (Triton 3.6, sm_90). On the H100, with one-ahead
# loads: 1.81 ms at 96, 2.96 ms at 80, against 1.36 ms unlimited (gpu_checks_h100.json's sweep): the limit loses.
LOOP_REGISTERS = None
# positions ahead that the loop forward asks for its inputs' cache lines in L1 (0: not at all): a prefetch holds no
# register and is never waited for, so the walk's loads can find their lines in L1 however far ahead it runs, where
# its own loads run one position ahead. On the H100, with one-ahead loads, 16 ahead: 1.04 ms against 1.36 ms
# without; the pipelined loads (LOOP_STAGES 3) alone 1.01 ms. Ignored under the interpreter (no inline assembly).
LOOP_PREFETCH = 0
# the same for the loop backward's three walks (see backward_loop_kernel). On the H100, forward+backward at
# L=288,000 (one timing each; benchmarks/results/gpu_criterion_h100.json): 10.8 ms with 16 ahead at 168 registers
# against 10.8 ms without; with chunk 256 and 32 channels 8.7 against 9.3 ms. Not made defaults: one timing each,
# and 32 channels per program (loop_block_d, shared with the forward) slow the forward to 1.145 ms.
BACKWARD_PREFETCH = 0
# registers per thread the loop backward may use (None: no limit). Its gradients' pass takes 168 (12 warps per SM)
# and 229 with prefetching (8 warps), which compiles at 168 without spilling, 7% more instructions than without
# prefetching (Triton 3.8, sm_90, 64 channels; benchmarks/sass_counts.py; timed above)
BACKWARD_REGISTERS = None


# The loop kernels unroll their walks with tl.range(loop_unroll_factor=...), which Triton 3.2 (torch 2.6) brought.
# Every kernel compiles for sm_90 with Triton 3.2, 3.3, 3.4, 3.5, 3.6 and 3.8 (3.1: not the loop kernels); they run on
# an H100 with 3.6. With an older Triton, "auto" picks another backend on CUDA.
MIN_TRITON_VERSION = (3, 2)


def triton_importable() -> bool:
    """True when the ``triton`` package can be found (it ships with CUDA builds of torch)."""
    return importlib.util.find_spec("triton") is not None


@functools.cache
def triton_version() -> tuple[int, int]:
    """(major, minor) of the importable triton (imported here)."""
    return _major_minor(importlib.import_module("triton").__version__)


def _major_minor(version: str) -> tuple[int, int]:
    """(3, 6) from "3.6.0", "3.6.0+git1234" and the like."""
    match = re.match(r"(\d+)\.(\d+)", version)
    if match is None:
        raise RawMambaError(f"triton scan: cannot read the triton version {version!r}")
    return int(match.group(1)), int(match.group(2))


def interpreter_enabled() -> bool:
    """True when ``TRITON_INTERPRET=1``: Triton then runs the kernels on the CPU, on CPU tensors."""
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def triton_available() -> bool:
    """True when a CUDA device is present and Triton is importable, at :data:`MIN_TRITON_VERSION` or later (the
    interpreter does not count)."""
    return torch.cuda.is_available() and triton_importable() and triton_version() >= MIN_TRITON_VERSION


@functools.cache
def _kernels():
    """The Triton kernels, keyed by name; triton is imported here, on first use, not at module import."""
    module = importlib.import_module("rawmamba.ssm.backends.triton_scan_kernels")
    return {
        "forward": module.forward_kernel,
        "forward_loop": module.forward_loop_kernel,
        "carry": module.carry_kernel,
        "backward": module.backward_kernel,
        "backward_loop": module.backward_loop_kernel,
    }


class _Config(typing.NamedTuple):
    """The kernels' sizes for one call: the forward's (``forward`` kernel, ``forward_chunk`` positions and
    ``forward_block_d`` channels per program, ``num_warps``, ``loop_unroll``, ``loop_stages``, ``loop_registers``,
    ``loop_prefetch``) and the backward's (``backward`` kernel, ``chunk`` positions and ``backward_block_d``
    channels per program, ``backward_prefetch``, ``backward_registers``); tiles of ``block_t`` positions (the
    checkpoints) and ``block_n`` states (n rounded up to a power of two) for both."""

    chunk: int
    block_t: int
    block_n: int
    forward: str
    forward_chunk: int
    forward_block_d: int
    num_warps: int | None
    loop_unroll: int
    loop_stages: int
    loop_registers: int | None
    loop_prefetch: int
    backward: str
    backward_block_d: int
    backward_prefetch: int
    backward_registers: int | None


def _config(
    n: int,
    chunk: int,
    block_t: int,
    block_d: int,
    forward: str,
    loop_chunk: int,
    loop_block_d: int,
    loop_unroll: int,
    loop_stages: int,
    loop_registers: int | None,
    loop_prefetch: int,
    num_warps: int | None,
    backward: str,
    backward_prefetch: int,
    backward_registers: int | None,
) -> _Config:
    """The sizes checked: powers of two, chunk >= block_t, known kernels (num_warps None: the forward kernel's
    default)."""
    if forward not in FORWARD_KERNELS:
        raise RawMambaError(
            f"selective_scan_triton: argument forward must be one of {sorted(FORWARD_KERNELS)}, got {forward!r}"
        )
    if backward not in BACKWARD_KERNELS:
        raise RawMambaError(
            f"selective_scan_triton: argument backward must be one of {sorted(BACKWARD_KERNELS)}, got {backward!r}"
        )
    if num_warps is None and forward in LOOP_FORWARDS:  # one thread per channel; the tile kernel: Triton's default
        num_warps = max(1, loop_block_d // 32)
    sizes = [("chunk", chunk), ("block_t", block_t), ("block_d", block_d)]
    if forward in LOOP_FORWARDS:
        sizes += [("loop_chunk", loop_chunk), ("loop_unroll", loop_unroll)]
    if forward in LOOP_FORWARDS or backward == "loop":
        sizes += [("loop_block_d", loop_block_d)]
    for name, value in sizes + ([("num_warps", num_warps)] if num_warps is not None else []):
        if not isinstance(value, int) or value < 1 or value & (value - 1):
            raise RawMambaError(f"selective_scan_triton: argument {name} must be a power of two, got {value!r}")
    if chunk < block_t:
        raise RawMambaError(f"selective_scan_triton: argument chunk={chunk} must be >= block_t={block_t}")
    if not isinstance(loop_stages, int) or not 0 <= loop_stages <= 8:
        raise RawMambaError(
            f"selective_scan_triton: argument loop_stages must be an integer in 0..8, got {loop_stages!r}"
        )
    for name, value in (("loop_registers", loop_registers), ("backward_registers", backward_registers)):
        if value is not None and (not isinstance(value, int) or not 32 <= value <= 255):
            raise RawMambaError(
                f"selective_scan_triton: argument {name} must be None or an integer in 32..255, got {value!r}"
            )
    for name, value in (("loop_prefetch", loop_prefetch), ("backward_prefetch", backward_prefetch)):
        if not isinstance(value, int) or not 0 <= value <= 1024:
            raise RawMambaError(f"selective_scan_triton: argument {name} must be an integer in 0..1024, got {value!r}")
    forward_sizes = (loop_chunk, loop_block_d) if forward in LOOP_FORWARDS else (chunk, block_d)
    block_n = 1 << max(0, (n - 1).bit_length())
    backward_block_d = loop_block_d if backward == "loop" else block_d
    return _Config(chunk, block_t, block_n, forward, *forward_sizes, num_warps, loop_unroll, loop_stages,
                   loop_registers, loop_prefetch, backward, backward_block_d, backward_prefetch,
                   backward_registers)  # fmt: skip


class _TritonScan(torch.autograd.Function):
    """u, delta, z (b, d, l); A (d, n); B, C (b, g, n, l); D, bias (d,) or None -> y (b, d, l), h_last (b, d, n)."""

    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, z, bias, softplus: bool, config: _Config):
        kernels = _kernels()
        block_t, block_n, forward, num_warps = config.block_t, config.block_n, config.forward, config.num_warps
        chunk, block_d = config.forward_chunk, config.forward_block_d
        kernel_name = FORWARD_KERNELS[forward]
        batch, dim, length = u.shape
        groups, n = B.shape[1], A.shape[1]
        rows, n_chunks, n_tiles = batch * dim * n, -(-length // chunk), -(-length // block_t)
        f32 = dict(device=u.device, dtype=torch.float32)
        local, decay, starts = (torch.empty(n_chunks, rows, **f32) for _ in range(3))
        h_last = torch.empty(batch, dim, n, **f32)
        save = any(ctx.needs_input_grad)
        ckpt = torch.empty(n_tiles if save else 1, rows, **f32)
        y = _output_like(u)
        grid = (n_chunks, batch * groups * -(-(dim // groups) // block_d))
        flags = dict(SOFTPLUS=softplus, HAS_D=D is not None, HAS_Z=z is not None, HAS_BIAS=bias is not None)
        sizes = dict(CHUNK=chunk, BLOCK_D=block_d, BLOCK_N=block_n, BLOCK_T=block_t)
        args = (u, delta, A, B, C, u if D is None else D, u if z is None else z, u if bias is None else bias, y)
        dims = (length, dim, n, dim // groups, groups, rows)
        buffers = (starts, local, decay, ckpt)
        loop = forward in LOOP_FORWARDS
        if loop:  # any strides: (b, d, l) of u, delta, z, y; (b, g, n, l) of B, C
            dims += (*u.stride(), *delta.stride(), *(u if z is None else z).stride(), *y.stride(), *B.stride(),
                     *C.stride())  # fmt: skip
            flags.update(EVEN_D=(dim // groups) % block_d == 0, EVEN_N=n == block_n, UNROLL=config.loop_unroll,
                         STAGES=config.loop_stages, PREFETCH=0 if interpreter_enabled() else config.loop_prefetch,
                         LOOKBACK=forward == "lookback")  # fmt: skip
            # the look-back's counter of started programs and its flag per (chunk, channel block) (unused by the
            # two-pass loop forward), and h_last
            if forward == "lookback":
                buffers += (torch.zeros(1 + grid[0] * grid[1], device=u.device, dtype=torch.int32), h_last)
            else:
                buffers += (starts, h_last)
        launch = {} if num_warps is None else {"num_warps": num_warps}
        if loop and config.loop_registers is not None:
            launch["maxnreg"] = config.loop_registers
        if forward == "lookback":  # both passes in one launch of a 1-D grid
            kernel = kernels[kernel_name][(grid[0] * grid[1],)]
            kernel(*args, *buffers, *dims, **sizes, **flags, **launch, FINAL=True, SAVE=save)
        else:
            kernel = kernels[kernel_name][grid]
            kernel(*args, *buffers, *dims, **sizes, **flags, **launch, FINAL=False, SAVE=False)
            _carry(local, decay, starts, h_last, reverse=False)
            kernel(*args, *buffers, *dims, **sizes, **flags, **launch, FINAL=True, SAVE=save)
        ctx.save_for_backward(u, delta, A, B, C, D, z, bias, ckpt)
        ctx.softplus, ctx.config = softplus, config
        ctx.set_materialize_grads(False)
        return y, h_last

    @staticmethod
    def backward(ctx, dy, dh_last):
        u, delta, A, B, C, D, z, bias, ckpt = ctx.saved_tensors
        batch, dim, length = u.shape
        n = A.shape[1]
        dy = torch.zeros_like(u) if dy is None else dy
        f32 = dict(device=u.device, dtype=torch.float32)
        dh_last = torch.zeros(batch, dim, n, **f32) if dh_last is None else dh_last.float().contiguous()
        grads = _backward(ctx.config, ctx.softplus, u, delta, A, B, C, D, z, bias, ckpt, dy, dh_last)
        du, ddelta, dz, dA, dB, dC, dD, dbias = grads

        def cast(grad, like):
            return None if like is None else grad.to(like.dtype)

        return (cast(du, u), cast(ddelta, delta), cast(dA, A), cast(dB, B), cast(dC, C), cast(dD, D), cast(dz, z),
                cast(dbias, bias), None, None)  # fmt: skip


def _backward(config, softplus, u, delta, A, B, C, D, z, bias, ckpt, dy, dh_last):
    """The gradients, by the backward kernel of ``config``. The tile kernel reads contiguous (b, d, l) and
    (b, g, n, l) tensors, the loop kernel contiguous token-major (b, l, d) and (b, l, g, n) ones: inputs laid out
    otherwise are copied, and the gradients, made in the kernel's layout, are returned as (b, d, l) and
    (b, g, n, l) views."""
    loop = config.backward == "loop"

    def laid_out(t):  # a sequence in the kernel's layout: for the loop kernel (b, d, l) -> (b, l, d), etc.
        return None if t is None else t.movedim(-1, 1).contiguous() if loop else t.contiguous()

    def as_given(grad):  # back to (b, d, l) and (b, g, n, l)
        return grad.movedim(1, -1) if loop else grad

    chunk, block_t, block_d, block_n = config.chunk, config.block_t, config.backward_block_d, config.block_n
    batch, dim, length = u.shape
    groups, n = B.shape[1], A.shape[1]
    rows, n_chunks = batch * dim * n, -(-length // chunk)
    f32 = dict(device=u.device, dtype=torch.float32)
    local, decay, carry = (torch.empty(n_chunks, rows, **f32) for _ in range(3))
    du, ddelta, dz = (torch.empty((batch, length, dim) if loop else (batch, dim, length), **f32) for _ in range(3))
    dB, dC = (torch.zeros((batch, length, groups, n) if loop else (batch, groups, n, length), **f32) for _ in range(2))
    dA, dD, dbias = torch.zeros(dim, n, **f32), torch.zeros(dim, **f32), torch.zeros(dim, **f32)
    grid = (n_chunks, batch * groups * -(-(dim // groups) // block_d))
    flags = dict(SOFTPLUS=softplus, HAS_D=D is not None, HAS_Z=z is not None, HAS_BIAS=bias is not None)
    sizes = dict(CHUNK=chunk, BLOCK_D=block_d, BLOCK_N=block_n, BLOCK_T=block_t)
    u, z = laid_out(u), laid_out(z)
    inputs = (u, laid_out(delta), A.contiguous(), laid_out(B), laid_out(C), u if D is None else D.contiguous(),
              u if z is None else z, u if bias is None else bias.contiguous(), laid_out(dy))  # fmt: skip
    outputs = (du, ddelta, dz, dA, dB, dC, dD, dbias)
    dims = (length, dim, n, dim // groups, groups, rows)
    if loop:  # the per-program scratch for the states of one tile
        kernel = _kernels()["backward_loop"][grid]
        prefetch = 0 if interpreter_enabled() else config.backward_prefetch
        options = dict(num_warps=max(1, block_d // 32), PREFETCH=prefetch)
        if config.backward_registers is not None:
            options["maxnreg"] = config.backward_registers
        buffers = (ckpt, carry, local, decay, torch.empty(grid[0] * grid[1] * block_t * block_d * block_n, **f32))
    else:
        kernel, options, buffers = _kernels()["backward"][grid], {}, (ckpt, carry, local, decay)
    kernel(*inputs, *buffers, *outputs, *dims, **sizes, **flags, **options, FINAL=False)
    _carry(local, decay, carry, dh_last, reverse=True)
    kernel(*inputs, *buffers, *outputs, *dims, **sizes, **flags, **options, FINAL=True)
    return as_given(du), as_given(ddelta), as_given(dz), dA, as_given(dB), as_given(dC), dD, dbias


def _carry(local, decay, out, boundary, reverse: bool) -> None:
    """:func:`carry_kernel` on (n_chunks, rows) arrays: the carry entering each chunk, into ``out``; ``boundary`` is
    where the final carry goes (forward) or the initial one comes from (reverse: dL/dh_last)."""
    n_chunks, rows = local.shape
    grid = (-(-rows // _CARRY_BLOCK),)
    _kernels()["carry"][grid](local, decay, out, boundary, boundary, n_chunks, rows,
                              BLOCK=_CARRY_BLOCK, CHUNKS=_CARRY_CHUNKS, REVERSE=reverse)  # fmt: skip


_CARRY_BLOCK = 128
# chunks per step of the carry kernel (loaded together; see carry_kernel)
_CARRY_CHUNKS = 16


# the kernels address sequences with 32-bit offsets from the storage start
_MAX_SPAN = 2**31 - 1


def _span(t: torch.Tensor) -> int:
    """Elements of its storage that ``t`` reaches: the largest offset it addresses, plus one."""
    return t.storage_offset() + sum((size - 1) * stride for size, stride in zip(t.shape, t.stride(), strict=True)) + 1


def _output_like(u: torch.Tensor) -> torch.Tensor:
    """An empty (b, d, l) output laid out as ``u``: token-major (stride 1 along d) when ``u`` is, so that
    ``y.transpose(1, 2)`` is a contiguous (b, l, d) tensor; else contiguous."""
    batch, dim, length = u.shape
    if u.stride(1) == 1 and dim > 1 and length > 1:
        return torch.empty(batch, length, dim, device=u.device, dtype=u.dtype).transpose(1, 2)
    return torch.empty(batch, dim, length, device=u.device, dtype=u.dtype)


def selective_scan_triton(
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
    chunk: int = DEFAULT_CHUNK,
    block_t: int = DEFAULT_BLOCK_T,
    block_d: int = DEFAULT_BLOCK_D,
    forward: str = DEFAULT_FORWARD,
    loop_chunk: int = LOOP_CHUNK,
    loop_block_d: int = LOOP_BLOCK_D,
    loop_unroll: int = LOOP_UNROLL,
    loop_stages: int = LOOP_STAGES,
    loop_registers: int | None = LOOP_REGISTERS,
    loop_prefetch: int = LOOP_PREFETCH,
    num_warps: int | None = None,
    backward: str = DEFAULT_BACKWARD,
    backward_prefetch: int = BACKWARD_PREFETCH,
    backward_registers: int | None = BACKWARD_REGISTERS,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Selective scan with Triton kernels; same contract as the reference. Float32 state and arithmetic for
    float32/float16/bfloat16 inputs; float64 inputs run the ``chunked`` backend instead (Triton kernels here are
    float32 only), so that ``"auto"`` works for every dtype.

    Args:
        chunk: positions per program of the backward and the tile forward (power of two, >= block_t); the carry
            kernel walks ``ceil(l / chunk)`` chunks.
        block_t: positions per register tile (power of two); the forward saves one float32 state per tile for
            the backward: ``b * d * n * ceil(l / block_t)`` values.
        block_d: channels per program of the tile backward and the tile forward (power of two).
        forward: the forward kernel, ``"tile"``, ``"loop"`` or ``"lookback"`` (see :data:`FORWARD_KERNELS`); same
            results. ``"loop"`` reads any strides and is fastest on token-major inputs (stride 1 along d and n);
            ``"lookback"`` is the loop kernel in one launch.
        loop_chunk, loop_block_d: positions and channels per program of the loop forward, ``"loop"`` or
            ``"lookback"`` (powers of two); the other ``loop_*`` arguments are its settings too.
        loop_unroll: positions per iteration of the loop forward's walk (power of two; see :data:`LOOP_UNROLL`).
        loop_stages: 1: the loop forward loads each position's inputs one position ahead itself; 2-8: Triton's
            software pipelining of the walk's loads, that many stages; 0: where they are used, with no lookahead
            of its own (for use with ``loop_prefetch``; see :data:`LOOP_STAGES`).
        loop_registers: at most this many registers per thread in the loop forward (None: no limit; see
            :data:`LOOP_REGISTERS`).
        loop_prefetch: positions ahead that the loop forward prefetches its inputs into L1 (0: none; see
            :data:`LOOP_PREFETCH`); a hint, same results.
        num_warps: warps per program of the forward kernel (None: one per 32 channels for the loop forward,
            Triton's default for the tile forward).
        backward: the backward kernel, ``"tile"`` or ``"loop"`` (see :data:`BACKWARD_KERNELS`); same results. The
            loop backward takes chunk, block_t and loop_block_d (one warp per 32 channels).
        backward_prefetch: positions ahead that the loop backward prefetches its inputs into L1 (0: none; see
            :data:`BACKWARD_PREFETCH`); a hint, same results.
        backward_registers: at most this many registers per thread in the loop backward (None: no limit; see
            :data:`BACKWARD_REGISTERS`).

    Raises:
        RawMambaError: Triton is missing or older than 3.2, an input is not on a CUDA device (CPU tensors only with
            ``TRITON_INTERPRET=1``), a sequence reaches past 32-bit offsets, or a size argument is not a power of
            two.
    """
    if u.dtype == torch.float64:
        from rawmamba.ssm.backends.chunked import selective_scan_chunked

        return selective_scan_chunked(u, delta, A, B, C, D=D, z=z, delta_bias=delta_bias,
                                      delta_softplus=delta_softplus, return_last_state=return_last_state)  # fmt: skip
    if not triton_importable():
        raise RawMambaError("selective_scan_triton: the triton package cannot be imported")
    if triton_version() < MIN_TRITON_VERSION:
        found = ".".join(map(str, triton_version()))
        raise RawMambaError(
            f"selective_scan_triton: needs triton {'.'.join(map(str, MIN_TRITON_VERSION))} or later (torch 2.6 or "
            f"later ships one), found {found}; the chunked backend runs on any device"
        )
    want = "cpu" if interpreter_enabled() else "cuda"
    tensors = {"u": u, "delta": delta, "A": A, "B": B, "C": C, "D": D, "z": z, "delta_bias": delta_bias}
    for name, t in tensors.items():
        if t is not None and t.device.type != want:
            raise RawMambaError(
                f"selective_scan_triton: argument {name} is on {t.device}; Triton needs {want} tensors"
                + (" (CPU tensors only with TRITON_INTERPRET=1)" if want == "cuda" else "")
            )
    for name in ("u", "delta", "B", "C", "z"):
        if tensors[name] is not None and _span(tensors[name]) > _MAX_SPAN:
            raise RawMambaError(
                f"selective_scan_triton: argument {name} spans {_span(tensors[name]):,} elements of its storage, "
                f"more than the kernels' 32-bit offsets reach ({_MAX_SPAN:,}); split the batch or the sequence"
            )
    config = _config(A.shape[1], chunk, block_t, block_d, forward, loop_chunk, loop_block_d, loop_unroll, loop_stages,
                     loop_registers, loop_prefetch, num_warps, backward, backward_prefetch,
                     backward_registers)  # fmt: skip
    B4 = B if B.dim() == 4 else B.unsqueeze(1)
    C4 = C if C.dim() == 4 else C.unsqueeze(1)

    def prep(t):  # the tile forward reads contiguous tensors; the loop forward takes any strides
        return None if t is None else t.contiguous() if forward == "tile" or t.dim() < 3 else t

    y, h_last = _TritonScan.apply(
        prep(u), prep(delta), prep(A), prep(B4), prep(C4), prep(D), prep(z), prep(delta_bias), bool(delta_softplus),
        config,
    )  # fmt: skip
    return (y, h_last) if return_last_state else y
