"""Mamba's causal depth-wise conv as shifted multiply-adds (rawmamba.models.causal_conv) against ``conv1d``."""

import pytest
import torch
import torch.nn.functional as F

from rawmamba.models.bimamba import SSMBranch
from rawmamba.models.causal_conv import causal_conv1d, causal_depthwise_product


def reference(x, weight, bias):
    k = weight.shape[-1]
    return F.conv1d(x, weight, bias, padding=k - 1, groups=x.shape[1])[..., : x.shape[-1]]


@pytest.mark.parametrize("k", [1, 2, 4, 5])
@pytest.mark.parametrize("length", [1, 3, 4, 37])
@pytest.mark.parametrize("bias", [True, False])
def test_product_equals_conv1d(k, length, bias):
    gen = torch.Generator().manual_seed(k * 100 + length)
    x = torch.randn(2, 6, length, generator=gen, dtype=torch.float64)
    weight = torch.randn(6, 1, k, generator=gen, dtype=torch.float64)
    b = torch.randn(6, generator=gen, dtype=torch.float64) if bias else None
    got = causal_depthwise_product(x, weight, b)
    assert got.shape == x.shape and got.is_contiguous()
    torch.testing.assert_close(got, reference(x, weight, b), rtol=1e-12, atol=1e-12)


def test_product_reads_a_strided_input():
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(2, 50, 8, generator=gen).transpose(1, 2)  # (2, 8, 50) with stride 1 along the channels
    weight, bias = torch.randn(8, 1, 4, generator=gen), torch.randn(8, generator=gen)
    torch.testing.assert_close(causal_depthwise_product(x, weight, bias), reference(x, weight, bias))


def test_causal_conv1d_paths_agree_and_keep_gradients():
    torch.manual_seed(0)
    conv = torch.nn.Conv1d(5, 5, 4, groups=5, padding=3)
    x = torch.randn(3, 5, 29)
    with torch.no_grad():
        fast = causal_conv1d(conv, x)
    recorded = causal_conv1d(conv, x)  # the weight records a gradient: conv1d's path
    assert recorded.grad_fn is not None and fast.grad_fn is None
    torch.testing.assert_close(fast, recorded.detach(), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(recorded, reference(x, conv.weight, conv.bias))
    recorded.sum().backward()
    assert conv.weight.grad is not None and conv.weight.grad.abs().sum() > 0


def test_ssm_branch_inference_equals_training_path():
    """The branch's output under no_grad (shifted products) equals the one recorded for autograd (conv1d)."""
    torch.manual_seed(1)
    branch = SSMBranch(d_inner=8, d_state=4, dt_rank=2).double()
    x, z = torch.randn(2, 8, 40, dtype=torch.float64), torch.randn(2, 8, 40, dtype=torch.float64)
    with torch.no_grad():
        fast = branch(x, z, backend="reference")
    torch.testing.assert_close(fast, branch(x, z, backend="reference").detach(), rtol=1e-12, atol=1e-12)
