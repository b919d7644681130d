"""Tests of the joint colour + position interpolation and RAWMamba's sample refinement built on it."""

import numpy as np
import pytest
import torch
from scipy.interpolate import RBFInterpolator
from test_models_rawmamba import SMALL as NETWORK_ONLY

from rawmamba.errors import RawMambaError
from rawmamba.metadata import grid_mask
from rawmamba.metadata.joint_interpolation import LocalLinearInterpolator, interpolate_samples, joint_features
from rawmamba.models import create_model
from rawmamba.models.sample_refinement import refine_on_samples
from rawmamba.numba_support import numba_available

SMALL = {**NETWORK_ONLY, "sample_refinement": "rbf"}
needs_numba = pytest.mark.skipif(not numba_available(), reason="the fast path needs numba")


def smooth_scene(h: int = 48, w: int = 64, seed: int = 0):
    """sRGB, a RAW prediction, and a truth that differs from it by a smooth field (a spatial tone change)."""
    gen = torch.Generator().manual_seed(seed)
    srgb = torch.nn.functional.interpolate(torch.rand(1, 3, h // 8, w // 8, generator=gen), (h, w), mode="bilinear")
    srgb = srgb[0]
    pred = 0.2 + 0.5 * srgb.flip(0)
    ys, xs = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    truth = pred + 0.08 * (xs - ys)[None]
    return srgb, pred, truth


def test_interpolation_is_exact_at_the_samples_and_checks_its_input():
    srgb, _, truth = smooth_scene()
    mask = grid_mask(48, 64, 8, rng=torch.Generator().manual_seed(1))
    rows, cols = torch.nonzero(mask[0] > 0, as_tuple=True)
    values = truth[:, rows, cols].T.double()
    dense = interpolate_samples(srgb, rows, cols, values)
    assert dense.shape == (3, 48, 64) and dense.dtype == torch.float64
    assert torch.allclose(dense[:, rows, cols].T, values, atol=1e-9)
    with pytest.raises(RawMambaError, match="kernel"):
        interpolate_samples(srgb, rows, cols, values, kernel="gaussian")
    with pytest.raises(RawMambaError, match="N >= 1"):
        interpolate_samples(srgb, rows[:0], cols[:0], values[:0])
    with pytest.raises(RawMambaError, match="values"):
        interpolate_samples(srgb, rows, cols, values[1:])
    nan_pixel = srgb.clone()
    nan_pixel[0, 5, 7] = float("nan")
    for bad_srgb, bad_values in ((nan_pixel, values), (srgb, values.clone().fill_(float("inf")))):
        with pytest.raises(RawMambaError, match="NaN or inf"):
            interpolate_samples(bad_srgb, rows, cols, bad_values)


def grid_problem(h: int = 48, w: int = 64, channels: int = 3, seed: int = 0, posterise: bool = False):
    """Sample and pixel features of a smooth image with 8x8 grid samples and a little noise, so that no two samples
    are equally near a pixel; ``posterise``: flat colour regions and the samples at the cell centres instead, where
    many are."""
    gen = torch.Generator().manual_seed(seed)
    srgb = smooth_scene(h, w, seed)[0].double()
    if posterise:
        srgb = (srgb * 3).round() / 3
    else:  # the smooth scene's borders repeat colours (bilinear upsampling): equal distances there
        srgb = srgb + 1e-3 * torch.rand(srgb.shape, generator=gen, dtype=torch.float64)
    mask = grid_mask(h, w, 8, rng=None if posterise else torch.Generator().manual_seed(seed))
    rows, cols = torch.nonzero(mask[0] > 0, as_tuple=True)
    index = torch.arange(h * w)
    samples = joint_features(srgb[:, rows, cols].T, rows, cols, 1 / 128)
    queries = joint_features(srgb.reshape(3, -1).T, index // w, index % w, 1 / 128)
    values = torch.randn(rows.numel(), channels, generator=gen, dtype=torch.float64).numpy()
    return samples, queries, values


def squared_distances(queries: np.ndarray, samples: np.ndarray) -> np.ndarray:
    """``(P, N)`` squared distances summed over the features in order (as the fast path sums them)."""
    total = np.zeros((len(queries), len(samples)))
    for f in range(samples.shape[1]):
        total += (queries[:, f, None] - samples[None, :, f]) ** 2
    return total


def local_linear_reference(samples, values, neighbors, queries):
    """The linear RBF with a constant term on each query's ``neighbors`` nearest samples, ties to the lower index,
    solved by LAPACK (``numpy.linalg.solve``) query by query."""
    distances = squared_distances(queries, samples)
    out = np.empty((len(queries), values.shape[1]))
    for p in range(len(queries)):
        near = np.sort(np.lexsort((np.arange(len(samples)), distances[p]))[:neighbors])
        local = samples[near]
        lhs = np.zeros((neighbors + 1, neighbors + 1))
        lhs[:neighbors, :neighbors] = -np.sqrt(squared_distances(local, local))
        lhs[:neighbors, neighbors] = lhs[neighbors, :neighbors] = 1.0
        rhs = np.concatenate([values[near], np.zeros((1, values.shape[1]))])
        coefficients = np.linalg.solve(lhs, rhs)
        out[p] = -np.sqrt(distances[p, near]) @ coefficients[:neighbors] + coefficients[neighbors]
    return out


@needs_numba
@pytest.mark.parametrize("neighbors,channels", [(32, 3), (32, 4), (48, 1), (1, 3)])
def test_fast_local_interpolation_equals_scipy(neighbors, channels):
    samples, queries, values = grid_problem(channels=channels, seed=neighbors)
    neighbors = min(neighbors, len(samples))  # 48 is every sample: one neighbourhood for all pixels
    want = RBFInterpolator(samples, values, neighbors=neighbors, kernel="linear", degree=0, smoothing=0.0)(queries)
    got = LocalLinearInterpolator(samples, values, neighbors)(queries)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9 * np.abs(want).max())


@needs_numba
@pytest.mark.parametrize("neighbors", [32, 5])
def test_fast_local_interpolation_breaks_ties_by_sample_index(neighbors):
    # Flat colours on a pixel grid: many pixels have equally near samples at their k-th distance, and the
    # neighbourhood takes the lower sample indices (scipy's tree takes whichever its traversal meets first).
    samples, queries, values = grid_problem(seed=3, posterise=True)
    distances = np.sort(squared_distances(queries, samples), axis=1)
    tied = distances[:, neighbors - 1] == distances[:, neighbors]
    assert tied.sum() >= 30, "the problem has ties at the k-th distance"
    want = local_linear_reference(samples, values, neighbors, queries)
    got = LocalLinearInterpolator(samples, values, neighbors)(queries)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9 * np.abs(want).max())


@needs_numba
def test_interpolate_samples_takes_the_fast_path_with_the_same_result(monkeypatch):
    from rawmamba.metadata import joint_interpolation

    srgb, _, truth = smooth_scene()
    mask = grid_mask(48, 64, 8, rng=torch.Generator().manual_seed(1))
    rows, cols = torch.nonzero(mask[0] > 0, as_tuple=True)
    values = truth[:, rows, cols].T.double()
    calls = []
    monkeypatch.setattr(joint_interpolation.LocalLinearInterpolator, "__call__", _counting(calls))
    fast = interpolate_samples(srgb, rows, cols, values)
    assert calls, "the default interpolant with numba installed takes the fast path"
    monkeypatch.setattr(joint_interpolation, "numba_available", lambda: False)
    assert torch.allclose(fast, interpolate_samples(srgb, rows, cols, values), rtol=0, atol=1e-12)


@needs_numba
def test_fast_path_defers_singular_systems_to_scipy():
    """Samples with equal features (no position term, one colour) make every local system singular: scipy's
    error, as without the fast path."""
    samples = np.zeros((40, 5))
    samples[:, :2] = np.arange(40)[:, None] % 2  # two distinct features, each 20 times
    values = np.ones((40, 1))
    with pytest.raises(np.linalg.LinAlgError):
        RBFInterpolator(samples, values, neighbors=8, kernel="linear", degree=0)(samples[:3])
    with pytest.raises(np.linalg.LinAlgError):
        LocalLinearInterpolator(samples, values, 8)(samples[:3])


def _counting(calls: list):
    original = LocalLinearInterpolator.__call__

    def call(self, queries):
        calls.append(len(queries))
        return original(self, queries)

    return call


def test_refinement_passes_through_the_samples_and_fixes_a_smooth_residual():
    srgb, pred, truth = smooth_scene()
    mask = grid_mask(48, 64, 8, rng=torch.Generator().manual_seed(2))[None]
    refined = refine_on_samples(pred[None, None], srgb[None, None], truth[None] * mask, mask)
    assert refined.shape == (1, 1, 3, 48, 64)
    on = mask[0, 0] > 0
    assert torch.allclose(refined[0, 0][:, on], truth[:, on], atol=1e-6)
    before = (pred - truth)[:, ~on].square().mean()
    after = (refined[0, 0] - truth)[:, ~on].square().mean()
    assert after < before / 20, (before, after)  # measured: 52x lower


def test_refinement_handles_each_batch_element_with_its_own_samples():
    scenes = [smooth_scene(seed=s) for s in (3, 4)]
    srgb = torch.stack([s for s, _, _ in scenes])[:, None]
    pred = torch.stack([p for _, p, _ in scenes])[:, None]
    truth = torch.stack([t for _, _, t in scenes])
    mask = torch.stack([grid_mask(48, 64, 8, rng=torch.Generator().manual_seed(s)) for s in (5, 6)])
    batch = refine_on_samples(pred, srgb, truth * mask, mask)
    for b in range(2):
        alone = refine_on_samples(pred[b : b + 1], srgb[b : b + 1], (truth * mask)[b : b + 1], mask[b : b + 1])
        assert torch.allclose(batch[b], alone[0])


def test_rawmamba_refines_sampled_metadata_in_eval_mode_only():
    torch.manual_seed(0)
    model = create_model("rawmamba_tiny", **SMALL)
    assert model.sample_refinement == "rbf"
    torch.nn.init.normal_(model.decoder.head.weight, std=0.05)  # a non-trivial correction, as after training
    h, w = 40, 56
    x = torch.rand(1, 1, 3, h, w)
    raw = torch.rand(1, 3, h, w)
    mask = grid_mask(h, w, 8, rng=torch.Generator().manual_seed(0))[None]
    with torch.no_grad():
        refined = model.eval()(x, x[:, 0] * mask, raw * mask, mask)
        trained_mode = model.train()(x, x[:, 0] * mask, raw * mask, mask)
        model.eval().sample_refinement = "none"
        plain = model(x, x[:, 0] * mask, raw * mask, mask)
    assert torch.allclose(refined, refine_on_samples(plain, x, raw * mask, mask), atol=1e-6)
    on = mask[0, 0] > 0
    assert torch.allclose(refined[0, 0][:, on], raw[0][:, on], atol=1e-5)
    assert not torch.allclose(plain[0, 0][:, on], raw[0][:, on], atol=1e-3)
    model.correction_gate = False
    with torch.no_grad():
        assert torch.allclose(trained_mode, model(x, x[:, 0] * mask, raw * mask, mask), atol=1e-6)


def test_rawmamba_leaves_dense_video_metadata_unrefined():
    torch.manual_seed(0)
    model = create_model("rawmamba_tiny", **SMALL).eval()
    torch.nn.init.normal_(model.decoder.head.weight, std=0.05)
    frames = torch.rand(1, 2, 3, 32, 32)
    raw = torch.rand(1, 3, 32, 32)
    flow = torch.zeros(1, 2, 2, 32, 32)
    with torch.no_grad():
        refined = model(frames, frames[:, 0], raw, flow=flow)
        model.sample_refinement = "none"
        assert torch.equal(refined, model(frames, frames[:, 0], raw, flow=flow))


def test_unknown_refinement_is_refused():
    with pytest.raises(RawMambaError, match="sample_refinement"):
        create_model("rawmamba_tiny", **{**SMALL, "sample_refinement": "bilateral"})


def test_checkpoint_setting_can_be_overridden_and_is_checked():
    from rawmamba.inference import NetworkMethod, bundled_checkpoint

    assert NetworkMethod.from_checkpoint(bundled_checkpoint()).model.sample_refinement == "rbf"
    method = NetworkMethod.from_checkpoint(bundled_checkpoint(), sample_refinement="none")
    assert method.model.sample_refinement == "none"
    with pytest.raises(RawMambaError, match="one of"):
        NetworkMethod.from_checkpoint(bundled_checkpoint(), sample_refinement="bilateral")
    with pytest.raises(RawMambaError, match="no sample refinement"):
        NetworkMethod.from_checkpoint(bundled_checkpoint("cam_unet"), sample_refinement="none")
