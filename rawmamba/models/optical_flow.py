"""Optical flow for video metadata: OpenCV DIS estimation and backward warping with ``grid_sample``.

Convention (docs/CONVENTIONS.md): flow is ``(*, 2, H, W)`` in pixels, channel 0 = x, channel 1 = y,
*backward* from frame t to the metadata (reference) frame: pixel ``(x, y)`` of frame t is seen at
``(x + u, y + v)`` in the reference frame, so warping the reference to frame t samples it there.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from rawmamba.errors import RawMambaError
from rawmamba.models.positional_encoding import pixel_grid

DIS_PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}


def flow_warp(image: torch.Tensor, flow: torch.Tensor, *, padding_mode: str = "zeros") -> torch.Tensor:
    """Warp ``image`` (the reference) to the current frame with backward ``flow``.

    ``out[..., y, x] = image[..., y + v, x + u]`` with bilinear interpolation; integer flows are
    exact copies. Differentiable with respect to ``image`` (and ``flow``).

    Args:
        image: ``(N, C, H, W)`` reference-frame tensor.
        flow: ``(N, 2, H, W)`` backward flow in pixels of this grid.
        padding_mode: what is read outside the reference frame: ``"zeros"``, ``"border"`` or
            ``"reflection"`` (as ``torch.nn.functional.grid_sample``).

    Returns:
        ``(N, C, H, W)``.
    """
    if image.dim() != 4 or flow.dim() != 4 or flow.shape[1] != 2:
        raise RawMambaError(
            f"flow_warp expects image (N, C, H, W) and flow (N, 2, H, W), got {tuple(image.shape)} and "
            f"{tuple(flow.shape)}"
        )
    if image.shape[0] != flow.shape[0] or image.shape[-2:] != flow.shape[-2:]:
        raise RawMambaError(f"flow {tuple(flow.shape)} does not match image {tuple(image.shape)}")
    h, w = image.shape[-2:]
    pos = pixel_grid(h, w, device=image.device).unsqueeze(0) + flow.to(image.dtype)
    # align_corners=True: -1 and +1 are the centres of the first and last pixels.
    gx = 2.0 * pos[:, 0] / max(w - 1, 1) - 1.0
    gy = 2.0 * pos[:, 1] / max(h - 1, 1) - 1.0
    grid = torch.stack((gx, gy), dim=-1)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode=padding_mode, align_corners=True)


def downsample_flow(flow: torch.Tensor, factor: int) -> torch.Tensor:
    """Flow ``(N, 2, H, W)`` in pixels -> ``(N, 2, H/factor, W/factor)`` in pixels of the coarse grid.

    Each coarse vector is the mean over its ``factor x factor`` cell, divided by ``factor``.
    ``H`` and ``W`` must be multiples of ``factor``.
    """
    if flow.shape[-2] % factor or flow.shape[-1] % factor:
        raise RawMambaError(f"flow size {tuple(flow.shape[-2:])} is not a multiple of {factor}")
    if factor == 1:
        return flow
    return F.avg_pool2d(flow, kernel_size=factor) / factor


def _to_gray_u8(image: torch.Tensor) -> np.ndarray:
    """(3, H, W) float in [0, 1] -> (H, W) uint8 luma for DIS."""
    rgb = (image.detach().float().clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)


def dis_flow(frames: torch.Tensor, reference: torch.Tensor, *, preset: str = "medium") -> torch.Tensor:
    """Backward flow from every frame to the reference with OpenCV's DIS optical flow (no gradient).

    Args:
        frames: ``(B, T, 3, H, W)`` sRGB frames in [0, 1].
        reference: ``(B, 3, H, W)`` the metadata sRGB frame in [0, 1].
        preset: DIS preset, one of ``"ultrafast"``, ``"fast"``, ``"medium"`` (slower, more accurate).

    Returns:
        ``(B, T, 2, H, W)`` float32 on ``frames.device``: ``frames[b, t](p) ~ reference[b](p + flow)``.
    """
    if preset not in DIS_PRESETS:
        raise RawMambaError(f"DIS preset must be one of {sorted(DIS_PRESETS)}, got {preset!r}")
    if frames.dim() != 5 or frames.shape[2] != 3 or reference.shape != (frames.shape[0], 3, *frames.shape[-2:]):
        raise RawMambaError(
            f"dis_flow expects frames (B, T, 3, H, W) and reference (B, 3, H, W), got {tuple(frames.shape)} "
            f"and {tuple(reference.shape)}"
        )
    dis = cv2.DISOpticalFlow_create(DIS_PRESETS[preset])
    b, t, _, h, w = frames.shape
    out = np.zeros((b, t, 2, h, w), dtype=np.float32)
    for i in range(b):
        ref = _to_gray_u8(reference[i])
        for j in range(t):
            # calc(I0, I1) returns f with I0(p) ~ I1(p + f): I0 = frame t, I1 = reference.
            out[i, j] = dis.calc(_to_gray_u8(frames[i, j]), ref, None).transpose(2, 0, 1)
    return torch.from_numpy(out).to(frames.device)
