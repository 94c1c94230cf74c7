"""Tensor parallelism on 2 and 4 gloo processes equals the single-process model.

Each test computes the single-process (TP=1) answer here, then spawns workers that build the
same model at TP=k and compare.  Tolerances: 1e-5 for parity with TP=1 (observed ~1e-7),
1e-4 against the original's recorded logits.
"""

import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F

from glm import mpu
from glm.checkpoint import load_model_state
from glm.model import GLMModel
from glm.mpu.partition import merge_shards
from tests.distributed.launcher import run_distributed
from tests.helpers import glm_batch, tiny_glm

PARITY_TOL = 1e-5
REFERENCE_TOL = 1e-4


def gather_full(tensor, dim, stride, group):
    """Rebuild a full parameter (or gradient) from every model-parallel rank's shard."""
    if dim is None:
        return tensor.detach().clone()
    parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size(group))]
    dist.all_gather(parts, tensor.detach().contiguous(), group=group)
    return merge_shards(parts, dim, stride)


def full_named(model, use_grad):
    group = mpu.get_model_parallel_group()
    out = {}
    for name, p in model.named_parameters():
        t = p.grad if use_grad else p
        out[name] = gather_full(t, *mpu.partition_info(p), group)
    return out


# ---------------------------------------------------------------------------------------------
# 1. The original's checkpoints at model-parallel sizes 2 and 4
# ---------------------------------------------------------------------------------------------

def _reference_worker(rank, world, reference_dir, checkpoints):
    mpu.initialize_model_parallel(world)
    vectors = torch.load(f"{reference_dir}/model/forward_main.pt", weights_only=True)
    c = vectors["model_config"]
    for checkpoint in checkpoints:
        model = GLMModel(c["num_layers"], c["vocab_size"], c["hidden_size"], c["num_attention_heads"], 0.1, 0.1, 0.1,
                         c["max_sequence_length"], c["max_memory_length"], False, parallel_output=False,
                         block_position_encoding=True).eval()
        load_model_state(model, f"{reference_dir}/model/checkpoints/{checkpoint}")
        with torch.no_grad():
            for name, case in vectors["cases"].items():
                logits = model(case["input_ids"], case["position_ids"], case["attention_mask"])[0]
                err = (logits - case["logits"]).abs().max().item()
                assert err < REFERENCE_TOL, f"{checkpoint} TP={world} {name}: max |diff| {err}"
    xl = torch.load(f"{reference_dir}/model/forward_xl.pt", weights_only=True)
    c = xl["model_config"]
    model = GLMModel(c["num_layers"], c["vocab_size"], c["hidden_size"], c["num_attention_heads"], 0.1, 0.1, 0.1,
                     c["max_sequence_length"], c["max_memory_length"], False, parallel_output=False,
                     relative_encoding=True).eval()
    load_model_state(model, f"{reference_dir}/model/checkpoints/glm_xl_MP2")
    mems = []
    with torch.no_grad():
        for segment in xl["segments"]:
            logits, *mems = model(segment["input_ids"], segment["position_ids"], segment["attention_mask"], *mems)
            assert (logits - segment["logits"]).abs().max().item() < REFERENCE_TOL


def test_mp2_shards_on_two_ranks_give_mp1_logits(reference_dir):
    run_distributed(_reference_worker, 2, str(reference_dir), ["glm_main_MP2", "glm_main"])


def test_four_ranks_reshard_mp1_and_mp2_checkpoints(reference_dir):
    run_distributed(_reference_worker, 4, str(reference_dir), ["glm_main", "glm_main_MP2"])


# ---------------------------------------------------------------------------------------------
# 2. Forward/backward parity, initialisation, loss, clipping, broadcast
# ---------------------------------------------------------------------------------------------

MODEL_KW = dict(vocab=64, hidden=32, heads=4, layers=2, max_seq=32)


def _single_process_reference():
    torch.manual_seed(7)
    model = tiny_glm(**MODEL_KW)
    ids, pos, sep = glm_batch(batch=2, length=12, vocab=64, max_seq=32, seed=3)
    targets = torch.roll(ids, 1, dims=1)
    logits = model(ids, pos, sep)[0]
    loss = mpu.vocab_parallel_cross_entropy(logits, targets).mean()
    loss.backward()
    params = {n: p.detach().clone() for n, p in model.named_parameters()}
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    norm = torch.sqrt(sum((g.double() ** 2).sum() for g in grads.values())).item()
    return dict(ids=ids, pos=pos, sep=sep, targets=targets, logits=logits.detach(), loss=loss.item(),
                params=params, grads=grads, norm=norm)


def _parity_worker(rank, world, ref):
    mpu.initialize_model_parallel(world)
    group = mpu.get_model_parallel_group()
    torch.manual_seed(7)
    model = tiny_glm(**MODEL_KW)

    # Initialisation is independent of the parallel size.
    for name, full in full_named(model, use_grad=False).items():
        assert torch.equal(full, ref["params"][name]), f"init differs at TP={world}: {name}"

    logits = model(ref["ids"], ref["pos"], ref["sep"])[0]
    full_logits = gather_full(logits, -1, 1, group)
    assert (full_logits - ref["logits"]).abs().max().item() < PARITY_TOL
    loss = mpu.vocab_parallel_cross_entropy(logits, ref["targets"]).mean()
    assert abs(loss.item() - ref["loss"]) < PARITY_TOL
    loss.backward()
    for name, grad in full_named(model, use_grad=True).items():
        err = (grad - ref["grads"][name]).abs().max().item()
        assert err < PARITY_TOL, f"TP={world} gradient of {name} differs by {err}"

    # Clipping counts replicated parameters once: the norm is the single-process norm.
    norm = mpu.clip_grad_norm(model.parameters(), max_norm=1e9)
    assert abs(norm.item() - ref["norm"]) < 1e-4 * max(1.0, ref["norm"])

    # Vocab-parallel cross entropy and its gradient equal torch's on the gathered logits.
    g = torch.Generator().manual_seed(11)
    full = torch.randn(3, 5, 64, generator=g)
    target = torch.randint(0, 64, (3, 5), generator=g)
    for smoothing in (0.0, 0.1):
        local = full.chunk(world, dim=-1)[rank].clone().requires_grad_(True)
        ours = mpu.vocab_parallel_cross_entropy(local, target, label_smoothing=smoothing)
        reference_input = full.clone().requires_grad_(True)
        theirs = F.cross_entropy(reference_input.view(-1, 64), target.view(-1), reduction="none",
                                 label_smoothing=smoothing).view(3, 5)
        assert (ours - theirs).abs().max().item() < 1e-5
        (ours * torch.arange(15.0).view(3, 5)).sum().backward()
        (theirs * torch.arange(15.0).view(3, 5)).sum().backward()
        assert (local.grad - reference_input.grad.chunk(world, dim=-1)[rank]).abs().max().item() < 1e-5

    # Shapes the parallel size cannot split are refused with the culprit named.
    vocab = 66 if world == 4 else 65
    with pytest.raises(ValueError, match=f"vocabulary size {vocab} is not divisible by the model-parallel size {world}"):
        tiny_glm(vocab=vocab, **{k: v for k, v in MODEL_KW.items() if k != "vocab"})
    with pytest.raises(ValueError, match=f"attention heads 3 must both be divisible by the model-parallel size {world}"):
        tiny_glm(hidden=36, heads=3, **{k: v for k, v in MODEL_KW.items() if k not in ("hidden", "heads")})

    # A batch built on the first rank of the group reaches the others, zero-sized dims included.
    data = {"text": torch.arange(12).view(3, 4), "empty": torch.zeros(2, 0, dtype=torch.long)} if rank == 0 else None
    got = mpu.broadcast_data(["text", "empty"], data, torch.int64)
    assert torch.equal(got["text"], torch.arange(12).view(3, 4)) and got["empty"].shape == (2, 0)


@pytest.mark.parametrize("world", [2, 4])
def test_tensor_parallel_matches_single_process(world):
    run_distributed(_parity_worker, world, _single_process_reference())


def _dropout_checkpoint_worker(rank, world):
    """With dropout on, activation checkpointing gives exactly the gradients of a plain run."""
    mpu.initialize_model_parallel(world)
    grads = []
    for checkpoint in (False, True):
        torch.manual_seed(5)
        model = tiny_glm(dropout=0.2, checkpoint=checkpoint, **MODEL_KW).train()
        mpu.model_parallel_manual_seed(123)
        ids, pos, sep = glm_batch(batch=2, length=12, vocab=64, max_seq=32, seed=3)
        logits = model(ids, pos, sep)[0]
        mpu.vocab_parallel_cross_entropy(logits, ids).mean().backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters()})
    for name in grads[0]:
        assert torch.equal(grads[0][name], grads[1][name]), f"checkpointed gradient differs: {name}"
    # The model-parallel stream really differs between ranks (attention dropout is per shard).
    state = mpu.get_rng_tracker().get_states()[mpu.random.MODEL_PARALLEL_RNG]
    states = [torch.empty_like(state) for _ in range(world)]
    dist.all_gather(states, state)
    assert not torch.equal(states[0], states[1])


def test_activation_checkpointing_with_dropout_two_ranks():
    run_distributed(_dropout_checkpoint_worker, 2)
