"""Bayer CFA: mosaic, pack/unpack, pattern shifts and bilinear demosaic."""

import pytest
import torch

from rawmamba.errors import RawMambaError
from rawmamba.isp import CFA, as_cfa, demosaic_bilinear, mosaic, pack, unpack

ALL = list(CFA)


def _ramp(h: int, w: int, coeffs: tuple[tuple[float, float, float], ...]) -> torch.Tensor:
    y, x = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    return torch.stack([a + b * x + c * y for a, b, c in coeffs])


RAMP = ((0.1, 0.01, 0.02), (0.5, -0.02, 0.005), (0.3, 0.0, -0.01))


def test_top_left_pixel_matches_name():
    rgb = torch.stack([torch.full((4, 4), v) for v in (1.0, 2.0, 3.0)])
    for cfa in ALL:
        m = mosaic(rgb, cfa)[0]
        letters = "".join("RGB"[int(m[r, c]) - 1] for r in range(2) for c in range(2))
        assert letters == cfa.value


@pytest.mark.parametrize("cfa", ALL)
def test_pack_unpack_identity(cfa):
    m = torch.rand(2, 3, 1, 6, 8)
    p = pack(m, cfa)
    assert p.shape == (2, 3, 4, 3, 4)
    assert torch.equal(unpack(p, cfa), m)
    q = torch.rand(5, 4, 2, 3)
    assert torch.equal(pack(unpack(q, cfa), cfa), q)


@pytest.mark.parametrize("cfa", ALL)
def test_pack_order_is_r_gr_gb_b(cfa):
    rgb = torch.stack([torch.full((4, 6), v) for v in (1.0, 2.0, 3.0)])
    p = pack(mosaic(rgb, cfa), cfa)
    assert p[:, 0, 0].tolist() == [1.0, 2.0, 2.0, 3.0]
    gr_row, _ = cfa.offsets[1]
    red_row, _ = cfa.offsets[0]
    assert gr_row == red_row and cfa.offsets[2][0] == cfa.offsets[3][0]


def test_rvd_rggb_packing_slices():
    m = torch.rand(1, 8, 8)
    p = pack(m, "rggb")
    for i, (r, c) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        assert torch.equal(p[i], m[0, r::2, c::2])


@pytest.mark.parametrize("cfa", ALL)
@pytest.mark.parametrize("dy,dx", [(0, 1), (1, 0), (1, 1)])
def test_shift_by_one_pixel_switches_pattern(cfa, dy, dx):
    rgb = torch.rand(2, 3, 10, 12)
    m = mosaic(rgb, cfa)
    shifted = m[..., dy : dy + 8, dx : dx + 10]
    assert torch.equal(shifted, mosaic(rgb[..., dy : dy + 8, dx : dx + 10], cfa.shifted(dy, dx)))
    assert cfa.shifted(dy, dx) != cfa
    assert cfa.shifted(dy, dx).shifted(dy, dx) == cfa


def test_known_shifts():
    assert CFA.RGGB.shifted(0, 1) is CFA.GRBG
    assert CFA.RGGB.shifted(1, 0) is CFA.GBRG
    assert CFA.RGGB.shifted(1, 1) is CFA.BGGR


@pytest.mark.parametrize("cfa", ALL)
@pytest.mark.parametrize("border", ["reflect", "linear"])
def test_demosaic_exact_on_constant(cfa, border):
    rgb = torch.tensor([0.2, 0.7, 0.4]).view(3, 1, 1).expand(3, 8, 10)
    out = demosaic_bilinear(mosaic(rgb, cfa), cfa, border=border)
    assert torch.allclose(out, rgb, atol=1e-6), f"{(out - rgb).abs().max()}"


@pytest.mark.parametrize("cfa", ALL)
def test_demosaic_exact_on_ramp_interior_reflect(cfa):
    rgb = _ramp(10, 12, RAMP)
    out = demosaic_bilinear(mosaic(rgb, cfa), cfa)
    inner = (slice(None), slice(1, -1), slice(1, -1))
    assert torch.allclose(out[inner], rgb[inner], atol=1e-12), f"{(out - rgb)[inner].abs().max()}"
    assert not torch.allclose(out, rgb, atol=1e-6)  # the reflected border is documented as inexact


@pytest.mark.parametrize("cfa", ALL)
def test_demosaic_exact_on_ramp_everywhere_linear(cfa):
    rgb = _ramp(8, 10, RAMP)
    rgb = rgb + 0.001 * rgb[0:1] * rgb[1:2]  # bilinear cross term is also reproduced
    out = demosaic_bilinear(mosaic(rgb, cfa), cfa, border="linear")
    assert torch.allclose(out, rgb, atol=1e-12), f"{(out - rgb).abs().max()}"


@pytest.mark.parametrize("cfa", ALL)
def test_demosaic_keeps_measured_samples_and_remosaics(cfa):
    m = torch.rand(3, 1, 8, 8)
    assert torch.equal(mosaic(demosaic_bilinear(m, cfa), cfa), m)


def test_demosaic_reflect_stays_in_range():
    m = torch.rand(2, 1, 16, 16)
    out = demosaic_bilinear(m, CFA.GRBG)
    assert out.min() >= 0 and out.max() <= 1


def test_vectorised_over_leading_dims():
    rgb = torch.rand(2, 3, 3, 8, 8)
    batched = demosaic_bilinear(mosaic(rgb, "bggr"), "bggr")
    single = torch.stack(
        [torch.stack([demosaic_bilinear(mosaic(rgb[i, j], "bggr"), "bggr") for j in range(3)]) for i in range(2)]
    )
    assert torch.allclose(batched, single)
    assert pack(mosaic(rgb, "bggr"), "bggr").shape == (2, 3, 4, 4, 4)


def test_odd_size_and_bad_input_raise():
    with pytest.raises(RawMambaError, match="even"):
        mosaic(torch.rand(3, 5, 6), CFA.RGGB)
    with pytest.raises(RawMambaError, match="even"):
        pack(torch.rand(1, 6, 7), CFA.RGGB)
    with pytest.raises(RawMambaError, match="even"):
        demosaic_bilinear(torch.rand(1, 7, 8), CFA.RGGB)
    with pytest.raises(RawMambaError, match="rgb"):
        mosaic(torch.rand(4, 6, 6), CFA.RGGB)
    with pytest.raises(RawMambaError, match="cfa"):
        as_cfa("RGBG")
    with pytest.raises(RawMambaError, match="border"):
        demosaic_bilinear(torch.rand(1, 6, 6), CFA.RGGB, border="zero")


def test_nan_propagates_without_crash():
    m = torch.rand(1, 8, 8)
    m[0, 4, 4] = float("nan")
    out = demosaic_bilinear(m, CFA.RGGB)
    assert out.isnan().any() and not out[..., :2, :].isnan().any()
    assert torch.isnan(pack(m, CFA.RGGB)).sum() == 1
    rgb = torch.rand(3, 4, 4)
    rgb[1, 0, 0] = float("nan")  # green at an R site of RGGB is not sampled
    assert not mosaic(rgb, CFA.RGGB).isnan().any()


def test_from_raw_pattern_rawpy_vocabulary():
    assert CFA.from_raw_pattern([[0, 1], [3, 2]], b"RGBG") is CFA.RGGB
    assert CFA.from_raw_pattern([[2, 3], [1, 0]], "RGBG") is CFA.BGGR
    assert CFA.from_raw_pattern([[1, 0], [2, 3]], "RGBG") is CFA.GRBG
    with pytest.raises(RawMambaError):
        CFA.from_raw_pattern([[0, 0], [0, 0]], "RGBG")
