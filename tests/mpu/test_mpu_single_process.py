"""mpu pieces on one process: layouts, loss, clipping, RNG streams, checkpointing."""

import pytest
import torch
import torch.nn.functional as F

from glm import mpu
from glm.mpu.partition import merge_shards, shard_tensor
from tests.helpers import glm_batch, tiny_glm


@pytest.mark.parametrize("dim,stride,world", [(0, 1, 2), (0, 3, 2), (0, 3, 4), (1, 1, 4), (None, 1, 2)])
def test_shard_merge_round_trip(dim, stride, world):
    full = torch.arange(24 * 12.0).view(24, 12)
    shards = [shard_tensor(full, dim, stride, world, r) for r in range(world)]
    assert torch.equal(merge_shards(shards, dim, stride), full)


def test_strided_qkv_layout():
    """Rank r of a stride-3 split holds [Q_r; K_r; V_r]."""
    q, k, v = torch.zeros(4, 1), torch.ones(4, 1), 2 * torch.ones(4, 1)
    q[:, 0] = torch.arange(4.0)
    full = torch.cat([q, k + torch.arange(4.0).view(4, 1) * 10, v + torch.arange(4.0).view(4, 1) * 100])
    rank1 = shard_tensor(full, 0, 3, 2, 1)
    assert rank1[:, 0].tolist() == [2.0, 3.0, 21.0, 31.0, 202.0, 302.0]


def test_shard_rejects_indivisible():
    with pytest.raises(ValueError, match="not divisible"):
        shard_tensor(torch.zeros(10, 2), 0, 3, 2, 0)


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_cross_entropy_equals_torch(smoothing):
    logits = torch.randn(4, 7, 33, requires_grad=True)
    target = torch.randint(0, 33, (4, 7))
    ours = mpu.vocab_parallel_cross_entropy(logits, target, label_smoothing=smoothing)
    ref_in = logits.detach().clone().requires_grad_(True)
    theirs = F.cross_entropy(ref_in.transpose(1, 2), target, reduction="none", label_smoothing=smoothing)
    assert torch.allclose(ours, theirs, atol=1e-5)
    ours.sum().backward()
    theirs.sum().backward()
    assert torch.allclose(logits.grad, ref_in.grad, atol=1e-6)


def test_cross_entropy_half_precision_logits():
    logits = torch.randn(3, 50).to(torch.bfloat16).requires_grad_(True)
    target = torch.randint(0, 50, (3,))
    loss = mpu.vocab_parallel_cross_entropy(logits, target)
    assert loss.dtype == torch.float32
    loss.sum().backward()
    assert logits.grad.dtype == torch.bfloat16


def test_clip_grad_norm():
    p = torch.nn.Parameter(torch.zeros(3))
    p.grad = torch.tensor([3.0, 4.0, 0.0])
    norm = mpu.clip_grad_norm([p], max_norm=1.0)
    assert abs(norm.item() - 5.0) < 1e-6
    assert torch.allclose(p.grad, torch.tensor([0.6, 0.8, 0.0]), atol=1e-5)


def test_rng_tracker_streams_are_independent_and_reproducible():
    mpu.model_parallel_manual_seed(42)
    tracker = mpu.get_rng_tracker()
    outside_before = torch.get_rng_state()
    with tracker.fork():
        a = torch.rand(3)
    assert torch.equal(torch.get_rng_state(), outside_before)  # the default stream is untouched
    with tracker.fork():
        b = torch.rand(3)
    assert not torch.equal(a, b)  # the tracked stream advanced
    mpu.model_parallel_manual_seed(42)
    with tracker.fork():
        assert torch.equal(torch.rand(3), a)
    # seed + 2718 + mp_rank(0)
    torch.manual_seed(42 + 2718)
    assert torch.equal(torch.rand(3), a)


def test_checkpointing_identical_gradients_with_dropout():
    grads = []
    for checkpoint in (False, True):
        torch.manual_seed(1)
        model = tiny_glm(dropout=0.3, checkpoint=checkpoint, layers=3).train()
        mpu.model_parallel_manual_seed(9)
        ids, pos, sep = glm_batch()
        model(ids, pos, sep)[0].square().mean().backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*grads))
    # ...and dropout really was active: a different seed changes the gradients.
    torch.manual_seed(1)
    model = tiny_glm(dropout=0.3, checkpoint=True, layers=3).train()
    mpu.model_parallel_manual_seed(10)
    model(*glm_batch())[0].square().mean().backward()
    assert not all(torch.equal(a, p.grad) for a, p in zip(grads[1], model.parameters()))


def test_checkpointing_collects_memories():
    torch.manual_seed(0)
    plain = tiny_glm(mem=6)
    torch.manual_seed(0)
    ckpt = tiny_glm(mem=6, checkpoint=True)
    ids, pos, sep = glm_batch()
    a = plain(ids, pos, sep)
    b = ckpt(ids, pos, sep)
    assert len(a) == len(b) == 4  # logits + num_layers + 1 memories
    assert all(torch.allclose(x, y) for x, y in zip(a, b))


def test_getters_without_distributed():
    assert mpu.get_model_parallel_world_size() == 1
    assert mpu.get_model_parallel_rank() == 0
    assert mpu.get_data_parallel_world_size() == 1
    assert mpu.get_data_parallel_rank() == 0
    with pytest.raises(RuntimeError, match="init_process_group"):
        mpu.initialize_model_parallel(2)
