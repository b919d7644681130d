"""Where the peak memory of a CPU forward goes: the process's resident high-water mark after every module.

    python benchmarks/memory_cpu.py [--model rawmamba_tiny] [--input video] [--frames 5] [--size 640 1440]
        [--depth 2] [--threads 2] [--out benchmarks/results/memory_cpu_tiny.json]

Linux only. One warm-up forward (scan orders, kernels, first-touch allocations), then the high-water mark is reset
(``/proc/self/clear_refs``) and a second forward runs with a hook after every module down to ``--depth`` dots in
its name. Each row holds the resident memory after the module and the high-water mark so far, both relative to
the start of the measured forward; a rise of the high-water mark belongs to the work since the previous row (the
module itself, or code between modules, such as the global prior before the decoder). The allocator settings are
the command line's: PyTorch's transparent huge pages (set before torch allocates anything) and glibc's default
heap, which hands freed tensors back, so that the resident memory follows the tensors alive.
Inputs as in ``scaling_cpu.py``: grid metadata for an image, dense first-frame metadata for a video (flow by
OpenCV DIS), random weights, no sample refinement.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")  # as the command line; before torch allocates

import torch  # noqa: E402
from scaling_cpu import case_inputs  # noqa: E402

from rawmamba.models import create_model  # noqa: E402
from rawmamba.train.checkpoint import code_version  # noqa: E402

MIB = 2**20


def resident_mib() -> tuple[float, float]:
    """(resident memory, its high-water mark) of this process in MiB."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="rawmamba_tiny")
    parser.add_argument("--input", choices=("image", "video"), default="video")
    parser.add_argument("--frames", type=int, default=5, help="video frames")
    parser.add_argument("--size", type=int, nargs=2, default=[640, 1440], metavar=("H", "W"))
    parser.add_argument("--depth", type=int, default=2, help="hook modules with at most this many dots in the name")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="JSON file (default: print only)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = create_model(args.model, sample_refinement="none").eval()
    frames = 1 if args.input == "image" else args.frames
    batch = case_inputs(args.input, frames, *args.size, False)
    with torch.no_grad():
        model(*batch)  # warm-up
    Path("/proc/self/clear_refs").write_text("5")  # reset the high-water mark to the resident memory now
    start = resident_mib()[0]
    rows = []

    def record(module: torch.nn.Module, _inputs, _output, name: str) -> None:
        resident, high = resident_mib()
        rise = high - start - (rows[-1]["high_water_mib"] if rows else 0.0)
        rows.append({"module": name or "(model)", "type": type(module).__name__, "resident_mib": resident - start,
                     "high_water_mib": high - start, "high_water_rise_mib": rise})  # fmt: skip
        print(f"{resident - start:8.0f} {high - start:8.0f} {rise:+8.0f}  {name or '(model)'}", flush=True)

    print("resident / high-water MiB since the start of the forward, rise of the high-water mark, module")
    for name, module in model.named_modules():
        if name.count(".") <= args.depth:
            module.register_forward_hook(lambda m, i, o, name=name: record(m, i, o, name))
    with torch.no_grad():
        model(*batch)
    result = {
        "benchmark": "CPU peak memory by module",
        "commit": code_version(),
        "torch": torch.__version__,
        "threads": args.threads,
        "model": args.model,
        "input": args.input,
        "frames": frames,
        "size": args.size,
        "peak_mib": rows[-1]["high_water_mib"],
        "rows": rows,
    }
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
