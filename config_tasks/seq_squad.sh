#! /bin/bash
# SQuAD 2.0 extractive QA as generation (N/A when unanswerable): train-v2.0.json, dev-v2.0.json.
# (The original routed --task squad to the cloze driver by mistake; here it reaches seq2seq.)
# Expects them under ${DATA_ROOT}/squad; sourced after a model config.
EXPERIMENT_NAME=${MODEL_TYPE}-squad
TASK_NAME=squad
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
