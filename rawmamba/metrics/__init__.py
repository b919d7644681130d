"""rawmamba.metrics: PSNR/SSIM in float64 under the plain, CAM and RVD protocols, and a table of results.

- ``psnr``, ``ssim`` (``quality``): plain metrics on ``(*, C, H, W)`` with an explicit data range; SSIM
  matches scikit-image's Gaussian SSIM.
- ``cam_psnr``, ``cam_ssim``, ``rvd_psnr``, ``rvd_ssim`` (``protocols``): the published test protocols.
- ``MetricTable`` (``table``): per-image rows, means overall and per group (per camera, per video).
"""

from rawmamba.metrics.protocols import (
    CAM_PEAK,
    RVD_PEAK,
    cam_psnr,
    cam_quantize,
    cam_ssim,
    rvd_psnr,
    rvd_quantize,
    rvd_ssim,
)
from rawmamba.metrics.quality import gaussian_window, psnr, ssim, ssim_map
from rawmamba.metrics.table import MetricTable

__all__ = [
    "CAM_PEAK",
    "RVD_PEAK",
    "MetricTable",
    "cam_psnr",
    "cam_quantize",
    "cam_ssim",
    "gaussian_window",
    "psnr",
    "rvd_psnr",
    "rvd_quantize",
    "rvd_ssim",
    "ssim",
    "ssim_map",
]
