#! /bin/bash
# Zero-shot WikiText-103 perplexity: windows of 1024 tokens moving by 256, detokenised text.
# Needs a model whose position table covers the windows (--max-position-embeddings 1024, e.g. GLM-10B);
# for 512-position models pass --seq-length 512 after the config.
EXPERIMENT_NAME="zero-wikitext"
TASK_NAME="wikitext"
DATA_PATH="${DATA_ROOT:?set DATA_ROOT to the folder holding wikitext-103/wiki.test.tokens}/wikitext-103/wiki.test.tokens"
EVALUATE_ARGS="--eval-batch-size 16 \
               --seq-length 1024 \
               --overlapping-eval 256"
