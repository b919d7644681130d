"""Poisson-Gaussian noise: variance a*x + b, zero mean, deterministic from a seed."""

import numpy as np
import pytest
import torch

from rawmamba.errors import RawMambaError
from rawmamba.isp import NoiseLevels, add_poisson_gaussian_noise, sample_noise_levels


def test_variance_is_affine_in_signal():
    levels = NoiseLevels(shot_noise=2e-3, read_noise=4e-5)
    signal = torch.tensor([0.02, 0.1, 0.3, 0.6, 0.9])
    clean = signal.view(5, 1, 1, 1).expand(5, 1, 200, 200)
    noisy = add_poisson_gaussian_noise(clean, levels, torch.Generator().manual_seed(0))
    mean = noisy.mean(dim=(1, 2, 3))
    var = noisy.var(dim=(1, 2, 3))
    assert torch.allclose(mean, signal, atol=2e-3)
    expected = levels.shot_noise * signal + levels.read_noise
    assert torch.allclose(var, expected, rtol=0.05), f"{var} vs {expected}"
    slope, intercept = np.polyfit(signal.numpy(), var.numpy(), 1)
    assert abs(slope - levels.shot_noise) < 0.1 * levels.shot_noise
    assert abs(intercept - levels.read_noise) < 0.5 * levels.read_noise


def test_deterministic_from_seed_and_numpy_generator():
    raw = torch.rand(2, 3, 16, 16)
    levels = NoiseLevels(1e-3, 1e-5)
    a = add_poisson_gaussian_noise(raw, levels, torch.Generator().manual_seed(7))
    b = add_poisson_gaussian_noise(raw, levels, torch.Generator().manual_seed(7))
    c = add_poisson_gaussian_noise(raw, levels, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)
    n1 = add_poisson_gaussian_noise(raw, levels, np.random.default_rng(3))
    n2 = add_poisson_gaussian_noise(raw, levels, np.random.default_rng(3))
    assert torch.equal(n1, n2) and n1.shape == raw.shape


def test_clip_and_zero_levels():
    raw = torch.rand(1, 8, 8)
    assert torch.equal(add_poisson_gaussian_noise(raw, NoiseLevels(0.0, 0.0), torch.Generator()), raw)
    clipped = add_poisson_gaussian_noise(raw, NoiseLevels(0.05, 0.01), torch.Generator().manual_seed(0), clip=True)
    assert clipped.min() >= 0 and clipped.max() <= 1


def test_sample_noise_levels_follow_brooks_relation():
    gen = torch.Generator().manual_seed(0)
    draws = [sample_noise_levels(gen) for _ in range(200)]
    shot = np.log([d.shot_noise for d in draws])
    read = np.log([d.read_noise for d in draws])
    assert shot.min() >= np.log(1e-4) and shot.max() <= np.log(1.2e-2)
    slope, intercept = np.polyfit(shot, read, 1)
    assert abs(slope - 2.18) < 0.15 and abs(intercept - 1.20) < 1.0
    again = sample_noise_levels(torch.Generator().manual_seed(0))
    assert again == draws[0]


def test_errors():
    with pytest.raises(RawMambaError, match="NaN"):
        add_poisson_gaussian_noise(torch.tensor([float("nan")]), NoiseLevels(1e-3, 1e-5), torch.Generator())
    with pytest.raises(RawMambaError, match="non-negative"):
        add_poisson_gaussian_noise(torch.rand(3), NoiseLevels(-1.0, 0.0), torch.Generator())
    with pytest.raises(RawMambaError, match="Generator"):
        add_poisson_gaussian_noise(torch.rand(3), NoiseLevels(1e-3, 0.0), 42)
