"""RVD-style video baseline: recurrent de-rendering from the first frame's RAW, frame after frame.

After RVD (Zhang et al., "Leveraging frame affinity for sRGB-to-RAW video de-rendering", CVPR 2024):
the only metadata is the first frame's (sRGB, RAW) pair. For every frame t in turn,

1. the previous frame's sRGB and RAW (for the first frame: the metadata pair) are warped to frame t
   with optical flow (``flow_warp``, backward flow from t to t-1);
2. a confidence map, predicted from frame t and the warped sRGB, weights the warped RAW;
3. two U-Net encoders (unet.py) read frame t's sRGB and the weighted warped RAW (with the confidence
   and the warped sRGB); their deepest features are fused by global and local cross-attention
   (cross_attention.py), and a decoder with both encoders' skips predicts a correction of the warped RAW;
4. the prediction becomes the "previous RAW" of frame t+1 (predictions fed back).

Flow follows docs/CONVENTIONS.md: ``flow[t]`` goes from frame t to the metadata frame. The frame-to-frame
flows the recurrence needs are chained from it (``consecutive_flow``); without ``flow`` the network
computes it with OpenCV DIS, as RAWMamba does.
"""

from __future__ import annotations

import torch
from torch import nn

from rawmamba.errors import RawMambaError
from rawmamba.models.blind_unet import check_frames
from rawmamba.models.cross_attention import CrossAttentionFusion
from rawmamba.models.optical_flow import DIS_PRESETS, dis_flow, flow_warp
from rawmamba.models.padding import crop_to, pad_to_multiple
from rawmamba.models.unet import UNetDecoder, UNetEncoder, unet_multiple


def consecutive_flow(flow: torch.Tensor, iterations: int = 3) -> torch.Tensor:
    """Backward flows to the reference ``(B, T, 2, H, W)`` -> backward flows from frame t to frame t-1.

    Entry 0 is frame 0's flow to the reference itself (the reference plays frame -1). Pixel ``p`` of frame t
    is seen at ``p + f_t(p)`` in the reference; the point ``q = p + d`` of frame t-1 seen there satisfies
    ``q + f_{t-1}(q) = p + f_t(p)``, i.e. ``d = f_t(p) - f_{t-1}(p + d)``, solved by ``iterations``
    fixed-point steps from ``d = f_t(p) - f_{t-1}(p)``. Exact for translations (constant flows).
    """
    b, t, _, h, w = flow.shape
    steps = [flow[:, 0]]
    for index in range(1, t):
        current, previous = flow[:, index], flow[:, index - 1]
        d = current - previous
        for _ in range(iterations):
            d = current - flow_warp(previous, d, padding_mode="border")
        steps.append(d)
    return torch.stack(steps, dim=1)


class ConfidenceMap(nn.Module):
    """Per-pixel confidence in [0, 1] of the warped RAW, from the frame and the warped sRGB."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(9, width, 3, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(width, width, 3, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(width, 1, 3, padding=1),
        )

    def forward(self, frame: torch.Tensor, warped_srgb: torch.Tensor) -> torch.Tensor:
        """``(N, 3, H, W)`` twice -> ``(N, 1, H, W)``."""
        return torch.sigmoid(self.net(torch.cat([frame, warped_srgb, (frame - warped_srgb).abs()], dim=1)))


class RVDNet(nn.Module):
    """Two-encoder U-Net with cross-attention fusion, run recurrently over the frames.

    Args:
        raw_channels: 3 (raw-RGB) or 4 (packed Bayer at the sRGB's size, RVD's own format).
        widths: channels per U-Net level of each encoder (and of the decoder).
        heads: heads of the global cross-attention at the deepest level.
        window: neighbourhood side of the local cross-attention.
        confidence_width: channels of the confidence network.
        flow_preset: OpenCV DIS preset used when no flow is given.
    """

    metadata_kinds = ("frame",)

    def __init__(self, *, raw_channels: int = 3, widths: tuple[int, ...] = (16, 32, 64, 96), heads: int = 4,
                 window: int = 3, confidence_width: int = 16, flow_preset: str = "fast") -> None:
        super().__init__()
        if raw_channels not in (3, 4):
            raise RawMambaError(f"raw_channels must be 3 or 4, got {raw_channels}")
        if flow_preset not in DIS_PRESETS:
            raise RawMambaError(f"flow_preset must be one of {sorted(DIS_PRESETS)}, got {flow_preset!r}")
        self.config = {"raw_channels": raw_channels, "widths": tuple(widths), "heads": heads, "window": window,
                       "confidence_width": confidence_width, "flow_preset": flow_preset}
        self.raw_channels, self.flow_preset = raw_channels, flow_preset
        self.multiple = unet_multiple(widths)
        self.confidence = ConfidenceMap(confidence_width)
        self.srgb_encoder = UNetEncoder(3, widths)
        self.raw_encoder = UNetEncoder(raw_channels + 1 + 3, widths)
        self.fusion = CrossAttentionFusion(widths[-1], heads=heads, window=window)
        self.decoder = UNetDecoder(widths, tuple(2 * width for width in widths), raw_channels)

    def step(self, frame: torch.Tensor, previous_srgb: torch.Tensor, previous_raw: torch.Tensor,
             step_flow: torch.Tensor) -> torch.Tensor:
        """One frame: ``frame (N, 3, H, W)``, the previous sRGB and RAW, the flow from this frame to the
        previous one ``(N, 2, H, W)``; all padded to ``self.multiple``. Returns the RAW ``(N, C_raw, H, W)``."""
        warped_srgb = flow_warp(previous_srgb, step_flow, padding_mode="border")
        warped_raw = flow_warp(previous_raw, step_flow, padding_mode="border")
        confidence = self.confidence(frame, warped_srgb)
        srgb_features = self.srgb_encoder(frame)
        raw_features = self.raw_encoder(torch.cat([warped_raw * confidence, confidence, warped_srgb], dim=1))
        fused = self.fusion(srgb_features[-1], raw_features[-1])
        skips = [torch.cat(pair, dim=1) for pair in zip(srgb_features, raw_features, strict=True)]
        return warped_raw + self.decoder(fused, skips)

    def forward(self, x: torch.Tensor, meta_srgb: torch.Tensor, meta_raw: torch.Tensor,
                meta_mask: torch.Tensor | None = None, flow: torch.Tensor | None = None) -> torch.Tensor:
        """De-render ``x (B, T, 3, H, W)`` from the dense metadata frame -> ``(B, T, C_raw, H, W)``.

        ``flow (B, T, 2, H, W)``: backward flow from every frame to the metadata frame (None: OpenCV DIS).
        Sampled metadata (``meta_mask`` given) is refused: this network propagates a dense RAW frame.
        """
        check_frames(x, meta_raw, self.raw_channels)
        if meta_mask is not None:
            raise RawMambaError("the RVD-style network takes a dense first-frame (sRGB, RAW) pair, not sampled "
                                "metadata (meta_mask must be None)")
        b, t, _, h, w = x.shape
        if tuple(meta_srgb.shape) != (b, 3, h, w):
            raise RawMambaError(f"meta_srgb must be (B, 3, H, W) = {(b, 3, h, w)}, got {tuple(meta_srgb.shape)}")
        if flow is None:
            flow = dis_flow(x, meta_srgb, preset=self.flow_preset)
        elif tuple(flow.shape) != (b, t, 2, h, w):
            raise RawMambaError(f"flow must be (B, T, 2, H, W) = {(b, t, 2, h, w)}, got {tuple(flow.shape)}")
        m = self.multiple
        steps = pad_to_multiple(consecutive_flow(flow.to(x.dtype)), m, mode="replicate")
        frames = pad_to_multiple(x, m)
        previous_srgb, previous_raw = pad_to_multiple(meta_srgb, m), pad_to_multiple(meta_raw, m)
        outputs = []
        for index in range(t):
            raw = self.step(frames[:, index], previous_srgb, previous_raw, steps[:, index])
            outputs.append(crop_to(raw, h, w))
            previous_srgb, previous_raw = frames[:, index], raw
        return torch.stack(outputs, dim=1)


def rvd_net(**overrides) -> RVDNet:
    """The RVD-style baseline, 0.78 M parameters."""
    return RVDNet(**overrides)
