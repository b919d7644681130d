"""Mamba's causal depth-wise ``conv1d`` as ``k`` shifted multiply-adds, for CPU inference.

A performance path only (not part of the paper): the result equals ``conv(x)[..., :L]`` for the
``nn.Conv1d(d, d, k, groups=d, padding=k - 1)`` of :class:`rawmamba.models.bimamba.SSMBranch`, up to float
rounding. Output position ``t`` is ``bias + sum_i weight[:, 0, i] * x[..., t + i - (k - 1)]`` over the taps whose
input position exists (the others read the zero padding), so the last tap multiplies ``x`` itself and tap ``i``
adds ``x`` shifted right by ``k - 1 - i`` positions.

Why: oneDNN runs this conv as a 2-D depth-wise conv of height 1, which is slow for long sequences. Measured
(2 threads, 2-core AMD EPYC, float32, ms forward, conv1d / this): 64 channels at L = 288,000 (5 frames of
1440x640 at 1/4 scale, ``rawmamba_tiny``) 131 / 54, 192 channels 293 / 137, (8, 64, 4,096) 13.4 / 1.2. Under
autograd the broadcast products' weight gradients made it slower than ``conv1d`` (736 against 314 ms forward and
backward at 64 x 288,000), so :func:`causal_conv1d` takes it only when no gradient is recorded.
"""

from __future__ import annotations

import torch
from torch import nn


def causal_depthwise_product(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``F.conv1d(x, weight, bias, padding=k - 1, groups=d)[..., :L]`` for ``x (b, d, L)``, ``weight (d, 1, k)``,
    as ``k`` shifted multiply-adds into one new contiguous ``(b, d, L)``."""
    k = weight.shape[-1]
    taps = weight[:, 0].to(x.dtype)  # (d, k)
    last = taps[:, k - 1 :]  # (d, 1): multiplies x unshifted
    out = x * last if bias is None else torch.addcmul(bias.to(x.dtype)[:, None], x, last)
    for i in range(k - 1):
        shift = k - 1 - i
        if shift < x.shape[-1]:  # a shift past the end reads only padding
            out[..., shift:].addcmul_(x[..., :-shift], taps[:, i : i + 1])
    return out


def causal_conv1d(conv: nn.Conv1d, x: torch.Tensor) -> torch.Tensor:
    """``conv(x)[..., :L]`` for ``x (b, d, L)`` and a causal depth-wise ``conv`` (padding ``k - 1``): shifted
    multiply-adds for CPU inference, ``conv`` itself otherwise (other devices, or a gradient to record)."""
    length = x.shape[-1]
    recording = torch.is_grad_enabled() and (x.requires_grad or conv.weight.requires_grad)
    if x.device.type != "cpu" or recording:
        return conv(x)[..., :length]
    return causal_depthwise_product(x, conv.weight, conv.bias)
