"""The ``rawmamba`` command line: one entry point, one sub-command module per job.

Each sub-command lives beside the code it drives and exposes ``register(subparsers)``, which adds
its parser and sets ``func`` (called with the parsed arguments, returning an exit code). The modules are
imported by name when the parser is built; optional dependencies (rawpy, numba) are imported where they
are used, so a missing one fails only the command that needs it. Building the parser imports torch and
timm through the command modules: ``rawmamba --help`` takes about 5 s on a 2-core machine.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from rawmamba.allocator import use_huge_pages
from rawmamba.errors import RawMambaError

# Sub-command modules, in the order ``--help`` lists them.
COMMAND_MODULES = (
    "rawmamba.data.cli",
    "rawmamba.train.cli",
    "rawmamba.evaluate_cli",
    "rawmamba.infer_cli",
    "rawmamba.rawio.cli",
    "rawmamba.baselines.bench",
    "rawmamba.demo",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rawmamba",
        description="De-render sRGB images and videos back to camera RAW with RAWMamba, "
        "and make data, train, evaluate and compare methods.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    use_huge_pages()  # before any tensor exists: the command modules are imported below
    parser = build_parser()
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
