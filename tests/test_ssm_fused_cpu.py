"""The fused CPU (numba) selective scan against the sequential reference: outputs, last state, every gradient."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_ssm import assert_close, make_inputs, run_with_grads

from rawmamba.errors import RawMambaError
from rawmamba.ssm import selective_scan, selective_scan_fused_cpu, selective_scan_reference

numba = pytest.importorskip("numba", reason="the fused_cpu backend needs numba (pip install rawmamba[fast])")


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("length", [1, 7, 64, 1000, 4097])
@pytest.mark.parametrize("optional", [True, False], ids=["all-inputs", "required-only"])
def test_fused_cpu_matches_reference(dtype, length, optional):
    # A checkpoint interval that does not divide the length, so that the backward's last segment is partial.
    inputs = make_inputs(length, dtype, optional, groups=None if optional else 2)
    want = run_with_grads(selective_scan_reference, inputs, softplus=optional)
    got = run_with_grads(lambda **kw: selective_scan_fused_cpu(**kw, checkpoint_interval=13), inputs, softplus=optional)
    assert want.keys() == got.keys()
    assert len(want) == (10 if optional else 7)
    for name in want:
        assert got[name].dtype == want[name].dtype, name
        assert_close(name, got[name], want[name])


@pytest.mark.parametrize("interval", [1, 5, 64, 200])
@pytest.mark.parametrize("groups", [None, 1, 4], ids=["ungrouped", "g1", "g4"])
def test_checkpoint_interval_and_groups_do_not_change_the_result(interval, groups):
    inputs = make_inputs(130, torch.float64, optional=True, groups=groups)
    want = run_with_grads(selective_scan_reference, inputs, softplus=True)
    got = run_with_grads(
        lambda **kw: selective_scan_fused_cpu(**kw, checkpoint_interval=interval), inputs, softplus=True
    )
    for name in want:
        assert_close(name, got[name], want[name])


@pytest.mark.parametrize("threads", [1, 2])
def test_parallel_kernels_and_channel_blocks_match_the_reference(threads, monkeypatch):
    """40 channels = blocks of 16, 16 and 8 (padding lanes); with 2 threads the parallel kernels run and the
    backward splits the blocks into 2 parts whose private dB/dC buffers are summed."""
    from rawmamba.ssm.backends import fused_cpu

    monkeypatch.setattr(fused_cpu, "PARALLEL_MIN_WORK", 0)
    g = torch.Generator().manual_seed(3)
    batch, dim, n, length = 1, 40, 3, 100

    def rnd(*shape, scale=1.0):
        return (torch.randn(*shape, generator=g, dtype=torch.float64) * scale).requires_grad_()

    inputs = {
        "u": rnd(batch, dim, length),
        "delta": rnd(batch, dim, length, scale=0.5),
        "A": (-torch.rand(dim, n, generator=g, dtype=torch.float64) * 3 - 0.05).requires_grad_(),
        "B": rnd(batch, n, length),
        "C": rnd(batch, n, length),
        "D": rnd(dim),
        "z": rnd(batch, dim, length),
        "delta_bias": rnd(dim, scale=0.5),
    }
    want = run_with_grads(selective_scan_reference, inputs, softplus=True)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(threads)
        got = run_with_grads(lambda **kw: selective_scan_fused_cpu(**kw, checkpoint_interval=30), inputs, True)
        # numba's OpenMP pool must not change torch's thread count (it did: 1 -> 2 when the pool started)
        assert torch.get_num_threads() == threads
    finally:
        torch.set_num_threads(before)
    for name in want:
        assert_close(name, got[name], want[name])


def test_only_y_or_only_last_state_reaching_the_loss():
    """Backward with one of the two outputs unused (autograd passes None for its gradient)."""
    inputs = make_inputs(40, torch.float64, optional=True, groups=None)
    for pick in (0, 1):
        grads = []
        for fn in (selective_scan_reference, selective_scan_fused_cpu):
            out = fn(**inputs, delta_softplus=True, return_last_state=True)[pick]
            grads.append(torch.autograd.grad(out.square().sum(), [inputs["u"], inputs["A"]]))
        for got, want in zip(grads[1], grads[0], strict=True):
            assert_close(f"output {pick}", got, want)


def test_half_inputs_run_in_float32_and_keep_the_output_dtype():
    inputs = {k: v.detach().to(torch.bfloat16) for k, v in make_inputs(50, torch.float32, True, None).items()}
    y, h = selective_scan(**inputs, delta_softplus=True, return_last_state=True, backend="fused_cpu")
    y_ref, h_ref = selective_scan(**inputs, delta_softplus=True, return_last_state=True, backend="reference")
    assert y.dtype == torch.bfloat16 and h.dtype == torch.float32
    assert_close("last_state", h, h_ref)
    assert torch.equal(y, y_ref) or (y.float() - y_ref.float()).abs().max() <= 2**-7 * y_ref.float().abs().max()


def test_strong_decay_and_large_steps_stay_finite():
    """exp(dt A) far below float32's range (and softplus above its threshold) must not produce inf or nan."""
    inputs = make_inputs(500, torch.float32, optional=True, groups=None)
    with torch.no_grad():
        inputs["A"].mul_(300.0)
        inputs["delta"].add_(25.0)  # softplus(x) = x above 20
    want = run_with_grads(selective_scan_reference, inputs, softplus=True)
    got = run_with_grads(selective_scan_fused_cpu, inputs, softplus=True)
    for name in want:
        assert torch.isfinite(got[name]).all(), name
        assert_close(name, got[name], want[name])


def test_vectorised_float32_exponential_is_accurate():
    from numba import njit

    from rawmamba.ssm.backends.fused_cpu_kernels import exp_f32

    @njit
    def apply(x):
        out = np.empty_like(x)
        for i in range(x.size):
            out[i] = exp_f32(x[i])
        return out

    x = np.linspace(-87.0, 88.0, 100_001, dtype=np.float32)
    got, want = apply(x).astype(np.float64), np.exp(x.astype(np.float64))
    assert np.max(np.abs(got - want) / want) < 3 * np.finfo(np.float32).eps
    assert np.isnan(apply(np.array([np.nan], np.float32))[0])
    assert apply(np.array([-1e30], np.float32))[0] < 1.2e-38


def test_bad_arguments_are_reported():
    inputs = make_inputs(5, torch.float32, optional=False, groups=None)
    with pytest.raises(RawMambaError, match="argument checkpoint_interval"):
        selective_scan_fused_cpu(**inputs, checkpoint_interval=0)
    meta = {k: (v.detach().to("meta") if k == "u" else v) for k, v in inputs.items()}
    with pytest.raises(RawMambaError, match="argument u is on meta"):
        selective_scan_fused_cpu(**meta)
