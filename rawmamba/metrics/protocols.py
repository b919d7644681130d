"""The two published test protocols, CAM (image) and RVD-Part2 (video), on top of ``psnr``/``ssim``.

CAM protocol (Nam et al. 2022, used for the paper's Table 1): raw-RGB predictions and ground truth in
[0, 1] are quantised to 16-bit integers ``floor(x * 65535)``; PSNR with peak 65535 over all pixels
(the sampled metadata pixels included); SSIM with an 11x11 Gaussian window (sigma 1.5) on the same
16-bit values with data range 65535; mean over the test images of a camera.

RVD protocol (Zhang et al. 2024, the paper's Table 2): packed ``(*, 4, H/2, W/2)`` prediction and ground
truth (R, Gr, Gb, B) are unpacked to the full-resolution ``(*, 1, H, W)`` Bayer mosaic and quantised
``uint16(x * 16383) / 16383`` (truncation, 14-bit); PSNR with peak 1 per frame; the mean per video, then
the mean over videos (use ``MetricTable.mean(by="video")``). RVD's own SSIM passed a data range of 2,
which inflates SSIM; ``rvd_ssim`` uses data range 1 by default (say so when comparing with the paper).

Both protocols clip to [0, 1] before quantising (``clip=True``): a network may overshoot slightly, and
the integer images the protocols describe cannot hold values outside that range.
"""

from __future__ import annotations

import torch

from rawmamba.errors import RawMambaError
from rawmamba.isp import CFA, unpack
from rawmamba.metrics.quality import psnr, ssim

__all__ = ["CAM_PEAK", "RVD_PEAK", "cam_quantize", "cam_psnr", "cam_ssim", "rvd_quantize", "rvd_psnr", "rvd_ssim"]

CAM_PEAK = 65535  # 16-bit raw-RGB of the CAM dataset
RVD_PEAK = 16383  # 14-bit Bayer mosaics of RVD-Part2 (2**14 - 1)


def _clip(x: torch.Tensor, clip: bool) -> torch.Tensor:
    x = x.to(torch.float64)
    return x.clamp(0.0, 1.0) if clip else x


def cam_quantize(x: torch.Tensor, *, clip: bool = True) -> torch.Tensor:
    """``floor(x * 65535)`` in float64: [0, 1] images -> integer-valued 16-bit levels in [0, 65535]."""
    return torch.floor(_clip(x, clip) * CAM_PEAK)


def cam_psnr(pred: torch.Tensor, target: torch.Tensor, *, clip: bool = True, max_db: float | None = None,
             reduction: str = "none") -> torch.Tensor:
    """CAM-protocol PSNR (dB) of ``(*, 3, H, W)`` raw-RGB images in [0, 1], per image.

    Images that agree after quantisation give ``inf`` unless ``max_db`` caps them (see ``psnr``).
    """
    return psnr(cam_quantize(pred, clip=clip), cam_quantize(target, clip=clip), data_range=CAM_PEAK,
                max_db=max_db, reduction=reduction)


def cam_ssim(pred: torch.Tensor, target: torch.Tensor, *, clip: bool = True, reduction: str = "none") -> torch.Tensor:
    """CAM-protocol SSIM of ``(*, 3, H, W)`` raw-RGB images in [0, 1]: 16-bit levels, data range 65535."""
    return ssim(cam_quantize(pred, clip=clip), cam_quantize(target, clip=clip), data_range=CAM_PEAK,
                sigma=1.5, reduction=reduction)


def rvd_quantize(packed: torch.Tensor, cfa: CFA | str = CFA.RGGB, *, clip: bool = True) -> torch.Tensor:
    """Packed ``(*, 4, h, w)`` in [0, 1] -> the ``(*, 1, 2h, 2w)`` mosaic quantised ``uint16(x*16383)/16383``.

    The float64 result holds exactly the values RVD's evaluation sees (truncation towards zero, as a
    float-to-uint16 cast does).
    """
    if packed.dim() < 3 or packed.shape[-3] != 4:
        raise RawMambaError(f"RVD protocol needs packed (*, 4, H/2, W/2) RAW, got shape {tuple(packed.shape)}")
    mosaic = unpack(_clip(packed, clip), cfa)
    return torch.trunc(mosaic * RVD_PEAK) / RVD_PEAK


def rvd_psnr(pred: torch.Tensor, target: torch.Tensor, cfa: CFA | str = CFA.RGGB, *, clip: bool = True,
             max_db: float | None = None, reduction: str = "none") -> torch.Tensor:
    """RVD-protocol PSNR (dB, peak 1) per frame of packed ``(*, 4, H/2, W/2)`` RAW.

    Per-frame values; the protocol's score is the mean per video and then over videos
    (``MetricTable.mean(by="video")``), not the mean over all frames.
    """
    return psnr(rvd_quantize(pred, cfa, clip=clip), rvd_quantize(target, cfa, clip=clip), data_range=1.0,
                max_db=max_db, reduction=reduction)


def rvd_ssim(pred: torch.Tensor, target: torch.Tensor, cfa: CFA | str = CFA.RGGB, *, data_range: float = 1.0,
             clip: bool = True, reduction: str = "none") -> torch.Tensor:
    """RVD-protocol SSIM per frame on the unpacked, quantised mosaic.

    Args:
        data_range: 1 (default, the correct range of [0, 1] data); RVD's published numbers used 2.
    """
    return ssim(rvd_quantize(pred, cfa, clip=clip), rvd_quantize(target, cfa, clip=clip), data_range=data_range,
                sigma=1.5, reduction=reduction)
