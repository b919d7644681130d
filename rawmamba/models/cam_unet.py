"""CAM-style baseline: a learned content-aware sampler trained jointly with a U-Net reconstructor.

After CAM (Nam et al., CVPR 2022): the sampler (cam_sampler.py) picks one RAW pixel per 8x8 cell from
the sRGB, and a U-Net reconstructs the RAW from the sRGB and those samples. Both train together: given
dense metadata (``meta_mask=None``: the whole RAW frame, ``TrainConfig.sampler = "dense"``), the network
samples it itself with the straight-through mask, so the loss reaches the sampler. Given a sample mask
(inference: the metadata file holds what ``sampler.hard_mask`` chose at capture time), it reconstructs
from exactly those samples. CAM's optional online fine-tuning adapts the reconstructor to one image's
samples at test time (``rawmamba.baselines.online_finetune``).

The reconstructor sees, besides the sRGB and the sparse samples with their mask, the samples spread by
normalised convolution over a ``2 cell + 1`` window, and starts (its head initialised small) close to the
linearised sRGB times the local ratio of RAW to linearised sRGB of the samples.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from rawmamba.errors import RawMambaError
from rawmamba.models.blind_unet import base_raw, check_frames
from rawmamba.models.cam_sampler import ContentAwareSampler
from rawmamba.models.padding import crop_to, pad_to_multiple
from rawmamba.models.unet import UNetDecoder, UNetEncoder, unet_multiple


def spread_samples(values: torch.Tensor, mask: torch.Tensor, radius: int) -> torch.Tensor:
    """Normalised convolution: at every pixel the mean of the samples within ``radius`` pixels (box window).

    ``values (N, C, H, W)`` (zero off the samples), ``mask (N, 1, H, W)``; a pixel with no sample in reach
    gets 0.
    """
    size = 2 * radius + 1
    total = F.avg_pool2d(values * mask, size, stride=1, padding=radius, count_include_pad=True)
    count = F.avg_pool2d(mask, size, stride=1, padding=radius, count_include_pad=True)
    return total / count.clamp_min(1e-6)


class CAMUNet(nn.Module):
    """Learned sampler + U-Net reconstructor.

    Args:
        raw_channels: 3 (raw-RGB) or 4 (packed Bayer at the sRGB's size).
        cell: the sampler keeps one pixel per ``cell x cell`` cell.
        sampler_width: channels of the sampler's scoring CNN.
        widths: channels per U-Net level of the reconstructor.
        gain_eps: added to the linearised sRGB before the RAW/sRGB ratio of the base is taken.
    """

    metadata_kinds = ("sampled",)

    def __init__(self, *, raw_channels: int = 3, cell: int = 8, sampler_width: int = 16,
                 widths: tuple[int, ...] = (24, 48, 96, 128), gain_eps: float = 0.01) -> None:
        super().__init__()
        if raw_channels not in (3, 4):
            raise RawMambaError(f"raw_channels must be 3 or 4, got {raw_channels}")
        self.config = {"raw_channels": raw_channels, "cell": cell, "sampler_width": sampler_width,
                       "widths": tuple(widths), "gain_eps": gain_eps}
        self.raw_channels, self.cell, self.gain_eps = raw_channels, cell, gain_eps
        self.multiple = unet_multiple(widths)
        self.sampler = ContentAwareSampler(cell=cell, width=sampler_width)
        # inputs: sRGB, samples (sRGB, RAW, mask), spread samples (sRGB, RAW), base
        in_channels = 3 + (3 + raw_channels + 1) + (3 + raw_channels) + raw_channels
        self.encoder = UNetEncoder(in_channels, widths)
        self.decoder = UNetDecoder(widths, widths, raw_channels)

    def finetune_parameters(self) -> list[nn.Parameter]:
        """What CAM's online fine-tuning adapts: the reconstructor (not the sampler)."""
        return [*self.encoder.parameters(), *self.decoder.parameters()]

    def reconstruct(self, frames: torch.Tensor, meta_srgb: torch.Tensor, meta_raw: torch.Tensor,
                    mask: torch.Tensor) -> torch.Tensor:
        """``frames (N, 3, H, W)`` and sampled metadata (zero off the mask) -> RAW ``(N, C_raw, H, W)``."""
        h, w = frames.shape[-2:]
        spread_srgb = spread_samples(meta_srgb, mask, self.cell)
        spread_raw = spread_samples(meta_raw, mask, self.cell)
        gain = spread_raw / (base_raw(spread_srgb, self.raw_channels) + self.gain_eps)
        base = base_raw(frames, self.raw_channels) * gain
        inputs = torch.cat([frames, meta_srgb, meta_raw, mask, spread_srgb, spread_raw, base], dim=1)
        features = self.encoder(pad_to_multiple(inputs, self.multiple))
        return base + crop_to(self.decoder(features[-1], features), h, w)

    def forward(self, x: torch.Tensor, meta_srgb: torch.Tensor, meta_raw: torch.Tensor,
                meta_mask: torch.Tensor | None = None, flow: torch.Tensor | None = None) -> torch.Tensor:
        """De-render ``x (B, T, 3, H, W)`` -> ``(B, T, C_raw, H, W)``.

        ``meta_mask (B, 1, H, W)``: reconstruct from those samples (``meta_* = frame * mask``). None: the
        metadata is a dense frame and the sampler chooses the samples from it (training). Every frame uses
        the same samples; ``flow`` is unused.
        """
        check_frames(x, meta_raw, self.raw_channels)
        b, t, _, h, w = x.shape
        if meta_mask is None:
            meta_mask = self.sampler(meta_srgb)
        elif tuple(meta_mask.shape) != (b, 1, h, w):
            raise RawMambaError(f"meta_mask must be (B, 1, H, W) = {(b, 1, h, w)}, got {tuple(meta_mask.shape)}")
        meta_mask = meta_mask.to(x.dtype)
        samples = [m * meta_mask for m in (meta_srgb, meta_raw)]
        repeat = [v.repeat_interleave(t, dim=0) for v in (*samples, meta_mask)]
        out = self.reconstruct(x.flatten(0, 1), *repeat)
        return out.view(b, t, self.raw_channels, h, w)


def cam_unet(**overrides) -> CAMUNet:
    """The CAM-style baseline, 0.86 M parameters."""
    return CAMUNet(**overrides)
