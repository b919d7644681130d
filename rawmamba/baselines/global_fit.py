"""Global colour mapping: one polynomial from sRGB to RAW, fitted by least squares on the metadata pairs.

The simplest metadata-based de-renderer and a floor every table shows. It models the ISP as one
global function of colour (no position, no neighbourhood), so it recovers white balance, colour
matrix and global tone curves well and local tone mapping not at all. For sampled image metadata
the pairs are the sampled pixels; for a video's first-frame metadata, the (subsampled) first frame.
"""

from __future__ import annotations

import itertools

import torch

from rawmamba.baselines.base import DerenderMethod
from rawmamba.errors import RawMambaError


def polynomial_features(rgb: torch.Tensor, degree: int) -> torch.Tensor:
    """All monomials of (r, g, b) up to ``degree``, constant included: ``(*, 3) -> (*, F)``."""
    columns = [torch.ones_like(rgb[..., 0])]
    for order in range(1, degree + 1):
        for combination in itertools.combinations_with_replacement(range(3), order):
            columns.append(torch.prod(rgb[..., list(combination)], dim=-1))
    return torch.stack(columns, dim=-1)


def metadata_pairs(metadata, max_pairs: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The (sRGB, RAW) pixel pairs the metadata holds, ``(N, 3)`` and ``(N, C_raw)``, at most ``max_pairs``.

    Sampled metadata gives exactly its sampled pixels; dense metadata gives every k-th pixel, k the
    smallest stride that stays within ``max_pairs`` (deterministic, no random draw).
    """
    srgb = metadata.srgb.reshape(3, -1).T
    raw = metadata.raw.reshape(metadata.raw.shape[0], -1).T
    if metadata.mask is not None:
        keep = metadata.mask.reshape(-1) > 0
        srgb, raw = srgb[keep], raw[keep]
    stride = max(1, -(-srgb.shape[0] // max_pairs))
    return srgb[::stride], raw[::stride]


class GlobalColourFit(DerenderMethod):
    """Least-squares polynomial map from sRGB to RAW colour.

    Args:
        degree: polynomial degree in (r, g, b) (3: 20 terms).
        ridge: Tikhonov weight relative to the mean diagonal of the normal matrix; keeps the fit stable
            when the samples span few colours.
        max_pairs: at most this many pairs are used (dense metadata is subsampled by a fixed stride).
    """

    name = "global-fit"

    def __init__(self, degree: int = 3, ridge: float = 1e-6, max_pairs: int = 200_000):
        if degree < 1:
            raise RawMambaError(f"global-fit: degree must be at least 1, got {degree}")
        self.degree, self.ridge, self.max_pairs = degree, ridge, max_pairs

    def fit(self, srgb: torch.Tensor, raw: torch.Tensor) -> torch.Tensor:
        """Coefficients ``(F, C_raw)`` of the polynomial, solved in float64."""
        features = polynomial_features(srgb.double(), self.degree)
        if features.shape[0] < features.shape[1]:
            raise RawMambaError(
                f"global-fit: {features.shape[0]} metadata pairs cannot fit {features.shape[1]} coefficients"
            )
        normal = features.T @ features
        normal += self.ridge * normal.diagonal().mean() * torch.eye(normal.shape[0], dtype=normal.dtype)
        return torch.linalg.solve(normal, features.T @ raw.double())

    def derender(self, srgb: torch.Tensor, metadata) -> torch.Tensor:
        self.check(srgb, metadata)
        coefficients = self.fit(*metadata_pairs(metadata, self.max_pairs))
        frames, _, height, width = srgb.shape
        pixels = srgb.permute(0, 2, 3, 1).reshape(-1, 3).double()
        raw = polynomial_features(pixels, self.degree) @ coefficients
        return raw.reshape(frames, height, width, -1).permute(0, 3, 1, 2).clamp(0, 1).to(srgb.dtype)
