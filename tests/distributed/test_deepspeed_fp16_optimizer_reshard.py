"""DeepSpeed's fp16 optimizer wrappers (without ZeRO) re-cut to another model-parallel size, against
DeepSpeed itself at that size.

DeepSpeed without ZeRO wraps the optimizer in ``FP16_UnfusedOptimizer`` (one fp32 master tensor per
parameter: what this project's engine gets, torch's AdamW, in fp16 and bf16) or, with a ``FusedAdam``
(a GPU), ``FP16_Optimizer`` (one flat fp32 tensor per group, Adam's moments flat too).  The training runs of
``test_resume_other_size.py`` cover the unfused wrapper end to end; the fused one cannot run on CPU inside
an engine, but the class itself steps torch's AdamW here.  So both are built directly on the shards of a few
parameters cut like the model's (query/key/value with stride 3, a row-parallel weight, a replicated one):
two updates at model-parallel size 2, re-cut to size 1 by :mod:`glm.checkpoint.reshard`, must hold what
the same wrapper holds after the same two updates at size 1 (Adam is elementwise, so the shards' updates
are the whole tensor's), and load into it.
"""

import pytest
import torch

from glm.checkpoint.reshard import (reshard_flat_master_weight_optimizer_states,
                                    reshard_master_weight_optimizer_states, shard_shape)
from glm.mpu.partition import shard_tensor
from tests.distributed.launcher import run_distributed

#: name: (full shape, (dim, stride)), in two optimizer groups as the model has (weight decay or not).
PARAMETERS = {"query_key_value.weight": ((12, 4), (0, 3)), "dense.weight": ((4, 6), (1, 1)),
              "query_key_value.bias": ((12,), (0, 3)), "layernorm.weight": ((4,), (None, 1))}
GROUPS = (["query_key_value.weight", "dense.weight"], ["query_key_value.bias", "layernorm.weight"])
PARTITIONS = {name: partition for name, (_, partition) in PARAMETERS.items()}
NAMES = [name for group in GROUPS for name in group]
SAVED_SIZE = 2
STEPS = 2


def _wrapper(kind, parameters):
    """The DeepSpeed wrapper ``kind`` ("fused"/"unfused") around torch's AdamW over ``parameters`` (fp16)."""
    from deepspeed.runtime.fp16.fused_optimizer import FP16_Optimizer
    from deepspeed.runtime.fp16.loss_scaler import LossScaleConfig, LossScaleProfile
    from deepspeed.runtime.fp16.unfused_optimizer import FP16_UnfusedOptimizer
    groups = [{"params": [parameters[name] for name in GROUPS[0]], "weight_decay": 0.1},
              {"params": [parameters[name] for name in GROUPS[1]], "weight_decay": 0.0}]
    adam = torch.optim.AdamW(groups, lr=1e-2)
    profile = LossScaleProfile.FUSED if kind == "fused" else LossScaleProfile.UNFUSED
    scaling = LossScaleConfig(low_precision_dtype=torch.float16, dynamic_loss_scale=False, static_loss_scale=8.0,
                              dynamic_loss_args=None, profile=profile)
    wrapper = FP16_Optimizer if kind == "fused" else FP16_UnfusedOptimizer
    return wrapper(adam, loss_scale_config=scaling, low_precision_dtype=torch.float16, clip_grad=0.0)


def _trained(kind, weights, gradients):
    """The wrapper after ``STEPS`` updates with the given (fp32) weights and per-step gradients."""
    parameters = {name: torch.nn.Parameter(weights[name].half()) for name in NAMES}
    optimizer = _wrapper(kind, parameters)
    for step in range(STEPS):
        for name, parameter in parameters.items():
            # The wrapper unscales by its loss scale (8): hand it scaled gradients.
            parameter.grad = (gradients[step][name] * 8.0).half()
        optimizer.step()
    return optimizer


def _check(rank, world, kind):
    import deepspeed
    deepspeed.init_distributed(dist_backend="gloo")  # joins the launcher's process group
    generator = torch.Generator().manual_seed(3)
    full = {name: torch.randn(shape, generator=generator) for name, (shape, _) in PARAMETERS.items()}
    gradients = [{name: torch.randn(shape, generator=generator) for name, (shape, _) in PARAMETERS.items()}
                 for _ in range(STEPS)]

    def shard(tensors, rank):
        return {name: shard_tensor(tensors[name], *PARTITIONS[name], SAVED_SIZE, rank) for name in NAMES}

    saved = [_trained(kind, shard(full, r), [shard(g, r) for g in gradients]).state_dict()
             for r in range(SAVED_SIZE)]
    whole = _trained(kind, full, gradients)
    if kind == "fused":
        shapes = {name: shape for name, (shape, _) in PARAMETERS.items()}
        saved_shapes = {name: shard_shape(shape, PARTITIONS[name][0], 1, SAVED_SIZE) for name, shape in shapes.items()}
        resharded = reshard_flat_master_weight_optimizer_states(saved, NAMES, [len(g) for g in GROUPS], saved_shapes,
                                                                shapes, PARTITIONS, 1, 0)
    else:
        resharded = reshard_master_weight_optimizer_states(saved, NAMES, PARTITIONS, 1, 0)
    expected = whole.state_dict()
    assert resharded.keys() == expected.keys()
    masters = "fp32_groups_flat" if kind == "fused" else "fp32_groups"
    torch.testing.assert_close(resharded[masters], expected[masters], rtol=0, atol=1e-6)
    got, want = resharded["optimizer_state_dict"], expected["optimizer_state_dict"]
    assert [g["params"] for g in got["param_groups"]] == [g["params"] for g in want["param_groups"]]
    assert got["state"].keys() == want["state"].keys()
    for index, entry in want["state"].items():
        for key, value in entry.items():
            torch.testing.assert_close(got["state"][index][key], value, rtol=0, atol=1e-6, msg=f"{index} {key}")
    assert resharded["cur_scale"] == 8.0 and resharded["cur_iter"] == STEPS
    # DeepSpeed loads it into the wrapper at size 1.
    fresh = _wrapper(kind, {name: torch.nn.Parameter(full[name].half()) for name in NAMES})
    fresh.load_state_dict(resharded)
    loaded = fresh.state_dict()
    torch.testing.assert_close(loaded[masters], expected[masters], rtol=0, atol=1e-6)


@pytest.mark.parametrize("kind", ["unfused", "fused"])
def test_fp16_optimizer_wrapper_state_recut_to_another_model_parallel_size(kind):
    pytest.importorskip("deepspeed")
    run_distributed(_check, 1, kind)  # DeepSpeed's wrappers ask its communication backend for their rank
