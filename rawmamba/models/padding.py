"""Pad a tensor so its height and width are multiples of what a network needs, and crop back.

Style of NAFNet/BasicSR: the network accepts any input size; it pads internally (the encoder of
RAWMamba downsamples by up to 32) and crops its output to the original size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from rawmamba.errors import RawMambaError

PAD_MODES = ("reflect", "replicate", "constant")


def pad_amount(size: int, multiple: int) -> int:
    """Number of rows/columns to add to ``size`` to reach the next multiple of ``multiple`` (>= 1)."""
    if multiple < 1:
        raise RawMambaError(f"pad multiple must be >= 1, got {multiple}")
    return (-size) % multiple


def pad_to_multiple(x: torch.Tensor, multiple: int, *, mode: str = "reflect") -> torch.Tensor:
    """Pad the last two dimensions of ``x`` at the bottom/right to multiples of ``multiple``.

    Args:
        x: tensor ``(*, C, H, W)`` (any leading shape).
        multiple: the height and width become multiples of this.
        mode: ``"reflect"`` (mirror without repeating the edge; falls back to ``"replicate"`` when the
            padding is not smaller than the side, where reflection is undefined), ``"replicate"``
            (repeat the edge) or ``"constant"`` (zeros; used for sample masks and sampled metadata so
            that padded pixels are never samples).

    Returns:
        ``(*, C, H + ph, W + pw)``; the original is ``out[..., :H, :W]``.
    """
    if mode not in PAD_MODES:
        raise RawMambaError(f"pad mode must be one of {PAD_MODES}, got {mode!r}")
    h, w = x.shape[-2:]
    ph, pw = pad_amount(h, multiple), pad_amount(w, multiple)
    if ph == 0 and pw == 0:
        return x
    if mode == "reflect" and (ph >= h or pw >= w):
        mode = "replicate"
    lead = x.shape[:-3]
    flat = x.reshape(-1, *x.shape[-3:])
    if mode == "constant":
        out = F.pad(flat, (0, pw, 0, ph), mode="constant", value=0.0)
    else:
        out = F.pad(flat, (0, pw, 0, ph), mode=mode)
    return out.reshape(*lead, *out.shape[-3:])


def crop_to(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Crop the last two dimensions of ``x`` back to ``(height, width)`` (top-left corner kept)."""
    return x[..., :height, :width]
