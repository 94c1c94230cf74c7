#! /bin/bash
# SQuAD 1.1 extractive QA as generation: train-v1.1.json, dev-v1.1.json.
# Expects them under ${DATA_ROOT}/squad; sourced after a model config.
EXPERIMENT_NAME=${MODEL_TYPE}-squad_v1
TASK_NAME=squad_v1
DATA_PATH="${DATA_ROOT:?set DATA_ROOT to the folder holding the task data}/squad"

TRAIN_ARGS="--epochs 10 \
            --lr 1e-5 \
            --lr-decay-style linear \
            --warmup 0.06 \
            --weight-decay 1.0e-1 \
            --validation-metric F1"

COMMON_ARGS="--save-interval 10000 \
             --log-interval 50 \
             --eval-interval 1000 \
             --eval-iters 100 \
             --eval-epoch 1"

TASK_ARGS="--src-seq-length 512 \
           --tgt-seq-length 64 \
           --length-penalty 0.0 \
           --num-beams 5 \
           --select-topk \
           --eval-batch-size 1"

BATCH_SIZE=12
