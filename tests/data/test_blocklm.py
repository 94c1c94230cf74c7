"""ConstructBlockStrategy: seeding, flags, the two documented deviations, and bad input."""

import random
import types

import numpy as np
import pytest
import torch

from data_utils import blocklm
from data_utils.blocklm import ConstructBlockStrategy, build_block_strategy, counter_seed, derive_batch_seed
from tests.helpers import parse_config

from .blocklm_checks import check_batch_structure, describe_batch
from data_utils.tokenizers import configure_tokenizer

TEXT = ('The cat sat on the mat. It was warm; the sun shone! Did the dog care? No: it slept. '
        'Birds sang in the old tree and the wind moved the grass. ')


@pytest.fixture(scope='module')
def toy():
    """The toy_char tokenizer (command ids 0..9, character c -> ord(c) + 10) and its cfg."""
    cfg = parse_config(
        ['--block-lm', '--task-mask', '--tokenizer-type', 'CharacterLevelTokenizer', '--seq-length', '96'])
    tokenizer, cfg = configure_tokenizer(cfg)
    return cfg, tokenizer


def encode(tokenizer, text):
    return tokenizer.EncodeAsIds(text).tokenization


def packed_sample(tokenizer, texts, length=None):
    """ENC doc eos ENC doc eos ..., cut to `length` tokens, loss mask 1 except on the ENC tokens."""
    ids, loss = [], []
    for text in texts:
        ids += [tokenizer.get_command('ENC').Id] + encode(tokenizer, text) + [tokenizer.get_command('eos').Id]
        loss += [0] + [1] * (len(ids) - len(loss) - 1)
    ids, loss = ids[:length], loss[:length]
    return {'text': np.array(ids), 'loss_mask': np.array(loss)}


def batch_of(tokenizer, n=4, length=96):
    return [packed_sample(tokenizer, [TEXT[k * 7:] + TEXT], length) for k in range(n)]


def strategy(toy, max_seq_length=None, **kwargs):
    cfg, tokenizer = toy
    return ConstructBlockStrategy(cfg, tokenizer, max_seq_length or cfg.data.seq_length, **kwargs)


def assert_same(a, b):
    assert a['mode'] == b['mode']
    for key in ('text', 'target', 'loss_mask', 'position_id', 'attention_mask'):
        assert torch.equal(a[key], b[key]), key


def differs(a, b):
    return a['mode'] != b['mode'] or any(a[k].shape != b[k].shape or not torch.equal(a[k], b[k])
                                         for k in ('text', 'target', 'position_id', 'attention_mask'))


# -------------------------------------------------------------------------------------------- flags

def test_build_block_strategy_maps_flags():
    cfg = parse_config(['--block-lm', '--task-mask', '--bert-prob', '0.4', '--gap-sentence-prob', '0.3',
                     '--gap-sentence-ratio', '0.2', '--gpt-infill-prob', '0.7', '--gpt-min-ratio', '0.25',
                     '--avg-block-length', '5', '--block-mask-prob', '0.1', '--context-mask-ratio', '0.05',
                     '--short-seq-prob', '0.02', '--single-span-prob', '0.05', '--no-shuffle-block',
                     '--no-block-position', '--random-position', '--seq-length', '256',
                     '--tokenizer-type', 'CharacterLevelTokenizer'])
    tokenizer, cfg = configure_tokenizer(cfg)
    s = build_block_strategy(cfg, tokenizer)
    assert (s.max_seq_length, s.bert_prob, s.gap_sentence_prob) == (256, 0.4, 0.3)
    assert s.gpt_prob == pytest.approx(0.3)
    assert (s.gap_sentence_ratio, s.infill_prob, s.gpt_min_ratio) == (0.2, 0.7, 0.25)
    assert (s.block_mask_prob, s.context_mask_ratio, s.short_seq_prob, s.single_span_prob) == (0.1, 0.05, 0.02, 0.05)
    assert not s.shuffle_blocks and not s.block_position_encoding and s.random_position and s.task_mask
    assert not s.sentinel_token and not s.masked_lm and not s.encoder_decoder
    # Not flags: fixed as in the original.
    assert s.bert_ratio == 0.15 and s.span_lengths == list(range(1, 40)) and s.context_mask_range == 3
    assert s.generation_mask == tokenizer.get_command('gMASK').Id
    assert s.gap_sentence_mask == tokenizer.get_command('sMASK').Id
    assert build_block_strategy(cfg, tokenizer, compat=True).compat


def test_span_length_weights_are_a_truncated_poisson():
    weights = blocklm.span_length_weights(3, 40)
    assert len(weights) == 39
    assert weights[2] == pytest.approx(np.exp(-3) * 27 / 6)  # P(X = 3)
    rng = random.Random(0)
    s = types.SimpleNamespace(span_lengths=list(range(1, 40)), span_cum_weights=list(np.cumsum(weights)))
    draws = [ConstructBlockStrategy._draw_span_length(s, rng) for _ in range(20000)]
    assert min(draws) >= 1
    assert np.mean(draws) == pytest.approx(3 / (1 - np.exp(-3)), abs=0.05)


# ------------------------------------------------------------------------------------------ seeding

def test_same_iteration_gives_identical_batches(toy):
    samples = batch_of(toy[1])
    kwargs = dict(bert_prob=0.4, gap_sentence_prob=0.3, block_mask_prob=0.2)
    a = strategy(toy, **kwargs).construct_blocks([dict(s, iteration=7) for s in samples])
    b_strategy = strategy(toy, **kwargs)
    b_strategy.construct_blocks(samples)  # advancing the call counter must not matter with an iteration
    b = b_strategy.construct_blocks([dict(s, iteration=7) for s in samples])
    assert_same(a, b)


def test_different_iterations_and_ranks_differ(toy):
    samples = batch_of(toy[1])
    s = strategy(toy, bert_prob=1.0)
    batches = [s.construct_blocks([dict(x, iteration=i) for x in samples]) for i in range(4)]
    assert all(differs(batches[i], batches[j]) for i in range(4) for j in range(i + 1, 4))
    other_rank = strategy(toy, bert_prob=1.0, data_parallel_rank=1, data_parallel_world_size=2).construct_blocks(
        [dict(x, iteration=0) for x in samples])
    assert differs(batches[0], other_rank)
    # and the seed itself
    assert derive_batch_seed(1234, 0, 0) == derive_batch_seed(1234, 0, 0)
    assert len({derive_batch_seed(seed, it, r) for seed in (1, 2) for it in range(50) for r in range(4)}) == 400


def test_base_seed_comes_from_args(toy):
    samples = [dict(x, iteration=3) for x in batch_of(toy[1])]
    cfg, tokenizer = toy
    a = ConstructBlockStrategy(cfg, tokenizer, 96).construct_blocks(samples)
    b = ConstructBlockStrategy(cfg, tokenizer, 96, seed=cfg.training.seed).construct_blocks(samples)
    c = ConstructBlockStrategy(cfg, tokenizer, 96, seed=cfg.training.seed + 1).construct_blocks(samples)
    assert_same(a, b)
    assert differs(a, c)


def test_counter_seeding_follows_the_original_scheme(toy, monkeypatch):
    """Without 'iteration': seed = (count * num_workers + worker_id) * dp_world + dp_rank."""
    samples = batch_of(toy[1])
    in_process = strategy(toy, bert_prob=0.5, gap_sentence_prob=0.3)
    first, second = in_process.construct_blocks(samples), in_process.construct_blocks(samples)
    assert in_process.count == 2
    assert differs(first, second)
    # Worker 1 of 2 at its first call uses seed 1 = the in-process strategy's second call.
    monkeypatch.setattr(torch.utils.data, 'get_worker_info', lambda: types.SimpleNamespace(id=1, num_workers=2))
    assert_same(strategy(toy, bert_prob=0.5, gap_sentence_prob=0.3).construct_blocks(samples), second)
    assert counter_seed(3, 1, 2, 1, 4) == (3 * 2 + 1) * 4 + 1


def test_mixed_iterations_in_one_batch_are_rejected(toy):
    samples = batch_of(toy[1], n=2)
    with pytest.raises(ValueError, match='different iterations'):
        strategy(toy).construct_blocks([dict(samples[0], iteration=1), dict(samples[1], iteration=2)])
    with pytest.raises(ValueError, match='different iterations'):
        strategy(toy).construct_blocks([dict(samples[0], iteration=1), samples[1]])


# ------------------------------------------------------------------------- compat and [dBLOCK] draws

def test_compat_block_mask_leaves_the_original_stream_untouched(toy):
    """compat: the [dBLOCK] draws come after everything else, so the batch equals the batch without
    block masking except for span tokens turned into [dBLOCK]."""
    samples = batch_of(toy[1], n=6)
    dblock = toy[1].get_command('dBLOCK').Id
    plain = strategy(toy, compat=True).construct_blocks(samples)
    masked = strategy(toy, compat=True, block_mask_prob=0.3).construct_blocks(samples)
    for key in ('target', 'loss_mask', 'position_id', 'attention_mask'):
        assert torch.equal(plain[key], masked[key])
    changed = plain['text'] != masked['text']
    assert changed.any() and (masked['text'][changed] == dblock).all()
    sop = toy[1].get_command('sop').Id
    assert (masked['loss_mask'][changed] == 1).all() and not (plain['text'][changed] == sop).any()
    # The default mode draws them in between, with the same distribution but another stream.
    default = strategy(toy, block_mask_prob=0.3).construct_blocks(samples)
    check_batch_structure(default, toy[1])


def test_legacy_block_mask_rng_is_used_for_the_dblock_draws(toy):
    calls = []
    legacy = types.SimpleNamespace(random=lambda: calls.append(1) or 0.0)  # always below the probability
    out = strategy(toy, compat=True, block_mask_prob=0.1, legacy_block_mask_rng=legacy).construct_blocks(
        batch_of(toy[1], n=2))
    dblock, sop = toy[1].get_command('dBLOCK').Id, toy[1].get_command('sop').Id
    b_tokens = (out['loss_mask'] == 1) & (out['text'] != sop)
    assert len(calls) == int(b_tokens.sum())
    assert (out['text'][b_tokens] == dblock).all()


def test_default_equals_compat_without_block_mask(toy):
    samples = batch_of(toy[1], n=6)
    for kwargs in (dict(bert_prob=1.0), dict(bert_prob=0.0, gap_sentence_prob=1.0), dict(bert_prob=0.0)):
        assert_same(strategy(toy, **kwargs).construct_blocks(samples),
                    strategy(toy, compat=True, **kwargs).construct_blocks(samples))


# ---------------------------------------------------------------------------------- unfit samples

def many_small_documents(tokenizer):
    """One sample of many 1-character documents: its spans can never all fit."""
    return packed_sample(tokenizer, ['x'] * 20)


def test_unfit_sample_is_kept_with_fewer_spans(toy):
    samples = batch_of(toy[1], n=2) + [many_small_documents(toy[1])]
    s = strategy(toy, bert_prob=1.0)
    out = s.construct_blocks(samples)
    assert out['text'].shape[0] == 3
    assert s.unfit_samples == 1 and s.span_redraws == s.max_span_redraws and s.reduced_samples == 1
    originals = check_batch_structure(out, toy[1])
    for original, sample in zip(originals, samples):
        assert original.tolist() == sample['text'].tolist()


def test_drop_unfit_samples_restores_the_original_dropping(toy):
    samples = batch_of(toy[1], n=2) + [many_small_documents(toy[1])]
    s = strategy(toy, bert_prob=1.0, drop_unfit_samples=True)
    assert s.construct_blocks(samples)['text'].shape[0] == 2
    assert s.dropped_samples == 1 and s.stats['dropped_samples'] == 1
    with pytest.raises(ValueError, match='every sample of the batch was dropped'):
        s.construct_blocks([many_small_documents(toy[1])])


def test_unfit_sample_gets_new_span_lengths(toy):
    """A long document next to tiny ones: the first draw sometimes does not fit; a re-draw does."""
    tokenizer = toy[1]
    sample = packed_sample(tokenizer, ['abcdefg'] + ['x'] * 5)
    s = strategy(toy, bert_prob=1.0)
    for iteration in range(300):
        out = s.construct_blocks([dict(sample, iteration=iteration)] * 8)
        assert out['text'].shape[0] == 8
        for original in check_batch_structure(out, tokenizer):
            assert original.tolist() == sample['text'].tolist()
    assert s.unfit_samples > 0 and s.span_redraws >= s.unfit_samples
    assert s.reduced_samples < s.unfit_samples


# ----------------------------------------------------------------------------------------- bad input

def test_empty_sample_list_is_an_error(toy):
    with pytest.raises(ValueError, match='at least one sample'):
        strategy(toy).construct_blocks([])


@pytest.mark.parametrize('sample, message', [
    ({'text': [1, 20, 21]}, "lacks 'text' or 'loss_mask'"),
    ({'text': [1, 20, 21], 'loss_mask': [0, 1]}, 'loss_mask 2'),
    ({'text': [], 'loss_mask': []}, 'is empty'),
    ({'text': [[1, 20]], 'loss_mask': [[0, 1]]}, '1-D integer array'),
    ({'text': [1.5, 2.0], 'loss_mask': [0, 1]}, '1-D integer array'),
    ({'text': [20, 21, 22, 23], 'loss_mask': [1, 1, 1, 1]}, 'start with the ENC token'),
])
def test_malformed_samples_are_errors(toy, sample, message):
    with pytest.raises(ValueError, match=message):
        strategy(toy, bert_prob=1.0).construct_blocks([sample])


def test_documents_shorter_than_a_span(toy):
    """Too short to hold a span: token mode keeps the sample unmasked; generation mode needs 3 tokens."""
    tokenizer = toy[1]
    tiny = {'text': np.array([1, 30]), 'loss_mask': np.array([0, 1])}
    s = strategy(toy, bert_prob=1.0, single_span_prob=1.0)
    out = s.construct_blocks([tiny])
    assert out['attention_mask'].tolist() == [2] and out['text'].tolist() == [[1, 30]]
    assert not out['loss_mask'].any() and s.reduced_samples == 1
    with pytest.raises(ValueError, match='at least 3 tokens'):
        strategy(toy, bert_prob=0.0).construct_blocks([tiny])
    # A three-token sample works in every mode.
    three = {'text': np.array([1, 30, 0]), 'loss_mask': np.array([0, 1, 1])}
    for kwargs in (dict(bert_prob=1.0), dict(bert_prob=0.0, gap_sentence_prob=1.0), dict(bert_prob=0.0)):
        check_batch_structure(strategy(toy, **kwargs).construct_blocks([three] * 3), tokenizer)


@pytest.mark.parametrize('kwargs, message', [
    (dict(bert_prob=1.5), 'bert_prob'),
    (dict(bert_prob=0.7, gap_sentence_prob=0.5), 'exceeds 1'),
    (dict(encoder_decoder=True), 'encoder_decoder'),
    (dict(masked_lm=True, bert_prob=0.5), 'masked_lm'),
    (dict(short_seq_prob=0.1, max_seq_length=30), 'max_seq_length >= 34'),
])
def test_bad_constructor_arguments(toy, kwargs, message):
    with pytest.raises(ValueError, match=message):
        strategy(toy, **kwargs)


def test_samples_may_be_lists_or_tensors(toy):
    samples = batch_of(toy[1], n=2)
    as_lists = [{'text': s['text'].tolist(), 'loss_mask': s['loss_mask'].tolist()} for s in samples]
    as_tensors = [{'text': torch.tensor(s['text']), 'loss_mask': torch.tensor(s['loss_mask'])} for s in samples]
    assert_same(strategy(toy).construct_blocks(as_lists), strategy(toy).construct_blocks(as_tensors))


# ----------------------------------------------------------------------------------- other flags

def test_masked_lm_ablation(toy):
    tokenizer = toy[1]
    samples = batch_of(tokenizer, n=3)
    out = strategy(toy, masked_lm=True).construct_blocks(samples)
    mask = tokenizer.get_command('MASK').Id
    assert out['position_id'].shape == out['text'].shape  # 1-D positions
    for i, sample in enumerate(samples):
        n = len(sample['text'])
        assert out['attention_mask'][i] == n  # fully bidirectional
        assert out['target'][i, :n].tolist() == sample['text'].tolist()
        masked = out['text'][i, :n] != out['target'][i, :n]
        assert (out['text'][i, :n][masked] == mask).all() and masked.sum() >= int(0.15 * n)
        assert torch.equal(out['loss_mask'][i, :n].bool(), masked)
        assert out['position_id'][i, :n].tolist() == list(range(n))


def test_sentinel_tokens_pair_masks_with_their_start_tokens():
    cfg = parse_config(['--block-lm', '--sentinel-token', '--max-position-embeddings', '64', '--seq-length', '64',
                     '--tokenizer-type', 'BertWordPieceTokenizer', '--tokenizer-model-type', 'bert-base-uncased'])
    tokenizer, cfg = configure_tokenizer(cfg)
    sample = packed_sample(tokenizer, [TEXT * 2], length=64)
    out = build_block_strategy(cfg, tokenizer, bert_prob=1.0).construct_blocks([sample])
    sep = int(out['attention_mask'][0])
    text, target, pos = out['text'][0], out['target'][0], out['position_id'][0]
    name = {tokenizer.get_command(n).Id: n for n in
            ['MASK'] + [f'MASK{k}' for k in range(1, 30)] + ['sop'] + [f'sop{k}' for k in range(1, 30)]}
    masks = [name[int(t)] for t in text[:sep] if int(t) in name]
    starts = [j for j in range(sep, len(text)) if int(text[j]) in name]
    assert len(masks) == len(starts) >= 2
    # Block k (target order) starts with sop{k} and its mask in Part A is MASK{k}.
    assert [name[int(text[j])] for j in starts] == ['sop'] + [f'sop{k}' for k in range(1, len(starts))]
    assert sorted(masks) == sorted(['MASK'] + [f'MASK{k}' for k in range(1, len(starts))])
    assert (pos[0, sep:] == 64).all()  # target positions are max_seq_length
    assert pos[1, sep:].tolist()[:2] == [1, 2]
    # Each span, put back at its own mask, rebuilds the sample.
    bounds = list(zip(starts, starts[1:] + [len(text)]))
    spans = {name[int(text[a])].replace('sop', 'MASK'): target[a:b - 1].tolist() for a, b in bounds}
    rebuilt = []
    for t in target[:sep].tolist():
        rebuilt += spans[name[t]] if t in name else [t]
    assert rebuilt == sample['text'].tolist()


def test_unshuffled_blocks_follow_the_text_order(toy):
    out = strategy(toy, shuffle_blocks=False).construct_blocks(batch_of(toy[1], n=3))
    for i in range(3):
        sep = int(out['attention_mask'][i])
        starts = (out['position_id'][i, 1] == 1).nonzero().flatten()
        block_positions = out['position_id'][i, 0, starts].tolist()
        assert block_positions == sorted(block_positions) and starts[0] == sep


def test_block_positions_off(toy):
    for kwargs in (dict(bert_prob=1.0), dict(bert_prob=0.0, gpt_infill_prob=1.0)):
        out = strategy(toy, block_position_encoding=False, **kwargs).construct_blocks(batch_of(toy[1], n=2))
        check_batch_structure(out, toy[1], block_position_encoding=False)
        for i in range(2):
            sep = int(out['attention_mask'][i])
            total = int(out['loss_mask'][i].nonzero().max()) + 1
            assert (out['position_id'][i, 1, sep:total] == 1).all()


def test_short_seq_split_grows_the_batch(toy):
    tokenizer = toy[1]
    samples = batch_of(tokenizer, n=2)
    s = strategy(toy, bert_prob=1.0, short_seq_prob=1.0)
    for iteration in range(10):
        out = s.construct_blocks([dict(x, iteration=iteration) for x in samples])
        assert out['text'].shape[0] % 2 == 0 and out['text'].shape[0] >= 2
        for original in check_batch_structure(out, tokenizer):
            assert original[0] == tokenizer.get_command('ENC').Id and len(original) <= 96
            assert any(_contains(sample['text'][1:].tolist(), original[1:].tolist()) for sample in samples)


def _contains(haystack, needle):
    return any(haystack[k:k + len(needle)] == needle for k in range(len(haystack) - len(needle) + 1))


def test_context_mask_replaces_tokens_next_to_masks(toy):
    tokenizer = toy[1]
    dblock, mask = tokenizer.get_command('dBLOCK').Id, tokenizer.get_command('MASK').Id
    samples = batch_of(tokenizer, n=3)
    out = strategy(toy, context_mask_ratio=0.1).construct_blocks(samples)
    check_batch_structure(out, tokenizer)
    for i, sample in enumerate(samples):
        sep = int(out['attention_mask'][i])
        text = out['text'][i, :sep].tolist()
        hits = [j for j, t in enumerate(text) if t == dblock]
        assert len(hits) == int(0.1 * len(sample['text'])) and 0 not in hits
        masks = [j for j, t in enumerate(text) if t == mask]
        assert all(min(abs(j - m) for m in masks) <= 3 for j in hits)


def test_gpt_mode_paths(toy):
    """gpt_infill_prob is the suffix probability (the original's name is inverted); multi-document
    samples always take the suffix path."""
    tokenizer = toy[1]
    single = [packed_sample(tokenizer, [TEXT])]  # one document, eos at the end
    multi = [packed_sample(tokenizer, [TEXT[:30], TEXT[30:60]])]
    gmask = tokenizer.get_command('gMASK').Id
    for samples, infill, expected in ((single, 1.0, 'gpt_suffix'), (single, 0.0, 'blank'), (multi, 0.0, 'gpt_suffix')):
        out = strategy(toy, bert_prob=0.0, gpt_infill_prob=infill, task_mask=True).construct_blocks(samples * 2)
        assert out['mode'] == 'gpt'
        assert gmask in out['text'][0].tolist()
        assert [r['path'] for r in describe_batch(out, tokenizer)] == [expected] * 2
        for original in check_batch_structure(out, tokenizer):
            assert original.tolist() == samples[0]['text'].tolist()


def test_random_position_keeps_positions_in_range(toy):
    s = strategy(toy, random_position=True)
    shifts = set()
    for iteration in range(20):
        out = s.construct_blocks([dict(x, iteration=iteration) for x in batch_of(toy[1], n=2, length=60)])
        check_batch_structure(out, toy[1], max_shift=96)
        assert int(out['position_id'][:, 0].max()) <= 95
        shifts.add(int(out['position_id'][0, 0, 0]))
    assert len(shifts) > 3
