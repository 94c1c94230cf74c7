"""A dry run of one LoRA training step of the full GLM-10B shape on the meta device (issue 16 item 5).

The model (48 layers, hidden 4096, 64 heads, vocabulary 50048, sequence 512, bf16 base, activation
checkpointing, LoRA rank 8) is built by ``build_model(on_meta=True)``, adapted by ``add_lora``, run
forward and backward, and stepped by AdamW over the parameter groups ``build_optimizer`` makes: every
shape, dtype, the frozen/trainable split and the optimizer state are real, and no tensor holds data.

Three steps of the forward read values of their inputs, which meta tensors do not have, so the test
replaces them for its duration: the separator-to-mask conversion and the position range check (both
validate input values) and the attention-kernel pick (it asks autocast about the device type, which
has no autocast on meta).  The loss projects every position (``language_model_loss`` selects Part B
by value, a data-dependent shape); fused AdamW refuses meta tensors, so the step runs the same groups
unfused.
"""

import resource

import pytest
import torch

import glm.model.attention as attention
from glm import mpu
from glm.memory import Devices, GiB, parameter_counts, plan
from glm.model.lora import add_lora
from glm.model.transformer import GLMTransformer
from glm.training.model_setup import build_model, build_optimizer
from tests.helpers import parse_config

TEN_B = ["--block-lm", "--num-layers", "48", "--hidden-size", "4096", "--num-attention-heads", "64",
         "--max-position-embeddings", "1024", "--seq-length", "512", "--batch-size", "2",
         "--checkpoint-activations", "--bf16", "--lora-rank", "8"]


@pytest.fixture
def meta_friendly_forward(monkeypatch):
    def all_visible_mask(attention_mask, batch, query_length, memory_length, dtype):
        return attention.PreparedMask(torch.ones(batch, 1, query_length, memory_length + query_length,
                                                 dtype=torch.bool, device=attention_mask.device), False)
    monkeypatch.setattr(attention, "prepare_mask", all_visible_mask)
    monkeypatch.setattr(GLMTransformer, "_check_positions", lambda self, *args: None)
    monkeypatch.setattr(GLMTransformer, "_attention_kernel", lambda self, *args, **kwargs: "sdpa")


def test_glm_10b_lora_step_on_meta(meta_friendly_forward):
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    config = parse_config(TEN_B, vocab_size=50048)
    model = build_model(config, on_meta=True, dtype=torch.bfloat16)
    assert model.num_parameters() == sum(p.numel() for p in model.parameters()) == 9_879_633_920
    adapted = add_lora(model, config.adaptation.lora_rank, 16.0)
    assert len(adapted) == 48 * 4
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert sum(p.numel() for p in trainable) == parameter_counts(config)["trainable"] == 48 * 8 * (
        (4096 + 3 * 4096) + (4096 + 4096) + (4096 + 4 * 4096) + (4 * 4096 + 4096))
    assert all(p.device.type == "meta" and p.dtype == torch.bfloat16 for p in model.parameters())

    batch, seq, meta = 2, 512, torch.device("meta")
    text = torch.zeros(batch, seq, dtype=torch.long, device=meta)
    positions = torch.zeros(batch, 2, seq, dtype=torch.long, device=meta)
    model.train()
    logits = model(text, positions, torch.full((batch,), 400, device=meta))[0]
    assert logits.shape == (batch, seq, 50048) and logits.device == meta
    loss = mpu.vocab_parallel_cross_entropy(logits, torch.zeros(batch, seq, dtype=torch.long, device=meta)).mean()
    loss.backward()
    assert all(p.grad is not None and p.grad.shape == p.shape for p in trainable)
    assert all(p.grad is None for p in model.parameters() if not p.requires_grad)

    optimizer = build_optimizer(config, model)
    groups = optimizer.param_groups
    assert {id(p) for g in groups for p in g["params"]} == {id(p) for p in trainable}
    unfused = torch.optim.AdamW([dict(g, fused=False, foreach=False) for g in groups])
    unfused.step()
    state = [unfused.state[p] for p in trainable]
    assert all(s["exp_avg"].shape == p.shape and s["exp_avg_sq"].device == meta for s, p in zip(state, trainable))
    # Nothing of the 20 GB of weights was allocated.
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before < 1_000_000  # KiB: under 1 GB

    # The plan of this recipe on one 80 GB GPU, with the DeepSpeed bf16 engine of the recipe JSON.
    recipe = config.updated(deepspeed=True, deepspeed_config_dict={"bf16": {"enabled": True},
                                                                   "zero_optimization": {"stage": 0}}, cuda=True)
    assert plan(recipe, Devices(1, 80 * GiB)).fits
