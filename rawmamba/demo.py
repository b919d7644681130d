"""``rawmamba demo`` (its arguments: :mod:`rawmamba.demo_cli`): see de-rendering work in minutes, on a machine
with nothing downloaded.

Makes two synthetic test cases with the camera-pipeline simulator (an image with 1.5% grid metadata;
a short video with its first frame's RAW as metadata), runs the bundled ``rawmamba_tiny`` and simple
baselines on both, prints PSNR/SSIM side by side, and writes a folder of pictures: for each case the
sRGB input, the true RAW, every method's RAW (all shown with the same gain) and their error heat-maps.
Video scores follow the RVD protocol's rule: the metadata frame (frame 1) is not scored.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from rawmamba.baselines import GlobalColourFit, InverseGamma, SampleInterpolation
from rawmamba.data import synth_image, synth_video
from rawmamba.data.io import atomic_path
from rawmamba.demo_cli import DEMO_SEED
from rawmamba.inference import NetworkMethod, bundled_checkpoint
from rawmamba.metadata import first_frame_metadata, grid_mask, sample_image_metadata
from rawmamba.metrics import psnr, ssim

ERROR_SCALE = 0.05  # absolute RAW error shown as the hottest colour in the heat-maps


@dataclass
class Case:
    name: str
    srgb: torch.Tensor  # (T, 3, H, W)
    raw: torch.Tensor  # (T, 3, H, W)
    metadata: object
    scored: slice  # frames that count


def make_cases(seed: int = DEMO_SEED) -> list[Case]:
    """The image and the video case, a pure function of ``seed``."""
    image = synth_image(seed, 0, height=256, width=384)
    mask = grid_mask(256, 384, rng=torch.Generator().manual_seed(seed))
    video = synth_video(seed, 0, height=192, width=320, frames=6)
    image_metadata = sample_image_metadata(image.srgb, image.raw, mask)
    return [
        Case("image", image.srgb[None], image.raw[None], image_metadata, slice(0, 1)),
        Case("video", video.srgb, video.raw, first_frame_metadata(video.srgb, video.raw), slice(1, None)),
    ]


_HEAT = np.array([[0, 0, 0], [80, 18, 123], [190, 55, 82], [250, 140, 10], [252, 255, 164]], dtype=np.float32)


def heat_map(error: torch.Tensor, scale: float = ERROR_SCALE) -> np.ndarray:
    """``(H, W)`` absolute error -> ``(H, W, 3)`` uint8, black (0) through purple, red, orange to yellow (>= scale)."""
    position = (error.clamp(0, scale) / scale).numpy() * (len(_HEAT) - 1)
    low = np.floor(position).astype(int).clip(0, len(_HEAT) - 2)
    fraction = (position - low)[..., None]
    return (_HEAT[low] * (1 - fraction) + _HEAT[low + 1] * fraction).astype(np.uint8)


def _to_uint8(image: torch.Tensor) -> np.ndarray:
    return (image.clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)


def comparison_picture(case: Case, predictions: dict[str, torch.Tensor], scores: dict[str, tuple[float, float]]):
    """Top row: sRGB, true RAW, each method's RAW; bottom row: each method's error heat-map (last frame)."""
    frame = -1
    truth = case.raw[frame]
    gain = 1.0 / max(float(torch.quantile(truth.flatten(), 0.99)), 1e-4)  # one gain for every RAW shown

    def show_raw(raw: torch.Tensor) -> np.ndarray:
        return _to_uint8((raw * gain).clamp(0, 1) ** (1 / 2.2))

    height, width = truth.shape[-2:]
    label = 14
    columns = 2 + len(predictions)
    sheet = Image.new("RGB", (columns * width, 2 * (height + label)), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()

    def put(array: np.ndarray, column: int, row: int, text: str) -> None:
        top = row * (height + label)
        draw.text((column * width + 3, top + 1), text, fill=(235, 235, 235), font=font)
        sheet.paste(Image.fromarray(array), (column * width, top + label))

    put(_to_uint8(case.srgb[frame]), 0, 0, "sRGB input")
    put(show_raw(truth), 1, 0, "true RAW")
    legend = torch.linspace(0, ERROR_SCALE, width).expand(height, width)
    put(heat_map(legend), 1, 1, f"error colour scale: 0 (left) .. {ERROR_SCALE} (right)")
    for column, (name, pred) in enumerate(predictions.items(), start=2):
        value, similarity = scores[name]
        put(show_raw(pred[frame]), column, 0, f"{name}: {value:.2f} dB / {similarity:.4f}")
        put(heat_map((pred[frame] - truth).abs().mean(0)), column, 1, f"{name} error")
    return sheet


def run_demo(out: Path, *, checkpoint: Path | None, device: str, seed: int) -> list[tuple]:
    """Run every method on both cases; write pictures and ``results.md`` to ``out``; returns the table rows
    ``(case, method, psnr, ssim, seconds)``."""
    started = time.perf_counter()
    network = NetworkMethod.from_checkpoint(checkpoint or bundled_checkpoint(), device=device)
    methods = [network, GlobalColourFit(), SampleInterpolation(), InverseGamma()]
    print("making the synthetic test cases ...", flush=True)
    rows = []
    for case in make_cases(seed):
        predictions, scores = {}, {}
        for method in methods:
            if case.metadata.kind not in method.metadata_kinds:
                continue
            tic = time.perf_counter()
            pred = method.derender(case.srgb, case.metadata)
            seconds = time.perf_counter() - tic
            scored_pred, scored_truth = pred[case.scored].double(), case.raw[case.scored].double()
            value = float(psnr(scored_pred, scored_truth).mean())
            similarity = float(ssim(scored_pred, scored_truth).mean())
            predictions[method.name], scores[method.name] = pred, (value, similarity)
            rows.append((case.name, method.name, value, similarity, seconds))
            print(f"  {case.name:5s}  {method.name:14s} PSNR {value:6.2f} dB  SSIM {similarity:.4f}  ({seconds:.1f} s)")
        picture = comparison_picture(case, predictions, scores)
        with atomic_path(out / f"{case.name}_comparison.png") as tmp:
            picture.save(tmp, format="PNG")
    table = ["| case | method | PSNR (dB) | SSIM | seconds |", "|---|---|---|---|---|"]
    table += [f"| {c} | {m} | {p:.2f} | {s:.4f} | {t:.2f} |" for c, m, p, s, t in rows]
    with atomic_path(out / "results.md") as tmp:
        tmp.write_text("\n".join(table) + "\n")
    print(f"demo finished in {time.perf_counter() - started:.0f} s; pictures and results.md in {out}/")
    return rows
