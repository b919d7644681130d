"""Time the joint (colour + position) interpolation of sample values on CPU: the sample refinement's cost.

    python benchmarks/joint_interpolation_cpu.py [--threads 1 2] [--out benchmarks/results/joint_interpolation_cpu.json]

Cases: scikit-image's 512x512 astronaut, and the same upscaled (bicubic, plus seeded noise of 0.01) to 1536x2048
(3.1 MP, where the refinement was about half of ``rawmamba derender``); one sample per 8x8 cell at the cell
centre, three random values per sample, 32 neighbours (the defaults of :func:`interpolate_samples`). For each
thread count: the whole interpolation (fast path with numba, median over repeats), and its neighbour search
alone (the bucketed search of ``rawmamba.metadata.nearest_samples``, in the same chunks of pixels as the fast
path); the local systems are the rest. Also scipy's ``KDTree.query`` and the row sort it needs (the fast path's
search until 2026-11-27) on the same chunks. On the 512x512 case also scipy's ``RBFInterpolator`` (one thread:
its Python loop holds the GIL) and the largest difference from it (its tree breaks ties among equally near
samples its own way). Writes JSON with the code version, torch version, device and threads.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scan_cpu import cpu_environment
from scipy.interpolate import RBFInterpolator
from scipy.spatial import KDTree

from rawmamba.metadata import grid_mask
from rawmamba.metadata.joint_interpolation import CHUNK_PIXELS, POSITION_FEATURES, interpolate_samples, joint_features
from rawmamba.metadata.nearest_samples import BucketGrid
from rawmamba.numba_support import numba_threads

NEIGHBORS = 32
POSITION_SCALE = 1 / 128


def photograph(height: int, width: int) -> torch.Tensor:
    """(3, height, width) sRGB in [0, 1]: the astronaut, resized (and with seeded noise) when not 512x512."""
    from skimage import data

    image = torch.from_numpy(data.astronaut()).permute(2, 0, 1).float() / 255
    if (height, width) == tuple(image.shape[1:]):
        return image
    image = F.interpolate(image[None], size=(height, width), mode="bicubic", align_corners=False)[0]
    noise = torch.randn(image.shape, generator=torch.Generator().manual_seed(0))
    return (image + 0.01 * noise).clamp(0, 1)


def median_seconds(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run_case(height: int, width: int, threads: int, repeats: int, with_scipy: bool) -> dict:
    torch.set_num_threads(threads)
    image = photograph(height, width)
    rows, cols = grid_mask(height, width)[0].nonzero(as_tuple=True)
    values = torch.rand(rows.numel(), 3, generator=torch.Generator().manual_seed(1))
    interpolate_samples(image[:, :64, :64], rows[:8] % 64, cols[:8] % 64, values[:8])  # compile the kernels

    def interpolate():
        return interpolate_samples(image, rows, cols, values, position_scale=POSITION_SCALE, neighbors=NEIGHBORS)

    samples = joint_features(image[:, rows, cols].T, rows, cols, POSITION_SCALE)
    pixels = torch.arange(height * width)
    queries = joint_features(image.reshape(3, -1).T, pixels // width, pixels % width, POSITION_SCALE)
    grid = BucketGrid(samples, dims=POSITION_FEATURES)
    tree = KDTree(samples)

    def search():  # in the chunks of pixels that the interpolation queries at a time
        with numba_threads(threads):
            for start in range(0, len(queries), CHUNK_PIXELS):
                grid.query(queries[start : start + CHUNK_PIXELS], NEIGHBORS)

    def tree_search():  # scipy's tree, as the fast path searched until 2026-11-27, and the row sort it needed
        for start in range(0, len(queries), CHUNK_PIXELS):
            _, neighbours = tree.query(queries[start : start + CHUNK_PIXELS], NEIGHBORS, workers=threads)
            np.sort(neighbours, axis=1)

    total, search_s = median_seconds(interpolate, repeats), median_seconds(search, repeats)
    row = {
        "height": height,
        "width": width,
        "threads": threads,
        "samples": rows.numel(),
        "total_s": total,
        "search_s": search_s,
        "systems_s": total - search_s,
        "kdtree_search_s": median_seconds(tree_search, repeats),
        "us_per_pixel": 1e6 * total / (height * width),
    }
    if with_scipy:
        start = time.perf_counter()
        reference = RBFInterpolator(samples, values.double().numpy(), neighbors=NEIGHBORS, kernel="linear", degree=0)
        expected = reference(queries)
        row["scipy_s"] = time.perf_counter() - start
        row["max_abs_difference_from_scipy"] = float(np.abs(interpolate().reshape(3, -1).T.numpy() - expected).max())
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/joint_interpolation_cpu.json"))
    args = parser.parse_args()
    rows = []
    for height, width in ((512, 512), (1536, 2048)):
        for threads in args.threads:
            with_scipy = (height, width) == (512, 512) and threads == args.threads[0]
            row = run_case(height, width, threads, args.repeats, with_scipy)
            print(json.dumps(row), flush=True)
            rows.append(row)
    result = {
        "benchmark": "joint interpolation (sample refinement) on CPU",
        **cpu_environment(args.threads),
        "neighbors": NEIGHBORS,
        "position_scale": POSITION_SCALE,
        "statistic": "median wall-clock seconds over the repeats, after one warm-up; systems_s = total - search",
        "results": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
