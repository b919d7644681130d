"""Draw a training run's ``log.jsonl`` (written by ``rawmamba train``) as a PNG loss/PSNR curve.

    .venv/bin/python benchmarks/plot_training_log.py runs/x/log.jsonl --out curve.png [--smooth 20]

Two panels over the optimiser step: the loss (eq. 18, log scale) and the training-batch PSNR, each
raw (light) and as a moving average (dark). Several logs (e.g. the two stages of a warm-started run)
are drawn one after the other on the same step axis. Pillow only, no plotting library.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

WIDTH, PANEL, MARGIN = 900, 260, 50


def read_logs(paths: list[Path]) -> list[dict]:
    """Records of every log in turn, steps shifted so that each log continues the previous one."""
    records, offset = [], 0
    for path in paths:
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        records += [{**row, "step": row["step"] + offset, "stage": str(path)} for row in rows]
        offset = records[-1]["step"] if records else offset
    return records


def moving_average(values: list[float], window: int) -> list[float]:
    out, total = [], 0.0
    for index, value in enumerate(values):
        total += value - (values[index - window] if index >= window else 0.0)
        out.append(total / min(index + 1, window))
    return out


def draw_panel(draw, top: int, steps: list[int], values: list[float], smooth: int, label: str, log: bool) -> None:
    font = ImageFont.load_default()
    transform = (lambda v: math.log10(max(v, 1e-12))) if log else (lambda v: v)
    ys = [transform(v) for v in values]
    low, high = min(ys), max(ys)
    high = high if high > low else low + 1
    x_of = lambda s: MARGIN + (WIDTH - 2 * MARGIN) * (s - steps[0]) / max(steps[-1] - steps[0], 1)  # noqa: E731
    y_of = lambda v: top + PANEL - 20 - (PANEL - 40) * (v - low) / (high - low)  # noqa: E731
    draw.rectangle([MARGIN, top + 20, WIDTH - MARGIN, top + PANEL - 20], outline=(160, 160, 160))
    draw.line([(x_of(s), y_of(v)) for s, v in zip(steps, ys, strict=True)], fill=(190, 205, 235), width=1)
    draw.line([(x_of(s), y_of(v)) for s, v in zip(steps, moving_average(ys, smooth), strict=True)],
              fill=(20, 60, 160), width=2)
    shown = (lambda v: f"{10 ** v:.3g}") if log else (lambda v: f"{v:.1f}")
    draw.text((MARGIN, top + 4), f"{label} (moving average of {smooth} points)", fill=(0, 0, 0), font=font)
    draw.text((4, top + 20), shown(high), fill=(0, 0, 0), font=font)
    draw.text((4, top + PANEL - 30), shown(low), fill=(0, 0, 0), font=font)
    draw.text((MARGIN, top + PANEL - 16), f"step {steps[0]}", fill=(0, 0, 0), font=font)
    draw.text((WIDTH - MARGIN - 60, top + PANEL - 16), f"step {steps[-1]}", fill=(0, 0, 0), font=font)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("logs", type=Path, nargs="+", help="log.jsonl files, in training order")
    parser.add_argument("--out", type=Path, required=True, help="PNG to write")
    parser.add_argument("--smooth", type=int, default=20, help="moving-average window, in logged points")
    args = parser.parse_args()
    records = read_logs(args.logs)
    if len(records) < 2:
        raise SystemExit("need at least two logged points to draw a curve")
    steps = [r["step"] for r in records]
    image = Image.new("RGB", (WIDTH, 2 * PANEL), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    draw_panel(draw, 0, steps, [r["loss"] for r in records], args.smooth, "training loss (log scale)", True)
    draw_panel(draw, PANEL, steps, [r["psnr"] for r in records], args.smooth, "training-batch PSNR (dB)", False)
    image.save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
