"""Camera profiles: published colour matrices of real cameras plus a fixed simulated ISP look per camera.

``PUBLISHED_COLOR_MATRICES`` holds the XYZ -> camera ``ColorMatrix`` (D65 illuminant, x 10000) of real
cameras as published in Adobe's DNG converter data and dcraw's ``adobe_coeff`` table (rawpy:
``rgb_xyz_matrix``): public measurements, including the paper's CAM cameras (Samsung NX2000,
Olympus E-PL6, Sony SLT-A57) and RVD's source camera (Canon EOS 5D Mark III).

The *looks* (tone curve, local tone mapping, edits, JPEG quality) are our own choices: each camera gets
a distinct, plausible rendering so that models see different ISPs; they are not vendor data.
A ``Camera`` is fixed; each shot draws its illuminant (white balance) and exposure from an explicit
generator into a ``Shot``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from rawmamba.errors import RawMambaError
from rawmamba.isp.color import camera_to_srgb_matrix, illuminant_wb_gains
from rawmamba.isp.edits import Edits
from rawmamba.isp.local_tone import LOCAL_TONE_OPERATORS
from rawmamba.isp.rng import as_generator, uniform
from rawmamba.isp.tone import FilmicCurve, IdentityCurve, SCurve, ToneCurve

__all__ = ["CAMERAS", "PUBLISHED_COLOR_MATRICES", "Camera", "Shot", "get_camera", "plain_look", "random_camera"]

PUBLISHED_COLOR_MATRICES: dict[str, tuple[int, ...]] = {
    "Canon EOS 5D Mark III": (6722, -635, -963, -4287, 12460, 2028, -908, 2162, 5668),
    "Canon EOS 550D": (6941, -1164, -857, -3825, 11597, 2534, -416, 1540, 6039),
    "Nikon D750": (9020, -2890, -715, -4535, 12436, 2348, -934, 1919, 7086),
    "Nikon D7000": (8198, -2239, -724, -4871, 12389, 2798, -1043, 2050, 7181),
    "Olympus E-PL6": (8380, -2630, -639, -2887, 10725, 2496, -627, 1427, 5438),
    "Samsung NX2000": (7557, -2522, -739, -4679, 12949, 1894, -840, 1777, 5311),
    "Sony ILCE-7M3": (7374, -2389, -551, -5435, 13162, 2519, -1006, 1795, 6552),
    "Sony SLT-A57": (5991, -1456, -455, -4764, 12135, 2980, -707, 1425, 6701),
}


@dataclass(frozen=True)
class Shot:
    """Per-shot parameters drawn by ``Camera.draw_shot``.

    Args:
        wb_gains: white-balance gains (R, G, B) in camera space, G = 1.
        exposure: digital exposure gain applied with the white balance (2**EV).
        cct: the illuminant's correlated colour temperature in kelvin (informative).
        tint: the illuminant's green-magenta offset (informative).
    """

    wb_gains: tuple[float, float, float]
    exposure: float = 1.0
    cct: float = 6504.0
    tint: float = 0.0


@dataclass(frozen=True)
class Camera:
    """A camera model with a fixed ISP. Per-shot white balance and exposure come from ``draw_shot``.

    Args:
        name: model name.
        xyz_to_camera: the 9 entries (row-major) of the XYZ -> camera ColorMatrix, any overall scale.
        white: reference white the colour matrix is normalised to (``"D65"``, or ``"D50"`` for DNG PCS).
        tone_curve: global tone curve on linear values.
        tone_mode: ``"rgb"`` (per channel) or ``"luminance"`` (ratio preserving).
        local_tone: local tone operator name (see ``LOCAL_TONE_OPERATORS``) or None.
        local_tone_strength: its ``strength`` in [0, 1).
        local_tone_params: its other keyword arguments.
        edits: look edits (``rawmamba.isp.edits.Edits``).
        vignette: residual lens-shading strength in [0, 1) left uncorrected by the ISP.
        jpeg_quality: the camera's JPEG quality (used when ``render(jpeg=True)``).
        cct_range: range of illuminant temperatures (kelvin) drawn per shot, log-uniformly in mired.
        tint_range: range of the illuminant's green-magenta offset drawn per shot.
        wb_error: std of the log error of the automatic white balance on the R and B gains.
        exposure_range: range of the digital exposure in stops (EV) drawn per shot.
    """

    name: str
    xyz_to_camera: tuple[float, ...]
    white: str = "D65"
    tone_curve: ToneCurve = field(default_factory=SCurve)
    tone_mode: str = "rgb"
    local_tone: str | None = "bilateral"
    local_tone_strength: float = 0.4
    local_tone_params: dict = field(default_factory=dict)
    edits: Edits = field(default_factory=Edits)
    vignette: float = 0.0
    jpeg_quality: int = 92
    cct_range: tuple[float, float] = (2800.0, 8000.0)
    tint_range: tuple[float, float] = (-0.03, 0.03)
    wb_error: float = 0.03
    exposure_range: tuple[float, float] = (-0.5, 1.0)

    def __post_init__(self) -> None:
        if len(self.xyz_to_camera) != 9:
            raise RawMambaError(f"Camera {self.name!r}: xyz_to_camera needs 9 values, got {len(self.xyz_to_camera)}")
        if self.tone_mode not in ("rgb", "luminance"):
            raise RawMambaError(f"Camera {self.name!r}: tone_mode={self.tone_mode!r} is not 'rgb' or 'luminance'")
        if self.local_tone is not None and self.local_tone not in LOCAL_TONE_OPERATORS:
            raise RawMambaError(f"Camera {self.name!r}: local_tone={self.local_tone!r} is not one of "
                                f"{sorted(LOCAL_TONE_OPERATORS)} or None")  # fmt: skip
        if not 0.0 <= self.vignette < 1.0 or not 1 <= self.jpeg_quality <= 100:
            raise RawMambaError(f"Camera {self.name!r}: need 0 <= vignette < 1 and 1 <= jpeg_quality <= 100")

    @property
    def color_matrix(self) -> torch.Tensor:
        """``(3, 3)`` float64 white-balanced camera RGB -> linear sRGB matrix (rows sum to 1)."""
        return camera_to_srgb_matrix(torch.tensor(self.xyz_to_camera, dtype=torch.float64).view(3, 3), white=self.white)

    def draw_shot(self, rng: torch.Generator | np.random.Generator) -> Shot:
        """Draw an illuminant (CCT uniform in mired, tint), its white balance with AWB error, and an exposure."""
        gen = as_generator(rng)
        mired = uniform(gen, 1e6 / self.cct_range[1], 1e6 / self.cct_range[0])
        cct = 1e6 / mired
        tint = uniform(gen, *self.tint_range)
        r, g, b = illuminant_wb_gains(torch.tensor(self.xyz_to_camera, dtype=torch.float64).view(3, 3), cct, tint=tint)
        error = torch.randn(2, generator=gen, dtype=torch.float64) * self.wb_error
        gains = (r * math.exp(float(error[0])), g, b * math.exp(float(error[1])))
        exposure = 2.0 ** uniform(gen, *self.exposure_range)
        return Shot(wb_gains=gains, exposure=exposure, cct=cct, tint=tint)


def _camera(name: str, **look) -> Camera:
    return Camera(name=name, xyz_to_camera=tuple(v / 10000 for v in PUBLISHED_COLOR_MATRICES[name]), **look)


CAMERAS: dict[str, Camera] = {
    camera.name: camera
    for camera in [
        _camera("Canon EOS 5D Mark III", tone_curve=SCurve(contrast=4.5, pivot=0.42), local_tone="bilateral",
                local_tone_strength=0.3, edits=Edits(saturation=1.08, hue_warp=4.0, hue_warp_phase=40.0),
                jpeg_quality=95),
        _camera("Canon EOS 550D", tone_curve=SCurve(contrast=5.5, pivot=0.45), local_tone="laplacian",
                local_tone_strength=0.2, edits=Edits(saturation=1.12, shadows=0.1), vignette=0.1, jpeg_quality=90),
        _camera("Nikon D750", tone_curve=SCurve(contrast=4.0, pivot=0.4, gamma=2.0), local_tone="guided",
                local_tone_strength=0.3, edits=Edits(highlights=0.85, vibrance=0.25), jpeg_quality=94),
        _camera("Nikon D7000", tone_curve=SCurve(contrast=5.0, pivot=0.43), tone_mode="luminance",
                local_tone="guided", local_tone_strength=0.35, edits=Edits(hue_shift=3.0, saturation=1.05),
                jpeg_quality=90),
        _camera("Olympus E-PL6", tone_curve=FilmicCurve(scale=5.0), local_tone="bilateral",
                local_tone_strength=0.45, edits=Edits(chroma_by_lightness=0.15, brightness_by_chroma=0.05),
                vignette=0.15, jpeg_quality=92),
        _camera("Samsung NX2000", tone_curve=SCurve(contrast=6.0, pivot=0.45), local_tone="laplacian",
                local_tone_strength=0.35, local_tone_params={"detail_gain": 1.7},
                edits=Edits(saturation=1.15, hue_warp=-6.0, hue_warp_phase=200.0), jpeg_quality=88),
        _camera("Sony ILCE-7M3", tone_curve=FilmicCurve(scale=8.0), tone_mode="luminance", local_tone="bilateral",
                local_tone_strength=0.5, edits=Edits(shadows=0.3, highlights=0.8, vibrance=0.2), jpeg_quality=95),
        _camera("Sony SLT-A57", tone_curve=FilmicCurve(scale=4.0), local_tone="guided", local_tone_strength=0.4,
                edits=Edits(vibrance=0.3, chroma_by_lightness=0.1), vignette=0.08, jpeg_quality=93),
    ]
}  # fmt: skip

# Other spellings: the CAM dataset's camera folders and their alternative public names.
_ALIASES = {
    "samsung": "Samsung NX2000",
    "samsungnx2000": "Samsung NX2000",
    "sony": "Sony SLT-A57",
    "sonya57": "Sony SLT-A57",
    "olympus": "Olympus E-PL6",
    "olympusepl6": "Olympus E-PL6",
    "sonya7iii": "Sony ILCE-7M3",
    "canon5dmarkiii": "Canon EOS 5D Mark III",
}


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def get_camera(name: str) -> Camera:
    """The profile called ``name`` (case, spaces and dashes ignored; CAM folder names such as ``"sony"`` work)."""
    index = {_key(n): n for n in CAMERAS} | _ALIASES
    if _key(name) not in index:
        raise RawMambaError(f"unknown camera {name!r}; known cameras: {sorted(CAMERAS)} (aliases: {sorted(_ALIASES)})")
    return CAMERAS[index[_key(name)]]


def random_camera(rng: torch.Generator | np.random.Generator, *, matrix_jitter: float = 0.05) -> Camera:
    """A randomised camera for training variety: a published matrix (perturbed) with a random look.

    The XYZ -> camera matrix of a random published camera is multiplied by ``I + matrix_jitter * N(0, 1)``
    (a plausible other sensor); tone curve family and parameters, tone mode, local operator and its
    strength, edits, vignetting, JPEG quality and shot ranges are drawn from ranges that cover
    ordinary camera renderings.
    """
    gen = as_generator(rng)

    def pick(options):
        return options[int(torch.randint(len(options), (), generator=gen))]

    def u(lo, hi):
        return uniform(gen, lo, hi)

    base = pick(sorted(PUBLISHED_COLOR_MATRICES))
    matrix = torch.tensor(PUBLISHED_COLOR_MATRICES[base], dtype=torch.float64).view(3, 3) / 10000
    jitter = torch.eye(3, dtype=torch.float64) + matrix_jitter * torch.randn(3, 3, generator=gen, dtype=torch.float64)
    matrix = jitter @ matrix
    if pick(["scurve", "filmic"]) == "scurve":
        curve: ToneCurve = SCurve(contrast=u(2.0, 8.0), pivot=u(0.35, 0.55), gamma=u(1.8, 2.6))
    else:
        curve = FilmicCurve(scale=u(2.0, 12.0))
    kind = pick([None, "bilateral", "guided", "laplacian"])
    params: dict = {"detail_gain": u(1.0, 1.8)} if kind is not None else {}
    edits = Edits(
        highlights=pick([1.0, u(0.7, 0.95)]),
        shadows=u(0.0, 0.4),
        saturation=u(0.85, 1.3),
        vibrance=u(0.0, 0.5),
        hue_shift=u(-5.0, 5.0),
        hue_warp=u(-10.0, 10.0),
        hue_warp_phase=u(0.0, 360.0),
        brightness_by_chroma=u(0.0, 0.1),
        chroma_by_lightness=u(-0.2, 0.3),
    )
    template = CAMERAS[base]
    return replace(
        template,
        name=f"random ({base})",
        xyz_to_camera=tuple(float(v) for v in matrix.flatten()),
        tone_curve=curve,
        tone_mode=pick(["rgb", "luminance"]),
        local_tone=kind,
        local_tone_strength=u(0.1, 0.6) if kind is not None else 0.0,
        local_tone_params=params,
        edits=edits,
        vignette=pick([0.0, u(0.0, 0.3)]),
        jpeg_quality=int(torch.randint(70, 101, (), generator=gen)),
        wb_error=u(0.0, 0.06),
    )


def plain_look(camera: Camera) -> Camera:
    """``camera`` rendered like a plain raw converter (dcraw / LibRaw defaults): white balance, colour
    matrix, exposure and the sRGB curve only, with no tone curve, local tone mapping, look edits or
    vignetting. Its sRGB is a global function of the RAW, which a colour fit explains almost fully;
    training on such renderings too teaches a network to leave alone what the global fit already gets
    right."""
    return replace(
        camera,
        name=f"{camera.name} (plain)",
        tone_curve=IdentityCurve(),
        local_tone=None,
        local_tone_strength=0.0,
        local_tone_params={},
        edits=Edits(),
        vignette=0.0,
    )
