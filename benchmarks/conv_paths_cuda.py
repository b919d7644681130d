"""Which way of computing each conv of a model is fastest on the GPU, conv by conv.

    python benchmarks/conv_paths_cuda.py --out conv_paths.json  # rawmamba_base, 5 frames of 1440x640

One forward (bf16 autocast, as :mod:`gpu_checks` times the model) records the input shape and dtype of every
``nn.Conv3d`` (decoder, LTA-Mamba) and ``nn.Conv1d`` (BiMamba's causal depth-wise conv) call; each distinct
(conv, input) is then timed (CUDA events, median of 5 after a warm-up) as

- ``module``: the module itself (cuDNN; NCDHW / NCL);
- ``module_cudnn_off``: the module with cuDNN disabled (ATen's own kernels, e.g. ``conv_depthwise3d``);
- 3-D: ``per_frame``, :func:`rawmamba.models.volume_conv.conv3d_per_frame` (per-frame 2-D convs, as on the
  CPU); ``channels_last_3d``, weight and input in ``channels_last_3d`` (cuDNN NDHWC), the input's conversion
  counted;
- 1-D: ``as_conv2d``, a 2-D conv of height 1; ``shifted_sum``, the kernel's taps as multiply-adds of shifted
  views (depth-wise only);

each with ``torch.backends.cudnn.benchmark`` off and on. The JSON lists every conv with its times and call
count, and the total per path over the forward (time x calls), so a routing rule can be read off it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
import torch.nn.functional as F
from gpu_checks import cuda_time  # benchmarks/ is on sys.path when this script runs
from torch import nn

from rawmamba.models import create_model
from rawmamba.models.volume_conv import conv3d_per_frame, per_frame_applies
from rawmamba.train.checkpoint import code_version


def record_conv_inputs(model: nn.Module, run) -> dict:
    """``{(module name, input shape, dtype): calls}`` of every ``nn.Conv1d`` / ``nn.Conv3d`` called in ``run()``."""
    calls: dict = {}
    names = {module: name for name, module in model.named_modules()}

    def hook(module, inputs):
        key = (names[module], tuple(inputs[0].shape), str(inputs[0].dtype))
        calls[key] = calls.get(key, 0) + 1

    convs = (nn.Conv1d, nn.Conv3d)
    handles = [m.register_forward_pre_hook(hook) for m in model.modules() if isinstance(m, convs)]
    try:
        run()
    finally:
        for handle in handles:
            handle.remove()
    return calls


def without_cudnn(function):
    """``function`` run with cuDNN disabled: ATen's own CUDA kernels (e.g. ``conv_depthwise3d``)."""

    def run():
        with torch.backends.cudnn.flags(enabled=False):
            return function()

    return run


def conv_paths(conv: nn.Conv1d | nn.Conv3d, x: torch.Tensor) -> dict:
    """The ways of computing ``conv(x)`` timed here (name -> zero-argument function)."""
    paths = {"module": lambda: conv(x), "module_cudnn_off": without_cudnn(lambda: conv(x))}
    if isinstance(conv, nn.Conv1d):  # as a 2-D conv of height 1, and as a sum of shifted products
        weight_2d = conv.weight.unsqueeze(2)
        paths["as_conv2d"] = lambda: F.conv2d(
            x.unsqueeze(2), weight_2d, conv.bias, 1, (0, conv.padding[0]), 1, conv.groups
        ).squeeze(2)
        if conv.groups == conv.in_channels == conv.out_channels and conv.stride == (1,) and conv.dilation == (1,):
            paths["shifted_sum"] = lambda: shifted_sum_conv1d(x, conv.weight, conv.bias, conv.padding[0])
        return paths
    if per_frame_applies(conv) and conv.kernel_size != (1, 1, 1):
        paths["per_frame"] = lambda: conv3d_per_frame(x, conv.weight, conv.bias, conv.padding[1:], conv.groups)
    weight_cl = conv.weight.contiguous(memory_format=torch.channels_last_3d)
    paths["channels_last_3d"] = lambda: F.conv3d(
        x.contiguous(memory_format=torch.channels_last_3d), weight_cl, conv.bias, conv.stride, conv.padding,
        conv.dilation, conv.groups,
    )  # fmt: skip
    return paths


def shifted_sum_conv1d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, pad: int) -> torch.Tensor:
    """Depth-wise ``conv1d`` (stride 1) as ``sum_k w[:, k] * x_padded[..., k : k + L_out]``."""
    k = weight.shape[-1]
    padded = F.pad(x, (pad, pad))
    length = padded.shape[-1] - k + 1
    w = weight[:, 0].to(x.dtype)
    out = padded[..., :length] * w[:, :1]
    for i in range(1, k):
        out.addcmul_(padded[..., i : i + length], w[:, i : i + 1])
    return out if bias is None else out.add_(bias.to(x.dtype)[:, None])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="rawmamba_base")
    parser.add_argument("--frames", type=int, default=5)
    parser.add_argument("--height", type=int, default=640)
    parser.add_argument("--width", type=int, default=1440)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.backends.cudnn.allow_tf32 = True
    model = create_model(args.model).cuda().eval()
    x = torch.rand(1, args.frames, 3, args.height, args.width, device="cuda")
    meta_srgb, meta_raw = x[:, 0].clone(), torch.rand(1, 3, args.height, args.width, device="cuda")
    flow = torch.zeros(1, args.frames, 2, args.height, args.width, device="cuda")
    autocast = torch.autocast("cuda", dtype=torch.bfloat16)
    modules = dict(model.named_modules())
    generator = torch.Generator(device="cuda").manual_seed(0)
    entries = []
    with torch.no_grad(), autocast:
        calls = record_conv_inputs(model, lambda: model(x, meta_srgb, meta_raw, flow=flow))
        for (name, shape, dtype), count in sorted(calls.items()):
            conv = modules[name]
            inputs = torch.rand(shape, device="cuda", dtype=getattr(torch, dtype.split(".")[-1]), generator=generator)
            entry = {"module": name, "input": list(shape), "dtype": dtype, "calls": count, "groups": conv.groups,
                     "kernel": list(conv.kernel_size), "out_channels": conv.out_channels, "ms": {}}  # fmt: skip
            for benchmark in (False, True):
                torch.backends.cudnn.benchmark = benchmark
                for path, function in conv_paths(conv, inputs).items():
                    entry["ms"][f"{path}{'+benchmark' if benchmark else ''}"] = cuda_time(function)
            torch.backends.cudnn.benchmark = False
            entry["fastest"] = min(entry["ms"], key=entry["ms"].get)
            entries.append(entry)
            print(name, shape, dtype, {k: round(v, 3) for k, v in entry["ms"].items()}, flush=True)
    paths = sorted({path for entry in entries for path in entry["ms"]})

    def path_ms(entry, path):  # a path that does not apply to a conv (per_frame of a 1x1x1) costs the module's
        return entry["ms"].get(path, entry["ms"]["module+benchmark" if path.endswith("+benchmark") else "module"])

    totals = {p: sum(e["calls"] * path_ms(e, p) for e in entries) for p in paths}
    totals["fastest_each"] = sum(e["calls"] * e["ms"][e["fastest"]] for e in entries)
    result = {
        "commit": code_version(),
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name(),
        "case": f"{args.model} {args.frames}x{args.height}x{args.width} bf16 autocast",
        "total_ms_per_forward": totals,
        "convs": entries,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print("total ms per forward:", {k: round(v, 2) for k, v in totals.items()})


if __name__ == "__main__":
    main()
