#! /bin/bash
# DeepSpeed variant of finetune_seq2seq.sh (the 10B recipe: ZeRO-2 with optimizer offload, micro
# batch 4; the JSON config_tasks/config_blocklm_10B_cnndm.json, or DS_CONFIG, wins over the flags).
# HOST_FILE_PATH (optional) and NUM_WORKERS spread it over nodes, as the original:
#
#   CHECKPOINT_PATH=/ckpt DATA_ROOT=/data SAVE_PATH=/save bash scripts/ds_finetune_seq2seq.sh \
#       config_tasks/model_blocklm_10B.sh config_tasks/seq_cnndm_org.sh [extra flags]
set -euo pipefail
# shellcheck source=scripts/finetune_common.sh
source "$(dirname "$0")/finetune_common.sh"
launcher=(deepspeed --num_nodes "${NUM_WORKERS:-1}" --num_gpus "$N_GPU" --master_port "${MASTER_PORT:-29500}")
if [ -n "${HOST_FILE_PATH:-}" ]; then launcher+=(--hostfile "$HOST_FILE_PATH"); fi
# shellcheck disable=SC2086
exec "${launcher[@]}" finetune_glm.py "${TASK_FLAGS[@]}" \
    --deepspeed \
    --deepspeed_config "${DS_CONFIG:-config_tasks/config_blocklm_10B_cnndm.json}" \
    --checkpoint-activations \
    --num-workers 1 \
    --no-load-lr-scheduler \
    $SAVE_ARGS $MODEL_ARGS $TRAIN_ARGS $COMMON_ARGS $TASK_ARGS $PRECISION "${EXTRA_ARGS[@]}"
