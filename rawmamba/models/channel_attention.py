"""Channel attention (squeeze-and-excitation; Hu et al. 2018 "SENet", as used in RCAN; paper ref. [16], eq. 17).

Global average pooling over all positions gives one descriptor per channel; a bottleneck of two 1x1 layers
(reduce by ``reduction``, ReLU, expand, sigmoid) turns it into per-channel weights in (0, 1) that rescale the
input. Works on any layout ``(b, c, *positions)``: images ``(b, c, h, w)`` and volumes ``(b, c, t, h, w)``.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from rawmamba.errors import RawMambaError


class ChannelAttention(nn.Module):
    """``x * sigmoid(W2 relu(W1 mean(x)))`` with per-channel weights.

    Args:
        dim: channels ``c``.
        reduction: bottleneck ratio; the hidden width is ``max(1, dim // reduction)``.
        bias: biases in the two bottleneck layers.
    """

    def __init__(self, dim: int, reduction: int = 16, bias: bool = True) -> None:
        super().__init__()
        if reduction < 1:
            raise RawMambaError(f"ChannelAttention: argument reduction must be >= 1, got {reduction}")
        hidden = max(1, dim // reduction)
        self.dim = dim
        self.reduce = nn.Linear(dim, hidden, bias=bias)
        self.expand = nn.Linear(hidden, dim, bias=bias)

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        """Per-channel weights (b, c) in (0, 1) of ``x`` (b, c, ...)."""
        if x.dim() < 3 or x.shape[1] != self.dim:
            raise RawMambaError(f"ChannelAttention: input must be (b, {self.dim}, ...), got {tuple(x.shape)}")
        squeezed = x.flatten(2).mean(dim=2)
        return torch.sigmoid(self.expand(torch.relu(self.reduce(squeezed))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (b, c, ...) rescaled per channel, same shape."""
        return x * self.weights(x).view(*x.shape[:2], *([1] * (x.dim() - 2)))
