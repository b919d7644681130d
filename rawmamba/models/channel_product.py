"""``weight (out, in) @ x (b, in, n)`` for channel-first features, reading a strided ``x`` in place.

A performance path only. ``torch.matmul`` of a matrix and a 3-D tensor folds the batch into the columns and so
copies an ``x`` that is not contiguous: the conv1d's output sliced to the sequence and the transposed tokens in
BiMamba, a feature volume in a 1x1x1 conv. In ``rawmamba_tiny`` on 5 frames of 1440x640 such copies
took 1.4 s of a 10 s CPU forward. ``torch.bmm`` with the weight expanded over the batch passes the strides to
BLAS instead. Pointwise (1x1) 2-D convs at full resolution use it on the CPU too (:func:`pointwise_conv2d`).
"""

from __future__ import annotations

import torch
from torch import nn


def channel_first_product(weight: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``weight (out, in) @ x (b, in, n)`` as a contiguous ``(b, out, n)``; ``x`` may have any strides."""
    return torch.bmm(weight.expand(x.shape[0], -1, -1), x)


def pointwise_conv2d(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """``conv(x)`` for ``x (b, c, h, w)``; a 1x1 ``conv`` (stride 1, no padding, not grouped) on the CPU as
    :func:`channel_first_product`. oneDNN reorders such an input into its blocked layout and back: the metadata
    encoders' first layer, 3 -> 32 channels at 1440x640, took 124 ms as a conv and 53 ms as a product (2 threads,
    2-core AMD EPYC)."""
    pointwise = conv.kernel_size == (1, 1) and conv.stride == (1, 1) and conv.groups == 1
    if x.device.type != "cpu" or x.dim() != 4 or not pointwise or conv.padding != (0, 0):
        return conv(x)
    b, _, h, w = x.shape
    out = channel_first_product(conv.weight.flatten(1).to(x.dtype), x.flatten(2))
    if conv.bias is not None:
        out += conv.bias.to(x.dtype)[:, None]  # in place: the product keeps no output
    return out.view(b, -1, h, w)
