"""LoRA adapters on the tensor-parallel layers (glm/mpu/lora.py, glm/model/lora.py)."""

import copy

import pytest
import torch

from glm import mpu
from glm.checkpoint import load_model_state, save_model_checkpoint
from glm.model import GLMForSequenceClassification
from glm.model.lora import (LORA_TARGETS, add_lora, add_lora_from_config, adapter_state_dict, has_lora,
                            load_saved_weights, merge_lora, merged_state_dict, parse_targets)
from glm.mpu.lora import lora_layers
from glm.mpu.partition import shard_tensor
from glm.training.model_setup import build_optimizer
from tests.distributed.launcher import run_distributed
from tests.distributed.test_tensor_parallel import gather_full
from tests.helpers import glm_batch, parse_config, tiny_glm

MODEL_KW = dict(vocab=64, hidden=32, heads=4, layers=2, max_seq=32)


def _forward(model, seed=3):
    ids, pos, sep = glm_batch(batch=2, length=12, vocab=64, max_seq=32, seed=seed)
    return model(ids, pos, sep)[0]


def _randomise_adapters(model, seed=11):
    """Give every B (zero when fresh) values, the same at every model-parallel size: a full tensor
    drawn from ``seed`` and cut like the parameter."""
    g = torch.Generator().manual_seed(seed)
    group = mpu.get_model_parallel_group()
    world, rank = mpu.group_world_size(group), mpu.group_rank(group)
    for _, layer in lora_layers(model):
        b = layer.lora.b
        dim, stride = mpu.partition_info(b)
        full_shape = list(b.shape)
        if dim is not None:
            full_shape[dim] *= world
        full = torch.randn(full_shape, generator=g) * 0.05
        with torch.no_grad():
            b.copy_(shard_tensor(full, dim, stride, world, rank))


def test_targets_flag_is_checked():
    assert parse_targets("query_key_value, dense") == ("query_key_value", "dense")
    with pytest.raises(ValueError, match="lora-targets"):
        parse_targets("query_key_value,qkv")


def test_fresh_adapter_leaves_outputs_unchanged_and_adapts_the_named_layers():
    torch.manual_seed(0)
    model = tiny_glm(**MODEL_KW).eval()
    before = _forward(model).detach()
    adapted = add_lora(model, rank=4, alpha=8, targets=LORA_TARGETS)
    assert len(adapted) == 2 * 4  # 2 layers x (query_key_value, dense, dense_h_to_4h, dense_4h_to_h)
    assert torch.equal(_forward(model), before)
    only_qkv = tiny_glm(**MODEL_KW)
    assert [n.rsplit(".", 1)[-1] for n in add_lora(only_qkv, 2, 2, targets=("query_key_value",))] == \
        ["query_key_value"] * 2


def test_only_adapters_and_the_head_train_and_have_optimizer_state():
    torch.manual_seed(0)
    model = GLMForSequenceClassification(tiny_glm(**MODEL_KW, output_predict=False), 32, 0.0, "cls", num_class=1)
    # The default optimizer: adam, weight decay 0.01, betas (0.9, 0.999), eps 1e-8.
    cfg = parse_config(["--lora-rank", "4", "--lora-targets", "query_key_value,dense", "--lr", "1e-2"])
    add_lora_from_config(model, cfg)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    head = {n for n in trainable if not n.startswith("model.")}
    assert head and all(".lora." in n for n in trainable - head)
    assert len(trainable - head) == 2 * 2 * 2  # layers x targets x (A, B)
    optimizer = build_optimizer(cfg, model)
    ids, pos, sep = glm_batch(batch=2, length=12, vocab=64, max_seq=32, seed=3)
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    model(ids.unsqueeze(1), pos.unsqueeze(1), sep.unsqueeze(1))[0].sum().backward()
    optimizer.step()
    with_state = {id(p) for p in optimizer.state}
    names = {id(p): n for n, p in model.named_parameters()}
    assert {names[i] for i in with_state} == trainable
    for n, p in model.named_parameters():
        assert (p.grad is not None) == (n in trainable), n
        if n in frozen:
            assert torch.equal(p, frozen[n]), n
    # B moved off zero: the adapters changed the model.
    assert all(layer.lora.b.abs().sum() > 0 for _, layer in lora_layers(model))


def test_merged_model_equals_adapted_and_saves_in_the_original_layout(tmp_path):
    torch.manual_seed(0)
    model = tiny_glm(**MODEL_KW).eval()
    plain_keys = set(model.state_dict())
    add_lora(model, rank=4, alpha=16)
    _randomise_adapters(model)
    adapted = _forward(model).detach()
    merged_state = merged_state_dict(model)
    assert set(merged_state) == plain_keys
    # The merged weights in a plain model (as change_mp/generation/the HF export read them).
    save_model_checkpoint(str(tmp_path / "merged"), "release", {"module": merged_state, "iteration": 0})
    plain = tiny_glm(**MODEL_KW).eval()
    load_model_state(plain, str(tmp_path / "merged"))
    torch.testing.assert_close(_forward(plain), adapted, atol=1e-5, rtol=1e-5)
    # Merging in place: the same model without adapters.
    in_place = merge_lora(copy.deepcopy(model))
    assert not has_lora(in_place)
    torch.testing.assert_close(_forward(in_place), adapted, atol=1e-5, rtol=1e-5)
    # The adapter alone, put back into a freshly adapted model on the same base weights.
    adapter = adapter_state_dict(model)
    assert adapter and all(".lora." in k for k in adapter)
    torch.manual_seed(0)
    fresh = tiny_glm(**MODEL_KW).eval()
    add_lora(fresh, rank=4, alpha=16)
    load_saved_weights(fresh, adapter)
    torch.testing.assert_close(_forward(fresh), adapted, atol=0, rtol=0)
    # A merged file put back into an adapted model (restoring a run's best weights) drops the adapters.
    torch.manual_seed(0)
    again = tiny_glm(**MODEL_KW).eval()
    add_lora(again, rank=4, alpha=16)
    load_saved_weights(again, merged_state)
    assert not has_lora(again)
    torch.testing.assert_close(_forward(again), adapted, atol=1e-5, rtol=1e-5)


def _adapted_run(dropout=0.0):
    torch.manual_seed(7)
    model = tiny_glm(**MODEL_KW)
    add_lora(model, rank=4, alpha=8, dropout=dropout)
    _randomise_adapters(model)
    ids, pos, sep = glm_batch(batch=2, length=12, vocab=64, max_seq=32, seed=3)
    logits = model(ids, pos, sep)[0]
    loss = mpu.vocab_parallel_cross_entropy(logits, torch.roll(ids, 1, dims=1)).mean()
    loss.backward()
    return model, logits, loss


def _tp_worker(rank, world, expected):
    mpu.initialize_model_parallel(world)
    model, logits, loss = _adapted_run()
    assert abs(loss.item() - expected["loss"]) < 1e-5
    group = mpu.get_model_parallel_group()
    lora = {n: p for n, p in model.named_parameters() if ".lora." in n}
    grads = {n: gather_full(p.grad, *mpu.partition_info(p), group) for n, p in lora.items()}
    params = {n: gather_full(p, *mpu.partition_info(p), group) for n, p in lora.items()}
    assert set(grads) == set(expected["grads"])
    assert all(p.grad is None for n, p in model.named_parameters() if n not in lora)
    for name, want in expected["grads"].items():
        torch.testing.assert_close(params[name], expected["params"][name], atol=0, rtol=0)
        torch.testing.assert_close(grads[name], want, atol=1e-5, rtol=1e-4, msg=f"TP={world} grad {name}")
    # Merged in place at this size equals the adapted model.
    model.eval()
    adapted = _forward(model).detach()
    torch.testing.assert_close(_forward(merge_lora(model)), adapted, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("world", [2, 4])
def test_tensor_parallel_adapters_equal_the_single_process_model(world):
    model, logits, loss = _adapted_run()
    lora = {n: p for n, p in model.named_parameters() if ".lora." in n}
    expected = {"loss": loss.item(), "grads": {n: p.grad.clone() for n, p in lora.items()},
                "params": {n: p.detach().clone() for n, p in lora.items()}}
    assert all(g.abs().sum() > 0 for g in expected["grads"].values())
    run_distributed(_tp_worker, world, expected)


def test_change_mp_recuts_a_checkpoint_that_holds_adapters(tmp_path):
    """A resumable LoRA checkpoint (base weights + adapters) goes 1 -> 2 -> 1 through change_mp.py
    unchanged, the adapters cut by their own partition attributes."""
    from glm.checkpoint.change_mp import change_model_parallel
    from glm.checkpoint.io import load_checkpoint_file
    torch.manual_seed(0)
    model = tiny_glm(**MODEL_KW)
    add_lora(model, rank=4, alpha=8)
    _randomise_adapters(model)
    state = model.state_dict()
    save_model_checkpoint(str(tmp_path / "mp1"), "1", {"module": state, "iteration": 1})
    change_model_parallel(str(tmp_path / "mp1"), 2, output_dir=str(tmp_path / "mp2"), log=lambda *a: None)
    shard = load_checkpoint_file(str(tmp_path / "mp2" / "1" / "mp_rank_01_model_states.pt"))["module"]
    qkv = "transformer.layers.0.attention.query_key_value.lora."
    dense = "transformer.layers.0.attention.dense.lora."
    assert torch.equal(shard[qkv + "b"], shard_tensor(state[qkv + "b"], 0, 3, 2, 1))
    assert torch.equal(shard[qkv + "a"], state[qkv + "a"])
    assert torch.equal(shard[dense + "a"], shard_tensor(state[dense + "a"], 1, 1, 2, 1))
    assert torch.equal(shard[dense + "b"], state[dense + "b"])
    change_model_parallel(str(tmp_path / "mp2"), 1, output_dir=str(tmp_path / "back"), log=lambda *a: None)
    back = load_checkpoint_file(str(tmp_path / "back" / "1" / "mp_rank_00_model_states.pt"))["module"]
    assert set(back) == set(state) and all(torch.equal(back[k], state[k]) for k in state)
