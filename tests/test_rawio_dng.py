"""DNG writing (rawmamba.rawio.dng) read back by LibRaw (rawpy) and by our reader (rawmamba.rawio.read)."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import rawpy
import torch

from rawmamba.data import synth_image
from rawmamba.errors import RawMambaError
from rawmamba.isp import CFA, Edits, Shot, get_camera, mosaic, pack, render
from rawmamba.rawio import HeaderlessLayout, RawInfo, open_raw
from rawmamba.rawio.dng import DEFAULT_INFO, write_dng

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real-raw"


def _info(cfa: CFA) -> RawInfo:
    camera = get_camera("Nikon D750")
    return RawInfo(cfa=cfa, black_level_per_channel=(100.0, 110.0, 120.0, 130.0), white_level=4095.0,
                   camera_whitebalance=(2.0, 1.0, 1.5), rgb_xyz_matrix=camera.xyz_to_camera, orientation=6,
                   camera="test camera")


@pytest.mark.parametrize("cfa", list(CFA))
def test_bayer_dng_round_trip_is_exact_through_libraw(tmp_path, cfa):
    levels = np.random.default_rng(0).integers(0, 4096, (32, 48)).astype(np.uint16)
    info = _info(cfa)
    path = write_dng(tmp_path / "x.dng", levels, info)
    with rawpy.imread(str(path)) as raw:
        assert raw.raw_image_visible.shape == (32, 48)
        np.testing.assert_array_equal(raw.raw_image_visible, levels)
        assert CFA.from_raw_pattern(raw.raw_pattern, raw.color_desc) == cfa
        colours = raw.raw_colors_visible
        assert [raw.black_level_per_channel[colours[r, c]] for r, c in cfa.offsets] == [100, 110, 120, 130]
        assert raw.white_level == 4095
        assert raw.sizes.flip == 6  # LibRaw's code for Orientation 6
    with open_raw(path) as ours:
        assert ours.info.cfa == cfa and ours.info.black_level_per_channel == info.black_level_per_channel
        assert ours.info.white_level == 4095 and ours.info.orientation == 6
        np.testing.assert_allclose(ours.info.camera_whitebalance, (2.0, 1.0, 1.5), rtol=1e-5)
        np.testing.assert_allclose(ours.info.rgb_xyz_matrix, info.rgb_xyz_matrix, atol=1e-4)
        np.testing.assert_array_equal(ours.levels, levels)


def test_float_raw_round_trip_within_half_a_level(tmp_path):
    info = _info(CFA.GRBG)
    packed = torch.rand(4, 16, 24)
    write_dng(tmp_path / "p.dng", packed, info)
    with open_raw(tmp_path / "p.dng") as raw:
        back = raw.packed()
    # Each site spans white - black levels; rounding moves a value by at most half a level.
    assert float((back - packed).abs().max()) <= 0.5 / (4095 - 130) + 1e-6


def test_linear_raw_dng_is_readable_by_libraw(tmp_path):
    rgb = torch.rand(3, 24, 40)
    write_dng(tmp_path / "l.dng", rgb, replace(DEFAULT_INFO, white_level=16383.0))
    with rawpy.imread(str(tmp_path / "l.dng")) as raw:
        assert raw.raw_type == rawpy.RawType.Stack and raw.white_level == 16383
        stored = raw.raw_image[..., :3].astype(np.float64) / 16383
        np.testing.assert_allclose(stored, rgb.permute(1, 2, 0).double().numpy(), atol=0.5 / 16383 + 1e-9)
        assert raw.postprocess().shape == (24, 40, 3)
    with pytest.raises(RawMambaError, match="l.dng.*not a Bayer"):
        with open_raw(tmp_path / "l.dng"):
            pass


def _corr(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.flatten().double(), b.flatten().double()
    return float(torch.corrcoef(torch.stack([a, b]))[0, 1])


def test_libraw_rendering_of_our_dng_looks_like_ours(tmp_path):
    # Our ISP without its look (no edits, no local tone) against LibRaw's: same matrix, white balance, gamma-ish.
    camera = replace(get_camera("Nikon D750"), edits=Edits(), local_tone=None)
    pair = synth_image(seed=1, index=0, height=192, width=256, camera=camera, photo_prob=1.0)
    raw = (pair.raw / pair.raw.max() * 0.45).clamp(0, 1)  # no clipping after white balance
    shot = Shot(wb_gains=(2.0, 1.0, 1.6))
    info = RawInfo(cfa=CFA.GBRG, black_level_per_channel=(64.0,) * 4, white_level=16383.0,
                   camera_whitebalance=shot.wb_gains, rgb_xyz_matrix=camera.xyz_to_camera, camera=camera.name)
    write_dng(tmp_path / "s.dng", pack(mosaic(raw, CFA.GBRG), CFA.GBRG), info)
    with open_raw(tmp_path / "s.dng") as dng:
        # Downscaled x4 (as the CAM data) so that LibRaw's AHD and our bilinear demosaic agree.
        theirs = dng.render_libraw(4, no_auto_bright=True)
        ours = render(dng.raw_rgb(4), camera, torch.Generator(), shot=shot, local_tone=False)
    assert theirs.shape == ours.shape == (3, 48, 64)
    # Different tone curves: compare structure per channel and colour balance after normalising brightness.
    for channel in range(3):
        assert _corr(theirs[channel], ours[channel]) > 0.95
    ratio = (theirs.mean((1, 2)) / theirs.mean()) / (ours.mean((1, 2)) / ours.mean())
    assert float((ratio - 1).abs().max()) < 0.1, ratio


def test_corrupt_and_unsupported_files_raise_one_clear_error(tmp_path):
    good = write_dng(tmp_path / "good.dng", np.full((64, 64), 500, np.uint16), _info(CFA.RGGB))
    (tmp_path / "cut.dng").write_bytes(good.read_bytes()[:3000])
    (tmp_path / "text.nef").write_text("not a raw file")
    for name in ("cut.dng", "text.nef", "missing.cr2"):
        with pytest.raises(RawMambaError, match=name):
            with open_raw(tmp_path / name):
                pass
    (tmp_path / "dump.raw").write_bytes(b"\0" * 100)
    with pytest.raises(RawMambaError, match="dump.raw.*100 bytes"):
        with open_raw(tmp_path / "dump.raw", HeaderlessLayout(width=8, height=8)):
            pass


def test_failed_write_leaves_nothing(tmp_path):
    with pytest.raises(RawMambaError, match="even"):
        write_dng(tmp_path / "odd.dng", torch.rand(1, 5, 6))
    with pytest.raises(RawMambaError, match="black < white"):
        write_dng(tmp_path / "lv.dng", torch.rand(3, 4, 4), replace(DEFAULT_INFO, black_level_per_channel=(7e4,) * 4))
    write_dng(tmp_path / "keep.dng", torch.rand(1, 4, 4))
    with pytest.raises(RawMambaError, match="already exists"):
        write_dng(tmp_path / "keep.dng", torch.rand(1, 4, 4), force=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.dng"]


def test_headerless_dump_levels_and_cfa(tmp_path):
    levels = np.random.default_rng(1).integers(0, 1024, (6, 10)).astype("<u2")
    levels.tofile(tmp_path / "s.raw")
    layout = HeaderlessLayout(width=10, height=6, bits=10, cfa="bggr", black=(10, 20, 30, 40), wb=(2, 1, 1.5))
    with open_raw(tmp_path / "s.raw", layout) as raw:
        assert raw.info.cfa == CFA.BGGR and raw.info.white_level == 1023
        m = raw.mosaic()[0].double().numpy()
        with pytest.raises(RawMambaError, match="headerless"):
            raw.render_libraw()
    # BGGR: red sits at (1, 1), black 10; blue at (0, 0), black 40.
    expected_red = np.clip((levels[1::2, 1::2] - 10.0) / (1023 - 10), 0, 1)
    np.testing.assert_allclose(m[1::2, 1::2], expected_red, atol=1e-6)
    np.testing.assert_allclose(m[0::2, 0::2], np.clip((levels[0::2, 0::2] - 40.0) / (1023 - 40), 0, 1), atol=1e-6)


@pytest.mark.skipif(not REAL.is_dir(), reason="real-RAW samples not present")
def test_real_dngs_read_and_rewrite_exactly(tmp_path):
    expected = {"canon_eos550d_ml_colorchart__tinydng.dng": (2056, 15000, 1),
                "hero7_gopr9231__gpr2dng.dng": (0, 16383, 2)}
    for name, (black, white, orientation) in expected.items():
        with open_raw(REAL / name) as raw:
            info, crop = raw.info, raw.levels[:256, :384].copy()
            rgb = raw.raw_rgb(downscale=4)
        assert info.cfa == CFA.RGGB and info.black_level_per_channel == (black,) * 4
        assert info.white_level == white and info.orientation == orientation and info.rgb_xyz_matrix is not None
        assert rgb.shape == (3, info.height // 4, info.width // 4) and 0.0 < float(rgb.mean()) < 0.5
        out = write_dng(tmp_path / name, crop, info)
        with rawpy.imread(str(out)) as back:
            np.testing.assert_array_equal(back.raw_image_visible, crop)
            assert back.white_level == white


@pytest.mark.skipif(not REAL.is_dir(), reason="real-RAW samples not present")
def test_real_headerless_dumps():
    nikon = HeaderlessLayout(width=768, height=512, bits=14, black=600, white=15520, wb=(1.949, 1.0, 1.344))
    openisp = HeaderlessLayout(width=1920, height=1080, bits=10, wb=(1860 / 1024, 1.0, 1280 / 1024))
    for name, layout in (("nikon_d750_DSC_1339_crop_768x512_14bit_rggb__mushfiqulalam-isp.raw", nikon),
                         ("openisp_test_1920x1080_10bit_rggb.raw", openisp)):
        with open_raw(REAL / name, layout) as raw:
            packed = raw.packed()
        assert packed.shape == (4, layout.height // 2, layout.width // 2)
        # A real scene: greens correlate strongly with each other, and nothing is all black or all white.
        assert _corr(packed[1], packed[2]) > 0.9 and 0.01 < float(packed.mean()) < 0.9
