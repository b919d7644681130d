"""``rawmamba train``: train a model from a YAML config plus ``--key=value`` overrides."""

from __future__ import annotations

import argparse

from rawmamba.train.config import load_config, parse_overrides


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a model (image or video task) from a config file",
        description="Train RAWMamba (or a baseline) as a YAML config says. Any config key can be overridden "
        "on the command line as --key=value (type-checked; unknown keys are an error). The resolved config, "
        "TensorBoard logs and checkpoints go to out_dir. Under torchrun --nproc_per_node=N the same command "
        "trains with DistributedDataParallel.",
        epilog="example: rawmamba train --config configs/synthetic_image.yaml --epochs=2 --out_dir=runs/try",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--config", help="YAML file listing what differs from the defaults")
    parser.add_argument("--resume", action="store_true", help="continue the run in out_dir after an interruption")
    parser.set_defaults(func=_run, overrides=[])


def _run(args) -> int:
    from rawmamba.train.loop import train

    config = load_config(args.config, parse_overrides(args.overrides))
    weights = train(config, resume=args.resume)
    print(f"trained model: {weights}")
    return 0
