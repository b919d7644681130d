"""The chunked selective scan against the sequential reference: outputs, last state and every gradient."""

from __future__ import annotations

import pytest
import torch

from rawmamba.errors import RawMambaError
from rawmamba.ssm import selective_scan, selective_scan_chunked, selective_scan_reference

# One tolerance table for every comparison with the reference: dtype -> (rtol, atol).
TOLERANCES = {torch.float64: (1e-9, 1e-10), torch.float32: (2e-4, 2e-4)}
NAMES = ("u", "delta", "A", "B", "C", "D", "z", "delta_bias")


def assert_close(name: str, got: torch.Tensor, want: torch.Tensor, dtype: torch.dtype | None = None) -> None:
    """``got`` within the tolerance of ``dtype`` (default: ``want``'s dtype) of ``want``."""
    rtol, atol = TOLERANCES[dtype or want.dtype]
    # float32 gradients that sum over the whole sequence (A, D, delta_bias) scale with its length.
    scale = want.abs().max().item() if want.numel() else 0.0
    diff = (got - want).abs().max().item() if want.numel() else 0.0
    assert got.shape == want.shape, f"{name}: shape {tuple(got.shape)} != {tuple(want.shape)}"
    assert diff <= atol + rtol * scale, f"{name}: largest difference {diff:.3e} (reference max {scale:.3e})"


def make_inputs(length: int, dtype: torch.dtype, optional: bool, groups: int | None, seed: int = 0, n: int = 3):
    """Random scan inputs of batch 2, d=4, n states (3) with realistic magnitudes; optional ones None if not
    wanted."""
    g = torch.Generator().manual_seed(seed)
    batch, dim = 2, 4

    def rnd(*shape, scale=1.0, shift=0.0):
        return (torch.randn(*shape, generator=g, dtype=torch.float64) * scale + shift).to(dtype).requires_grad_()

    bc_shape = (batch, n, length) if groups is None else (batch, groups, n, length)
    inputs = {
        "u": rnd(batch, dim, length),
        # With softplus (optional=True) any real delta is fine; without, keep steps positive as softplus would.
        "delta": rnd(batch, dim, length, scale=0.5, shift=-1.0)
        if optional
        else (torch.rand(batch, dim, length, generator=g, dtype=torch.float64) * 0.5 + 0.01).to(dtype).requires_grad_(),
        "A": (-torch.rand(dim, n, generator=g, dtype=torch.float64) * 3 - 0.05).to(dtype).requires_grad_(),
        "B": rnd(*bc_shape),
        "C": rnd(*bc_shape),
        "D": rnd(dim) if optional else None,
        "z": rnd(batch, dim, length) if optional else None,
        "delta_bias": rnd(dim, scale=0.5) if optional else None,
    }
    return inputs


def run_with_grads(fn, inputs: dict, softplus: bool, seed: int = 1):
    y, h = fn(**inputs, delta_softplus=softplus, return_last_state=True)
    g = torch.Generator().manual_seed(seed)
    wy = torch.randn(y.shape, generator=g, dtype=torch.float64).to(y)
    wh = torch.randn(h.shape, generator=g, dtype=torch.float64).to(h)
    leaves = [(k, v) for k, v in inputs.items() if v is not None]
    grads = torch.autograd.grad((y * wy).sum() + (h * wh).sum(), [v for _, v in leaves])
    return {"y": y, "last_state": h} | {f"grad {k}": gr for (k, _), gr in zip(leaves, grads, strict=True)}


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("length", [1, 7, 64, 1000, 4097])
@pytest.mark.parametrize("optional", [True, False], ids=["all-inputs", "required-only"])
def test_chunked_matches_reference(dtype, length, optional):
    # Small chunks and blocks so that short sequences cross chunk and block boundaries too.
    chunk = max(2, length // 3)
    inputs = make_inputs(length, dtype, optional, groups=None if optional else 2)
    want = run_with_grads(selective_scan_reference, inputs, softplus=optional)
    got = run_with_grads(
        lambda **kw: selective_scan_chunked(**kw, chunk_size=chunk, block_size=5), inputs, softplus=optional
    )
    assert want.keys() == got.keys()
    assert len(want) == (10 if optional else 7)
    for name in want:
        assert got[name].dtype == want[name].dtype, name
        assert_close(name, got[name], want[name])


@pytest.mark.parametrize("chunk,block", [(1, None), (3, 1), (50, 2), (128, 11), (1024, None)])
def test_chunk_and_block_sizes_do_not_change_the_result(chunk, block):
    inputs = make_inputs(130, torch.float64, optional=True, groups=None)
    want = run_with_grads(selective_scan_reference, inputs, softplus=True)
    got = run_with_grads(
        lambda **kw: selective_scan_chunked(**kw, chunk_size=chunk, block_size=block), inputs, softplus=True
    )
    for name in want:
        assert_close(name, got[name], want[name])


def test_reference_follows_the_recurrence_written_out():
    """The spec itself: h_t = exp(dt A) h_{t-1} + dt B u, y = C.h + D u, times silu(z), by hand for d = n = 1."""
    u = torch.tensor([[[1.0, -2.0, 0.5]]], dtype=torch.float64)
    dt = torch.tensor([[[0.1, 0.2, 0.3]]], dtype=torch.float64)
    A = torch.tensor([[-1.5]], dtype=torch.float64)
    B = torch.tensor([[[2.0, 1.0, -1.0]]], dtype=torch.float64)
    C = torch.tensor([[[0.5, -1.0, 3.0]]], dtype=torch.float64)
    D = torch.tensor([0.25], dtype=torch.float64)
    z = torch.tensor([[[0.3, -0.7, 1.1]]], dtype=torch.float64)
    h, ys = 0.0, []
    for t in range(3):
        h = torch.exp(dt[0, 0, t] * A[0, 0]) * h + dt[0, 0, t] * B[0, 0, t] * u[0, 0, t]
        ys.append((C[0, 0, t] * h + D[0] * u[0, 0, t]) * z[0, 0, t] * torch.sigmoid(z[0, 0, t]))
    y, last = selective_scan_reference(u, dt, A, B, C, D=D, z=z, return_last_state=True)
    assert torch.allclose(y[0, 0], torch.stack(ys), rtol=0, atol=1e-15), (y, ys)
    assert torch.allclose(last[0, 0, 0], h, rtol=0, atol=1e-15)


def test_output_dtype_follows_u_and_half_inputs_run_in_float32():
    inputs = {
        k: (v.detach().to(torch.bfloat16) if v is not None else None)
        for k, v in make_inputs(20, torch.float32, True, None).items()
    }
    for backend in ("reference", "chunked"):
        y, h = selective_scan(**inputs, delta_softplus=True, return_last_state=True, backend=backend)
        assert y.dtype == torch.bfloat16 and h.dtype == torch.float32, backend


def test_chunked_is_stable_for_strong_decay_and_long_chunks():
    """Very negative dt*A over a long chunk must not overflow (no division by cumulative decays)."""
    inputs = make_inputs(3000, torch.float32, optional=False, groups=None)
    with torch.no_grad():
        inputs["A"].mul_(200.0)
        y = selective_scan_chunked(**inputs, delta_softplus=True, chunk_size=3000)
        want = selective_scan_reference(**inputs, delta_softplus=True)
    assert torch.isfinite(y).all()
    assert_close("y", y, want)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("length", [7, 1000, 4097])
def test_chunked_on_gpu_matches_float64_reference_on_cpu(length):
    inputs = make_inputs(length, torch.float64, optional=True, groups=None)
    want = run_with_grads(selective_scan_reference, inputs, softplus=True)
    gpu = {k: v.detach().float().cuda().requires_grad_() for k, v in inputs.items()}
    got = run_with_grads(lambda **kw: selective_scan_chunked(**kw, chunk_size=512), gpu, softplus=True)
    for name in want:
        assert got[name].is_cuda, name
        assert_close(name, got[name].double().cpu(), want[name], dtype=torch.float32)


def test_bad_chunk_or_block_size_is_reported():
    inputs = make_inputs(5, torch.float32, optional=False, groups=None)
    with pytest.raises(RawMambaError, match="argument chunk_size"):
        selective_scan_chunked(**inputs, chunk_size=0)
    with pytest.raises(RawMambaError, match="argument block_size"):
        selective_scan_chunked(**inputs, block_size=-2)
