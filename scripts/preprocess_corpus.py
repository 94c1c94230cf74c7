#!/usr/bin/env python
"""Tokenise corpora once into the lazy cache used by pretraining (see docs/data.md).

    python scripts/preprocess_corpus.py kjv --workers 2
    python scripts/preprocess_corpus.py wikibook cc-news --corpus-registry config/corpora.json \\
        --tokenizer-type BertWordPieceTokenizer --tokenizer-model-type bert-large-uncased --block-lm --workers 8
    python scripts/preprocess_corpus.py data/my_corpus.jsonl --cache-dir /fast/cache

The tokenizer flags are GLM's own (``--tokenizer-type``, ``--tokenizer-model-type``, ``--block-lm``, ...), so
the cache matches the training run that uses the same flags.  This program owns the command line only;
the caches are built by :func:`data_utils.preprocess.build_cache`.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from typing import Optional, Sequence

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from data_utils import prepare_tokenizer  # noqa: E402
from data_utils.corpora import CorpusError, CorpusRegistry  # noqa: E402
from data_utils.lazy import LazyFormatError  # noqa: E402
from data_utils.preprocess import PreprocessError, build_cache  # noqa: E402
from glm.arguments import build_parser, get_args  # noqa: E402
from glm.config import build_config  # noqa: E402


def _parser() -> argparse.ArgumentParser:
    parser = build_parser()
    parser.prog = 'scripts/preprocess_corpus.py'
    parser.description = ('Tokenise corpora once into the lazy cache used by pretraining. Tokenizer flags are '
                          "GLM's own; pass the same ones (including --block-lm) as the training run.")
    group = parser.add_argument_group('preprocess', 'Options of the preprocessing command.')
    group.add_argument('corpora', nargs='*', metavar='CORPUS',
                       help='Registry names or paths of .jsonl/.json/.txt files or directories '
                            '(--train-data is used when none is given).')
    group.add_argument('--workers', type=int, default=min(8, os.cpu_count() or 1),
                       help='Tokenizer worker processes (1 = in this process).')
    group.add_argument('--force', action='store_true', help='Rebuild caches that already exist.')
    group.add_argument('--output', default=None,
                       help='Cache directory to write (only with a single corpus; default: the usual place).')
    group.add_argument('--no-progress', action='store_true', help='No progress bar.')
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Returns the exit status."""
    parser = _parser()

    def _terminate(signum, frame):  # a SIGTERM'd run cleans its temporary directory like Ctrl-C
        raise KeyboardInterrupt
    try:
        previous = signal.signal(signal.SIGTERM, _terminate)
    except (ValueError, OSError):  # not the main thread
        previous = None
    try:
        return _main(parser, argv)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _main(parser, argv) -> int:
    args = get_args(argv, parser=parser)
    names = list(args.corpora) or list(args.train_data or [])
    if not names:
        parser.error('name at least one corpus (positional CORPUS or --train-data)')
    if args.output and len(names) != 1:
        parser.error('--output needs exactly one corpus')
    if args.workers < 1:
        parser.error('--workers must be at least 1')
    try:
        registry = CorpusRegistry.from_env(args.corpus_registry)
        specs = [registry.resolve(name, cache_dir=args.cache_dir) for name in names]
        for spec in specs:  # fail fast, before the tokenizer is built
            spec.files()
        tokenizer = prepare_tokenizer(build_config(args))
        for spec in specs:
            summary = build_cache(spec, tokenizer, cache_path=args.output, workers=args.workers,
                                  pre_tokenize=not args.no_pre_tokenize, progress=not args.no_progress,
                                  force=args.force)
            print(summary.format(), flush=True)
    except (CorpusError, PreprocessError, LazyFormatError) as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print('interrupted; no partial cache was left under its final name', file=sys.stderr)
        return 130
    return 0


if __name__ == '__main__':
    sys.exit(main())
