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

# Pixels of all planes together whose polynomial features apply_polynomial builds at a time (20 features at
# degree 3: 42 MB in float64).
PIXELS_PER_CHUNK = 1 << 18


def polynomial_features(rgb: torch.Tensor, degree: int, dim: int = -1) -> torch.Tensor:
    """All monomials of (r, g, b) up to ``degree``, constant included: the 3 colours along ``dim`` become the
    ``F`` monomials there (``(*, 3) -> (*, F)`` for the default ``dim=-1``).

    Order: by degree, then as ``itertools.combinations_with_replacement``. Each monomial is its lower-degree
    parent times one colour (one multiplication, no gathered copies). Without autograd they are written straight
    into the result (half the time of stacking them; colour planes, ``dim=-3`` of ``(..., 3, H, W)``, then give
    contiguous feature planes); with autograd they are stacked, as in-place writes would break the graph.
    """
    colours = rgb.movedim(dim, 0)
    combinations = [
        c for order in range(1, degree + 1) for c in itertools.combinations_with_replacement(range(3), order)
    ]
    rows = {c: i for i, c in enumerate([(), *combinations])}
    if torch.is_grad_enabled() and rgb.requires_grad:
        columns = [torch.ones_like(colours[0])]
        for c in combinations:
            columns.append(columns[rows[c[:-1]]] * colours[c[-1]])
        return torch.stack(columns, dim=dim)
    features = rgb.new_empty((len(rows), *colours.shape[1:]))
    features[0] = 1
    for c in combinations:
        torch.mul(features[rows[c[:-1]]], colours[c[-1]], out=features[rows[c]])
    return features.movedim(0, dim)


def apply_polynomial(
    coefficients: torch.Tensor, planes: torch.Tensor, degree: int, *, dtype: torch.dtype | None = None
) -> torch.Tensor:
    """The colour map ``coefficients (B, F, C)`` applied to colour planes ``(B, ..., 3, P)``: ``(B, ..., C, P)``,
    computed in the coefficients' dtype and returned in ``dtype`` (default: the coefficients').

    The features are built in the planes' layout, ``(B, ..., F, P)``, so the map is one batched matrix product
    ``coefficients^T (C, F) @ features (F, P)`` per frame, with no transposed copies of the pixels. They are built
    for :data:`PIXELS_PER_CHUNK` pixels at a time (the planes converted there), not for the whole input: for 5
    frames of 1440x640 at degree 3 in float64 that would be 0.74 GB.
    """
    batch, middle, pixels = planes.shape[0], planes.shape[1:-2], planes.shape[-1]
    mapped = coefficients.transpose(1, 2).unsqueeze(1)  # (B, 1, C, F)
    out = planes.new_empty((batch, *middle, coefficients.shape[2], pixels), dtype=dtype or coefficients.dtype)
    step = max(1, PIXELS_PER_CHUNK // planes[..., 0, 0].numel())  # pixels of every plane per chunk
    for start in range(0, pixels, step):
        columns = out[..., start : start + step]
        chunk = planes[..., start : start + step].to(coefficients.dtype)
        features = polynomial_features(chunk, degree, dim=-2).reshape(batch, -1, coefficients.shape[1], chunk.shape[-1])
        columns.copy_((mapped @ features).view(columns.shape))
    return out


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
        planes = srgb.flatten(2)[None]  # (1, frames, 3, H * W)
        raw = apply_polynomial(coefficients[None], planes, self.degree, dtype=srgb.dtype)[0]
        return raw.view(*srgb.shape[:1], -1, *srgb.shape[2:]).clamp(0, 1)
