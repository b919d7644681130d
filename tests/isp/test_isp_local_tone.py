"""Local tone mapping: identity at zero strength, more local contrast, large-region order kept, speed."""


import pytest
import torch
import torch.nn.functional as F

from rawmamba.errors import RawMambaError
from rawmamba.isp import LOCAL_TONE_OPERATORS, local_tone_map, luminance, srgb_oetf

KINDS = sorted(LOCAL_TONE_OPERATORS)
LEVELS = (0.004, 0.03, 0.15, 0.8)  # four big regions spanning 7.6 stops


def _hdr_textured(size=128, seed=0):
    """Four vertical bands of very different brightness, each with a fine multiplicative texture."""
    gen = torch.Generator().manual_seed(seed)
    band = torch.arange(size) * len(LEVELS) // size
    level = torch.tensor(LEVELS)[band].expand(size, size)
    texture = 1 + 0.3 * (torch.rand(size, size, generator=gen) - 0.5)
    tint = torch.tensor([1.0, 0.9, 0.7]).view(3, 1, 1)
    return (level * texture)[None] * tint


def _local_contrast(rgb):
    """Mean local standard deviation (5x5) of the high-pass of the sRGB-encoded luminance."""
    y = srgb_oetf(luminance(rgb.clamp(0, 1)))
    detail = y - F.avg_pool2d(y, 5, stride=1, padding=2, count_include_pad=False)
    return F.avg_pool2d(detail**2, 5, stride=1, padding=2, count_include_pad=False).sqrt().mean()


def _region_means(rgb):
    y = luminance(rgb).reshape(rgb.shape[-2:])
    size = y.shape[-1]
    return torch.stack([y[:, i * size // 4 + 4 : (i + 1) * size // 4 - 4].mean() for i in range(4)])


@pytest.mark.parametrize("kind", KINDS)
def test_zero_strength_unit_gain_is_identity(kind):
    rgb = _hdr_textured(64)
    out = local_tone_map(rgb, kind, 0.0, detail_gain=1.0)
    assert torch.allclose(out, rgb, rtol=1e-4, atol=1e-7), f"{(out - rgb).abs().max()}"


@pytest.mark.parametrize("kind", KINDS)
def test_raises_local_contrast_keeps_region_order(kind):
    rgb = _hdr_textured()
    out = local_tone_map(rgb, kind, 0.5)
    assert _local_contrast(out) > 1.1 * _local_contrast(rgb), f"{_local_contrast(out)} vs {_local_contrast(rgb)}"
    before, after = _region_means(rgb), _region_means(out)
    assert torch.equal(before.argsort(), after.argsort()), f"{before} -> {after}"
    # the large-scale range is compressed: fewer stops between the darkest and brightest band
    assert torch.log2(after[-1] / after[0]) < 0.8 * torch.log2(before[-1] / before[0])
    # hue and saturation kept: each pixel is scaled by one ratio in all channels
    ratio = out / rgb
    assert torch.allclose(ratio, ratio[:1].expand_as(ratio), rtol=1e-4)


@pytest.mark.parametrize("kind", KINDS)
def test_strength_orders_compression(kind):
    rgb = _hdr_textured(64)
    spans = []
    for strength in (0.0, 0.3, 0.6, 0.9):
        means = _region_means(local_tone_map(rgb, kind, strength, detail_gain=1.0))
        spans.append(float(torch.log2(means[-1] / means[0])))
    assert all(a > b for a, b in zip(spans, spans[1:], strict=False)), spans


def test_operators_differ():
    rgb = _hdr_textured(64)
    outs = [local_tone_map(rgb, kind, 0.5) for kind in KINDS]
    for i in range(len(outs)):
        for j in range(i + 1, len(outs)):
            assert (outs[i] - outs[j]).abs().max() > 1e-3


@pytest.mark.parametrize("kind", KINDS)
def test_vectorised_over_leading_dims(kind):
    batch = torch.stack([_hdr_textured(32, seed=s) for s in range(4)]).view(2, 2, 3, 32, 32)
    out = local_tone_map(batch, kind, 0.4)
    assert out.shape == batch.shape
    single = local_tone_map(batch[1, 0], kind, 0.4)
    assert torch.allclose(out[1, 0], single, rtol=1e-5, atol=1e-7)


def test_bad_arguments():
    rgb = _hdr_textured(32)
    with pytest.raises(RawMambaError, match="kind"):
        local_tone_map(rgb, "reinhard")
    with pytest.raises(RawMambaError, match="strength"):
        local_tone_map(rgb, "guided", 1.0)
    with pytest.raises(RawMambaError, match="rgb"):
        local_tone_map(rgb[:2], "guided")
