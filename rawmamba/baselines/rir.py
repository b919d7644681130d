"""RIR-style de-rendering: a compact global model of the ISP fitted at capture time, stored as parameters.

After Nguyen & Brown (2016), who store a parametric model of the camera ISP (white balance, colour
matrix, tone curve and an RBF gamut/tone correction, about 64 KB) with the sRGB image and invert it. We
fit the *inverse* direction directly, sRGB -> RAW, on the full (sRGB, RAW) pair of the capture:

    raw = diag(gains) @ matrix @ g(srgb) + lut(srgb)

- ``g``: one monotone non-decreasing piecewise-linear curve per sRGB channel with ``segments + 1``
  uniform knots on [0, 1] (undoes the sRGB OETF and the global tone curve);
- ``matrix`` ``(C_raw, 3)`` with rows summing to one and ``gains`` ``(C_raw,)`` the row sums: the inverse
  colour matrix and the white balance (for packed Bayer RAW, ``C_raw = 4`` rows R, Gr, Gb, B);
- ``lut``: a ``(C_raw, L, L, L)`` additive correction on the sRGB cube, trilinear, fitted to the residual
  with a smoothness penalty (look edits, hue-dependent rendering: what the separable model misses).

``g`` and the matrix are fitted by alternating least squares (the curves with non-negative increments,
bounded-variable least squares; the matrix unconstrained), initialised with the inverse sRGB OETF; the
LUT then by regularised least squares. Everything is global: local tone mapping and other spatially
varying steps are not modelled (compare SAM- and INF-style methods, which are spatially aware).

The parameter file is a compressed ``.npz`` (format ``rawmamba-rir`` version 1: a JSON ``header`` and
float32 ``knots (3, K+1)``, ``matrix (C_raw, 3)``, ``gains (C_raw,)``, ``lut (C_raw, L, L, L)``), written
atomically and refused if larger than ``max_bytes`` (64 KB by default, the paper's budget).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse
import scipy.sparse.linalg
import torch
from scipy.optimize import lsq_linear

from rawmamba.baselines.base import DerenderMethod, as_frames
from rawmamba.errors import RawMambaError
from rawmamba.isp import srgb_oetf_inverse

__all__ = ["RIRParameters", "RIRFit", "trilinear_weights"]

FORMAT_NAME = "rawmamba-rir"
FORMAT_VERSION = 1
MAX_BYTES = 64 * 1024


@dataclass(eq=False)
class RIRParameters:
    """The fitted global ISP model (see the module docstring); all arrays float64 tensors.

    Args:
        knots: ``(3, K+1)`` values of the per-channel curves ``g`` at ``0, 1/K, ..., 1`` (non-decreasing).
        matrix: ``(C_raw, 3)`` colour matrix, rows summing to one (unless a row sum was ~0).
        gains: ``(C_raw,)`` per-RAW-channel gains (white balance).
        lut: ``(C_raw, L, L, L)`` additive correction indexed ``[channel, r, g, b]``.
    """

    knots: torch.Tensor
    matrix: torch.Tensor
    gains: torch.Tensor
    lut: torch.Tensor

    kind = "parameters"

    @property
    def raw_channels(self) -> int:
        return int(self.matrix.shape[0])


def trilinear_weights(rgb: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Corners and weights of trilinear interpolation on a ``size^3`` grid over [0, 1]^3.

    Args:
        rgb: ``(N, 3)`` colours (clipped to [0, 1]).
        size: grid points per axis (>= 2).

    Returns:
        ``(N, 8)`` flat node indices ``(r * size + g) * size + b`` and ``(N, 8)`` weights summing to one.
    """
    scaled = rgb.clamp(0, 1) * (size - 1)
    base = scaled.floor().clamp(max=size - 2)
    frac = scaled - base
    base = base.long()
    indices, weights = [], []
    for corner in range(8):
        offset = torch.tensor([(corner >> 2) & 1, (corner >> 1) & 1, corner & 1])
        node = base + offset
        indices.append((node[:, 0] * size + node[:, 1]) * size + node[:, 2])
        weights.append(torch.prod(torch.where(offset.bool(), frac, 1 - frac), dim=1))
    return torch.stack(indices, 1), torch.stack(weights, 1)


def _ramps(values: torch.Tensor, segments: int) -> torch.Tensor:
    """``(N,)`` -> ``(N, segments + 1)``: a one (offset) and the ramps ``clip(K s - (k - 1), 0, 1)``, k = 1..K."""
    k = torch.arange(1, segments + 1, dtype=values.dtype)
    ramps = (segments * values[:, None] - (k - 1)).clamp(0, 1)
    return torch.cat([torch.ones_like(values[:, None]), ramps], dim=1)


def _curves(srgb: torch.Tensor, knots: torch.Tensor) -> torch.Tensor:
    """Apply the per-channel piecewise-linear curves: ``(N, 3) -> (N, 3)``."""
    segments = knots.shape[1] - 1
    theta = torch.cat([knots[:, :1], knots.diff(dim=1)], dim=1)  # offset, increments
    return torch.stack([_ramps(srgb[:, c], segments) @ theta[c] for c in range(3)], dim=1)


def _lut_apply(srgb: torch.Tensor, lut: torch.Tensor) -> torch.Tensor:
    """Trilinear look-up of ``(C, L, L, L)`` at ``(N, 3)`` colours: ``(N, C)``."""
    indices, weights = trilinear_weights(srgb, lut.shape[-1])
    flat = lut.reshape(lut.shape[0], -1)
    return torch.einsum("cnj,nj->nc", flat[:, indices], weights)


class RIRFit(DerenderMethod):
    """Fit a compact global ISP model at capture time (``capture``/``fit``), de-render by applying it.

    Args:
        segments: pieces of each monotone tone curve (``segments + 1`` knots).
        lut_size: points per axis of the correction LUT (``C_raw * lut_size^3`` float32 values; 0 disables it).
        lut_smoothness: weight of the LUT's first-difference penalty, relative to the mean number of pairs
            per LUT node; fills LUT regions the image has no colours in smoothly.
        iterations: alternating least-squares rounds for the curves and the matrix.
        max_pairs: at most this many pixel pairs are used for fitting (every k-th pixel, no random draw).
        max_bytes: the largest parameter file ``save_metadata`` writes (the paper's 64 KB by default).
    """

    name = "rir"
    metadata_kinds = ("parameters",)

    def __init__(self, segments: int = 32, lut_size: int = 12, lut_smoothness: float = 1e-3, iterations: int = 8,
                 max_pairs: int = 65536, max_bytes: int = MAX_BYTES):
        if segments < 1 or iterations < 1 or max_pairs < 16 or lut_size < 0 or lut_size == 1:
            raise RawMambaError(f"rir: need segments >= 1, iterations >= 1, max_pairs >= 16 and lut_size 0 or >= 2, "
                                f"got {segments}, {iterations}, {max_pairs}, {lut_size}")
        if lut_smoothness < 0:
            raise RawMambaError(f"rir: lut_smoothness must be >= 0, got {lut_smoothness}")
        self.segments, self.lut_size, self.lut_smoothness = segments, lut_size, lut_smoothness
        self.iterations, self.max_pairs, self.max_bytes = iterations, max_pairs, max_bytes

    # ----- fitting -----
    def fit(self, srgb: torch.Tensor, raw: torch.Tensor) -> RIRParameters:
        """Fit the model to a full image pair.

        Args:
            srgb: ``(3, H, W)`` (or ``(T, 3, H, W)``: the first frame is used) sRGB in [0, 1].
            raw: ``(C_raw, H, W)`` (or ``(T, C_raw, H, W)``) RAW in [0, 1], same ``H, W``.
        """
        srgb, raw = as_frames(srgb, "srgb", self.name)[0], as_frames(raw, "raw", self.name)[0]
        if srgb.shape[0] != 3 or srgb.shape[-2:] != raw.shape[-2:]:
            raise RawMambaError(f"rir: srgb (3, H, W) and raw (C_raw, H, W) must match, got {tuple(srgb.shape)} "
                                f"and {tuple(raw.shape)}")
        x = srgb.reshape(3, -1).T.double().clamp(0, 1)
        y = raw.reshape(raw.shape[0], -1).T.double()
        stride = max(1, -(-x.shape[0] // self.max_pairs))
        x, y = x[::stride], y[::stride]
        knots, linear = self._fit_curves_and_matrix(x, y)
        lut = self._fit_lut(x, y - _curves(x, knots) @ linear.T, y.shape[1])
        sums = linear.sum(dim=1)
        gains = torch.where(sums.abs() > 1e-6, sums, torch.ones_like(sums))
        return RIRParameters(knots=knots, matrix=linear / gains[:, None], gains=gains, lut=lut)

    def _fit_curves_and_matrix(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Alternating least squares for ``y ~ g(x) @ M.T``; returns knots ``(3, K+1)`` and ``M (C_raw, 3)``."""
        segments = self.segments
        grid = torch.linspace(0, 1, segments + 1, dtype=torch.float64)
        knots = srgb_oetf_inverse(grid).repeat(3, 1)
        phi = torch.cat([_ramps(x[:, c], segments) for c in range(3)], dim=1)  # (N, 3(K+1))
        gram, cross = phi.T @ phi, phi.T @ y  # (3(K+1))^2, (3(K+1), C_raw)
        lower = np.tile(np.r_[-np.inf, np.zeros(segments)], 3)  # free offsets, non-negative increments
        matrix = self._solve_matrix(_curves(x, knots), y)
        for _ in range(self.iterations):
            # Curve step: A[(i,o),(c,k)] = M[o,c] phi[i,c,k], so A^T A = (M^T M)[c,c'] * gram and A^T y below.
            mtm = matrix.T @ matrix
            normal = gram * torch.kron(mtm, torch.ones(segments + 1, segments + 1, dtype=torch.float64))
            rhs = torch.einsum("cko,oc->ck", cross.reshape(3, segments + 1, -1), matrix).reshape(-1)
            normal += 1e-10 * normal.diagonal().mean() * torch.eye(normal.shape[0], dtype=torch.float64)
            chol = torch.linalg.cholesky(normal)
            target = torch.linalg.solve_triangular(chol, rhs[:, None], upper=False)[:, 0]
            theta = lsq_linear(chol.T.numpy(), target.numpy(), bounds=(lower, np.inf), method="bvls").x
            knots = torch.from_numpy(theta).reshape(3, segments + 1).cumsum(dim=1)
            span = (knots[:, -1] - knots[:, 0]).clamp(min=1e-12)  # scale lives in the matrix, not the curves
            knots = knots / span[:, None]
            matrix = self._solve_matrix(_curves(x, knots), y)
        return knots, matrix

    @staticmethod
    def _solve_matrix(features: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Least-squares ``(C_raw, 3)`` matrix with ``y ~ features @ M.T`` (tiny ridge for stability)."""
        normal = features.T @ features
        normal += 1e-10 * normal.diagonal().mean() * torch.eye(3, dtype=torch.float64)
        return torch.linalg.solve(normal, features.T @ y).T

    def _fit_lut(self, x: torch.Tensor, residual: torch.Tensor, channels: int) -> torch.Tensor:
        """Regularised least-squares LUT ``(C_raw, L, L, L)`` for the residual (zeros when disabled)."""
        size = self.lut_size
        if size == 0:
            return torch.zeros(channels, 0, 0, 0, dtype=torch.float64)
        nodes = size**3
        indices, weights = trilinear_weights(x, size)
        rows = torch.arange(x.shape[0])[:, None].expand_as(indices)
        interp = scipy.sparse.csr_matrix((weights.reshape(-1).numpy(), (rows.reshape(-1).numpy(),
                                          indices.reshape(-1).numpy())), shape=(x.shape[0], nodes))
        grid = np.arange(nodes).reshape(size, size, size)
        diffs = []
        for axis in range(3):
            a = np.take(grid, np.arange(size - 1), axis=axis).reshape(-1)
            b = np.take(grid, np.arange(1, size), axis=axis).reshape(-1)
            edge = np.arange(a.size)
            diffs.append(scipy.sparse.csr_matrix((np.r_[np.ones(a.size), -np.ones(a.size)],
                                                  (np.r_[edge, edge], np.r_[a, b])), shape=(a.size, nodes)))
        difference = scipy.sparse.vstack(diffs)
        weight = self.lut_smoothness * x.shape[0] / nodes
        normal = (interp.T @ interp + weight * (difference.T @ difference) + 1e-9 * scipy.sparse.eye(nodes)).tocsc()
        solution = scipy.sparse.linalg.spsolve(normal, interp.T @ residual.numpy())
        return torch.from_numpy(np.asarray(solution).reshape(nodes, channels).T.reshape(channels, size, size, size))

    # ----- the DerenderMethod interface -----
    def capture(self, srgb: torch.Tensor, raw: torch.Tensor, mask: torch.Tensor | None = None) -> RIRParameters:
        """Fit the parameters on the full pair (first frame of a clip); ``mask`` is ignored."""
        return self.fit(srgb, raw)

    def derender(self, srgb: torch.Tensor, metadata: RIRParameters) -> torch.Tensor:
        self.check(srgb, metadata)
        frames, _, height, width = srgb.shape
        x = srgb.permute(0, 2, 3, 1).reshape(-1, 3).double().clamp(0, 1)
        raw = _curves(x, metadata.knots.double()) @ (metadata.gains[:, None] * metadata.matrix).double().T
        if metadata.lut.numel():
            raw = raw + _lut_apply(x, metadata.lut.double())
        return raw.reshape(frames, height, width, -1).permute(0, 3, 1, 2).clamp(0, 1).to(srgb.dtype)

    def save_metadata(self, path: str | os.PathLike, metadata: RIRParameters, **info: object) -> Path:
        """Write the parameters as a compressed ``.npz`` atomically; refuse files over ``max_bytes``."""
        path = Path(path)
        if not isinstance(metadata, RIRParameters):
            raise RawMambaError(f"rir: cannot save a {type(metadata).__name__} to {path}; it saves RIRParameters")
        if not path.parent.is_dir():
            raise RawMambaError(f"cannot write RIR parameters to {path}: folder {path.parent} does not exist")
        header = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "raw_channels": metadata.raw_channels,
                  "info": info}
        arrays = {k: getattr(metadata, k).detach().cpu().numpy().astype(np.float32)
                  for k in ("knots", "matrix", "gains", "lut")}
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez_compressed(f, header=np.array(json.dumps(header)), **arrays)
            size = os.path.getsize(tmp)
            if size > self.max_bytes:
                raise RawMambaError(f"RIR parameters for {path} take {size} bytes, over max_bytes={self.max_bytes}; "
                                    f"use a smaller lut_size or segments")
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        return path

    def load_metadata(self, path: str | os.PathLike, expect_size: tuple[int, int] | None = None,
                      expect_channels: int | None = None) -> RIRParameters:
        """Read a parameter file (``expect_size`` is accepted for the common interface; the model has no size)."""
        path = Path(path)
        if not path.is_file():
            raise RawMambaError(f"RIR parameter file {path} does not exist")
        try:
            with open(path, "rb") as f, np.load(f, allow_pickle=False) as archive:
                arrays = {k: archive[k] for k in archive.files}
            header = json.loads(str(arrays.pop("header")))
        except (OSError, ValueError, KeyError, EOFError, AttributeError, zipfile.BadZipFile, zlib.error) as err:
            raise RawMambaError(f"{path} is not a readable RIR parameter file ({type(err).__name__}: {err})") from err
        if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
            raise RawMambaError(f"{path} is not an RIR parameter file (no '{FORMAT_NAME}' header)")
        if header.get("version") != FORMAT_VERSION:
            raise RawMambaError(f"{path} has RIR format version {header.get('version')!r}, expected {FORMAT_VERSION}")
        try:
            tensors = {k: torch.from_numpy(arrays[k]).double() for k in ("knots", "matrix", "gains", "lut")}
        except KeyError as err:
            raise RawMambaError(f"{path} is corrupt: member {err} missing") from err
        params = RIRParameters(**tensors)
        channels = params.raw_channels
        if (tensors["knots"].ndim != 2 or tensors["knots"].shape[0] != 3 or tensors["matrix"].shape != (channels, 3)
                or tensors["gains"].shape != (channels,) or tensors["lut"].ndim != 4
                or tensors["lut"].shape[0] != channels):
            raise RawMambaError(f"{path} is corrupt: inconsistent array shapes")
        if expect_channels is not None and channels != expect_channels:
            raise RawMambaError(f"{path} holds a model for {channels}-channel RAW, {expect_channels} are needed")
        return params
