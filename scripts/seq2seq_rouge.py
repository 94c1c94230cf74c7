#!/usr/bin/env python
"""ROUGE of a seq2seq run's line-aligned prediction and reference files, with the original's post-processing.

    python scripts/seq2seq_rouge.py runs/<experiment>/test.jsonl.hyps runs/<experiment>/test.jsonl.refs \\
        [--retokenize cnn_dm|gigaword|cnn_dm_org] [--duplicate-rate 0.7] [--split-summaries]

Prints one JSON line (rouge1, rouge2, rougeL, rougeLsum F1 x 100); ``scripts/evaluate_seq2seq.sh`` runs it.
This program owns the command line only; the scoring is :func:`tasks.seq2seq.metrics.rouge_from_files`.
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tasks.jsonl import TaskDataError  # noqa: E402
from tasks.seq2seq.metrics import DUPLICATE_RATE, rouge_from_files  # noqa: E402
from tasks.seq2seq.retokenize import PTB_RULES, RETOKENIZERS  # noqa: E402


def main(argv=None):
    """Print ROUGE F1 (x100) of the two files as JSON; returns the exit status."""
    parser = argparse.ArgumentParser(description="ROUGE of line-aligned prediction and reference files "
                                                 "(test.jsonl.hyps / test.jsonl.refs), with the original "
                                                 "GLM post-processing.")
    parser.add_argument("hyps")
    parser.add_argument("refs")
    parser.add_argument("--retokenize", default=PTB_RULES, choices=RETOKENIZERS,
                        help="cnn_dm: PTB rules (BERT-vocabulary models, default); gigaword: only [UNK] -> UNK; "
                             "cnn_dm_org: none (GPT-2 vocabulary models)")
    parser.add_argument("--duplicate-rate", type=float, default=DUPLICATE_RATE,
                        help="drop a predicted sentence when more than this share of its words was seen "
                             "(1 disables)")
    parser.add_argument("--split-summaries", action="store_true",
                        help="also split sentences with NLTK for rougeLsum (needs NLTK punkt data)")
    args = parser.parse_args(argv)
    try:
        scores = rouge_from_files(args.hyps, args.refs, args.retokenize, args.duplicate_rate, args.split_summaries)
    except (TaskDataError, ValueError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(json.dumps({name: round(100 * value, 2) for name, value in scores.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
