#! /bin/bash
# XSum: the split JSON (XSum-TRAINING-DEV-TEST-SPLIT-90-5-5.json) with <id>.summary files, or {train,val,test}.{source,target}.
# Expects them under ${DATA_ROOT}/bbc-summary-data; sourced after a model config.
EXPERIMENT_NAME=${MODEL_TYPE}-xsum
TASK_NAME=xsum
DATA_PATH="${DATA_ROOT:?set DATA_ROOT to the folder holding the task data}/bbc-summary-data"

TRAIN_ARGS="--epochs 6 \
            --lr 1e-5 \
            --lr-decay-style linear \
            --warmup 0.06 \
            --weight-decay 1.0e-1 \
            --label-smoothing 0.1"

COMMON_ARGS="--save-interval 10000 \
             --log-interval 50 \
             --eval-interval 1000 \
             --eval-iters 100 \
             --eval-epoch 1"

TASK_ARGS="--src-seq-length 608 \
           --tgt-seq-length 60 \
           --min-tgt-length 10 \
           --length-penalty 1.0 \
           --no-repeat-ngram-size 3 \
           --num-beams 6 \
           --select-topk \
           --eval-batch-size 1"

BATCH_SIZE=8
