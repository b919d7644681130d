"""Benchmark: parameter counts and forward (and training-step) time of every registered RAWMamba variant.

``--ablations`` adds the paper's Table-3 variants of ``rawmamba_tiny`` (each switch off in turn).

Measures an image (1 x 3 x S x S with 1.5% grid metadata) and a clip (T frames with dense first-frame
metadata and a given zero flow, so OpenCV DIS time is excluded; ``--dis`` includes it) on the CPU or a
GPU, and writes ``benchmarks/results/models_forward_<device>.json``.

    .venv/bin/python benchmarks/models_forward.py --device cpu --threads 2
    python3 benchmarks/models_forward.py --device cuda --size 512 --backward
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch

from rawmamba.metadata import grid_mask
from rawmamba.models import create_model, list_models
from rawmamba.ssm import DEFAULT_BACKEND, ENV_VAR, get_backend
from rawmamba.train.checkpoint import code_version

RESULTS = Path(__file__).resolve().parent / "results"
ABLATIONS = {  # the Table-3 switches, as overrides of rawmamba_tiny
    "no_geb": {"use_geb": False},
    "no_leb": {"use_leb": False},
    "no_ume": {"use_geb": False, "use_leb": False},
    "no_local_scan": {"local_scan": False},
    "no_global_scan": {"global_scan": False},
    "plain_mamba": {"plain_mamba": True},
    "no_global_prior": {"global_prior": False},
}


def timed(fn, device: torch.device, repeats: int) -> float:
    """Median seconds of ``fn()`` over ``repeats`` runs after one warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def train_step(model: torch.nn.Module, batch: tuple) -> None:
    """Forward, backward, and a check that every parameter got a finite gradient."""
    model(*batch).square().mean().backward()
    bad = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.isfinite().all()]
    if bad:
        raise RuntimeError(f"missing or non-finite gradients in {bad[:3]}")
    model.zero_grad(set_to_none=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="torch device")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--size", type=int, default=256, help="frame side in pixels")
    parser.add_argument("--frames", type=int, default=5, help="clip length")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per measurement (median)")
    parser.add_argument("--models", nargs="*", default=list_models(), help="variants to measure")
    parser.add_argument("--backward", action="store_true", help="also time forward + backward")
    parser.add_argument("--dis", action="store_true", help="let the clip compute its flow with OpenCV DIS")
    parser.add_argument("--ablations", action="store_true", help="also the Table-3 variants of rawmamba_tiny")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    s, t = args.size, args.frames
    gen = torch.Generator().manual_seed(0)
    mask = grid_mask(s, s, 8)[None]
    image = torch.rand(1, 1, 3, s, s, generator=gen)
    raw = torch.rand(1, 3, s, s, generator=gen)
    clip = torch.rand(1, t, 3, s, s, generator=gen)
    inputs = {
        "image": (image, image[:, 0] * mask, raw * mask, mask, None),
        "clip": (clip, clip[:, 0], raw, None, None if args.dis else torch.zeros(1, t, 2, s, s)),
    }
    variants = [(name, name, {}) for name in args.models]
    if args.ablations:
        variants += [(f"rawmamba_tiny:{label}", "rawmamba_tiny", o) for label, o in ABLATIONS.items()]
    rows = []
    for name, registered, overrides in variants:
        model = create_model(registered, **overrides).to(device)
        params = sum(p.numel() for p in model.parameters())
        for kind, tensors in inputs.items():
            batch = tuple(v.to(device) if v is not None else None for v in tensors)
            model.eval()
            with torch.no_grad():
                forward = timed(lambda m=model, b=batch: m(*b), device, args.repeats)
            row = {"model": name, "parameters": params, "input": kind, "shape": list(batch[0].shape)}
            row["forward_s"] = round(forward, 4)
            if args.backward:
                model.train()
                row["train_step_s"] = round(timed(lambda m=model, b=batch: train_step(m, b), device, args.repeats), 4)
            if device.type == "cuda":
                row["peak_memory_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
                torch.cuda.reset_peak_memory_stats(device)
            rows.append(row)
            print(json.dumps(row))
    out = RESULTS / f"models_forward_{device.type}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "commit": code_version(),
        "torch": torch.__version__,
        "scan_backend": get_backend(os.environ.get(ENV_VAR, DEFAULT_BACKEND), device_type=device.type).name,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu, {args.threads} threads",
    }
    out.write_text(json.dumps({**meta, "rows": rows}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
