"""``rawmamba derender``: turn an sRGB image or video back into RAW files with a trained network.

Image: ``rawmamba derender IMAGE.png --metadata META.npz --out RAW.tiff|RAW.npy``. The metadata file
(``rawmamba.metadata`` format) must be for this image's size (half of it for packed Bayer metadata, when
the sRGB is resized to half to match). Video: ``rawmamba derender FRAMES_DIR|VIDEO.mp4 --first-raw RAW0
--out OUT_DIR``: the first frame's RAW is the metadata, every frame is de-rendered window by window and
written as ``OUT_DIR/<frame stem>.tiff`` (``<index:05d>.tiff`` for a video file) while the next frames
are read.

RAW files written: raw-RGB metadata gives ``(H, W, 3)`` images, packed Bayer metadata the unpacked
``(H, W)`` mosaic in the metadata's CFA pattern (``--cfa`` for ``--first-raw``). 16-bit TIFFs hold
``round(clip(x) * white_level)``; ``.npy`` files hold float32 values in [0, 1], channels last; ``.dng``
files (``--frame-format dng`` for video) are Bayer (mosaic) or LinearRaw (raw-RGB) DNGs with the CFA,
levels, white balance and colour matrix of ``--camera-info CAPTURE.json`` (``rawmamba capture``), else
RGGB, black 0, white ``--white-level`` and a linear-sRGB camera (``rawmamba.rawio.dng``). Input RAW
(``--first-raw``) is divided by the same ``--white-level`` (default 65535; 16383 for RVD-style 14-bit
data) or, for a float ``.npy``, taken as it is.

Every output is written under a temporary name and renamed; existing outputs are kept unless ``--force``.
"""

from __future__ import annotations

import argparse

from rawmamba.cli_choices import BLENDS, REFINEMENTS


def _run(args) -> int:
    from rawmamba.derender_files import run  # torch and the network: imported only to run, not for --help

    return run(args)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "derender",
        help="de-render an sRGB image or video to RAW files with a trained network",
        description="De-render an sRGB image (with a metadata file of sampled RAW pixels) or a video (a folder "
        "of frames sorted by name, or a video file, with the first frame's RAW) to RAW. Images are written as a "
        "16-bit TIFF, float32 .npy or DNG; video frames as 16-bit TIFFs or DNGs, window by window. Large images can be "
        "processed in overlapping tiles with blended seams (--tile).",
        epilog="examples: rawmamba derender photo.png --metadata photo.meta.npz --out photo.raw.tiff\n"
        "          rawmamba derender frames/ --first-raw frame0.tiff --out raw_frames/ --window 5",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("input", help="sRGB image (PNG/TIFF/JPEG), folder of frames, or video file")
    parser.add_argument("--out", required=True, help="RAW.tiff / RAW.npy / RAW.dng (image) or an output folder (video)")
    parser.add_argument("--metadata", help="image task: metadata .npz written by rawmamba.metadata.save_metadata")
    parser.add_argument("--first-raw", help="video task: RAW of the first frame (.tiff, 16-bit .png, or .npy)")
    parser.add_argument("--checkpoint", help="checkpoint stem or .safetensors path (default: the bundled model)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16"), help="bf16: autocast (GPU)")
    parser.add_argument("--refinement", choices=REFINEMENTS,
                        help="image task: 'rbf' makes the output agree with the metadata's RAW samples (their "
                        "residual interpolated in colour + position, about 6 microseconds per pixel on one "
                        "core, parallel over cores; 23 without numba), "
                        "'none' keeps the network's output (default: the checkpoint's setting; the bundled "
                        "model's is rbf)")
    parser.add_argument("--tile", type=int, default=0, help="tile side in pixels; 0 processes the whole frame")
    parser.add_argument("--overlap", type=int, default=64, help="minimum overlap between tiles in pixels")
    parser.add_argument("--blend", default="cosine", choices=BLENDS, help="feathering ramp across tile overlaps")
    parser.add_argument("--window", type=int, default=5, help="video frames per network call")
    parser.add_argument("--cfa", default="RGGB", help="Bayer pattern of a --first-raw mosaic")
    parser.add_argument("--white-level", type=float, default=65535.0,
                        help="RAW value of 1.0 in 16-bit files read and written")
    parser.add_argument("--frame-format", choices=("tiff", "dng"), default="tiff", help="video frame files")
    parser.add_argument("--camera-info", help="capture JSON (rawmamba capture) whose CFA, levels, white balance and "
                        "colour matrix go into DNG outputs")
    parser.add_argument("--force", action="store_true", help="overwrite existing outputs")
    parser.set_defaults(func=_run)
