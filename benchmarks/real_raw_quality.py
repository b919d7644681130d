"""Real sensors, a foreign ISP: de-rendering LibRaw's rendering of real camera DNGs.

For every DNG in the real-RAW folder (default ``../shared/data/real-raw``), and every headerless dump
there whose layout is listed in ``HEADERLESS`` (wrapped losslessly into a DNG first, with its black and
white levels, white balance and, where known, colour matrix, so that LibRaw can render it):
- ground truth as the CAM data: the visible mosaic, black-subtracted and divided by (white - black)
  per channel, bilinear-demosaiced to raw-RGB, then downscaled x4 (area), as the CAM data was made
  from the NUS images;
- sRGB: LibRaw's own pipeline, ``rawpy.postprocess`` with its defaults (camera white balance, AHD
  demosaic, sRGB, auto-brightening, 8 bits) except ``user_flip=0`` so that it stays aligned with the
  mosaic; downscaled x4 the same way and re-quantised to 8 bits;
- metadata: one RAW sample per 8x8 cell (1.5625%) with a fixed seed;
- scores under the CAM protocol (16-bit PSNR and SSIM over the whole image).

RAWMamba runs as its checkpoint says (the bundled model: correction gate and sample refinement on) and again
with ``sample_refinement = "none"``, the network's own output; the SAM-style baseline is the same refinement
applied to a global colour fit instead of the network.

    .venv/bin/python benchmarks/real_raw_quality.py [--checkpoint CK] [--folder DIR]

Writes ``benchmarks/results/real_raw_quality.{json,md}``. Needs rawpy.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import rawpy
import torch
import torch.nn.functional as F

from rawmamba.baselines import GlobalColourFit, SampleInterpolation
from rawmamba.baselines.sam import SAMInterpolation
from rawmamba.inference import NetworkMethod, bundled_checkpoint
from rawmamba.isp import CFA, PUBLISHED_COLOR_MATRICES, demosaic_bilinear
from rawmamba.metadata import grid_mask, sample_image_metadata
from rawmamba.metrics import cam_psnr, cam_ssim
from rawmamba.rawio import HeaderlessLayout, open_raw
from rawmamba.rawio.dng import write_dng
from rawmamba.train.checkpoint import code_version

FOLDER = Path(__file__).resolve().parents[2] / "shared" / "data" / "real-raw"
RESULTS = Path(__file__).resolve().parent / "results"
PATTERNS = {"RGGB": CFA.RGGB, "BGGR": CFA.BGGR, "GRBG": CFA.GRBG, "GBRG": CFA.GBRG}
SCALE = 4  # the CAM data's downscaling
# Layouts of the folder's headerless dumps (its README). The test-chart sensor's colour matrix is unknown:
# its DNG gets the default (a linear-sRGB camera), which LibRaw applies like any other matrix.
HEADERLESS = {
    "nikon_d750_DSC_1339_crop_768x512_14bit_rggb__mushfiqulalam-isp.raw": HeaderlessLayout(
        width=768, height=512, bits=14, black=600, white=15520, wb=(1.949, 1.0, 1.344), camera="Nikon D750",
        rgb_xyz_matrix=tuple(v / 10000 for v in PUBLISHED_COLOR_MATRICES["Nikon D750"])),
    "openisp_test_1920x1080_10bit_rggb.raw": HeaderlessLayout(
        width=1920, height=1080, bits=10, wb=(1860 / 1024, 1.0, 1280 / 1024), camera="openISP test chart"),
}


def _cfa(raw: rawpy.RawPy) -> CFA:
    names = raw.color_desc.decode()
    letters = "".join(names[index] for index in raw.raw_pattern.flatten())
    return PATTERNS[letters]


def _downscale(image: torch.Tensor) -> torch.Tensor:
    height, width = (image.shape[-2] // (8 * SCALE)) * 8 * SCALE, (image.shape[-1] // (8 * SCALE)) * 8 * SCALE
    return F.avg_pool2d(image[None, :, :height, :width], SCALE)[0]


def load_pair(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """``(srgb, raw)`` of one DNG, both ``(3, H, W)`` in [0, 1], aligned, downscaled x4."""
    with rawpy.imread(str(path)) as raw:
        mosaic = raw.raw_image_visible.astype(np.float32)
        colours = raw.raw_colors_visible
        black = np.asarray(raw.black_level_per_channel, dtype=np.float32)[colours]
        normalised = np.clip((mosaic - black) / (raw.white_level - black), 0, 1)
        cfa = _cfa(raw)
        rendered = raw.postprocess(user_flip=0)
    if rendered.shape[:2] != mosaic.shape:
        raise RuntimeError(f"{path}: LibRaw rendered {rendered.shape[:2]}, the visible mosaic is {mosaic.shape}")
    height, width = (mosaic.shape[0] // 2) * 2, (mosaic.shape[1] // 2) * 2
    truth = demosaic_bilinear(torch.from_numpy(normalised[None, :height, :width]), cfa)
    srgb = torch.from_numpy(rendered[:height, :width].astype(np.float32) / 255).permute(2, 0, 1)
    srgb = torch.round(_downscale(srgb) * 255) / 255
    return srgb, _downscale(truth).clamp(0, 1)


def as_dng(path: Path, folder: Path) -> Path:
    """``path`` itself if it is a DNG, else its headerless dump written losslessly as a DNG into ``folder``."""
    if path.suffix.lower() == ".dng":
        return path
    with open_raw(path, HEADERLESS[path.name]) as raw:
        return write_dng(folder / f"{path.stem}.dng", raw.levels, raw.info)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=FOLDER, help="folder with real camera DNG files")
    parser.add_argument("--checkpoint", type=Path, help="RAWMamba checkpoint (default: the bundled model)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the metadata sample positions")
    args = parser.parse_args()
    files = sorted([*args.folder.glob("*.dng"), *(args.folder / name for name in HEADERLESS)])
    files = [path for path in files if path.is_file()]
    if not files:
        raise SystemExit(f"no .dng files or known headerless dumps in {args.folder}")
    scratch = tempfile.TemporaryDirectory()
    checkpoint = args.checkpoint or bundled_checkpoint()
    network_only = NetworkMethod.from_checkpoint(checkpoint, name="RAWMamba, no refinement")
    network_only.model.sample_refinement = "none"
    methods = [NetworkMethod.from_checkpoint(checkpoint), network_only, GlobalColourFit(), SampleInterpolation(),
               SAMInterpolation()]
    rows = []
    for path in files:
        srgb, truth = load_pair(as_dng(path, Path(scratch.name)))
        mask = grid_mask(*srgb.shape[-2:], rng=torch.Generator().manual_seed(args.seed))
        metadata = sample_image_metadata(srgb, truth, mask)
        for method in methods:
            started = time.perf_counter()
            pred = method.derender(srgb[None], metadata)[0]
            seconds = time.perf_counter() - started
            row = {"file": path.name, "size": list(srgb.shape[-2:]), "method": method.name,
                   "psnr": float(cam_psnr(pred, truth)), "ssim": float(cam_ssim(pred, truth)), "seconds": seconds}
            rows.append(row)
            print(json.dumps(row), flush=True)
    RESULTS.mkdir(exist_ok=True)
    result = {"commit": code_version(), "torch": torch.__version__, "device": "cpu", "checkpoint": str(checkpoint),
              "protocol": "CAM (16-bit PSNR/SSIM), grid metadata 1/64, LibRaw postprocess defaults, x4 downscale",
              "rows": rows}
    (RESULTS / "real_raw_quality.json").write_text(json.dumps(result, indent=2) + "\n")
    names = [method.name for method in methods]
    table = ["| file | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for path in files:
        cells = [f"{r['psnr']:.2f} / {r['ssim']:.4f}" for r in rows if r["file"] == path.name]
        table.append(f"| {path.name} | " + " | ".join(cells) + " |")
    (RESULTS / "real_raw_quality.md").write_text("PSNR (dB) / SSIM, CAM protocol\n\n" + "\n".join(table) + "\n")
    print("\n".join(table))


if __name__ == "__main__":
    main()
