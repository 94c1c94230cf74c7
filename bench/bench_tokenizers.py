"""Tokens per second of the reference (pure Python) and fast (Rust + word cache) tokenizer paths.

    python bench/bench_tokenizers.py [--corpus PATH.jsonl] [--docs N]

Encodes every document of the corpus (default: en_moby_dick.jsonl from ../shared/assets/corpora, or
$GLM_SHARED_DIR/assets/corpora) with EncodeAsIds, twice per tokenizer: pass 1 starts from a fresh tokenizer
(cold caches: the reference GPT-2 BPE cache, the fast path's word cache), pass 2 reuses it (warm). The
"rust alone" row runs the Hugging Face pipeline on whole documents with no cache and no checks, to show
what the library gives by itself. Checks that both paths produce the same ids, then prints a table last.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from anywhere

from data_utils.tokenizers import make_tokenizer  # noqa: E402

CONFIGS = [('BERT bert-large-uncased', 'BertWordPieceTokenizer', 'bert-large-uncased'),
           ('GPT-2 gpt2', 'GPT2BPETokenizer', 'gpt2')]


def default_corpus() -> Path:
    shared = Path(os.environ.get('GLM_SHARED_DIR') or ROOT.parent / 'shared')
    return shared / 'assets' / 'corpora' / 'en_moby_dick.jsonl'


def timed_pass(encode, docs):
    start = time.perf_counter()
    out = [encode(d) for d in docs]
    return out, time.perf_counter() - start


def bench_config(label, tokenizer_type, model_type, docs):
    rows = []
    results = {}
    for path in ('reference', 'fast'):
        tok = make_tokenizer(tokenizer_type, model_type, fast=(path == 'fast'), add_block_symbols=True,
                             add_task_mask=True)
        tok.EncodeAsIds('x')  # one-time set-up (the reference GPT-2 regex tables) is not what we time
        for run in ('1 cold', '2 warm'):
            ids, seconds = timed_pass(lambda d: tok.EncodeAsIds(d).tokenization, docs)
            rows.append([label, path, run, sum(map(len, ids)), seconds])
            results[path] = ids
        if path == 'fast':
            hf = tok.text_tokenizer.hf
            _, seconds = timed_pass(lambda d: hf.encode(d).ids, docs)
            rows.append([label, 'rust alone', '-', rows[-1][3], seconds])
    same = results['reference'] == results['fast']
    return rows, same


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--corpus', type=Path, default=default_corpus())
    parser.add_argument('--docs', type=int, default=0, help='use only the first N documents (0: all)')
    args = parser.parse_args(argv)
    if not args.corpus.is_file():
        sys.exit(f'corpus not found: {args.corpus} (pass --corpus or set GLM_SHARED_DIR)')
    docs = [json.loads(line)['text'] for line in args.corpus.read_text(encoding='utf-8').splitlines() if line]
    if args.docs:
        docs = docs[:args.docs]
    import tokenizers
    print(f'corpus {args.corpus.name}: {len(docs)} documents, {sum(map(len, docs))} characters')
    print(f'python {platform.python_version()}, tokenizers {tokenizers.__version__}, {os.cpu_count()} CPUs, '
          f'load average {os.getloadavg()[0]:.2f}')
    table, all_same = [], True
    for label, tokenizer_type, model_type in CONFIGS:
        rows, same = bench_config(label, tokenizer_type, model_type, docs)
        all_same &= same
        print(f'{label}: fast ids identical to reference ids on every document: {same}')
        table.extend(rows)
    reference_speed = {(r[0], r[2]): r[3] / r[4] for r in table if r[1] == 'reference'}
    print()
    print(f'{"tokenizer":<24} {"path":<11} {"pass":<7} {"tokens":>8} {"seconds":>8} {"tokens/s":>10} {"vs ref":>7}')
    for label, path, run, tokens, seconds in table:
        speed = tokens / seconds
        ref = reference_speed.get((label, run), reference_speed[(label, '1 cold')])
        print(f'{label:<24} {path:<11} {run:<7} {tokens:>8} {seconds:>8.3f} {speed:>10,.0f} {speed / ref:>6.1f}x')
    return 0 if all_same else 1


if __name__ == '__main__':
    sys.exit(main())
