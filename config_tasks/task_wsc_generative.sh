#! /bin/bash
# WSC, generative variant: the referent is generated at the mask (LM loss on the gold span);
# a prediction is True when the model reproduces span1 greedily.
# Expects ${DATA_ROOT}/WSC/{train,val,test}.jsonl (SuperGLUE JSON lines); sourced after a model config.
EXPERIMENT_NAME=${MODEL_TYPE}-wsc_generative
TASK_NAME=wsc
DATA_PATH="${DATA_ROOT:?set DATA_ROOT to the folder holding the task data}/WSC"
MAX_SEQ_LEN=128

LR_SINGLE=1e-5
EPOCH_SINGLE=50
XXLARGE_EPOCH=100

TRAIN_ARGS="--lr-decay-style linear \
            --warmup 0.1 \
            --weight-decay 1.0e-1 \
            --pattern-id 2"

COMMON_ARGS="--save-interval 10000 \
             --log-interval 20 \
             --eval-interval 1000 \
             --eval-iters 100"

PATTERN_IDS=(0 1 2)
PROMPT_IDS=(1 2 3)

BATCH_SIZE=16
