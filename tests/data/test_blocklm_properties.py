"""Property tests of ConstructBlockStrategy over random documents and flags (hypothesis).

For every generated batch: targets are aligned with inputs, loss only on Part B in token and sentence
modes, positions and block positions as spec §6.4 describes, sep = length of Part A, no eos inside a
target, and every original token is in Part A or in exactly one span (the sample is rebuilt from its
Part A and spans)."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from data_utils import prepare_tokenizer
from data_utils.blocklm import ConstructBlockStrategy
from tests.helpers import parse_config

from .blocklm_checks import check_batch_structure, describe_batch

ARGS = parse_config(['--block-lm', '--task-mask', '--tokenizer-type', 'CharacterLevelTokenizer'])
TOKENIZER = prepare_tokenizer(ARGS)
ENC, EOS = TOKENIZER.get_command('ENC').Id, TOKENIZER.get_command('eos').Id
# Words and punctuation of the toy alphabet: sentence ends come from '.', '!', '?', ';', ':'.
PIECES = ['a', 'bb', 'cat', 'dog', 'sat', 'on', 'mat', 'tree', ',', '.', '!', '?', ';', ':']


@st.composite
def documents(draw):
    words = draw(st.lists(st.sampled_from(PIECES), min_size=1, max_size=30))
    return TOKENIZER.EncodeAsIds(' '.join(words)).tokenization


@st.composite
def samples(draw, max_seq_length):
    """Packed like the block dataset: ENC doc eos ENC doc eos ..., cut to at most max_seq_length."""
    ids, loss = [], []
    for doc in draw(st.lists(documents(), min_size=1, max_size=5)):
        ids += [ENC] + doc + [EOS]
        loss += [0] + [1] * (len(doc) + 1)
        if len(ids) >= max_seq_length:
            break
    cut = draw(st.integers(min_value=3, max_value=max_seq_length))
    return {'text': np.array(ids[:cut]), 'loss_mask': np.array(loss[:cut])}


@st.composite
def configurations(draw):
    mode = draw(st.sampled_from(['bert', 'sentence', 'gpt']))
    probs = {'bert': (1.0, 0.0), 'sentence': (0.0, 1.0), 'gpt': (0.0, 0.0)}[mode]
    kwargs = dict(
        bert_prob=probs[0], gap_sentence_prob=probs[1],
        gpt_infill_prob=draw(st.sampled_from([0.0, 0.5, 1.0])),
        gpt_min_ratio=draw(st.sampled_from([0.25, 0.5, 1.0])),
        average_block_length=draw(st.sampled_from([1, 3, 6])),
        block_mask_prob=draw(st.sampled_from([0.0, 0.3])),
        context_mask_ratio=draw(st.sampled_from([0.0, 0.1])),
        short_seq_prob=draw(st.sampled_from([0.0, 0.0, 1.0])),
        single_span_prob=draw(st.sampled_from([0.0, 0.0, 1.0])) if mode == 'bert' else 0.0,
        block_position_encoding=draw(st.booleans()),
        shuffle_blocks=draw(st.booleans()),
        task_mask=draw(st.booleans()),
        random_position=draw(st.booleans()),
        compat=draw(st.booleans()),
    )
    return mode, kwargs


def _is_window(piece, sample):
    """piece = ENC + a contiguous window of the sample's tokens after its ENC."""
    body, source = piece[1:].tolist(), sample['text'][1:].tolist()
    return piece[0] == ENC and any(source[k:k + len(body)] == body for k in range(len(source) - len(body) + 1))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=configurations(), max_seq_length=st.integers(min_value=40, max_value=120), data=st.data())
def test_batches_satisfy_the_objective_layout(config, max_seq_length, data):
    mode, kwargs = config
    batch_samples = data.draw(st.lists(samples(max_seq_length), min_size=1, max_size=4))
    iteration = data.draw(st.integers(min_value=0, max_value=10 ** 6))
    strategy = ConstructBlockStrategy(ARGS, TOKENIZER, max_seq_length, **kwargs)
    batch = strategy.construct_blocks([dict(s, iteration=iteration) for s in batch_samples])
    assert batch['mode'] == mode

    max_shift = max_seq_length if kwargs['random_position'] else 0
    originals = check_batch_structure(batch, TOKENIZER, block_position_encoding=kwargs['block_position_encoding'],
                                      max_shift=max_shift)
    records = describe_batch(batch, TOKENIZER)
    split = len(originals) != len(batch_samples) or kwargs['short_seq_prob'] == 1.0
    if not split:
        # Every original token is in Part A or in exactly one span: the sample is rebuilt exactly.
        assert [o.tolist() for o in originals] == [s['text'].tolist() for s in batch_samples]
    else:
        assert len(originals) % len(batch_samples) == 0
        per_sample = len(originals) // len(batch_samples)
        for k, original in enumerate(originals):
            assert _is_window(original, batch_samples[k // per_sample])
    for record, original in zip(records, originals):
        assert record['original_length'] == len(original)
        # sep = length of Part A = original length - masked tokens + one mask token per span.
        if record['path'] == 'gpt_suffix':
            assert record['sep'] == len(original) - record['masked_tokens'] + 1
        else:
            assert record['sep'] == len(original) - record['masked_tokens'] + record['n_spans']
    # Positions stay inside the position table (random_position may shift them up to its end).
    assert int(batch['position_id'][:, 0].max()) < max_seq_length
    if mode == 'bert' and kwargs['single_span_prob'] == 1.0:
        assert all(r['n_spans'] <= 1 for r in records)
    if mode == 'gpt':
        assert all(r['n_spans'] == 1 for r in records)
    if mode == 'bert' and not split and kwargs['single_span_prob'] == 0.0:
        # Token mode masks at least bert_ratio of each sample whose spans fit (the rest keep fewer spans).
        fitted = len(batch_samples) - strategy.reduced_samples
        enough = [r['masked_tokens'] >= int(0.15 * r['original_length']) for r in records]
        assert sum(enough) >= fitted


@settings(max_examples=25, deadline=None)
@given(config=configurations(), data=st.data())
def test_same_iteration_same_batch(config, data):
    _, kwargs = config
    batch_samples = data.draw(st.lists(samples(80), min_size=1, max_size=3))
    iteration = data.draw(st.integers(min_value=0, max_value=1000))
    keyed = [dict(s, iteration=iteration) for s in batch_samples]
    a = ConstructBlockStrategy(ARGS, TOKENIZER, 80, **kwargs).construct_blocks(keyed)
    b = ConstructBlockStrategy(ARGS, TOKENIZER, 80, **kwargs).construct_blocks(keyed)
    assert a['mode'] == b['mode']
    for key in ('text', 'target', 'loss_mask', 'position_id', 'attention_mask'):
        assert a[key].equal(b[key])
