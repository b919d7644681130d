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
Layout: on the CPU the volumes are channels-last (:data:`VOLUME_FORMAT`, the storage of ``(B, T, H, W, C)``), so
that every frame of one batch item is a channels-last image that a conv2d reads in place and oneDNN computes
without reordering it into its blocked layout; the output is filled frame by frame in the same layout, ready for
the next conv. Measured (2 threads, 2-core AMD EPYC, ms, inputs already in each layout; channel-major frames
copied / frame-major / channels-last): 16 -> 16 channels 3x3x3 on 5 frames of 1440x640 1,979 / 1,154 / 1,014
(frame-major was one conv2d per output frame over its stacked taps), 32 -> 16 on 3 frames of 1024x1024
1,484 / 981 / 700, depth-wise 32 channels on 5 frames of 360x160 64 / 59 / 41, one 1024x1024 frame 214 / 213 /
104. Besides its output the path holds the ``kt`` input frames that the current output frame reads (copies only
for another layout, or for a batch of several items, whose frames are not one block of memory) and that frame's
result. :func:`volume_layout` gives the layout; :func:`join_channels` concatenates in it; the decoder's sRGB stem
and the token sequences of LTA-Mamba (:mod:`rawmamba.models.scan_order`) produce it on the CPU.

Pointwise (1x1x1) convs on the CPU are one matrix product: pixels by channels times the weight for a
channels-last volume (``F.linear``), ``weight (C_out, C) @ x (C, pixels)`` for another layout. Measured (2
threads, 5 frames, ms): 32 -> 16 channels at 1440x640, oneDNN's conv3d 479 (it reorders the whole volume into its
blocked layout and back), a product per frame 170-214, the product of channels-last pixels 154.

:func:`conv_volume` picks the path: a single frame always goes through the centre tap alone (the other taps
only meet the zero padding; on any device, as the decoder did before; about 20x faster than ``conv3d`` on
the CPU); on the CPU the input is laid out channels-last, then a 1x1x1 kernel (not grouped, no padding) goes
through the matrix product and longer clips go frame by frame; other devices keep ``conv3d`` on a contiguous
input. On an H100 (bf16, ``benchmarks/conv_paths_cuda.py``) cuDNN computed the
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

# The layout of feature volumes on the CPU: (B, T, H, W, C) in memory, each frame a channels-last image.
VOLUME_FORMAT = torch.channels_last_3d


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
        ``(B, C_out, T, H', W')``: channels-last (:data:`VOLUME_FORMAT`) for a channels-last ``x``, whose frames
        the conv2d calls then read in place; contiguous for any other ``x``, whose frames are copied once each.
    """
    kt = weight.shape[2]
    if kt % 2 == 0:
        raise ValueError(f"conv3d_per_frame: temporal kernel size must be odd, got {kt}")
    t, centre = x.shape[2], kt // 2
    channels_last = x.is_contiguous(memory_format=VOLUME_FORMAT)
    frame_format = torch.channels_last if channels_last else torch.contiguous_format
    taps = weight.unbind(2)
    frames: dict[int, torch.Tensor] = {}  # the input frames that output frames from here on read
    out = None
    for j in range(t):
        for s in range(max(0, j - centre), min(t, j + centre + 1)):
            if s not in frames:
                frames[s] = x[:, :, s].contiguous(memory_format=frame_format)  # no copy if x is channels-last
        frame_out = F.conv2d(frames[j], taps[centre], bias, padding=padding, groups=groups)
        for i in range(kt):
            s = j + i - centre
            if i != centre and 0 <= s < t:  # taps outside the clip read the zero padding
                frame_out += F.conv2d(frames[s], taps[i], None, padding=padding, groups=groups)  # keeps no output
        frames.pop(j - centre, None)  # no later output frame reads it
        if t == 1:
            return frame_out.unsqueeze(2)
        if out is None:
            shape = (frame_out.shape[0], frame_out.shape[1], t, *frame_out.shape[2:])
            memory_format = VOLUME_FORMAT if channels_last else torch.contiguous_format
            out = torch.empty(shape, dtype=frame_out.dtype, device=frame_out.device, memory_format=memory_format)
        out[:, :, j] = frame_out
    return out


def conv3d_pointwise(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``F.conv3d(x, weight, bias)`` for a 1x1x1 ``weight (C_out, C, 1, 1, 1)`` as one matrix product.

    A channels-last ``x`` is a matrix of pixels by channels, and gives a channels-last result; any other layout
    a contiguous one (``x`` is copied first unless it is contiguous)."""
    b, c, t, h, w = x.shape
    matrix = weight.flatten(1)
    if x.is_contiguous(memory_format=VOLUME_FORMAT):
        return F.linear(x.permute(0, 2, 3, 4, 1), matrix, bias).permute(0, 4, 1, 2, 3)
    out = channel_first_product(matrix, x.reshape(b, c, t * h * w)).view(b, -1, t, h, w)
    if bias is not None:
        out += bias.view(-1, 1, 1, 1)  # in place: the product keeps no output
    return out


def volume_layout(x: torch.Tensor) -> torch.Tensor:
    """``x (B, C, T, H, W)`` in the layout the convs of its device read fastest: channels-last
    (:data:`VOLUME_FORMAT`) on the CPU, contiguous elsewhere; no copy if it is laid out so already."""
    return x.contiguous(memory_format=VOLUME_FORMAT if x.device.type == "cpu" else torch.contiguous_format)


def join_channels(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """``torch.cat((first, second), dim=1)`` of two ``(B, C, T, H, W)`` volumes, in :func:`volume_layout`.

    On the CPU both are copied into a channels-last volume: ``torch.cat`` infers its output's layout from its
    inputs' strides, which for one frame of one batch item fit several layouts, and chose a contiguous one."""
    if first.device.type != "cpu":
        return torch.cat((first, second), dim=1)
    b, c, *size = first.shape
    dtype = torch.result_type(first, second)
    out = torch.empty((b, c + second.shape[1], *size), dtype=dtype, device=first.device, memory_format=VOLUME_FORMAT)
    out[:, :c] = first
    out[:, c:] = second
    return out


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
    if x.device.type == "cpu":
        x = volume_layout(x)
        if conv.kernel_size == (1, 1, 1) and conv.groups == 1 and conv.padding == (0, 0, 0):
            return conv3d_pointwise(x, conv.weight, conv.bias)
        return conv3d_per_frame(x, conv.weight, conv.bias, conv.padding[1:], conv.groups)
    if x.shape[2] == 1:
        return conv3d_per_frame(x, conv.weight, conv.bias, conv.padding[1:], conv.groups)
    return conv(x.contiguous())
