"""Synthetic data: `rawmamba data synth` output read back by the readers, determinism, overwrite refusal,
exact video flow, scene content, and `rawmamba data show`."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader

from rawmamba.cli import main
from rawmamba.data.images import CamDataset
from rawmamba.data.io import read_image
from rawmamba.data.motion import MotionParams, render_motion
from rawmamba.data.rvd import RVDDataset
from rawmamba.data.scenes import BUNDLED_PHOTOS, bundled_photo, dead_leaves
from rawmamba.data.show import sheet_size
from rawmamba.data.synth import synth_image, synth_video
from rawmamba.isp.cfa import CFA, mosaic, pack


def _synth(out, *extra):
    return main(["data", "synth", "--out", str(out), "--quiet", *extra])


def test_image_synth_reads_back(tmp_path):
    assert _synth(tmp_path, "--count", "3", "--size", "32x48", "--seed", "7") == 0
    ds = CamDataset(tmp_path, "train")
    assert len(ds) == 3 and [ds[i]["name"] for i in range(3)] == [f"random/image_{i:04d}" for i in range(3)]
    for i in range(3):
        truth = synth_image(7, i, height=32, width=48)
        item = ds[i]
        assert item["srgb"].shape == (1, 3, 32, 48) and item["raw"].shape == (1, 3, 32, 48)
        assert (item["srgb"][0] - truth.srgb).abs().max() <= 0.5 / 255 + 1e-6
        assert (item["raw"][0] - truth.raw).abs().max() <= 0.5 / 65535 + 1e-6
        assert item["meta_mask"].sum() == 4 * 6
    batch = next(iter(DataLoader(ds, batch_size=2)))  # the default collate stacks items into a batch
    assert batch["srgb"].shape == (2, 1, 3, 32, 48) and batch["meta_mask"].shape == (2, 1, 32, 48)
    assert batch["name"] == ["random/image_0000", "random/image_0001"]


def test_video_synth_reads_back_with_flow(tmp_path):
    assert _synth(tmp_path, "--kind", "video", "--count", "2", "--frames", "3", "--size", "32x48",
                  "--camera", "sony") == 0
    ds = RVDDataset(tmp_path, "train", reference="video", load_flow=True)
    assert len(ds) == 2 and ds[1]["name"] == "video_0001/00000"
    truth = synth_video(0, 1, height=32, width=48, frames=3, camera="sony")
    item = ds[1]
    assert item["srgb"].shape == (3, 3, 16, 24) and item["raw"].shape == (3, 4, 16, 24)
    expected_raw = pack(mosaic(truth.raw, CFA.RGGB), CFA.RGGB)
    assert (item["raw"] - expected_raw).abs().max() <= 0.5 / 16383 + 1e-6
    assert torch.allclose(item["srgb"], F.avg_pool2d(truth.srgb, 2), atol=1e-5)
    assert torch.allclose(item["flow"], F.avg_pool2d(truth.flow, 2) * 0.5, atol=1e-4)
    assert torch.equal(item["meta_raw"], item["raw"][0])
    clips = RVDDataset(tmp_path, "train", frames=2, stride=1)
    assert len(clips) == 4 and clips[3]["srgb"].shape[0] == 2


def test_synth_is_deterministic_and_seed_dependent(tmp_path):
    for name, seed in (("a", "3"), ("b", "3"), ("c", "4")):
        assert _synth(tmp_path / name, "--count", "2", "--size", "32x32", "--seed", seed) == 0
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.png"))
    assert len(files) == 4
    same = [np.array_equal(read_image(tmp_path / "a" / f), read_image(tmp_path / "b" / f)) for f in files]
    other = [np.array_equal(read_image(tmp_path / "a" / f), read_image(tmp_path / "c" / f)) for f in files]
    assert all(same) and not any(other)


def test_synth_refuses_to_overwrite(tmp_path, capsys):
    assert _synth(tmp_path, "--count", "1", "--size", "32x32") == 0
    raw = next(tmp_path.rglob("raw/*.png"))
    before = raw.stat().st_mtime_ns
    assert _synth(tmp_path, "--count", "2", "--size", "32x32") == 1
    assert "already exists" in capsys.readouterr().err and str(raw.parent.parent) in str(raw)
    assert raw.stat().st_mtime_ns == before and len(list(tmp_path.rglob("*.png"))) == 2  # nothing written
    assert _synth(tmp_path, "--count", "2", "--size", "32x32", "--force") == 0
    assert len(list(tmp_path.rglob("*.png"))) == 4 and not list(tmp_path.rglob(".*tmp*"))


def test_synth_bad_arguments(tmp_path, capsys):
    assert _synth(tmp_path, "--camera", "no-such-camera", "--size", "32x32") == 1
    assert "no-such-camera" in capsys.readouterr().err and not any(tmp_path.iterdir())
    with pytest.raises(SystemExit):
        _synth(tmp_path, "--size", "32by32")


@pytest.mark.parametrize("kind", ["image", "video"])
def test_show_writes_contact_sheet(tmp_path, kind):
    assert _synth(tmp_path / "d", "--kind", kind, "--count", "3", "--frames", "2", "--size", "32x48") == 0
    out = tmp_path / "sheet.png"
    assert main(["data", "show", str(tmp_path / "d"), "--out", str(out), "--rows", "2", "--cell", "40x60"]) == 0
    sheet = np.asarray(Image.open(out))
    assert sheet.shape == (*sheet_size(2, cell_height=40, cell_width=60)[::-1], 3)
    # Both the sRGB and the RAW cells hold a picture (not the empty background).
    assert sheet[20:50, 5:55].std() > 5 and sheet[20:50, 65:115].std() > 5


def test_video_flow_is_exact_backward_flow():
    """With whole-pixel motion, warping frame 0 by flow[t] reproduces frame t exactly, except where frame 0
    hides the point (behind the sprite's first position) or near the sprite's soft edge."""
    h, w, s, x0, y0, vx, vy = 48, 64, 20, 20.0, 10.0, 3.0, 2.0
    radius = np.sqrt(0.8) * s / 2  # the sprite is a disc of this radius (soft edge) in an s x s box
    params = MotionParams(velocity=(2.0, -1.0), zoom_rate=0.0, objects=((x0, y0, vx, vy),))
    video, flow = render_motion(h, w, 4, np.random.default_rng(2), params=params, sprite_size=(s, s))
    assert np.all(flow[0] == 0)
    ys, xs = np.mgrid[0:h, 0:w]
    for t in (1, 3):
        tx, ty = xs + flow[t, ..., 0], ys + flow[t, ..., 1]
        inside = (tx >= 0) & (tx <= w - 1) & (ty >= 0) & (ty <= h - 1)
        warped = video[0][np.clip(ty, 0, h - 1).astype(int), np.clip(tx, 0, w - 1).astype(int)]
        # Sprite centre at time t in frame t (the canvas is frame 0's coordinates shifted by the camera).
        cx, cy = x0 + (s - 1) / 2 + (vx - 2.0) * t, y0 + (s - 1) / 2 + (vy + 1.0) * t
        dist = np.hypot(xs - cx, ys - cy)
        on_sprite = dist < radius - 3
        assert np.allclose(flow[t][on_sprite], [(2.0 - vx) * t, (-1.0 - vy) * t])
        hidden = (np.hypot(tx - x0 - (s - 1) / 2, ty - y0 - (s - 1) / 2) < radius + 3) & ~on_sprite
        valid = inside & ~hidden & (on_sprite | (dist > radius + 3))
        assert valid.mean() > 0.6 and on_sprite.sum() > 50
        assert np.abs(warped - video[t])[valid].max() < 1e-4  # up to the soft alpha's far tail
        # Camera motion alone: the background moved by the camera's (2, -1) pixels per frame.
        assert np.allclose(flow[t][dist > radius + 3], [2.0 * t, -1.0 * t])


def test_dead_leaves_is_deterministic_and_high_dynamic_range():
    a = dead_leaves(64, 96, np.random.default_rng(0))
    assert np.array_equal(a, dead_leaves(64, 96, np.random.default_rng(0)))
    assert a.shape == (64, 96, 3) and a.dtype == np.float32 and a.min() >= 0 and a.max() <= 1
    lum = a.mean(-1)
    assert np.quantile(lum, 0.99) / max(np.quantile(lum, 0.01), 1e-4) > 20


def test_bundled_photos_load_offline():
    for name in BUNDLED_PHOTOS:
        photo = bundled_photo(name)
        assert photo.ndim == 3 and photo.shape[2] == 3 and 0 <= photo.min() and photo.max() <= 1


def test_plain_look_share_leaves_the_default_stream_alone():
    default = synth_image(3, 5, height=32, width=48)
    assert torch.equal(synth_image(3, 5, height=32, width=48, plain_prob=0.0).srgb, default.srgb)
    plain = synth_image(3, 5, height=32, width=48, plain_prob=1.0)
    assert plain.camera.endswith("(plain)") and not default.camera.endswith("(plain)")
    clip = synth_video(3, 5, height=32, width=48, frames=2, plain_prob=1.0)
    assert clip.camera.endswith("(plain)")
