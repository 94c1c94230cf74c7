#! /bin/bash
# P-tuning variant of ds_finetune_superglue.sh: continuous prompt tokens (LSTM prompt encoder by
# default, --prompt-func to change it) in the pattern's prompt slots.
#
#   CHECKPOINT_PATH=/ckpt DATA_ROOT=/data SAVE_PATH=/save bash scripts/ds_finetune_superglue_prompt.sh \
#       config_tasks/model_blocklm_10B.sh config_tasks/task_rte.sh [extra finetune_glm.py flags]
set -euo pipefail
PROMPT_ARGS="--continuous-prompt --num-prompt-tokens ${NUM_PROMPT_TOKENS:-3}" \
    exec bash "$(dirname "$0")/ds_finetune_superglue.sh" "$@"
