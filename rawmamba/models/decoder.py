"""Reconstruction decoder (paper sec. 3.2): 3-D convolutions and upsampling to the RAW output.

The decoder takes the LTA-Mamba features ``(B, C, T, H/r, W/r)`` and doubles the resolution
``log2(r)`` times; after each upsampling it concatenates a skip from a shallow per-frame sRGB stem at
that scale (the ConvNeXt stem starts at stride 4, so pixel-level detail has to come from somewhere).

Output head (our choice, the paper does not say): instead of regressing RAW values directly, the
decoder predicts at every pixel a ``C_raw x 3`` colour matrix ``M`` and an offset ``o`` applied to the
linearised sRGB, ``raw = M @ curve(x) + o``. ``curve`` is a learned global per-channel tone curve
(piecewise linear with ``curve_knots`` knots, initialised to ``x ** 2.2``), the part of a camera
pipeline every pixel shares (gamma, global tone curve); ``M`` and ``o`` carry white balance, colour
matrix and local tone mapping. This is a well-conditioned residual space: at initialisation ``M`` is
the channel map sRGB -> RAW (identity for raw-RGB; R, G, G, B for packed Bayer) and ``o = 0``, so the
untrained network already outputs a plausible linear image, and fine detail comes from ``x`` itself.
The result is clamped to [0, 1] (a clamp, not a sigmoid, so the map stays linear inside the range).

With a global prior (``prior=True``; our extension, global_prior.py) the base is the metadata-fitted
prior RAW ``p`` instead of ``curve(x)``, and the head predicts a per-pixel correction of it:
``raw = p + dM @ p + do`` with ``dM`` a ``C_raw x C_raw`` matrix and ``do`` an offset. ``p`` already
holds the image's white balance, colour matrix and global tone curve, so there is no learned curve and
no base map; a per-pixel gain of the linear prior is what local tone mapping does. The head is
zero-initialised, so the untrained decoder outputs exactly the (clamped) prior and training learns
only the local part; at the first step only the head gets a gradient, after it the whole network does.
The prior is also concatenated to the full-resolution sRGB skip, so the decoder sees what it predicts.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from rawmamba.errors import RawMambaError
from rawmamba.models.volume_conv import conv_volume, join_channels

# Pixels per frame of a strip (CPU inference): the full-resolution stage (upsampling, sRGB skip, join, block,
# head) runs on strips of about 2^17 pixels per frame, so none of its volumes exists at full size.
STRIP_PIXELS = 1 << 17
# Pixels (all frames) up to which the stage runs in one pass: the strips cost a 1024x1024 image 5-10% more time
# and left its peak where it was (set elsewhere), and cut the peak of 5 frames of 1440x640 by a third.
STRIPS_FROM = 1 << 21


def strip_rows(frames: torch.Tensor) -> int:
    """Rows per strip of the decoder's full-resolution stage for ``frames (B, T, 3, H, W)``: all of them (one
    pass) where autograd records, off the CPU, or for at most :data:`STRIPS_FROM` pixels in all; else about
    :data:`STRIP_PIXELS` per frame (at least 16 rows, so that the halos cost at most about a third more)."""
    h, w = frames.shape[-2:]
    if frames.device.type != "cpu" or torch.is_grad_enabled() or frames[:, :, 0].numel() <= STRIPS_FROM:
        return h
    return max(16, STRIP_PIXELS // w)


def source_rows(size_in: int, size_out: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For each of ``size_out`` rows of a linear upsampling from ``size_in`` rows (``align_corners=False``), the
    two source rows and the weight of the second, computed as PyTorch's upsampling kernels compute them (float32
    scale, source clamped at 0)."""
    scale = torch.tensor(size_in, dtype=torch.float32) / size_out
    position = (scale * (torch.arange(size_out, dtype=torch.float32) + 0.5) - 0.5).clamp(min=0)
    lower = position.long().clamp(max=size_in - 1)
    upper = (lower + 1).clamp(max=size_in - 1)
    return lower, upper, position - lower


def channels_last_on_cpu(images: torch.Tensor) -> torch.Tensor:
    """``images (N, C, H, W)`` channels-last on the CPU (the stem then writes channels-last skips, the CPU's
    volume layout), as they are elsewhere."""
    return images.contiguous(memory_format=torch.channels_last) if images.device.type == "cpu" else images


def base_colour_map(raw_channels: int) -> torch.Tensor:
    """The initial ``(C_raw, 3)`` sRGB-channel -> RAW-channel map: identity, or R, G, G, B for Bayer."""
    if raw_channels == 3:
        return torch.eye(3)
    if raw_channels == 4:
        return torch.tensor([[1.0, 0, 0], [0, 1, 0], [0, 1, 0], [0, 0, 1]])
    raise RawMambaError(f"raw_channels must be 3 (raw-RGB) or 4 (packed Bayer), got {raw_channels}")


def tone_curve(x: torch.Tensor, knots: torch.Tensor) -> torch.Tensor:
    """Per-channel piecewise-linear curve, differentiable in ``x`` and ``knots``.

    Args:
        x: ``(*, C, H, W)``, clamped to [0, 1].
        knots: ``(C, K)`` curve values at ``0, 1/(K-1), ..., 1``.

    Returns:
        ``(*, C, H, W)``.
    """
    c, k = knots.shape
    moved = x.movedim(-3, 0)
    pos = moved.reshape(c, -1).clamp(0.0, 1.0) * (k - 1)
    lo = pos.detach().floor().clamp(max=k - 2).long()
    v0, v1 = knots.gather(1, lo), knots.gather(1, lo + 1)
    out = v0 + (pos - lo) * (v1 - v0)
    return out.view(moved.shape).movedim(0, -3)


class ConvBlock3d(nn.Module):
    """Residual block of two 3-D convolutions (kernel ``(temporal_kernel, 3, 3)``) with GELU.

    Args:
        in_channels: input channels.
        out_channels: output channels (a 1x1x1 convolution matches the residual when they differ).
        temporal_kernel: kernel size along time (odd; 1 makes it per-frame).
    """

    def __init__(self, in_channels: int, out_channels: int, *, temporal_kernel: int = 3) -> None:
        super().__init__()
        if temporal_kernel % 2 == 0:
            raise RawMambaError(f"temporal_kernel must be odd, got {temporal_kernel}")
        kernel, pad = (temporal_kernel, 3, 3), (temporal_kernel // 2, 1, 1)
        self.conv1 = nn.Conv3d(in_channels, out_channels, kernel, padding=pad)
        self.conv2 = nn.Conv3d(out_channels, out_channels, kernel, padding=pad)
        self.skip = nn.Conv3d(in_channels, out_channels, 1) if in_channels != out_channels else None

    @property
    def halo(self) -> int:
        """Rows of input beyond an output row that it depends on (one per 3x3 conv)."""
        return self.conv1.kernel_size[1] // 2 + self.conv2.kernel_size[1] // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, in, T, H, W)`` -> ``(B, out, T, H, W)``."""
        out = conv_volume(self.conv2, F.gelu(conv_volume(self.conv1, x)))
        out += x if self.skip is None else conv_volume(self.skip, x)  # in place: no conv keeps its output
        return out


class Decoder3d(nn.Module):
    """LTA-Mamba features -> RAW frames.

    Args:
        in_channels: channels of the input feature volume.
        raw_channels: ``C_raw`` (3 or 4).
        reduction: stride of the input volume relative to the frames (a power of 2).
        dims: decoder widths at strides ``reduction, reduction/2, ..., 1`` (``log2(reduction) + 1`` values).
        temporal_kernel: time extent of the 3-D kernels.
        gamma: exponent of the tone curve's initial shape ``x ** gamma``.
        curve_knots: knots of the learned per-channel tone curve on [0, 1] (>= 2; unused with ``prior``).
        head_init_std: std of the head's initial weights (small, so training starts from the base map;
            unused with ``prior``, where the head starts at zero).
        prior: take a ``C_raw``-channel prior RAW in ``forward`` as the base of the output and as an
            extra input of the full-resolution skip (see the module docstring).
    """

    def __init__(
        self,
        in_channels: int,
        raw_channels: int,
        *,
        reduction: int = 4,
        dims: tuple[int, ...] = (64, 32, 32),
        temporal_kernel: int = 3,
        gamma: float = 2.2,
        curve_knots: int = 17,
        head_init_std: float = 1e-2,
        prior: bool = False,
    ) -> None:
        super().__init__()
        steps = int(round(math.log2(reduction)))
        if 2**steps != reduction or len(dims) != steps + 1:
            raise RawMambaError(
                f"decoder: reduction {reduction} must be a power of 2 and dims {tuple(dims)} must have "
                f"log2(reduction) + 1 = {steps + 1} entries"
            )
        self.raw_channels, self.prior = raw_channels, prior
        self.inp = ConvBlock3d(in_channels, dims[0], temporal_kernel=temporal_kernel)
        # sRGB stem: one feature map per scale 1, 1/2, ..., 2/reduction (the skip after each upsampling)
        self.stem = nn.ModuleList()
        self.ups = nn.ModuleList()
        for i in range(steps):
            scale_out = dims[i + 1]
            stride = 2 ** (steps - 1 - i)
            stem_in = 3 + (raw_channels if prior and i == steps - 1 else 0)  # the last skip is full-resolution
            self.stem.append(nn.Sequential(nn.Conv2d(stem_in, scale_out, 3, stride=stride, padding=1), nn.GELU()))
            self.ups.append(ConvBlock3d(dims[i] + scale_out, scale_out, temporal_kernel=temporal_kernel))
        self.base_channels = raw_channels if prior else 3  # what the per-pixel matrix multiplies
        self.head = nn.Conv3d(dims[-1], raw_channels * (self.base_channels + 1), 1)
        self.curve: nn.Parameter | None = None
        if prior:  # zero correction of the prior at initialisation
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)
        else:
            nn.init.normal_(self.head.weight, std=head_init_std)
            with torch.no_grad():
                base = torch.cat((base_colour_map(raw_channels), torch.zeros(raw_channels, 1)), dim=1)
                self.head.bias.copy_(base.flatten())
            if curve_knots < 2:
                raise RawMambaError(f"curve_knots must be >= 2, got {curve_knots}")
            self.curve = nn.Parameter(torch.linspace(0.0, 1.0, curve_knots).pow(gamma).repeat(3, 1))  # (3, K)

    def forward(self, features: torch.Tensor, frames: torch.Tensor, prior: torch.Tensor | None = None) -> torch.Tensor:
        """De-render.

        Args:
            features: ``(B, in_channels, T, H/r, W/r)``.
            frames: ``(B, T, 3, H, W)`` sRGB in [0, 1].
            prior: ``(B, T, C_raw, H, W)`` prior RAW in [0, 1], given exactly when built with ``prior``.

        Returns:
            ``(B, T, C_raw, H, W)`` RAW in [0, 1].
        """
        if (prior is None) == self.prior:
            raise RawMambaError(f"decoder built with prior={self.prior} needs {'a' if self.prior else 'no'} prior")
        b, t, _, h, w = frames.shape
        flat = frames.flatten(0, 1)
        last = len(self.stem) - 1  # the full-resolution skip, which also reads the prior
        y = self.inp(features)
        images = channels_last_on_cpu(flat)
        for i in range(last):
            y = self._join(y, self.stem[i](images), b, t)  # the lower-resolution volume is freed here
            y = self.ups[i](y)
        stem_in = channels_last_on_cpu(torch.cat((flat, prior.flatten(0, 1)), dim=1)) if prior is not None else images
        rows = strip_rows(frames)
        if rows >= h or self.stem[last][0].stride != (1, 1):
            y = self._join(y, self.stem[last](stem_in), b, t)
            return self._output(self.ups[last](y), frames, prior)
        raw = frames.new_empty((b, t, self.raw_channels, h, w))
        halo = self.ups[last].halo  # input rows beyond a strip that its own rows read: computed exactly
        source = source_rows(y.shape[-2], h)  # on the CPU, as the strips are
        for top in range(0, h, rows):  # the full-resolution stage strip by strip (see strip_rows)
            bottom = min(top + rows, h)
            start, stop = max(top - halo, 0), min(bottom + halo, h)
            joined = self._join_rows(y, stem_in, source, start, stop, b, t)
            block = self.ups[last](joined)[..., top - start : bottom - start, :]
            del joined
            raw[..., top:bottom, :] = self._output(
                block, frames[..., top:bottom, :], None if prior is None else prior[..., top:bottom, :]
            )
        return raw

    def _join(self, y: torch.Tensor, skip: torch.Tensor, b: int, t: int) -> torch.Tensor:
        """``y (B, C, T, h', w')`` upsampled to the skip's ``(B * T, C_s, h, w)`` size and joined with it."""
        skip = skip.view(b, t, *skip.shape[1:]).transpose(1, 2)  # (B, C_s, T, h, w)
        y = F.interpolate(y, size=(t, *skip.shape[-2:]), mode="trilinear", align_corners=False)
        return join_channels(y, skip)

    def _join_rows(self, y, stem_in, source, start: int, stop: int, b: int, t: int) -> torch.Tensor:
        """Rows ``start:stop`` of ``_join(y, self.stem[-1](stem_in), b, t)``: the stem on those rows and its halo,
        and the trilinear upsampling of ``y`` as two steps, its width on the source rows, then the rows
        (``source``: :func:`source_rows`; the time axis keeps its size, which trilinear leaves as it is)."""
        stem = self.stem[-1]
        pad = stem[0].padding[0]
        first, end = max(start - pad, 0), min(stop + pad, stem_in.shape[-2])
        skip = stem(stem_in[..., first:end, :])[..., start - first : stop - first, :]
        lower, upper, weight = (index[start:stop] for index in source)
        low, high = int(lower[0]), int(upper[-1]) + 1
        wide = F.interpolate(y[..., low:high, :], size=(t, high - low, stem_in.shape[-1]), mode="trilinear",
                             align_corners=False)  # fmt: skip
        weight = weight.view(-1, 1)
        rows = wide.index_select(3, lower - low) * (1 - weight) + wide.index_select(3, upper - low) * weight
        del wide
        return join_channels(rows, skip.reshape(b, t, *skip.shape[1:]).transpose(1, 2))

    def _output(self, y: torch.Tensor, frames: torch.Tensor, prior: torch.Tensor | None) -> torch.Tensor:
        """The head: full-resolution features ``(B, C, T, H, W)`` and their sRGB frames (and prior) -> RAW."""
        b, t, _, h, w = frames.shape
        k = self.base_channels
        coeffs = conv_volume(self.head, y).transpose(1, 2).reshape(b, t, self.raw_channels, k + 1, h, w)
        base = tone_curve(frames, self.curve) if prior is None else prior  # (B, T, k, H, W)
        raw = (coeffs[:, :, :, :k] * base[:, :, None]).sum(dim=3) + coeffs[:, :, :, k]
        if prior is not None:
            raw = prior + raw
        return raw.clamp(0.0, 1.0)

