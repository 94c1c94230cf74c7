#! /bin/bash
# Zero-shot perplexity over a one-document-per-line file, unidirectional windows.
EXPERIMENT_NAME="zero-lm-uni"
TASK_NAME="language_model"
DATA_PATH="${LM_TEST_FILE:-${DATA_ROOT:?set DATA_ROOT to the folder holding lm/test.txt (or LM_TEST_FILE)}/lm/test.txt}"
EVALUATE_ARGS="--eval-batch-size 16 \
               --seq-length 512 \
               --overlapping-eval 256 \
               --unidirectional"
