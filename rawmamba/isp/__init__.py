"""rawmamba.isp: a camera-pipeline (ISP) simulator on torch tensors of shape ``(*, C, H, W)``."""

from rawmamba.isp.cfa import CFA, as_cfa, demosaic_bilinear, mosaic, pack, unpack

__all__ = ["CFA", "as_cfa", "demosaic_bilinear", "mosaic", "pack", "unpack"]
