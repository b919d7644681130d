"""derender_loss (paper eq. 18): value, zero at the target, gradients that reduce it."""

import pytest
import torch

from rawmamba.errors import RawMambaError
from rawmamba.losses import DerenderLoss, derender_loss
from rawmamba.metrics import ssim


@pytest.mark.parametrize("shape", [(2, 4, 16, 16), (2, 3, 4, 16, 16)])
def test_zero_for_identical_inputs(shape):
    x = torch.rand(shape)
    assert derender_loss(x, x.clone()).item() == 0.0


def test_value_is_mse_plus_half_one_minus_ssim():
    g = torch.Generator().manual_seed(1)
    target = torch.rand(2, 2, 3, 16, 16, generator=g)
    pred = (target + 0.1 * torch.randn(target.shape, generator=g)).clamp(0, 1)
    expected = ((pred.double() - target.double()) ** 2).mean() + 0.5 * (1 - ssim(pred, target, reduction="mean"))
    value = derender_loss(pred, target)
    assert value.dtype == torch.float32 and value.dim() == 0
    assert abs(value.item() - expected.item()) < 1e-5
    assert abs(derender_loss(pred, target, ssim_weight=0).item() - ((pred - target) ** 2).mean().item()) < 1e-7
    assert torch.equal(DerenderLoss()(pred, target), value)


def test_gradient_steps_reduce_loss_towards_target():
    g = torch.Generator().manual_seed(2)
    target = torch.rand(1, 2, 4, 16, 16, generator=g)
    pred = torch.rand(target.shape, generator=g).requires_grad_(True)
    opt = torch.optim.Adam([pred], lr=0.02)
    losses = []
    for _ in range(6):
        opt.zero_grad()
        loss = derender_loss(pred, target)
        loss.backward()
        losses.append(loss.item())
        opt.step()
    assert all(b < a for a, b in zip(losses, losses[1:], strict=False)), losses
    assert losses[-1] < 0.8 * losses[0]


def test_bad_inputs_raise():
    with pytest.raises(RawMambaError, match="same shape"):
        derender_loss(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 15))
    with pytest.raises(RawMambaError, match="ssim_weight"):
        DerenderLoss(ssim_weight=-1)
    with pytest.raises(RawMambaError, match="at least 11x11"):
        derender_loss(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))


def test_half_precision_inputs_are_scored_in_float32():
    g = torch.Generator().manual_seed(3)
    target = torch.rand(2, 3, 16, 16, generator=g)
    pred = (target + 0.05 * torch.randn(target.shape, generator=g)).clamp(0, 1)
    low = derender_loss(pred.bfloat16(), target.bfloat16())
    assert low.dtype == torch.float32
    assert abs(low.item() - derender_loss(pred.bfloat16().float(), target.bfloat16().float()).item()) < 1e-7
    with torch.autocast("cpu", dtype=torch.bfloat16):
        inside = derender_loss(pred, target)
    assert abs(inside.item() - derender_loss(pred, target).item()) < 1e-6


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    g = torch.Generator().manual_seed(4)
    target = torch.rand(2, 3, 3, 32, 32, generator=g)
    pred = (target + 0.05 * torch.randn(target.shape, generator=g)).clamp(0, 1)
    cpu = derender_loss(pred, target)
    gpu_pred = pred.cuda().requires_grad_(True)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        gpu = derender_loss(gpu_pred, target.cuda())
    gpu.backward()
    assert abs(gpu.item() - cpu.item()) < 1e-5, (gpu.item(), cpu.item())
    assert torch.isfinite(gpu_pred.grad).all()
    assert torch.allclose(ssim(pred.cuda().double(), target.cuda().double()).cpu(), ssim(pred, target), atol=1e-12)
