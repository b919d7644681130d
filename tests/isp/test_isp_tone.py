"""Global tone: sRGB OETF golden values, tone curves and their inverses, quantisation and JPEG."""

import pytest
import torch

from rawmamba.errors import RawMambaError
from rawmamba.isp import (
    FilmicCurve,
    IdentityCurve,
    SCurve,
    apply_tone_curve,
    jpeg_roundtrip,
    luminance,
    quantize,
    srgb_oetf,
    srgb_oetf_inverse,
)

CURVES = [
    SCurve(),
    SCurve(contrast=8.0, pivot=0.35, gamma=1.8),
    SCurve(contrast=2.0, pivot=0.55, gamma=2.6),
    FilmicCurve(),
    FilmicCurve(scale=2.0),
    FilmicCurve(scale=12.0, shoulder=0.22, toe=0.3),
    IdentityCurve(),
]


def test_srgb_oetf_golden_values():
    x = torch.tensor([0.0, 0.0031308, 0.18, 0.5, 1.0], dtype=torch.float64)
    expected = torch.tensor([0.0, 0.040449936, 0.4613561, 0.7353570, 1.0], dtype=torch.float64)
    assert torch.allclose(srgb_oetf(x), expected, atol=5e-7), f"{srgb_oetf(x)}"
    assert abs(float(srgb_oetf(torch.tensor(0.18))) - 0.4613561) < 1e-6
    assert abs(float(srgb_oetf_inverse(torch.tensor(0.5, dtype=torch.float64))) - 0.2140411) < 1e-6


def test_srgb_round_trip_continuity_and_nan():
    x = torch.linspace(-1.0, 1.5, 2001, dtype=torch.float64)
    assert torch.allclose(srgb_oetf_inverse(srgb_oetf(x)), x, atol=1e-12)
    y = srgb_oetf(x)
    assert (y.diff() > 0).all()  # strictly increasing across the linear/power junction
    assert torch.equal(srgb_oetf(-x), -y)
    nan = srgb_oetf(torch.tensor([float("nan"), 0.5]))
    assert nan[0].isnan() and not nan[1].isnan()


@pytest.mark.parametrize("curve", CURVES, ids=lambda c: type(c).__name__)
def test_curves_monotone_fix_ends_and_invert(curve):
    x = torch.linspace(0, 1, 4097, dtype=torch.float64)
    y = curve.forward(x)
    assert (y.diff() > 0).all()
    assert abs(float(y[0])) < 1e-12 and abs(float(y[-1]) - 1) < 1e-12
    small = torch.logspace(-5, 0, 200, dtype=torch.float64)
    back = curve.inverse(curve.forward(small))
    assert ((back - small).abs() / small).max() < 1e-7


def test_scurve_is_an_s():
    c = SCurve(contrast=6.0, pivot=0.45)
    x = torch.tensor([0.03, 0.7], dtype=torch.float64)
    y = c.forward(x)
    assert y[0] < x[0] and y[1] > x[1]  # darker shadows, brighter highlights


def test_filmic_scale_brightens_midtones():
    x = torch.tensor([0.18], dtype=torch.float64)
    assert FilmicCurve(scale=2.0).forward(x) < FilmicCurve(scale=10.0).forward(x)


def test_invalid_curves_raise():
    with pytest.raises(RawMambaError):
        SCurve(contrast=0.0)
    with pytest.raises(RawMambaError):
        SCurve(pivot=1.5)
    with pytest.raises(RawMambaError):
        FilmicCurve(scale=-1.0)


@pytest.mark.parametrize("mode", ["rgb", "luminance"])
def test_apply_tone_curve_modes(mode):
    rgb = torch.rand(2, 3, 8, 8, dtype=torch.float64) * 0.5 + 0.05
    curve = SCurve(contrast=6.0)
    out = apply_tone_curve(rgb, curve, mode=mode)
    assert torch.allclose(apply_tone_curve(out, curve, mode=mode, inverse=True), rgb, atol=1e-9)
    if mode == "luminance":
        ratio = out / rgb
        assert torch.allclose(ratio, ratio[:, :1].expand_as(ratio), atol=1e-9)  # colour ratios kept
        assert torch.allclose(luminance(out), curve.forward(luminance(rgb)), atol=1e-9)
    else:
        assert torch.allclose(out, curve.forward(rgb), atol=1e-12)
    with pytest.raises(RawMambaError, match="mode"):
        apply_tone_curve(rgb, curve, mode="hsv")


def test_quantize_levels():
    x = torch.tensor([-0.2, 0.0, 0.1, 0.5, 1.0, 1.3])
    q = quantize(x)
    assert torch.equal(q * 255, torch.round(q * 255))
    assert q[0] == 0 and q[-1] == 1 and abs(float(q[2]) - 26 / 255) < 1e-7
    q4 = quantize(torch.rand(1000), bits=4) * 15
    assert (q4 - q4.round()).abs().max() < 1e-5 and len(q4.round().unique()) == 16
    assert quantize(torch.tensor([float("nan")])).isnan().all()


def _smooth_image(n=2, h=32, w=48):
    y, x = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    base = torch.stack([x, y, 0.5 + 0.3 * torch.sin(6 * x + 3 * y)])
    return torch.stack([base * (0.6 + 0.2 * i) for i in range(n)])


@pytest.mark.parametrize("backend", ["pillow", "opencv"])
def test_jpeg_roundtrip_quality(backend):
    img = _smooth_image()
    hi = jpeg_roundtrip(img, quality=95, backend=backend)
    lo = jpeg_roundtrip(img, quality=20, backend=backend)
    assert hi.shape == img.shape and hi.dtype == img.dtype
    assert torch.equal(hi * 255, torch.round(hi * 255))
    err_hi, err_lo = (hi - img).pow(2).mean(), (lo - img).pow(2).mean()
    assert err_hi < 1e-4 < err_lo
    # vectorised: batch equals per-image
    assert torch.equal(jpeg_roundtrip(img[1:], quality=95, backend=backend), hi[1:])


def test_jpeg_errors():
    with pytest.raises(RawMambaError, match="quality"):
        jpeg_roundtrip(_smooth_image(), quality=0)
    with pytest.raises(RawMambaError, match="backend"):
        jpeg_roundtrip(_smooth_image(), backend="libjpeg")
    bad = _smooth_image()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(RawMambaError, match="NaN"):
        jpeg_roundtrip(bad)
