#! /bin/bash
# SQuAD question generation: {train,dev,test}.json in SQuAD format.
# Expects them under ${DATA_ROOT}/squad_generation; sourced after a model config.
EXPERIMENT_NAME=${MODEL_TYPE}-squad_generation
TASK_NAME=squad_generation
DATA_PATH="${DATA_ROOT:?set DATA_ROOT to the folder holding the task data}/squad_generation"

TRAIN_ARGS="--epochs 10 \
            --lr 2e-5 \
            --lr-decay-style linear \
            --warmup 0.06 \
            --weight-decay 1.0e-1"

COMMON_ARGS="--save-interval 10000 \
             --log-interval 50 \
             --eval-interval 1000 \
             --eval-iters 100 \
             --eval-epoch 1"

TASK_ARGS="--src-seq-length 464 \
           --tgt-seq-length 48 \
           --length-penalty 0.7 \
           --num-beams 5 \
           --select-topk \
           --eval-batch-size 1"

BATCH_SIZE=16
