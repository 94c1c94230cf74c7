#! /bin/bash
# Finetune GLM on a SuperGLUE / CLUE task with DeepSpeed (the 10B recipe: ZeRO-2, optimizer offload):
#
#   CHECKPOINT_PATH=/ckpt DATA_ROOT=/data SAVE_PATH=/save bash scripts/ds_finetune_superglue.sh \
#       config_tasks/model_blocklm_10B.sh config_tasks/task_copa.sh [extra finetune_glm.py flags]
#
# Differences from the original script: the task's own --pattern-id is honoured (the original
# appended --pattern-id 0 after the task flags, so every task silently ran pattern 0; pass
# --pattern-id 0 yourself to reproduce that), and checkpoints go to SAVE_PATH, not into the
# pretrained checkpoint folder.  DS_CONFIG overrides the DeepSpeed JSON (ReCoRD uses
# config_tasks/config_blocklm_10B_record.json by default); its micro batch, accumulation and
# optimizer settings win over the flags, and the run prints which values it took.
set -euo pipefail
# shellcheck source=scripts/finetune_common.sh
source "$(dirname "$0")/finetune_common.sh"
default_json=config_tasks/config_blocklm_10B.json
if [ "${TASK_NAME,,}" = "record" ]; then default_json=config_tasks/config_blocklm_10B_record.json; fi
# shellcheck disable=SC2086
exec deepspeed --num_nodes 1 --num_gpus "$N_GPU" --master_port "${MASTER_PORT:-29500}" finetune_glm.py "${TASK_FLAGS[@]}" \
    --deepspeed \
    --deepspeed_config "${DS_CONFIG:-$default_json}" \
    --cloze-eval \
    --seq-length "$MAX_SEQ_LEN" \
    --checkpoint-activations \
    --eval-batch-size 16 \
    --save-epoch 100000 \
    --num-workers 1 \
    --no-load-optim \
    --no-load-lr-scheduler \
    --epochs "$XXLARGE_EPOCH" \
    $SAVE_ARGS $MODEL_ARGS $TRAIN_ARGS $COMMON_ARGS $PRECISION ${PROMPT_ARGS:-} "${EXTRA_ARGS[@]}"
