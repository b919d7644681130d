"""The Triton selective scan against the float64 reference: on CPU through Triton's interpreter (tiny sizes),
and on a CUDA device when there is one. Also the mamba_ssm backend when that package is importable."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import sys
from pathlib import Path

import pytest
import torch
from test_ssm import assert_close, make_inputs, run_with_grads

from rawmamba.errors import RawMambaError
from rawmamba.ssm import available_backends, selective_scan_reference, selective_scan_triton
from rawmamba.ssm.backends import triton_scan

KERNELS_MODULE = "rawmamba.ssm.backends.triton_scan_kernels"


requires_triton = pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="triton is not importable")


def _triton_modules() -> dict:
    """Triton's Python modules (its compiled extension triton._C cannot be imported twice, and is kept)."""
    return {
        name: module
        for name, module in sys.modules.items()
        if (name == "triton" or name.startswith("triton.")) and not name.startswith("triton._C")
    }


@pytest.fixture
def interpreter(monkeypatch):
    """Triton's interpreter for the kernels module. Triton reads TRITON_INTERPRET when its own modules and our
    kernels are defined, and torch may already have imported it compiled: so the triton modules are imported
    afresh under TRITON_INTERPRET=1 and the earlier ones put back afterwards. The interpreted kernels module is
    dropped afterwards, from sys.modules and as an attribute of its package (where ``from ... import`` finds it)."""
    saved = _triton_modules()
    for name in [*saved, KERNELS_MODULE]:
        sys.modules.pop(name, None)
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    triton_scan._kernels.cache_clear()
    try:
        try:
            triton_scan._kernels()
        except Exception as error:  # noqa: BLE001 (any failure to set up the interpreter means: cannot test here)
            pytest.skip(f"the Triton interpreter cannot run here: {error!r}")
        yield
    finally:
        for name in [*_triton_modules(), KERNELS_MODULE]:
            sys.modules.pop(name, None)
        sys.modules.update(saved)
        package, _, attribute = KERNELS_MODULE.rpartition(".")
        vars(sys.modules[package]).pop(attribute, None)
        triton_scan._kernels.cache_clear()


# chunks of 16 and tiles of 8 positions, 2 channels per program, in the forward (either kernel) and the backward
SMALL = dict(chunk=16, block_t=8, block_d=2, loop_chunk=16, loop_block_d=2)


def as_float32(inputs: dict) -> dict:
    return {k: (v.detach().float().requires_grad_() if v is not None else None) for k, v in inputs.items()}


@requires_triton
@pytest.mark.parametrize(
    "length,optional,groups",
    [(1, True, None), (7, False, 2), (45, True, 2), (45, False, None)],
    ids=["L1-all", "L7-required-g2", "L45-all-g2", "L45-required"],
)
@pytest.mark.parametrize(
    "forward,backward", [("tile", "tile"), ("loop", "tile"), ("loop", "loop"), ("lookback", "loop")]
)
def test_triton_interpreted_matches_reference(interpreter, length, optional, groups, forward, backward):
    # chunk 16 and tile 8: 45 positions cross chunk and tile boundaries and end in a partial tile; the backward
    # starts from the tile checkpoints that any forward kernel saved. The interpreter runs programs one after the
    # other, so the look-back finds every earlier chunk's state published (its other path: the next test).
    inputs = make_inputs(length, torch.float64, optional, groups)
    want = run_with_grads(selective_scan_reference, inputs, softplus=optional)
    got = run_with_grads(
        lambda **kw: selective_scan_triton(**kw, **SMALL, forward=forward, backward=backward),
        as_float32(inputs),
        optional,
    )
    assert want.keys() == got.keys()
    for name in want:
        assert got[name].dtype == torch.float32, name
        assert_close(name, got[name].double(), want[name], dtype=torch.float32)


@requires_triton
@pytest.mark.parametrize("early_flag", [2, 1], ids=["stops-at-a-finished-chunk", "composes-back-to-the-start"])
def test_triton_look_back_composes_the_chunks_before(interpreter, early_flag):
    # Chunks 0-4 of channel block 1 of 2 (block 0's flags in between): chunk 4 looks back over chunks 3 and 2,
    # which published only their own end states from zero and decays (flag 1), to chunk 1, which published the state
    # after it (flag 2); or, with chunks 0-1 flagged 1 too, down to the sequence start. A launch of the kernel cannot
    # take this path in the interpreter, whose programs run one after the other.
    try:
        probe = importlib.import_module("triton_look_back_probe").look_back_probe
    finally:
        sys.modules.pop("triton_look_back_probe", None)  # bound to the interpreted kernels module
    generator = torch.Generator().manual_seed(0)
    block_d, block_n, chunks = 2, 4, 5
    rows = 2 * block_d * block_n
    local, inclusive = (torch.randn(chunks, rows, generator=generator) for _ in range(2))
    decay = torch.rand(chunks, rows, generator=generator)
    flags = torch.zeros(1 + chunks * 2, dtype=torch.int32)
    flags[1::2] = 7  # block 0's: never read
    flags[2::2] = torch.tensor([early_flag, early_flag, 1, 1, 0], dtype=torch.int32)
    out = torch.zeros(rows)
    probe[(1,)](flags, local, decay, inclusive, out, 4, 1, 2, rows, BD=block_d, BN=block_n)
    # the state after chunk 1: as published, or from zero through chunks 0 and 1; then through chunks 2 and 3
    want = inclusive[1] if early_flag == 2 else local[1] + decay[1] * local[0]
    for j in (2, 3):
        want = local[j] + decay[j] * want
    torch.testing.assert_close(out[rows // 2 :], want[rows // 2 :])
    assert torch.equal(out[: rows // 2], torch.zeros(rows // 2))


@requires_triton
@pytest.mark.parametrize("forward", ["tile", "loop"])
def test_triton_interpreted_bfloat16_inputs_keep_dtypes(interpreter, forward):
    inputs = {k: v.detach().to(torch.bfloat16) for k, v in make_inputs(20, torch.float32, True, None).items()}
    y, h = selective_scan_triton(
        **inputs, delta_softplus=True, return_last_state=True, chunk=8, block_t=8, loop_chunk=8, forward=forward
    )
    y_ref, h_ref = selective_scan_reference(**inputs, delta_softplus=True, return_last_state=True)
    assert y.dtype == torch.bfloat16 and h.dtype == torch.float32
    assert_close("last_state", h, h_ref)
    assert (y.float() - y_ref.float()).abs().max() <= 2**-7 * y_ref.float().abs().max()


def token_major(inputs: dict, device: str = "cpu") -> dict:
    """The same values as views of token-major float32 tensors, as BiMamba makes them: u and z halves of one
    (b, l, 2d) tensor, delta a (b, l, d) tensor, B and C halves of one (b, l, 2n) tensor, all seen as (b, d, l)."""
    u, z, delta, B, C = (inputs[k].detach().float().to(device) for k in ("u", "z", "delta", "B", "C"))
    dim, n = u.shape[1], B.shape[1]
    uz = torch.cat([u, z], 1).transpose(1, 2).contiguous().requires_grad_()  # (b, l, 2d)
    bc = torch.cat([B, C], 1).transpose(1, 2).contiguous().requires_grad_()  # (b, l, 2n)
    dt = delta.transpose(1, 2).contiguous().requires_grad_()
    views = {"u": uz[..., :dim], "z": uz[..., dim:], "delta": dt, "B": bc[..., :n], "C": bc[..., n:]}
    rest = {k: v.detach().float().to(device).requires_grad_() for k, v in inputs.items() if k not in views}
    return {k: v.transpose(1, 2) for k, v in views.items()} | rest


@requires_triton
@pytest.mark.parametrize("backward", ["tile", "loop"])
@pytest.mark.parametrize(
    "n,loop_block_d,loop_stages",
    [(3, 2, 1), (4, 8, 1), (4, 8, 3), (3, 8, 0)],
    ids=["padded-states", "padded-channels", "staged", "loads-where-used"],
)
def test_triton_interpreted_loop_takes_token_major_views(interpreter, n, loop_block_d, loop_stages, backward):
    # The loop forward reads any strides (no copies); its output is token-major like u; the tile backward copies
    # to channel-first, the loop backward reads token-major (copying only the views that are not contiguous).
    # n = 4 fills BLOCK_N and 8 channels per program pad d = 4 (the kernel's unmasked and masked paths); 3 stages:
    # the walk's plain loads (pipelined by the compiler) instead of its own one-ahead loads; 0: plain loads, not
    # pipelined.
    inputs = make_inputs(45, torch.float64, True, None, n=n)
    want = run_with_grads(selective_scan_reference, inputs, softplus=True)
    views = token_major(inputs)
    assert views["u"].stride(1) == 1 and views["B"].stride(1) == 1
    sizes = SMALL | {"loop_block_d": loop_block_d, "loop_stages": loop_stages, "backward": backward}
    if loop_stages != 1:  # with a register limit too (a launch option the interpreter takes and ignores)
        sizes["loop_registers"] = 80
    y = selective_scan_triton(**views, delta_softplus=True, **sizes, forward="loop")
    assert y.transpose(1, 2).is_contiguous()
    got = run_with_grads(lambda **kw: selective_scan_triton(**kw, **sizes, forward="loop"), views, True)
    assert want.keys() == got.keys()
    for name in want:
        assert_close(name, got[name].double(), want[name], dtype=torch.float32)


@requires_triton
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
def test_triton_interpreted_carry_matches_a_loop_over_chunks(interpreter, reverse):
    # 37 chunks: two full steps of 16 chunks and a partial one; 130 rows: a full block of 128 and a partial one.
    n_chunks, rows = 37, 130
    generator = torch.Generator().manual_seed(0)
    local = torch.randn(n_chunks, rows, generator=generator)
    decay = torch.rand(n_chunks, rows, generator=generator)
    init = torch.randn(rows, generator=generator)
    out, final = torch.full((n_chunks, rows), float("nan")), torch.full((rows,), float("nan"))
    triton_scan._carry(local, decay, out, init if reverse else final, reverse=reverse)
    carry = init.double() if reverse else torch.zeros(rows, dtype=torch.float64)
    for chunk in reversed(range(n_chunks)) if reverse else range(n_chunks):
        torch.testing.assert_close(out[chunk].double(), carry, rtol=1e-5, atol=1e-5, msg=f"chunk {chunk}")
        carry = local[chunk].double() + decay[chunk].double() * carry
    if not reverse:
        torch.testing.assert_close(final.double(), carry, rtol=1e-5, atol=1e-5)


@requires_triton
def test_triton_interpreted_softplus_step_size_matches_torch(interpreter, monkeypatch):
    # Across softplus' whole range: large negative inputs (where log(1 + e) would lose e's digits), around 0, and
    # past torch's threshold of 20; the derivative is the sigmoid. The interpreter resolves names in a kernel
    # through the module's globals, so the kernels module is put there.
    import triton
    import triton.language as tl

    monkeypatch.setitem(globals(), "_KERNELS", importlib.import_module(KERNELS_MODULE))

    @triton.jit
    def softplus_kernel(x_ptr, dt_ptr, ddt_ptr, SIZE: tl.constexpr):
        i = tl.arange(0, SIZE)
        dt, ddt = _KERNELS.step_size(tl.load(x_ptr + i), 0.5, True)  # noqa: F821 (set above)
        tl.store(dt_ptr + i, dt)
        tl.store(ddt_ptr + i, ddt)

    x = torch.cat([torch.linspace(-90.0, 40.0, 1000), torch.tensor([-15.5, -0.5, -1e-6, 19.5, 20.5])])
    x = torch.cat([x, torch.zeros(1024 - x.numel())])
    dt, ddt = torch.empty_like(x), torch.empty_like(x)
    softplus_kernel[(1,)](x, dt, ddt, SIZE=1024)
    want = x.double() + 0.5
    # relative 1e-5: exp(-|x|) is 2^(-|x| log2 e) with the product rounded to float32, a relative error of up to
    # 6e-8 |x| log2 e in e (6e-6 at |x| = 90); log(1 + e) would be off by up to 1e-3 near x = -10.
    torch.testing.assert_close(dt.double(), torch.nn.functional.softplus(want), rtol=1e-5, atol=0)
    torch.testing.assert_close(ddt.double(), torch.sigmoid(want), rtol=1e-5, atol=0)


@requires_triton
def test_triton_argument_errors(interpreter, monkeypatch):
    inputs = as_float32(make_inputs(5, torch.float32, optional=False, groups=None))
    with pytest.raises(RawMambaError, match="argument block_t must be a power of two"):
        selective_scan_triton(**inputs, block_t=12)
    with pytest.raises(RawMambaError, match="argument chunk=8 must be >= block_t=16"):
        selective_scan_triton(**inputs, chunk=8, block_t=16)
    with pytest.raises(RawMambaError, match="argument loop_chunk must be a power of two"):
        selective_scan_triton(**inputs, forward="loop", loop_chunk=24)
    with pytest.raises(RawMambaError, match="argument forward must be one of"):
        selective_scan_triton(**inputs, forward="fused")
    with pytest.raises(RawMambaError, match="argument backward must be one of"):
        selective_scan_triton(**inputs, backward="fused")
    with pytest.raises(RawMambaError, match="argument loop_block_d must be a power of two"):
        selective_scan_triton(**inputs, forward="tile", backward="loop", loop_block_d=3)
    with pytest.raises(RawMambaError, match="argument loop_unroll must be a power of two"):
        selective_scan_triton(**inputs, loop_unroll=3)
    with pytest.raises(RawMambaError, match="argument loop_stages must be an integer in 0..8"):
        selective_scan_triton(**inputs, loop_stages=9)
    with pytest.raises(RawMambaError, match="argument loop_registers must be None or an integer in 32..255"):
        selective_scan_triton(**inputs, loop_registers=16)
    with pytest.raises(RawMambaError, match="argument backward_registers must be None or an integer in 32..255"):
        selective_scan_triton(**inputs, backward_registers=300)
    with pytest.raises(RawMambaError, match="argument loop_prefetch must be an integer in 0..1024"):
        selective_scan_triton(**inputs, loop_prefetch=-1)
    with pytest.raises(RawMambaError, match="argument backward_prefetch must be an integer in 0..1024"):
        selective_scan_triton(**inputs, backward_prefetch=2.5)
    # sequences past 32-bit offsets are refused (the limit lowered here: such tensors take 8 GiB); a token-major
    # view of u, (2, 4, 5) in a (2, 5, 8) storage, reaches offset 1 * 40 + 3 * 1 + 4 * 8 = 75
    monkeypatch.setattr(triton_scan, "_MAX_SPAN", inputs["u"].numel() - 1)
    with pytest.raises(RawMambaError, match="argument u spans 40 elements of its storage"):
        selective_scan_triton(**inputs)
    monkeypatch.setattr(triton_scan, "_MAX_SPAN", inputs["u"].numel())
    with pytest.raises(RawMambaError, match="argument u spans 76 elements"):
        selective_scan_triton(**token_major(make_inputs(5, torch.float32, optional=True, groups=None)))
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(RawMambaError, match="argument u is on cpu; Triton needs cuda tensors"):
        selective_scan_triton(**inputs)


def _benchmark_module(name: str):
    """A script of benchmarks/ imported as a module (skips when it cannot be imported here)."""
    folder = Path(__file__).parents[1] / "benchmarks"
    spec = importlib.util.spec_from_file_location(name, folder / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(folder))  # the scripts import each other by name
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(folder))
    return module


@requires_triton
@pytest.mark.parametrize("optional", [True, False], ids=["all-inputs", "required-only"])
def test_triton_kernels_compile_for_sm90_without_a_gpu(optional):
    # The interpreter runs kernels as Python, which accepts code the compiler refuses (a name rebound to another
    # shape in a branch, say): so every kernel is also compiled for an H100, as benchmarks/sass_counts.py does.
    try:
        sass_counts = _benchmark_module("sass_counts")
    except ImportError as error:  # a triton without the CUDA backend's compiler
        pytest.skip(f"cannot compile for CUDA here: {error}")
    flags = dict(SOFTPLUS=optional, HAS_D=optional, HAS_Z=optional, HAS_BIAS=optional)
    for _, kernel, constants, warps, registers in sass_counts.cases():
        constants = {**constants, **{k: v for k, v in flags.items() if k in constants}}
        sass, _ = sass_counts.disassemble(sass_counts.compile_case(kernel, constants, warps, registers))
        # The gradient sums are fire-and-forget reductions: an atomic with Triton's default acq_rel order
        # compiles to a GPU-wide memory barrier and an L1 invalidation (CCTL.IVALL) around each add. Prefetches
        # are CCTL.E.PF1 and allowed. The one-launch forward needs its release and acquire (once per chunk).
        if constants.get("LOOKBACK"):
            assert "MEMBAR" in sass and "CCTL.IVALL" in sass, kernel
            continue
        assert "MEMBAR" not in sass and "CCTL.IVALL" not in sass, kernel
        if constants.get("PREFETCH", 0):
            assert "CCTL.E.PF1" in sass, kernel
        else:
            assert "CCTL" not in sass, kernel


def test_gpu_sweeps_name_settings_the_triton_scan_accepts():
    # A misspelt or invalid setting would only show on the GPU, as an error entry in place of a timing.
    gpu_checks = _benchmark_module("gpu_checks")
    parameters = inspect.signature(selective_scan_triton).parameters
    defaults = {name: p.default for name, p in parameters.items() if p.default is not inspect.Parameter.empty}
    config_arguments = list(inspect.signature(triton_scan._config).parameters)[1:]  # all but n
    sweeps = [options for options, _ in gpu_checks.TRITON_SWEEP] + gpu_checks.BACKWARD_SWEEP
    sweeps += gpu_checks.LOOKBACK_SWEEP
    assert len(sweeps) > 10
    for options in sweeps:
        assert set(options) <= set(defaults), options
        settings = defaults | options
        triton_scan._config(16, **{name: settings[name] for name in config_arguments})


def test_gpu_checks_confirm_settings_in_interleaved_rounds(monkeypatch):
    # The confirmation round times every candidate once per round, in turn, and ranks them by their medians.
    gpu_checks = _benchmark_module("gpu_checks")
    calls, ms = [], {"a": [3.0, 1.0, 2.0], "b": [1.5, 1.6, 9.0]}

    def fake_time_scan(backend, length, with_backward, token_major, name):
        calls.append(name)
        return {"ms": ms[name][sum(call == name for call in calls) - 1]}

    monkeypatch.setattr(gpu_checks, "time_scan", fake_time_scan)
    result = gpu_checks.confirm_forward([({"name": "a"}, True), ({"name": "b"}, False)], rounds=3)
    assert calls == ["a", "b"] * 3
    assert [r["median_ms"] for r in result["settings"]] == [2.0, 1.6]
    assert result["settings"][1] == {"options": {"name": "b"}, "token_major": False, "ms": ms["b"], "median_ms": 1.6}


def test_float64_runs_the_chunked_backend_and_matches():
    inputs = make_inputs(30, torch.float64, optional=True, groups=None)
    want = run_with_grads(selective_scan_reference, inputs, softplus=True)
    got = run_with_grads(selective_scan_triton, inputs, softplus=True)
    for name in want:
        assert_close(name, got[name], want[name])


def test_triton_older_than_3_2_is_refused_and_not_picked(monkeypatch):
    # Triton 3.1 (torch 2.5) cannot compile the loop kernels: the backend is then unavailable, so that "auto" picks
    # another one on CUDA, and a direct call says what is needed.
    assert triton_scan._major_minor("3.6.0") == (3, 6) and triton_scan._major_minor("3.2.0+git4a1e3b2") == (3, 2)
    with pytest.raises(RawMambaError, match="cannot read the triton version"):
        triton_scan._major_minor("unknown")
    monkeypatch.setattr(triton_scan, "triton_importable", lambda: True)
    monkeypatch.setattr(triton_scan, "triton_version", lambda: (3, 1))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert not triton_scan.triton_available()
    inputs = as_float32(make_inputs(5, torch.float32, optional=False, groups=None))
    with pytest.raises(RawMambaError, match=r"needs triton 3\.2 or later \(torch 2\.6 .*\), found 3\.1;"):
        selective_scan_triton(**inputs)
    monkeypatch.setattr(triton_scan, "triton_version", lambda: (3, 2))
    assert triton_scan.triton_available()


def test_gpu_backends_are_unavailable_without_cuda():
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    assert "triton" not in available_backends() and "mamba_ssm" not in available_backends()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("backend", ["triton", "mamba_ssm"])
@pytest.mark.parametrize("length", [7, 1000, 4097])
def test_gpu_backend_matches_float64_reference_on_cpu(backend, length):
    if backend not in available_backends():
        pytest.skip(f"{backend} is not available")
    from rawmamba.ssm import selective_scan

    inputs = make_inputs(length, torch.float64, optional=True, groups=None)
    want = run_with_grads(selective_scan_reference, inputs, softplus=True)
    gpu = {k: v.detach().float().cuda().requires_grad_() for k, v in inputs.items()}
    got = run_with_grads(lambda **kw: selective_scan(**kw, backend=backend), gpu, softplus=True)
    for name in want:
        assert got[name].is_cuda, name
        assert_close(name, got[name].double().cpu(), want[name], dtype=torch.float32)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("loop_stages", [1, 0], ids=["one-ahead", "loads-where-used"])
@pytest.mark.parametrize("length", [7, 1000, 4097])
def test_gpu_loop_kernels_prefetching_match_float64_reference(length, loop_stages):
    # Prefetches take no mask: with d=4 in blocks of 8 channels and n=3 of 4 states, the padding ones must ask for
    # real addresses; results are those of the reference (a prefetch is a hint). Channel-first inputs, then
    # token-major ones (one line per state vector). With a register limit on the backward, as the sweep times it.
    if "triton" not in available_backends():
        pytest.skip("triton is not available")
    inputs = make_inputs(length, torch.float64, optional=True, groups=None, n=3)
    want = run_with_grads(selective_scan_reference, inputs, softplus=True)
    options = dict(forward="loop", backward="loop", loop_block_d=8, loop_prefetch=16, backward_prefetch=16,
                   backward_registers=168, chunk=256, loop_stages=loop_stages)  # fmt: skip
    channel_first = {k: v.detach().float().cuda().requires_grad_() for k, v in inputs.items()}
    for views in (channel_first, token_major(inputs, device="cuda")):
        got = run_with_grads(lambda **kw: selective_scan_triton(**kw, **options), views, True)
        for name in want:
            assert_close(name, got[name].double().cpu(), want[name], dtype=torch.float32)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("forward,backward", [("loop", "tile"), ("loop", "loop"), ("lookback", "loop")])
@pytest.mark.parametrize("length", [7, 1000, 4097])
def test_gpu_loop_forward_on_token_major_inputs_matches_float64_reference(length, forward, backward):
    if "triton" not in available_backends():
        pytest.skip("triton is not available")
    inputs = make_inputs(length, torch.float64, optional=True, groups=None)
    want = run_with_grads(selective_scan_reference, inputs, softplus=True)
    views = token_major(inputs, device="cuda")
    assert views["u"].stride(1) == 1 and views["u"].is_cuda
    got = run_with_grads(lambda **kw: selective_scan_triton(**kw, forward=forward, backward=backward), views, True)
    for name in want:
        assert got[name].is_cuda, name
        assert_close(name, got[name].double().cpu(), want[name], dtype=torch.float32)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_lookback_forward_agrees_with_two_pass_forward_with_many_chunks_in_flight():
    # 1,024 chunks of 16 positions for each of 2 x 12 (batch item, block of 8 channels): 24,576 programs that wait
    # on each other through flags in memory. A chunk that read a state before it was published would differ far
    # beyond float32 rounding (the two forwards compose the carries in different orders); repeated, since a race
    # need not show every time.
    if "triton" not in available_backends():
        pytest.skip("triton is not available")
    generator = torch.Generator().manual_seed(3)
    batch, dim, n, length = 2, 96, 16, 16_384

    def rand(*shape):
        return torch.randn(*shape, generator=generator).cuda()

    u, z = rand(batch, length, dim).transpose(1, 2), rand(batch, length, dim).transpose(1, 2)
    delta = (rand(batch, length, dim) * 0.5 - 1).transpose(1, 2)
    A = -torch.rand(dim, n, generator=generator).cuda() - 0.5
    B, C = rand(batch, length, n).transpose(1, 2), rand(batch, length, n).transpose(1, 2)
    kwargs = dict(D=rand(dim), z=z, delta_bias=rand(dim) * 0.1, delta_softplus=True, return_last_state=True,
                  loop_chunk=16, loop_block_d=8)  # fmt: skip
    want, want_last = selective_scan_triton(u, delta, A, B, C, **kwargs, forward="loop")
    for _ in range(5):
        got, last = selective_scan_triton(u, delta, A, B, C, **kwargs, forward="lookback")
        assert (got - want).abs().max() <= 1e-5 * want.abs().max()
        assert (last - want_last).abs().max() <= 1e-5 * want_last.abs().max()


def test_gpu_checks_time_calls_queued_back_to_back(monkeypatch):
    # One synchronisation after the warm-up and one at the end, none between the timed calls: each call's time is
    # the GPU's, not the CPU's launch latency.
    gpu_checks = _benchmark_module("gpu_checks")
    log, clock = [], iter(range(100))

    class FakeEvent:
        def __init__(self, enable_timing):
            assert enable_timing

        def record(self):
            self.at = next(clock) ** 2  # calls take 1, 5, 9, 13, 17 "ms"
            log.append("record")

        def elapsed_time(self, end):
            return end.at - self.at

    monkeypatch.setattr(torch.cuda, "Event", FakeEvent)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda: log.append("sync"))
    assert gpu_checks.cuda_time(lambda: log.append("call"), repeats=5) == 9
    assert log == ["call", "sync"] + ["record", "call", "record"] * 5 + ["sync"]


def test_gpu_checks_run_through_with_fake_measurements(monkeypatch, tmp_path):
    # The GPU run is scarce: its script's sections, its choice of triton_best through the confirmation round, its
    # --lookback run and the summary are run here with every GPU measurement replaced by a fake one.
    gpu_checks, gpu_summary = _benchmark_module("gpu_checks"), _benchmark_module("gpu_summary")

    def fake_time_scan(backend, length, with_backward=True, token_major=False, dtype=torch.float32, gated=True,
                       **options):  # fmt: skip
        ms = 1.0 if options.get("loop_prefetch") == 16 and len(options) == 7 else 1.5  # one setting is fastest
        return {"backend": backend, "options": options, "token_major": token_major, "dtype": str(dtype),
                "gated": gated, "L": length, "ms": ms, "forward_backward_ms": 10 * ms if with_backward else None,
                "floor_ms": 0.3}  # fmt: skip

    def fake_time_model(name, frames, height, width, dtype, backend=None, **flags):
        return {"model": name, "frames": frames, "height": height, "width": width, "dtype": str(dtype), "ms": 100.0,
                "frames_per_s": 10.0 * frames, "peak_gib": 1.0, "scan_backend": backend or "triton",
                "convs_per_frame": None, "channels_last_3d_weights": False, "cudnn_benchmark": False,
                "compiled": False, "first_call_s": 1.0}  # fmt: skip

    def fake_training_step(name, batch, frames, size, dtype, backend=None):
        return {"model": name, "batch": batch, "frames": frames, "size": size, "dtype": str(dtype),
                "scan_backend": backend or "triton", "forward_backward_ms": 50.0, "peak_gib": 2.0}  # fmt: skip

    class FakeBackend:
        name, token_major = "triton", True

    registered = {}
    monkeypatch.setattr(gpu_checks, "time_scan", fake_time_scan)
    monkeypatch.setattr(gpu_checks, "time_model", fake_time_model)
    monkeypatch.setattr(gpu_checks, "time_training_step", fake_training_step)
    monkeypatch.setattr(gpu_checks, "check_correctness", lambda backend, **kw: {"output": 0.0, "state": 0.0,
                                                                                "grad": 0.0, "per_input": {}})
    monkeypatch.setattr(gpu_checks, "model_agreement", lambda backend: 0.0)
    monkeypatch.setattr(gpu_checks, "scan_kernel_times", lambda options, with_backward=False: {
        "options": options, "with_backward": with_backward, "kernels_ms": [("forward_loop_kernel", 0.6)],
        "total_ms": 0.6})  # fmt: skip
    monkeypatch.setattr(gpu_checks, "lookback_agreement", lambda options: {"output": [0.0], "last_state": [0.0]})
    monkeypatch.setattr(gpu_checks, "available_backends", lambda: ["chunked", "triton"])
    monkeypatch.setattr(gpu_checks, "get_backend", lambda *args, **kwargs: FakeBackend())
    monkeypatch.setattr(gpu_checks, "register_backend", lambda name, fn, *a, **kw: registered.update({name: fn}))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *args: "fake GPU")
    for extra, name in (([], "gpu_checks.json"), (["--lookback"], "gpu_lookback.json")):
        monkeypatch.setattr(sys, "argv", ["gpu_checks.py", "--out", str(tmp_path / name), *extra])
        gpu_checks.main()

    checks = json.loads((tmp_path / "gpu_checks.json").read_text())
    assert len(checks["triton_sweep"]) == len(gpu_checks.TRITON_SWEEP)
    assert len(checks["backward_sweep"]) == len(gpu_checks.BACKWARD_SWEEP)
    confirmed = checks["triton_confirm"]["forward"]["settings"]
    assert len(confirmed) == gpu_checks.CONFIRM_SETTINGS + 1 and confirmed[-1]["options"] == {}  # + the defaults
    assert checks["triton_best"]["options"]["loop_prefetch"] == 16 and "triton_best" in registered
    assert any(entry.get("scan_backend") == "triton_best" for entry in checks["models"])
    lookback = json.loads((tmp_path / "gpu_lookback.json").read_text())
    assert set(lookback["correctness"]) == {"triton_lookback"} and "agreement" in lookback["lookback"]
    assert len(lookback["triton_confirm"]["lookback"]["settings"]) == len(gpu_checks.LOOKBACK_SWEEP) + 1
    summary = "\n".join(gpu_summary.summarise(tmp_path))
    assert "confirm lookback defaults: median 1.500 ms" in summary and "model rawmamba_base 5x640x1440" in summary
    assert "kernels defaults f+b: forward_loop 0.600" in summary and len(checks["kernels"]) == 2
    assert checks["criterion"]["triton_best"]["without_z"]["x_floor"] == pytest.approx(1.0 / 0.3)
    assert "criterion lookback" in summary and ": met (both within 5x)" in summary  # the fakes: 1.0 ms, 0.3 ms
