"""Preprocessing throughput (tokens/s) with 1 and more worker processes, and BlockDataset sample rate.

    python bench/bench_data.py                                   # English corpora from ../shared/assets
    python bench/bench_data.py --corpus my.jsonl --workers 1 2 4 --repeats 5

Tokeniser: BERT WordPiece (``--tokenizer-type BertWordPieceTokenizer --block-lm``, the GLM-Base/Large setup).
Each repeat builds the whole cache into a fresh temporary directory (the figure includes reading, JSON
parsing, tokenising, writing and the atomic rename).  Worker counts are timed alternately in the same process
so that machine noise hits them alike; the table reports medians and the speed-up over 1 worker.  Every run
must produce byte-identical caches; the benchmark checks it.
"""

import argparse
import filecmp
import os
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.common import machine, print_table  # noqa: E402
from data_utils.corpora import CorpusSpec  # noqa: E402
from data_utils.datasets import BlockDataset, load_corpus_dataset  # noqa: E402
from data_utils.preprocess import build_cache  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_CORPORA = ['en_austen_chapters.jsonl', 'en_sotu.jsonl', 'en_moby_dick.jsonl']


def default_corpora():
    shared = os.environ.get('GLM_SHARED_DIR') or os.path.join(os.path.dirname(ROOT), 'shared')
    return [os.path.join(shared, 'assets', 'corpora', name) for name in DEFAULT_CORPORA]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--corpus', nargs='+', default=None, help='JSON-lines files (default: shared English corpora)')
    parser.add_argument('--workers', nargs='+', type=int, default=[1, 2])
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--seq-length', type=int, default=512)
    opts = parser.parse_args(argv)
    paths = opts.corpus or default_corpora()
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        parser.error(f'corpus files not found: {", ".join(missing)} (set GLM_SHARED_DIR or pass --corpus)')

    import data_utils
    from bench.common import glm_config
    tokenizer = data_utils.prepare_tokenizer(glm_config(['--tokenizer-type', 'BertWordPieceTokenizer', '--block-lm']))
    spec = CorpusSpec('bench', 'auto', [os.path.abspath(p) for p in paths], source='path')
    work = tempfile.mkdtemp(prefix='glm-bench-data-')
    times = {w: [] for w in opts.workers}
    summary = None
    try:
        reference = None
        for rep in range(opts.repeats + 1):  # the first round warms the page cache and is not counted
            for workers in opts.workers:
                out = os.path.join(work, f'w{workers}-r{rep}.lazy')
                start = time.perf_counter()
                summary = build_cache(spec, tokenizer, cache_path=out, workers=workers, progress=False)
                elapsed = time.perf_counter() - start
                if rep:
                    times[workers].append(elapsed)
                if reference is None:
                    reference = out
                else:
                    files = sorted(os.listdir(reference))
                    _, mismatch, errors = filecmp.cmpfiles(reference, out, files, shallow=False)
                    assert not mismatch and not errors, f'caches differ: {mismatch or errors}'
                    shutil.rmtree(out)
        print(summary.format())

        docs = load_corpus_dataset(reference)
        block = BlockDataset(docs, tokenizer, max_seq_len=opts.seq_length)
        n = 2000
        start = time.perf_counter()
        for idx in range(n):
            block[idx]
        block_rate = n / (time.perf_counter() - start)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    tokens = summary.num_tokens
    size_mb = sum(os.path.getsize(p) for p in paths) / 1e6
    base = statistics.median(times[opts.workers[0]])
    rows = []
    for workers in opts.workers:
        t = statistics.median(times[workers])
        rows.append((f'preprocess, {workers} worker{"s" if workers > 1 else ""}', f'{t:.2f}',
                     f'{tokens / t:,.0f}', f'{size_mb / t:.2f}', f'{base / t:.2f}x'))
    rows.append((f'BlockDataset items (seq {opts.seq_length})', f'{n / block_rate:.2f}',
                 f'{block_rate * opts.seq_length:,.0f}', '-', f'{block_rate:,.0f} items/s'))
    print_table(f'Data pipeline: {len(paths)} file(s), {size_mb:.1f} MB, {summary.documents:,} documents, '
                f'{tokens:,} BERT tokens; median of {opts.repeats}; {machine()}',
                ('what', 'seconds', 'tokens/s', 'MB/s', 'vs 1 worker'), rows)


if __name__ == '__main__':
    main()
