"""``rawmamba demo``: its arguments and help (the work, in :mod:`rawmamba.demo`, imports torch when it runs)."""

from __future__ import annotations

import argparse
from pathlib import Path

from rawmamba.errors import RawMambaError

DEMO_SEED = 20241126  # a stream the bundled model never trained on (training uses small seeds)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="de-render a built-in synthetic image and video; print scores; write pictures",
        description="Make a synthetic image (1.5% RAW samples as metadata) and a synthetic video (first "
        "frame's RAW as metadata), de-render both with the bundled pretrained rawmamba_tiny and with simple "
        "baselines (global colour fit, sample interpolation, inverse gamma), print PSNR/SSIM and write "
        "side-by-side pictures with error heat-maps. Needs no data and no GPU.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--out", type=Path, default=Path("rawmamba-demo"), help="folder for pictures and results")
    parser.add_argument("--checkpoint", type=Path, help="a trained checkpoint instead of the bundled model")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--seed", type=int, default=DEMO_SEED, help="which synthetic cases to make")
    parser.add_argument("--force", action="store_true", help="write into --out even if it already has results")
    parser.set_defaults(func=_run)


def _run(args) -> int:
    if (args.out / "results.md").exists() and not args.force:
        raise RawMambaError(f"{args.out} already holds demo results; pass --force to overwrite or choose --out")
    args.out.mkdir(parents=True, exist_ok=True)
    from rawmamba.demo import run_demo

    run_demo(args.out, checkpoint=args.checkpoint, device=args.device, seed=args.seed)
    return 0
