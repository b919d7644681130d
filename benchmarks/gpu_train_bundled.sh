#!/usr/bin/env bash
# Train the bundled rawmamba_tiny on one GPU (about 8 minutes), then run the GPU checks.
# Needs python3 with torch (CUDA), timm, scikit-image, opencv-python-headless, tifffile, safetensors, pyyaml, tqdm.
#   OUT=/tmp/out bash benchmarks/gpu_train_bundled.sh
# Writes to $OUT: rawmamba_tiny.safetensors/.json (the checkpoint), log.jsonl (loss curve), config.yaml,
# gpu_checks.json, and train.log.
set -euo pipefail
OUT=${OUT:-out}
mkdir -p "$OUT"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 -c "import torch, timm, skimage, cv2; print('torch', torch.__version__, 'timm', timm.__version__)"
RUN=/tmp/bundled_tiny
rm -rf "$RUN"
python3 -m rawmamba.cli train --config configs/bundled_tiny.yaml --device=cuda --num_workers=14 \
    --out_dir="$RUN" "$@" 2>&1 | tr '\r' '\n' > "$OUT/train.log" || { tail -n 60 "$OUT/train.log"; exit 1; }
tail -n 5 "$OUT/train.log"
cp "$RUN/checkpoints/last.safetensors" "$OUT/rawmamba_tiny.safetensors"
cp "$RUN/checkpoints/last.json" "$OUT/rawmamba_tiny.json"
cp "$RUN/log.jsonl" "$RUN/config.yaml" "$OUT/"
timeout 80 python3 benchmarks/gpu_checks.py --out "$OUT/gpu_checks.json" || echo "gpu checks did not finish"
