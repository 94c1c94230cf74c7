"""Tokens per second of the reference (pure Python) and fast (chunk cache + Rust) tokenizer paths, and
whether they give identical ids.

    python bench/bench_tokenizers.py                  # en_moby_dick.jsonl, BERT and GPT-2
    python bench/bench_tokenizers.py --all-corpora    # also: every English corpus, whole, ids compared
    python bench/bench_tokenizers.py --steady         # also: after another corpus (a long preprocessing run)
    python bench/bench_tokenizers.py --corpus my.jsonl --repeats 3 --docs 50

Paths: "reference" (pure Python), "fast" (the compiled helper in front of the Python fast path, when the
helper builds here; the run says whether it does) and "fast, Python only" (the fast path without it).

Speed (on --corpus, default en_moby_dick.jsonl from ../shared/assets/corpora or $GLM_SHARED_DIR/assets/corpora):
each repeat builds a fresh tokenizer of each path and encodes every document with EncodeAsIds twice. Pass
"cold" is the first pass of a fresh object: every cache it has starts empty (the fast path's chunk and
piece caches, and the reference GPT-2 BPE cache, which makes the reference's own second pass faster too).
Pass "warm" is the second pass of the same object. Each is compared with the reference's pass of the same
kind. With --steady, pass "steady" is the first pass over --corpus of a fresh tokenizer that has just
encoded another corpus (--steady-corpus, default en_austen_chapters.jsonl; not timed): the situation of a
tokenizer deep into preprocessing a long corpus, whose caches hold many chunks but not this text's own.
Per-vocabulary tables built once per process (the reference GPT-2 regular expression, the Rust
objects, the fast path's table of whole tokens) are not text-dependent and are built before timing; their
one-off cost is printed as "set-up". Repeats alternate the two paths so machine noise hits both; the
table shows medians. Python runs on one thread; the rows "rust whole docs" run the Hugging Face pipeline
alone on whole documents (no cache, no checks), one `encode` per document (one thread) and one
`encode_batch` (Rust threads, as many as CPUs unless RAYON_NUM_THREADS says otherwise), to show what the
library gives by itself.

--all-corpora: every English corpus of the shared assets, whole (KJV verses grouped into chapters as the
`kjv` reader does), through a fresh tokenizer of each path in one pass (the preprocessing case: caches
start empty and fill as the corpus goes), for BERT, GPT-2 and, when roberta-vocab.json is in the shared
vocabulary folder, RoBERTa. Every document's ids are compared.

Exit status 1 when any document's ids differ between the paths.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from anywhere

from bench.common import print_table  # noqa: E402
from data_utils.tokenizers import make_tokenizer  # noqa: E402

CONFIGS = [('BERT', 'BertWordPieceTokenizer', 'bert-large-uncased'), ('GPT-2', 'GPT2BPETokenizer', 'gpt2')]
ROBERTA = ('RoBERTa', 'GPT2BPETokenizer', 'roberta')


def shared_dir() -> Path:
    return Path(os.environ.get('GLM_SHARED_DIR') or ROOT.parent / 'shared')


def read_documents(path: Path) -> list[str]:
    """The documents of a JSON-lines corpus: the `text` of each line; KJV verses (lines with `book` and
    `chapter`) grouped by chapter, stripped and joined with single spaces, as data_utils.corpora's reader."""
    rows = [json.loads(line) for line in path.read_text(encoding='utf-8').splitlines() if line.strip()]
    if not rows or 'book' not in rows[0] or 'chapter' not in rows[0]:
        return [row['text'] for row in rows]
    docs, key, verses = [], None, []
    for row in rows:
        if (row['book'], row['chapter']) != key and verses:
            docs.append(' '.join(verses))
            verses = []
        key = (row['book'], row['chapter'])
        if row['text'].strip():
            verses.append(row['text'].strip())
    if verses:
        docs.append(' '.join(verses))
    return docs


PATHS = ('reference', 'fast', 'fast, Python only')


def build(tokenizer_type: str, model_type: str, path: str, vocab_dir: Path = None):
    """A tokenizer of one of PATHS: 'reference', 'fast' (with the compiled helper when it builds) or
    'fast, Python only' (the fast path without the helper)."""
    kwargs = {} if vocab_dir is None else {'tokenizer_path': str(vocab_dir)}
    tokenizer = make_tokenizer(tokenizer_type, model_type, fast=path != 'reference', add_block_symbols=True,
                               add_task_mask=True, **kwargs)
    if path == 'fast, Python only':
        tokenizer.text_tokenizer._native = None
    return tokenizer


def encode_all(tokenizer, docs):
    start = time.perf_counter()
    ids = [tokenizer.EncodeAsIds(d).tokenization for d in docs]
    return ids, time.perf_counter() - start


def set_up_seconds(tokenizer_type, model_type, path):
    """The first tokenizer of a path in this process, with the per-vocabulary tables it builds."""
    start = time.perf_counter()
    build(tokenizer_type, model_type, path).EncodeAsIds('set up')
    first = time.perf_counter() - start
    start = time.perf_counter()
    build(tokenizer_type, model_type, path)
    return first, time.perf_counter() - start


def speed(label, tokenizer_type, model_type, docs, repeats, steady_docs=None):
    """Rows (label, path, pass, tokens, median seconds) and whether the paths' ids agree everywhere."""
    for path in PATHS[:2]:
        first, later = set_up_seconds(tokenizer_type, model_type, path)
        print(f'{label} {path}: set-up {first:.2f} s for the first tokenizer in the process (the fast path: '
              f'with the build or load of the compiled helper), {later:.3f} s for a later one')
    native = build(tokenizer_type, model_type, 'fast').text_tokenizer._native is not None
    print(f'{label}: the compiled helper is {"in use" if native else "NOT available: both fast rows are Python only"}')
    runs = ('cold', 'warm') + (('steady',) if steady_docs else ())
    times = {(path, run): [] for path in PATHS for run in runs}
    ids = {}
    for _ in range(repeats):
        for path in PATHS:
            tokenizer = build(tokenizer_type, model_type, path)
            ids[path], seconds = encode_all(tokenizer, docs)
            times[path, 'cold'].append(seconds)
            _, seconds = encode_all(tokenizer, docs)
            times[path, 'warm'].append(seconds)
            if steady_docs:
                tokenizer = build(tokenizer_type, model_type, path)
                encode_all(tokenizer, steady_docs)
                steady_ids, seconds = encode_all(tokenizer, docs)
                times[path, 'steady'].append(seconds)
                assert steady_ids == ids[path], f'{label} {path}: ids after another corpus differ'
    tokens = sum(map(len, ids['reference']))
    rows = [(label, path, run, tokens, statistics.median(t)) for (path, run), t in times.items()]
    same = ids['fast'] == ids['reference'] == ids['fast, Python only']
    print(f'{label}: fast ids (with and without the helper) identical to reference ids on every document: {same}')

    # What the Rust library gives alone, on whole documents (its ids are not checked against anything).
    hf = build(tokenizer_type, model_type, 'fast').text_tokenizer.hf
    threads = os.environ.get('RAYON_NUM_THREADS') or os.cpu_count()
    for what, run in (('1 thread', lambda: [hf.encode(d).ids for d in docs]),
                      (f'batch, {threads} thr', lambda: [e.ids for e in hf.encode_batch(docs)])):
        seconds = []
        for _ in range(repeats):
            start = time.perf_counter()
            out = run()
            seconds.append(time.perf_counter() - start)
        rows.append((label, 'rust whole docs', what, sum(map(len, out)), statistics.median(seconds)))
        print(f'{label} rust whole docs ({what}): ids equal to the reference: {out == ids["reference"]}')
    return rows, same


def all_corpora(configs, vocab_dir):
    """Rows (corpus, label, docs, tokens, differing docs, reference s, fast s), each path one cold pass."""
    corpora = sorted((shared_dir() / 'assets' / 'corpora').glob('en_*.jsonl'))
    if not corpora:
        sys.exit(f'no English corpora under {shared_dir() / "assets" / "corpora"} (set GLM_SHARED_DIR)')
    rows = []
    for path in corpora:
        docs = read_documents(path)
        for label, tokenizer_type, model_type in configs:
            ref_ids, ref_s = encode_all(build(tokenizer_type, model_type, 'reference', vocab_dir), docs)
            fast_ids, fast_s = encode_all(build(tokenizer_type, model_type, 'fast', vocab_dir), docs)
            differing = sum(a != b for a, b in zip(ref_ids, fast_ids))
            rows.append((path.name, label, len(docs), sum(map(len, ref_ids)), differing, ref_s, fast_s))
            print(f'{path.name} {label}: {len(docs)} documents, {sum(map(len, ref_ids)):,} tokens, '
                  f'{differing} with different ids; reference {ref_s:.2f} s, fast {fast_s:.2f} s', flush=True)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--corpus', type=Path, default=shared_dir() / 'assets' / 'corpora' / 'en_moby_dick.jsonl')
    parser.add_argument('--docs', type=int, default=0, help='use only the first N documents (0: all)')
    parser.add_argument('--repeats', type=int, default=5, help='fresh tokenizers per path (median reported)')
    parser.add_argument('--steady', action='store_true',
                        help='also time --corpus on fresh tokenizers that have first encoded --steady-corpus')
    parser.add_argument('--steady-corpus', type=Path,
                        default=shared_dir() / 'assets' / 'corpora' / 'en_austen_chapters.jsonl')
    parser.add_argument('--all-corpora', action='store_true',
                        help='also compare the ids of both paths over every English corpus, whole')
    args = parser.parse_args(argv)
    if not args.corpus.is_file():
        sys.exit(f'corpus not found: {args.corpus} (pass --corpus or set GLM_SHARED_DIR)')
    docs = read_documents(args.corpus)
    if args.docs:
        docs = docs[:args.docs]
    import tokenizers
    print(f'python {platform.python_version()}, tokenizers {tokenizers.__version__}, {os.cpu_count()} CPUs, '
          f'load average {os.getloadavg()[0]:.2f}; Python side on one thread')

    corpus_rows, all_same = [], True
    if args.all_corpora:
        vocab_dir = shared_dir() / 'assets' / 'vocab'
        configs = CONFIGS + ([ROBERTA] if (vocab_dir / 'roberta-vocab.json').is_file() else [])
        corpus_rows = all_corpora(configs, vocab_dir if vocab_dir.is_dir() else None)
        all_same &= not any(row[4] for row in corpus_rows)

    print(f'\ncorpus {args.corpus.name}: {len(docs)} documents, {sum(map(len, docs)):,} characters, '
          f'{args.repeats} repeats')
    steady_docs = None
    if args.steady:
        if not args.steady_corpus.is_file():
            sys.exit(f'--steady-corpus not found: {args.steady_corpus}')
        steady_docs = read_documents(args.steady_corpus)
        print(f'steady: each fresh tokenizer first encodes {args.steady_corpus.name} ({len(steady_docs)} documents, '
              f'{sum(map(len, steady_docs)):,} characters), untimed')
    rows = []
    for label, tokenizer_type, model_type in CONFIGS:
        config_rows, same = speed(label, tokenizer_type, model_type, docs, args.repeats, steady_docs)
        rows += config_rows
        all_same &= same

    if corpus_rows:
        print_table('Whole English corpora, one cold pass per path (fresh tokenizer): ids and speed',
              ['corpus', 'tokenizer', 'docs', 'tokens', 'docs differing', 'ref tok/s', 'fast tok/s', 'fast/ref'],
              [(c, label, n, f'{t:,}', d, f'{t / r:,.0f}', f'{t / f:,.0f}', f'{r / f:.1f}x')
               for c, label, n, t, d, r, f in corpus_rows], right_aligned_from=2)
    reference = {(label, run): seconds for label, path, run, _, seconds in rows if path == 'reference'}
    print_table(f'{args.corpus.name}: median of {args.repeats}; "vs ref" compares with the reference pass of the same '
          'kind (rust rows: with the cold one)',
          ['tokenizer', 'path', 'pass', 'tokens', 'seconds', 'tokens/s', 'vs ref'],
          [(label, path, run, f'{tokens:,}', f'{seconds:.3f}', f'{tokens / seconds:,.0f}',
            f'{reference.get((label, run), reference[label, "cold"]) / seconds:.1f}x')
           for label, path, run, tokens, seconds in rows], right_aligned_from=2)
    return 0 if all_same else 1


if __name__ == '__main__':
    sys.exit(main())
