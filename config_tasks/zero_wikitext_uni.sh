#! /bin/bash
# Zero-shot WikiText-103 perplexity, unidirectional windows.
EXPERIMENT_NAME="zero-wikitext-uni"
TASK_NAME="wikitext"
DATA_PATH="${DATA_ROOT:?set DATA_ROOT to the folder holding wikitext-103/wiki.test.tokens}/wikitext-103/wiki.test.tokens"
EVALUATE_ARGS="--eval-batch-size 16 \
               --seq-length 1024 \
               --overlapping-eval 256 \
               --unidirectional"
