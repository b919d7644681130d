"""``rawmamba bench``: its arguments and help (the work, in :mod:`rawmamba.baselines.bench`, imports torch when it
runs)."""

from __future__ import annotations

import argparse
from pathlib import Path

from rawmamba.cli_choices import BENCH_METHODS


def _quality(args: argparse.Namespace) -> int:
    from rawmamba.baselines.bench import format_markdown, load_networks, run_quality_bench  # torch: to run only

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    bundled = [m.strip() for m in (args.bundled or "").split(",") if m.strip()]
    networks = load_networks(args.checkpoint or [], bundled, device=args.device, finetune_steps=args.finetune_steps)
    report = run_quality_bench(args.data, methods, out=args.out, limit=args.limit, split=args.split, seed=args.seed,
                               networks=tuple(networks))
    print(format_markdown(report))
    print(f"wrote {Path(args.out) / 'bench_quality.md'} and bench_quality.json")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``bench`` command with its ``quality`` sub-command."""
    bench = subparsers.add_parser("bench", help="compare de-rendering methods",
                                  description="Benchmarks of the de-rendering methods.")
    commands = bench.add_subparsers(dest="bench_command", metavar="SUBCOMMAND", required=True)
    quality = commands.add_parser(
        "quality", help="PSNR/SSIM, measured metadata size and time of each method on a dataset folder",
        description="Run each method as capture -> save -> load -> derender on a CAM- or RVD-layout folder with "
        "the same sampled metadata, and print and save (Markdown and JSON) a table of PSNR/SSIM under the "
        "dataset's protocol, the size of the metadata file each method wrote, and the time per image.")
    quality.add_argument("--data", required=True, help="CAM-layout or RVD-Part2-layout dataset folder")
    quality.add_argument("--methods", default=",".join(BENCH_METHODS),
                         help=f"comma-separated method names (default: all: {','.join(BENCH_METHODS)})")
    quality.add_argument("--out", default="bench-quality", help="output folder (default: ./bench-quality)")
    quality.add_argument("--limit", type=int, default=None, help="at most this many images or videos")
    quality.add_argument("--split", default=None, help="dataset split (default: first of test, val, train)")
    quality.add_argument("--seed", type=int, default=0, help="seed of the sample masks (default: 0)")
    quality.add_argument("--checkpoint", action="append",
                         help="also run this trained network (repeatable; named by its checkpoint's model)")
    quality.add_argument("--bundled", help="also run these bundled networks, comma-separated (e.g. "
                         "rawmamba_tiny,cam_unet,rvd_net,blind_unet)")
    quality.add_argument("--finetune-steps", type=int, default=0,
                         help="also run each network with a learned sampler (cam_unet) with this many steps of "
                         "online fine-tuning on its samples (CAM: 10), as <name>+ft")
    quality.add_argument("--device", default="cpu", help="device of the networks (cpu or cuda)")
    quality.set_defaults(func=_quality)
