#!/usr/bin/env python
"""Tokenise corpora once into the lazy cache used by pretraining (same as ``python -m data_utils.preprocess``).

    python scripts/preprocess_corpus.py kjv --workers 4
    GLM_CORPORA=config/corpora.json python scripts/preprocess_corpus.py wikibook --block-lm \\
        --tokenizer-model-type bert-large-uncased --workers 16

See docs/data.md.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from data_utils.preprocess import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
