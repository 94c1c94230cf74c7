#! /bin/bash
# Zero-shot multiple choice over JSONL files of {"inputs_pretokenized", "choices_pretokenized", "label"}:
#
#   CHECKPOINT_PATH=/ckpt DATA_PATH='/data/mc/*.jsonl' bash scripts/evaluate_multichoice.sh \
#       config_tasks/model_blocklm_10B.sh [--unidirectional] [extra finetune_glm.py flags]
#
# DATA_PATH: one or more files or glob patterns (space separated, quoted so the shell keeps the globs).
# SEQ_LENGTH (default: 512, or the model's --max-position-embeddings when smaller).
# NPROC_PER_NODE (default 1) ranks evaluate data-parallel; MP_SIZE (default 1) splits the model.
set -euo pipefail
if [ $# -lt 1 ]; then
    echo "usage: bash scripts/evaluate_multichoice.sh MODEL_CONFIG.sh [extra flags]" >&2
    exit 2
fi
model_config=$(realpath "$1"); shift
cd "$(dirname "$0")/.."
# shellcheck source=/dev/null
source "$model_config"
: "${DATA_PATH:?set DATA_PATH to the multiple-choice JSONL files (globs allowed)}"
NPROC_PER_NODE=${NPROC_PER_NODE:-1}
# SEQ_LENGTH: 512 as the released script, but never past the model's position table (a 128-position
# model gets 128); finetune_glm.py refuses a SEQ_LENGTH above --max-position-embeddings.
model_positions=$(sed -n 's/.*--max-position-embeddings[ =]\([0-9][0-9]*\).*/\1/p' <<< "$MODEL_ARGS" | head -n 1)
model_positions=${model_positions:-512}
SEQ_LENGTH=${SEQ_LENGTH:-$(( model_positions < 512 ? model_positions : 512 ))}
PRECISION=""
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then PRECISION="--fp16"; fi
set -f   # hand the globs to finetune_glm.py unexpanded
# shellcheck disable=SC2086
exec torchrun --nproc-per-node "$NPROC_PER_NODE" --master-port "${MASTER_PORT:-29500}" finetune_glm.py \
    --finetune \
    --experiment-name "multichoice-${MODEL_TYPE}" \
    --task multichoice \
    --test-data $DATA_PATH \
    --epochs 0 \
    --seq-length "$SEQ_LENGTH" \
    --eval-batch-size "${EVAL_BATCH_SIZE:-8}" \
    --model-parallel-size "${MP_SIZE:-1}" \
    --summary-dir "${SUMMARY_DIR:-.}" \
    $MODEL_ARGS $PRECISION "$@"
