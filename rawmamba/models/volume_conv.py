"""3-D convolution of a feature volume ``(B, C, T, H, W)`` as a sum of per-frame 2-D convolutions.

A performance path only (not part of the paper): the result is the same convolution as ``nn.Conv3d``, up to
float rounding, and it is differentiable in the input, the weight and the bias.

Why: PyTorch (2.x) sends a float32 ``conv3d`` on the CPU to oneDNN only when the batch is > 1, the conv is
grouped, or ``B * C * T * H > 20480`` (ATen's ``ConvParams::use_mkldnn``); otherwise it takes the native
``slow_conv3d``, which unfolds the whole volume (``C * kt * kh * kw`` rows) and is about 10x slower (20-40x
for a single frame). In the decoder and LTA-Mamba of ``rawmamba_tiny`` on a 256x256 clip that is every dense
3x3x3 conv for T = 2, most of them for T = 4 and the low-resolution ones up to T = 10, so a clip cost 2.7x
more per frame at T = 2 than at T = 32. Measured (one thread, 2-core AMD EPYC, ms per frame, conv3d / this
path): 32 -> 16 channels 3x3x3 at 256x256: T = 2 193 / 18, T = 8 27 / 30, T = 32 31 / 31; 32 -> 32 at
64x64: T = 2 11.4 / 1.7, T = 32 2.1 / 2.5; depth-wise 32 channels at 64x64: about equal (~1 ms) at every T.
The per-frame cost of this path hardly depends on T (the first and last frames skip the taps that fall in
the zero padding).

How: with zero padding ``kt // 2`` in time and stride 1, output frame ``j`` is
``sum_i conv2d(x[:, :, j + i - kt // 2], weight[:, :, i])`` over the taps ``i`` whose input frame exists
(the others read zeros), plus the bias once; groups carry over unchanged. Each conv2d takes one frame of
every batch item: folding many frames into one batch made oneDNN switch (at about 32 MB of input in our
measurements) to an algorithm that costs 2x more per frame, so one call per frame and tap is simpler and faster.
A dense conv (``groups = 1``) of one frame-major clip (``B = 1``, below) takes one call per output frame instead:
the ``n`` frames it reads lie side by side in memory, a ``(1, n C, H, W)`` input without a copy, and the ``n``
taps' weights stack along the input channels (:func:`conv3d_stacked_taps`). Measured (2 threads, 5 frames, ms,
per tap / stacked): 32 -> 16 channels at 1440x640 2,269 / 1,738, 16 -> 16 at 1440x640 1,623 / 1,129, 48 -> 16 at
720x320 676 / 653; with B = 4 the window is not one block of memory, and copying it made it slower (88 / 114 ms
at 4 x 32 -> 16 channels, 4 frames of 128x128), so other inputs keep one call per tap.
Memory and layout: the path fills its output frame by frame in a frame-major layout (the storage of
``(B, T, C_out, H, W)``, returned as its ``(B, C_out, T, H, W)`` view), so that for B = 1 every frame of the
result is contiguous and the next per-frame conv or pointwise product reads it without a copy. Besides its
output it holds the ``kt`` input frames that the current output frame reads (each made contiguous once, a copy
only if the input is not frame-major) and that frame's result: no copy of the whole input volume and no list of
output frames to stack. Inference of ``rawmamba_tiny`` on 5 frames of 1440x640 peaks in the decoder's
full-resolution block: 2.6 GiB above the resident memory before the forward with the earlier path (which
copied the input volume and stacked its output frames), 1.4 GiB with this one, the pointwise product below and
the leaner metadata encoders and global prior (``benchmarks/memory_cpu.py``, ``docs/CPU_SPEED.md``).

Pointwise (1x1x1) convs on the CPU are one matrix product ``weight (C_out, C) @ x (C, pixels)`` per frame (or
per batch item for a channel-major input), in the input's layout. Measured (2 threads, 2-core AMD EPYC, 5 frames,
ms, conv3d / this): 32 -> 16 channels at 1440x640 479 / 170, 16 -> 12 at 1440x640 386 / 104, 48 -> 16 at 720x320
149 / 50 (oneDNN's conv3d also reorders the whole volume into its blocked layout and back).

:func:`conv_volume` picks the path: a single frame always goes through the centre tap alone (the other taps
only meet the zero padding; on any device, as the decoder did before; about 20x faster than ``conv3d`` on
the CPU); on the CPU a 1x1x1 kernel (not grouped, no padding) goes through the matrix product and longer clips
go frame by frame; other devices keep ``conv3d`` on a contiguous input. On an H100 (bf16,
``benchmarks/conv_paths_cuda.py``) cuDNN computed the
depth-wise 3x3x3 conv of LTA-Mamba (96 channels, 5x160x360) in 2.78 ms on the channels-last-strided input that
``norm_volume`` returns and in 0.62 ms on a contiguous one (the copy costs about 0.1 ms); frame by frame it
took 1.17 ms, and 1.3-2x longer than ``conv3d`` for the dense convs. Convs the identity does not cover
(stride or dilation not 1, padding mode not zeros, padding given as a string, time padding other than
``kt // 2`` with odd ``kt``) keep ``conv3d``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from rawmamba.models.channel_product import channel_first_product


def conv3d_per_frame(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    padding: tuple[int, int] = (0, 0),
    groups: int = 1,
) -> torch.Tensor:
    """``F.conv3d(x, weight, bias, padding=(kt // 2, *padding), groups=groups)`` as per-frame ``conv2d``.

    Args:
        x: ``(B, C, T, H, W)``.
        weight: ``(C_out, C / groups, kt, kh, kw)`` with ``kt`` odd.
        bias: ``(C_out,)`` or None.
        padding: zero padding along ``(H, W)``; time is zero-padded by ``kt // 2`` (same length).
        groups: as for ``conv3d``.

    Returns:
        ``(B, C_out, T, H', W')``, frame-major (a view of ``(B, T, C_out, H', W')`` storage).
    """
    kt = weight.shape[2]
    if kt % 2 == 0:
        raise ValueError(f"conv3d_per_frame: temporal kernel size must be odd, got {kt}")
    t, centre = x.shape[2], kt // 2
    if groups == 1 and kt > 1 and t > 1 and x.shape[0] == 1 and x.transpose(1, 2).is_contiguous():
        return conv3d_stacked_taps(x, weight, bias, padding)
    taps = weight.unbind(2)
    frames: dict[int, torch.Tensor] = {}  # the input frames that output frames from here on read, contiguous
    out = None
    for j in range(t):
        for s in range(max(0, j - centre), min(t, j + centre + 1)):
            if s not in frames:
                frames[s] = x[:, :, s].contiguous()  # no copy if x is frame-major (and B = 1) or t = 1
        frame_out = F.conv2d(frames[j], taps[centre], bias, padding=padding, groups=groups)
        for i in range(kt):
            s = j + i - centre
            if i != centre and 0 <= s < t:  # taps outside the clip read the zero padding
                frame_out += F.conv2d(frames[s], taps[i], None, padding=padding, groups=groups)  # keeps no output
        frames.pop(j - centre, None)  # no later output frame reads it
        if t == 1:
            return frame_out.unsqueeze(2)  # contiguous, and frame-major too
        if out is None:
            out = frame_out.new_empty((frame_out.shape[0], t, *frame_out.shape[1:]))
        out[:, j] = frame_out
    return out.transpose(1, 2)


def conv3d_stacked_taps(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, padding: tuple[int, int]
) -> torch.Tensor:
    """:func:`conv3d_per_frame` for a frame-major ``x`` of one batch item and ``groups = 1``: one ``conv2d`` per
    output frame over the frames it reads, which lie side by side in ``x``'s storage and so form one
    ``(1, n C, H, W)`` input without a copy, with the ``n`` taps' weights stacked along the input channels."""
    t, centre = x.shape[2], weight.shape[2] // 2
    frames = x.transpose(1, 2)  # (1, T, C, H, W), contiguous
    stacked: dict[tuple[int, int], torch.Tensor] = {}  # weights of taps [first, last), (C_out, n C, kh, kw)
    out = None
    for j in range(t):
        first, last = max(0, j - centre), min(t, j + centre + 1)  # the input frames that exist
        taps = (first - j + centre, last - j + centre)
        if taps not in stacked:
            stacked[taps] = weight[:, :, taps[0] : taps[1]].transpose(1, 2).flatten(1, 2)
        window = frames[:, first:last].flatten(1, 2)  # (1, n C, H, W): a view
        frame_out = F.conv2d(window, stacked[taps], bias, padding=padding)
        if out is None:
            out = frame_out.new_empty((1, t, *frame_out.shape[1:]))
        out[:, j] = frame_out
    return out.transpose(1, 2)


def conv3d_pointwise(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``F.conv3d(x, weight, bias)`` for a 1x1x1 ``weight (C_out, C, 1, 1, 1)`` as one matrix product.

    ``x (B, C, T, H, W)`` frame-major (see :func:`conv3d_per_frame`) gives a frame-major result, any other layout
    a contiguous one (``x`` is copied first unless it is contiguous)."""
    b, c, t, h, w = x.shape
    matrix = weight.flatten(1)
    if x.transpose(1, 2).is_contiguous():
        frames = x.transpose(1, 2).reshape(b * t, c, h * w)
        out = channel_first_product(matrix, frames).view(b, t, -1, h, w).transpose(1, 2)
    else:
        out = channel_first_product(matrix, x.reshape(b, c, t * h * w)).view(b, -1, t, h, w)
    if bias is not None:
        out += bias.view(-1, 1, 1, 1)  # in place: the product keeps no output
    return out


def join_channels(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """``torch.cat((first, second), dim=1)`` of two ``(B, C, T, H, W)`` volumes, in the layout that
    :func:`conv_volume` reads without a copy: frame-major on the CPU, contiguous on other devices."""
    if first.device.type != "cpu":
        return torch.cat((first, second), dim=1)
    return torch.cat((first.transpose(1, 2), second.transpose(1, 2)), dim=2).transpose(1, 2)


def per_frame_applies(conv: nn.Conv3d) -> bool:
    """Whether :func:`conv3d_per_frame` computes ``conv``: stride and dilation 1, zero padding ``kt // 2`` in time."""
    kt = conv.kernel_size[0]
    return (
        conv.stride == (1, 1, 1)
        and conv.dilation == (1, 1, 1)
        and conv.padding_mode == "zeros"
        and not isinstance(conv.padding, str)
        and kt % 2 == 1
        and conv.padding[0] == kt // 2
    )


def conv_volume(conv: nn.Conv3d, x: torch.Tensor) -> torch.Tensor:
    """``conv(x)`` for ``x (B, C, T, H, W)``, per frame where that is faster (see the module docstring)."""
    if x.dim() != 5 or not per_frame_applies(conv):
        return conv(x)
    cpu = x.device.type == "cpu"
    if cpu and conv.kernel_size == (1, 1, 1) and conv.groups == 1 and conv.padding == (0, 0, 0):
        return conv3d_pointwise(x, conv.weight, conv.bias)
    if x.shape[2] == 1 or cpu:
        return conv3d_per_frame(x, conv.weight, conv.bias, conv.padding[1:], conv.groups)
    return conv(x.contiguous())
