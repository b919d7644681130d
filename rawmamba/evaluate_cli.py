"""``rawmamba eval``: score checkpoints (and baselines) on a CAM or RVD-Part2 test set, paper-style table.

One checkpoint (``--checkpoint``) or several (``--ablation CK1 CK2 ...`` or a folder of checkpoints, e.g.
the paper's Table-3 variants; ``--bundled NAME ...``: networks shipped with the package, such as the learned
baselines) are evaluated one after the other (one model in memory at a time) and put
into ONE table with a PSNR/SSIM column block each, named by the checkpoint description's
``description`` (or ``name``) entry, else the file stem. ``--baseline`` adds baseline methods as more
column blocks. The table is printed and written as ``<out>/results.md`` and ``<out>/results.json``
(atomically; existing results are kept unless ``--force``).
"""

from __future__ import annotations

import argparse

from rawmamba.cli_choices import EVAL_BASELINES, REFINEMENTS


def _run(args) -> int:
    from rawmamba.evaluate_checkpoints import run  # torch and the networks: imported only to run, not for --help

    return run(args)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="evaluate checkpoints on a CAM or RVD-Part2 test set (paper-style PSNR/SSIM table)",
        description="Evaluate under the dataset's published protocol: CAM layout (whole test images, grid "
        "metadata with a fixed seed per image, 16-bit PSNR/SSIM, mean over images) or RVD-Part2 layout (only "
        "the first frame's RAW per video, frames 2..N scored on the unpacked 14-bit mosaic, per-video mean then "
        "mean over videos; SSIM with data range 1). Prints the table and writes results.md and results.json.",
        epilog="examples: rawmamba eval --checkpoint runs/cam/last --data /data/CAM --cameras sony\n"
        "          rawmamba eval --ablation runs/table3/ --data /data/CAM --out eval/table3",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--checkpoint", help="checkpoint stem or .safetensors path")
    parser.add_argument("--ablation", nargs="+", metavar="CK", help="several checkpoints (or folders of them), "
                        "one column block each")
    parser.add_argument("--bundled", nargs="+", metavar="NAME", help="bundled networks to add as columns "
                        "(rawmamba_tiny, cam_unet, rvd_net, blind_unet)")
    parser.add_argument("--finetune-steps", type=int, default=0, help="also evaluate each network with a learned "
                        "sampler (cam_unet) after this many steps of online fine-tuning (CAM: 10), as <name>+ft")
    parser.add_argument("--baseline", nargs="+", choices=EVAL_BASELINES, help="baselines to add as columns")
    parser.add_argument("--data", required=True, help="dataset folder (CAM, RVD-Part2 or srgb/ + raw/ layout)")
    parser.add_argument("--split", default="test", help="split folder")
    parser.add_argument("--out", help="folder for results.md and results.json (default: eval-<data>-<split>)")
    parser.add_argument("--cameras", nargs="+", help="CAM cameras to evaluate (default: all)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16"), help="bf16: autocast (GPU)")
    parser.add_argument("--refinement", choices=REFINEMENTS,
                        help="RAWMamba's sample refinement on sampled metadata: 'none' scores the network alone "
                        "(the paper's tables), 'rbf' with it (default: each checkpoint's setting; RAWMamba's is rbf)")
    parser.add_argument("--limit", type=int, help="only the first N images (CAM) or videos (RVD)")
    parser.add_argument("--window", type=int, default=5, help="video frames per network call")
    parser.add_argument("--seed", type=int, default=0, help="base seed of the per-image metadata")
    parser.add_argument("--sampler", default="grid", help="image metadata sampler (grid: 1 pixel per 8x8 cell)")
    parser.add_argument("--tile", type=int, default=0, help="tiled inference (0: whole frames, the protocol)")
    parser.add_argument("--overlap", type=int, default=64, help="tile overlap in pixels")
    parser.add_argument("--title", help="table title (default: the data folder and split)")
    parser.add_argument("--force", action="store_true", help="overwrite existing results")
    parser.set_defaults(func=_run)
