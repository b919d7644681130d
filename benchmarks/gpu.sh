#!/usr/bin/env bash
# Selective-scan GPU checks and timings (under 5 minutes on one H100): the GPU tests of tests/test_ssm*.py,
# then benchmarks/gpu_checks.py (chunked / triton (both forward kernels) / mamba_ssm against the float64 CPU
# reference, scan forward and forward+backward timings, a sweep of the Triton forward kernels and sizes whose
# fastest becomes the backend "triton_best", rawmamba_base on 5 frames of 1440x640 in bf16 with triton,
# triton_best and triton_best with per-frame convs, then the other model cases with the default "auto" backend).
# Needs python3 with torch (CUDA, with its bundled triton); pytest is optional; no network.
#   OUT=/tmp/out bash benchmarks/gpu.sh   # SKIP_MODELS=1: the scan part only (about 2 minutes); CHECKS_TIMEOUT=s
#   PROFILE=1 adds a torch.profiler table of rawmamba_base, 5 frames of 1440x640 in bf16 (about 1 more minute)
# Writes to $OUT: env.txt, pytest_gpu.log, gpu_checks.json, gpu_checks.log (and profile_base_video_bf16.txt).
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
if python3 -c "import pytest" 2>/dev/null; then
    timeout 90 python3 -m pytest -q -p no:cacheprovider tests/test_ssm.py tests/test_ssm_triton.py -k "gpu" \
        2>&1 | tail -n 40 | tee "$OUT/pytest_gpu.log"
else
    echo "pytest not installed: GPU tests skipped (gpu_checks.py still compares against the reference)" \
        | tee "$OUT/pytest_gpu.log"
fi
ARGS=(--out "$OUT/gpu_checks.json")
[[ -n "${SKIP_MODELS:-}" ]] && ARGS+=(--skip-models)
timeout "${CHECKS_TIMEOUT:-190}" python3 benchmarks/gpu_checks.py "${ARGS[@]}" 2>&1 | tee "$OUT/gpu_checks.log" | tail -n 60
echo "gpu_checks exit status ${PIPESTATUS[0]} (124: timed out; the JSON then holds the scan part if it got that far)"
if [[ -n "${PROFILE:-}" ]]; then
    timeout 90 python3 benchmarks/profile_model.py --model rawmamba_base --frames 5 --height 640 --width 1440 \
        --device cuda --dtype bf16 --out "$OUT/profile_base_video_bf16.txt" 2>&1 | tail -n 40
fi
