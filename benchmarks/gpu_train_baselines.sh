#!/usr/bin/env bash
# Train the three bundled learned baselines (cam_unet, rvd_net, blind_unet) at once on one GPU, each from
# its configs/bundled_<name>.yaml (3 minutes of training each after a ~1 minute pool build; under 5 minutes
# of wall time in all on one GPU with 16 CPU cores: 3 processes x (1 + 4-5 data workers)).
# Needs python3 with torch (CUDA), timm, scikit-image, opencv-python-headless, tifffile, safetensors, pyyaml, tqdm.
#   OUT=/tmp/out bash benchmarks/gpu_train_baselines.sh [--key=value ...]   (extra arguments go to every run)
# Writes to $OUT/<name>/: <name>.safetensors/.json (the last checkpoint), log.jsonl (loss curve),
# config.yaml and train.log; a run that fails leaves the tail of its log on stdout, the others still finish.
# Check the logic on a CPU: DEVICE=cpu bash benchmarks/gpu_train_baselines.sh --max_steps=2 --synthetic_count=4 ...
set -uo pipefail
OUT=${OUT:-out}
DEVICE=${DEVICE:-cuda}
NAMES=(cam_unet rvd_net blind_unet)
WORKERS=(4 5 4)  # rvd_net's pool computes DIS flow for every clip: one more worker
mkdir -p "$OUT"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
[[ "$DEVICE" != cuda ]] || nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 -c "import torch, timm, skimage, cv2; print('torch', torch.__version__, 'timm', timm.__version__)"
started=$(date +%s)
pids=()
for i in "${!NAMES[@]}"; do
    name=${NAMES[$i]}
    run=/tmp/bundled_$name
    rm -rf "$run"
    mkdir -p "$OUT/$name"
    python3 -m rawmamba.cli train --config "configs/bundled_$name.yaml" --device="$DEVICE" \
        --num_workers="${WORKERS[$i]}" --out_dir="$run" "$@" 2>&1 | tr '\r' '\n' > "$OUT/$name/train.log" &
    pids+=($!)
done
for i in "${!NAMES[@]}"; do
    wait "${pids[$i]}"
    name=${NAMES[$i]}
    run=/tmp/bundled_$name
    if [[ -f "$run/checkpoints/last.safetensors" ]]; then
        cp "$run/checkpoints/last.safetensors" "$OUT/$name/$name.safetensors"
        cp "$run/checkpoints/last.json" "$OUT/$name/$name.json"
        cp "$run/log.jsonl" "$run/config.yaml" "$OUT/$name/"
        echo "$name: $(tail -n 1 "$run/log.jsonl")"
    else
        echo "$name: training failed:"; tail -n 30 "$OUT/$name/train.log"
    fi
done
echo "wall time: $(( $(date +%s) - started )) s"
