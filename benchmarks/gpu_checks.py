"""GPU checks: the selective scan on the GPU against the float64 CPU reference, and GPU timings.

    python benchmarks/gpu_checks.py --out benchmarks/results/gpu_checks.json [--skip-models]

0. ``rawmamba_base`` on 5 frames of 1440x640 in bf16 with the defaults (the issue's target), before anything else;
   then the issue's scan criterion with the defaults (``criterion``, as below).
1. Correctness: every available GPU backend (``chunked``, ``triton``, ``mamba_ssm``) on CUDA in float32, the
   Triton tile forward, the default (loop) forward on token-major inputs, bfloat16 inputs, and the tile backward,
   against the sequential reference on the CPU in float64: outputs, last state and gradients at awkward lengths,
   each relative to its largest magnitude over the lengths.
2. Timings (CUDA events, median of repeats): the scan forward, and forward+backward, for d=192, n=16 at L from
   1,024 to 288,000 (5 frames of 1440x640 at 1/4 scale) per backend on the layout it is registered for, with the
   byte floor at 3.0 TB/s for comparison (also without z: the floor of docs/REFERENCE.md);
   a sweep of the loop forward's settings (:data:`TRITON_SWEEP`, token-major inputs), forward only at
   L=288,000; its fastest few and the defaults timed again in interleaved rounds (``triton_confirm``), whose
   fastest by median is registered as the backend ``triton_best`` and timed forward+backward and in bfloat16
   too; the defaults without z; each kernel of one call (``kernels``); the chosen setting with and without z
   over five rounds against the byte floors (``criterion``); the backward kernels (:data:`BACKWARD_SWEEP`)
   timed forward+backward at L=288,000.
3. Models: ``rawmamba_base`` outputs with ``triton`` against ``chunked``; when the sweep's fastest setting is not
   the default, ``rawmamba_base`` with ``triton_best`` too (outputs, then timed); training steps of
   ``rawmamba_base`` (forward+backward in bf16, video and image batches) with each backward kernel; then
   ``rawmamba_base`` in float32 and ``rawmamba_tiny`` on the video, both on a 1024x1024 image in bf16, with the
   automatic backend (and ``triton_best`` when it differs). ``--variants`` adds the conv experiments of an earlier
   round (per-frame convs of each kind, channels-last conv weights, cudnn.benchmark); ``--compile`` times only
   the compiled model; ``--lookback`` only the one-launch forward (:data:`LOOKBACK_SWEEP`), in a process of its
   own.
The float64 reference of each correctness length is computed once. The JSON (code version, torch version,
device) is written after every entry, with the seconds since the start. A failing backend is recorded as an error
and the rest still runs.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import statistics
import time
import traceback
from pathlib import Path

import torch

from rawmamba.models import create_model, decoder, lta_mamba
from rawmamba.models.bimamba import BiMamba
from rawmamba.models.volume_conv import conv3d_per_frame, per_frame_applies
from rawmamba.ssm import available_backends, get_backend, register_backend, selective_scan, selective_scan_triton
from rawmamba.ssm.backends.triton_scan import triton_available
from rawmamba.train.checkpoint import code_version

GPU_BACKENDS = ("chunked", "triton", "mamba_ssm")
# Loop-forward settings of the sweep (options of selective_scan_triton, token-major inputs), around the defaults
# (chunk 256, 64 channels, 2 warps, unrolled x4, 3 stages of Triton's pipelining of the walk's loads, no register
# limit, no prefetch: 1.01 ms in the sixth session's rounds, against 1.36 ms for the one-ahead loads before), which
# are timed too: 4 stages, L1 prefetches on top of the stages, a register limit (3 stages compile to 96 registers
# and fit 80 without spilling), other unrolls, chunks and channels per program, and the earlier one-ahead loads.
TRITON_SWEEP = [
    (
        dict(forward=forward, loop_chunk=c, loop_block_d=d, num_warps=w, loop_unroll=r, loop_stages=s)
        | ({"loop_registers": registers} if registers else {})
        | ({"loop_prefetch": prefetch} if prefetch else {}),
        True,
    )
    for forward, c, d, w, r, s, registers, prefetch in (
        ("loop", 256, 64, 2, 4, 4, None, 0),
        ("loop", 256, 64, 2, 4, 3, None, 16),
        ("loop", 256, 64, 2, 4, 3, 80, 0),
        ("loop", 256, 64, 2, 2, 3, None, 0),
        ("loop", 256, 64, 2, 8, 3, None, 0),
        ("loop", 128, 64, 2, 4, 3, None, 0),
        ("loop", 512, 64, 2, 4, 3, None, 0),
        ("loop", 256, 32, 1, 4, 3, None, 0),
        ("loop", 256, 64, 2, 4, 1, None, 0),
    )
]
# Settings of the one-launch forward (forward="lookback", token-major inputs), checked and timed in a process of
# their own (--lookback: its chunks wait for each other through flags in memory, and a fault there must not stop the
# other checks). Unlimited it takes 160 registers, 128 without spilling in its walks (Triton 3.8, sm_90).
LOOKBACK_SWEEP = [
    dict(forward="lookback", loop_chunk=c, loop_registers=registers)
    | ({"loop_prefetch": prefetch} if prefetch else {})
    for c, registers, prefetch in ((256, 128, 0), (256, None, 0), (128, 128, 0), (256, 128, 16))
] + [dict(forward="lookback", loop_chunk=256, loop_registers=128, loop_stages=0, loop_prefetch=16)]

# the fastest sweep settings, timed again with the defaults in this many interleaved rounds before one is chosen:
# one timing of a setting varies by about 10% on a shared machine, as much as the settings differ
CONFIRM_SETTINGS, CONFIRM_ROUNDS = 3, 3

# Backward settings, timed forward+backward at L=288,000 on token-major inputs (the forward: the default loop, with
# loop_block_d channels per program like the loop backward): the tile backward; the loop backward with 64 and 32
# channels (chunks of 512 and 256, tiles of 32 positions within 8% on 2026-11-27); its L1 prefetches
# (backward_prefetch), with the register count of the kernel without them.
BACKWARD_SWEEP = [
    *(
        dict(backward="loop", chunk=c, block_t=t, loop_block_d=d)
        | ({"backward_prefetch": prefetch} if prefetch else {})
        | ({"backward_registers": registers} if registers else {})
        for c, t, d, prefetch, registers in (
            (1024, 64, 64, 0, None),
            (1024, 64, 64, 16, 168),
            (256, 64, 32, 0, None),
            (256, 64, 32, 16, 168),
            (1024, 64, 64, 16, None),
            (1024, 64, 64, 32, 168),
        )
    ),
    dict(backward="tile"),  # last: 99 ms, and a run cut at its time limit loses the last entries first
]

SCAN_LENGTHS = (1_024, 4_096, 20_480, 102_400, 288_000)  # 288,000: 5 frames of 1440x640 at 1/4 scale
BYTES_PER_SECOND = 3.0e12  # H100 device-to-device copy, measured (docs/REFERENCE.md)


INPUT_NAMES = ("u", "delta", "A", "B", "C", "D", "z", "bias")


def _inputs(batch, dim, state, length, device, dtype, generator, token_major=False):
    """u, delta, A, B, C, D, z, delta_bias; token_major: u, delta, z, B, C as (b, l, *) tensors seen as (b, *, l)."""

    def rand(*shape):  # drawn where the generator lives (the timings' on the GPU), then moved
        values = torch.randn(*shape, generator=generator, device=generator.device, dtype=torch.float64)
        return values.to(device=device, dtype=dtype)

    def sequence(channels, scale=1.0):
        if token_major:
            return (rand(batch, length, channels) * scale).transpose(1, 2)
        return rand(batch, channels, length) * scale

    u, delta, z = sequence(dim), sequence(dim, 0.5), sequence(dim)
    a = -torch.rand(dim, state, generator=generator, device=generator.device, dtype=torch.float64).to(device, dtype)
    a = a - 0.5
    b, c = sequence(state), sequence(state)
    d, bias = rand(dim), rand(dim) * 0.1
    return [u, delta, a, b, c, d, z, bias]


def _outputs_and_grads(tensors: list, backend: str) -> list:
    """Output, last state and the gradients of a weighted sum of the output, by ``backend``, detached."""
    u, delta, a, b, c, d, z, bias = tensors
    out, state = selective_scan(
        u, delta, a, b, c, D=d, z=z, delta_bias=bias, delta_softplus=True, return_last_state=True, backend=backend
    )
    loss = (out * torch.linspace(-1, 1, out.shape[-1], device=out.device, dtype=out.dtype)).sum()
    return [t.detach() for t in (out, state, *torch.autograd.grad(loss, tensors))]


@functools.cache
def _reference(length: int) -> tuple[list, list]:
    """The float64 CPU inputs of a correctness check at ``length`` and the sequential reference's results (once
    per length: every backend is checked against them)."""
    generator = torch.Generator().manual_seed(length)
    inputs = [x.requires_grad_() for x in _inputs(2, 40, 16, length, "cpu", torch.float64, generator)]
    return [x.detach() for x in inputs], _outputs_and_grads(inputs, "reference")


def check_correctness(
    backend: str, lengths=(1, 7, 64, 1000, 4097), dtype: torch.dtype = torch.float32, token_major: bool = False
) -> dict:
    """Largest differences of a CUDA backend (inputs in ``dtype``, token-major views if asked) from the float64 CPU
    reference, relative to the reference's largest magnitude (per quantity, over the lengths)."""
    names = ("output", "state", *(f"grad_{name}" for name in INPUT_NAMES))
    error, scale = dict.fromkeys(names, 0.0), dict.fromkeys(names, 0.0)
    for length in lengths:
        inputs, expected = _reference(length)
        candidate = [x.cuda().to(dtype).requires_grad_() for x in inputs]
        if token_major:  # same values in (b, l, *) memory, seen as (b, *, l)
            candidate = [
                x.detach().transpose(1, 2).contiguous().transpose(1, 2).requires_grad_() if x.dim() == 3 else x
                for x in candidate
            ]
            assert candidate[0].stride(1) == 1
        for name, got, want in zip(names, _outputs_and_grads(candidate, backend), expected, strict=True):
            error[name] = max(error[name], float((got.double().cpu() - want).abs().max()))
            scale[name] = max(scale[name], float(want.abs().max()))
    # each quantity's largest error over the lengths relative to its largest magnitude over them: a gradient that
    # is exactly 0 at one length (dA at L=1) has only float32 rounding there
    relative = {name: error[name] / max(scale[name], 1e-12) for name in names}
    grads = [relative[name] for name in names[2:]]
    return {"output": relative["output"], "state": relative["state"], "grad": max(grads), "per_input": relative}


def cuda_time(function, repeats: int = 5) -> float:
    """Median milliseconds of ``function()`` on the GPU after one warm-up call. The calls are queued back to back,
    each between two events, with one synchronisation at the end: once the CPU runs ahead, a call's time is the
    GPU's alone. (Until 2026-11-27 each call was followed by a synchronisation, so its time also held the CPU's
    launch of its first kernel: for a 1.5 ms scan, Python and three launches of the order of 0.1 ms.)"""
    function()
    torch.cuda.synchronize()
    events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(repeats)]
    for start, end in events:
        start.record()
        function()
        end.record()
    torch.cuda.synchronize()
    return statistics.median(start.elapsed_time(end) for start, end in events)


def time_scan(
    backend: str,
    length: int,
    dim: int = 192,
    state: int = 16,
    with_backward: bool = True,
    token_major: bool = False,
    dtype: torch.dtype = torch.float32,
    gated: bool = True,
    **options,
) -> dict:
    """Forward and forward+backward milliseconds of one backend (``options``: keyword arguments of triton's);
    ``gated`` False: without z."""
    generator = torch.Generator("cuda").manual_seed(0)  # inputs drawn on the GPU: the CPU took seconds
    tensors = [x.requires_grad_() for x in _inputs(1, dim, state, length, "cuda", dtype, generator, token_major)]
    u, delta, a, b, c, d, z, bias = tensors
    z = z if gated else None

    def run():
        kwargs = dict(D=d, z=z, delta_bias=bias, delta_softplus=True)
        if options:
            return selective_scan_triton(u, delta, a, b, c, **kwargs, **options)
        return selective_scan(u, delta, a, b, c, **kwargs, backend=backend)

    with torch.no_grad():
        ms = cuda_time(run, 10)
    fb_ms = cuda_time(lambda: run().sum().backward()) if with_backward else None
    size = torch.finfo(dtype).bits // 8
    floor_bytes = size * ((3 + gated) * dim * length + 2 * state * length)  # read u, delta (z), write y; read B, C
    return {
        "backend": backend,
        "options": options,
        "token_major": token_major,
        "dtype": str(dtype),
        "gated": gated,
        "L": length,
        "ms": ms,
        "forward_backward_ms": fb_ms,
        "floor_ms": 1e3 * floor_bytes / BYTES_PER_SECOND,
    }


def scan_kernel_times(options: dict, with_backward: bool = False) -> dict:
    """Device milliseconds of each kernel that one Triton scan call launches, in launch order (d=192, n=16,
    L=288,000, token-major float32 inputs, ``options`` of ``selective_scan_triton``; forward only unless
    ``with_backward``), from ``torch.profiler``: where the time goes between the forward's passes and its carry (or
    the one-launch forward), and the backward's."""
    generator = torch.Generator("cuda").manual_seed(0)  # inputs drawn on the GPU: the CPU took seconds
    tensors = [x.requires_grad_() for x in _inputs(1, 192, 16, 288_000, "cuda", torch.float32, generator, True)]
    u, delta, a, b, c, d, z, bias = tensors

    def run():
        with torch.set_grad_enabled(with_backward):
            y = selective_scan_triton(u, delta, a, b, c, D=d, z=z, delta_bias=bias, delta_softplus=True, **options)
            if with_backward:
                y.sum().backward()
        torch.cuda.synchronize()

    run()  # compiles
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as profiler:
        run()
    kernels = [
        (event.name, event.time_range.elapsed_us() / 1e3)
        for event in profiler.events()
        if event.device_type == torch.autograd.DeviceType.CUDA
    ]
    return {"options": options, "with_backward": with_backward, "kernels_ms": kernels,
            "total_ms": sum(ms for _, ms in kernels)}  # fmt: skip


def interleaved_timings(variants: list[dict], rounds: int) -> list[list[dict]]:
    """:func:`time_scan` of the Triton scan forward at L=288,000 with each variant's keyword arguments, once per
    round, the rounds interleaved (A B C, A B C, ...) so that the machine's drift reaches them all alike: each
    variant's entries."""
    entries = [[] for _ in variants]
    for _ in range(rounds):
        for out, kwargs in zip(entries, variants, strict=True):
            out.append(time_scan("triton", 288_000, with_backward=False, **kwargs))
    return entries


def floor_ratios(options: dict, rounds: int = 5) -> dict:
    """Issue 7's criterion, measured with care: the float32 forward at d=192, n=16, L=288,000 on token-major inputs
    with ``options``, with z (the scan the model runs) and without (the scan whose byte floor docs/REFERENCE.md
    quotes), timed alternately over ``rounds`` rounds; the medians and their ratios to the byte floors."""
    variants = [dict(token_major=True, gated=gated, **options) for gated in (True, False)]
    out = {"options": options, "rounds": rounds}
    for name, entries in zip(("gated", "without_z"), interleaved_timings(variants, rounds), strict=True):
        times = [entry["ms"] for entry in entries]
        median, floor = statistics.median(times), entries[0]["floor_ms"]
        out[name] = {"ms": times, "median_ms": median, "floor_ms": floor, "x_floor": median / floor}
    return out


def confirm_forward(candidates: list[tuple[dict, bool]], rounds: int) -> dict:
    """Each candidate setting (options, token-major) timed forward at L=288,000 in interleaved rounds
    (:func:`interleaved_timings`): ``settings``, each with its timings and their median."""
    variants = [dict(token_major=token_major, **options) for options, token_major in candidates]
    settings = []
    for entries, (options, token_major) in zip(interleaved_timings(variants, rounds), candidates, strict=True):
        times = [entry["ms"] for entry in entries]
        settings.append({"options": options, "token_major": token_major, "ms": times,
                         "median_ms": statistics.median(times)})  # fmt: skip
    return {"rounds": rounds, "settings": settings}


class Record:
    """The JSON result, written to ``path`` after every entry: a run stopped at its time limit keeps what it did."""

    def __init__(self, path: Path, **fields) -> None:
        self.path, self.data, self.started = path, fields, time.perf_counter()

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self.data, indent=2))

    def run(self, section: str, key: str, function, *args, **kwargs) -> None:
        """Append (list section) or set (dict section, at ``key``) ``function(...)``, or its error, with the seconds
        since the start; print, save."""
        try:
            value = function(*args, **kwargs)
        except Exception as error:  # noqa: BLE001 (one failing backend must not stop the other checks)
            value = {"error": repr(error), "traceback": traceback.format_exc()[-2000:]}
        if isinstance(value, dict):
            value["elapsed_s"] = round(time.perf_counter() - self.started, 1)
        if isinstance(self.data[section], list):
            self.data[section].append(value)
        else:
            self.data[section][key] = value
        print(key, value, flush=True)
        self.save()

    def model(self, *args, **kwargs) -> None:
        """Time one model case (:func:`time_model`) into ``models``, or record its error; print, save."""
        try:
            entry = time_model(*args, **kwargs)
        except Exception as error:  # noqa: BLE001 - recorded, the other cases still run
            case = {"case": [str(a) for a in args], **{k: str(v) for k, v in kwargs.items()}}
            entry = {**case, "error": repr(error)[:500]}
        torch.cuda.empty_cache()
        self.data["models"].append(entry)
        print("model", entry, flush=True)
        self.save()


PER_FRAME_KINDS = ("all", "depthwise", "dense")


def per_frame_conv_volume(conv: torch.nn.Conv3d, x: torch.Tensor, kind: str = "all") -> torch.Tensor:
    """``conv_volume`` computing the 3-D convs of ``kind`` frame by frame on any device (as it does on the CPU):
    ``"all"``, ``"depthwise"`` (groups == channels) or ``"dense"`` (the others); 1x1x1 convs stay conv3d."""
    depthwise = conv.groups > 1 and conv.groups == conv.in_channels
    chosen = kind == "all" or (kind == "depthwise") == depthwise
    if x.dim() == 5 and chosen and per_frame_applies(conv) and conv.kernel_size != (1, 1, 1):
        return conv3d_per_frame(x, conv.weight, conv.bias, conv.padding[1:], conv.groups)
    return conv(x)


@contextlib.contextmanager
def convs_per_frame(kind: str = "all"):
    """The decoder and LTA-Mamba use :func:`per_frame_conv_volume` (of ``kind``) inside the block."""
    saved = decoder.conv_volume, lta_mamba.conv_volume
    decoder.conv_volume = lta_mamba.conv_volume = functools.partial(per_frame_conv_volume, kind=kind)
    try:
        yield
    finally:
        decoder.conv_volume, lta_mamba.conv_volume = saved


@contextlib.contextmanager
def cudnn_benchmarking(enabled: bool):
    """``torch.backends.cudnn.benchmark = enabled`` inside the block (cuDNN times its algorithms per shape)."""
    saved = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = enabled
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = saved


def _model_inputs(batch: int, frames: int, height: int, width: int) -> tuple:
    """Random model inputs on the GPU: frames, first-frame sRGB and RAW metadata, and image metadata (1/64 random
    samples) when ``frames`` is 1, else zero flow: (x, meta_srgb, meta_raw, meta_mask, flow)."""
    x = torch.rand(batch, frames, 3, height, width, device="cuda")
    meta_srgb, meta_raw = x[:, 0].clone(), torch.rand(batch, 3, height, width, device="cuda")
    if frames == 1:
        return x, meta_srgb, meta_raw, (torch.rand(batch, 1, height, width, device="cuda") < 1 / 64).float(), None
    return x, meta_srgb, meta_raw, None, torch.zeros(batch, frames, 2, height, width, device="cuda")


def time_model(
    name: str,
    frames: int,
    height: int,
    width: int,
    dtype: torch.dtype,
    backend: str | None = None,
    per_frame_convs: str | None = None,
    channels_last: bool = False,
    cudnn_benchmark: bool = False,
    compile_model: bool = False,
) -> dict:
    model = create_model(name, mamba_backend=backend).cuda().eval()
    if channels_last:  # 3-D conv weights channels-last: cuDNN then runs the 3-D convs in NDHWC
        for module in model.modules():
            if isinstance(module, torch.nn.Conv3d):
                module.weight.data = module.weight.data.contiguous(memory_format=torch.channels_last_3d)
    x, meta_srgb, meta_raw, mask, flow = _model_inputs(1, frames, height, width)
    conv_mode = convs_per_frame(per_frame_convs) if per_frame_convs else contextlib.nullcontext()
    forward = torch.compile(model) if compile_model else model
    autocast = torch.autocast("cuda", dtype=dtype, enabled=dtype != torch.float32)
    with torch.no_grad(), autocast, conv_mode, cudnn_benchmarking(cudnn_benchmark):
        torch.cuda.reset_peak_memory_stats()
        first = time.perf_counter()
        forward(x, meta_srgb, meta_raw, meta_mask=mask, flow=flow)  # compiles, autotunes
        torch.cuda.synchronize()
        first_s = time.perf_counter() - first
        ms = cuda_time(lambda: forward(x, meta_srgb, meta_raw, meta_mask=mask, flow=flow), 5)
    return {
        "model": name,
        "frames": frames,
        "height": height,
        "width": width,
        "dtype": str(dtype),
        "ms": ms,
        "frames_per_s": 1e3 * frames / ms,
        "peak_gib": torch.cuda.max_memory_allocated() / 2**30,
        "scan_backend": backend or get_backend(device_type="cuda").name,
        "convs_per_frame": per_frame_convs,
        "channels_last_3d_weights": channels_last,
        "cudnn_benchmark": cudnn_benchmark,
        "compiled": compile_model,
        "first_call_s": first_s,
    }


def time_training_step(
    name: str, batch: int, frames: int, size: int, dtype: torch.dtype, backend: str | None = None
) -> dict:
    """Milliseconds of one training step's forward and backward (L1 loss, no optimiser step) of ``name`` on
    ``batch`` clips of ``frames`` frames of ``size`` x ``size`` (image metadata: 1/64 samples when ``frames`` is
    1, else the first frame's RAW), in ``dtype`` autocast; peak memory."""
    model = create_model(name, mamba_backend=backend).cuda().train()
    x, meta_srgb, meta_raw, mask, flow = _model_inputs(batch, frames, size, size)
    target = torch.rand(batch, frames, 3, size, size, device="cuda")
    autocast = torch.autocast("cuda", dtype=dtype, enabled=dtype != torch.float32)

    def step():
        model.zero_grad(set_to_none=True)
        with autocast:
            out = model(x, meta_srgb, meta_raw, meta_mask=mask, flow=flow)
        (out.float() - target.reshape(out.shape)).abs().mean().backward()

    torch.cuda.reset_peak_memory_stats()
    ms = cuda_time(step, 5)
    return {
        "model": name,
        "batch": batch,
        "frames": frames,
        "size": size,
        "dtype": str(dtype),
        "scan_backend": backend or get_backend(device_type="cuda").name,
        "forward_backward_ms": ms,
        "peak_gib": torch.cuda.max_memory_allocated() / 2**30,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/gpu_checks.json"))
    parser.add_argument("--skip-models", action="store_true", help="only the scan checks and timings")
    parser.add_argument(
        "--variants",
        action="store_true",
        help="also rawmamba_base with per-frame convs of each kind, channels-last conv weights, cudnn.benchmark",
    )
    parser.add_argument(
        "--compile",
        action="store_true",
        help="only rawmamba_base on the video in bf16 under torch.compile (cudnn.benchmark on)",
    )
    parser.add_argument(
        "--lookback",
        action="store_true",
        help="only the one-launch forward (forward='lookback'): correctness, agreement with the two-pass forward at "
        "L=288,000 over repeated runs, and its settings against the defaults in interleaved rounds",
    )
    parser.add_argument(
        "--triton-best",
        type=json.loads,
        default=None,
        help="with --compile: the triton_best record of an earlier run's JSON, "
        '\'{"options": {keyword arguments of the Triton scan}, "token_major": bool}\'',
    )
    args = parser.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    backends = [name for name in GPU_BACKENDS if name in available_backends()]
    record = Record(
        args.out,
        # RAWMAMBA_COMMIT: the commit, given by whoever copied the tree to a machine whose git metadata may lag
        commit=os.environ.get("RAWMAMBA_COMMIT") or code_version(),
        torch=torch.__version__,
        device=torch.cuda.get_device_name(),
        backends=backends,
        auto_backend_cuda=get_backend("auto", device_type="cuda").name,
        correctness={},
        scan=[],
        triton_sweep=[],
        triton_confirm={},
        kernels=[],
        criterion={},
        backward_sweep=[],
        models=[],
        training=[],
    )
    video = (5, 640, 1440)
    if args.compile:  # only the compiled case, in its own process (the compile can take minutes)
        backend = "triton"
        if args.triton_best:
            register_best(args.triton_best["options"], args.triton_best["token_major"])
            backend = "triton_best"
        record.data["triton_best"] = args.triton_best
        record.model("rawmamba_base", *video, torch.bfloat16, backend, cudnn_benchmark=True, compile_model=True)
        return
    if args.lookback:  # in its own process: see LOOKBACK_SWEEP
        check_lookback(record)
        return
    if not args.skip_models:  # the target first, with the defaults: rawmamba_base, 5 x 1440x640, bf16
        record.model("rawmamba_base", *video, torch.bfloat16)
    if "triton" in backends:  # then issue 7's scan criterion, with the defaults
        record.run("criterion", "defaults", floor_ratios, {})
    for backend in backends:
        record.run("correctness", backend, check_correctness, backend)
    if "triton" in backends:
        register_backend("triton_tile", functools.partial(selective_scan_triton, forward="tile"), triton_available)
        record.run("correctness", "triton_tile", check_correctness, "triton_tile")
        record.run("correctness", "triton_token_major", check_correctness, "triton", token_major=True)
        record.run("correctness", "triton_bfloat16", check_correctness, "triton", dtype=torch.bfloat16)
        record.run("correctness", "triton_bfloat16_token_major", check_correctness, "triton",
                   dtype=torch.bfloat16, token_major=True)  # fmt: skip
        tile_backward = functools.partial(selective_scan_triton, backward="tile")
        register_backend("triton_tile_backward", tile_backward, triton_available, token_major=True)
        record.run("correctness", "triton_tile_backward", check_correctness, "triton_tile_backward")
    for backend in backends:  # each on the layout it is registered for
        for length in SCAN_LENGTHS:
            record.run("scan", "scan", time_scan, backend, length, token_major=get_backend(backend).token_major)
    best = None
    if "triton" in backends:
        for options, token_major in TRITON_SWEEP:
            record.run("triton_sweep", "triton_sweep", time_scan, "triton", 288_000, with_backward=False,
                       token_major=token_major, **options)  # fmt: skip
        timed = [r for r in record.data["scan"] + record.data["triton_sweep"] if r.get("backend") == "triton"]
        timed = [r for r in timed if "ms" in r and r["L"] == 288_000]  # the defaults have options {}
        if timed:
            candidates = [r for r in sorted(timed, key=lambda r: r["ms"]) if r["options"]][:CONFIRM_SETTINGS]
            candidates.append(next((r for r in timed if not r["options"]), None))  # the defaults
            candidates = [(r["options"], r["token_major"]) for r in candidates if r is not None]
            record.run("triton_confirm", "forward", confirm_forward, candidates, CONFIRM_ROUNDS)
            confirmed = record.data["triton_confirm"]["forward"].get("settings", [])
            fastest = min(confirmed or timed, key=lambda r: r.get("median_ms", r.get("ms")))
            best, best_token_major = fastest["options"], fastest["token_major"]
            record.data["triton_best"] = {"options": best, "token_major": best_token_major}
            register_best(best, best_token_major)
            for dtype in (torch.float32, torch.bfloat16):  # forward+backward, and bf16 inputs as in the model
                record.run("scan", "scan", time_scan, "triton", 288_000, token_major=best_token_major,
                           dtype=dtype, **best)  # fmt: skip
            for dtype in (torch.float32, torch.bfloat16):  # without z: the scan of docs/REFERENCE.md's byte floor
                record.run("scan", "scan", time_scan, "triton", 288_000, token_major=True, dtype=dtype, gated=False)
            for with_backward in (False, True):  # where the defaults' time goes, kernel by kernel
                record.run("kernels", "kernels", scan_kernel_times, {}, with_backward)
            if best:  # token-major, as every setting timed; the defaults' criterion came first
                record.run("criterion", "triton_best", floor_ratios, best)
    if "triton" in backends:  # before the model cases, which a run cut at its time limit loses first
        for options in BACKWARD_SWEEP:
            record.run("backward_sweep", "backward_sweep", time_scan, "triton", 288_000, token_major=True, **options)
    # the fastest setting differs from the defaults: rawmamba_base with it too
    new_best = best is not None and (best, best_token_major) != ({}, get_backend("triton").token_major)
    if best is not None and not args.skip_models:
        for backend in ("triton", "triton_best") if new_best else ("triton",):
            record.run("correctness", f"rawmamba_base_{backend}_vs_chunked", model_agreement, backend)
        if new_best:
            record.model("rawmamba_base", *video, torch.bfloat16, "triton_best")
    if args.skip_models:
        return
    # training steps as the configs take them (rvd_video: batch 4, 5 frames of 128x128 packed pixels; cam_image:
    # 128x128 patches, here batch 16), with each backward kernel
    training = [("rawmamba_base", 4, 5, 128), ("rawmamba_base", 16, 1, 128)]
    for case in training:
        for backend in ("triton", "triton_tile_backward") if "triton" in backends else (None,):
            record.run("training", "training", time_training_step, *case, torch.bfloat16, backend)
    if args.variants and best is not None:  # per-frame convs: 31.1 against 29.2 frames/s at 711ab21, none at 4a508e3
        for cudnn_benchmark in (False, True):
            for kind in PER_FRAME_KINDS:
                record.model("rawmamba_base", *video, torch.bfloat16, "triton_best",
                             per_frame_convs=kind, cudnn_benchmark=cudnn_benchmark)  # fmt: skip
            record.model("rawmamba_base", *video, torch.bfloat16, "triton_best",
                         channels_last=True, cudnn_benchmark=cudnn_benchmark)  # fmt: skip
    cases = [("rawmamba_base", video, torch.float32), ("rawmamba_base", (1, 1024, 1024), torch.bfloat16)]
    cases += [("rawmamba_tiny", size, torch.bfloat16) for size in (video, (1, 1024, 1024))]
    for name, size, dtype in cases:
        for backend in (None, "triton_best") if new_best else (None,):  # None: the automatic backend
            record.model(name, *size, dtype, backend)


def lookback_agreement(options: dict, repeats: int = 5) -> dict:
    """Largest difference, relative to the output's largest magnitude, between the one-launch forward with
    ``options`` and the two-pass forward (the defaults) at d=192, n=16, L=288,000 on token-major inputs, over
    ``repeats`` runs: with 1,125 chunks of 3 channel blocks in flight together, a chunk that read a state before it
    was published would show here, as an error far above float32 rounding (the carries compose in another order)."""
    generator = torch.Generator("cuda").manual_seed(1)
    u, delta, a, b, c, d, z, bias = _inputs(1, 192, 16, 288_000, "cuda", torch.float32, generator, token_major=True)
    kwargs = dict(D=d, z=z, delta_bias=bias, delta_softplus=True, return_last_state=True)
    with torch.no_grad():
        want, want_last = selective_scan_triton(u, delta, a, b, c, **kwargs)
        errors, last_errors = [], []
        for _ in range(repeats):
            got, last = selective_scan_triton(u, delta, a, b, c, **kwargs, **options)
            errors.append(float((got - want).abs().max() / want.abs().max()))
            last_errors.append(float((last - want_last).abs().max() / want_last.abs().max()))
    return {"options": options, "output": errors, "last_state": last_errors}


def check_lookback(record: Record) -> None:
    """The one-launch forward (:data:`LOOKBACK_SWEEP`), most telling first, as its process has a short time limit:
    agreement with the two-pass forward at scale; each setting and the defaults timed forward at L=288,000 in
    interleaved rounds; with and without z against the byte floors; its kernel time; then against the float64
    reference (computed again in this process) and forward+backward."""
    record.data["lookback"] = {}
    best = LOOKBACK_SWEEP[0]
    register_backend("triton_lookback", functools.partial(selective_scan_triton, **best), triton_available,
                     token_major=True)  # fmt: skip
    record.run("lookback", "agreement", lookback_agreement, best)
    candidates = [(options, True) for options in LOOKBACK_SWEEP] + [({}, True)]
    record.run("triton_confirm", "lookback", confirm_forward, candidates, CONFIRM_ROUNDS)
    record.run("criterion", "lookback", floor_ratios, best)
    record.run("kernels", "kernels", scan_kernel_times, best)
    record.run("correctness", "triton_lookback", check_correctness, "triton_lookback", token_major=True)
    record.run("scan", "scan", time_scan, "triton", 288_000, token_major=True, **best)  # forward+backward too


def model_agreement(backend: str, reference_backend: str = "chunked") -> float:
    """Largest relative difference of ``rawmamba_base`` outputs (float32, 3 frames of 128x256) between the scan
    backend ``backend`` (token-major or not) and ``reference_backend``, with the same weights."""
    torch.manual_seed(0)
    model = create_model("rawmamba_base", mamba_backend=reference_backend).cuda().eval()
    with torch.no_grad():  # at initialisation the LTA-Mamba output does not reach the model's output
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.05)
    x = torch.rand(1, 3, 3, 128, 256, device="cuda")
    meta_raw, flow = torch.rand(1, 3, 128, 256, device="cuda"), torch.zeros(1, 3, 2, 128, 256, device="cuda")
    outputs = []
    with torch.no_grad():
        for name in (reference_backend, backend):
            for module in model.modules():
                if isinstance(module, BiMamba):
                    module.backend = name
            outputs.append(model(x, x[:, 0], meta_raw, flow=flow).double())
    return float((outputs[1] - outputs[0]).abs().max() / outputs[0].abs().max())


def register_best(options: dict, token_major: bool) -> None:
    """Register ``selective_scan_triton(**options)`` as the backend ``triton_best``."""
    scan = functools.partial(selective_scan_triton, **options)
    register_backend("triton_best", scan, triton_available, token_major=token_major)


if __name__ == "__main__":
    main()
