"""Samples per second of the GLM collate function (ConstructBlockStrategy.construct_blocks) per mode.

    python bench/bench_collator.py [--corpus PATH.jsonl] [--seq-length 512] [--batch-size 16] [--batches 40]

Text: the documents of a jsonl corpus (default en_moby_dick.jsonl from ../shared/assets/corpora, or
$GLM_SHARED_DIR/assets/corpora), BERT bert-large-uncased tokenizer. Samples are packed like the pretraining
dataset does: `[CLS] document [eos] [CLS] next document ...` cut to --seq-length tokens. Each mode is forced
(probability 1) with the GLM-10B objective flags otherwise (--task-mask, --block-mask-prob 0.1,
--gpt-min-ratio 0.25). One process, the calling thread; a DataLoader spreads this over --num-workers.
Prints a table last.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from anywhere

import numpy as np  # noqa: E402

from bench.common import glm_config, machine, print_table  # noqa: E402
from data_utils.tokenizers import configure_tokenizer  # noqa: E402
from data_utils.blocklm import build_block_strategy  # noqa: E402

MODES = {'bert': dict(bert_prob=1.0, gap_sentence_prob=0.0),
         'sentence': dict(bert_prob=0.0, gap_sentence_prob=1.0),
         'gpt': dict(bert_prob=0.0, gap_sentence_prob=0.0)}


def default_corpus() -> Path:
    shared = Path(os.environ.get('GLM_SHARED_DIR') or ROOT.parent / 'shared')
    return shared / 'assets' / 'corpora' / 'en_moby_dick.jsonl'


def packed_samples(documents, tokenizer, seq_length, count):
    """`count` samples of at most seq_length tokens, cycling through the documents."""
    enc, eos = tokenizer.get_command('ENC').Id, tokenizer.get_command('eos').Id
    samples, current, k = [], [], 0
    while len(samples) < count:
        current += [enc] + documents[k % len(documents)] + [eos]
        k += 1
        while len(current) >= seq_length and len(samples) < count:
            text = np.array(current[:seq_length], dtype=np.int64)
            loss = (text != enc).astype(np.int64)
            samples.append({'text': text, 'loss_mask': loss})
            current = current[seq_length:]
            if current and current[0] != enc:
                current = [enc] + current  # every sample starts with ENC
    return samples


def bench_mode(config, tokenizer, samples, batch_size, overrides, repeats=3):
    """Median over `repeats` passes of samples/s, plus ms per batch and the mode actually produced."""
    strategy = build_block_strategy(config, tokenizer, **overrides)
    batches = [samples[i:i + batch_size] for i in range(0, len(samples), batch_size)]
    strategy.construct_blocks([dict(s, iteration=0) for s in batches[0]])  # warm the token caches
    rates = []
    for r in range(repeats):
        keyed = [[dict(s, iteration=r * len(batches) + b) for s in batch] for b, batch in enumerate(batches)]
        start = time.perf_counter()
        for batch in keyed:
            out = strategy.construct_blocks(batch)
        rates.append(len(samples) / (time.perf_counter() - start))
    rate = statistics.median(rates)
    return rate, 1000 * batch_size / rate, out['mode']


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--corpus', type=Path, default=default_corpus())
    parser.add_argument('--seq-length', type=int, default=512)
    parser.add_argument('--batch-size', type=int, default=16)
    parser.add_argument('--batches', type=int, default=40)
    parser.add_argument('--train-batch-size', type=int, default=2,
                        help='batch of the GLM-Base training step measured for comparison')
    parser.add_argument('--no-train-step', action='store_true', help='skip the training-step comparison')
    opts = parser.parse_args(argv)

    config = glm_config(['--block-lm', '--task-mask', '--block-mask-prob', '0.1', '--gpt-min-ratio', '0.25',
                         '--seq-length', str(opts.seq_length), '--tokenizer-type', 'BertWordPieceTokenizer',
                         '--tokenizer-model-type', 'bert-large-uncased'])
    tokenizer, config = configure_tokenizer(config)
    with open(opts.corpus) as f:
        texts = [json.loads(line)['text'] for line in f if line.strip()]
    documents = [tokenizer.EncodeAsIds(t).tokenization for t in texts]
    samples = packed_samples(documents, tokenizer, opts.seq_length, opts.batch_size * opts.batches)
    print(f'{len(samples)} samples of {opts.seq_length} tokens from {opts.corpus.name}, batch size {opts.batch_size}')

    rows = []
    for mode, overrides in MODES.items():
        rate, ms, produced = bench_mode(config, tokenizer, samples, opts.batch_size, overrides)
        assert produced == mode
        rows.append((mode, rate, ms, rate * opts.seq_length))

    train_rate = None if opts.no_train_step else train_step_rate(config, tokenizer, samples, opts.train_batch_size)
    header = ['mode', 'samples/s', 'ms/batch', 'tokens/s'] + ([] if train_rate is None else ['x training step'])
    table = [[mode, f'{rate:.0f}', f'{ms:.1f}', f'{tokens:.0f}'] + ([] if train_rate is None else
                                                                   [f'{rate / train_rate:,.0f}x'])
             for mode, rate, ms, tokens in rows]
    if train_rate is not None:
        table.append(['GLM-Base training step', f'{train_rate:.2f}', f'{1000 * opts.train_batch_size / train_rate:.0f}',
                      f'{train_rate * opts.seq_length:.0f}', '1x'])
    print_table(f'Collator throughput: sequence {opts.seq_length}, batch {opts.batch_size}, BERT tokenizer, '
                f'collate in the calling thread; beside it, in the same run, the samples/s a GLM-Base training step '
                f'(12x768, fwd+bwd+AdamW, batch {opts.train_batch_size}) consumes; target: data path >= 10x; {machine()}',
                header, table)


def train_step_rate(config, tokenizer, samples, batch_size, repeats=3):
    """Samples/s of a full plain-engine training step of a GLM-Base-shaped model on collated batches."""
    import torch

    from glm.learning_rates import get_learning_rate_scheduler
    from glm.training.engines import PlainEngine
    from glm.training.losses import language_model_loss
    from glm.training.model_setup import build_model, build_optimizer

    seq_length = config.data.seq_length
    base = glm_config(['--block-lm', '--num-layers', '12', '--hidden-size', '768', '--num-attention-heads', '12',
                       '--seq-length', str(seq_length), '--max-position-embeddings', str(seq_length),
                       '--train-iters', '100', '--tokenizer-type', 'BertWordPieceTokenizer'],
                      vocab_size=config.model.vocab_size)
    device = torch.device('cpu')
    model = build_model(base, device)
    optimizer = build_optimizer(base, model)
    engine = PlainEngine(model, optimizer, get_learning_rate_scheduler(optimizer, base), base, device)
    strategy = build_block_strategy(config, tokenizer, bert_prob=1.0, gap_sentence_prob=0.0)
    batch = strategy.construct_blocks([dict(s, iteration=0) for s in samples[:batch_size]])
    engine.train_batch([batch], language_model_loss)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        engine.train_batch([batch], language_model_loss)
        times.append(time.perf_counter() - start)
    return batch_size / statistics.median(times)

if __name__ == '__main__':
    main()
