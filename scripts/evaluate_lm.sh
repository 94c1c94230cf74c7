#! /bin/bash
# Zero-shot language modelling (LAMBADA accuracy, WikiText-103 / line-file perplexity):
#
#   CHECKPOINT_PATH=/ckpt DATA_ROOT=/data bash scripts/evaluate_lm.sh \
#       config_tasks/model_blocklm_large.sh config_tasks/zero_lambada.sh [extra finetune_glm.py flags]
#
# CHECKPOINT_PATH: folder holding the released checkpoints (read by the model config);
# DATA_ROOT: folder holding the evaluation files (read by the task config).
# NPROC_PER_NODE (default 1) ranks evaluate data-parallel; MP_SIZE (default 1) splits the model.
# Results: runs/<experiment>/test_results.json (SUMMARY_DIR to put runs/ elsewhere).
set -euo pipefail
if [ $# -lt 2 ]; then
    echo "usage: bash scripts/evaluate_lm.sh MODEL_CONFIG.sh TASK_CONFIG.sh [extra flags]" >&2
    exit 2
fi
model_config=$(realpath "$1"); task_config=$(realpath "$2"); shift 2
cd "$(dirname "$0")/.."
# shellcheck source=/dev/null
source "$model_config"
# shellcheck source=/dev/null
source "$task_config"
NPROC_PER_NODE=${NPROC_PER_NODE:-1}
PRECISION=""
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then PRECISION="--fp16"; fi
# shellcheck disable=SC2086
exec torchrun --nproc-per-node "$NPROC_PER_NODE" --master-port "${MASTER_PORT:-29500}" finetune_glm.py \
    --finetune \
    --experiment-name "${EXPERIMENT_NAME}-${MODEL_TYPE}" \
    --task "$TASK_NAME" \
    --valid-data "$DATA_PATH" \
    --model-parallel-size "${MP_SIZE:-1}" \
    --summary-dir "${SUMMARY_DIR:-.}" \
    $MODEL_ARGS $EVALUATE_ARGS $PRECISION "$@"
