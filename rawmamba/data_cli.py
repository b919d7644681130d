"""``rawmamba data ...``: make synthetic datasets and look at dataset folders."""

from __future__ import annotations

import argparse

from rawmamba.capture_cli import register_from_raw

__all__ = ["register"]


def _size(text: str) -> tuple[int, int]:
    """``"256x384"`` -> ``(256, 384)`` (height x width)."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be HxW, e.g. 256x384, got {text!r}") from None
    if h < 1 or w < 1:
        raise argparse.ArgumentTypeError(f"size must be positive, got {text!r}")
    return h, w


def _synth(args: argparse.Namespace) -> int:
    from rawmamba.data.synth import synthesize

    height, width = args.size if args.size else (None, None)
    paths = synthesize(args.out, args.kind, args.count, height=height, width=width, frames=args.frames,
                       seed=args.seed, camera=args.camera, split=args.split, photo_prob=args.photo_prob,
                       force=args.force, progress=not args.quiet)
    print(f"wrote {len(paths)} files under {args.out}")
    return 0


def _show(args: argparse.Namespace) -> int:
    from rawmamba.data.show import write_contact_sheet

    cell_height, cell_width = args.cell
    out = write_contact_sheet(args.dir, args.out, split=args.split, rows=args.rows, cell_height=cell_height,
                              cell_width=cell_width)
    print(f"wrote {out}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``data`` command with its ``synth``, ``show`` and ``from-raw`` (:mod:`rawmamba.capture_cli`)
    sub-commands."""
    data = subparsers.add_parser(
        "data", help="make synthetic datasets, look at dataset folders",
        description="Dataset tools. Readers (rawmamba.data.CamDataset, RVDDataset, PairFolderDataset) read the "
        "CAM layout <root>/<camera>/<split>/{raw,sRGB}/, the RVD-Part2 layout <root>/Part2/<split>/"
        "{data.json,RAW,sRGB,flow}/ and plain <root>/{srgb,raw}/ folders.")
    commands = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)

    synth = commands.add_parser(
        "synth", help="write synthetic image pairs (CAM layout) or videos (RVD-Part2 layout)",
        description="Write synthetic (sRGB, RAW) data that needs nothing downloaded: procedural dead-leaves "
        "scenes and photos bundled with scikit-image (unprocessed to RAW), rendered through the ISP "
        "simulator with named or randomised camera profiles. Images go to <out>/<camera>/<split>/{sRGB,raw}/ "
        "(8-bit sRGB PNG, 16-bit raw-RGB PNG); videos to <out>/Part2/<split>/ (8-bit sRGB PNG, 14-bit RGGB "
        "mosaic TIFF, backward flow to the first frame as .npy, data.json), with camera translation/zoom and "
        "moving objects. The output is a pure function of the arguments. Existing files are never "
        "overwritten without --force; each file is written under a temporary name and then renamed.")
    synth.add_argument("--out", required=True, help="output folder (created if missing)")
    synth.add_argument("--kind", choices=("image", "video"), default="image",
                       help="image pairs (CAM layout) or videos (RVD-Part2 layout); default: image")
    synth.add_argument("--count", type=int, default=8, help="number of images or videos (default: 8)")
    synth.add_argument("--size", type=_size, default=None, metavar="HxW",
                       help="full-resolution size; default 256x384 for images, 256x448 for videos (even)")
    synth.add_argument("--frames", type=int, default=8, help="frames per video (default: 8)")
    synth.add_argument("--seed", type=int, default=0, help="random seed; same seed, same data (default: 0)")
    synth.add_argument("--camera", default="random",
                       help="camera profile name (e.g. 'Sony SLT-A57', 'sony'; see rawmamba.isp.CAMERAS) or "
                       "'random' for a randomised profile per item (default: random)")
    synth.add_argument("--split", default="train", help="split folder to write (default: train)")
    synth.add_argument("--photo-prob", type=float, default=0.5,
                       help="probability that an item uses a bundled photo instead of a dead-leaves scene "
                       "(default: 0.5)")
    synth.add_argument("--force", action="store_true", help="overwrite existing files")
    synth.add_argument("--quiet", action="store_true", help="no progress bar")
    synth.set_defaults(func=_synth)

    show = commands.add_parser(
        "show", help="write a contact-sheet PNG of a dataset folder",
        description="Write a PNG with one row per image (or per video, its first frame): the sRGB beside the "
        "RAW made visible with a gain (99th percentile to white) and gamma 2.2; packed Bayer RAW is shown as "
        "(R, (Gr+Gb)/2, B). The layout (CAM, RVD-Part2 or srgb/raw pair folder) is detected automatically.")
    show.add_argument("dir", help="dataset folder")
    show.add_argument("--out", default="contact_sheet.png", help="output PNG (default: ./contact_sheet.png)")
    show.add_argument("--split", default=None, help="split to show (default: the first of test, val, train found)")
    show.add_argument("--rows", type=int, default=8, help="largest number of rows (default: 8)")
    show.add_argument("--cell", type=_size, default=(128, 192), metavar="HxW",
                      help="size of each picture cell in pixels (default: 128x192)")
    show.set_defaults(func=_show)
    register_from_raw(commands)

