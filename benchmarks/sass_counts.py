"""Registers and instructions per loop of the Triton scan kernels, compiled for an H100 (sm_90) without a GPU.

    python benchmarks/sass_counts.py [--out benchmarks/results/sass_counts_sm90.json]

Each case compiles one kernel as a launch on d=192, n=16, L=288,000, float32, all optional inputs would (token-
major strides for the loop forward; integer arguments equal to 1 become constants and multiples of 16 are marked
so, as Triton specialises them at launch), disassembles the cubin with the ``nvdisasm`` that ships with Triton,
and counts the SASS instructions of every innermost loop (from its label to the branch back), which for the
loop kernels is the work per position. Registers per thread come from ``cuobjdump -res-usage``; an SM holds
65,536, so registers bound the warps that can hide each other's latency. These are counts, not timings: they
predict what a GPU run can confirm (``docs/GPU_SPEED.md``). Needs Triton 3.3 or later (its ``ASTSource`` API).
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import subprocess
import tempfile
from pathlib import Path

import triton
import triton.backends.nvidia
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

from rawmamba.ssm.backends import triton_scan_kernels as kernels
from rawmamba.train.checkpoint import code_version

DIM, STATE, LENGTH = 192, 16, 288_000
TARGET = GPUTarget("cuda", 90, 32)
TOOLS = Path(triton.backends.nvidia.__file__).parent / "bin"
# Integer arguments of the kernels at d=192, n=16, L=288,000, batch 1, one group; token-major (b, l, d) sequences
# and (b, l, n) B, C, as BiMamba lays them out for the loop forward.
SIZES = dict(length=LENGTH, dim=DIM, n=STATE, per_group=DIM, groups=1, rows=DIM * STATE, n_chunks=282)
SEQUENCE_STRIDES = dict(b=LENGTH * DIM, d=1, l=DIM)
STATE_STRIDES = dict(b=LENGTH * STATE, g=STATE, n=1, l=STATE)
for name in ("u", "dt", "z", "y"):
    SIZES.update({f"s{name}_{axis}": stride for axis, stride in SEQUENCE_STRIDES.items()})
for name in ("B", "C"):
    SIZES.update({f"s{name}_{axis}": stride for axis, stride in STATE_STRIDES.items()})
FLAGS = dict(BLOCK_N=STATE, SOFTPLUS=True, HAS_D=True, HAS_Z=True, HAS_BIAS=True)


def cases() -> list[tuple[str, str, dict, int, int | None]]:
    """(label, kernel name, constexpr arguments, warps, register limit or None) of every compiled case."""
    loop_forward = dict(CHUNK=256, BLOCK_D=64, BLOCK_T=64, SAVE=False, EVEN_D=True, EVEN_N=True, LOOKBACK=False,
                        **FLAGS)  # fmt: skip
    out = []
    for unroll, stages, registers, prefetch in (
        (1, 1, None, 0),
        (2, 1, None, 0),
        (4, 1, None, 0),
        (4, 1, 96, 0),
        (4, 3, None, 0),
        (4, 3, 80, 0),
        (4, 1, None, 16),
        (4, 1, 96, 16),
        (4, 0, None, 0),
        (4, 0, None, 16),
        (1, 0, None, 16),
    ):
        for final in (False, True):
            constants = dict(loop_forward, FINAL=final, UNROLL=unroll, STAGES=stages, PREFETCH=prefetch)
            label = f"loop forward, pass {1 + final}, unrolled x{unroll}"
            label += {0: ", loads where used", 1: ""}.get(stages, f", {stages} stages")
            label += f", {registers} registers" if registers else ""
            label += f", prefetch {prefetch} ahead" if prefetch else ""
            out.append((label, "forward_loop_kernel", constants, 2, registers))
    lookback = dict(loop_forward, FINAL=True, UNROLL=4, STAGES=1, PREFETCH=0, LOOKBACK=True)
    for registers in (None, 128):
        label = "loop forward in one launch (look-back), unrolled x4"
        label += f", {registers} registers" if registers else ""
        out.append((label, "forward_loop_kernel", lookback, 2, registers))
    for block_d, prefetch, registers in ((32, 0, None), (8, 0, None), (64, 0, None), (64, 16, None), (64, 16, 168)):
        for final in (False, True):
            constants = dict(CHUNK=1024, BLOCK_D=block_d, BLOCK_T=64, FINAL=final, PREFETCH=prefetch, **FLAGS)
            label = f"loop backward, {block_d} channels, {'gradients' if final else 'local adjoints'}"
            label += f", prefetch {prefetch} ahead" if prefetch else ""
            label += f", {registers} registers" if registers else ""
            out.append((label, "backward_loop_kernel", constants, max(1, block_d // 32), registers))
    tile_backward = dict(CHUNK=1024, BLOCK_D=2, BLOCK_T=64, FINAL=True, **FLAGS)
    out.append(("tile backward, gradients", "backward_kernel", tile_backward, 4, None))
    out.append(("carry", "carry_kernel", dict(BLOCK=128, CHUNKS=16, REVERSE=False), 4, None))
    return out


def compile_case(kernel_name: str, constants: dict, warps: int, registers: int | None = None) -> bytes:
    """The cubin of ``kernel_name`` with ``constants``, the other arguments specialised as at a launch; at most
    ``registers`` registers per thread (ptxas's maxnreg) unless None."""
    kernel = getattr(kernels, kernel_name)
    signature, constexprs, attributes = {}, {}, {}
    for index, name in enumerate(kernel.arg_names):
        if name in constants:
            signature[name], constexprs[(index,)] = "constexpr", constants[name]
        elif name.endswith("_ptr"):  # float32 tensors but the look-back's counter and flags
            signature[name] = "*i32" if name == "flags_ptr" else "*fp32"
            attributes[(index,)] = [["tt.divisibility", 16]]
        elif SIZES[name] == 1:
            signature[name], constexprs[(index,)] = "constexpr", 1
        else:
            signature[name] = "i32"
            if SIZES[name] % 16 == 0:
                attributes[(index,)] = [["tt.divisibility", 16]]
    source = ASTSource(kernel, signature, constexprs, attributes)
    options = dict(num_warps=warps) | ({} if registers is None else {"maxnreg": registers})
    return triton.compile(source, target=TARGET, options=options).asm["cubin"]


def innermost_loops(sass: str) -> list[dict]:
    """Instruction counts (total, and the most frequent opcodes) of each loop that contains no other loop."""
    lines = sass.splitlines()
    labels = {line[1:-1]: i for i, line in enumerate(lines) if re.match(r"^\.L_x_\d+:$", line)}
    loops = []
    for i, line in enumerate(lines):
        target = re.search(r"BRA\s+`\(\.(L_x_\d+)\)", line)
        if target and labels.get(target.group(1), i) < i:
            loops.append((labels[target.group(1)], i))
    out = []
    for start, end in loops:
        if start == end - 1 or any(start <= s and e <= end and (s, e) != (start, end) for s, e in loops):
            continue  # the branch-to-itself after the exit, or a loop that contains an inner loop
        opcodes = collections.Counter(
            match.group(1)
            for text in lines[start : end + 1]
            if (match := re.search(r"/\*[0-9a-f]{4,}\*/\s+(?:@!?U?P\w+\s+)?([A-Z][A-Z0-9_]*)", text))
        )
        out.append({"instructions": sum(opcodes.values()), "top": dict(opcodes.most_common(8))})
    return out


def _tool(name: str, *arguments) -> str:
    """The output of one of Triton's bundled CUDA tools."""
    return subprocess.run([TOOLS / name, *arguments], capture_output=True, text=True, check=True).stdout


def disassemble(cubin: bytes) -> tuple[str, str]:
    """The SASS of ``cubin`` and its resource usage."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "kernel.cubin"
        path.write_bytes(cubin)
        return _tool("nvdisasm", "-c", path), _tool("cuobjdump", "-res-usage", path)


def analyse(cubin: bytes) -> dict:
    """Registers per thread, the warps per SM that they allow (64 at most), and the innermost loops."""
    sass, usage = disassemble(cubin)
    registers = int(re.search(r"REG:(\d+)", usage).group(1))
    allocated = -(-registers // 8) * 8  # registers are allocated in units of 8 per thread (256 per warp)
    return {"registers": registers, "warps_per_sm": min(64, 65536 // (32 * allocated)), "loops": innermost_loops(sass)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/sass_counts_sm90.json"))
    args = parser.parse_args()
    results = []
    for label, kernel_name, constants, warps, registers in cases():
        entry = {"case": label, "kernel": kernel_name, "warps": warps, "register_limit": registers}
        entry.update(analyse(compile_case(kernel_name, constants, warps, registers)))
        loops = ", ".join(str(loop["instructions"]) for loop in entry["loops"])
        print(f"{label}: {entry['registers']} registers, innermost loops {loops} instructions", flush=True)
        results.append(entry)
    record = dict(
        benchmark="Triton scan kernels, SASS per innermost loop",
        commit=code_version(),
        triton=triton.__version__,
        target="sm_90",
        d=DIM,
        n=STATE,
        L=LENGTH,
        cases=results,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
