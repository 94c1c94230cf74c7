"""Bad inputs get errors that name the culprit; the mask forms behave as spec section 2 says."""

import pytest
import torch

from glm.model import GLMModel
from glm.model.attention import sep_to_mask
from tests.helpers import glm_batch, tiny_glm


def test_hidden_not_divisible_by_heads():
    with pytest.raises(ValueError, match="hidden size 30 is not divisible by the number of attention heads 4"):
        tiny_glm(hidden=30, heads=4)


def test_vocab_divisibility_is_checked_by_the_parallel_embedding():
    from glm.mpu import VocabParallelEmbedding
    emb = VocabParallelEmbedding(10, 4)  # one process: any size is fine
    assert emb.weight.shape == (10, 4)


def test_position_ids_outside_the_table():
    model = tiny_glm(max_seq=16)
    ids, pos, sep = glm_batch(length=8, max_seq=16)
    pos[0, 0, 3] = 17  # the table has 17 rows (max_sequence_length + 1): ids 0..16
    with pytest.raises(ValueError, match=r"position ids must lie in \[0, 16\].*17 rows"):
        model(ids, pos, sep)


def test_position_ids_wrong_shape():
    model = tiny_glm()
    ids, pos, sep = glm_batch(length=8)
    with pytest.raises(ValueError, match=r"position_ids must have shape \[2, 2, 8\]"):
        model(ids, pos[:, 0], sep)


@pytest.mark.parametrize("bad", [-1, 9])
def test_separator_outside_the_sequence(bad):
    model = tiny_glm()
    ids, pos, _ = glm_batch(length=8)
    with pytest.raises(ValueError, match=r"separator values must lie in \[0, 8\]"):
        model(ids, pos, torch.tensor([1, bad]))


def test_memories_wrong_count_and_width():
    model = tiny_glm(mem=8)
    ids, pos, sep = glm_batch(length=8)
    _, *mems = model(ids, pos, sep)
    assert len(mems) == 3
    with pytest.raises(ValueError, match="expected 3 memory tensors"):
        model(ids, pos, sep, *mems[:2])
    bad = [m[..., :16] for m in mems]
    with pytest.raises(ValueError, match=r"memory tensor 0 has shape \[2, 8, 16\]; expected \[2, 8, 32\]"):
        model(ids, pos, sep, *bad)


def test_separator_mask_semantics():
    mask = sep_to_mask(torch.tensor([0, 2, 4]), 3, 4, 1, "cpu")[:, 0].int()
    causal_plus_memory = torch.tensor([[1, 1, 0, 0, 0], [1, 1, 1, 0, 0], [1, 1, 1, 1, 0], [1, 1, 1, 1, 1]])
    assert torch.equal(mask[0], causal_plus_memory)
    # sep = 2: the first two keys are visible to every query (Part A is bidirectional).
    assert torch.equal(mask[1], torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 0, 0], [1, 1, 1, 1, 0], [1, 1, 1, 1, 1]]))
    assert torch.equal(mask[2], torch.ones(4, 5, dtype=torch.int32))


def test_scalar_vector_and_matrix_masks_agree():
    model = tiny_glm().eval()
    ids, pos, _ = glm_batch(batch=2, length=8)
    sep = torch.tensor([5, 5])
    matrix = sep_to_mask(sep, 2, 8, 0, "cpu").long()
    with torch.no_grad():
        a = model(ids, pos, torch.tensor([5]))[0]
        b = model(ids, pos, sep)[0]
        c = model(ids, pos, matrix)[0]
    assert torch.allclose(a, b, atol=1e-6) and torch.allclose(a, c, atol=1e-6)


@pytest.mark.parametrize("relative", [False, True])
def test_sdpa_and_reference_backends_agree_forward_and_backward(relative):
    ids, pos, sep = glm_batch(batch=2, length=10)
    results = []
    for backend in ("sdpa", "reference"):
        torch.manual_seed(0)
        model = tiny_glm(backend=backend, relative=relative, block=not relative, mem=4 if relative else 0)
        if relative:
            mask = sep_to_mask(torch.tensor([10]), 2, 10, 0, "cpu").float()
            logits = model(ids, pos, mask)[0]
        else:
            logits = model(ids, pos, sep)[0]
        logits.square().mean().backward()
        results.append((logits.detach(), {n: p.grad for n, p in model.named_parameters()}))
    assert (results[0][0] - results[1][0]).abs().max() < 1e-5
    for name, grad in results[0][1].items():
        assert (grad - results[1][1][name]).abs().max() < 1e-5, name


def test_fully_hidden_rows_use_the_reference_kernel():
    """A 0/1 matrix with a row that sees nothing attends uniformly, like the original."""
    model_fast = tiny_glm(backend="auto").eval()
    model_ref = tiny_glm(backend="reference").eval()
    model_ref.load_state_dict(model_fast.state_dict())
    ids, pos, _ = glm_batch(batch=1, length=6)
    matrix = torch.ones(1, 1, 6, 6).tril()
    matrix[0, 0, 5] = 0
    with torch.no_grad():
        a, b = model_fast(ids, pos, matrix)[0], model_ref(ids, pos, matrix)[0]
    assert torch.isfinite(a).all() and torch.allclose(a, b, atol=1e-6)


def test_memory_truncation_and_return_memory():
    model = tiny_glm(mem=5).eval()
    ids, pos, sep = glm_batch(batch=1, length=8)
    with torch.no_grad():
        _, *mems = model(ids, pos, sep)
        assert mems[0].size(1) == 5
        _, *mems = model(ids[:, :3], pos[..., :3], torch.tensor([0]), *mems)
        assert all(m.size(1) == 5 for m in mems)
        _, *mems = model(ids, pos, sep, return_memory=True)
        assert mems[0].size(1) == 8


def test_no_memory_returns_a_single_element_tuple():
    model = tiny_glm(mem=0)
    out = model(*glm_batch())
    assert isinstance(out, tuple) and len(out) == 1


def test_plain_positions_and_prompt_positions():
    model = tiny_glm(block=False, spell_length=3, spell_func="mlp")
    ids, pos, sep = glm_batch(block=False, length=8)
    logits = model(ids, pos, sep, prompt_pos=torch.tensor([[1, 2, 3], [2, 3, 4]]))[0]
    logits.sum().backward()
    assert model.prompt_spell.spell_embeddings.weight.grad.abs().sum() > 0


def test_freeze_transformer_and_weight_decay_groups():
    from glm.model import glm_get_params_for_weight_decay_optimization
    model = tiny_glm(layers=3)
    model.freeze_transformer(tune_prefix_layers=1)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith("transformer.layers.0.") for n in trainable)
    decay, no_decay = glm_get_params_for_weight_decay_optimization(model)
    assert no_decay["weight_decay"] == 0.0
    assert len(decay["params"]) + len(no_decay["params"]) == len(trainable)
    layer = model.transformer.layers[0]
    assert any(p is layer.input_layernorm.weight for p in no_decay["params"])
    assert any(p is layer.attention.dense.bias for p in no_decay["params"])
    assert any(p is layer.attention.dense.weight for p in decay["params"])


@pytest.mark.slow
def test_flex_backend_matches_sdpa_in_eval():
    """FlexAttention (compiled on first use) gives the SDPA logits; on CPU it has no backward, so it
    is an inference option here and a training option on GPUs (without attention dropout)."""
    torch.manual_seed(0)
    flex = tiny_glm(backend="flex").eval()
    sdpa = tiny_glm(backend="sdpa").eval()
    sdpa.load_state_dict(flex.state_dict())
    ids, pos, sep = glm_batch(batch=2, length=16)
    with torch.no_grad():
        assert (flex(ids, pos, sep)[0] - sdpa(ids, pos, sep)[0]).abs().max() < 1e-5
