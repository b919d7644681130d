"""Capture and restore end to end: RAW -> (sRGB, metadata, camera JSON) -> derender -> DNG; RAW folders -> CAM data."""

from pathlib import Path

import cv2
import numpy as np
import pytest
import rawpy
import torch

from rawmamba.cli import main
from rawmamba.data import CamDataset, synth_image
from rawmamba.data.io import read_image, to_float
from rawmamba.isp import CFA, get_camera, mosaic, pack
from rawmamba.metadata import load_metadata
from rawmamba.models import create_model
from rawmamba.rawio import RawInfo, open_raw
from rawmamba.rawio.capture import load_capture_info
from rawmamba.rawio.dng import write_dng
from rawmamba.train.checkpoint import save_checkpoint

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real-raw"
TINY = {"mamba_depth": 1, "embed_dim": 16, "meta_hidden": 16, "mamba_dim": 16, "decoder_dims": (16, 8, 8)}
INFO = RawInfo(cfa=CFA.GRBG, black_level_per_channel=(64.0, 64.0, 64.0, 64.0), white_level=16383.0,
               camera_whitebalance=(2.0, 1.0, 1.6), rgb_xyz_matrix=get_camera("Nikon D750").xyz_to_camera,
               orientation=3, camera="synthetic sensor")


def _scene_dng(path: Path, index: int, *, height: int = 48, width: int = 64) -> Path:
    """A RAW file made by us: a synthetic scene's raw-RGB, mosaicked, written with our DNG writer."""
    raw = synth_image(seed=5, index=index, height=height, width=width, camera="Nikon D750", photo_prob=1.0).raw
    return write_dng(path, pack(mosaic((raw / raw.max() * 0.5).clamp(0, 1), INFO.cfa), INFO.cfa), INFO)


def _read_jpeg(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("capture")
    torch.manual_seed(0)
    save_checkpoint(root / "tiny", create_model("rawmamba_tiny", **TINY), model_name="rawmamba_tiny",
                    model_args=dict(TINY))
    (root / "shots").mkdir()
    for index in range(3):
        _scene_dng(root / "shots" / f"frame{index}.dng", index)
    return root


def test_capture_then_derender_gives_a_dng_libraw_opens(root, tmp_path, capsys):
    source = root / "shots" / "frame0.dng"
    assert main(["capture", str(source), "--out", str(tmp_path), "--camera", "Nikon D750", "--format", "png"]) == 0
    assert "RAW" in capsys.readouterr().out
    srgb_path, meta_path, json_path = (tmp_path / f"frame0{s}" for s in (".png", ".meta.npz", ".camera.json"))
    # The camera JSON carries the file's sensor description for the DNG.
    info = load_capture_info(json_path)
    assert info.cfa == CFA.GRBG and info.white_level == 16383 and info.orientation == 3
    assert info.black_level_per_channel == INFO.black_level_per_channel
    # Metadata: 1/64 of the pixels, the RAW samples are the file's normalised raw-RGB, the sRGB the stored image.
    meta = load_metadata(meta_path, expect_size=(48, 64))
    assert meta.num_samples == 48 * 64 // 64
    with open_raw(source) as raw:
        truth = raw.raw_rgb()
    srgb = to_float(read_image(srgb_path))
    mask = meta.mask.bool().expand(3, -1, -1)
    assert torch.allclose(meta.raw[mask], truth[mask], atol=1 / 65535)
    assert torch.allclose(meta.srgb[mask], srgb[mask], atol=1e-6)

    out = tmp_path / "restored.dng"
    assert main(["derender", str(srgb_path), "--metadata", str(meta_path), "--checkpoint", str(root / "tiny"),
                 "--camera-info", str(json_path), "--out", str(out)]) == 0
    with rawpy.imread(str(out)) as dng:
        assert dng.raw_type == rawpy.RawType.Stack and dng.raw_image.shape[:2] == (48, 64)
        assert dng.white_level == 16383 and dng.sizes.flip == 3  # Orientation 3 -> LibRaw flip 3
        values = dng.raw_image[..., :3]
        assert values.min() >= 64 and values.max() <= 16383
        np.testing.assert_allclose(dng.camera_whitebalance[:3], (2.0, 1.0, 1.6), rtol=1e-4)
        assert dng.postprocess().shape[:2] == (48, 64)


def test_libraw_jpeg_capture_and_refusals(root, tmp_path, capsys):
    source = root / "shots" / "frame1.dng"
    assert main(["capture", str(source), "--out", str(tmp_path), "--downscale", "2"]) == 0
    line = capsys.readouterr().out
    assert "frame1: RAW" in line and "KB" in line
    meta = load_metadata(tmp_path / "frame1.meta.npz", expect_size=(24, 32))
    stored = to_float(_read_jpeg(tmp_path / "frame1.jpg"))
    mask = meta.mask.bool().expand(3, -1, -1)
    assert torch.allclose(meta.srgb[mask], stored[mask], atol=1e-6)  # the decoded JPEG, what the user keeps
    assert main(["capture", str(source), "--out", str(tmp_path)]) == 1
    assert "already exists" in capsys.readouterr().err


def test_corrupt_raw_gives_one_error_and_writes_nothing(root, tmp_path, capsys):
    cut = tmp_path / "in" / "cut.dng"
    cut.parent.mkdir()
    cut.write_bytes((root / "shots" / "frame0.dng").read_bytes()[:2000])
    assert main(["capture", str(cut), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cut.dng" in err[0]
    assert not (tmp_path / "out").exists()
    dump = tmp_path / "in" / "dump.raw"
    dump.write_bytes(b"\0" * 10)
    assert main(["capture", str(dump), "--out", str(tmp_path / "out"), "--camera", "sony", "--width", "4",
                 "--height", "4"]) == 1
    assert "dump.raw" in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_video_capture_then_derender_dng_frames(root, tmp_path):
    clip = tmp_path / "clip"
    assert main(["capture", str(root / "shots"), "--video", "--out", str(clip), "--camera", "sony"]) == 0
    frames = sorted((clip / "frames").iterdir())
    assert [p.name for p in frames] == ["frame0.png", "frame1.png", "frame2.png"]
    with open_raw(root / "shots" / "frame0.dng") as raw:
        truth = raw.raw_rgb()
    first = to_float(read_image(clip / "first_raw.tiff"))
    assert torch.allclose(first, truth, atol=0.5 / 65535 + 1e-7)
    out = tmp_path / "restored"
    assert main(["derender", str(clip / "frames"), "--first-raw", str(clip / "first_raw.tiff"), "--checkpoint",
                 str(root / "tiny"), "--frame-format", "dng", "--camera-info", str(clip / "capture.json"),
                 "--out", str(out)]) == 0
    written = sorted(p.name for p in out.iterdir())
    assert written == ["frame0.dng", "frame1.dng", "frame2.dng"]
    for name in written:
        with rawpy.imread(str(out / name)) as dng:
            assert dng.raw_image.shape[:2] == (48, 64) and dng.white_level == 16383


def test_data_from_raw_writes_a_cam_set(root, tmp_path):
    out = tmp_path / "cam"
    assert main(["data", "from-raw", str(root / "shots"), "--out", str(out), "--downscale", "2", "--quiet",
                 "--camera-profile", "Nikon D750"]) == 0
    assert sorted(p.name for p in (out / "synthetic_sensor" / "train" / "raw").iterdir()) == [
        "frame0.png", "frame1.png", "frame2.png"]
    data = CamDataset(out, split="train", landscape=False)
    assert len(data) == 3
    item = data[0]
    with open_raw(root / "shots" / "frame0.dng") as raw:
        truth = raw.raw_rgb(downscale=2)
    assert item["raw"].shape[-3:] == (3, 24, 32)
    assert torch.allclose(item["raw"][0], truth, atol=0.5 / 65535 + 1e-7)


@pytest.mark.skipif(not REAL.is_dir(), reason="real-RAW samples not present")
def test_capture_real_dng_and_headerless(tmp_path, capsys):
    dng = REAL / "canon_eos550d_ml_colorchart__tinydng.dng"
    assert main(["capture", str(dng), "--out", str(tmp_path), "--downscale", "4"]) == 0
    meta = load_metadata(tmp_path / f"{dng.stem}.meta.npz", expect_size=(289, 433))
    assert 0.015 < meta.rate < 0.017
    nikon = REAL / "nikon_d750_DSC_1339_crop_768x512_14bit_rggb__mushfiqulalam-isp.raw"
    assert main(["capture", str(nikon), "--out", str(tmp_path), "--camera", "Nikon D750", "--downscale", "2",
                 "--width", "768", "--height", "512", "--bits", "14", "--black", "600", "--white", "15520",
                 "--wb", "1.949,1,1.344"]) == 0
    srgb = to_float(_read_jpeg(tmp_path / f"{nikon.stem}.jpg"))
    assert srgb.shape == (3, 256, 384) and 0.15 < float(srgb.mean()) < 0.85  # exposed, not black or blown out
    out = capsys.readouterr().out
    assert f"{dng.stem}: RAW 3.91 MB" in out
