#! /bin/bash
# Finetune GLM on a seq2seq task (summarisation, question generation, extractive QA as generation,
# blank filling, your own source/target files) with plain PyTorch (torchrun, data parallel), then
# decode the test set and score it:
#
#   CHECKPOINT_PATH=/ckpt DATA_ROOT=/data [SAVE_PATH=/save] bash scripts/finetune_seq2seq.sh \
#       config_tasks/model_blocklm_large_generation.sh config_tasks/seq_cnndm_org.sh [extra flags]
#
# Predictions: runs/<experiment>/test.jsonl.hyps and .refs (score them again with
# scripts/evaluate_seq2seq.sh); metrics in runs/<experiment>/test_results.json.
set -euo pipefail
# shellcheck source=scripts/finetune_common.sh
source "$(dirname "$0")/finetune_common.sh"
# shellcheck disable=SC2086
exec torchrun --nproc-per-node "$N_GPU" --master-port "${MASTER_PORT:-29500}" finetune_glm.py "${TASK_FLAGS[@]}" \
    --checkpoint-activations \
    --num-workers 1 \
    --no-load-lr-scheduler \
    --batch-size $(( ${BATCH_SIZE:-8} / N_GPU > 0 ? ${BATCH_SIZE:-8} / N_GPU : 1 )) \
    $SAVE_ARGS $MODEL_ARGS $TRAIN_ARGS $COMMON_ARGS $TASK_ARGS $PRECISION "${EXTRA_ARGS[@]}"
