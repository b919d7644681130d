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
from pathlib import Path

import torch

from rawmamba.baselines import DerenderMethod, GlobalColourFit, InverseGamma, SampleInterpolation
from rawmamba.errors import RawMambaError
from rawmamba.evaluate import check_results_free, evaluate, format_markdown, write_results
from rawmamba.infer import precision_context, resolve_device
from rawmamba.metrics import MetricTable
from rawmamba.models.sample_refinement import REFINEMENTS
from rawmamba.train.checkpoint import read_description

BASELINES = {"global-fit": GlobalColourFit, "interpolation": SampleInterpolation, "inverse-gamma": InverseGamma}


def checkpoint_paths(checkpoint: str | None, ablation: list[str] | None) -> list[Path]:
    """The checkpoints to evaluate: ``--checkpoint`` and/or ``--ablation`` entries (stems, weight files, or
    folders whose ``*.safetensors`` are taken in name order)."""
    paths: list[Path] = []
    for entry in ([checkpoint] if checkpoint else []) + list(ablation or []):
        path = Path(entry)
        if path.is_dir():
            found = sorted(path.glob("*.safetensors"))
            if not found:
                raise RawMambaError(f"checkpoint folder {path} holds no .safetensors checkpoint")
            paths += [p.with_suffix("") for p in found]
        else:
            paths.append(path.with_suffix("") if path.suffix in (".safetensors", ".json") else path)
    return paths


def checkpoint_labels(paths: list[Path]) -> list[str]:
    """Column-block names: the description's ``description``/``name`` entry or the file stem; names that
    would repeat are prefixed with their folder, and numbered ``#1``, ``#2`` if they still repeat."""
    labels = []
    for path in paths:
        description = read_description(path)
        label = description.get("description") or description.get("name") or path.name
        labels.append(str(label))
    labels = [f"{p.parent.name}/{label}" if labels.count(label) > 1 else label for p, label in zip(paths, labels,
                                                                                                strict=True)]
    return [f"{label} #{labels[:i].count(label) + 1}" if labels.count(label) > 1 else label
            for i, label in enumerate(labels)]


def _run(args) -> int:
    from rawmamba.inference import NetworkMethod, bundled_checkpoint

    paths = checkpoint_paths(args.checkpoint, args.ablation) + [bundled_checkpoint(name) for name in args.bundled or []]
    if not paths and not args.baseline:
        raise RawMambaError("nothing to evaluate: give --checkpoint, --ablation, --bundled or --baseline")
    device = resolve_device(args.device)
    data = Path(args.data)
    out = Path(args.out) if args.out else Path(f"eval-{data.resolve().name}-{args.split}")
    check_results_free(out, force=args.force)  # fail before hours of evaluation, not after
    labels = checkpoint_labels(paths)
    options = {"split": args.split, "cameras": args.cameras, "limit": args.limit, "window": args.window,
               "seed": args.seed, "sampler": args.sampler, "tile": args.tile, "overlap": args.overlap}
    tables: dict[str, MetricTable] = {}
    for path, label in zip(paths, labels, strict=True):
        method = NetworkMethod.from_checkpoint(path, device=device, name=label, sample_refinement=args.refinement)
        variants = [method]
        if args.finetune_steps > 0 and method.learned_sampler:
            variants.append(NetworkMethod(method.model, name=f"{label}+ft", device=device,
                                          finetune_steps=args.finetune_steps))
        for variant in variants:
            with precision_context(device, args.precision), torch.no_grad():
                tables[variant.name] = evaluate(variant, data, **options)
        del method, variants
        if device.type == "cuda":
            torch.cuda.empty_cache()
    for name in args.baseline or []:
        baseline: DerenderMethod = BASELINES[name]()
        with torch.no_grad():
            tables[name] = evaluate(baseline, data, **options)
    title = args.title or f"{data.name} ({args.split})"
    print(format_markdown(tables, title=title))
    markdown, json_path = write_results(out, tables, title=title, force=args.force, data=str(data),
                                        checkpoints={label: str(p) for label, p in zip(labels, paths, strict=True)},
                                        precision=args.precision,
                                        sample_refinement=args.refinement or "as each checkpoint says", **options)
    print(f"wrote {markdown} and {json_path}")
    return 0


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
    parser.add_argument("--baseline", nargs="+", choices=sorted(BASELINES), help="baselines to add as columns")
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
