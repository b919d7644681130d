"""``rawmamba capture`` (camera side: sRGB + metadata + camera JSON from RAW) and ``rawmamba data from-raw``.

``register`` adds ``capture`` to the top-level command line; ``register_from_raw`` adds ``from-raw`` to the
``data`` command. Headerless ``.raw`` dumps are described with ``--width --height --bits --cfa --black
--white --wb`` (``rawmamba.rawio.read.HeaderlessLayout``); other files are read by LibRaw.
"""

from __future__ import annotations

import argparse

__all__ = ["register", "register_from_raw"]


def _floats(text: str) -> tuple[float, ...]:
    """``"600"`` or ``"1.9,1,1.3"`` -> a tuple of floats."""
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _layout(args: argparse.Namespace):
    from rawmamba.errors import RawMambaError
    from rawmamba.rawio.read import HeaderlessLayout

    if args.width is None and args.height is None:
        return None
    if args.width is None or args.height is None:
        raise RawMambaError("headerless RAW needs both --width and --height")
    black = args.black[0] if len(args.black) == 1 else args.black
    wb = args.wb if args.wb is not None else (1.0, 1.0, 1.0)
    if len(wb) != 3:
        raise RawMambaError(f"--wb needs 3 gains R,G,B, got {args.wb}")
    return HeaderlessLayout(width=args.width, height=args.height, bits=args.bits, cfa=args.cfa, black=black,
                            white=args.white, wb=wb)


def _add_raw_options(parser: argparse.ArgumentParser, *, downscale: int, camera_flags: tuple[str, ...]) -> None:
    parser.add_argument(*camera_flags, dest="camera", default="libraw",
                        help="renderer of the sRGB: 'libraw' (LibRaw's pipeline) or a camera profile of "
                        "rawmamba.isp (e.g. 'Nikon D750', 'sony'), with the file's colour matrix and white balance")
    parser.add_argument("--downscale", type=int, default=downscale, help="area downscaling factor (CAM data: 4)")
    parser.add_argument("--exposure", type=float, default=None,
                        help="our renderer's exposure in stops (default: the 99th percentile to white)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the metadata positions and the renderer")
    parser.add_argument("--force", action="store_true", help="overwrite existing outputs")
    raw = parser.add_argument_group("headerless .raw dumps (given --width and --height)")
    raw.add_argument("--width", type=int, help="columns")
    raw.add_argument("--height", type=int, help="rows")
    raw.add_argument("--bits", type=int, default=16, help="bits per sample (white level 2**bits - 1)")
    raw.add_argument("--cfa", default="RGGB", help="Bayer pattern of the top-left 2x2 tile")
    raw.add_argument("--black", type=_floats, default=(0.0,), help="black level, one value or R,Gr,Gb,B")
    raw.add_argument("--white", type=float, default=None, help="white level (default 2**bits - 1)")
    raw.add_argument("--wb", type=_floats, default=None, help="as-shot white balance gains R,G,B")


def _capture(args: argparse.Namespace) -> int:
    from rawmamba.rawio.capture import capture
    from rawmamba.rawio.video import capture_sequence, raw_files

    layout = _layout(args)
    if args.video:
        written = capture_sequence(args.raw, args.out, renderer=args.camera, layout=layout, downscale=args.downscale,
                                   exposure_ev=args.exposure, seed=args.seed, force=args.force)
        frames = len(written) - 2
        raw_bytes = sum(p.stat().st_size for p in raw_files(args.raw))
        srgb_bytes = sum(p.stat().st_size for p in written[:frames])
        print(f"{frames} frames: RAW {raw_bytes / 1e6:.2f} MB -> sRGB {srgb_bytes / 1e6:.2f} MB + first-frame RAW "
              f"{written[-2].stat().st_size / 1e6:.2f} MB ({written[-2]}) + {written[-1].name}")
        return 0
    for path in raw_files(args.raw):
        result = capture(path, args.out, renderer=args.camera, layout=layout, downscale=args.downscale,
                         srgb_format=args.format, quality=args.quality, exposure_ev=args.exposure, cell=args.cell,
                         seed=args.seed, force=args.force)
        print(result.summary())
    return 0


def _from_raw(args: argparse.Namespace) -> int:
    from rawmamba.rawio.dataset import dataset_from_raw

    written = dataset_from_raw(args.dir, args.out, renderer=args.camera, layout=_layout(args),
                               downscale=args.downscale, split=args.split, camera_folder=args.camera_folder,
                               exposure_ev=args.exposure, seed=args.seed, force=args.force, progress=not args.quiet)
    print(f"wrote {len(written) // 2} pairs under {args.out}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``capture`` command."""
    parser = subparsers.add_parser(
        "capture", help="camera side: sRGB + RAW metadata + camera JSON from camera RAW files",
        description="Capture camera RAW files (any format LibRaw reads, DNG, or headerless dumps) as the paper's "
        "camera would: an sRGB image (LibRaw's rendering or one of our camera profiles) as JPEG/PNG, a metadata "
        "file with one RAW pixel per 8x8 cell (1.5625%), and <stem>.camera.json with what a DNG needs later "
        "(CFA, black/white levels, white balance, colour matrix, orientation). Prints the RAW, sRGB and metadata "
        "sizes. With --video the files are frames of one sequence: sRGB frames, the first frame's RAW and "
        "capture.json, for 'rawmamba derender FRAMES --first-raw'.",
        epilog="examples: rawmamba capture IMG_0001.CR2 --out captured/ --downscale 4\n"
        "          rawmamba capture photo.dng --out captured/ --camera 'Nikon D750' --format png\n"
        "          rawmamba capture seq/ --video --out clip/ --camera sony",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("raw", nargs="+", help="RAW files or folders of RAW files")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--format", choices=("jpg", "png"), default="jpg", help="sRGB file format")
    parser.add_argument("--quality", type=int, default=95, help="JPEG quality")
    parser.add_argument("--cell", type=int, default=8, help="metadata grid cell (one RAW sample per cell x cell)")
    parser.add_argument("--video", action="store_true", help="the files are frames of one video (sorted by name)")
    _add_raw_options(parser, downscale=1, camera_flags=("--camera",))
    parser.set_defaults(func=_capture)


def register_from_raw(commands: argparse._SubParsersAction) -> None:
    """Add ``from-raw`` to the ``data`` command's sub-commands."""
    parser = commands.add_parser(
        "from-raw", help="a CAM-layout training set from a folder of your camera's RAW files",
        description="Turn RAW files into CAM-layout (sRGB, raw-RGB) pairs as the CAM data were made: the mosaic "
        "black-subtracted, normalised, bilinear-demosaiced and downscaled (default x4); the sRGB rendered by "
        "LibRaw or one of our camera profiles. Writes <out>/<camera model>/<split>/{sRGB,raw}/<stem>.png.")
    parser.add_argument("dir", nargs="+", help="folders of RAW files (or RAW files)")
    parser.add_argument("--out", required=True, help="dataset root")
    parser.add_argument("--split", default="train", help="split folder")
    parser.add_argument("--camera-folder", default=None, help="camera folder name (default: each file's model)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_raw_options(parser, downscale=4, camera_flags=("--camera-profile", "--camera"))
    parser.set_defaults(func=_from_raw)
