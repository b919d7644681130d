"""RIR-style global model: recovers a purely global ISP, stays within 64 KB, round-trips through its file."""

import dataclasses

import pytest
import torch

from rawmamba.baselines import GlobalColourFit, RIRFit, RIRParameters, SAMInterpolation
from rawmamba.errors import RawMambaError
from rawmamba.isp import CAMERAS, Shot, render_with_shot
from rawmamba.metadata import grid_mask
from rawmamba.metrics import psnr


def _global_isp_pair(camera="Canon EOS 550D", seed=0, height=64, width=96):
    """A raw-RGB scene in gamut and its sRGB through a camera ISP with every spatial or lossy step off."""
    generator = torch.Generator().manual_seed(seed)
    lum = torch.rand(1, 1, height, width, generator=generator)
    chroma = 1 + 0.3 * (torch.rand(1, 3, height, width, generator=generator) - 0.5)
    raw = (lum**2 * chroma * torch.tensor([0.5, 0.8, 0.6]).view(1, 3, 1, 1)).clamp(0, 1) * 0.8
    cam = dataclasses.replace(CAMERAS[camera], vignette=0.0)  # lens shading is spatial: not a global ISP
    srgb, _ = render_with_shot(raw, cam, generator, shot=Shot((1.8, 1.0, 1.5)), local_tone=False, noise=False,
                               quantize=False, jpeg=False)
    return srgb, raw


@pytest.mark.parametrize("camera", ["Canon EOS 550D", "Sony SLT-A57"])
def test_rir_recovers_a_global_isp_above_50_db(camera):
    srgb, raw = _global_isp_pair(camera)
    method = RIRFit()
    pred = method.derender(srgb, method.capture(srgb, raw))
    assert psnr(pred, raw).item() > 50
    # The global polynomial on the same pixels is clearly worse: the tone curve needs the knots.
    dense = GlobalColourFit().capture(srgb, raw)
    assert psnr(GlobalColourFit().derender(srgb, dense), raw).item() < psnr(pred, raw).item() - 5


def test_rir_recovers_a_hand_made_global_map_with_packed_raw():
    generator = torch.Generator().manual_seed(3)
    srgb = torch.rand(1, 3, 40, 60, generator=generator)
    linear = srgb.clamp(0, 1) ** 2.2
    matrix = torch.tensor([[0.6, 0.3, 0.1], [0.1, 0.8, 0.1], [0.1, 0.8, 0.1], [0.05, 0.25, 0.7]])
    raw = torch.einsum("oc,tchw->tohw", matrix, linear) * torch.tensor([0.5, 0.9, 0.9, 0.7]).view(1, 4, 1, 1)
    method = RIRFit()
    params = method.capture(srgb, raw)
    assert params.raw_channels == 4 and params.matrix.shape == (4, 3)
    assert (params.knots.diff(dim=1) >= 0).all()  # monotone curves
    assert psnr(method.derender(srgb, params), raw).item() > 50


def test_rir_parameter_file_is_small_and_round_trips(tmp_path):
    srgb, raw = _global_isp_pair(seed=1)
    method = RIRFit()
    params = method.capture(srgb, raw)
    path = method.save_metadata(tmp_path / "params.npz", params)
    assert path.stat().st_size <= 64 * 1024
    loaded = method.load_metadata(path, expect_channels=3)
    assert isinstance(loaded, RIRParameters) and loaded.kind == "parameters"
    # float32 storage: the de-rendering changes by far less than a 16-bit level.
    assert (method.derender(srgb, loaded) - method.derender(srgb, params)).abs().max() < 1e-5
    with pytest.raises(RawMambaError, match="max_bytes"):
        RIRFit(max_bytes=1000).save_metadata(tmp_path / "big.npz", params)
    assert not (tmp_path / "big.npz").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["params.npz"]
    with pytest.raises(RawMambaError, match="3-channel RAW, 4 are needed"):
        method.load_metadata(path, expect_channels=4)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(RawMambaError, match="junk.npz"):
        method.load_metadata(tmp_path / "junk.npz")


def test_rir_is_deterministic_and_refuses_other_metadata_kinds():
    srgb, raw = _global_isp_pair(seed=2)
    first, second = RIRFit().capture(srgb, raw), RIRFit().capture(srgb, raw)
    assert torch.equal(RIRFit().derender(srgb, first), RIRFit().derender(srgb, second))
    sampled = SAMInterpolation().capture(srgb, raw, mask=grid_mask(64, 96))
    with pytest.raises(RawMambaError, match="rir takes parameters metadata, got sampled metadata"):
        RIRFit().derender(srgb, sampled)
    with pytest.raises(RawMambaError, match="sam takes sampled metadata, got parameters metadata"):
        SAMInterpolation().derender(srgb, first)
    with pytest.raises(RawMambaError, match="got a dict"):
        RIRFit().derender(srgb, {"knots": 1})
