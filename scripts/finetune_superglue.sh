#! /bin/bash
# Finetune GLM on a SuperGLUE / CLUE task with plain PyTorch (torchrun, data parallel):
#
#   CHECKPOINT_PATH=/ckpt DATA_ROOT=/data [SAVE_PATH=/save] bash scripts/finetune_superglue.sh \
#       config_tasks/model_blocklm_large.sh config_tasks/task_rte.sh [extra finetune_glm.py flags]
#
# The task config's BATCH_SIZE is the global batch, split over N_GPU ranks (scripts/finetune_common.sh).
# Metrics and predictions: runs/<experiment>/ (SUMMARY_DIR to put runs/ elsewhere).
set -euo pipefail
# shellcheck source=scripts/finetune_common.sh
source "$(dirname "$0")/finetune_common.sh"
# shellcheck disable=SC2086
exec torchrun --nproc-per-node "$N_GPU" --master-port "${MASTER_PORT:-29500}" finetune_glm.py "${TASK_FLAGS[@]}" \
    --cloze-eval \
    --seq-length "$MAX_SEQ_LEN" \
    --eval-batch-size 16 \
    --save-epoch 100000 \
    --batch-size $((BATCH_SIZE / N_GPU)) \
    --epochs "$EPOCH_SINGLE" \
    --lr "$LR_SINGLE" \
    $SAVE_ARGS $MODEL_ARGS $TRAIN_ARGS $COMMON_ARGS $PRECISION "${EXTRA_ARGS[@]}"
