"""Tests of the assembled RAWMamba: every variant and ablation at a tiny size, image and video."""

import pytest
import timm
import torch

from rawmamba.errors import RawMambaError
from rawmamba.models import RAWMamba, create_model, list_models
from rawmamba.models.global_prior import GlobalColourPrior
from rawmamba.models.rawmamba import gate_correction

SMALL = {
    "encoder_depths": (1, 1, 1, 1),
    "encoder_dims": (8, 16, 32, 64),
    "embed_dim": 16,
    "meta_hidden": 8,
    "leb_heads": 2,
    "leb_points": 2,
    "mamba_dim": 16,
    "mamba_depth": 1,
    "d_state": 4,
    "ca_reduction": 2,
    "decoder_dims": (16, 8, 8),
    "sample_refinement": "none",  # the network's own output; the refinement has its own tests
}

VARIANTS = {
    "tiny": ("rawmamba_tiny", {}),
    "base": ("rawmamba_base", {}),
    "bayer": ("rawmamba_tiny", {"raw_channels": 4}),
    "no_geb": ("rawmamba_tiny", {"use_geb": False}),
    "no_leb": ("rawmamba_tiny", {"use_leb": False}),
    "no_ume": ("rawmamba_tiny", {"use_geb": False, "use_leb": False}),
    "no_local": ("rawmamba_tiny", {"local_scan": False}),
    "no_global": ("rawmamba_tiny", {"global_scan": False}),
    "no_lta": ("rawmamba_tiny", {"local_scan": False, "global_scan": False}),
    "plain": ("rawmamba_tiny", {"plain_mamba": True}),
    "no_prior": ("rawmamba_tiny", {"global_prior": False}),
    "no_prior_bayer": ("rawmamba_tiny", {"global_prior": False, "raw_channels": 4}),
    "no_prior_no_ume": ("rawmamba_tiny", {"global_prior": False, "use_geb": False, "use_leb": False}),
    "mamba_at_stride_8": ("rawmamba_tiny", {"mamba_stage": 1, "decoder_dims": (16, 8, 8, 8)}),
}


def small_model(key: str) -> RAWMamba:
    name, overrides = VARIANTS[key]
    return create_model(name, **{**SMALL, **overrides})


def with_random_head(model: RAWMamba, gate: bool = False) -> RAWMamba:
    """The model with a non-zero decoder head, as after training: with the global prior the zero-initialised
    head makes the untrained output exactly the prior, which would hide the rest of the network. Unless
    ``gate``, the eval-time correction gate is off too (a random correction is gated back to the prior)."""
    if model.prior is not None:
        torch.nn.init.normal_(model.decoder.head.weight, std=0.05)
    model.correction_gate = model.correction_gate and gate
    return model


def image_inputs(raw_channels: int, h: int = 64, w: int = 64, batch: int = 2):
    x = torch.rand(batch, 1, 3, h, w)
    raw = torch.rand(batch, raw_channels, h, w)
    mask = torch.zeros(batch, 1, h, w)
    mask[..., 3::8, 5::8] = 1.0  # one sample per 8x8 cell (1.5625%)
    return x, x[:, 0] * mask, raw * mask, mask


def video_inputs(raw_channels: int, t: int = 3, h: int = 64, w: int = 64):
    base = torch.nn.functional.interpolate(torch.rand(1, 3, 20, 20), size=(h + 8, w + 8), mode="bilinear")
    frames = torch.stack([base[0, :, i : i + h, i : i + w] for i in range(t)])[None]  # diagonal motion
    return frames, frames[:, 0], torch.rand(1, raw_channels, h, w)


def check_output(out: torch.Tensor, shape: tuple) -> None:
    assert out.shape == shape
    assert torch.isfinite(out).all()
    assert out.min() >= 0.0 and out.max() <= 1.0


def dead_parameters(model: RAWMamba) -> list[str]:
    return [n for n, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]


def check_all_gradients(model: RAWMamba, out: torch.Tensor, inputs: tuple) -> None:
    """Every parameter receives a gradient. With the global prior the correction head starts at zero, so
    the first gradient reaches exactly the head; after one SGD step it must reach every parameter."""
    target = torch.rand_like(out)
    (out - target).square().mean().backward()
    if model.prior is not None:
        head = {"decoder.head.weight", "decoder.head.bias"}
        assert set(dead_parameters(model)) == {n for n, _ in model.named_parameters()} - head
        with torch.no_grad():
            for p in model.parameters():
                if p.grad is not None:
                    p -= 0.01 * p.grad
        model.zero_grad(set_to_none=True)
        (model(*inputs) - target).square().mean().backward()
    dead = dead_parameters(model)
    assert not dead, f"parameters without gradient: {dead}"


def check_metadata_matters(model: RAWMamba, inputs: tuple, out: torch.Tensor, other_raw: torch.Tensor) -> None:
    """The output depends on the metadata RAW: it changes when the RAW changes, and its gradient with
    respect to the RAW is not zero (an untrained network passes the metadata weakly, so the change is
    small but exactly zero when the metadata is ignored)."""
    x, ms, mr, mask = inputs
    with torch.no_grad():
        other = model(x, ms, other_raw, mask)
    assert not torch.equal(other, out), "output ignores the metadata RAW"
    mr = mr.clone().requires_grad_(True)
    model(x, ms, mr, mask).sum().backward()
    assert mr.grad is not None and mr.grad.abs().sum() > 0, "no gradient reaches the metadata RAW"
    model.zero_grad(set_to_none=True)


def uses_metadata(model: RAWMamba) -> bool:
    return model.ume is not None or model.prior is not None


@pytest.mark.parametrize("key", sorted(VARIANTS))
def test_image_path(key):
    model = small_model(key)
    c = model.raw_channels
    x, ms, mr, mask = image_inputs(c)
    out = model(x, ms, mr, mask)
    check_output(out, (2, 1, c, 64, 64))
    if uses_metadata(model):
        check_metadata_matters(model, (x, ms, mr, mask), out, mr * 0.5)
    check_all_gradients(model, out, (x, ms, mr, mask))


@pytest.mark.parametrize("key", sorted(VARIANTS))
def test_video_path(key):
    model = small_model(key)
    c = model.raw_channels
    frames, ms, mr = video_inputs(c)
    out = model(frames, ms, mr)  # flow from OpenCV DIS
    check_output(out, (1, 3, c, 64, 64))
    if uses_metadata(model):
        check_metadata_matters(model, (frames, ms, mr, None), out, mr.flip(-1))
    check_all_gradients(model, out, (frames, ms, mr))


@pytest.mark.parametrize("key", ["tiny", "no_prior"])
def test_given_flow_is_used(key):
    model = with_random_head(small_model(key)).eval()
    frames, ms, mr = video_inputs(3, t=2)
    with torch.no_grad():
        zero = model(frames, ms, mr, flow=torch.zeros(1, 2, 2, 64, 64))
        moved = model(frames, ms, mr, flow=torch.full((1, 2, 2, 64, 64), 8.0))
    assert not torch.equal(zero, moved)


def names(model: RAWMamba) -> set[str]:
    return {n for n, _ in model.named_parameters()}


@pytest.mark.parametrize(
    ("key", "prefixes"),
    [
        ("no_geb", ("ume.geb.", "ume.weight_global")),
        ("no_leb", ("ume.leb.", "ume.weight_local")),
        ("no_ume", ("ume.", "search.")),
        ("no_local", ("lta.",)),
        ("no_global", ("lta.",)),
        ("no_lta", ("lta.",)),
        ("plain", ("lta.",)),
    ],
)
def test_ablation_switch_removes_its_parameters(key, prefixes):
    full, ablated = names(small_model("tiny")), names(small_model(key))
    removed = full - ablated
    assert removed, f"{key} removed no parameter"
    assert all(n.startswith(prefixes) for n in removed), sorted(removed)
    assert all(n.startswith(prefixes) for n in ablated - full), sorted(ablated - full)
    if key == "no_ume":
        assert not any(n.startswith(("ume.", "search.")) for n in ablated)
    if key == "no_lta":
        assert not any(n.startswith("lta.") for n in ablated)


def test_odd_sizes_are_padded_and_cropped_back():
    model = small_model("tiny").eval()
    x, ms, mr, mask = image_inputs(3, h=70, w=93, batch=1)
    with torch.no_grad():
        out = model(x, ms, mr, mask)
        frames, fms, fmr = video_inputs(3, t=2, h=37, w=45)
        video = model(frames, fms, fmr)
    check_output(out, (1, 1, 3, 70, 93))
    check_output(video, (1, 2, 3, 37, 45))


def test_batch_elements_are_independent():
    model = with_random_head(small_model("tiny")).eval()
    x, ms, mr, mask = image_inputs(3)
    mask[1, :, 3::16] = 0.0  # a different sample count in the second element
    ms, mr = x[:, 0] * mask, mr * mask
    with torch.no_grad():
        both = model(x, ms, mr, mask)
        first = model(x[:1], ms[:1], mr[:1], mask[:1])
    assert torch.allclose(both[:1], first, atol=1e-5), f"{(both[:1] - first).abs().max()}"


def test_shape_errors_are_clear():
    model = small_model("tiny")
    x, ms, mr, mask = image_inputs(3)
    with pytest.raises(RawMambaError, match="meta_srgb"):
        model(x, ms[..., :32], mr, mask)
    with pytest.raises(RawMambaError, match="meta_raw"):
        model(x, ms, mr[..., :32, :], mask)
    with pytest.raises(RawMambaError, match="C_raw = 3"):
        model(x, ms, torch.rand(2, 4, 64, 64), mask)
    with pytest.raises(RawMambaError, match="meta_mask"):
        model(x, ms, mr, mask[:, :, :32])
    with pytest.raises(RawMambaError, match="no sampled pixel"):
        model(x, ms, mr, torch.zeros_like(mask))
    with pytest.raises(RawMambaError, match="flow"):
        model(x, ms, mr, mask, flow=torch.zeros(2, 1, 2, 32, 64))
    with pytest.raises(RawMambaError, match="x must be"):
        model(x[:, 0], ms, mr, mask)
    with pytest.raises(RawMambaError, match="at least one frame"):
        model(x[:0], ms[:0], mr[:0], mask[:0])


def test_create_model_errors_and_registry():
    assert list_models() == ["blind_unet", "cam_unet", "rawmamba_base", "rawmamba_tiny", "rvd_net"]
    with pytest.raises(RawMambaError, match="rawmamba_base, rawmamba_tiny"):
        create_model("rawmamba_huge")
    with pytest.raises(RawMambaError, match="unknown override.*no_such_arg"):
        create_model("rawmamba_tiny", no_such_arg=1)
    with pytest.raises(RawMambaError, match="raw_channels"):
        create_model("rawmamba_tiny", raw_channels=5)


def test_create_model_loads_local_encoder_weights(tmp_path):
    source = timm.create_model("convnext_atto", pretrained=False, depths=(1, 1, 1, 1), dims=(8, 16, 32, 64))
    path = tmp_path / "imagenet.pth"
    torch.save(source.state_dict(), path)
    model = create_model("rawmamba_tiny", **SMALL, encoder_weights=str(path))
    assert torch.equal(model.encoder.backbone.state_dict()["stem_0.weight"], source.state_dict()["stem.0.weight"])
    assert "encoder_weights" not in model.config and "encoder_weights" not in model.overrides
    with pytest.raises(RawMambaError, match="not found"):
        create_model("rawmamba_tiny", **SMALL, encoder_weights=str(tmp_path / "missing.pth"))
    with pytest.raises(RawMambaError, match="multiple of 4"):
        create_model("rawmamba_tiny", **{**SMALL, "embed_dim": 18, "leb_heads": 1})


def test_config_rebuilds_the_same_network():
    model = with_random_head(small_model("tiny"), gate=True).eval()
    assert model.variant == "rawmamba_tiny" and model.overrides == SMALL
    rebuilt = RAWMamba(**model.config).eval()
    rebuilt.load_state_dict(model.state_dict())
    again = create_model(model.variant, **model.overrides).eval()
    again.load_state_dict(model.state_dict())
    x, ms, mr, mask = image_inputs(3, batch=1)
    with torch.no_grad():
        ref = model(x, ms, mr, mask)
        assert torch.equal(rebuilt(x, ms, mr, mask), ref)
        assert torch.equal(again(x, ms, mr, mask), ref)


def test_tiny_variant_size():
    params = sum(p.numel() for p in create_model("rawmamba_tiny").parameters())
    assert 200_000 < params < 2_000_000, params


@pytest.mark.parametrize(
    ("key", "ablated_key", "expected"),
    [
        # raw-RGB: the head has 3 x (3 + 1) outputs either way; f3 also reads the prior's residual
        ("tiny", "no_prior", {"decoder.stem.1.0.weight", "ume.f3.mlp.0.weight"}),
        ("bayer", "no_prior_bayer", {"decoder.head.weight", "decoder.head.bias", "decoder.stem.1.0.weight",
                                     "ume.f3.mlp.0.weight"}),
    ],
)
def test_global_prior_switch_changes_only_the_decoder_head_last_skip_and_f3_input(key, ablated_key, expected):
    full, ablated = small_model(key), small_model(ablated_key)
    assert isinstance(full.prior, GlobalColourPrior) and ablated.prior is None
    assert not any(n.startswith("prior.") for n in names(full))  # the prior has no parameters
    assert names(ablated) - names(full) == {"decoder.curve"} and names(full) <= names(ablated)
    shapes = {n: p.shape for n, p in ablated.named_parameters()}
    changed = {n for n, p in full.named_parameters() if p.shape != shapes[n]}
    assert changed == expected, changed


@pytest.mark.parametrize("key", ["tiny", "bayer", "no_ume"])
def test_untrained_output_is_the_clamped_global_prior(key):
    model = small_model(key).eval()
    c = model.raw_channels
    x, ms, mr, mask = image_inputs(c, h=70, w=93)  # padded inside the model
    frames, fms, fmr = video_inputs(c, t=2, h=37, w=45)
    prior = GlobalColourPrior()
    with torch.no_grad():
        image, video = model(x, ms, mr, mask), model(frames, fms, fmr)
    expected = prior(x, ms, mr, mask)
    assert torch.allclose(image, expected, atol=1e-6), f"{(image - expected).abs().max()}"
    expected = prior(frames, fms, fmr, torch.ones(1, 1, 37, 45))
    assert torch.allclose(video, expected, atol=1e-6), f"{(video - expected).abs().max()}"
    name, overrides = VARIANTS[key]
    ablated = create_model(name, **{**SMALL, **overrides, "global_prior": False}).eval()
    with torch.no_grad():
        assert (ablated(x, ms, mr, mask) - prior(x, ms, mr, mask)).abs().max() > 0.05


def test_prior_arguments_reach_the_prior():
    model = create_model("rawmamba_tiny", **SMALL, prior_degree=2, prior_ridge=1e-3, prior_max_pairs=77)
    assert (model.prior.degree, model.prior.ridge, model.prior.max_pairs) == (2, 1e-3, 77)
    assert create_model("rawmamba_base").prior is not None


def test_correction_gate_keeps_what_the_samples_confirm():
    prior = torch.rand(2, 1, 3, 16, 16) * 0.5
    mask = torch.zeros(2, 1, 16, 16)
    mask[..., ::4, ::4] = 1
    truth = prior[:, 0] + 0.1 * torch.rand(2, 3, 16, 16)
    meta_raw = truth * mask
    overshoot = prior + 2.0 * (truth[:, None] - prior)  # twice the true correction: alpha = 1/2
    gated = gate_correction(overshoot, prior, meta_raw, mask)
    assert torch.allclose(gated, truth[:, None], atol=1e-5)
    wrong = prior - (truth[:, None] - prior)  # anti-correlated: alpha clamps to 0
    assert torch.allclose(gate_correction(wrong, prior, meta_raw, mask), prior)
    assert torch.equal(gate_correction(prior.clone(), prior, meta_raw, mask), prior)  # no correction, no NaN
    right = truth[:, None].expand_as(prior)  # confirmed in full: alpha = 1
    assert torch.allclose(gate_correction(right, prior, meta_raw, mask), right, atol=1e-6)


def test_correction_gate_acts_on_sampled_metadata_in_eval_mode_only():
    model = with_random_head(small_model("tiny"), gate=True)
    x, ms, mr, mask = image_inputs(3)
    with torch.no_grad():
        trained_mode = model.train()(x, ms, mr, mask)
        gated = model.eval()(x, ms, mr, mask)
        model.correction_gate = False
        ungated = model(x, ms, mr, mask)
    assert torch.allclose(trained_mode, ungated, atol=1e-6)
    prior = GlobalColourPrior()(x, ms, mr, mask)
    assert torch.allclose(gated, gate_correction(ungated, prior, mr, mask), atol=1e-5)
    assert not torch.allclose(gated, ungated)


def test_correction_gate_on_video_weighs_the_correction_on_the_metadata_frame():
    model = with_random_head(small_model("tiny"), gate=True).eval()
    frames, fms, fmr = video_inputs(3, t=3)
    flow = torch.zeros(1, 3, 2, 64, 64)
    with torch.no_grad():
        gated = model(frames, fms, fmr, flow=flow)
        later = model(frames[:, 1:], fms, fmr, flow=flow[:, 1:])  # a window without the metadata frame
        model.correction_gate = False
        ungated = model(frames, fms, fmr, flow=flow)
    prior = GlobalColourPrior()(frames, fms, fmr, torch.ones(1, 1, 64, 64))
    expected = gate_correction(ungated, prior, fmr, torch.ones(1, 1, 64, 64), evidence_frames=1)
    assert torch.allclose(gated, expected, atol=1e-5)
    assert not torch.allclose(gated, ungated)
    assert torch.allclose(later, gated[:, 1:], atol=1e-5)  # the metadata frame is prepended: same result


def test_f3_reads_the_metadata_and_the_priors_residual_on_it():
    model = small_model("tiny").eval()
    x, ms, mr, mask = image_inputs(3)
    seen = {}
    model.ume.f3.register_forward_pre_hook(lambda module, args: seen.update(input=args[0]))
    with torch.no_grad():
        model(x, ms, mr, mask)
    prior = GlobalColourPrior()
    residual = (mr - prior.apply(prior.fit_metadata(ms, mr, mask), ms)) * mask
    assert seen["input"].shape[1] == 6
    assert torch.equal(seen["input"][:, :3], mr)
    assert torch.allclose(seen["input"][:, 3:], residual, atol=1e-6)
    assert small_model("no_prior").ume.f3.mlp[0].in_channels == 3
