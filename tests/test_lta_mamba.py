"""LTA-Mamba: shapes, gradients, the equations as written, and the ablation switches."""

from __future__ import annotations

import pytest
import torch

from rawmamba.errors import RawMambaError
from rawmamba.models.channel_attention import ChannelAttention
from rawmamba.models.lta_mamba import GlobalMambaBlock, LocalMambaBlock, LTAMamba, LTAMambaStack, norm_volume
from rawmamba.models.scan_order import from_sequence, hilbert_order, raster_order, to_sequence

DIM = 8


def volume(t=2, h=6, w=10, seed=0):
    return torch.randn(2, DIM, t, h, w, generator=torch.Generator().manual_seed(seed))


def param_names(module):
    return {n for n, _ in module.named_parameters()}


@pytest.mark.parametrize("t", [1, 5])
@pytest.mark.parametrize("conv_mode", ["3d", "2d"])
def test_shapes_and_gradients_reach_every_parameter(t, conv_mode):
    model = LTAMamba(DIM, d_state=4, conv_mode=conv_mode, reduction=4)
    x = volume(t=t, h=4, w=6)
    y = model(x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    y.square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert not missing, f"no gradient: {missing}"


def test_stack_has_depth_modules_and_keeps_the_shape():
    stack = LTAMambaStack(DIM, depth=3, d_state=4, reduction=4)
    assert len(stack.blocks) == 3
    assert stack(volume(t=1)).shape == volume(t=1).shape
    with pytest.raises(RawMambaError, match="depth"):
        LTAMambaStack(DIM, depth=0)


def test_local_block_is_eq_15_in_hilbert_order():
    block = LocalMambaBlock(DIM, d_state=4, scan="hilbert")
    x = volume(t=3, h=4, w=6)
    order = hilbert_order(3, 4, 6)
    f = to_sequence(x, order)
    f1 = block.ssm(block.norm_ssm(f)) + f
    f1v = from_sequence(f1, order, (3, 4, 6))
    want = f1v + block.dwconv(norm_volume(block.norm_conv, f1v))
    assert torch.allclose(block(x), want, atol=1e-6)
    # The order matters: the same weights in raster order give a different result.
    block.scan = "raster"
    assert not torch.allclose(block(x), want, atol=1e-4)


def test_global_block_is_eq_16_17_with_channel_attention():
    block = GlobalMambaBlock(DIM, d_state=4, reduction=4)
    x = volume()
    order = raster_order(2, 6, 10)
    f2 = to_sequence(x, order)
    f3 = from_sequence(block.ssm(block.norm_ssm(f2)) + f2, order, (2, 6, 10))
    f2_hat = block.channel_attention(x)
    want = f3 + block.dwconv(norm_volume(block.norm_conv, f3 + f2_hat))
    assert torch.allclose(block(x), want, atol=1e-6)


def test_switches_remove_their_parameters():
    full = LTAMamba(DIM, d_state=4, reduction=4)
    names = param_names(full)
    assert any(n.startswith("local_block.") for n in names) and any(n.startswith("global_block.") for n in names)
    no_local = LTAMamba(DIM, d_state=4, local_scan=False, reduction=4)
    assert no_local.local_block is None and not any(n.startswith("local_block.") for n in param_names(no_local))
    no_global = LTAMamba(DIM, d_state=4, global_scan=False, reduction=4)
    assert no_global.global_block is None and not any(n.startswith("global_block.") for n in param_names(no_global))
    n_full = sum(p.numel() for p in full.parameters())
    n_parts = sum(p.numel() for p in no_local.parameters()) + sum(p.numel() for p in no_global.parameters())
    n_conv = sum(p.numel() for p in full.conv.parameters())
    assert n_parts == n_full + n_conv  # each switch removes exactly its block
    for model in (no_local, no_global):
        assert model(volume()).shape == volume().shape


def test_plain_variant_scans_raster_and_has_no_channel_attention():
    plain = LTAMamba(DIM, d_state=4, tone_aware=False)
    assert plain.local_block.scan == "raster" and plain.global_block.scan == "raster"
    assert plain.global_block.channel_attention is None
    assert not any("channel_attention" in n for n in param_names(plain))
    tone = LTAMamba(DIM, d_state=4, reduction=4)
    assert tone.local_block.scan == "hilbert" and isinstance(tone.global_block.channel_attention, ChannelAttention)


def test_channel_attention_rescales_channels_only():
    ca = ChannelAttention(DIM, reduction=4)
    x = volume()
    w = ca.weights(x)
    assert w.shape == (2, DIM) and (w > 0).all() and (w < 1).all()
    assert torch.allclose(ca(x), x * w[:, :, None, None, None])
    # Squeeze is a global average: shuffling positions does not change the weights.
    perm = torch.randperm(2 * 6 * 10, generator=torch.Generator().manual_seed(1))
    shuffled = x.flatten(2)[:, :, perm].view_as(x)
    assert torch.allclose(ca.weights(shuffled), w, atol=1e-6)
    assert ca(torch.randn(1, DIM, 5, 5)).shape == (1, DIM, 5, 5)


def test_2d_conv_mode_keeps_frames_separate():
    """With conv_mode="2d" and the scans off, frames do not mix; with "3d" they do."""
    x = volume(t=3)
    x2 = x.clone()
    x2[:, :, 0] += 1.0
    for mode, mixes in (("2d", False), ("3d", True)):
        model = LTAMamba(DIM, local_scan=False, global_scan=False, conv_mode=mode)
        changed = (model(x) - model(x2))[:, :, 1:].abs().max() > 1e-6
        assert changed == mixes, mode


def test_bad_arguments_and_inputs_are_reported():
    with pytest.raises(RawMambaError, match="conv_mode"):
        LTAMamba(DIM, conv_mode="1d")
    with pytest.raises(RawMambaError, match="kernel_size"):
        LTAMamba(DIM, dw_kernel=2)
    with pytest.raises(RawMambaError, match=r"input must be \(b, 8, t, h, w\)"):
        LTAMamba(DIM)(torch.randn(1, DIM, 4, 4))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_runs_on_gpu_and_matches_cpu():
    model = LTAMamba(DIM, d_state=4, reduction=4)
    x = volume(t=3)
    want = model(x)
    with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):  # TF32 convs differ by ~1e-3
        got = model.cuda()(x.cuda())
    got.square().mean().backward()
    assert torch.allclose(got.cpu(), want, atol=1e-4), f"{(got.cpu() - want).abs().max():.2e}"
    assert all(p.grad is not None and p.grad.is_cuda for p in model.parameters())
