"""BiMamba: the backward direction exists, has its own parameters, runs on the flipped sequence."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from rawmamba.errors import RawMambaError
from rawmamba.models.bimamba import BiMamba, SSMBranch
from rawmamba.models.channel_product import channel_first_product
from rawmamba.ssm import register_backend, registry
from rawmamba.ssm.backends.chunked import selective_scan_chunked

BRANCH_PARAMS = ("conv1d.weight", "conv1d.bias", "x_proj.weight", "dt_proj.weight", "dt_proj.bias", "A_log", "D")


def tokens(batch=2, length=37, dim=8, seed=0):
    return torch.randn(batch, length, dim, generator=torch.Generator().manual_seed(seed))


def forward_only(model: BiMamba, x: torch.Tensor) -> torch.Tensor:
    """What the model would compute if the backward direction were dropped."""
    xb, z = model.in_proj(x).transpose(1, 2).chunk(2, dim=1)
    return model.out_proj(model.forward_branch(xb, z).transpose(1, 2))


def test_shapes_and_parameter_sets_are_disjoint():
    model = BiMamba(8, d_state=4)
    assert model(tokens()).shape == (2, 37, 8)
    fwd = {id(p) for p in model.forward_branch.parameters()}
    bwd = {id(p) for p in model.backward_branch.parameters()}
    shared = {id(p) for p in (*model.in_proj.parameters(), *model.out_proj.parameters())}
    assert fwd and bwd and not fwd & bwd and not (fwd | bwd) & shared
    names = {n for n, _ in model.named_parameters()}
    assert {f"backward_branch.{n}" for n in BRANCH_PARAMS} <= names
    assert {f"forward_branch.{n}" for n in BRANCH_PARAMS} <= names


def test_output_differs_from_a_forward_only_run():
    model = BiMamba(8, d_state=4)
    x = tokens()
    diff = (model(x) - forward_only(model, x)).abs().max()
    assert diff > 1e-3, f"backward direction has no effect (max diff {diff:.2e})"
    uni = BiMamba(8, d_state=4, bidirectional=False)
    assert uni.backward_branch is None
    assert torch.allclose(uni(x), forward_only(uni, x))


def test_bidirectional_output_is_the_halved_sum_of_both_directions():
    model = BiMamba(8, d_state=4)
    x = tokens()
    xb, z = model.in_proj(x).transpose(1, 2).chunk(2, dim=1)
    y_f = model.forward_branch(xb, z)
    y_b = model.backward_branch(xb.flip(-1), z.flip(-1)).flip(-1)
    want = model.out_proj(((y_f + y_b) / 2).transpose(1, 2))
    assert torch.allclose(model(x), want, atol=1e-6), f"{(model(x) - want).abs().max():.2e}"


def test_gradients_reach_backward_parameters():
    model = BiMamba(8, d_state=4)
    model(tokens()).square().sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_copied_parameters_give_mirrored_output():
    """With backward params = forward params, reversing the input reverses the output, exactly as it must
    if the backward direction runs the same computation on the flipped sequence (a causal forward-only
    model, or a backward branch fed the unflipped sequence, breaks this)."""
    model = BiMamba(8, d_state=4).double()
    model.backward_branch.load_state_dict(model.forward_branch.state_dict())
    assert all(
        p is not q for p, q in zip(model.forward_branch.parameters(), model.backward_branch.parameters(), strict=True)
    )
    x = tokens().double()
    y, y_rev = model(x), model(x.flip(1))
    assert torch.allclose(y_rev, y.flip(1), atol=1e-10), f"{(y_rev - y.flip(1)).abs().max():.2e}"
    # Distinct parameters break the symmetry (so the check above is not vacuous).
    with torch.no_grad():
        model.backward_branch.A_log.add_(0.5)
    assert not torch.allclose(model(x.flip(1)), model(x).flip(1), atol=1e-6)


@pytest.mark.parametrize("backend", ["reference", "chunked"])
def test_both_directions_run_on_every_backend(backend):
    model = BiMamba(8, d_state=4, backend=backend).double()
    default = BiMamba(8, d_state=4, backend="reference").double()
    default.load_state_dict(model.state_dict())
    x = tokens(length=20).double()
    assert torch.allclose(model(x), default(x), atol=1e-10)
    assert (model(x) - forward_only(model, x)).abs().max() > 1e-3


@pytest.mark.parametrize("backend", ["reference", "chunked"])
def test_inference_combines_the_directions_as_training_does(backend):
    # without autograd the directions are summed in place and the input projection is freed early
    model = BiMamba(8, d_state=4, backend=backend).double()
    x = tokens(length=20).double()
    want = model(x)
    with torch.no_grad():
        got = model(x)
    assert torch.allclose(got, want.detach(), atol=1e-12)
    assert (got - forward_only(model, x)).abs().max() > 1e-3


@pytest.fixture
def token_major_spy():
    """A backend ``token-major-spy``: the chunked scan, registered as token-major, recording its inputs' strides."""
    seen = []

    def spy(u, delta, A, B, C, **kwargs):
        seen.append({name: t.stride() for name, t in (("u", u), ("delta", delta), ("B", B), ("C", C))})
        return selective_scan_chunked(u, delta, A, B, C, **kwargs)

    register_backend("token-major-spy", spy, token_major=True)
    try:
        yield seen
    finally:
        unregister = registry._BACKENDS.pop  # noqa: SLF001 (the test's backend must not outlive it)
        unregister("token-major-spy")


def test_token_major_backend_gets_token_major_inputs_and_same_results(token_major_spy):
    model = BiMamba(8, d_state=4, backend="token-major-spy").double()
    channel_first = BiMamba(8, d_state=4, backend="chunked").double()
    channel_first.load_state_dict(model.state_dict())
    x = tokens(length=29).double().requires_grad_()
    y = model(x)
    assert len(token_major_spy) == 2  # both directions, each with stride 1 along channels / states
    for strides in token_major_spy:
        assert all(stride[1] == 1 for stride in strides.values()), strides
    want = channel_first(x)
    assert torch.allclose(y, want, atol=1e-12), f"{(y - want).abs().max():.2e}"
    grads = torch.autograd.grad(y.square().sum(), [x, *model.parameters()])
    grads_want = torch.autograd.grad(want.square().sum(), [x, *channel_first.parameters()])
    for got, ref in zip(grads, grads_want, strict=True):
        assert torch.allclose(got, ref, atol=1e-10)


def test_standard_mamba_initialisation():
    torch.manual_seed(0)
    branch = SSMBranch(d_inner=512, d_state=16, dt_rank=4)
    assert torch.allclose(branch.A_log, torch.log(torch.arange(1, 17.0)).expand(512, 16))
    assert torch.all(branch.D == 1)
    dt = F.softplus(branch.dt_proj.bias)
    assert dt.min() >= 1e-3 * (1 - 1e-4) and dt.max() <= 1e-1 * (1 + 1e-4)
    # log-uniform: the median step is near the geometric mean of the range (1e-2).
    assert 5e-3 < dt.median() < 2e-2
    assert BiMamba(40).forward_branch.dt_rank == 3  # "auto" = ceil(40 / 16)


def test_bad_input_is_reported():
    with pytest.raises(RawMambaError, match=r"input must be \(b, l, 8\)"):
        BiMamba(8)(torch.randn(2, 5, 7))
    with pytest.raises(RawMambaError, match="dt_rank"):
        BiMamba(8, dt_rank=0)


@pytest.mark.parametrize("layout", ["sliced", "transposed", "contiguous"])
def test_channel_first_product_reads_strided_inputs_as_matmul_does(layout):
    generator = torch.Generator().manual_seed(3)
    weight = torch.randn(5, 4, dtype=torch.float64, generator=generator, requires_grad=True)
    base = {
        "sliced": lambda: torch.randn(2, 4, 40, dtype=torch.float64, generator=generator)[..., :37],
        "transposed": lambda: torch.randn(2, 37, 4, dtype=torch.float64, generator=generator).transpose(1, 2),
        "contiguous": lambda: torch.randn(2, 4, 37, dtype=torch.float64, generator=generator),
    }[layout]()
    x = base.requires_grad_(True) if base.is_leaf else base.detach().requires_grad_(True)
    got = channel_first_product(weight, x)
    assert got.shape == (2, 5, 37) and got.is_contiguous()
    want = weight @ x
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    grad = torch.randn(2, 5, 37, dtype=torch.float64, generator=generator)
    got_grads = torch.autograd.grad(got, (weight, x), grad)
    want_grads = torch.autograd.grad(want, (weight, x), grad)
    for g, w in zip(got_grads, want_grads, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-12, atol=1e-12)
