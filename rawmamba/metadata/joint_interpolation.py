"""Interpolation of per-sample values to every pixel in a joint colour + position space (SAM-style).

After Punnappurath & Brown (2021): every pixel and every RAW sample gets the feature

    f = [r, g, b, x * position_scale, y * position_scale]      (sRGB in [0, 1], x, y in pixels)

and a radial-basis-function interpolant (``scipy.interpolate.RBFInterpolator``, the ``neighbors`` nearest
samples of each pixel, exact: ``smoothing = 0``) carries the samples' values to every pixel, so that nearby
samples of similar colour dominate. With the default ``position_scale`` of 1/128, two neighbouring samples of
an 8x8 grid are as far apart as a colour difference of 1/16. The default kernel is ``linear`` (``-r``) with a
constant polynomial term (scale-free, no shape parameter; thin-plate splines need a degree-1 polynomial whose
local systems are singular in flat regions).

Users: the SAM-style baseline (``rawmamba.baselines.sam``), which interpolates the residual of a global colour
fit, and RAWMamba's sample refinement (``rawmamba.models.sample_refinement``), which interpolates the
residual of the network's own prediction. Arithmetic is float64 on the CPU; pixels are evaluated in chunks so
that memory stays bounded for large images.

Fast path: for the default interpolant (``linear``, degree 0, ``neighbors`` set) and with numba installed,
:mod:`rawmamba.metadata.nearest_samples` finds every pixel's nearest samples (exact, on position buckets) and
:mod:`rawmamba.metadata.joint_interpolation_kernels` solves the same local systems as scipy without its Python
loop over neighbourhoods, both in parallel on torch's threads. The result equals scipy's within 1e-9 (tested)
wherever a pixel's ``neighbors``-th nearest sample is not tied with the next; at such ties the lower sample index
counts among the neighbours, where scipy's tree takes whichever its traversal meets first (flat or clipped colours
on a pixel grid: both are valid neighbourhoods, and the interpolants differ there). Measured on 2 threads, 32
neighbours, 1.5% grid samples (``python benchmarks/joint_interpolation_cpu.py``; see its results for 1 thread):
a 512x512 photograph, scipy 23 us per pixel (its loop holds the GIL), the fast path 3.4 us; the same photograph
at 3.1 MP, 2.9 us (search 0.9 us, systems 2.0 us; scipy's tree alone took 2.0 us). Other settings, or no numba,
use ``scipy.interpolate.RBFInterpolator``.
"""

from __future__ import annotations

import functools
import importlib

import numpy as np
import torch
from scipy.interpolate import RBFInterpolator

from rawmamba.errors import RawMambaError
from rawmamba.numba_support import numba_available, numba_threads

__all__ = ["KERNELS", "joint_features", "interpolate_samples"]

KERNELS = ("linear", "thin_plate_spline", "cubic", "quintic")
# Pixels per evaluation chunk: the features (5 float64) plus scipy's per-query neighbour systems stay far under
# a gigabyte.
CHUNK_PIXELS = 1 << 18
# the columns of joint_features that hold positions (x, y): the fast path's neighbour search buckets by them
POSITION_FEATURES = (3, 4)


def joint_features(srgb: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, position_scale: float) -> np.ndarray:
    """``(N, 5)`` float64 features ``[r, g, b, x * s, y * s]`` of ``(N, 3)`` colours at pixel ``rows``/``cols``."""
    position = torch.stack([cols, rows], dim=1).double() * position_scale
    return torch.cat([srgb.detach().cpu().double(), position], dim=1).numpy()


def interpolate_samples(
    srgb: torch.Tensor,
    rows: torch.Tensor,
    cols: torch.Tensor,
    values: torch.Tensor,
    *,
    position_scale: float = 1 / 128,
    neighbors: int | None = 32,
    kernel: str = "linear",
    degree: int = 0,
    sample_srgb: torch.Tensor | None = None,
) -> torch.Tensor:
    """Interpolate ``values`` known at the sample pixels to every pixel of ``srgb``.

    Args:
        srgb: ``(3, H, W)`` the image whose colours (at the samples and at every pixel) are the colour part of
            the features.
        rows, cols: ``(N,)`` the sample pixels.
        values: ``(N, C)`` the values at those pixels.
        position_scale: feature units per pixel of the position coordinates.
        neighbors: samples used for each pixel (at most ``N``; ``None`` for one global system, slow).
        kernel, degree: of the RBF (``KERNELS``; ``linear`` needs degree >= 0, the others >= 1 or 2).
        sample_srgb: ``(N, 3)`` the samples' colours when they are not ``srgb``'s at the sample pixels (the
            metadata of another frame); None: ``srgb``'s.

    Returns:
        ``(C, H, W)`` float64 on the CPU; equal to ``values`` at the sample pixels up to round-off.

    Raises:
        RawMambaError: no samples, mismatched lengths, an unknown kernel, or NaN or inf in the colours or values.
    """
    if kernel not in KERNELS:
        raise RawMambaError(f"joint interpolation: kernel must be one of {KERNELS}, got {kernel!r}")
    count = rows.numel()
    if count == 0 or cols.numel() != count or values.dim() != 2 or values.shape[0] != count:
        raise RawMambaError(
            f"joint interpolation: need N >= 1 sample rows, cols and (N, C) values, got {rows.numel()}, "
            f"{cols.numel()} and {tuple(values.shape)}"
        )
    _, height, width = srgb.shape
    rows, cols = rows.cpu(), cols.cpu()
    colours = srgb.detach().cpu()
    sample_colours = colours[:, rows, cols].T if sample_srgb is None else sample_srgb
    samples = joint_features(sample_colours, rows, cols, position_scale)
    sample_values = values.detach().cpu().double().numpy()
    if not (np.isfinite(samples).all() and np.isfinite(sample_values).all() and torch.isfinite(colours).all()):
        raise RawMambaError("joint interpolation: the colours or the sample values contain NaN or inf")
    neighbors = None if neighbors is None else min(neighbors, count)
    if kernel == "linear" and degree == 0 and neighbors is not None and numba_available():
        interpolator = LocalLinearInterpolator(samples, sample_values, neighbors)
    else:
        interpolator = RBFInterpolator(
            samples, sample_values, neighbors=neighbors, kernel=kernel, degree=degree, smoothing=0.0
        )
    flat = colours.reshape(3, -1).T
    out = np.empty((height * width, values.shape[1]))
    for start in range(0, height * width, CHUNK_PIXELS):
        index = torch.arange(start, min(start + CHUNK_PIXELS, height * width))
        features = joint_features(flat[index], index // width, index % width, position_scale)
        out[start : start + index.numel()] = interpolator(features)
    return torch.from_numpy(out).T.reshape(values.shape[1], height, width)


@functools.cache
def _compiled(module: str):
    """A numba module of the fast path (``joint_interpolation_kernels``, ``nearest_samples``), imported when first
    needed: ``import rawmamba`` never needs numba."""
    return importlib.import_module(f"rawmamba.metadata.{module}")


class LocalLinearInterpolator:
    """``RBFInterpolator(samples, values, neighbors=neighbors, kernel="linear", degree=0, smoothing=0)`` with
    compiled, parallel evaluation (see :mod:`rawmamba.metadata.joint_interpolation_kernels`), ties among equally
    near samples broken by their index (:mod:`rawmamba.metadata.nearest_samples`). Needs numba.

    Args:
        samples: ``(N, F)`` float64 sample features.
        values: ``(N, C)`` float64 values at the samples.
        neighbors: samples per local system, at most ``N``.
        position_features: the two feature columns the neighbour search buckets by (any two give the same
            result; positions, spread over the image, a fast search).
    """

    def __init__(self, samples: np.ndarray, values: np.ndarray, neighbors: int,
                 position_features: tuple[int, int] = POSITION_FEATURES) -> None:  # fmt: skip
        self.samples, self.values, self.neighbors = samples, values, neighbors
        self.grid = _compiled("nearest_samples").BucketGrid(samples, dims=position_features)

    def __call__(self, queries: np.ndarray) -> np.ndarray:
        """``(P, C)`` values at ``(P, F)`` query features; a singular local system (samples with equal features)
        defers to scipy, which raises as it always did."""
        kernels, threads = _compiled("joint_interpolation_kernels"), torch.get_num_threads()
        with numba_threads(threads):
            neighbours = self.grid.query(queries, self.neighbors)
            order = np.argsort(kernels.neighbourhood_keys(neighbours), kind="stable")
            starts = kernels.group_starts(neighbours, order)
            out = np.empty((len(queries), self.values.shape[1]))
            singular = kernels.evaluate_groups(queries, self.samples, self.values, neighbours, order, starts, out)
        if singular:
            return RBFInterpolator(self.samples, self.values, neighbors=self.neighbors, kernel="linear", degree=0)(
                queries
            )
        return out
