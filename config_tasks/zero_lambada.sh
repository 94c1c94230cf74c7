#! /bin/bash
# Zero-shot LAMBADA (bidirectional: context in part A, last word generated at the mask).
# Expects ${DATA_ROOT}/lambada/lambada_test.jsonl (one {"text": ...} per line).
EXPERIMENT_NAME="zero-lambada"
TASK_NAME="lambda"
DATA_PATH="${DATA_ROOT:?set DATA_ROOT to the folder holding lambada/lambada_test.jsonl}/lambada/lambada_test.jsonl"
EVALUATE_ARGS="--eval-batch-size 16 \
               --seq-length 512"
