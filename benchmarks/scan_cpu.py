"""Time the selective-scan backends on CPU: forward and forward+backward, medians over repeats.

    python benchmarks/scan_cpu.py [--backends reference chunked fused_cpu] [--lengths 1024 4096 20480]
        [--threads 1 2] [--out benchmarks/results/scan_cpu.json]

Sizes follow the network (d = 192 channels, n = 16 states, batch 1). The sequential reference runs only for
lengths up to ``--reference-max-length`` (it takes one Python step per position). Backends that are not
available (``fused_cpu`` without numba) are skipped and listed. Prints a table and writes JSON with the code
version (package + commit), torch version, device and thread counts, and the speed-ups of every backend over
each pure-PyTorch one, ``reference`` (which materialises every state) and ``chunked`` (same run, same thread
count). On a machine shared with other work,
multi-threaded wall times swing widely (every vector step ends in a thread barrier); the single-thread row
and the CPU times are the stable numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from rawmamba.ssm import available_backends, selective_scan
from rawmamba.train.checkpoint import code_version


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_environment(threads) -> dict:
    """The fields every CPU benchmark's JSON starts with: code version, torch, device, threads, load."""
    return {
        "commit": code_version(),
        "torch": torch.__version__,
        "device": f"cpu: {cpu_model()}",
        "threads": threads,
        "cpu_count": os.cpu_count(),
        "load_average_1min_at_end": os.getloadavg()[0],
    }


def make_inputs(d: int, n: int, length: int, requires_grad: bool) -> dict:
    """Inputs shaped and scaled like a BiMamba layer's (softplus steps around 0.01-0.1, A = -(1..n))."""
    g = torch.Generator().manual_seed(0)
    inputs = dict(
        u=torch.randn(1, d, length, generator=g),
        delta=torch.randn(1, d, length, generator=g) * 0.5 - 3.0,
        A=-torch.arange(1, n + 1, dtype=torch.float32).repeat(d, 1),
        B=torch.randn(1, n, length, generator=g),
        C=torch.randn(1, n, length, generator=g),
        D=torch.ones(d),
        z=torch.randn(1, d, length, generator=g),
        delta_bias=torch.zeros(d),
    )
    return {k: v.requires_grad_(requires_grad) for k, v in inputs.items()}


def time_it(fn, repeats: int) -> tuple[float, float]:
    """Median wall-clock and median process CPU seconds (CPU time is less disturbed by other load)."""
    fn()  # warm-up
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall), statistics.median(cpu)


def bench(backend: str, d: int, n: int, length: int, repeats: int) -> dict:
    fwd_inputs = make_inputs(d, n, length, requires_grad=False)
    grad_inputs = make_inputs(d, n, length, requires_grad=True)

    def forward():
        with torch.no_grad():
            selective_scan(**fwd_inputs, delta_softplus=True, backend=backend)

    def forward_backward():
        y = selective_scan(**grad_inputs, delta_softplus=True, backend=backend)
        y.sum().backward()

    fwd_wall, fwd_cpu = time_it(forward, repeats)
    fb_wall, fb_cpu = time_it(forward_backward, repeats)
    return {
        "backend": backend,
        "length": length,
        "forward_s": fwd_wall,
        "forward_backward_s": fb_wall,
        "forward_cpu_s": fwd_cpu,
        "forward_backward_cpu_s": fb_cpu,
    }


def run_rows(threads: int, args: argparse.Namespace) -> list[dict]:
    """All timings at one thread count, in this process."""
    torch.set_num_threads(threads)
    rows = []
    for length in args.lengths:
        for backend in args.backends:
            if backend == "reference" and length > args.reference_max_length:
                continue
            row = {"threads": threads} | bench(backend, args.d, args.n, length, args.repeats)
            rows.append(row)
            print(
                f"threads {threads}  {backend:>10}  L={length:>6}  forward {row['forward_s'] * 1e3:9.1f} ms"
                f"  forward+backward {row['forward_backward_s'] * 1e3:9.1f} ms"
                f"  (CPU time {row['forward_cpu_s'] * 1e3:.0f} / {row['forward_backward_cpu_s'] * 1e3:.0f} ms)",
                file=sys.stderr,
                flush=True,
            )
    return rows


def speedups(rows: list[dict], baseline: str) -> list[dict]:
    """``baseline`` time / backend time (wall-clock medians), per thread count and length, for every other
    backend timed at that length."""
    base = {(r["threads"], r["length"]): r for r in rows if r["backend"] == baseline}
    out = []
    for r in rows:
        ref = base.get((r["threads"], r["length"]))
        if ref is None or r["backend"] == baseline:
            continue
        out.append({"threads": r["threads"], "length": r["length"], "backend": r["backend"],
                    "forward": ref["forward_s"] / r["forward_s"],
                    "forward_backward": ref["forward_backward_s"] / r["forward_backward_s"]})  # fmt: skip
    for s in out:
        print(f"threads {s['threads']}  L={s['length']:>6}  {s['backend']:>10} vs {baseline}: forward "
              f"{s['forward']:.1f}x  forward+backward {s['forward_backward']:.1f}x", file=sys.stderr)  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["reference", "chunked", "fused_cpu"])
    parser.add_argument("--lengths", type=int, nargs="+", default=[1024, 4096, 20480])
    parser.add_argument("--d", type=int, default=192)
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--reference-max-length", type=int, default=1024)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch thread counts, one run each")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/scan_cpu.json"))
    args = parser.parse_args()
    skipped = [name for name in args.backends if name not in available_backends()]
    args.backends = [name for name in args.backends if name not in skipped]
    if args.worker:
        print(json.dumps(run_rows(args.threads[0], args)))
        return
    # Each thread count runs in a fresh process: changing torch's thread count inside one process left the
    # OpenMP workers contending (a 20x slower forward at 2 threads after a 1-thread pass).
    rows = []
    for threads in args.threads:
        cmd = [sys.executable, __file__, "--worker", "--threads", str(threads), "--repeats", str(args.repeats)]
        cmd += ["--d", str(args.d), "--n", str(args.n), "--reference-max-length", str(args.reference_max_length)]
        cmd += ["--lengths", *map(str, args.lengths), "--backends", *args.backends]
        rows += json.loads(subprocess.run(cmd, capture_output=False, stdout=subprocess.PIPE, check=True).stdout)
    result = {
        "benchmark": "selective_scan CPU",
        **cpu_environment(args.threads),
        "d": args.d,
        "n": args.n,
        "batch": 1,
        "repeats": args.repeats,
        "backends": args.backends,
        "backends_unavailable": skipped,
        "statistic": "median seconds (wall clock; *_cpu_s: process CPU time, all threads)",
        "results": rows,
        # both pure-PyTorch backends: the reference materialises the (b, d, l, n) states, chunked does not
        "speedup_over_reference": speedups(rows, "reference"),
        "speedup_over_chunked": speedups(rows, "chunked"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
