#!/usr/bin/env bash
# Train the bundled rawmamba_tiny on one GPU (a few minutes), then run the scan checks of benchmarks/gpu.sh.
# Needs python3 with torch (CUDA), timm, scikit-image, opencv-python-headless, tifffile, safetensors, pyyaml, tqdm.
#   OUT=/tmp/out CONFIG=configs/bundled_tiny_prior.yaml bash benchmarks/gpu_train_bundled.sh [--key=value ...]
# CONFIG defaults to configs/bundled_tiny.yaml (stage 1); extra arguments override the config.
# Writes to $OUT: rawmamba_tiny.safetensors/.json (the checkpoint), log.jsonl (loss curve), config.yaml,
# train.log, and gpu.sh's files (env.txt, pytest_gpu.log, gpu_checks.json, gpu_checks.log) unless SKIP_CHECKS=1.
set -uo pipefail
OUT=${OUT:-out}
CONFIG=${CONFIG:-configs/bundled_tiny.yaml}
mkdir -p "$OUT"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 -c "import torch, timm, skimage, cv2; print('torch', torch.__version__, 'timm', timm.__version__)"
RUN=/tmp/bundled_tiny
rm -rf "$RUN"
python3 -m rawmamba.cli train --config "$CONFIG" --device=cuda --out_dir="$RUN" "$@" 2>&1 | tr '\r' '\n' \
    > "$OUT/train.log"
status=${PIPESTATUS[0]}
tail -n 5 "$OUT/train.log"
if [[ -f "$RUN/checkpoints/last.safetensors" ]]; then
    cp "$RUN/checkpoints/last.safetensors" "$OUT/rawmamba_tiny.safetensors"
    cp "$RUN/checkpoints/last.json" "$OUT/rawmamba_tiny.json"
    cp "$RUN/log.jsonl" "$RUN/config.yaml" "$OUT/"
else
    echo "training failed (exit status $status):"; tail -n 40 "$OUT/train.log"
fi
[[ -n "${SKIP_CHECKS:-}" ]] || OUT="$OUT" bash benchmarks/gpu.sh  # SKIP_MODELS=1: the scan part only
