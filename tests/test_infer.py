"""rawmamba.infer / ``rawmamba derender``: tiling, video streaming, file round trips, errors."""

import cv2
import numpy as np
import pytest
import tifffile
import torch

from rawmamba.baselines import DerenderMethod
from rawmamba.cli import main
from rawmamba.data import synthesize
from rawmamba.data.io import write_image
from rawmamba.errors import RawMambaError
from rawmamba.infer import derender_stream, derender_tiled, feather_weights, iter_frames, tile_starts
from rawmamba.inference import NetworkMethod
from rawmamba.metadata import first_frame_metadata, grid_mask, load_metadata, sample_image_metadata, save_metadata
from rawmamba.models import create_model
from rawmamba.train.checkpoint import save_checkpoint

TINY = {"mamba_depth": 1, "embed_dim": 16, "meta_hidden": 16, "mamba_dim": 16, "decoder_dims": (16, 8, 8)}


class LocalNet(torch.nn.Module):
    """Two 3x3 convolutions (receptive field reaching 2 pixels) with RAWMamba's forward signature."""

    raw_channels = 3

    def __init__(self):
        super().__init__()
        self.a, self.b = torch.nn.Conv2d(6, 8, 3, padding=1), torch.nn.Conv2d(8, 3, 3, padding=1)

    def forward(self, x, meta_srgb, meta_raw, meta_mask=None, flow=None):
        b, t = x.shape[:2]
        meta = meta_raw[:, None].expand(b, t, *meta_raw.shape[1:])
        y = torch.cat([x, meta], dim=2).flatten(0, 1)
        return torch.sigmoid(self.b(torch.relu(self.a(y)))).view(b, t, 3, *x.shape[-2:])


class Constant(DerenderMethod):
    name = "constant"

    def derender(self, srgb, metadata):
        return torch.full((srgb.shape[0], metadata.raw_channels, *srgb.shape[-2:]), 0.3)


class CropEcho(DerenderMethod):
    """Per pixel: the metadata RAW where sampled, the sRGB elsewhere; shows whether tiles get aligned crops."""

    name = "echo"

    def __init__(self):
        self.frames = []

    def derender(self, srgb, metadata):
        self.check(srgb, metadata)
        self.frames.append(srgb.shape[0])
        mask = metadata.mask if metadata.mask is not None else torch.zeros_like(metadata.raw[:1])
        return metadata.raw * mask + srgb * (1 - mask)


def _image(h, w, seed=0):
    g = torch.Generator().manual_seed(seed)
    srgb = torch.rand(3, h, w, generator=g)
    raw = torch.rand(3, h, w, generator=g)
    return srgb, raw, sample_image_metadata(srgb, raw, grid_mask(h, w, rng=g))


def test_tile_starts_cover_with_overlap():
    for size, tile, overlap in [(100, 32, 8), (64, 32, 16), (33, 32, 4), (20, 32, 8)]:
        starts = tile_starts(size, tile, overlap)
        assert starts[0] == 0 and min(starts[-1] + tile, size) == size
        assert all(a + tile - b >= overlap for a, b in zip(starts, starts[1:], strict=False))
    with pytest.raises(RawMambaError):
        tile_starts(10, 8, 8)


def test_feather_weights_shape_and_border():
    w = feather_weights(32, 40, top=False, bottom=True, left=True, right=False, overlap=16, margin=4)
    assert w.shape == (32, 40) and w.min() >= 0 and w.max() == 1
    assert torch.all(w[:-4, -1] > 0) and torch.all(w[0, 4:] > 0)  # image borders keep weight
    assert torch.all(w[-4:] == 0) and torch.all(w[:, :4] == 0)  # margins along shared sides
    assert torch.all(w[:20, 12:] == 1)


def test_tiled_matches_untiled_for_covered_receptive_field():
    torch.manual_seed(0)
    net = LocalNet()
    srgb, _, meta = _image(70, 90)
    full = derender_tiled(net, srgb[None], meta, 0)
    for blend in ("cosine", "linear"):
        tiled = derender_tiled(net, srgb[None], meta, 32, 16, blend=blend)
        assert torch.allclose(tiled, full, atol=1e-5), f"{(tiled - full).abs().max()}"
    seamy = derender_tiled(net, srgb[None], meta, 32, 16, margin=0)  # the edge pixels now count: not exact
    assert (seamy - full).abs().max() > 1e-4


def test_constant_output_has_no_seam_and_crops_are_aligned():
    srgb, raw, meta = _image(50, 70)
    flat = derender_tiled(Constant(), srgb[None].repeat(2, 1, 1, 1), meta, 24, 8)
    assert flat.shape == (2, 3, 50, 70) and torch.allclose(flat, torch.full_like(flat, 0.3), atol=1e-6)
    echo = derender_tiled(CropEcho(), srgb[None], meta, 24, 8)
    assert torch.allclose(echo[0], raw * meta.mask + srgb * (1 - meta.mask), atol=1e-6)


def test_tiled_network_and_size_errors():
    torch.manual_seed(0)
    model = create_model("rawmamba_tiny", **TINY)
    srgb, _, meta = _image(48, 64)
    out = derender_tiled(NetworkMethod(model), srgb[None], meta, 32, 16)
    assert out.shape == (1, 3, 48, 64) and torch.isfinite(out).all()
    with pytest.raises(RawMambaError, match="metadata"):
        derender_tiled(model, srgb[None, :, :40], meta, 32, 16)


def test_stream_windows_in_order():
    frames = [torch.full((3, 8, 8), i / 10) for i in range(7)]
    meta = first_frame_metadata(torch.stack(frames), torch.stack(frames))
    echo = CropEcho()
    outputs = list(derender_stream(echo, iter(frames), meta, window=3))
    assert echo.frames == [3, 3, 1]
    assert [round(float(o.mean()), 3) for o in outputs] == [i / 10 for i in range(7)]


def test_iter_frames_folder_and_errors(tmp_path):
    for name, value in [("b.png", 2), ("a.png", 1), ("c.png", 3)]:
        write_image(tmp_path / name, np.full((6, 8, 3), value, np.uint8))
    assert [int(f[0, 0, 0] * 255 + 0.5) for f in iter_frames(tmp_path)] == [1, 2, 3]
    write_image(tmp_path / "d.png", np.zeros((4, 8, 3), np.uint8))
    with pytest.raises(RawMambaError, match="d.png"):
        list(iter_frames(tmp_path))
    with pytest.raises(RawMambaError, match="does not exist"):
        list(iter_frames(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(RawMambaError, match="no images"):
        list(iter_frames(tmp_path / "empty"))


def test_iter_frames_video_file(tmp_path):
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 5, (32, 16))
    if not writer.isOpened():
        pytest.skip("OpenCV cannot write MJPG video here")
    for i in range(4):
        writer.write(np.full((16, 32, 3), 60 * i, np.uint8))
    writer.release()
    frames = list(iter_frames(path))
    assert len(frames) == 4 and frames[0].shape == (3, 16, 32)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("derender")
    for channels in (3, 4):
        torch.manual_seed(channels)
        model = create_model("rawmamba_tiny", raw_channels=channels, **TINY)
        save_checkpoint(root / f"tiny{channels}", model, model_name="rawmamba_tiny",
                        model_args={**TINY, "raw_channels": channels})
    srgb, raw, meta = _image(40, 56)
    write_image(root / "image.png", np.rint(srgb.permute(1, 2, 0).numpy() * 255).astype(np.uint8))
    save_metadata(root / "image.meta.npz", sample_image_metadata(torch.round(srgb * 255) / 255, raw, meta.mask))
    save_metadata(root / "other.meta.npz", _image(32, 56)[2])
    synthesize(root / "rvd", "video", 1, height=32, width=48, frames=5, split="test", progress=False)
    return root


def test_derender_image_tiff_and_npy(files, tmp_path):
    common = ["derender", str(files / "image.png"), "--metadata", str(files / "image.meta.npz"),
              "--checkpoint", str(files / "tiny3")]
    assert main([*common, "--out", str(tmp_path / "raw.tiff")]) == 0
    assert main([*common, "--out", str(tmp_path / "raw.npy")]) == 0
    tiff, npy = tifffile.imread(tmp_path / "raw.tiff"), np.load(tmp_path / "raw.npy")
    assert tiff.dtype == np.uint16 and tiff.shape == (40, 56, 3)
    assert npy.dtype == np.float32 and npy.shape == (40, 56, 3)
    assert np.abs(tiff.astype(np.float64) - npy * 65535).max() <= 0.5 + 1e-3
    assert main([*common, "--out", str(tmp_path / "tiled.npy"), "--tile", "32", "--overlap", "16"]) == 0
    assert np.load(tmp_path / "tiled.npy").shape == (40, 56, 3)


def test_derender_refinement_flag_passes_through_the_samples_or_not(files, tmp_path):
    common = ["derender", str(files / "image.png"), "--metadata", str(files / "image.meta.npz"),
              "--checkpoint", str(files / "tiny3")]
    assert main([*common, "--out", str(tmp_path / "rbf.npy"), "--refinement", "rbf"]) == 0
    assert main([*common, "--out", str(tmp_path / "none.npy"), "--refinement", "none"]) == 0
    meta = load_metadata(files / "image.meta.npz")
    on = meta.mask[0] > 0
    samples = meta.raw[:, on].T.numpy()
    refined, plain = np.load(tmp_path / "rbf.npy")[on.numpy()], np.load(tmp_path / "none.npy")[on.numpy()]
    assert np.abs(refined - samples).max() < 1e-4
    assert np.abs(plain - samples).max() > 1e-2


def test_derender_refuses_and_explains(files, tmp_path, capsys):
    out = tmp_path / "raw.tiff"
    out.write_bytes(b"keep")
    common = ["--checkpoint", str(files / "tiny3"), "--out", str(out)]
    assert main(["derender", str(files / "image.png"), "--metadata", str(files / "image.meta.npz"), *common]) == 1
    assert "already exists" in capsys.readouterr().err and out.read_bytes() == b"keep"
    out.unlink()
    assert main(["derender", str(files / "image.png"), "--metadata", str(files / "other.meta.npz"), *common]) == 1
    err = capsys.readouterr().err
    assert "other.meta.npz" in err and "32x56" in err and not out.exists()
    assert main(["derender", str(files / "missing.png"), "--metadata", str(files / "image.meta.npz"), *common]) == 1
    assert "missing.png" in capsys.readouterr().err
    assert main(["derender", str(files / "image.png"), "--metadata", str(files / "nope.npz"), *common]) == 1
    assert "nope.npz" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_derender_video_folder_writes_every_frame(files, tmp_path, capsys):
    split = files / "rvd" / "Part2" / "test"
    frames_dir, raw0 = split / "sRGB" / "video_0000", split / "RAW" / "video_0000" / "00000.tiff"
    out = tmp_path / "frames"
    args = ["derender", str(frames_dir), "--first-raw", str(raw0), "--out", str(out), "--white-level", "16383",
            "--checkpoint", str(files / "tiny4"), "--window", "2"]
    assert main(args) == 0
    written = sorted(out.iterdir())
    assert [p.name for p in written] == [f"{i:05d}.tiff" for i in range(5)]
    first = tifffile.imread(written[0])
    assert first.dtype == np.uint16 and first.shape == (32, 48) and first.max() <= 16383
    assert main(args) == 1 and "not empty" in capsys.readouterr().err
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((16, 48), np.float32))
    assert main([*args[:3], str(bad), *args[4:], "--force"]) == 1
    assert "bad.npy" in capsys.readouterr().err


def test_derender_image_with_packed_metadata_writes_mosaic(files, tmp_path):
    g = torch.Generator().manual_seed(3)
    srgb_half, raw = torch.rand(3, 20, 28, generator=g), torch.rand(4, 20, 28, generator=g)
    save_metadata(tmp_path / "packed.npz", sample_image_metadata(srgb_half, raw, grid_mask(20, 28, rng=g)),
                  layout="packed-GRBG")
    out = tmp_path / "mosaic.tiff"
    assert main(["derender", str(files / "image.png"), "--metadata", str(tmp_path / "packed.npz"), "--out", str(out),
                 "--checkpoint", str(files / "tiny4")]) == 0
    mosaic = tifffile.imread(out)
    assert mosaic.dtype == np.uint16 and mosaic.shape == (40, 56)


def test_bad_input_gives_one_clear_error_and_writes_nothing(files, tmp_path, capsys):
    """Issue 4's list: metadata for another image size (above), RAW with the wrong channel count, a truncated
    checkpoint, a checkpoint of another variant, an unknown config key."""

    def refused(args: list[str], *names: str) -> None:
        assert main(args) == 1
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and err.startswith("rawmamba "), err  # one line
        assert all(name in err for name in names), err

    image = ["derender", str(files / "image.png"), "--metadata", str(files / "image.meta.npz"),
             "--out", str(tmp_path / "raw.tiff")]

    truncated = tmp_path / "truncated"
    for suffix in (".json", ".safetensors"):
        (truncated.with_suffix(suffix)).write_bytes((files / "tiny3").with_suffix(suffix).read_bytes())
    weights = truncated.with_suffix(".safetensors")
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    refused([*image, "--checkpoint", str(truncated)], "truncated.safetensors")

    other_variant = tmp_path / "variant"  # the description of the 4-channel network, the weights of the 3-channel
    other_variant.with_suffix(".json").write_bytes((files / "tiny4").with_suffix(".json").read_bytes())
    other_variant.with_suffix(".safetensors").write_bytes((files / "tiny3").with_suffix(".safetensors").read_bytes())
    refused([*image, "--checkpoint", str(other_variant)], "variant.safetensors", "do not fit")

    two_channels = tmp_path / "raw2.npy"
    np.save(two_channels, np.zeros((32, 48, 2), np.float32))
    frames = files / "rvd" / "Part2" / "test" / "sRGB" / "video_0000"
    refused(["derender", str(frames), "--first-raw", str(two_channels), "--out", str(tmp_path / "frames"),
             "--checkpoint", str(files / "tiny3")], "raw2.npy")

    refused(["train", "--config", "configs/synthetic_image.yaml", "--no_such_key=1", f"--out_dir={tmp_path / 'run'}"],
            "no_such_key")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw2.npy", "truncated.json", "truncated.safetensors",
                                                          "variant.json", "variant.safetensors"]
