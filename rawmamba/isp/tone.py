"""Global tone: parametric tone curves (S-curve, filmic) with exact inverses, and the sRGB OETF.

A tone curve maps linear [0, 1] to linear [0, 1], is strictly increasing with ``f(0) = 0`` and
``f(1) = 1``, and is applied either to each channel (``mode="rgb"``, like a camera's RGB curve, which
shifts hues slightly) or to luminance with the colour ratios kept (``mode="luminance"``).
Curves evaluate in float64 and return the input dtype. NaN propagates.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rawmamba.errors import RawMambaError
from rawmamba.isp.color import luminance

__all__ = [
    "FilmicCurve",
    "IdentityCurve",
    "SCurve",
    "ToneCurve",
    "apply_tone_curve",
    "srgb_oetf",
    "srgb_oetf_inverse",
]

# IEC 61966-2-1 sRGB encoding constants.
_SRGB_THRESHOLD = 0.0031308
_SRGB_A = 0.055
_SRGB_GAMMA = 2.4
_SRGB_SLOPE = 12.92


def srgb_oetf(x: torch.Tensor) -> torch.Tensor:
    """sRGB encoding (IEC 61966-2-1) of linear light: ``srgb_oetf(0.18) = 0.4613561``.

    Linear segment ``12.92 x`` up to 0.0031308, then ``1.055 x^(1/2.4) - 0.055``. Negative inputs are
    mirrored (``f(-x) = -f(x)``, as in extended sRGB), so the function is invertible on all reals.
    """
    a = x.abs()
    power = (1 + _SRGB_A) * a.clamp_min(_SRGB_THRESHOLD) ** (1 / _SRGB_GAMMA) - _SRGB_A
    return torch.sign(x) * torch.where(a <= _SRGB_THRESHOLD, _SRGB_SLOPE * a, power)


def srgb_oetf_inverse(y: torch.Tensor) -> torch.Tensor:
    """Inverse of ``srgb_oetf``: sRGB-encoded values to linear light (the sRGB EOTF)."""
    a = y.abs()
    threshold = _SRGB_SLOPE * _SRGB_THRESHOLD
    power = ((a.clamp_min(threshold) + _SRGB_A) / (1 + _SRGB_A)) ** _SRGB_GAMMA
    return torch.sign(y) * torch.where(a <= threshold, a / _SRGB_SLOPE, power)


class ToneCurve:
    """A strictly increasing map of [0, 1] onto [0, 1] with an exact inverse (subclasses are dataclasses)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The curve on float64 values in [0, 1]."""
        raise NotImplementedError

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        """The inverse curve on float64 values in [0, 1]."""
        raise NotImplementedError

    def _check_monotone(self) -> None:
        x = torch.linspace(0.0, 1.0, 1025, dtype=torch.float64)
        y = self.forward(x)
        if not bool((y.diff() > 0).all()) or abs(float(y[0])) > 1e-9 or abs(float(y[-1]) - 1) > 1e-9:
            raise RawMambaError(f"{self} is not a strictly increasing map of [0, 1] onto [0, 1]")


@dataclass(frozen=True)
class IdentityCurve(ToneCurve):
    """No tone curve: ``f(x) = x``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return y


@dataclass(frozen=True)
class SCurve(ToneCurve):
    """A logistic S-curve applied in a perceptual (gamma) domain, normalised to fix 0 and 1.

    ``u = x^(1/gamma)``, ``v = (s(u) - s(0)) / (s(1) - s(0))`` with ``s(u) = sigmoid(contrast (u - pivot))``,
    ``f(x) = v^gamma``. Larger ``contrast`` darkens shadows and brightens highlights around ``pivot``.

    Args:
        contrast: logistic slope, > 0.1 (about 2 = gentle, 8 = punchy).
        pivot: the perceptual value where the S is centred, in (0, 1).
        gamma: the perceptual domain's exponent, > 0 (2.2 ~ display gamma).
    """

    contrast: float = 5.0
    pivot: float = 0.45
    gamma: float = 2.2

    def __post_init__(self) -> None:
        if not (self.contrast > 0.1 and 0.0 < self.pivot < 1.0 and self.gamma > 0):
            raise RawMambaError(f"SCurve needs contrast > 0.1, 0 < pivot < 1, gamma > 0; got {self}")

    def _ends(self) -> tuple[float, float]:
        lo = torch.sigmoid(torch.tensor(-self.contrast * self.pivot, dtype=torch.float64))
        hi = torch.sigmoid(torch.tensor(self.contrast * (1 - self.pivot), dtype=torch.float64))
        return float(lo), float(hi)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lo, hi = self._ends()
        s = torch.sigmoid(self.contrast * (x ** (1 / self.gamma) - self.pivot))
        return ((s - lo) / (hi - lo)).clamp(0.0, 1.0) ** self.gamma

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        lo, hi = self._ends()
        s = lo + y ** (1 / self.gamma) * (hi - lo)
        u = self.pivot + torch.logit(s) / self.contrast
        return u.clamp(0.0, 1.0) ** self.gamma


@dataclass(frozen=True)
class FilmicCurve(ToneCurve):
    """Hable's filmic curve (Uncharted 2, 2010) scaled so that linear 1 maps to 1.

    ``H(u) = (u (A u + C B) + D E) / (u (A u + B) + D F) - E / F``, ``f(x) = H(scale x) / H(scale)``.
    A = shoulder strength, B = linear strength, C = linear angle, D = toe strength, E/F = toe numerator/
    denominator; defaults are Hable's. ``scale`` is the linear-light value that becomes white: larger
    values use more of the soft shoulder (brighter mid-tones, more highlight roll-off).
    """

    scale: float = 6.0
    shoulder: float = 0.15
    linear: float = 0.50
    angle: float = 0.10
    toe: float = 0.20
    toe_num: float = 0.02
    toe_den: float = 0.30

    def __post_init__(self) -> None:
        if min(self.scale, self.shoulder, self.linear, self.toe, self.toe_den) <= 0 or self.toe_num < 0:
            raise RawMambaError(f"FilmicCurve parameters must be positive, got {self}")
        self._check_monotone()

    def _h(self, u: torch.Tensor) -> torch.Tensor:
        a, b, c, d, e, f = self.shoulder, self.linear, self.angle, self.toe, self.toe_num, self.toe_den
        return (u * (a * u + c * b) + d * e) / (u * (a * u + b) + d * f) - e / f

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        white = self._h(torch.tensor(self.scale, dtype=torch.float64))
        return self._h(self.scale * x) / white

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        a, b, c, d, e, f = self.shoulder, self.linear, self.angle, self.toe, self.toe_num, self.toe_den
        t = y * self._h(torch.tensor(self.scale, dtype=torch.float64)) + e / f
        # H(u) + E/F = t  <=>  A (1 - t) u^2 + B (C - t) u + D (E - F t) = 0; the non-negative root, in the
        # form that avoids cancellation for either sign of the linear coefficient.
        qa, qb, qc = a * (1 - t), b * (c - t), d * (e - f * t)
        root = (qb * qb - 4 * qa * qc).clamp_min(0.0).sqrt()
        u = torch.where(qb >= 0, 2 * qc / (-qb - root), (-qb + root) / (2 * qa))
        return (u / self.scale).clamp(0.0, 1.0)


def apply_tone_curve(
    rgb: torch.Tensor, curve: ToneCurve, *, mode: str = "rgb", inverse: bool = False, eps: float = 1e-6
) -> torch.Tensor:
    """Apply ``curve`` (or its inverse) to linear ``(*, 3, H, W)`` values, clipped to the curve's domain.

    Args:
        rgb: linear sRGB, ``(*, 3, H, W)``.
        curve: the tone curve.
        mode: ``"rgb"`` applies the curve to each channel clipped to [0, 1]; ``"luminance"`` maps luminance
            Y (clipped to [eps, 1]) to f(Y) and scales the three channels (clipped at 0) by ``f(Y) / Y``: hue
            and saturation are kept and channels may exceed 1.
        inverse: apply the exact inverse instead.
        eps: the luminance below which ``f(Y) / Y`` is replaced by its limit ``f(eps) / eps``.
    """
    fn = curve.inverse if inverse else curve.forward
    x = rgb.double().clamp_min(0.0)
    if mode == "rgb":
        return fn(x.clamp_max(1.0)).to(rgb.dtype)
    if mode == "luminance":
        y = luminance(x).clamp(eps, 1.0)
        return (x * (fn(y) / y)).to(rgb.dtype)
    raise RawMambaError(f"mode={mode!r} is not one of ['rgb', 'luminance']")
