#! /bin/bash
# Blank infilling (Yahoo answers): {train,valid,test}.txt and blank/test.maskratio0.1.blank; masks filled left to right.
# Expects them under ${DATA_ROOT}/blank_yahoo; sourced after a model config.
EXPERIMENT_NAME=${MODEL_TYPE}-blank
TASK_NAME=blank
DATA_PATH="${DATA_ROOT:?set DATA_ROOT to the folder holding the task data}/blank_yahoo"

TRAIN_ARGS="--epochs 5 \
            --lr 1e-5 \
            --lr-decay-style linear \
            --warmup 0.06 \
            --weight-decay 1.0e-1 \
            --blank-maskratio 0.1"

COMMON_ARGS="--save-interval 10000 \
             --log-interval 50 \
             --eval-interval 1000 \
             --eval-iters 100 \
             --eval-epoch 1"

TASK_ARGS="--src-seq-length 256 \
           --tgt-seq-length 200 \
           --length-penalty 1.0 \
           --no-repeat-ngram-size 3 \
           --num-beams 1 \
           --select-topk \
           --eval-batch-size 1"

BATCH_SIZE=16
