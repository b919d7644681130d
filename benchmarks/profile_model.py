"""Where a model's forward time goes: ``torch.profiler`` over a few forward passes, top operators.

    python benchmarks/profile_model.py --model rawmamba_base --frames 5 --height 640 --width 1440 \\
        --device cuda --dtype bf16 --out benchmarks/results/profile_base_cuda.txt

Dense first-frame metadata with zero flow (video, ``--frames > 1``) or 1/64 random samples (image). Writes
the operator table sorted by device time (CUDA) or CPU time, with the code version, torch version and device.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from rawmamba.models import create_model
from rawmamba.train.checkpoint import code_version


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="rawmamba_base")
    parser.add_argument("--frames", type=int, default=5)
    parser.add_argument("--height", type=int, default=640)
    parser.add_argument("--width", type=int, default=1440)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", choices=("fp32", "bf16"), default="bf16")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rows", type=int, default=30)
    parser.add_argument("--scan-backend", default=None, help="selective-scan backend (default: auto)")
    parser.add_argument("--cudnn-benchmark", action="store_true", help="torch.backends.cudnn.benchmark = True")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.backends.cudnn.benchmark = args.cudnn_benchmark
    device = torch.device(args.device)
    model = create_model(args.model, mamba_backend=args.scan_backend).to(device).eval()
    x = torch.rand(1, args.frames, 3, args.height, args.width, device=device)
    meta_srgb, meta_raw = x[:, 0].clone(), torch.rand(1, 3, args.height, args.width, device=device)
    video = args.frames > 1
    flow = torch.zeros(1, args.frames, 2, args.height, args.width, device=device) if video else None
    mask = None if video else (torch.rand(1, 1, args.height, args.width, device=device) < 1 / 64).float()
    cuda = device.type == "cuda"
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.dtype == "bf16")

    def run() -> None:
        model(x, meta_srgb, meta_raw, meta_mask=mask, flow=flow)
        if cuda:
            torch.cuda.synchronize()

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with torch.no_grad(), autocast:
        run()  # warm-up: kernels compiled, scan orders cached
        with profile(activities=activities) as prof:
            for _ in range(args.repeats):
                run()
    sort = "cuda_time_total" if cuda else "cpu_time_total"
    table = prof.key_averages().table(sort_by=sort, row_limit=args.rows)
    device_name = torch.cuda.get_device_name() if cuda else "cpu"
    header = (f"{args.model} {args.frames}x{args.height}x{args.width} {args.dtype}, {args.repeats} forwards, "
              f"scan backend {args.scan_backend or 'auto'}, cudnn.benchmark {args.cudnn_benchmark}; "
              f"commit {code_version()}, torch {torch.__version__}, {device_name}\n")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(header + table + "\n")
    print(header + table)


if __name__ == "__main__":
    main()
