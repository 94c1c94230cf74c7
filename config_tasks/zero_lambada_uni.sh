#! /bin/bash
# Zero-shot LAMBADA, unidirectional (only the first token bidirectional, the rest generated).
EXPERIMENT_NAME="zero-lambada-uni"
TASK_NAME="lambda"
DATA_PATH="${DATA_ROOT:?set DATA_ROOT to the folder holding lambada/lambada_test.jsonl}/lambada/lambada_test.jsonl"
EVALUATE_ARGS="--eval-batch-size 16 \
               --seq-length 512 \
               --unidirectional"
