"""The global colour fit and the sample interpolation: exactness where they must be exact, clear errors."""

import pytest
import torch

from rawmamba.baselines import GlobalColourFit, InverseGamma, SampleInterpolation, global_fit, polynomial_features
from rawmamba.baselines.global_fit import apply_polynomial
from rawmamba.errors import RawMambaError
from rawmamba.isp import srgb_oetf
from rawmamba.metadata import first_frame_metadata, grid_mask, sample_image_metadata


def _scene(height=48, width=64, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(1, 3, height, width, generator=generator)


def test_polynomial_features_count_and_values():
    rgb = torch.tensor([[2.0, 3.0, 5.0]])
    features = polynomial_features(rgb, 2)
    assert features.shape == (1, 10)  # 1 + 3 + 6 monomials
    assert set(features[0].tolist()) == {1.0, 2.0, 3.0, 5.0, 4.0, 6.0, 10.0, 9.0, 15.0, 25.0}


def test_polynomial_features_along_any_dim_agree_with_and_without_autograd():
    rgb = torch.rand(2, 5, 3, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    channel_last = polynomial_features(rgb.movedim(2, -1), 3)
    planes = polynomial_features(rgb, 3, dim=2)  # written in place (no autograd)
    assert planes.shape == (2, 5, 20, 7)
    assert torch.equal(planes.movedim(2, -1), channel_last)
    tracked = rgb.clone().requires_grad_()
    stacked = polynomial_features(tracked, 3, dim=2)  # stacked (autograd)
    assert torch.equal(stacked.detach(), planes)
    stacked[:, :, -1].sum().backward()  # the last monomial is b^3
    assert torch.allclose(tracked.grad[:, :, 2], 3 * rgb[:, :, 2] ** 2)
    assert torch.equal(tracked.grad[:, :, :2], torch.zeros_like(rgb[:, :, :2]))


def test_apply_polynomial_is_features_times_coefficients_per_frame():
    generator = torch.Generator().manual_seed(1)
    planes = torch.rand(2, 3, 3, 11, dtype=torch.float64, generator=generator)  # (B, frames, 3, P)
    coefficients = torch.randn(2, 10, 4, dtype=torch.float64, generator=generator)
    expected = polynomial_features(planes.movedim(2, -1), 2) @ coefficients[:, None]  # (B, frames, P, C)
    assert torch.allclose(apply_polynomial(coefficients, planes, 2), expected.movedim(-1, 2))


def test_global_fit_recovers_a_global_polynomial_isp_exactly():
    srgb = _scene()
    pixels = srgb[0].permute(1, 2, 0).reshape(-1, 3).double()
    truth = torch.stack([0.2 * pixels[:, 0] ** 2 + 0.1, 0.5 * pixels[:, 1] * pixels[:, 2], 0.3 * pixels[:, 2]], 1)
    raw = truth.T.reshape(3, 48, 64).float()[None]
    mask = grid_mask(48, 64, rng=torch.Generator().manual_seed(1))
    meta = sample_image_metadata(srgb[0], raw[0], mask)
    pred = GlobalColourFit(degree=2, ridge=0).derender(srgb, meta)
    assert (pred - raw).abs().max() < 1e-5


def test_global_fit_uses_dense_first_frame_metadata():
    srgb = _scene(seed=3).repeat(2, 1, 1, 1)
    raw = srgb**2.2 * torch.tensor([0.5, 0.8, 0.6]).view(1, 3, 1, 1)
    meta = first_frame_metadata(srgb, raw)
    pred = GlobalColourFit(degree=3).derender(srgb, meta)
    assert pred.shape == raw.shape and (pred - raw).abs().max() < 0.01


def test_interpolation_returns_the_samples_at_sampled_positions():
    srgb = _scene()
    raw = _scene(seed=5)
    mask = grid_mask(48, 64, rng=torch.Generator().manual_seed(2))
    meta = sample_image_metadata(srgb[0], raw[0], mask)
    pred = SampleInterpolation().derender(srgb, meta)
    sampled = mask[0] > 0
    assert torch.allclose(pred[0][:, sampled], raw[0][:, sampled], atol=1e-6)
    assert torch.isfinite(pred).all() and pred.shape == raw.shape


def test_wrong_metadata_kind_and_size_are_clear_errors():
    srgb = _scene()
    dense = first_frame_metadata(srgb, srgb)
    with pytest.raises(RawMambaError, match="takes sampled metadata"):
        SampleInterpolation().derender(srgb, dense)
    with pytest.raises(RawMambaError, match="metadata is for"):
        GlobalColourFit().derender(_scene(32, 32), dense)


def test_inverse_gamma_inverts_the_srgb_oetf():
    linear = _scene()
    meta = first_frame_metadata(linear, linear)
    pred = InverseGamma().derender(srgb_oetf(linear), meta)
    assert torch.allclose(pred, linear, atol=1e-5)


def test_apply_polynomial_in_chunks_converts_each_chunk(monkeypatch):
    # 2 x 3 frames of 11 pixels in chunks of 12 pixels (2 columns of every plane): the same map, computed in
    # the coefficients' float64 from float32 planes and returned in the dtype asked for
    monkeypatch.setattr(global_fit, "PIXELS_PER_CHUNK", 12)
    generator = torch.Generator().manual_seed(2)
    planes = torch.rand(2, 3, 3, 11, generator=generator)
    coefficients = torch.randn(2, 20, 4, dtype=torch.float64, generator=generator)
    expected = (polynomial_features(planes.double().movedim(2, -1), 3) @ coefficients[:, None]).movedim(-1, 2)
    got = apply_polynomial(coefficients, planes, 3)
    assert got.dtype == torch.float64
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    single = apply_polynomial(coefficients, planes, 3, dtype=torch.float32)
    assert single.dtype == torch.float32 and torch.equal(single, expected.float())
