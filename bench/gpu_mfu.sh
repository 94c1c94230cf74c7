#!/usr/bin/env bash
# Issue 18, item 4: the GPU figures in one command.  MFU (dense model FLOPs, glm.model.flops_per_token, over
# the vendor's dense bf16 peak, 989 TFLOP/s on H100/H200) of a full pretraining step (forward, loss on Part B,
# backward, clipping, fused AdamW with fp32 master weights; plain engine, bf16 autocast, compiled layers) for
#   * GLM-Large: 24 x 1024, 16 heads, vocabulary 30592, sequence 512, batch 32          target >= 45%
#   * a GLM-10B-shaped slice: 4 x 4096, 64 heads, vocabulary 50048, sequence 1024, batch 8   target >= 55%
# each with attention dropout 0.1 (as trained) and without dropout through FlexAttention (the fast option).
#
#   bash bench/gpu_mfu.sh              # needs one NVIDIA GPU; about 5-8 minutes on an H100
#   REPEATS=10 bash bench/gpu_mfu.sh   # more timed steps per figure (default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${GLM_VENV:-.venv}/bin/python"
"$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else "no CUDA device: the GPU figures are not measured")'
REPEATS="${REPEATS:-5}"
COMMON=(--dtype bf16 --compile --no-deepspeed --repeats "$REPEATS")
LARGE=(--layers 24 --hidden 1024 --heads 16 --vocab 30592 --seq 512 --batch 32)
SLICE=(--layers 4 --hidden 4096 --heads 64 --vocab 50048 --seq 1024 --batch 8)
for shape in LARGE SLICE; do
    declare -n dims="$shape"
    echo "== $shape, attention dropout 0.1, auto attention"
    "$PY" bench/bench_pretrain.py "${dims[@]}" "${COMMON[@]}"
    echo "== $shape, no dropout, FlexAttention"
    "$PY" bench/bench_pretrain.py "${dims[@]}" "${COMMON[@]}" --no-dropout --backend flex
done
