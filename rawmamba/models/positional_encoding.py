"""2-D sinusoidal positional encodings at continuous coordinates (the PE of paper eq. 11-12).

The LEB adds the same encoding to the sRGB queries and to the metadata keys/values. For video the
metadata encoding is "dynamically transformed" by optical flow (paper sec. 3.3): because the
encoding is an analytic function of position, we evaluate it at the flow-displaced coordinates
``p + flow(p)`` instead of resampling a grid, which is exact (no interpolation error).
"""

from __future__ import annotations

import torch

from rawmamba.errors import RawMambaError


def pixel_grid(height: int, width: int, *, device: torch.device | None = None) -> torch.Tensor:
    """Pixel-centre coordinates ``(2, H, W)``: channel 0 is x (column), channel 1 is y (row), in pixels."""
    ys = torch.arange(height, dtype=torch.float32, device=device)
    xs = torch.arange(width, dtype=torch.float32, device=device)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack((gx, gy), dim=0)


def sinusoidal_pe_2d(coords: torch.Tensor, dim: int, *, temperature: float = 10000.0) -> torch.Tensor:
    """Sinusoidal encoding of 2-D positions (Transformer-style, one half of the channels per axis).

    Args:
        coords: ``(*, 2, H, W)`` positions in pixels of the grid being encoded (x first, then y); any
            real values (flow-displaced positions included).
        dim: number of output channels; a multiple of 4 (sin and cos for each axis).
        temperature: the longest wavelength is ``2*pi*temperature`` pixels; frequencies are
            ``temperature ** (-k / (dim/4))``, ``k = 0 .. dim/4 - 1`` (the highest is 1 rad/pixel).

    Returns:
        ``(*, dim, H, W)`` in [-1, 1], ordered ``[sin x, cos x, sin y, cos y]`` blocks.
    """
    if dim % 4 != 0 or dim <= 0:
        raise RawMambaError(f"positional-encoding dim must be a positive multiple of 4, got {dim}")
    if coords.shape[-3] != 2:
        raise RawMambaError(f"coords must have shape (*, 2, H, W), got {tuple(coords.shape)}")
    quarter = dim // 4
    k = torch.arange(quarter, dtype=torch.float32, device=coords.device)
    freqs = temperature ** (-k / quarter)  # (quarter,)
    freqs = freqs.view(quarter, 1, 1)
    x = coords[..., 0:1, :, :].float() * freqs  # (*, quarter, H, W)
    y = coords[..., 1:2, :, :].float() * freqs
    return torch.cat((x.sin(), x.cos(), y.sin(), y.cos()), dim=-3)
