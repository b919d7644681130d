"""Pointwise 2-D convs as channel-first matrix products (rawmamba.models.channel_product) against ``nn.Conv2d``."""

import pytest
import torch
import torch.nn.functional as F

from rawmamba.models.channel_product import pointwise_conv2d


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("contiguous", [True, False])
def test_pointwise_conv2d_equals_the_conv_with_gradients(bias, contiguous, monkeypatch):
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 5, 1, bias=bias).double()
    x = torch.randn(2, 7, 9, 3, dtype=torch.float64).permute(0, 3, 1, 2)  # channels-last strides
    if contiguous:
        x = x.contiguous()
    x.requires_grad_(True)
    want = conv(x)
    want_grads = torch.autograd.grad(want.square().sum(), [x, *conv.parameters()])
    monkeypatch.setattr(F, "conv2d", lambda *args, **kwargs: pytest.fail("conv2d called"))
    monkeypatch.setattr(torch.nn.Conv2d, "_conv_forward", lambda *args: pytest.fail("conv called"))
    got = pointwise_conv2d(conv, x)
    got_grads = torch.autograd.grad(got.square().sum(), [x, *conv.parameters()])
    assert got.shape == (2, 5, 7, 9)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    for g, w in zip(got_grads, want_grads, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "conv",
    [
        torch.nn.Conv2d(4, 4, 3, padding=1),
        torch.nn.Conv2d(4, 4, 1, stride=2),
        torch.nn.Conv2d(4, 4, 1, groups=2),
        torch.nn.Conv2d(4, 4, 1, padding=1),
    ],
)
def test_pointwise_conv2d_leaves_other_convs_to_the_module(conv):
    x = torch.randn(1, 4, 6, 6)
    assert torch.equal(pointwise_conv2d(conv, x), conv(x))

