"""Spatial interpolation of the sampled RAW: the metadata alone, ignoring the sRGB between samples.

A floor for image metadata: piecewise-linear interpolation over the Delaunay triangulation of the
sample positions (``scipy.interpolate.griddata``), nearest sample outside their convex hull. It returns
the sampled RAW values exactly at the sampled positions and blurs everything in between.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.interpolate import griddata

from rawmamba.baselines.base import DerenderMethod
from rawmamba.errors import RawMambaError


class SampleInterpolation(DerenderMethod):
    """Interpolate the sampled RAW pixels over the image plane.

    Args:
        method: ``"linear"`` (Delaunay, default), ``"cubic"`` (Clough-Tocher) or ``"nearest"``.
    """

    name = "interpolation"
    metadata_kinds = ("sampled",)

    def __init__(self, method: str = "linear"):
        if method not in ("linear", "cubic", "nearest"):
            raise RawMambaError(f"interpolation: method must be linear, cubic or nearest, got {method!r}")
        self.method = method

    def derender(self, srgb: torch.Tensor, metadata) -> torch.Tensor:
        self.check(srgb, metadata)
        rows, cols = np.nonzero(metadata.mask[0].cpu().numpy() > 0)
        if rows.size < 3:
            raise RawMambaError(f"interpolation needs at least 3 samples, the metadata has {rows.size}")
        values = metadata.raw[:, rows, cols].T.double().cpu().numpy()
        height, width = srgb.shape[-2:]
        grid = tuple(np.mgrid[0:height, 0:width])
        points = np.stack([rows, cols], axis=1)
        raw = griddata(points, values, grid, method=self.method)
        holes = np.isnan(raw[..., 0])
        if holes.any():
            raw[holes] = griddata(points, values, (grid[0][holes], grid[1][holes]), method="nearest")
        image = torch.from_numpy(raw).permute(2, 0, 1).clamp(0, 1).to(srgb.dtype)
        return image.unsqueeze(0).expand(srgb.shape[0], -1, -1, -1).clone()
