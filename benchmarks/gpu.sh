#!/usr/bin/env bash
# GPU checks and timings in under 5 minutes on one H100 (each part stops at its limit, 150 + 40 + 90 s, and keeps
# what it did; a run at f3ac17f took 302 s with limits of 170 + 45 + 75 s, every part cut at its limit):
#   1. benchmarks/gpu_checks.py: rawmamba_base on 5 frames of 1440x640 in bf16 with the shipped defaults first, then
#      issue 7's scan criterion with the defaults;
#      chunked / triton (both forward kernels, both backward kernels, bf16, token-major) / mamba_ssm against the
#      float64 CPU reference; scan forward and forward+backward timings; a sweep of the loop forward's settings
#      whose fastest (confirmed against the defaults in interleaved rounds) becomes the backend "triton_best";
#      forward+backward with each backward kernel setting; training steps; the other model cases (SKIP_MODELS=1:
#      the scan part only);
#   2. gpu_checks.py --lookback: the one-launch forward, checked and timed in its own process;
#   3. the GPU tests of tests/test_ssm*.py (SKIP_PYTEST=1 skips them).
# Optional: CONV_PATHS=1 adds benchmarks/conv_paths_cuda.py (each conv of rawmamba_base on the video, timed
# along every path; about 30 s); VARIANTS=1 the conv variants of gpu_checks.py (--variants); PROFILE=1 a
# torch.profiler table of rawmamba_base on the video in bf16 (cudnn.benchmark on; about 1 more minute);
# COMPILE=1 times rawmamba_base on the video under torch.compile (up to 2 more minutes).
# Needs python3 with torch (CUDA, with its bundled triton); pytest is optional; no network.
#   OUT=/tmp/out bash benchmarks/gpu.sh
# On a copy of the tree whose git metadata may lag behind, give the commit: RAWMAMBA_COMMIT=abc1234 (recorded as is).
# Writes to $OUT: env.txt, pytest_gpu.log, gpu_checks.json/.log, gpu_lookback.json/.log, conv_paths.json/.log
# (profile_base_video_bf16.txt, gpu_compile.json/.log).
set -uo pipefail
OUT=${OUT:-out}
mkdir -p "$OUT"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)"
    python3 -c "import rawmamba.ssm as s; print('available', s.available_backends(), 'auto on cuda:',
s.get_backend('auto', device_type='cuda').name)"
} 2>&1 | tee "$OUT/env.txt"
ARGS=(--out "$OUT/gpu_checks.json")
[[ -n "${SKIP_MODELS:-}" ]] && ARGS+=(--skip-models)
[[ -n "${VARIANTS:-}" ]] && ARGS+=(--variants)
timeout "${CHECKS_TIMEOUT:-150}" python3 benchmarks/gpu_checks.py "${ARGS[@]}" > "$OUT/gpu_checks.log" 2>&1
echo "gpu_checks exit status $? (124: timed out; the JSON then holds what was done)"
grep -v "^model\|^scan\|^triton_sweep" "$OUT/gpu_checks.log" | tail -n 20
# the one-launch forward in a process of its own: its chunks wait on each other through memory
timeout "${LOOKBACK_TIMEOUT:-40}" python3 benchmarks/gpu_checks.py --lookback --out "$OUT/gpu_lookback.json" \
    > "$OUT/gpu_lookback.log" 2>&1
echo "gpu_checks --lookback exit status $? (124: timed out)"
if [[ -n "${SKIP_PYTEST:-}" ]]; then
    echo "GPU tests skipped (SKIP_PYTEST)" | tee "$OUT/pytest_gpu.log"
elif python3 -c "import pytest" 2>/dev/null; then
    timeout 90 python3 -m pytest -q -p no:cacheprovider tests/test_ssm.py tests/test_ssm_triton.py -k "gpu" \
        2>&1 | tail -n 40 | tee "$OUT/pytest_gpu.log"
else
    echo "pytest not installed: GPU tests skipped (gpu_checks.py still compares against the reference)" \
        | tee "$OUT/pytest_gpu.log"
fi
if [[ -n "${CONV_PATHS:-}" ]]; then
    timeout 60 python3 benchmarks/conv_paths_cuda.py --out "$OUT/conv_paths.json" > "$OUT/conv_paths.log" 2>&1
    echo "conv_paths exit status $?"; tail -n 2 "$OUT/conv_paths.log"
fi
if [[ -n "${PROFILE:-}" ]]; then
    timeout 60 python3 benchmarks/profile_model.py --model rawmamba_base --frames 5 --height 640 --width 1440 \
        --device cuda --dtype bf16 --cudnn-benchmark --out "$OUT/profile_base_video_bf16.txt" > /dev/null 2>&1
    echo "profile exit status $?"
fi
if [[ -n "${COMPILE:-}" ]]; then
    BEST=$(python3 -c "import json,sys; print(json.dumps(json.load(open(sys.argv[1])).get('triton_best') or None))" \
        "$OUT/gpu_checks.json" 2>/dev/null || echo null)
    timeout 120 python3 benchmarks/gpu_checks.py --compile --triton-best "$BEST" --out "$OUT/gpu_compile.json" \
        > "$OUT/gpu_compile.log" 2>&1
    echo "compile exit status $? (124: the compile took over 2 minutes)"
fi
python3 benchmarks/gpu_summary.py "$OUT"
