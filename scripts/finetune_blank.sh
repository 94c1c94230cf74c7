#! /bin/bash
# Finetune GLM on blank infilling (the Yahoo blank data): spans covering MASK_RATIO of the words
# (default 0.1) become masks and are generated left to right.
#
#   CHECKPOINT_PATH=/ckpt DATA_ROOT=/data [SAVE_PATH=/save] [MASK_RATIO=0.1] bash scripts/finetune_blank.sh \
#       config_tasks/model_blocklm_large.sh config_tasks/seq_blank.sh [extra flags]
set -euo pipefail
exec bash "$(dirname "$0")/finetune_seq2seq.sh" "$@" --blank-maskratio "${MASK_RATIO:-0.1}"
