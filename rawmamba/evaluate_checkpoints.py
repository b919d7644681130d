"""The work of ``rawmamba eval`` (:mod:`rawmamba.evaluate_cli` holds its arguments and help): the checkpoints and
baselines to score, one model in memory at a time, into one table written without overwriting."""


from __future__ import annotations

from pathlib import Path

import torch

from rawmamba.baselines import DerenderMethod, GlobalColourFit, InverseGamma, SampleInterpolation
from rawmamba.errors import RawMambaError
from rawmamba.evaluate import check_results_free, evaluate, format_markdown, write_results
from rawmamba.infer import precision_context, resolve_device
from rawmamba.metrics import MetricTable
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


def run(args) -> int:
    """``rawmamba eval`` with the parsed ``args`` (see :mod:`rawmamba.evaluate_cli`)."""
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
