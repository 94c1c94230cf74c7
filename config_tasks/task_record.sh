#! /bin/bash
# ReCoRD: every entity is a candidate answer (multi-token cloze; metrics EM and F1).
# Expects ${DATA_ROOT}/ReCoRD/{train,val,test}.jsonl (SuperGLUE JSON lines); sourced after a model config.
EXPERIMENT_NAME=${MODEL_TYPE}-record
TASK_NAME=ReCoRD
DATA_PATH="${DATA_ROOT:?set DATA_ROOT to the folder holding the task data}/ReCoRD"
MAX_SEQ_LEN=512

LR_SINGLE=1e-5
EPOCH_SINGLE=5
XXLARGE_EPOCH=3

TRAIN_ARGS="--lr-decay-style linear \
            --warmup 0.1 \
            --weight-decay 1.0e-1 \
            --pattern-id 0"

COMMON_ARGS="--save-interval 10000 \
             --log-interval 20 \
             --eval-interval 1000 \
             --eval-iters 100"

PATTERN_IDS=(0)
PROMPT_IDS=(1 2 3)

BATCH_SIZE=64
