"""SAM- and INF-style interpolators: exact (within tolerance) at the samples, deterministic, clear errors."""

import pytest
import torch

from rawmamba.baselines import GlobalColourFit, ImplicitNeuralFit, SAMInterpolation, SampleInterpolation, get_method
from rawmamba.errors import RawMambaError
from rawmamba.metadata import first_frame_metadata, grid_mask, sample_image_metadata


def _pair(height=48, width=64, seed=0, smooth=False):
    """sRGB (random pixels, or a smooth field) and a RAW: a global map times a smooth spatial gain (like local
    tone mapping)."""
    generator = torch.Generator().manual_seed(seed)
    if smooth:
        coarse = torch.rand(1, 3, height // 8, width // 8, generator=generator)
        srgb = torch.nn.functional.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=False)
    else:
        srgb = torch.rand(1, 3, height, width, generator=generator)
    ys, xs = torch.meshgrid(torch.linspace(0, 1, height), torch.linspace(0, 1, width), indexing="ij")
    gain = 0.7 + 0.3 * torch.sin(3 * xs + 2 * ys)
    raw = (srgb**2.2 * torch.tensor([0.5, 0.9, 0.7]).view(1, 3, 1, 1) * gain).clamp(0, 1)
    mask = grid_mask(height, width, rng=torch.Generator().manual_seed(seed + 1))
    return srgb, raw, mask, sample_image_metadata(srgb[0], raw[0], mask)


@pytest.mark.parametrize(("method", "tolerance"), [
    (SAMInterpolation(), 1e-6),
    (SAMInterpolation(target="ratio"), 1e-6),
    (SAMInterpolation(target="raw", kernel="thin_plate_spline", degree=1), 1e-6),
    (SampleInterpolation(), 1e-6),
    (ImplicitNeuralFit(iterations=1500, hidden=48, lr=3e-3), 5e-3),
])
def test_interpolators_return_the_samples_at_sampled_positions(method, tolerance):
    srgb, raw, mask, meta = _pair()
    pred = method.derender(srgb, meta)
    sampled = mask[0] > 0
    assert pred.shape == raw.shape and torch.isfinite(pred).all()
    assert (pred[0][:, sampled] - raw[0][:, sampled]).abs().max() < tolerance


def test_spatially_aware_methods_beat_the_global_fit_on_a_spatial_gain():
    srgb, raw, mask, meta = _pair(seed=4, smooth=True)
    error = {name: ((m.derender(srgb, meta) - raw) ** 2).mean().item()
             for name, m in [("global", GlobalColourFit()), ("sam", SAMInterpolation()),
                             ("inf", ImplicitNeuralFit(iterations=200))]}
    assert error["sam"] < 0.5 * error["global"] and error["inf"] < 0.5 * error["global"]


def test_inf_is_deterministic_for_a_seed_and_depends_on_it():
    srgb, raw, mask, meta = _pair(seed=2)
    a = ImplicitNeuralFit(iterations=30, seed=5).derender(srgb, meta)
    b = ImplicitNeuralFit(iterations=30, seed=5).derender(srgb, meta)
    c = ImplicitNeuralFit(iterations=30, seed=6).derender(srgb, meta)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(SAMInterpolation().derender(srgb, meta), SAMInterpolation().derender(srgb, meta))


def test_inf_handles_tiles_that_do_not_divide_the_image_and_several_frames():
    srgb, raw, mask, meta = _pair(height=40, width=70)
    frames = torch.cat([srgb, srgb.flip(-1)])
    pred = ImplicitNeuralFit(tile=16, iterations=5).derender(frames, meta)
    assert pred.shape == (2, 3, 40, 70) and torch.isfinite(pred).all()


def test_wrong_metadata_kind_and_bad_options_are_clear_errors():
    srgb, raw, mask, meta = _pair()
    dense = first_frame_metadata(srgb, raw)
    for method in (SAMInterpolation(), ImplicitNeuralFit(iterations=1)):
        with pytest.raises(RawMambaError, match=f"{method.name} takes sampled metadata, got frame metadata"):
            method.derender(srgb, dense)
    with pytest.raises(RawMambaError, match="target"):
        SAMInterpolation(target="log")
    with pytest.raises(RawMambaError, match="unknown de-rendering method 'cam'.*inverse-gamma, global-fit"):
        get_method("cam")
    with pytest.raises(RawMambaError, match="bad options"):
        get_method("sam", nonsense=1)
    with pytest.raises(RawMambaError, match="needs a sample mask"):
        SAMInterpolation().capture(srgb, raw)
