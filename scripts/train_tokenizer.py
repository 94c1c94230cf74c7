"""Train a SentencePiece tokenizer (with the GLM command tokens) on a corpus.

    python scripts/train_tokenizer.py --corpus kjv --vocab-size 8000 --output runs/demo/tokenizer

writes ``runs/demo/tokenizer.model`` (and ``.vocab``); use it with
``--tokenizer-type SentencePieceTokenizer --tokenizer-path runs/demo/tokenizer.model``.  ``--corpus`` takes
a registry name (``kjv`` is built in; others come from ``$GLM_CORPORA``) or a .jsonl/.json/.txt path.
An existing model is kept unless ``--force``.
"""

import argparse
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from data_utils.corpora import CorpusError, Document, resolve_corpus, iter_documents  # noqa: E402
from data_utils.tokenizers.sentencepiece_tokenizer import train_sentencepiece  # noqa: E402

# SentencePiece skips "sentences" longer than 4192 bytes: feed it sentence-sized pieces.
_SENTENCE_END = re.compile(r"(?<=[.!?;:。！？；])\s+")


def sentences(corpus, limit):
    count = 0
    for _, _, doc in iter_documents(resolve_corpus(corpus)):
        if not isinstance(doc, Document):
            continue
        for sentence in _SENTENCE_END.split(doc.prompt + doc.text):
            sentence = sentence.strip()
            if sentence:
                yield sentence[:4000]
                count += 1
                if limit and count >= limit:
                    return


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", default="kjv", help="registry name or file path (default: kjv)")
    parser.add_argument("--vocab-size", type=int, default=8000)
    parser.add_argument("--model-type", default="unigram", choices=["unigram", "bpe", "char", "word"])
    parser.add_argument("--max-sentences", type=int, default=200_000, help="0 = every sentence")
    parser.add_argument("--output", required=True, help="model prefix: writes PREFIX.model and PREFIX.vocab")
    parser.add_argument("--force", action="store_true", help="retrain even if PREFIX.model exists")
    opts = parser.parse_args(argv)
    model = opts.output + ".model"
    if os.path.exists(model) and not opts.force:
        print(f"tokenizer {model} exists; keeping it (--force retrains)")
        return 0
    try:
        path = train_sentencepiece(sentences(opts.corpus, opts.max_sentences), opts.output,
                                   vocab_size=opts.vocab_size, model_type=opts.model_type)
    except CorpusError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
