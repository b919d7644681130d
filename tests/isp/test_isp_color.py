"""Colour science: levels, white balance, published matrices normalised as dcraw does, Oklab."""

import pytest
import torch

from rawmamba.errors import RawMambaError
from rawmamba.isp import CFA, PUBLISHED_COLOR_MATRICES, apply_ccm, apply_white_balance, normalize_levels, unpack
from rawmamba.isp.color import (
    SRGB_TO_XYZ,
    WHITEPOINTS,
    bradford_adaptation,
    camera_to_srgb_matrix,
    camera_to_xyz_matrix,
    cct_to_xy,
    illuminant_wb_gains,
    oklab_to_srgb_linear,
    srgb_linear_to_oklab,
)

MATRICES = {name: torch.tensor(m, dtype=torch.float64).view(3, 3) / 1e4 for name, m in PUBLISHED_COLOR_MATRICES.items()}


def test_paper_cameras_are_published():
    for name in ["Canon EOS 5D Mark III", "Sony SLT-A57", "Samsung NX2000", "Olympus E-PL6"]:
        assert name in PUBLISHED_COLOR_MATRICES
    assert len(PUBLISHED_COLOR_MATRICES) >= 7


@pytest.mark.parametrize("name", sorted(MATRICES))
@pytest.mark.parametrize("white", ["D65", "D50"])
def test_camera_white_maps_to_reference_white(name, white):
    cam_to_xyz = camera_to_xyz_matrix(MATRICES[name], white=white)
    assert torch.allclose(cam_to_xyz @ torch.ones(3, dtype=torch.float64), WHITEPOINTS[white], atol=1e-12)
    ccm = camera_to_srgb_matrix(MATRICES[name], white=white)
    assert torch.allclose(ccm.sum(1), torch.ones(3, dtype=torch.float64), atol=1e-9)
    # a real camera matrix: strong positive diagonal, negative off-diagonals somewhere
    assert (ccm.diagonal() > 1).all() and (ccm < 0).any()


def test_dcraw_rgb_cam_construction():
    """dcraw: cam_rgb = cam_xyz @ xyz_rgb, rows normalised to sum 1, rgb_cam = inverse(cam_rgb)."""
    cam_rgb = MATRICES["Sony SLT-A57"] @ SRGB_TO_XYZ
    cam_rgb = cam_rgb / cam_rgb.sum(1, keepdim=True)
    assert torch.allclose(camera_to_srgb_matrix(MATRICES["Sony SLT-A57"]), torch.linalg.inv(cam_rgb), atol=1e-10)


def test_bradford_maps_whites():
    m = bradford_adaptation("D50", "D65")
    assert torch.allclose(m @ WHITEPOINTS["D50"], WHITEPOINTS["D65"], atol=1e-12)
    assert torch.allclose(bradford_adaptation("D65", "D65"), torch.eye(3, dtype=torch.float64), atol=1e-12)


def test_cct_to_xy_known_points():
    x, y = cct_to_xy(6504)
    assert abs(x - 0.3127) < 2e-3 and abs(y - 0.3290) < 2e-3  # D65
    x, y = cct_to_xy(2856)
    assert abs(x - 0.4476) < 3e-3 and abs(y - 0.4074) < 3e-3  # illuminant A (Planckian)
    with pytest.raises(RawMambaError, match="cct"):
        cct_to_xy(1000)


@pytest.mark.parametrize("cct", [2800.0, 4000.0, 6500.0, 9000.0])
def test_illuminant_gains_neutralise_grey(cct):
    m = MATRICES["Olympus E-PL6"]
    x, y = cct_to_xy(cct)
    response = m @ torch.tensor([x / y, 1.0, (1 - x - y) / y], dtype=torch.float64)
    gains = torch.tensor(illuminant_wb_gains(m, cct), dtype=torch.float64)
    balanced = response * gains
    assert torch.allclose(balanced, balanced[1].expand(3), rtol=1e-9)
    assert gains[1] == 1.0


def test_warmer_light_needs_more_blue_gain():
    m = MATRICES["Canon EOS 5D Mark III"]
    warm, cool = illuminant_wb_gains(m, 3000.0), illuminant_wb_gains(m, 7500.0)
    assert warm[2] > cool[2] and warm[0] < cool[0]


def test_apply_ccm_and_white_balance_vectorised():
    rgb = torch.rand(2, 3, 3, 4, 5)
    m = torch.randn(3, 3)
    out = apply_ccm(rgb, m)
    ref = torch.einsum("ij,abjhw->abihw", m, rgb)
    assert torch.allclose(out, ref, atol=1e-6)
    wb = apply_white_balance(rgb, (2.0, 1.0, 1.5))
    assert torch.allclose(wb[..., 0, :, :], 2 * rgb[..., 0, :, :]) and torch.equal(wb[..., 1, :, :], rgb[..., 1, :, :])
    assert torch.allclose(apply_white_balance(wb, (2.0, 1.0, 1.5), inverse=True), rgb)
    per_image = torch.tensor([[2.0, 1.0, 1.5], [1.2, 1.0, 3.0]])[:, None]  # (2, 1, 3) for leading (2, 3)
    assert torch.allclose(apply_white_balance(rgb, per_image)[1, :, 2], 3.0 * rgb[1, :, 2])
    with pytest.raises(RawMambaError, match="positive"):
        apply_white_balance(rgb, (0.0, 1.0, 1.0))


def test_normalize_levels_packed_mosaic_and_rgb():
    black = (512.0, 500.0, 510.0, 520.0)  # R, Gr, Gb, B
    packed = torch.stack([torch.full((2, 2), b + 0.5 * (16383 - b)) for b in black])
    out = normalize_levels(packed, black, 16383)
    assert torch.allclose(out, torch.full_like(out, 0.5))
    m = unpack(packed, CFA.GBRG)
    assert torch.allclose(normalize_levels(m, black, 16383, cfa=CFA.GBRG), torch.full_like(m, 0.5))
    assert normalize_levels(torch.tensor([[[0.0]], [[100.0]], [[70000.0]]]), 64, 16383).flatten().tolist() == [
        0.0,
        pytest.approx(36 / 16319),
        1.0,
    ]
    with pytest.raises(RawMambaError, match="cfa"):
        normalize_levels(m, black, 16383)
    with pytest.raises(RawMambaError, match="black_level_per_channel"):
        normalize_levels(packed, (1.0, 2.0), 16383)
    with pytest.raises(RawMambaError, match="white_level"):
        normalize_levels(packed, 600, 500)


def test_oklab_white_and_round_trip():
    white = srgb_linear_to_oklab(torch.ones(3, 1, 1, dtype=torch.float64))
    assert torch.allclose(white.flatten(), torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64), atol=1e-4)
    rgb = torch.rand(2, 3, 8, 8, dtype=torch.float64) * 1.2 - 0.1  # out of gamut values too
    assert torch.allclose(oklab_to_srgb_linear(srgb_linear_to_oklab(rgb)), rgb, atol=1e-10)


def test_nan_propagates():
    rgb = torch.rand(3, 2, 2)
    rgb[0, 0, 0] = float("nan")
    out = apply_ccm(rgb, torch.eye(3))
    assert out[:, 0, 0].isnan().all() and not out[:, 1, 1].isnan().any()
