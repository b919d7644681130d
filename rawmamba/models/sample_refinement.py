"""Sample refinement: make a RAW prediction agree with the stored RAW samples (our extension, not in the paper).

Sampled image metadata holds the true RAW at about 1.5% of the pixels. After the network (and the correction
gate), the prediction's residual at those pixels, ``r_s = y'_s - y_hat_s``, is what the network still got
wrong where we know the answer. Refinement interpolates it to every pixel in the joint colour + position
space of the SAM-style baseline (``rawmamba.metadata.joint_interpolation``: nearby samples of similar colour
dominate) and adds it:

    y_refined = clamp(y_hat + R(r), 0, 1),  R exact at the samples

so the output passes through the samples and the residual the network leaves (local tone mapping it missed,
a foreign ISP's edits, clipped highlights) is corrected from the nearest evidence. It is the SAM-style
interpolation applied to the network's residual instead of a global fit's; measured on the real camera files
of ``benchmarks/real_raw_quality.py`` the network plus refinement beats the global fit plus the same
interpolation (the SAM-style baseline) on every file, so the network's prediction is a better base than the
fit. Like the correction gate it runs in eval mode only, on sampled metadata only (dense first-frame video
metadata describes another frame), in float64 on the CPU (scipy), and it is not differentiable.

The interpolation's settings are the baseline's (32 neighbours, position scale 1/128), so that the SAM-style
baseline is exactly this refinement applied to a global fit: the comparison isolates what the network adds.
Cost (a 512x512 photograph, 1.5% samples; ``benchmarks/joint_interpolation_cpu.py``): about 6 microseconds per
pixel on one core with numba's fast path, 3.4 on two (it runs on torch's threads), 23 with scipy alone at any
thread count (16 neighbours: half the time, 0.1 dB lower on 8 synthetic test images).
"""

from __future__ import annotations

import torch

from rawmamba.cli_choices import REFINEMENTS
from rawmamba.errors import RawMambaError
from rawmamba.metadata.joint_interpolation import interpolate_samples

__all__ = ["REFINEMENTS", "refine_on_samples"]

NEIGHBORS = 32
POSITION_SCALE = 1 / 128


def refine_on_samples(
    raw: torch.Tensor,
    x: torch.Tensor,
    meta_raw: torch.Tensor,
    meta_mask: torch.Tensor,
    *,
    neighbors: int = NEIGHBORS,
    position_scale: float = POSITION_SCALE,
) -> torch.Tensor:
    """Add the interpolated residual at the samples to every frame's prediction.

    Args:
        raw: ``(B, T, C_raw, H, W)`` the prediction.
        x: ``(B, T, 3, H, W)`` the sRGB frames (the colour part of the interpolation features).
        meta_raw: ``(B, C_raw, H, W)`` the metadata RAW (the samples, zero elsewhere).
        meta_mask: ``(B, 1, H, W)`` the sample mask; every batch element needs at least one sample.

    Returns:
        ``(B, T, C_raw, H, W)`` in ``raw``'s dtype and device, in [0, 1].
    """
    if raw.dim() != 5 or x.shape[:2] != raw.shape[:2] or x.shape[-2:] != raw.shape[-2:]:
        raise RawMambaError(f"refine_on_samples: raw (B, T, C, H, W) {tuple(raw.shape)} and x {tuple(x.shape)}")
    refined = raw.detach().cpu().double().clone()
    for b in range(raw.shape[0]):
        rows, cols = torch.nonzero(meta_mask[b, 0].cpu() > 0, as_tuple=True)
        truth = meta_raw[b].cpu().double()[:, rows, cols]
        for t in range(raw.shape[1]):
            residual = (truth - refined[b, t][:, rows, cols]).T
            refined[b, t] += interpolate_samples(
                x[b, t], rows, cols, residual, position_scale=position_scale, neighbors=neighbors
            )
    return refined.clamp(0.0, 1.0).to(device=raw.device, dtype=raw.dtype)
