"""The learned baselines (CAM-style, RVD-style, blind U-Net): shapes, gradients, sampler, warping, registry."""

import pytest
import torch

from rawmamba.errors import RawMambaError
from rawmamba.metadata import grid_budget, grid_mask, sample_image_metadata
from rawmamba.models import create_model, model_arguments
from rawmamba.models.cam_sampler import ContentAwareSampler
from rawmamba.models.cam_unet import spread_samples
from rawmamba.models.cross_attention import LocalCrossAttention
from rawmamba.models.optical_flow import flow_warp
from rawmamba.models.rvd_net import consecutive_flow

SMALL = {
    "cam_unet": {"widths": (8, 16, 16), "sampler_width": 8},
    "rvd_net": {"widths": (8, 16, 16), "heads": 2, "confidence_width": 8},
    "blind_unet": {"widths": (8, 16, 16)},
}


def inputs(b=2, t=3, c=3, h=21, w=30, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(b, t, 3, h, w, generator=g)
    raw = torch.rand(b, c, h, w, generator=g)
    flow = torch.randn(b, t, 2, h, w, generator=g)
    return x, x[:, 0].clone(), raw, flow


def sampled(x, raw, seed=0):
    b, _, _, h, w = x.shape
    mask = torch.stack([grid_mask(h, w, rng=torch.Generator().manual_seed(seed + i)) for i in range(b)])
    return x[:, 0] * mask, raw * mask, mask


@pytest.mark.parametrize("name", sorted(SMALL))
@pytest.mark.parametrize("channels", [3, 4])
def test_every_baseline_shape_finite_and_every_parameter_has_a_gradient(name, channels):
    torch.manual_seed(0)
    model = create_model(name, raw_channels=channels, **SMALL[name])
    x, meta_srgb, meta_raw, flow = inputs(c=channels)
    out = model(x, meta_srgb, meta_raw, flow=flow)  # dense metadata: what training gives each of them
    assert out.shape == (2, 3, channels, 21, 30)
    assert torch.isfinite(out).all()
    out.square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, missing
    assert model.raw_channels == channels and model.config["raw_channels"] == channels


@pytest.mark.parametrize("name", sorted(SMALL))
def test_checkpoint_arguments_rebuild_the_same_network(name):
    model = create_model(name, **SMALL[name]).eval()
    assert model.variant == name and model.overrides == SMALL[name]
    again = create_model(model.variant, **model.overrides).eval()
    again.load_state_dict(model.state_dict())
    x, meta_srgb, meta_raw, flow = inputs(b=1, t=2)
    assert torch.equal(model(x, meta_srgb, meta_raw, flow=flow), again(x, meta_srgb, meta_raw, flow=flow))
    assert set(model.config) <= set(model_arguments(name))
    with pytest.raises(RawMambaError, match="unknown override.*dim"):
        create_model(name, dim=3)


def test_blind_unet_ignores_the_metadata():
    model = create_model("blind_unet", **SMALL["blind_unet"]).eval()
    x, meta_srgb, meta_raw, _ = inputs()
    a = model(x, meta_srgb, meta_raw)
    b = model(x, torch.zeros_like(meta_srgb), torch.rand_like(meta_raw), meta_mask=torch.ones_like(meta_raw[:, :1]))
    assert torch.equal(a, b)


@pytest.mark.parametrize("size", [(16, 24), (21, 30), (8, 9)])
def test_sampler_keeps_exactly_one_pixel_per_cell(size):
    h, w = size
    sampler = ContentAwareSampler(cell=8, width=8)
    srgb = torch.rand(2, 3, h, w, generator=torch.Generator().manual_seed(1))
    mask = sampler.hard_mask(srgb)
    assert mask.shape == (2, 1, h, w)
    assert set(mask.unique().tolist()) <= {0.0, 1.0}
    for y in range(0, h, 8):
        for x in range(0, w, 8):
            assert mask[:, :, y:y + 8, x:x + 8].sum(dim=(1, 2, 3)).tolist() == [1.0, 1.0]
    assert mask.sum().item() == 2 * grid_budget(h, w, 8)


def test_sampler_straight_through_mask_is_hard_with_the_soft_gradient():
    sampler = ContentAwareSampler(cell=4, width=8)
    srgb = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    soft, hard = sampler.assignment(srgb)
    mask = sampler(srgb)
    assert torch.allclose(mask, hard, atol=1e-6)
    assert torch.allclose(soft.view(2, 4, 2, 4).sum(dim=(1, 3)), torch.ones(2, 2))  # a distribution per cell
    weights = torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(3))
    (mask * weights).sum().backward()
    assert sampler.score[0].weight.grad.abs().sum() > 0


def test_sampler_learns_where_the_content_is():
    """One bright pixel per 4x4 cell: a few steps of maximising the sampled brightness find them all."""
    torch.manual_seed(0)
    srgb = torch.zeros(1, 3, 8, 8)
    targets = [(1, 2), (0, 7), (6, 1), (5, 5)]
    for y, x in targets:
        srgb[0, :, y, x] = 1.0
    sampler = ContentAwareSampler(cell=4, width=8, temperature=0.5)
    optimizer = torch.optim.Adam(sampler.parameters(), lr=1e-2)
    for _ in range(150):
        loss = -(sampler(srgb) * srgb[:, :1]).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    chosen = sampler.hard_mask(srgb)[0, 0].nonzero().tolist()
    assert sorted(map(tuple, chosen)) == sorted(targets)


def test_cam_unet_uses_the_given_samples_or_samples_the_dense_frame_itself():
    model = create_model("cam_unet", **SMALL["cam_unet"]).eval()
    x, meta_srgb, meta_raw, _ = inputs(t=1)
    given = sampled(x, meta_raw)
    with torch.no_grad():
        chosen = model.sampler.hard_mask(meta_srgb)
        own = model(x, meta_srgb, meta_raw)  # dense: the network's own samples
        same = model(x, meta_srgb * chosen, meta_raw * chosen, meta_mask=chosen)
        other = model(x, *given)
    assert torch.allclose(own, same, atol=1e-6)
    assert not torch.allclose(own, other, atol=1e-3)
    with pytest.raises(RawMambaError, match="meta_mask"):
        model(x, *given[:2], meta_mask=given[2][..., :8])


def test_spread_samples_is_the_mean_of_the_samples_in_reach():
    values = torch.zeros(1, 1, 5, 5)
    mask = torch.zeros(1, 1, 5, 5)
    values[0, 0, 0, 0], values[0, 0, 0, 2], values[0, 0, 4, 4] = 2.0, 4.0, 7.0
    mask[values != 0] = 1.0
    spread = spread_samples(values, mask, radius=1)
    assert spread[0, 0, 1, 1] == pytest.approx(3.0)  # (2 + 4) / 2
    assert spread[0, 0, 3, 3] == pytest.approx(7.0)
    assert spread[0, 0, 2, 0] == 0.0  # no sample within one pixel


@pytest.mark.parametrize("shift", [(2, -1), (-3, 0)])
def test_rvd_warping_is_exact_for_an_integer_translation(shift):
    """A scene translating by (dx, dy) per frame: flows to frame 0 are t * shift; the chained frame-to-frame
    flow is exactly the shift, and warping frame t-1 with it gives frame t inside the frame, to the float rounding
    of grid_sample's normalised coordinates."""
    dx, dy = shift
    scene = torch.rand(1, 3, 40, 48, generator=torch.Generator().manual_seed(4))
    frames = [torch.roll(scene, shifts=(-t * dy, -t * dx), dims=(-2, -1)) for t in range(3)]  # f_t(p) = s(p + t v)
    flow = torch.stack([torch.tensor([t * dx, t * dy], dtype=torch.float32).view(1, 2, 1, 1).expand(1, 2, 40, 48)
                        for t in range(3)], dim=1)
    steps = consecutive_flow(flow)
    assert torch.equal(steps[:, 0], flow[:, 0])
    assert torch.allclose(steps[:, 1:], torch.tensor([dx, dy], dtype=torch.float32).view(1, 1, 2, 1, 1).expand_as(
        steps[:, 1:]), atol=1e-6)
    for t in (1, 2):
        warped = flow_warp(frames[t - 1], steps[:, t])
        inner = (slice(None), slice(None), slice(4, -4), slice(4, -4))
        assert torch.allclose(warped[inner], frames[t][inner], atol=1e-5), f"{(warped - frames[t])[inner].abs().max()}"


def test_consecutive_flow_chains_a_varying_motion():
    """Frame 1 moves by 1.5 px (to frame 0), frame 2 by 4 px: frame 2 -> frame 1 is 2.5 px everywhere."""
    flow = torch.zeros(1, 3, 2, 16, 16)
    flow[:, 1, 0], flow[:, 2, 0] = 1.5, 4.0
    assert torch.allclose(consecutive_flow(flow)[:, 2, 0], torch.full((1, 16, 16), 2.5))


def test_rvd_net_first_frame_starts_from_the_metadata_and_refuses_sampled_metadata():
    model = create_model("rvd_net", **SMALL["rvd_net"]).eval()
    x, meta_srgb, meta_raw, _ = inputs(b=1, t=2)
    flow = torch.zeros(1, 2, 2, 21, 30)
    with torch.no_grad():
        out = model(x, meta_srgb, meta_raw, flow=flow)
    # the head starts small: frame 0 (zero flow to the metadata frame) is close to the metadata RAW
    assert (out[:, 0] - meta_raw).abs().mean() < 0.05
    with pytest.raises(RawMambaError, match="dense first-frame"):
        model(x, *sampled(x, meta_raw))
    with pytest.raises(RawMambaError, match="flow"):
        model(x, meta_srgb, meta_raw, flow=flow[:, :1])


def test_rvd_net_feeds_its_predictions_back():
    """Changing frame 0's input changes frame 1's prediction, through the fed-back RAW only."""
    model = create_model("rvd_net", **SMALL["rvd_net"]).eval()
    x, meta_srgb, meta_raw, _ = inputs(b=1, t=2)
    flow = torch.zeros(1, 2, 2, 21, 30)
    changed = x.clone()
    changed[:, 0] = 1 - changed[:, 0]
    with torch.no_grad():
        a = model(x, meta_srgb, meta_raw, flow=flow)
        b = model(changed, meta_srgb, meta_raw, flow=flow)
    assert (a[:, 1] - b[:, 1]).abs().max() > 1e-4


def test_local_cross_attention_reads_only_the_window():
    attention = LocalCrossAttention(4, window=3)
    query = torch.rand(1, 4, 7, 7)
    context = torch.rand(1, 4, 7, 7)
    far = context.clone()
    far[..., 5:, 5:] += 1.0  # more than one pixel away from (2, 2)
    assert torch.allclose(attention(query, context)[..., 2, 2], attention(query, far)[..., 2, 2])
    assert not torch.allclose(attention(query, context)[..., 4, 4], attention(query, far)[..., 4, 4])


def test_capture_mask_round_trips_through_a_metadata_file(tmp_path):
    from rawmamba.metadata import load_metadata, save_metadata

    sampler = ContentAwareSampler(cell=8, width=8)
    srgb, raw = torch.rand(3, 24, 40), torch.rand(3, 24, 40)
    mask = sampler.hard_mask(srgb[None])[0]
    meta = sample_image_metadata(srgb, raw, mask)
    save_metadata(tmp_path / "m.npz", meta, layout="raw-rgb")
    loaded = load_metadata(tmp_path / "m.npz", expect_size=(24, 40))
    assert torch.equal(loaded.mask, mask)
    assert torch.allclose(loaded.raw, meta.raw, atol=1 / 65535)
