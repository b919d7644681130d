"""Metadata files: exact round trips after quantisation, small files, atomic writes, clear errors."""

import json
import os

import numpy as np
import pytest
import torch
from skimage import data

from rawmamba.errors import RawMambaError
from rawmamba.metadata import (
    FORMAT_VERSION,
    Metadata,
    first_frame_metadata,
    grid_mask,
    load_metadata,
    make_sampler,
    read_metadata_info,
    sample_image_metadata,
    save_metadata,
)


def _q(x: torch.Tensor, peak: int) -> torch.Tensor:
    return (torch.round(x.double() * peak) / peak).float()


def _pair(c_raw=3, h=32, w=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(3, h, w, generator=g), torch.rand(c_raw, h, w, generator=g)


@pytest.fixture
def sampled(tmp_path):
    srgb, raw = _pair()
    sampler = make_sampler("grid")
    meta = sample_image_metadata(srgb, raw, sampler(srgb, torch.Generator().manual_seed(1)))
    return meta, save_metadata(tmp_path / "m.npz", meta, camera="sony", **sampler.info())


def test_sampled_round_trip_is_exact_after_quantisation(sampled):
    meta, path = sampled
    back = load_metadata(path, expect_size=(32, 40), expect_channels=3)
    assert back.kind == "sampled" and back.srgb.dtype == torch.float32
    assert torch.equal(back.mask, meta.mask)
    assert torch.equal(back.raw, _q(meta.raw, 65535))
    assert torch.equal(back.srgb, _q(meta.srgb, 255))
    info = read_metadata_info(path)
    assert info["version"] == FORMAT_VERSION and info["kind"] == "sampled" and info["layout"] == "raw-rgb"
    assert (info["height"], info["width"], info["num_samples"]) == (32, 40, 20)
    assert info["info"] == {"camera": "sony", "sampler": "grid", "cell": 8}


def test_sampled_file_stores_samples_only(sampled):
    _, path = sampled
    with np.load(path) as archive:
        assert sorted(archive.files) == ["header", "raw", "srgb", "yx"]
        assert archive["yx"].dtype == np.int32 and archive["yx"].shape == (2, 20)
        assert archive["raw"].dtype == np.uint16 and archive["raw"].shape == (3, 20)
        assert archive["srgb"].dtype == np.uint8 and archive["srgb"].shape == (3, 20)


def test_packed_and_16bit_srgb_round_trip(tmp_path):
    srgb, raw = _pair(c_raw=4)
    meta = sample_image_metadata(srgb, raw, grid_mask(32, 40, cell=4))
    path = save_metadata(tmp_path / "p.npz", meta, srgb_bits=16, layout="packed-GRBG")
    back = load_metadata(path, expect_channels=4)
    assert read_metadata_info(path)["layout"] == "packed-GRBG"
    assert torch.equal(back.raw, _q(meta.raw, 65535)) and torch.equal(back.srgb, _q(meta.srgb, 65535))
    assert read_metadata_info(save_metadata(tmp_path / "d.npz", meta))["layout"] == "packed-RGGB"


def test_frame_round_trip(tmp_path):
    srgb, raw = _pair()
    meta = first_frame_metadata(torch.stack([srgb, srgb * 0.5]), torch.stack([raw, raw * 0.5]))
    back = load_metadata(save_metadata(tmp_path / "f.npz", meta), expect_size=(32, 40))
    assert back.kind == "frame" and back.mask is None
    assert torch.equal(back.raw, _q(raw, 65535)) and torch.equal(back.srgb, _q(srgb, 255))


def test_512_sampled_file_is_small(tmp_path):
    srgb = torch.from_numpy(data.astronaut()).permute(2, 0, 1).float() / 255  # 512x512 photo
    raw = srgb**2.2
    meta = sample_image_metadata(srgb, raw, grid_mask(512, 512, rng=torch.Generator().manual_seed(0)))
    size = os.path.getsize(save_metadata(tmp_path / "s.npz", meta))
    dense = os.path.getsize(save_metadata(tmp_path / "d.npz", Metadata(srgb, raw)))
    # 4096 samples x (6 RAW + 3 sRGB value bytes) = 36.9 KB before positions; compression keeps it below that.
    assert size < 4096 * 11, size
    assert size < dense / 20, (size, dense)


def test_save_is_atomic_and_overwrites(tmp_path, sampled):
    meta, path = sampled
    save_metadata(path, meta, note="second")
    assert read_metadata_info(path)["info"] == {"note": "second"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]  # no temporary files left


def test_save_errors(tmp_path, sampled):
    meta, _ = sampled
    with pytest.raises(RawMambaError, match="does not exist"):
        save_metadata(tmp_path / "missing" / "m.npz", meta)
    batch = sample_image_metadata(torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16), grid_mask(16, 16))
    with pytest.raises(RawMambaError, match="one image per file"):
        save_metadata(tmp_path / "b.npz", batch)
    with pytest.raises(RawMambaError, match="JSON"):
        save_metadata(tmp_path / "j.npz", meta, bad=object())
    with pytest.raises(RawMambaError, match="layout"):
        save_metadata(tmp_path / "l.npz", meta, layout="packed-RGGB")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]


def _rewrite(path, **changes):
    with np.load(path) as archive:
        arrays = {k: archive[k] for k in archive.files}
    header = json.loads(str(arrays["header"]))
    header.update(changes.pop("header", {}))
    arrays.update(changes)
    arrays["header"] = np.array(json.dumps(header))
    np.savez_compressed(path, **arrays)


def _write_with(save, path, **arrays):
    with open(path, "wb") as f:
        save(f, **arrays)


@pytest.mark.parametrize(("damage", "message"), [
    (lambda p: p.unlink(), "does not exist"),
    (lambda p: p.write_bytes(b"not a zip file at all"), "not a readable"),
    (lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]), "not a readable"),
    (lambda p: _write_with(np.save, p, arr=np.zeros(3)), "not an .npz"),
    (lambda p: _write_with(np.savez, p, a=np.zeros(3)), "not a readable"),
    (lambda p: _rewrite(p, header={"format": "other"}), "no 'rawmamba-metadata' header"),
    (lambda p: _rewrite(p, header={"version": 2}), "version 2"),
    (lambda p: _rewrite(p, yx=np.full((2, 20), 99, np.int32)), "outside"),
    (lambda p: _rewrite(p, raw=np.zeros((3, 19), np.uint16)), "corrupt"),
])
def test_load_errors_name_the_file(sampled, damage, message):
    _, path = sampled
    damage(path)
    with pytest.raises(RawMambaError, match=message) as info:
        load_metadata(path)
    assert str(path) in str(info.value)


def test_load_checks_size_and_channels(sampled):
    _, path = sampled
    with pytest.raises(RawMambaError, match="32x40 image, but the image is 64x80") as info:
        load_metadata(path, expect_size=(64, 80))
    assert str(path) in str(info.value)
    with pytest.raises(RawMambaError, match="3-channel .* 4 channels") as info:
        load_metadata(path, expect_channels=4)
    assert str(path) in str(info.value)
