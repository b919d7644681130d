"""CAM, RVD-Part2 and pair-folder readers: values, shapes, names, metadata, and clear errors for bad input."""

import numpy as np
import pytest
import tifffile
import torch

from rawmamba.data.images import CamDataset, PairFolderDataset
from rawmamba.data.io import write_image
from rawmamba.data.rvd import RVDDataset
from rawmamba.data.transforms import RandomCropFlip
from rawmamba.data.writers import cam_pair_paths, write_cam_pair, write_rvd_frame, write_rvd_index
from rawmamba.errors import RawMambaError
from rawmamba.isp.cfa import CFA, mosaic, pack
from rawmamba.metadata import make_sampler


def _write_cam(root, camera="samsung", split="test", names=("a", "b"), size=(16, 24)):
    pairs = {}
    for name in names:
        srgb, raw = torch.rand(3, *size), torch.rand(3, *size)
        write_cam_pair(*cam_pair_paths(root, camera, split, name), srgb, raw)
        pairs[name] = (srgb, raw)
    return pairs


def test_cam_reads_back_values_names_and_metadata(tmp_path):
    pairs = _write_cam(tmp_path, "SonyA57", names=("x", "y", "z"))
    ds = CamDataset(tmp_path, "test", cameras=["sony"])
    assert len(ds) == 3 and [ds[i]["name"] for i in range(3)] == ["SonyA57/x", "SonyA57/y", "SonyA57/z"]
    item = ds[1]
    srgb, raw = pairs["y"]
    assert item["srgb"].shape == (1, 3, 16, 24) and item["raw"].shape == (1, 3, 16, 24)
    assert (item["srgb"][0] - srgb).abs().max() <= 0.5 / 255 + 1e-6
    assert (item["raw"][0] - raw).abs().max() <= 0.5 / 65535 + 1e-6
    mask = item["meta_mask"]
    assert mask.shape == (1, 16, 24) and mask.sum() == 2 * 3  # one sample per 8x8 cell
    assert torch.equal(item["meta_srgb"], item["srgb"][0] * mask)
    assert torch.equal(item["meta_raw"], item["raw"][0] * mask)
    # Deterministic per item with an integer seed; another seed moves the samples.
    assert torch.equal(ds[1]["meta_mask"], mask)
    other = CamDataset(tmp_path, "test", seed=123)
    assert any(not torch.equal(other[i]["meta_mask"], ds[i]["meta_mask"]) for i in range(3))


def test_cam_camera_discovery_tiff_srgb_and_portrait(tmp_path):
    _write_cam(tmp_path, "samsung", names=("a",))
    folder = tmp_path / "olympus" / "test"
    srgb16 = (np.arange(8 * 6 * 3).reshape(8, 6, 3) * 300).astype(np.uint16)  # portrait 16-bit TIFF sRGB
    raw16 = srgb16[..., ::-1].copy()
    write_image(folder / "sRGB" / "p.tif", srgb16)
    write_image(folder / "raw" / "p.tiff", raw16)
    ds = CamDataset(tmp_path, "test")
    assert [name for name, _, _ in ds.pairs] == ["olympus/p", "samsung/a"]
    item = ds[0]
    assert item["srgb"].shape == (1, 3, 6, 8)  # rotated to landscape
    expected = torch.rot90(torch.from_numpy(srgb16.astype(np.float32) / 65535).permute(2, 0, 1), 1, (-2, -1))
    assert torch.allclose(item["srgb"][0], expected)
    assert CamDataset(tmp_path, "test", landscape=False)[0]["srgb"].shape == (1, 3, 8, 6)


def test_cam_transform_applies_before_sampling(tmp_path):
    _write_cam(tmp_path, size=(32, 40))
    ds = CamDataset(tmp_path, transform=RandomCropFlip(size=(16, 16)), seed=1)
    item = ds[0]
    assert item["srgb"].shape == (1, 3, 16, 16) and item["meta_mask"].sum() == 4
    assert torch.equal(ds[0]["srgb"], item["srgb"])


def test_cam_errors_name_the_file(tmp_path):
    _write_cam(tmp_path, names=("a",))
    srgb_path, raw_path = cam_pair_paths(tmp_path, "samsung", "test", "lonely")
    write_image(srgb_path, np.zeros((16, 24, 3), np.uint8))
    with pytest.raises(RawMambaError, match="lonely.png has no RAW"):
        CamDataset(tmp_path)
    write_image(raw_path, np.zeros((16, 20, 3), np.uint16))
    with pytest.raises(RawMambaError, match=r"lonely\.png is \(16, 24\) but RAW .*lonely\.png is \(16, 20\)"):
        CamDataset(tmp_path)[1]
    raw_path.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    with pytest.raises(RawMambaError, match=f"cannot decode image file {raw_path}"):
        CamDataset(tmp_path)[1]
    with pytest.raises(RawMambaError, match="nikon"):
        CamDataset(tmp_path, cameras=["nikon"])
    (tmp_path / "empty" / "test" / "sRGB").mkdir(parents=True)
    with pytest.raises(RawMambaError, match="no images .* in .*empty"):
        CamDataset(tmp_path, cameras=["empty"])


def test_truncated_png_raises(tmp_path):
    _write_cam(tmp_path, names=("a",), size=(64, 64))
    srgb_path, _ = cam_pair_paths(tmp_path, "samsung", "test", "a")
    srgb_path.write_bytes(srgb_path.read_bytes()[:200])
    with pytest.raises(RawMambaError, match="a.png"):
        CamDataset(tmp_path)[0]


def _write_rvd(root, split="test", videos=(("v0", 4), ("v1", 3)), size=(8, 12), flow=True):
    truth = {}
    split_dir = root / "Part2" / split
    for video, n in videos:
        ids = [f"{t:03d}" for t in range(n)]
        for t, frame in enumerate(ids):
            srgb, rgb = torch.rand(3, *size), torch.rand(3, *size)
            f = torch.full((2, *size), float(t)) if flow else None
            write_rvd_frame(split_dir, video, frame, srgb, mosaic(rgb, CFA.RGGB), f)
            truth[(video, frame)] = (srgb, mosaic(rgb, CFA.RGGB))
    write_rvd_index(split_dir, [(v, [f"{t:03d}" for t in range(n)]) for v, n in videos])
    return truth


def test_rvd_reads_back_packed_half_resolution(tmp_path):
    truth = _write_rvd(tmp_path)
    ds = RVDDataset(tmp_path, "test", load_flow=True)
    assert len(ds) == 2 and ds[0]["name"] == "v0/000" and ds[1]["name"] == "v1/000"
    item = ds[0]
    assert item["srgb"].shape == (4, 3, 4, 6) and item["raw"].shape == (4, 4, 4, 6) and "meta_mask" not in item
    srgb, mos = truth[("v0", "002")]
    expected_raw = pack(torch.round(mos * 16383) / 16383, CFA.RGGB)
    assert torch.allclose(item["raw"][2], expected_raw, atol=1e-6)
    assert torch.allclose(item["raw"][2, 1], mos[0, 0::2, 1::2], atol=0.5 / 16383 + 1e-6)  # Gr plane
    half = torch.nn.functional.avg_pool2d(torch.round(srgb * 255)[None] / 255, 2)[0]
    assert torch.allclose(item["srgb"][2], half, atol=1e-6)
    assert torch.allclose(item["flow"][3], torch.full((2, 4, 6), 1.5))  # 3 px at full resolution
    assert torch.equal(item["meta_raw"], item["raw"][0]) and torch.equal(item["meta_srgb"], item["srgb"][0])


def test_rvd_clips_and_reference_frames(tmp_path):
    _write_rvd(tmp_path / "d", split="train", videos=(("v", 5),), flow=False)
    clip = RVDDataset(tmp_path / "d", "train", frames=2)
    assert len(clip) == 2 and [clip[i]["name"] for i in range(2)] == ["v/000", "v/002"]
    assert clip.reference == "clip" and torch.equal(clip[1]["meta_raw"], clip[1]["raw"][0])
    video = RVDDataset(tmp_path / "d" / "Part2", "train", frames=2, stride=1, reference="video")
    assert len(video) == 4 and video[3]["srgb"].shape[0] == 2
    assert torch.equal(video[3]["meta_raw"], video[0]["raw"][0])
    with pytest.raises(RawMambaError, match="first frame"):
        RVDDataset(tmp_path / "d", "train", frames=2, load_flow=True)
    with pytest.raises(RawMambaError, match="fewer than frames=6"):
        RVDDataset(tmp_path / "d", "train", frames=6)
    cropped = RVDDataset(tmp_path / "d", "train", frames=2, transform=RandomCropFlip(size=(2, 2)))[0]
    assert cropped["raw"].shape == (2, 4, 2, 2) and torch.equal(cropped["meta_raw"], cropped["raw"][0])


def test_rvd_errors_name_the_file(tmp_path):
    with pytest.raises(RawMambaError, match="data.json does not exist"):
        RVDDataset(tmp_path, "test")
    _write_rvd(tmp_path, videos=(("v", 2),))
    split = tmp_path / "Part2" / "test"
    (split / "RAW" / "v" / "001.tiff").unlink()
    with pytest.raises(RawMambaError, match=r"001\.png has no RAW frame .*001\.tiff"):
        RVDDataset(tmp_path, "test")
    tifffile.imwrite(split / "RAW" / "v" / "001.tiff", np.zeros((8, 10), np.uint16))
    with pytest.raises(RawMambaError, match="001.png has shape"):
        RVDDataset(tmp_path, "test")[0]
    (split / "data.json").write_text("{not json")
    with pytest.raises(RawMambaError, match="cannot parse JSON file .*data.json"):
        RVDDataset(tmp_path, "test")


def test_pair_folder_raw_rgb_and_bayer(tmp_path):
    srgb = (np.random.default_rng(0).random((8, 12, 3)) * 255).astype(np.uint8)
    write_image(tmp_path / "rgb" / "sRGB" / "im.png", srgb)
    write_image(tmp_path / "rgb" / "raw" / "im.tif", np.full((8, 12, 3), 1000, np.uint16))
    item = PairFolderDataset(tmp_path / "rgb", white_level=4000)[0]
    assert item["name"] == "im" and torch.allclose(item["raw"], torch.full((1, 3, 8, 12), 0.25))
    bayer = np.arange(96, dtype=np.uint16).reshape(8, 12)
    write_image(tmp_path / "bayer" / "srgb" / "im.png", srgb)
    write_image(tmp_path / "bayer" / "raw" / "im.png", bayer)
    item = PairFolderDataset(tmp_path / "bayer", white_level=1.0, sampler=make_sampler("random", rate=0.25))[0]
    assert item["raw"].shape == (1, 4, 4, 6) and item["srgb"].shape == (1, 3, 4, 6)
    assert torch.equal(item["raw"][0, 3], torch.from_numpy(bayer[1::2, 1::2].astype(np.float32)))  # B plane
    with pytest.raises(RawMambaError, match="must contain srgb/ and raw/"):
        PairFolderDataset(tmp_path)
