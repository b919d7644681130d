"""PSNR/SSIM against scikit-image, and the CAM and RVD protocols against hand-written numpy versions."""

import math

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from rawmamba.errors import RawMambaError
from rawmamba.metrics import (
    cam_psnr,
    cam_quantize,
    cam_ssim,
    gaussian_window,
    psnr,
    rvd_psnr,
    rvd_quantize,
    rvd_ssim,
    ssim,
)


def _pair(shape, noise=0.05, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    a = torch.rand(shape, generator=g, dtype=torch.float64)
    b = (a + noise * torch.randn(shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    return a.to(dtype), b.to(dtype)


def _sk_ssim(a: np.ndarray, b: np.ndarray, data_range: float) -> float:
    return structural_similarity(a.astype(np.float64), b.astype(np.float64), data_range=data_range,
                                 gaussian_weights=True, sigma=1.5, use_sample_covariance=False, channel_axis=0)


@pytest.mark.parametrize(("shape", "data_range", "noise"), [
    ((3, 32, 45), 1.0, 0.05),
    ((1, 11, 11), 1.0, 0.2),
    ((4, 24, 17), 1.0, 0.01),
    ((3, 40, 30), 255.0, 0.1),
])
def test_plain_ssim_and_psnr_match_scikit_image(shape, data_range, noise):
    a, b = _pair((2, *shape), noise=noise, seed=len(shape) + shape[-1])
    a, b = a * data_range, b * data_range
    ours_ssim = ssim(b, a, data_range=data_range)
    ours_psnr = psnr(b, a, data_range=data_range)
    assert ours_ssim.dtype == torch.float64 and ours_ssim.shape == (2,)
    for i in range(2):
        ref_ssim = _sk_ssim(b[i].numpy(), a[i].numpy(), data_range)
        ref_psnr = peak_signal_noise_ratio(a[i].numpy(), b[i].numpy(), data_range=data_range)
        assert abs(ours_ssim[i].item() - ref_ssim) < 1e-6, (ours_ssim[i].item(), ref_ssim)
        assert abs(ours_psnr[i].item() - ref_psnr) < 1e-6, (ours_psnr[i].item(), ref_psnr)


def test_gaussian_window_is_scipy_11_taps():
    taps = gaussian_window(1.5)
    assert taps.numel() == 11
    assert math.isclose(taps.sum().item(), 1.0, rel_tol=1e-12)
    impulse = np.zeros(31)
    impulse[15] = 1.0
    from scipy.ndimage import gaussian_filter1d

    ref = gaussian_filter1d(impulse, 1.5, truncate=3.5)[10:21]
    np.testing.assert_allclose(taps.numpy(), ref, atol=1e-15)


def test_leading_shape_and_reduction():
    a, b = _pair((2, 3, 2, 16, 16))
    values = ssim(a, b)
    assert values.shape == (2, 3)
    assert torch.allclose(ssim(a, b, reduction="mean"), values.mean())
    assert psnr(a, b).shape == (2, 3)
    assert torch.allclose(psnr(a, b, reduction="mean"), psnr(a, b).mean())
    with pytest.raises(RawMambaError, match="reduction"):
        psnr(a, b, reduction="sum")


def test_psnr_identical_is_inf_unless_capped():
    a, _ = _pair((2, 3, 8, 8))
    assert torch.isinf(psnr(a, a)).all()
    assert torch.equal(psnr(a, a, max_db=100.0), torch.full((2,), 100.0, dtype=torch.float64))


def test_bad_inputs_raise():
    a, b = _pair((3, 16, 16))
    with pytest.raises(RawMambaError, match="same shape"):
        psnr(a, b[:, :8])
    with pytest.raises(RawMambaError, match="at least 11x11"):
        ssim(a[:, :10, :10], b[:, :10, :10])
    with pytest.raises(RawMambaError, match="data_range"):
        ssim(a, b, data_range=0.0)


def test_float32_ssim_path_is_differentiable_and_close_to_float64():
    a, b = _pair((2, 3, 20, 20), dtype=torch.float32)
    a.requires_grad_(True)
    value = ssim(a, b, dtype=None, reduction="mean")
    assert value.dtype == torch.float32
    value.backward()
    assert a.grad is not None and torch.isfinite(a.grad).all() and a.grad.abs().sum() > 0
    assert abs(value.item() - ssim(a.detach().double(), b.double(), reduction="mean").item()) < 1e-4


def test_ssim_gradient_matches_finite_differences():
    a, b = _pair((1, 1, 12, 13), noise=0.2)
    a.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: ssim(x, b, reduction="mean"), (a,), fast_mode=True)


# --- CAM protocol ---------------------------------------------------------------------------------------------


def test_cam_protocol_matches_uint16_reference():
    gt, pred = _pair((2, 3, 24, 30), noise=0.002, seed=3)
    pred = pred.float()  # predictions come as float32
    values_psnr, values_ssim = cam_psnr(pred, gt), cam_ssim(pred, gt)
    for i in range(2):
        p16 = np.floor(np.clip(pred[i].double().numpy(), 0, 1) * 65535).astype(np.uint16)
        g16 = np.floor(gt[i].numpy() * 65535).astype(np.uint16)
        ref_psnr = peak_signal_noise_ratio(g16, p16, data_range=65535)
        ref_ssim = _sk_ssim(p16, g16, 65535)
        assert abs(values_psnr[i].item() - ref_psnr) < 1e-6
        assert abs(values_ssim[i].item() - ref_ssim) < 1e-6


def test_cam_quantisation_floors_and_clips():
    levels = torch.randint(0, 65536, (1, 3, 12, 12), generator=torch.Generator().manual_seed(0)).double()
    gt = levels / 65535
    below_next_level = gt + 0.9 / 65535  # floors to the same level everywhere
    assert torch.equal(cam_quantize(below_next_level), levels)
    assert torch.isinf(cam_psnr(below_next_level, gt)).all()
    assert cam_psnr(below_next_level, gt, max_db=120.0).item() == 120.0
    assert cam_ssim(below_next_level, gt).item() == 1.0
    one_level_up = (gt + 1.0 / 65535).clamp(max=1.0)
    assert torch.isfinite(cam_psnr(one_level_up, gt)).all()
    overshoot = gt.clone()
    overshoot[..., 0, 0] = 1.5  # clipped to 1 before quantising
    assert cam_quantize(overshoot)[..., 0, 0].eq(65535).all()


# --- RVD protocol ---------------------------------------------------------------------------------------------


def _np_unpack_rggb(packed: np.ndarray) -> np.ndarray:
    _, h, w = packed.shape
    out = np.zeros((2 * h, 2 * w))
    out[0::2, 0::2], out[0::2, 1::2], out[1::2, 0::2], out[1::2, 1::2] = packed
    return out


def test_rvd_protocol_matches_numpy_reference():
    gt, pred = _pair((3, 4, 10, 12), noise=0.003, seed=5)
    values = rvd_psnr(pred, gt)
    ssims = rvd_ssim(pred, gt)
    assert values.shape == (3,)
    for i in range(3):
        p = np.uint16(_np_unpack_rggb(pred[i].numpy()) * 16383) / 16383
        g = np.uint16(_np_unpack_rggb(gt[i].numpy()) * 16383) / 16383
        assert abs(values[i].item() - peak_signal_noise_ratio(g, p, data_range=1.0)) < 1e-6
        ref_ssim = structural_similarity(p, g, data_range=1.0, gaussian_weights=True, sigma=1.5,
                                         use_sample_covariance=False)
        assert abs(ssims[i].item() - ref_ssim) < 1e-6


def test_rvd_quantisation_truncates_and_unpacks():
    packed = torch.full((1, 4, 2, 2), 0.99 / 16383, dtype=torch.float64)
    packed[:, 0] = 5.5 / 16383  # red
    mosaic = rvd_quantize(packed)
    assert mosaic.shape == (1, 1, 4, 4)
    assert torch.equal(mosaic[0, 0, 0::2, 0::2], torch.full((2, 2), 5 / 16383, dtype=torch.float64))
    assert mosaic[0, 0, 1::2, 1::2].eq(0).all()
    with pytest.raises(RawMambaError, match="packed"):
        rvd_psnr(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))


def test_rvd_ssim_data_range_two_inflates():
    gt, pred = _pair((2, 4, 12, 12), noise=0.05, seed=9)
    assert (rvd_ssim(pred, gt, data_range=2.0) > rvd_ssim(pred, gt)).all()
