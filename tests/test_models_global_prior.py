"""Tests of the metadata-fitted global colour prior: exact recovery of a global polynomial ISP, per element."""

import pytest
import torch

from rawmamba.baselines import GlobalColourFit, polynomial_features
from rawmamba.errors import RawMambaError
from rawmamba.metadata import first_frame_metadata, grid_mask, sample_image_metadata
from rawmamba.models.global_prior import GlobalColourPrior

H, W = 48, 64


def polynomial_isp(frames: torch.Tensor, coefficients: torch.Tensor) -> torch.Tensor:
    """``(B, T, 3, H, W)`` -> ``(B, T, C, H, W)`` through a per-element degree-3 map ``(B, 20, C)``."""
    features = polynomial_features(frames.double().movedim(2, -1), 3)  # (B, T, H, W, 20)
    return torch.einsum("bthwf,bfc->bthwc", features, coefficients).movedim(-1, 2)


def scene(batch: int = 2, t: int = 2, raw_channels: int = 3, seed: int = 0):
    """Frames, a RAW of each element's own polynomial ISP (in [0, 1] without clipping), and the RAW."""
    gen = torch.Generator().manual_seed(seed)
    frames = torch.rand(batch, t, 3, H, W, generator=gen)
    coefficients = 0.05 * torch.rand(batch, 20, raw_channels, generator=gen, dtype=torch.float64) - 0.025
    coefficients[:, 0] = 0.5  # |the other 19 terms| < 19 * 0.025: the values stay inside (0, 1)
    raw = polynomial_isp(frames, coefficients)
    assert 0 < raw.min() and raw.max() < 1, "the test map must not clip"
    return frames, raw.float()


def grid_metadata(frames: torch.Tensor, raw: torch.Tensor):
    mask = torch.stack([grid_mask(H, W, rng=torch.Generator().manual_seed(i)) for i in range(frames.shape[0])])
    mask = mask.view(-1, 1, H, W)
    return frames[:, 0] * mask, raw[:, 0] * mask, mask


@pytest.mark.parametrize("raw_channels", [3, 4])
def test_recovers_a_polynomial_isp_from_grid_metadata(raw_channels):
    frames, raw = scene(raw_channels=raw_channels)
    prior = GlobalColourPrior(ridge=1e-8)(frames, *grid_metadata(frames, raw))
    assert prior.shape == raw.shape and prior.dtype == frames.dtype
    assert (prior - raw).abs().max() < 1e-4, f"{(prior - raw).abs().max()}"


@pytest.mark.parametrize("max_pairs", [65_536, 500])
def test_recovers_a_polynomial_isp_from_dense_metadata(max_pairs):
    frames, raw = scene(t=3, seed=1)
    prior = GlobalColourPrior(ridge=1e-8, max_pairs=max_pairs)(frames, frames[:, 0], raw[:, 0], torch.ones(2, 1, H, W))
    assert (prior - raw).abs().max() < 1e-4, f"{(prior - raw).abs().max()}"


def test_fits_each_batch_element_on_its_own():
    frames, raw = scene(seed=2)
    ms, mr, mask = grid_metadata(frames, raw)
    prior = GlobalColourPrior()
    both = prior(frames, ms, mr, mask)
    for i in range(2):
        alone = prior(frames[i : i + 1], ms[i : i + 1], mr[i : i + 1], mask[i : i + 1])
        assert torch.allclose(both[i : i + 1], alone, atol=1e-6)
    swapped = prior(frames, ms, mr.flip(0), mask)  # the other element's RAW: a different fit
    assert (swapped - both).abs().max() > 0.05


def test_select_pairs_takes_only_weighted_pixels_within_the_budget():
    frames, raw = scene(seed=3)
    ms, mr, mask = grid_metadata(frames, raw)
    mask[1, :, : H // 2] = 0  # fewer samples in the second element
    srgb, pairs_raw, weights = GlobalColourPrior(max_pairs=20).select_pairs(ms, mr, mask)
    counts = (weights > 0).sum(1)
    assert counts.max() <= 20 and counts.min() >= 10
    assert torch.equal(weights > 0, srgb.sum(-1) > 0)  # every weighted pair is a sample, padding is zero
    dense = GlobalColourPrior(max_pairs=100).select_pairs(frames[:, 0], raw[:, 0], torch.ones(2, 1, H, W))
    assert (dense[2] > 0).sum(1).tolist() == [100, 100]  # every 31st of 3072 pixels, deterministically


def test_ignores_unweighted_pixels():
    frames, raw = scene(seed=4)
    ms, mr, mask = grid_metadata(frames, raw)
    prior = GlobalColourPrior()
    clean = prior(frames, ms, mr, mask)
    noisy = prior(frames, ms + (1 - mask) * torch.rand_like(ms), mr + (1 - mask) * torch.rand_like(mr), mask)
    assert torch.allclose(clean, noisy, atol=1e-6)


def test_equals_the_global_fit_baseline_with_the_same_settings():
    frames, raw = scene(batch=1, seed=5)
    raw = (raw + 0.05 * torch.rand_like(raw)).clamp(0, 1)  # not exactly polynomial: the fits must still agree
    mask = grid_mask(H, W, rng=torch.Generator().manual_seed(0))
    meta = sample_image_metadata(frames[0, 0], raw[0, 0], mask)
    baseline = GlobalColourFit().derender(frames[0], meta)
    prior = GlobalColourPrior()(frames, (frames[:, 0] * mask), (raw[:, 0] * mask), mask.view(1, 1, H, W))
    assert torch.allclose(prior[0], baseline, atol=1e-5), f"{(prior[0] - baseline).abs().max()}"
    dense = GlobalColourFit().derender(frames[0], first_frame_metadata(frames[0], raw[0]))
    prior = GlobalColourPrior()(frames, frames[:, 0], raw[:, 0], torch.ones(1, 1, H, W))
    assert torch.allclose(prior[0], dense, atol=1e-5), f"{(prior[0] - dense).abs().max()}"


def test_is_robust_with_few_samples_and_differentiable():
    frames, raw = scene(batch=1, seed=6)
    mask = torch.zeros(1, 1, H, W)
    mask[..., 10, 10:15] = 1  # five samples for twenty coefficients: only the ridge makes it solvable
    ms, mr = (frames[:, 0] * mask).requires_grad_(True), (raw[:, 0] * mask).requires_grad_(True)
    prior = GlobalColourPrior()(frames, ms, mr, mask)
    assert torch.isfinite(prior).all() and prior.min() >= 0 and prior.max() <= 1
    prior.sum().backward()
    assert mr.grad.abs().sum() > 0 and ms.grad.abs().sum() > 0
    assert mr.grad[(mask == 0).expand_as(mr)].abs().max() == 0  # unweighted pixels do not matter


def test_ignores_autocast():
    frames, raw = scene(seed=7)
    meta = grid_metadata(frames, raw)
    prior = GlobalColourPrior()
    reference = prior(frames, *meta)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        autocast = prior(frames, *meta)
    assert autocast.dtype == torch.float32 and torch.equal(autocast, reference)


def test_bad_arguments_are_clear():
    with pytest.raises(RawMambaError, match="degree"):
        GlobalColourPrior(degree=0)
    with pytest.raises(RawMambaError, match="ridge"):
        GlobalColourPrior(ridge=0.0)
    with pytest.raises(RawMambaError, match="max_pairs"):
        GlobalColourPrior(max_pairs=0)
    frames, raw = scene()
    ms, mr, mask = grid_metadata(frames, raw)
    with pytest.raises(RawMambaError, match="batch size"):
        GlobalColourPrior()(frames, ms[:1], mr[:1], mask[:1])
    with pytest.raises(RawMambaError, match="meta_mask"):
        GlobalColourPrior()(frames, ms, mr, mask.expand(-1, 3, -1, -1))
