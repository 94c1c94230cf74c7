#! /bin/bash
# Zero-shot perplexity over a one-document-per-line file (e.g. a held-out Wikipedia+BookCorpus split).
# Expects ${DATA_ROOT}/lm/test.txt, or LM_TEST_FILE.
EXPERIMENT_NAME="zero-lm"
TASK_NAME="language_model"
DATA_PATH="${LM_TEST_FILE:-${DATA_ROOT:?set DATA_ROOT to the folder holding lm/test.txt (or LM_TEST_FILE)}/lm/test.txt}"
EVALUATE_ARGS="--eval-batch-size 16 \
               --seq-length 512 \
               --overlapping-eval 256"
