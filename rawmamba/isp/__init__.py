"""rawmamba.isp: a camera-pipeline (ISP) simulator on torch tensors of shape ``(*, C, H, W)``.

One concept per module: ``cfa`` (Bayer patterns), ``color`` (levels, white balance, colour matrices,
Oklab), ``tone`` (tone curves, sRGB OETF), ``local_tone`` (local tone mapping), ``edits`` (look edits),
``noise`` (sensor noise), ``jpeg`` (quantisation, JPEG), ``cameras`` (published matrices, profiles),
``pipeline`` (render / unprocess), ``rng`` (explicit generators).
"""

from rawmamba.isp.cameras import (
    CAMERAS,
    PUBLISHED_COLOR_MATRICES,
    Camera,
    Shot,
    get_camera,
    plain_look,
    random_camera,
)
from rawmamba.isp.cfa import CFA, as_cfa, demosaic_bilinear, mosaic, pack, unpack
from rawmamba.isp.color import (
    apply_ccm,
    apply_white_balance,
    camera_to_srgb_matrix,
    camera_to_xyz_matrix,
    illuminant_wb_gains,
    luminance,
    normalize_levels,
)
from rawmamba.isp.edits import Edits, apply_edits
from rawmamba.isp.jpeg import jpeg_roundtrip, quantize
from rawmamba.isp.local_tone import LOCAL_TONE_OPERATORS, local_tone_map
from rawmamba.isp.noise import NoiseLevels, add_poisson_gaussian_noise, sample_noise_levels
from rawmamba.isp.pipeline import render, render_with_shot, unprocess, unprocess_photo
from rawmamba.isp.tone import FilmicCurve, IdentityCurve, SCurve, apply_tone_curve, srgb_oetf, srgb_oetf_inverse

__all__ = [
    "CAMERAS",
    "CFA",
    "LOCAL_TONE_OPERATORS",
    "PUBLISHED_COLOR_MATRICES",
    "Camera",
    "Edits",
    "FilmicCurve",
    "IdentityCurve",
    "NoiseLevels",
    "SCurve",
    "Shot",
    "add_poisson_gaussian_noise",
    "apply_ccm",
    "apply_edits",
    "apply_tone_curve",
    "apply_white_balance",
    "as_cfa",
    "camera_to_srgb_matrix",
    "camera_to_xyz_matrix",
    "demosaic_bilinear",
    "get_camera",
    "illuminant_wb_gains",
    "jpeg_roundtrip",
    "local_tone_map",
    "luminance",
    "mosaic",
    "normalize_levels",
    "pack",
    "plain_look",
    "quantize",
    "random_camera",
    "render",
    "render_with_shot",
    "sample_noise_levels",
    "srgb_oetf",
    "srgb_oetf_inverse",
    "unpack",
    "unprocess",
    "unprocess_photo",
]
