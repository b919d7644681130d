"""The per-frame 3-D convolution (rawmamba.models.volume_conv) against PyTorch's conv3d, and the modules
that use it against plain ``nn.Conv3d``."""

import pytest
import torch
import torch.nn.functional as F

import rawmamba.models.decoder as decoder_module
import rawmamba.models.lta_mamba as lta_module
from rawmamba.models.decoder import ConvBlock3d, Decoder3d
from rawmamba.models.lta_mamba import LTAMamba
from rawmamba.models.volume_conv import (
    VOLUME_FORMAT,
    conv3d_per_frame,
    conv3d_pointwise,
    conv_volume,
    join_channels,
    per_frame_applies,
    volume_layout,
)

TOL = {"rtol": 1e-5, "atol": 1e-5}
KERNELS = [(3, 3, 3), (1, 3, 3), (3, 1, 1), (5, 3, 1)]


def make_conv(kernel, groups, bias, channels=4, out_channels=None, seed=0):
    torch.manual_seed(seed)
    out_channels = channels if out_channels is None else out_channels
    padding = tuple(k // 2 for k in kernel)
    return torch.nn.Conv3d(channels, out_channels, kernel, padding=padding, groups=groups, bias=bias)


def inputs(t, channels=4, seed=1):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(2, channels, t, 7, 9, generator=gen), torch.Generator().manual_seed(seed + 1)


def forward_and_grads(fn, conv, x, grad_out):
    """Output and the gradients of ``(fn(x) * grad_out).sum()`` w.r.t. the input, weight and bias."""
    x = x.clone().requires_grad_(True)
    out = fn(x)
    params = [conv.weight] + ([conv.bias] if conv.bias is not None else [])
    grads = torch.autograd.grad((out * grad_out).sum(), [x, *params])
    return out, grads


def assert_close_for(got, want, dtype):
    """float64: the identity to 1e-10; float32: 1e-5 of the tensor's scale (the gradients of the weight sum
    ~600 products, where conv3d's own summation order already moves the last digits)."""
    if dtype == torch.float64:
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)
    else:
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5 * max(1.0, want.abs().max().item()))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("t", [1, 2, 3, 5])
@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("depthwise", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_per_frame_conv_matches_conv3d_forward_and_gradients(t, kernel, depthwise, bias, dtype):
    conv = make_conv(kernel, groups=4 if depthwise else 1, bias=bias, out_channels=4 if depthwise else 6).to(dtype)
    x, gen = inputs(t)
    x = x.to(dtype)
    grad_out = torch.randn(2, conv.out_channels, t, 7, 9, generator=gen, dtype=dtype)
    pad = conv.padding[1:]

    def fast(v):
        return conv3d_per_frame(v, conv.weight, conv.bias, pad, conv.groups)

    want, want_grads = forward_and_grads(
        lambda v: F.conv3d(v, conv.weight, conv.bias, padding=conv.padding, groups=conv.groups), conv, x, grad_out
    )
    got, got_grads = forward_and_grads(fast, conv, x, grad_out)
    assert got.shape == want.shape == (2, conv.out_channels, t, 7, 9)
    assert len(got_grads) == (3 if bias else 2)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert_close_for(got, want, dtype)
    for g, w in zip(got_grads, want_grads, strict=True):
        assert_close_for(g, w, dtype)
    # conv_volume (whichever path it takes) is the module's own result, gradients included
    got_mod, got_mod_grads = forward_and_grads(lambda v: conv_volume(conv, v), conv, x, grad_out)
    mod, mod_grads = forward_and_grads(conv, conv, x, grad_out)
    assert_close_for(got_mod, mod, dtype)
    for g, w in zip(got_mod_grads, mod_grads, strict=True):
        assert_close_for(g, w, dtype)


def test_per_frame_conv_reads_neighbouring_frames_and_adds_the_bias_once():
    """A hand-checkable case: one channel, kernel (3, 1, 1) with taps (1, 10, 100), bias 0.5."""
    weight = torch.tensor([1.0, 10.0, 100.0]).view(1, 1, 3, 1, 1)
    x = torch.tensor([1.0, 2.0, 3.0, 4.0]).view(1, 1, 4, 1, 1)
    bias = torch.tensor([0.5])
    out = conv3d_per_frame(x, weight, bias)
    # frame j: 1 * x[j - 1] + 10 * x[j] + 100 * x[j + 1] + 0.5, zeros outside the clip
    assert out.flatten().tolist() == [210.5, 321.5, 432.5, 43.5]
    assert torch.equal(out, F.conv3d(x, weight, bias, padding=(1, 0, 0)))


@pytest.mark.parametrize("t", [1, 3])
def test_conv_volume_takes_the_per_frame_path_on_cpu(t, monkeypatch):
    conv = make_conv((3, 3, 3), groups=1, bias=True)
    x, _ = inputs(t)
    want = conv(x)

    def no_conv3d(*args, **kwargs):
        raise AssertionError("conv3d called")

    monkeypatch.setattr(F, "conv3d", no_conv3d)
    torch.testing.assert_close(conv_volume(conv, x), want, **TOL)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("t", [1, 3])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("channels_last", [False, True])
def test_pointwise_conv_is_a_matrix_product_in_the_input_layout(t, bias, channels_last, dtype, monkeypatch):
    conv = make_conv((1, 1, 1), groups=1, bias=bias, out_channels=6).to(dtype)
    x, gen = inputs(t)
    x = x.to(dtype)
    if channels_last:
        x = x.contiguous(memory_format=VOLUME_FORMAT)
    grad_out = torch.randn(2, 6, t, 7, 9, generator=gen, dtype=dtype)
    want, want_grads = forward_and_grads(conv, conv, x, grad_out)
    monkeypatch.setattr(F, "conv3d", lambda *args, **kwargs: pytest.fail("conv3d called"))
    got, got_grads = forward_and_grads(lambda v: conv3d_pointwise(v, conv.weight, conv.bias), conv, x, grad_out)
    assert_close_for(got, want, dtype)
    for g, w in zip(got_grads, want_grads, strict=True):
        assert_close_for(g, w, dtype)
    # a channels-last input gives a channels-last output; a channel-major one a contiguous output
    assert got.is_contiguous(memory_format=VOLUME_FORMAT if channels_last else torch.contiguous_format)
    # conv_volume on the CPU takes this path, in the CPU's layout
    got_mod = conv_volume(conv, x)
    assert got_mod.is_contiguous(memory_format=VOLUME_FORMAT)
    assert_close_for(got_mod, want, dtype)


@pytest.mark.parametrize("groups", [1, 4])
@pytest.mark.parametrize("t", [1, 4])
def test_per_frame_conv_on_cpu_is_channels_last_and_reads_channels_last_frames_in_place(groups, t, monkeypatch):
    """conv_volume lays a CPU volume out channels-last once; each conv2d then reads a frame of it in place
    (one call per tap; for one batch item, since the frame of a batch is not one block of memory), and the
    result is channels-last too, ready for the next conv."""
    conv = make_conv((3, 3, 3), groups=groups, bias=True)
    x = inputs(t)[0][:1]
    out = conv_volume(conv, x)
    assert out.is_contiguous(memory_format=VOLUME_FORMAT)
    torch.testing.assert_close(out, conv(x), **TOL)
    want = conv(out.contiguous())
    conv2d_inputs, conv2d = [], F.conv2d

    def recorded(inp, *args, **kwargs):
        conv2d_inputs.append(inp)
        return conv2d(inp, *args, **kwargs)

    monkeypatch.setattr(F, "conv2d", recorded)
    again = conv_volume(conv, out)
    torch.testing.assert_close(again, want, **TOL)
    assert again.is_contiguous(memory_format=VOLUME_FORMAT)
    assert len(conv2d_inputs) == (1 if t == 1 else 3 * t - 2)  # the taps that meet the clip
    storage = out.untyped_storage().data_ptr()
    assert all(i.untyped_storage().data_ptr() == storage for i in conv2d_inputs)


@pytest.mark.parametrize(
    "options",
    [
        {"stride": (1, 2, 2), "padding": 1},
        {"stride": (2, 1, 1), "padding": 1},
        {"dilation": (1, 2, 2), "padding": (1, 2, 2)},
        {"dilation": (2, 1, 1), "padding": (2, 1, 1)},
        {"padding": 1, "padding_mode": "replicate"},
        {"padding": (2, 1, 1)},
        {"padding": "same"},
    ],
)
@pytest.mark.parametrize("t", [1, 4])
def test_conv_volume_falls_back_to_conv3d_where_the_identity_does_not_hold(options, t):
    torch.manual_seed(0)
    conv = torch.nn.Conv3d(4, 5, 3, **options)
    assert not per_frame_applies(conv)
    x, _ = inputs(t)
    assert torch.equal(conv_volume(conv, x), conv(x))


def test_per_frame_rejects_an_even_temporal_kernel():
    with pytest.raises(ValueError, match="odd"):
        conv3d_per_frame(torch.randn(1, 2, 3, 4, 4), torch.randn(2, 2, 2, 3, 3))


def plain_conv3d(conv, x):
    return conv(x)


@pytest.mark.parametrize("t", [1, 2, 5])
def test_decoder_output_is_unchanged_by_the_per_frame_path(t, monkeypatch):
    torch.manual_seed(0)
    block = ConvBlock3d(6, 8)
    dec = Decoder3d(16, 4, reduction=4, dims=(8, 8, 8))
    features, frames = torch.randn(1, 16, t, 4, 5), torch.rand(1, t, 3, 16, 20)
    x = torch.randn(2, 6, t, 5, 7)
    with torch.no_grad():
        got_block, got_dec = block(x), dec(features, frames)
        monkeypatch.setattr(decoder_module, "conv_volume", plain_conv3d)
        want_block, want_dec = block(x), dec(features, frames)
    torch.testing.assert_close(got_block, want_block, **TOL)
    torch.testing.assert_close(got_dec, want_dec, **TOL)


@pytest.mark.parametrize("t", [1, 2, 5])
@pytest.mark.parametrize("conv_mode", ["3d", "2d"])
def test_lta_mamba_output_is_unchanged_by_the_per_frame_path(t, conv_mode, monkeypatch):
    torch.manual_seed(0)
    model = LTAMamba(8, d_state=4, conv_mode=conv_mode, reduction=4)
    x = torch.randn(1, 8, t, 4, 6)
    with torch.no_grad():
        got = model(x)
        monkeypatch.setattr(lta_module, "conv_volume", plain_conv3d)
        want = model(x)
    torch.testing.assert_close(got, want, **TOL)


@pytest.mark.parametrize("t", [1, 4])
def test_join_channels_is_a_concatenation_in_the_devices_volume_layout(t):
    """Also for one frame, where torch.cat of two channels-last volumes returns a contiguous one."""
    first = torch.randn(1, 3, t, 5, 6, requires_grad=True)
    second = torch.randn(1, 2, t, 5, 6).contiguous(memory_format=VOLUME_FORMAT).requires_grad_(True)
    joined = join_channels(first, second)
    assert torch.equal(joined, torch.cat((first, second), dim=1))
    assert joined.is_contiguous(memory_format=VOLUME_FORMAT)
    assert volume_layout(joined) is joined  # laid out already: no copy
    joined.sum().backward()
    assert torch.equal(first.grad, torch.ones_like(first)) and torch.equal(second.grad, torch.ones_like(second))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_volume_layout_is_contiguous_on_cuda():
    x = torch.randn(1, 3, 2, 4, 5, device="cuda").contiguous(memory_format=VOLUME_FORMAT)
    assert volume_layout(x).is_contiguous()
