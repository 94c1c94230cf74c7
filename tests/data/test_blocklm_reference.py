"""ConstructBlockStrategy against the recordings of the original GLM (glm_reference/blockstats and the
pretrain_* cases of model/forward_main.pt).

* compat mode + the original's counter seeding reproduces the recorded batches exactly (the [dBLOCK] draws,
  which the original took from the global `random`, are replayed with `legacy_block_mask_rng` where the
  recording says how that generator was seeded);
* the default mode (iteration-keyed seeding, unfit samples re-drawn) reproduces the recorded statistics
  within 3 standard errors.

The samples come from `StandInBlockDataset` (tests/data/block_dataset_standin.py), a stand-in for the
pretraining BlockDataset that is checked here against the recorded input samples as well.
"""

import json
import math
import random
from functools import lru_cache

import numpy as np
import pytest
import torch

from data_utils.blocklm import build_block_strategy
from tests.helpers import parse_config

from .block_dataset_standin import StandInBlockDataset
from .blocklm_checks import check_batch_structure, describe_batch
from ..conftest import shared_dir
from data_utils.tokenizers import configure_tokenizer

CONFIGS = ['glm_large__ds_block_large', 'glm_10b__ds_block_10B']
BLOCKSTATS = shared_dir() / 'glm_reference' / 'blockstats'
FORWARD_MAIN = shared_dir() / 'glm_reference' / 'model' / 'forward_main.pt'

pytestmark = pytest.mark.skipif(not BLOCKSTATS.is_dir(), reason=f'reference vectors not found at {BLOCKSTATS}')


@lru_cache(maxsize=None)
def load_json(name):
    with open(BLOCKSTATS / name) as f:
        return json.load(f)


@lru_cache(maxsize=None)
def config(cfg):
    """(run_config, tokenizer, dataset) of a recorded configuration, built from its recorded argv."""
    run_config = parse_config(load_json(f'blockstats__{cfg}.json')['argv'])
    tokenizer, run_config = configure_tokenizer(run_config)
    texts = load_json('synthetic_documents.json')['documents']
    documents = [tokenizer.EncodeAsIds(text).tokenization for text in texts]
    return run_config, tokenizer, StandInBlockDataset(documents, tokenizer, max_seq_len=run_config.data.seq_length)


def reference_batches(cfg):
    """Input samples of the recorded batches: batch b = dataset items b*8 .. b*8+7."""
    stats = load_json(f'blockstats__{cfg}.json')
    _, _, dataset = config(cfg)
    size = stats['batch_size']
    return [[dataset[i] for i in range(b * size, (b + 1) * size)] for b in range(stats['n_batches'])]


def as_tensors(output):
    return {k: (v if k == 'mode' else torch.tensor(v)) for k, v in output.items()}


# ------------------------------------------------------------------------------------- exact reproduction

@pytest.mark.parametrize('cfg', CONFIGS)
def test_dataset_standin_matches_recorded_samples(cfg):
    """The stand-in dataset rebuilds the recorded input samples and sample lengths."""
    stats, examples = load_json(f'blockstats__{cfg}.json'), load_json(f'blockexamples__{cfg}.json')
    run_config, tokenizer, dataset = config(cfg)
    assert sum(len(d) for d in dataset.documents) == stats['dataset_tokens']
    for example in examples['examples']:
        for index, sample in zip(example['input_sample_indices'], example['input_samples']):
            item = dataset[index]
            assert item['text'].tolist() == sample['text'] and item['loss_mask'].tolist() == sample['loss_mask']


@pytest.mark.parametrize('cfg', CONFIGS)
def test_pipeline_block_dataset_agrees_with_the_standin(cfg):
    """data_utils.datasets.BlockDataset (the pipeline's) gives the same samples as the stand-in used here."""
    datasets = pytest.importorskip('data_utils.datasets')
    _, tokenizer, standin = config(cfg)
    documents = datasets.PromptDataset([[]] * len(standin.documents), standin.documents)
    pipeline = datasets.BlockDataset(documents, tokenizer, max_seq_len=standin.max_seq_len)
    for index in list(range(480)) + list(range(10000, 10024)):
        ours, theirs = standin[index], pipeline[index]
        assert ours['text'].tolist() == theirs['text'].tolist(), index
        assert ours['loss_mask'].tolist() == theirs['loss_mask'].tolist(), index


@pytest.mark.parametrize('cfg', CONFIGS)
def test_blockexamples_exact(cfg):
    """Full collate outputs, bit for bit (global `random` seeded with seed + 1 before, as the file notes)."""
    examples = load_json(f'blockexamples__{cfg}.json')
    run_config, tokenizer, _ = config(cfg)
    legacy = random.Random(run_config.training.seed + 1)
    for example in examples['examples']:
        strategy = build_block_strategy(run_config, tokenizer, compat=True, legacy_block_mask_rng=legacy)
        strategy.count = example['strategy_count']
        out = strategy.construct_blocks(example['input_samples'])
        expected = example['output']
        assert out['mode'] == expected['mode']
        for key in ('text', 'target', 'loss_mask', 'position_id', 'attention_mask'):
            assert out[key].dtype == torch.int64
            assert out[key].tolist() == expected[key], key


@pytest.mark.parametrize('cfg', CONFIGS)
def test_blockexamples_structure(cfg):
    """The recorded outputs (and so ours) satisfy the layout checks and rebuild their input texts."""
    run_config, tokenizer, _ = config(cfg)
    for example in load_json(f'blockexamples__{cfg}.json')['examples']:
        batch = as_tensors(example['output'])
        originals = check_batch_structure(batch, tokenizer)
        for original, sample in zip(originals, example['input_samples']):
            assert original.tolist() == sample['text']
        records = describe_batch(batch, tokenizer)
        assert batch['text'].shape[1] == max(r['total_len'] for r in records)
        assert all(r['original_length'] == len(s['text']) for r, s in zip(records, example['input_samples']))


@pytest.mark.parametrize('cfg', CONFIGS)
def test_recorded_statistics_batches_exact(cfg):
    """All recorded batches, per sample (spans in target order, sep, lengths, [dBLOCK] counts, command ids
    in Part A), in compat mode with the counter seeding; global `random` seeded by set_random_seed(seed)."""
    stats = load_json(f'blockstats__{cfg}.json')
    run_config, tokenizer, _ = config(cfg)
    strategy = build_block_strategy(run_config,
                                    tokenizer,
                                    compat=True,
                                    legacy_block_mask_rng=random.Random(run_config.training.seed))
    records = []
    for samples in reference_batches(cfg):
        batch = strategy.construct_blocks(samples)
        check_batch_structure(batch, tokenizer)
        records += describe_batch(batch, tokenizer)
    assert len(records) == stats['n_samples']
    for index, (ours, theirs) in enumerate(zip(records, stats['per_sample'])):
        for key, value in theirs.items():
            if key == 'mask_fraction':
                assert ours[key] == pytest.approx(value, rel=1e-12), (index, key)
            else:
                assert ours[key] == value, (index, key)


def _recorded_case(name):
    if not FORWARD_MAIN.is_file():
        pytest.skip(f'{FORWARD_MAIN} not found')
    data = torch.load(FORWARD_MAIN, weights_only=True)
    return data['model_config'], data['cases'][name]


@pytest.mark.parametrize('name', ['pretrain_large_bert', 'pretrain_10b_bert', 'pretrain_10b_sentence',
                                  'pretrain_10b_gpt'])
def test_forward_main_pretrain_batches(name):
    """The pretrain_* batches of forward_main.pt (toy_char tokenizer) from their raw samples.

    pretrain_glm.get_batch passes the collate output through unchanged (input_ids = text, labels = target,
    position_ids = position_id, attention_mask = sep; loss_mask cast to float). In pretrain_10b_bert the
    [dBLOCK] tokens came from the harness's global `random`, whose state is not recorded: there input_ids
    are compared everywhere except at Part-B span tokens, where either side may hold [dBLOCK]."""
    model_config, case = _recorded_case(name)
    strategy_cfg = {'glm_large': 'glm_large__ds_block_large', 'glm_10b': 'glm_10b__ds_block_10B'}[case['strategy']]
    seq = str(model_config['max_sequence_length'])
    overrides = ['--seq-length', seq, '--max-position-embeddings', seq, '--tokenizer-type', 'CharacterLevelTokenizer']
    run_config = parse_config(load_json(f'blockstats__{strategy_cfg}.json')['argv'] + overrides)
    tokenizer, run_config = configure_tokenizer(run_config)
    strategy = build_block_strategy(run_config, tokenizer, compat=True)
    strategy.count = case['strategy_count']
    out = strategy.construct_blocks(case['raw_samples'])
    assert out['mode'] == case['mode']
    assert torch.equal(out['target'], case['labels'])
    assert torch.equal(out['loss_mask'].float(), case['loss_mask'])
    assert torch.equal(out['position_id'], case['position_ids'])
    assert torch.equal(out['attention_mask'], case['attention_mask'])
    ours, theirs = out['text'], case['input_ids']
    if run_config.objective.block_mask_prob == 0 or out['mode'] != 'bert':
        assert torch.equal(ours, theirs)
        return
    dblock, sop = tokenizer.get_command('dBLOCK').Id, tokenizer.get_command('sop').Id
    span_tokens = (case['loss_mask'] > 0) & (theirs != sop)
    differ = ours != theirs
    assert not (differ & ~span_tokens).any()
    assert ((ours[differ] == dblock) | (theirs[differ] == dblock)).all()
    assert (theirs == dblock).any(), 'the recording has [dBLOCK] tokens'


# ----------------------------------------------------------------------------------------- statistics

def _moments(values):
    values = np.asarray(values, dtype=np.float64)
    mean = values.mean()
    var = values.var()
    m4 = ((values - mean) ** 4).mean()
    return {'n': len(values), 'mean': mean, 'var': var, 'std': math.sqrt(var), 'm4': m4}


def _statistics(records, batch_modes, seq_length):
    """Per mode: the values behind each compared statistic, and the number of independent units.

    Token and sentence statistics use the full-length samples only (original length > seq_length/2):
    the short_seq_prob split of a whole batch (2% of batches) multiplies its sample count and would
    dominate these means by chance. In generation mode the generation length is drawn once per batch, so
    the batches, not the samples, are the independent units there."""
    result = {}
    for mode in sorted(set(batch_modes)):
        chosen = [r for r in records if r['mode'] == mode and (mode == 'gpt' or r['original_length'] > seq_length // 2)]
        units = batch_modes.count(mode) if mode == 'gpt' else None
        spans = [length for r in chosen for length in r['span_lengths']]
        result[mode] = {
            'mask_fraction': (_moments([r['mask_fraction'] for r in chosen]), units),
            'span_length': (_moments(spans), units),
            'spans_per_sample': (_moments([r['n_spans'] for r in chosen]), units),
        }
    return result


def _compare(name, ours, theirs, kind='mean'):
    """|ours - theirs| against 3 standard errors of the difference.

    The spread is pooled over both runs (under the hypothesis being tested they share one distribution,
    and a spread estimated from few independent units - 11 generation batches - is itself very noisy);
    each side's standard error is that spread over its own number of independent units."""
    (a, units_a), (b, units_b) = ours, theirs
    weight = lambda key: (a['n'] * key(a) + b['n'] * key(b)) / (a['n'] + b['n'])
    if kind == 'mean':
        spread, diff, values = weight(lambda m: m['var']), a['mean'] - b['mean'], (a['mean'], b['mean'])
    else:  # the variance of the values: Var(sample variance) = (m4 - var^2) / n
        spread, diff, values = weight(lambda m: max(m['m4'] - m['var'] ** 2, 0.0)), a['var'] - b['var'], \
            (a['var'], b['var'])
    se = math.sqrt(spread * (1 / (units_a or a['n']) + 1 / (units_b or b['n'])))
    row = f'{name:<34} ours {values[0]:10.5f}  ref {values[1]:10.5f}  |diff|/SE {abs(diff) / se if se else 0:5.2f}'
    assert abs(diff) <= 3 * se + 1e-12, row
    return row


def _compare_share(name, hits_ours, n_ours, hits_ref, n_ref, p=None):
    """Two shares against 3 binomial standard errors (around `p`, else around the pooled share)."""
    if p is None:
        p = (hits_ours + hits_ref) / (n_ours + n_ref)
    se = math.sqrt(max(p * (1 - p), 0.0) * (1 / n_ours + 1 / n_ref))
    share_ours, share_ref = hits_ours / n_ours, hits_ref / n_ref
    diff = abs(share_ours - share_ref)
    row = f'{name:<34} ours {share_ours:10.5f}  ref {share_ref:10.5f}  |diff|/SE {diff / se if se else 0:5.2f}'
    assert diff <= 3 * se + 1e-12, row
    return row


def run_default_mode(cfg):
    """Our default mode over the recorded batches' samples: iteration-keyed seeding, so the random draws
    are independent of the recording."""
    run_config, tokenizer, _ = config(cfg)
    strategy = build_block_strategy(run_config, tokenizer)
    records, modes = [], []
    for iteration, samples in enumerate(reference_batches(cfg)):
        batch = strategy.construct_blocks([dict(s, iteration=iteration) for s in samples])
        records += describe_batch(batch, tokenizer)
        modes.append(batch['mode'])
    return records, modes, strategy


@pytest.mark.parametrize('cfg', CONFIGS)
def test_statistics_match_reference(cfg, capsys):
    stats = load_json(f'blockstats__{cfg}.json')
    run_config, tokenizer, _ = config(cfg)
    # Our reading of the recorded per-sample records reproduces the file's own aggregates.
    for mode, recorded in stats['by_mode'].items():
        mine = _moments([r['mask_fraction'] for r in stats['per_sample'] if r['mode'] == mode])
        assert mine['mean'] == pytest.approx(recorded['mask_fraction']['mean'], rel=1e-9)

    records, modes, strategy = run_default_mode(cfg)
    assert strategy.dropped_samples == 0
    ref_stats = _statistics(stats['per_sample'], stats['batch_modes'], run_config.data.seq_length)
    our_stats = _statistics(records, modes, run_config.data.seq_length)
    rows = []
    for mode, theirs in ref_stats.items():
        if mode not in our_stats:
            continue  # a mode that happened to be drawn by neither run; covered by the share check below
        ours = our_stats[mode]
        rows.append(_compare(f'{mode} mask_fraction mean', ours['mask_fraction'], theirs['mask_fraction']))
        rows.append(_compare(f'{mode} span_length mean', ours['span_length'], theirs['span_length']))
        rows.append(_compare(f'{mode} spans_per_sample mean', ours['spans_per_sample'], theirs['spans_per_sample']))
        if mode != 'gpt':
            rows.append(_compare(f'{mode} span_length variance', ours['span_length'], theirs['span_length'], 'var'))
    # Mode shares: one draw per batch, binomial SE around the configured probabilities.
    probabilities = {'bert': run_config.objective.bert_prob, 'sentence': run_config.objective.gap_sentence_prob,
                     'gpt': 1 - run_config.objective.bert_prob - run_config.objective.gap_sentence_prob}
    for mode, p in probabilities.items():
        rows.append(_compare_share(f'{mode} batch share', modes.count(mode), len(modes),
                                   stats['batch_modes'].count(mode), len(stats['batch_modes']), p))
    # Generation path (suffix vs single blank) of the generation-mode samples: one draw per sample.
    paths_ours = [r['path'] for r in records if r['mode'] == 'gpt']
    paths_ref = [r['path'] for r in stats['per_sample'] if r['mode'] == 'gpt']
    if paths_ours and paths_ref:
        rows.append(_compare_share('gpt blank-path share', paths_ours.count('blank'), len(paths_ours),
                                   paths_ref.count('blank'), len(paths_ref)))
    with capsys.disabled():
        print(f'\n{cfg}: default mode vs reference ({len(modes)} batches each)\n' + '\n'.join(rows))
