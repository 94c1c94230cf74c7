#! /bin/bash
# ROUGE of a seq2seq test run's predictions against its references:
#
#   bash scripts/evaluate_seq2seq.sh runs/<experiment>/test.jsonl.hyps runs/<experiment>/test.jsonl.refs \
#       [--retokenize cnn_dm|gigaword|cnn_dm_org] [--duplicate-rate 0.7] [--split-summaries]
#
# Prints one JSON line: rouge1, rouge2, rougeL, rougeLsum F1 x 100 (the original reported rouge-l =
# rougeLsum).  Both files are post-processed as the finetuning run scored them (tasks/seq2seq/metrics.py,
# through scripts/seq2seq_rouge.py):
# [SEP] splits sentences, --retokenize cnn_dm (default) applies the PTB rules meant for BERT-vocabulary
# output, cnn_dm_org leaves GPT-2 output alone, short and repeated predicted sentences are dropped.
# Uses the `rouge-score` package with the project's .venv python (PYTHON overrides it); unlike the
# original script it needs no Java, CoreNLP or files2rouge, so its numbers follow rouge-score's own
# tokenisation and can differ slightly from the official ROUGE-1.5.5 ones.
set -euo pipefail
if [ $# -lt 2 ]; then
    echo "usage: bash scripts/evaluate_seq2seq.sh HYPS REFS [--retokenize NAME] [--duplicate-rate R] [--split-summaries]" >&2
    exit 2
fi
hyps=$(realpath "$1"); refs=$(realpath "$2"); shift 2
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
exec "$PYTHON" scripts/seq2seq_rouge.py "$hyps" "$refs" "$@"
