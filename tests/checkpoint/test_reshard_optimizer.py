"""Adam's moments re-cut between model-parallel sizes by the weights' own partition rules
(glm/checkpoint/reshard.py); the multi-process resume that uses it is in
tests/distributed/test_resume_other_size.py."""

import torch

from glm.checkpoint.reshard import optimizer_parameter_names, partition_map, reshard_optimizer_states
from glm.model.lora import add_lora
from glm.mpu.partition import shard_tensor
from glm.training.model_setup import param_groups
from tests.helpers import glm_batch, tiny_glm


def trained_adam(lora_rank=0):
    """A tiny GLM and its AdamW after two updates; with ``lora_rank``, adapters on a frozen backbone."""
    torch.manual_seed(0)
    model = tiny_glm()
    if lora_rank:
        add_lora(model, lora_rank, 2 * lora_rank)
    optimizer = torch.optim.AdamW(param_groups(model), lr=1e-3, weight_decay=0.1)
    ids, positions, sep = glm_batch()
    for _ in range(2):
        optimizer.zero_grad()
        model(ids, positions, sep)[0].float().pow(2).mean().backward()
        optimizer.step()
    return model, optimizer


def test_moments_split_like_the_weights_and_merge_back():
    model, optimizer = trained_adam()
    state = optimizer.state_dict()
    names = optimizer_parameter_names(optimizer, model)
    layout = partition_map(model)
    qkv = names.index("transformer.layers.0.attention.query_key_value.weight")
    assert layout[names[qkv]] == (0, 3)  # the fused Q/K/V layout: stride 3

    shards = [reshard_optimizer_states([state], names, layout, 2, rank) for rank in range(2)]
    for rank, shard in enumerate(shards):
        for index, entry in state["state"].items():
            dim, stride = layout[names[index]]
            for key in ("exp_avg", "exp_avg_sq"):
                torch.testing.assert_close(shard["state"][index][key],
                                           shard_tensor(entry[key], dim, stride, 2, rank), rtol=0, atol=0)
            assert shard["state"][index]["step"] == entry["step"]
        assert shard["param_groups"] == state["param_groups"]
    assert shards[0]["state"][qkv]["exp_avg"].shape[0] == state["state"][qkv]["exp_avg"].shape[0] // 2

    merged = reshard_optimizer_states(shards, names, layout, 1, 0)
    for index, entry in state["state"].items():
        for key in ("exp_avg", "exp_avg_sq"):
            torch.testing.assert_close(merged["state"][index][key], entry[key], rtol=0, atol=0)
    # A fresh optimizer on the same model accepts the re-merged state.
    fresh = torch.optim.AdamW(param_groups(model), lr=1e-3, weight_decay=0.1)
    fresh.load_state_dict(merged)
