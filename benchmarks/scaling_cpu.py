"""Linear scaling of ``rawmamba_tiny`` inference on CPU: cost per pixel vs image size, cost per frame vs clip length.

    .venv/bin/python benchmarks/scaling_cpu.py [--threads 2] [--sizes 256 512 1024 2048]
        [--frames 1 2 4 8 16 32] [--video-size 256 256] [--given-flow] [--allocator benchmark] [--repeats 3]
        [--sample-refinement none|rbf] [--model rawmamba_tiny] [--out benchmarks/results/scaling_cpu.json]

The same script gives the end-to-end CPU throughput of a model (megapixels per second on images, frames per
second on videos, with peak memory), e.g. ``--model rawmamba_base --sizes 1024 --frames 5 --video-size 640 1440``.

Images: one 3-channel frame of S x S with sampled grid metadata (one pixel per 8x8 cell, ``grid_mask``); the
network alone unless ``--sample-refinement rbf`` (RAWMamba's eval-time refinement, on by default in the model,
is not what this benchmark is about: it costs about 6 us per pixel by itself on one thread).
Videos: T frames of ``--video-size`` with dense first-frame metadata; the model computes the flow with OpenCV DIS
as at inference (``--given-flow`` passes a zero flow instead, leaving DIS out). Random weights (the cost does
not depend on them), eval mode, ``torch.no_grad``. Each case runs in a fresh process: one warm-up forward (it
compiles or loads the scan kernels and builds the per-shape scan orders), then ``--repeats`` timed forwards.
Peak memory is ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` after the timed forwards minus its value before the
warm-up (model and inputs already allocated): the extra resident memory inference needed at its peak.
Each worker starts with ``THP_MEM_ALLOC_ENABLE=1`` (PyTorch backs tensors of 2 MiB and more with transparent huge
pages) and first calls :func:`rawmamba.allocator.reuse_freed_memory` (freed heap memory is reused instead of fresh
pages for every large tensor); see that module for both (``--allocator benchmark``). ``--allocator command-line``
keeps the huge pages only, as the ``rawmamba`` command does: glibc then hands freed tensors back to the system,
so the peak is that of the tensors alive at once, as a user sees it (with reused memory the heap fragments and
the peak varies from run to run). ``--allocator default`` leaves PyTorch's and glibc's defaults.

The JSON holds, per case, the median wall-clock and process-CPU seconds, both per pixel (images) or per frame
(videos), and the acceptance ratios: max / min cost per pixel over the sizes and per frame over the clip lengths
(target < 1.5, same run). CPU time is less disturbed by other work on a shared machine than wall-clock time.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import torch
from scan_cpu import cpu_environment, time_it

from rawmamba.allocator import HUGE_PAGES_ENV, reuse_freed_memory
from rawmamba.metadata import grid_mask
from rawmamba.models import create_model
from rawmamba.models.sample_refinement import REFINEMENTS
from rawmamba.ssm import DEFAULT_BACKEND, ENV_VAR, get_backend

ALLOCATORS = {
    "benchmark": f"{HUGE_PAGES_ENV}=1 and rawmamba.allocator.reuse_freed_memory()",
    "command-line": f"{HUGE_PAGES_ENV}=1 (as the rawmamba command)",
    "default": "defaults",
}


def case_inputs(kind: str, frames: int, h: int, w: int, given_flow: bool) -> tuple:
    """The forward's arguments: an image with grid metadata, or a clip with dense first-frame metadata."""
    gen = torch.Generator().manual_seed(0)
    raw = torch.rand(1, 3, h, w, generator=gen)
    if kind == "image":
        mask = grid_mask(h, w, 8)[None]
        image = torch.rand(1, 1, 3, h, w, generator=gen)
        return image, image[:, 0] * mask, raw * mask, mask, None
    clip = torch.rand(1, frames, 3, h, w, generator=gen)
    return clip, clip[:, 0], raw, None, torch.zeros(1, frames, 2, h, w) if given_flow else None


def run_case(kind: str, frames: int, h: int, w: int, args: argparse.Namespace) -> dict:
    """Time one case in this process (called in a fresh worker)."""
    torch.set_num_threads(args.threads)
    if args.allocator == "benchmark":
        reuse_freed_memory()
    model = create_model(args.model, sample_refinement=args.sample_refinement).eval()
    batch = case_inputs(kind, frames, h, w, args.given_flow)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with torch.no_grad():
        wall, cpu = time_it(lambda: model(*batch), args.repeats)
    rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    units = h * w if kind == "image" else frames
    return {
        "input": kind,
        "frames": frames,
        "height": h,
        "width": w,
        "forward_s": wall,
        "forward_cpu_s": cpu,
        "per_unit": "pixel" if kind == "image" else "frame",
        "wall_per_unit_s": wall / units,
        "cpu_per_unit_s": cpu / units,
        ("megapixels_per_s" if kind == "image" else "frames_per_s"): units / wall / (1e6 if kind == "image" else 1),
        "peak_rss_delta_mib": (rss_peak - rss_before) / 1024,
    }


def spread(rows: list[dict], key: str) -> float | None:
    """max / min of a per-unit cost over the rows (1.0: perfectly linear); None for fewer than two rows."""
    values = [r[key] for r in rows]
    return max(values) / min(values) if len(values) > 1 else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="rawmamba_tiny", help="registered model variant")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024, 2048], help="image sides")
    parser.add_argument("--frames", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32], help="clip lengths")
    parser.add_argument("--video-size", type=int, nargs=2, default=[256, 256], metavar=("H", "W"))
    parser.add_argument("--given-flow", action="store_true", help="pass a zero flow (no OpenCV DIS)")
    parser.add_argument(
        "--allocator",
        choices=tuple(ALLOCATORS),
        default="benchmark",
        help="memory settings: huge pages and reuse of freed memory (benchmark), huge pages only as the rawmamba "
        "command (command-line), or PyTorch's and glibc's defaults",
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed forwards per case (median)")
    parser.add_argument(
        "--sample-refinement",
        choices=REFINEMENTS,
        default="none",
        help="RAWMamba's eval-time sample refinement of image metadata (about 6 us per pixel on one thread "
        "on its own); none: the network alone",
    )
    parser.add_argument("--worker", nargs=4, metavar=("KIND", "T", "H", "W"), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/scaling_cpu.json"))
    args = parser.parse_args()
    if args.worker:
        kind, t, h, w = args.worker
        print(json.dumps(run_case(kind, int(t), int(h), int(w), args)))
        return
    cases = [("image", 1, s, s) for s in args.sizes] + [("video", t, *args.video_size) for t in args.frames]
    rows = []
    for case in cases:
        cmd = [sys.executable, __file__, "--worker", *map(str, case), "--threads", str(args.threads)]
        cmd += ["--repeats", str(args.repeats)] + (["--given-flow"] if args.given_flow else [])
        cmd += ["--allocator", args.allocator]
        cmd += ["--sample-refinement", args.sample_refinement, "--model", args.model]
        env = os.environ if args.allocator == "default" else {**os.environ, HUGE_PAGES_ENV: "1"}
        row = json.loads(subprocess.run(cmd, stdout=subprocess.PIPE, check=True, env=env).stdout)
        rows.append(row)
        print(
            f"{row['input']:>5} T={row['frames']:>2} {row['height']}x{row['width']}: {row['forward_s']:.3f} s "
            f"(CPU {row['forward_cpu_s']:.3f} s), per {row['per_unit']} {row['wall_per_unit_s'] * 1e6:.3f} us "
            f"(CPU {row['cpu_per_unit_s'] * 1e6:.3f} us), peak +{row['peak_rss_delta_mib']:.0f} MiB",
            file=sys.stderr,
            flush=True,
        )
    images = [r for r in rows if r["input"] == "image"]
    videos = [r for r in rows if r["input"] == "video"]
    acceptance = {
        f"{name}_max_over_min": {clock: spread(group, f"{clock}_per_unit_s") for clock in ("wall", "cpu")}
        for name, group in (("image_per_pixel", images), ("video_per_frame", videos))
    }
    acceptance["target"] = "< 1.5"
    print(json.dumps(acceptance), file=sys.stderr)
    result = {
        "benchmark": f"{args.model} CPU inference scaling",
        **cpu_environment(args.threads),
        "scan_backend": get_backend(os.environ.get(ENV_VAR, DEFAULT_BACKEND), device_type="cpu").name,
        "weights": "random (cost does not depend on them)",
        "image_metadata": "grid_mask: one sampled pixel per 8x8 cell",
        "sample_refinement": args.sample_refinement,
        "video_metadata": "dense first frame",
        "video_flow": "given (zero)" if args.given_flow else "computed by the model with OpenCV DIS",
        "allocator": ALLOCATORS[args.allocator],
        "repeats": args.repeats,
        "statistic": "median seconds over the repeats after one warm-up (wall clock; *_cpu_s: process CPU time)",
        "peak_memory_method": "ru_maxrss after the timed forwards minus before the warm-up, fresh process per case",
        "results": rows,
        "acceptance": acceptance,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
