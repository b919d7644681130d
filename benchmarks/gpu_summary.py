"""A short table of what ``benchmarks/gpu.sh`` wrote to a folder (the JSON files stay the full record).

python benchmarks/gpu_summary.py OUT
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

# issue 7: the Triton scan forward within this factor of its byte floor (d=192, n=16, L=288,000)
FLOOR_FACTOR = 5


def load(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def model_label(entry: dict) -> str:
    flags = [
        f"per-frame {entry['convs_per_frame']}" if entry.get("convs_per_frame") else "",
        "cl3d" if entry.get("channels_last_3d_weights") else "",
        "bench" if entry.get("cudnn_benchmark") else "",
        "compiled" if entry.get("compiled") else "",
    ]
    size = f"{entry['frames']}x{entry['height']}x{entry['width']}"
    return f"{entry['model']} {size} {entry['dtype'].split('.')[-1]} {entry['scan_backend']} " + " ".join(
        f for f in flags if f
    )


def summarise_checks(checks: dict | None) -> list[str]:
    """The lines of one JSON of ``gpu_checks.py`` (the main run, or its --lookback run)."""
    lines = []
    if not checks:
        return lines
    lines.append(f"commit {checks['commit']}  torch {checks['torch']}  {checks['device']}")
    for name, worst in checks["correctness"].items():
        if isinstance(worst, dict):  # the worst gradient only (per_input has each one)
            worst = {key: value for key, value in worst.items() if key not in ("per_input", "elapsed_s")}
        lines.append(f"correct {name}: " + json.dumps(worst)[:150])
    for r in checks["scan"] + checks["triton_sweep"] + checks.get("backward_sweep", []):
        if "ms" in r:
            fb = r["forward_backward_ms"]
            layout = " token-major" if r.get("token_major") else ""
            layout += " without z" if r.get("gated") is False else ""
            dtype = r.get("dtype", "float32").split(".")[-1]
            lines.append(
                f"scan {r['backend']} {r['options']}{layout} {dtype} L={r['L']}: {r['ms']:.3f} ms"
                + (f", f+b {fb:.2f} ms" if fb else "")
                + f", {r['ms'] / r['floor_ms']:.1f}x floor"
            )
        else:
            lines.append(f"scan error {r.get('error', '')[:150]}")
    for section, confirm in (checks.get("triton_confirm") or {}).items():  # forward, lookback
        for r in confirm.get("settings", []):
            times = ", ".join(f"{ms:.3f}" for ms in r["ms"])
            lines.append(f"confirm {section} {r['options'] or 'defaults'}: median {r['median_ms']:.3f} ms ({times})")
        if "error" in confirm:
            lines.append(f"confirm {section} error {confirm['error'][:150]}")
    for name, r in (checks.get("criterion") or {}).items():
        if "gated" in r:
            met = "met" if max(r["gated"]["x_floor"], r["without_z"]["x_floor"]) <= FLOOR_FACTOR else "not met"
            lines.append(
                f"criterion {name} {r['options'] or 'defaults'}: with z {r['gated']['median_ms']:.3f} ms "
                f"({r['gated']['x_floor']:.2f}x floor), without z {r['without_z']['median_ms']:.3f} ms "
                f"({r['without_z']['x_floor']:.2f}x floor), medians of {r['rounds']}: {met} (both within "
                f"{FLOOR_FACTOR}x)"
            )
        else:
            lines.append(f"criterion {name} error {r.get('error', '')[:150]}")
    for r in checks.get("kernels", []):
        if "kernels_ms" in r:
            times = ", ".join(f"{name.split('_kernel')[0]} {ms:.3f}" for name, ms in r["kernels_ms"])
            lines.append(f"kernels {r['options'] or 'defaults'}{' f+b' if r['with_backward'] else ''}: {times}")
        else:
            lines.append(f"kernels error {r.get('error', '')[:150]}")
    for name, entry in (checks.get("lookback") or {}).items():
        lines.append(f"lookback {name}: " + json.dumps(entry)[:200])
    lines.append(f"triton_best {checks.get('triton_best')}")
    for r in checks.get("training", []):
        if "forward_backward_ms" in r:
            lines.append(
                f"training {r['model']} {r['batch']}x{r['frames']}x{r['size']}^2 {r['dtype'].split('.')[-1]} "
                f"{r['scan_backend']}: {r['forward_backward_ms']:.1f} ms, {r['peak_gib']:.2f} GiB"
            )
        else:
            lines.append(f"training error {r.get('error', '')[:150]}")
    return lines


def summarise(out: Path) -> list[str]:
    lines = []
    for name in ("gpu_checks.json", "gpu_lookback.json"):
        lines += summarise_checks(load(out / name))
    for name in ("gpu_checks.json", "gpu_compile.json"):
        for entry in (load(out / name) or {}).get("models", []):
            if "ms" in entry:
                lines.append(
                    f"model {model_label(entry)}: {entry['ms']:.1f} ms, {entry['frames_per_s']:.1f} fps, "
                    f"{entry['peak_gib']:.2f} GiB, first call {entry.get('first_call_s', float('nan')):.1f} s"
                )
            else:
                lines.append(f"model error {entry.get('case')} {entry.get('error', '')[:200]}")
    convs = load(out / "conv_paths.json")
    if convs:
        totals = convs["total_ms_per_forward"]
        lines.append("conv ms per forward: " + ", ".join(f"{k} {v:.1f}" for k, v in sorted(totals.items())))
        for entry in convs["convs"]:
            ms = entry["ms"]
            lines.append(
                f"conv {entry['module']} {entry['input']} x{entry['calls']}: module {ms['module']:.3f}, "
                f"fastest {entry['fastest']} {ms[entry['fastest']]:.3f}"
            )
    return lines


if __name__ == "__main__":
    print("\n".join(summarise(Path(sys.argv[1]))))
