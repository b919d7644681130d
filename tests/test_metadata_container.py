"""Metadata dataclass: the (sRGB, RAW, mask) contract, its checks and the two builders."""

import pytest
import torch

from rawmamba.errors import RawMambaError
from rawmamba.metadata import Metadata, first_frame_metadata, grid_mask, sample_image_metadata


def _images(*lead, c_raw=3, h=16, w=24):
    g = torch.Generator().manual_seed(0)
    return torch.rand(*lead, 3, h, w, generator=g), torch.rand(*lead, c_raw, h, w, generator=g)


def test_sampled_metadata_is_masked_pair():
    srgb, raw = _images(2)
    mask = grid_mask(16, 24)
    meta = sample_image_metadata(srgb, raw, mask)
    assert meta.kind == "sampled" and meta.size == (16, 24) and meta.raw_channels == 3
    assert meta.batch_shape == (2,) and meta.mask.shape == (2, 1, 16, 24)
    assert torch.equal(meta.srgb, srgb * mask) and torch.equal(meta.raw, raw * mask)
    assert meta.num_samples == 6 and meta.rate == pytest.approx(1 / 64)


def test_packed_raw_needs_sRGB_at_half_resolution():
    srgb, raw = _images(c_raw=4, h=8, w=12)
    meta = sample_image_metadata(srgb, raw, grid_mask(8, 12, cell=4))
    assert meta.raw_channels == 4
    full_srgb = torch.rand(3, 16, 24)
    with pytest.raises(RawMambaError, match="half resolution"):
        Metadata(full_srgb, raw)
    with pytest.raises(RawMambaError, match="does not match the sRGB"):
        sample_image_metadata(full_srgb, raw, grid_mask(8, 12))


def test_first_frame_metadata_copies_frame_zero():
    srgb, raw = _images(2, 5, c_raw=4)
    meta = first_frame_metadata(srgb, raw)
    assert meta.kind == "frame" and meta.mask is None
    assert meta.srgb.shape == (2, 3, 16, 24) and meta.raw.shape == (2, 4, 16, 24)
    assert torch.equal(meta.srgb, srgb[:, 0]) and torch.equal(meta.raw, raw[:, 0])
    assert meta.num_samples == 16 * 24 and meta.rate == 1.0
    srgb[:, 0] = 0  # the metadata does not alias the clip
    assert meta.srgb.abs().sum() > 0
    with pytest.raises(RawMambaError, match="frame counts"):
        first_frame_metadata(srgb, raw[:, :3])
    with pytest.raises(RawMambaError, match="T >= 1"):
        first_frame_metadata(srgb[0, 0], raw[0, 0])


@pytest.mark.parametrize(("change", "message"), [
    (lambda s, r, m: (s.index_fill(-1, torch.tensor([0]), float("nan")), r, m), "NaN"),
    (lambda s, r, m: (s, r * 1.5 + 0.01, m), r"\[0, 1\]"),
    (lambda s, r, m: (s, r, m * 0.5), "binary"),
    (lambda s, r, m: (torch.cat([s, s[:1]]), r, m), "3 channels"),
    (lambda s, r, m: (s, r[:2], m), "3 \\(raw-RGB\\) or 4"),
    (lambda s, r, m: (s, r, m[:, :8]), "mask must have shape"),
    (lambda s, r, m: (s + 0.0 * m, r.clamp(min=0.1), m), "zero outside"),
    (lambda s, r, m: ((s * 255).to(torch.uint8), r, m), "floating"),
])
def test_bad_metadata_raises(change, message):
    srgb, raw = _images()
    mask = grid_mask(16, 24)
    good = sample_image_metadata(srgb, raw, mask)
    with pytest.raises(RawMambaError, match=message):
        Metadata(*change(good.srgb, good.raw, good.mask))


def test_check_values_off_skips_value_checks_only():
    srgb, raw = _images()
    Metadata(srgb * 2, raw, check_values=False)
    with pytest.raises(RawMambaError, match="3 channels"):
        Metadata(srgb[:2], raw, check_values=False)


def test_to_changes_dtype_and_device():
    srgb, raw = _images()
    meta = sample_image_metadata(srgb, raw, grid_mask(16, 24)).to("cpu", torch.float64)
    assert meta.srgb.dtype == meta.raw.dtype == meta.mask.dtype == torch.float64
    assert meta.srgb.device.type == "cpu" and meta.kind == "sampled"
    assert first_frame_metadata(srgb[None], raw[None]).to(dtype=torch.float16).mask is None
