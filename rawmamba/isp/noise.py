"""Poisson-Gaussian sensor noise on linear raw, with noise levels drawn as in Brooks et al. (2019).

Model: ``y = a * Poisson(x / a) + N(0, b)``, so ``E[y] = x`` and ``Var[y] = a x + b`` where ``a`` is the
shot-noise gain (signal units per photo-electron) and ``b`` the read-noise variance, both in the
units of the normalised raw (white level = 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from rawmamba.errors import RawMambaError
from rawmamba.isp.rng import as_generator, uniform

__all__ = ["NoiseLevels", "add_poisson_gaussian_noise", "sample_noise_levels"]


@dataclass(frozen=True)
class NoiseLevels:
    """``Var[y] = shot_noise * x + read_noise`` for a normalised raw value x."""

    shot_noise: float
    read_noise: float


def add_poisson_gaussian_noise(
    raw: torch.Tensor,
    levels: NoiseLevels,
    rng: torch.Generator | np.random.Generator,
    *,
    clip: bool = False,
) -> torch.Tensor:
    """Add Poisson-Gaussian noise to linear ``raw`` (any shape, values >= 0; negatives count as 0 photons).

    Args:
        raw: linear raw in [0, 1] (normalised by the white level), e.g. ``(*, 1|3|4, H, W)``.
        levels: shot-noise gain and read-noise variance.
        rng: the generator every draw comes from (see ``rawmamba.isp.rng``); it must live on the
            tensor's device when a torch generator is given.
        clip: clip the result to [0, 1] like a sensor's ADC (off by default: the noise stays zero-mean).
    """
    if levels.shot_noise < 0 or levels.read_noise < 0:
        raise RawMambaError(f"noise levels must be non-negative, got {levels}")
    if not bool(torch.isfinite(raw).all()):
        raise RawMambaError("raw contains NaN or inf values; noise cannot be drawn for them")
    gen = as_generator(rng)
    x = raw.clamp_min(0.0)
    if levels.shot_noise > 0:
        rate = (x / levels.shot_noise).double()
        x = (torch.poisson(rate, generator=gen) * levels.shot_noise).to(raw.dtype)
    if levels.read_noise > 0:
        x = x + math.sqrt(levels.read_noise) * torch.randn(raw.shape, generator=gen, dtype=raw.dtype, device=raw.device)
    return x.clamp(0.0, 1.0) if clip else x


def sample_noise_levels(
    rng: torch.Generator | np.random.Generator,
    *,
    shot_range: tuple[float, float] = (1e-4, 1.2e-2),
    read_slope: float = 2.18,
    read_intercept: float = 1.20,
    read_spread: float = 0.26,
) -> NoiseLevels:
    """Draw plausible levels: ``log a ~ U(log shot_range)``, ``log b = slope log a + intercept + N(0, spread)``.

    The defaults are the log-linear fit of Brooks et al. 2019 ("Unprocessing images for learned raw
    denoising", Sec. 3.2) over real sensors and ISOs.
    """
    gen = as_generator(rng)
    log_shot = uniform(gen, math.log(shot_range[0]), math.log(shot_range[1]))
    noise = float(torch.randn((), generator=gen, dtype=torch.float64))
    log_read = read_slope * log_shot + read_intercept + read_spread * noise
    return NoiseLevels(shot_noise=math.exp(log_shot), read_noise=math.exp(log_read))
