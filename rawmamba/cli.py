"""The ``rawmamba`` command line: one entry point, one sub-command module per job.

Each sub-command lives beside the code it drives and exposes ``register(subparsers)``, which adds
its parser and sets ``func`` (called with the parsed arguments, returning an exit code). Only the module of the
command being run is imported (they import torch, and some timm: seconds); the others appear in ``--help`` by
their one-line summary from :data:`COMMANDS`, so ``rawmamba --help`` answers at once. Optional dependencies
(rawpy, numba) are imported where they are used, so a missing one fails only the command that needs it.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from rawmamba.allocator import use_huge_pages
from rawmamba.errors import RawMambaError

# Sub-commands in the order ``--help`` lists them: name -> (the module that registers it, its one-line summary,
# which must be the help that the module's parser gives; a test checks).
COMMANDS = {
    "data": ("rawmamba.data_cli", "make synthetic datasets, look at dataset folders"),
    "train": ("rawmamba.train.cli", "train a model (image or video task) from a config file"),
    "eval": (
        "rawmamba.evaluate_cli",
        "evaluate checkpoints on a CAM or RVD-Part2 test set (paper-style PSNR/SSIM table)",
    ),
    "derender": ("rawmamba.infer_cli", "de-render an sRGB image or video to RAW files with a trained network"),
    "capture": ("rawmamba.capture_cli", "camera side: sRGB + RAW metadata + camera JSON from camera RAW files"),
    "bench": ("rawmamba.bench_cli", "compare de-rendering methods"),
    "demo": ("rawmamba.demo_cli", "de-render a built-in synthetic image and video; print scores; write pictures"),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser: ``command``'s sub-parser complete (its module imported), the others summaries only;
    every one complete when ``command`` is ``"all"``."""
    parser = argparse.ArgumentParser(
        prog="rawmamba",
        description="De-render sRGB images and videos back to camera RAW with RAWMamba, "
        "and make data, train, evaluate and compare methods.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, summary) in COMMANDS.items():
        if command in (name, "all"):
            importlib.import_module(module).register(subparsers)
        else:
            subparsers.add_parser(name, help=summary)
    return parser


def _command_name(argv: list[str]) -> str | None:
    """The sub-command named in ``argv``: its first word that is not an option (the top level has only -h)."""
    return next((word for word in argv if not word.startswith("-")), None)


def main(argv: list[str] | None = None) -> int:
    use_huge_pages()  # before any tensor exists: the command's module is imported below
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(_command_name(argv))
    # Commands that take free ``--key=value`` config overrides (train) receive the unknown arguments.
    args, extra = parser.parse_known_args(argv)
    if extra and not hasattr(args, "overrides"):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if extra:
        args.overrides = extra
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except RawMambaError as error:
        print(f"rawmamba {args.command}: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
