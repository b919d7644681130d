"""Benchmark: can ``rawmamba_tiny`` overfit ONE synthetic (sRGB, RAW) image pair on the CPU?

A capacity and wiring check, not a generalisation result: the network sees one image with 1.5%
grid metadata (one RAW sample per 8x8 cell) and is trained with Adam on the MSE to the full RAW.
It prints the PSNR curve and writes ``benchmarks/results/overfit_tiny.json``.

The pair is made with plain torch ops (no dataset, no download): a raw-RGB scene of smooth colour
blobs, rectangles and fine texture; an ISP of white balance, colour matrix, a local tone map driven
by blurred luminance, sRGB-like gamma, an S-curve, and 8-bit quantisation.

    .venv/bin/python benchmarks/overfit_tiny.py --steps 300 --size 128 [--no-global-prior]
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from rawmamba.metadata import grid_mask
from rawmamba.metrics import psnr
from rawmamba.models import create_model
from rawmamba.train.checkpoint import code_version

RESULTS = Path(__file__).resolve().parent / "results" / "overfit_tiny.json"


def synthetic_pair(size: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """A ``(3, size, size)`` linear raw-RGB scene and its rendered 8-bit sRGB, both in [0, 1]."""
    yy, xx = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    raw = 0.05 + 0.1 * torch.rand(3, 1, 1, generator=gen) * (xx + yy)
    for _ in range(12):  # smooth coloured blobs
        cx, cy, r = torch.rand(3, generator=gen)
        blob = torch.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (0.02 + 0.05 * r))
        raw = raw + 0.35 * torch.rand(3, 1, 1, generator=gen) * blob
    for _ in range(6):  # hard-edged rectangles
        x0, y0, wx, wy = torch.rand(4, generator=gen) * torch.tensor([0.8, 0.8, 0.3, 0.3])
        box = ((xx > x0) & (xx < x0 + wx) & (yy > y0) & (yy < y0 + wy)).float()
        raw = raw * (1 - box) + box * 0.6 * torch.rand(3, 1, 1, generator=gen)
    texture = F.interpolate(torch.rand(1, 1, size // 2, size // 2, generator=gen), size=(size, size), mode="bilinear")
    raw = (0.45 * raw * (0.9 + 0.2 * texture[0])).clamp(0, 1)  # exposed so that little of the sRGB clips

    wb = torch.tensor([1.9, 1.0, 1.5]).view(3, 1, 1)
    ccm = torch.tensor([[1.6, -0.45, -0.15], [-0.25, 1.5, -0.25], [-0.05, -0.5, 1.55]])
    lin = torch.einsum("ij,jhw->ihw", ccm, (raw * wb).clamp(0, 1)).clamp(0, 1)
    luma = lin.mean(0, keepdim=True)[None]
    local = F.avg_pool2d(luma, 15, stride=1, padding=7, count_include_pad=False)[0]
    lin = (lin * (0.35 + local) / (0.35 + local * local.mean() * 2)).clamp(0, 1)  # local tone map
    srgb = lin ** (1 / 2.2)
    srgb = 0.6 * srgb + 0.4 * (3 * srgb**2 - 2 * srgb**3)  # mild S-curve
    return raw, (srgb * 255).round() / 255


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128, help="image side in pixels")
    parser.add_argument("--steps", type=int, default=300, help="Adam steps")
    parser.add_argument("--lr", type=float, default=2e-3, help="Adam learning rate (cosine decay to 1%%)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the scene and the initialisation")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument(
        "--no-global-prior", dest="global_prior", action="store_false", help="the paper's model, without our prior"
    )
    parser.add_argument("--output", type=Path, default=RESULTS, help="where to write the JSON result")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(args.seed)
    torch.manual_seed(args.seed)
    raw, srgb = synthetic_pair(args.size, gen)
    mask = grid_mask(args.size, args.size, 8)
    x, target = srgb[None, None], raw[None, None]
    meta_srgb, meta_raw, meta_mask = (srgb * mask)[None], (raw * mask)[None], mask[None]

    model = create_model("rawmamba_tiny", global_prior=args.global_prior)
    params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * s / args.steps))
    )
    print(f"rawmamba_tiny: {params} parameters; {args.size}x{args.size} image, {int(mask.sum())} metadata samples")
    curve: list[tuple[int, float]] = []
    start = time.perf_counter()
    for step in range(1, args.steps + 1):
        pred = model(x, meta_srgb, meta_raw, meta_mask)
        loss = F.mse_loss(pred, target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step == 1 or step % 25 == 0 or step == args.steps:
            db = psnr(pred.detach(), target).item()
            curve.append((step, round(db, 2)))
            print(f"step {step:4d}  loss {loss.item():.3e}  PSNR {db:6.2f} dB  ({time.perf_counter() - start:6.1f} s)")
    seconds = time.perf_counter() - start
    model.eval()
    with torch.no_grad():
        final = psnr(model(x, meta_srgb, meta_raw, meta_mask), target).item()
    print(f"final PSNR {final:.2f} dB after {args.steps} steps in {seconds:.0f} s")
    result = {
        "commit": code_version(),
        "torch": torch.__version__,
        "device": f"cpu ({platform.processor() or platform.machine()}), {args.threads} threads",
        "model": "rawmamba_tiny",
        "global_prior": args.global_prior,
        "parameters": params,
        "size": args.size,
        "steps": args.steps,
        "lr": args.lr,
        "final_psnr_db": round(final, 2),
        "seconds": round(seconds, 1),
        "curve": curve,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
