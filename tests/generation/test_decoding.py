"""Decoding library: memory reuse equals recomputation, beam search equals brute force on a tiny
vocabulary, top-p/top-k on batches, padded ids never produced."""

import itertools
import math

import pytest
import torch

from glm.generation import (DecodeConfig, beam_search_block, filter_logits, generate, model_step, sample_block,
                            sample_next, top_p_filter)
from tests.helpers import tiny_glm

EOP = 5


def model_with_memory(vocab=16, seed=0, **kw):
    torch.manual_seed(seed)
    return tiny_glm(vocab=vocab, mem=64, max_seq=64, **kw).eval()


def context_inputs(ids):
    length = len(ids)
    tokens = torch.tensor([ids])
    positions = torch.stack([torch.arange(length), torch.zeros(length, dtype=torch.long)]).unsqueeze(0)
    return tokens, positions, torch.tensor([length])


def full_logits(model, context, mask_position, block_tokens):
    """Recompute everything: context (bidirectional) + block tokens (causal) in one call; logits of
    the last position."""
    ids = torch.tensor([context + block_tokens])
    n = len(block_tokens)
    positions = torch.tensor([[list(range(len(context))) + [mask_position] * n,
                               [0] * len(context) + list(range(1, n + 1))]])
    logits, *_ = model(ids, positions, torch.tensor([len(context)]))
    return logits[:, -1]


@torch.no_grad()
@pytest.mark.parametrize("backend", ["sdpa", "reference"])
def test_incremental_decoding_matches_recomputation(backend):
    model = model_with_memory(backend=backend)
    context = [1, 7, 8, 2, 9, 10, 11, 0]
    mask_position = 3
    _, *mems = model(*context_inputs(context))
    block = [4]  # sop
    logits, mems = model_step(model, torch.tensor([4]), torch.tensor([mask_position]), 1, mems)
    for step in range(10):
        expected = full_logits(model, context, mask_position, block)
        assert (logits - expected).abs().max().item() < 1e-5, step
        token = int(logits.argmax(-1))
        block.append(token)
        logits, mems = model_step(model, torch.tensor([token]), torch.tensor([mask_position]), step + 2, mems)
    assert mems[0].size(1) == len(context) + len(block)


@torch.no_grad()
def test_greedy_sample_block_equals_recomputed_greedy():
    model = model_with_memory(vocab=24, seed=3)
    context = [1, 12, 13, 2, 14, 0]
    config = DecodeConfig(max_new_tokens=8, top_k=1, end_ids=(EOP, 0), num_tokens=20)
    _, *mems = model(*context_inputs(context))
    logits, mems = model_step(model, torch.tensor([4]), torch.tensor([3]), 1, mems)
    got, _ = sample_block(model, logits, mems, torch.tensor([3]), 2, config)
    block, expected = [4], []
    for _ in range(8):
        scores = full_logits(model, context, 3, block)
        scores[:, 20:] = -math.inf
        token = int(scores.argmax(-1))
        if token in (EOP, 0):
            break
        expected.append(token)
        block.append(token)
    assert got == [expected]


@torch.no_grad()
def test_generate_batch_equals_rows_one_by_one():
    """The seq2seq entry point: (tokens ending in sop, positions, sep) batches."""
    model = model_with_memory(vocab=24, seed=1)
    sources = [[1, 12, 13, 14, 2, 0], [1, 15, 2, 16, 17, 0]]
    rows = []
    for source in sources:
        ids = source + [4]
        positions = [list(range(len(source))) + [4], [0] * len(source) + [1]]
        rows.append((ids, positions))
    tokens = torch.tensor([r[0] for r in rows])
    positions = torch.tensor([r[1] for r in rows])
    sep = torch.tensor([len(sources[0])] * 2)
    for beams in (1, 3):
        config = DecodeConfig(max_new_tokens=6, top_k=1 if beams == 1 else 0, num_beams=beams, end_ids=(EOP,),
                              num_tokens=20)
        batch_ids, _ = generate(model, tokens, positions, sep, config)
        for i in range(2):
            one, _ = generate(model, tokens[i:i + 1], positions[i:i + 1], sep[i:i + 1], config)
            assert batch_ids[i] == one[0]


# -- beam search vs brute force ------------------------------------------------------------------

def brute_force(model, context, mask_position, vocab, end, depth, length_penalty, offset):
    """Score every sequence of at most ``depth`` tokens (ending in ``end`` or at full depth)."""
    best = (-math.inf, None)
    tokens = [t for t in range(vocab) if t != end]
    cache = {}

    def log_probs(block):
        key = tuple(block)
        if key not in cache:
            cache[key] = torch.log_softmax(full_logits(model, context, mask_position, block)[0, :vocab].double(), -1)
        return cache[key]

    for n in range(depth + 1):
        for seq in itertools.product(tokens, repeat=n):
            total = 0.0
            block = [4]
            for token in seq:
                total += float(log_probs(block)[token])
                block.append(token)
            if n < depth:
                total += float(log_probs(block)[end])
            score = total / (max(n + offset, 1) ** length_penalty)
            if score > best[0]:
                best = (score, list(seq))
    return best


@torch.no_grad()
@pytest.mark.parametrize("length_penalty", [0.0, 1.0, 2.0])
def test_beam_search_finds_brute_force_optimum(length_penalty):
    vocab, depth, end = 5, 3, 3
    model = model_with_memory(vocab=8, seed=7)
    context = [1, 6, 2, 7, 0]
    # Exhaustive beam width: every sequence stays alive, so beam search must find the optimum.
    config = DecodeConfig(max_new_tokens=depth, num_beams=vocab ** depth, length_penalty=length_penalty,
                          end_ids=(end,), num_tokens=vocab, pad_id=0)
    _, *mems = model(*context_inputs(context))
    logits, mems = model_step(model, torch.tensor([4]), torch.tensor([2]), 1, mems)
    ids, scores = beam_search_block(model, logits, mems, torch.tensor([2]), 2, config)
    want_score, want_ids = brute_force(model, context, 2, vocab, end, depth, length_penalty, config.length_offset)
    assert ids[0] == want_ids
    assert abs(scores[0] - want_score) < 1e-4


@torch.no_grad()
def test_single_beam_is_greedy_and_min_length_holds():
    model = model_with_memory(vocab=12, seed=2)
    context = [1, 6, 2, 7, 0]
    _, *mems = model(*context_inputs(context))
    logits, mems = model_step(model, torch.tensor([4]), torch.tensor([2]), 1, mems)
    greedy_cfg = DecodeConfig(max_new_tokens=5, top_k=1, end_ids=(EOP,), num_tokens=10)
    beam_cfg = DecodeConfig(max_new_tokens=5, num_beams=1, end_ids=(EOP,), num_tokens=10)
    greedy_ids, _ = sample_block(model, logits, [m.clone() for m in mems], torch.tensor([2]), 2, greedy_cfg)
    # num_beams=1 through beam_search_block directly is greedy too
    beam_ids, _ = beam_search_block(model, logits, mems, torch.tensor([2]), 2, beam_cfg)
    assert beam_ids[0] == greedy_ids[0]
    strong_end = logits.clone()
    strong_end[:, EOP] = 100.0
    cfg = DecodeConfig(max_new_tokens=6, num_beams=3, min_length=4, end_ids=(EOP,), num_tokens=10)
    ids, _ = beam_search_block(model, strong_end, mems, torch.tensor([2]), 2, cfg)
    assert len(ids[0]) >= 4 and EOP not in ids[0]


@torch.no_grad()
def test_no_repeat_ngram_in_beam_search():
    model = model_with_memory(vocab=12, seed=5)
    context = [1, 6, 2, 7, 0]
    _, *mems = model(*context_inputs(context))
    logits, mems = model_step(model, torch.tensor([4]), torch.tensor([2]), 1, mems)
    cfg = DecodeConfig(max_new_tokens=12, num_beams=2, no_repeat_ngram_size=2, end_ids=(), num_tokens=10)
    ids, _ = beam_search_block(model, logits, mems, torch.tensor([2]), 2, cfg)
    pairs = list(zip(ids[0], ids[0][1:]))
    assert len(pairs) == len(set(pairs))


@torch.no_grad()
def test_beam_sampling_option_runs_and_is_seeded():
    model = model_with_memory(vocab=12, seed=5)
    context = [1, 6, 2, 7, 0]
    _, *mems = model(*context_inputs(context))
    logits, mems = model_step(model, torch.tensor([4]), torch.tensor([2]), 1, mems)
    cfg = DecodeConfig(max_new_tokens=6, num_beams=3, beam_sample=True, end_ids=(EOP,), num_tokens=10)
    runs = [beam_search_block(model, logits, mems, torch.tensor([2]), 2, cfg,
                              torch.Generator().manual_seed(11))[0] for _ in range(2)]
    assert runs[0] == runs[1]
    assert all(t < 10 for t in runs[0][0])


# -- sampling ---------------------------------------------------------------------------------------

def test_top_p_batch_keeps_each_rows_nucleus():
    probs = torch.tensor([[0.5, 0.3, 0.15, 0.05], [0.1, 0.2, 0.3, 0.4], [0.97, 0.01, 0.01, 0.01]])
    filtered = top_p_filter(probs.log(), 0.6)
    kept = torch.isfinite(filtered)
    assert kept.tolist() == [[True, True, False, False], [False, False, True, True], [True, False, False, False]]
    gen = torch.Generator().manual_seed(0)
    logits = probs.log().repeat(50, 1)
    ids = sample_next(logits, temperature=1.0, top_p=0.6, generator=gen)
    allowed = kept.repeat(50, 1)
    assert bool(allowed[torch.arange(150), ids].all())


def test_top_k_batch_and_ties():
    logits = torch.tensor([[1.0, 3.0, 2.0, 0.0], [5.0, 5.0, 1.0, 0.0]])
    out = filter_logits(logits, top_k=2)
    assert torch.isfinite(out).tolist() == [[False, True, True, False], [True, True, False, False]]


@pytest.mark.parametrize("kwargs", [dict(top_k=1), dict(temperature=0.7), dict(top_k=3), dict(top_p=0.9),
                                    dict(top_k=5, top_p=0.5, temperature=2.0), dict(temperature=0.0)])
def test_no_sample_outside_real_vocabulary(kwargs):
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(64, 32, generator=gen)
    logits[:, 20:] += 50.0  # the padded rows are by far the most likely
    ids = sample_next(logits, num_tokens=20, generator=gen, **kwargs)
    assert int(ids.max()) < 20


@torch.no_grad()
def test_decoding_never_emits_padded_ids():
    model = model_with_memory(vocab=16, seed=4)
    with torch.no_grad():
        model.word_embeddings.weight[12:] *= 50.0  # make padded rows dominate the logits
    context = [1, 6, 2, 7, 0]
    _, *mems = model(*context_inputs(context))
    logits, mems = model_step(model, torch.tensor([4]), torch.tensor([2]), 1, mems)
    assert int(logits.argmax(-1)) >= 12
    for cfg in (DecodeConfig(max_new_tokens=8, temperature=1.0, end_ids=(EOP,), num_tokens=12),
                DecodeConfig(max_new_tokens=8, top_p=0.95, end_ids=(EOP,), num_tokens=12),
                DecodeConfig(max_new_tokens=8, num_beams=3, end_ids=(EOP,), num_tokens=12)):
        if cfg.num_beams > 1:
            ids, _ = beam_search_block(model, logits, mems, torch.tensor([2]), 2, cfg)
        else:
            ids, _ = sample_block(model, logits, [m.clone() for m in mems], torch.tensor([2]), 2, cfg,
                                  torch.Generator().manual_seed(0))
        assert all(t < 12 for t in ids[0]), ids


def test_config_validation():
    with pytest.raises(ValueError, match="top_p"):
        DecodeConfig(top_p=1.5)
    with pytest.raises(ValueError, match="num_beams"):
        DecodeConfig(num_beams=0)


# -- key/value cache -------------------------------------------------------------------------------

@torch.no_grad()
@pytest.mark.parametrize("backend,memory", [("sdpa", 64), ("reference", 64), ("sdpa", 7)])
def test_kv_cache_equals_model_memory(backend, memory):
    """Same logits and memory lengths as the model's hidden-state memory, truncation included
    (``memory=7`` drops the oldest positions during decoding)."""
    from glm.generation import KVCacheModel

    torch.manual_seed(0)
    model = tiny_glm(vocab=16, mem=memory, max_seq=64, backend=backend).eval()
    cached = KVCacheModel(model)
    context = [1, 7, 8, 2, 9, 0]
    inputs = context_inputs(context)
    logits_a, *mems_a = model(*inputs)
    logits_b, *mems_b = cached(*inputs)
    assert logits_b.shape == (1, 1, 16)  # last position only (default)
    assert (logits_a[:, -1:] - logits_b).abs().max() < 1e-5
    every_position = KVCacheModel(model, last_logits_only=False)(*inputs)[0]
    assert (logits_a - every_position).abs().max() < 1e-5
    for step in range(10):
        token = torch.tensor([int(logits_a[:, -1].argmax(-1))])
        logits_a, mems_a = model_step(model, token, torch.tensor([3]), step + 1, mems_a)
        logits_b, mems_b = model_step(cached, token, torch.tensor([3]), step + 1, mems_b)
        assert (logits_a - logits_b).abs().max() < 1e-5, step
        assert mems_a[0].size(1) == mems_b[0].size(1) == min(memory, len(context) + step + 1)
        logits_a = logits_a.unsqueeze(1)


@torch.no_grad()
def test_generate_kv_cache_and_memory_agree_with_beams():
    model = model_with_memory(vocab=24, seed=1)
    tokens = torch.tensor([[1, 12, 13, 2, 14, 0, 4], [1, 15, 2, 16, 17, 0, 4]])
    positions = torch.tensor([[[0, 1, 2, 3, 4, 5, 3], [0, 0, 0, 0, 0, 0, 1]],
                              [[0, 1, 2, 3, 4, 5, 2], [0, 0, 0, 0, 0, 0, 1]]])
    config = DecodeConfig(max_new_tokens=6, num_beams=3, length_penalty=1.0, end_ids=(EOP,), num_tokens=20)
    a = generate(model, tokens, positions, torch.tensor([6, 6]), config, kv_cache=True)
    b = generate(model, tokens, positions, torch.tensor([6, 6]), config, kv_cache=False)
    assert a[0] == b[0]
    assert max(abs(x - y) for x, y in zip(a[1], b[1])) < 1e-4


@torch.no_grad()
def test_kv_cache_is_an_argument_of_the_model_forward():
    """``GLMModel.forward(kv_cache=...)`` gives the hidden-state memory's logits; the cache keeps the
    model's ``max_memory_length`` positions unless ``return_memory``; it cannot be mixed with a memory,
    nor used by Transformer-XL models."""
    torch.manual_seed(0)
    model = tiny_glm(vocab=16, mem=5, max_seq=64).eval()
    inputs = context_inputs([1, 7, 8, 2, 9, 0])
    logits_a, *mems = model(*inputs)
    logits_b, *cache = model(*inputs, kv_cache=[])
    assert len(cache) == 2 * 2 and cache[0].size(1) == 5 and torch.equal(logits_a, logits_b)
    step = (torch.tensor([[3]]), torch.tensor([[[3], [1]]]), torch.tensor([0]))
    assert (model(*step, *mems)[0] - model(*step, kv_cache=cache)[0]).abs().max() < 1e-5
    assert model(*inputs, kv_cache=[], return_memory=True)[1].size(1) == 6
    with pytest.raises(ValueError, match="not both"):
        model(*step, *mems, kv_cache=cache)
    with pytest.raises(ValueError, match="absolute positions"):
        tiny_glm(relative=True, block=False, mem=4)(*context_inputs([1, 2]), kv_cache=[])
