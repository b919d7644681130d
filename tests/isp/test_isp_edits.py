"""Look edits: each does what it says and inverts exactly."""

import pytest
import torch

from rawmamba.errors import RawMambaError
from rawmamba.isp import Edits, apply_edits, luminance
from rawmamba.isp.color import srgb_linear_to_oklab
from rawmamba.isp.edits import (
    adjust_chroma_lightness,
    adjust_saturation,
    adjust_vibrance,
    compress_highlights_shadows,
    shift_hue,
    vignette,
)


def _colours(seed=0, n=2, size=8, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=gen, dtype=dtype) * 0.7 + 0.05


def _chroma_hue(rgb):
    lab = srgb_linear_to_oklab(rgb)
    return lab[:, 0], lab[:, 1:].norm(dim=1), torch.atan2(lab[:, 2], lab[:, 1])


EDITS = {
    "highlights_shadows": lambda x, inv: compress_highlights_shadows(x, highlights=0.6, shadows=0.4, inverse=inv),
    "saturation": lambda x, inv: adjust_saturation(x, 1.3, inverse=inv),
    "vibrance": lambda x, inv: adjust_vibrance(x, 0.6, inverse=inv),
    "hue": lambda x, inv: shift_hue(x, 12.0, warp=25.0, warp_phase=70.0, inverse=inv),
    "chroma_lightness": lambda x, inv: adjust_chroma_lightness(
        x, brightness_by_chroma=0.1, chroma_by_lightness=0.4, inverse=inv
    ),
    "vignette": lambda x, inv: vignette(x, 0.4, inverse=inv),
}


@pytest.mark.parametrize("name", sorted(EDITS))
def test_each_edit_inverts(name):
    rgb = _colours()
    edited = EDITS[name](rgb, False)
    assert (edited - rgb).abs().max() > 1e-3  # it does something
    assert torch.allclose(EDITS[name](edited, True), rgb, atol=1e-9), f"{(EDITS[name](edited, True) - rgb).abs().max()}"


def test_apply_edits_round_trip_and_identity():
    rgb = _colours(1, dtype=torch.float32)
    edits = Edits(highlights=0.8, shadows=0.2, saturation=1.2, vibrance=0.3, hue_shift=-4.0, hue_warp=8.0,
                  hue_warp_phase=200.0, brightness_by_chroma=0.05, chroma_by_lightness=0.2)  # fmt: skip
    out = apply_edits(rgb, edits)
    assert torch.allclose(apply_edits(out, edits, inverse=True), rgb, rtol=1e-4, atol=1e-5)
    assert torch.allclose(apply_edits(rgb, Edits()), rgb, atol=1e-6)
    with pytest.raises(RawMambaError, match="edits"):
        apply_edits(rgb, Edits(hue_warp=45.0))


def test_highlights_compress_overexposure_and_shadows_lift():
    y = torch.tensor([0.02, 0.3, 0.9, 1.5, 4.0], dtype=torch.float64)
    grey = y.view(1, 5, 1).expand(3, 5, 1)
    out = luminance(compress_highlights_shadows(grey, highlights=0.7))[0, :, 0]
    assert torch.allclose(out[:2], y[:2]) and (out[2:] < 1).all() and (out.diff() > 0).all()
    lifted = luminance(compress_highlights_shadows(grey, shadows=0.5))[0, :, 0]
    assert lifted[0] > y[0] * 1.4 and abs(float(lifted[2]) - 0.9) < 0.05


def test_saturation_keeps_luminance_vibrance_prefers_muted():
    rgb = _colours()
    assert torch.allclose(luminance(adjust_saturation(rgb, 1.5)), luminance(rgb), atol=1e-12)
    muted = torch.tensor([0.30, 0.28, 0.26], dtype=torch.float64).view(1, 3, 1, 1)
    vivid = torch.tensor([0.60, 0.10, 0.05], dtype=torch.float64).view(1, 3, 1, 1)
    gain = [float(_chroma_hue(adjust_vibrance(c, 0.5))[1] / _chroma_hue(c)[1]) for c in (muted, vivid)]
    assert gain[0] > gain[1] > 1.0


def test_hue_shift_keeps_lightness_and_chroma():
    rgb = _colours()
    light, chroma, hue = _chroma_hue(rgb)
    light2, chroma2, hue2 = _chroma_hue(shift_hue(rgb, 10.0))
    assert torch.allclose(light, light2, atol=1e-9) and torch.allclose(chroma, chroma2, atol=1e-9)
    delta = torch.remainder(hue2 - hue + torch.pi, 2 * torch.pi) - torch.pi
    assert torch.allclose(delta, torch.full_like(delta, torch.pi / 18), atol=1e-9)


def test_vignette_darkens_corners_only():
    x = torch.ones(1, 9, 13)
    v = vignette(x, 0.3)
    assert abs(float(v[0, 4, 6]) - 1.0) < 0.01 and abs(float(v[0, 0, 0]) - 0.7) < 1e-6


def test_invalid_parameters():
    rgb = _colours()
    with pytest.raises(RawMambaError):
        adjust_saturation(rgb, 0.0)
    with pytest.raises(RawMambaError):
        adjust_vibrance(rgb, -0.1)
    with pytest.raises(RawMambaError):
        compress_highlights_shadows(rgb, highlights=0.0)
    with pytest.raises(RawMambaError):
        vignette(rgb, 1.0)
