"""Time the selective-scan backends on CPU: forward and forward+backward, medians over repeats.

    python benchmarks/scan_cpu.py [--lengths 1024 4096 20480] [--threads 2] [--out benchmarks/results/scan_cpu.json]

Sizes follow the network (d = 192 channels, n = 16 states, batch 1). The sequential reference runs only for
lengths up to ``--reference-max-length`` (it takes one Python step per position). Prints a table and writes
JSON with the commit hash, torch version, device and thread count.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import time
from pathlib import Path

import torch

from rawmamba.ssm import selective_scan


def commit_hash() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


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


def time_it(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench(backend: str, d: int, n: int, length: int, repeats: int) -> dict:
    fwd_inputs = make_inputs(d, n, length, requires_grad=False)
    grad_inputs = make_inputs(d, n, length, requires_grad=True)

    def forward():
        with torch.no_grad():
            selective_scan(**fwd_inputs, delta_softplus=True, backend=backend)

    def forward_backward():
        y = selective_scan(**grad_inputs, delta_softplus=True, backend=backend)
        y.sum().backward()

    return {
        "backend": backend,
        "length": length,
        "forward_s": time_it(forward, repeats),
        "forward_backward_s": time_it(forward_backward, repeats),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[1024, 4096, 20480])
    parser.add_argument("--d", type=int, default=192)
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--reference-max-length", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/scan_cpu.json"))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    for length in args.lengths:
        backends = ["chunked"] + (["reference"] if length <= args.reference_max_length else [])
        for backend in backends:
            row = bench(backend, args.d, args.n, length, args.repeats)
            rows.append(row)
            print(
                f"{backend:>10}  L={length:>6}  forward {row['forward_s'] * 1e3:9.1f} ms"
                f"  forward+backward {row['forward_backward_s'] * 1e3:9.1f} ms",
                flush=True,
            )
    result = {
        "benchmark": "selective_scan CPU",
        "commit": commit_hash(),
        "torch": torch.__version__,
        "device": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "d": args.d,
        "n": args.n,
        "batch": 1,
        "repeats": args.repeats,
        "statistic": "median seconds",
        "results": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
