"""Re-cutting model state dicts between model-parallel sizes.

The partition of every tensor -- split dimension and stride, or replicated -- comes from the model
itself (the attributes the ``glm.mpu`` layers put on their parameters), never from substrings
of names, so classification heads, prompt encoders and Transformer-XL parameters are handled
by the same rule as everything else.

Owns re-cutting state dicts and optimizer states given a partition map ``{name: (dim, stride)}``;
the cutting itself is :mod:`glm.mpu.partition`.  Reads and writes no files.
"""

import torch

from ..mpu.layers import partition_info
from ..mpu.partition import merge_shards, shard_tensor


def partition_map(model):
    """``{state_dict key: (dim, stride)}`` for every tensor in ``model.state_dict()``
    (``dim`` None = replicated)."""
    return {key: partition_info(value) for key, value in model.state_dict(keep_vars=True).items()}


def merge_state_dicts(shards, partitions):
    """Full (model-parallel size 1) state dict from the per-rank dicts of one checkpoint.
    Keys unknown to ``partitions`` are treated as replicated."""
    merged = {}
    for key in shards[0]:
        dim, stride = partitions.get(key, (None, 1))
        merged[key] = merge_shards([s[key] for s in shards], dim, stride)
    return merged


def split_state_dict(full, partitions, world_size, rank):
    """Rank ``rank``'s part of a full state dict for model-parallel size ``world_size``."""
    out = {}
    for key, tensor in full.items():
        dim, stride = partitions.get(key, (None, 1))
        out[key] = shard_tensor(tensor, dim, stride, world_size, rank)
    return out


def reshard_tensors(shards, dim, stride, world_size, rank):
    """Rank ``rank``'s part at ``world_size`` of one tensor stored as ``shards`` (one per rank of
    another size)."""
    return shard_tensor(_whole(shards, dim, stride), dim, stride, world_size, rank)


def reshard_tensors_for_every_rank(shards, dim, stride, world_size):
    """Every rank's part at ``world_size`` of one tensor stored as ``shards`` (merged once)."""
    full = _whole(shards, dim, stride)
    return [shard_tensor(full, dim, stride, world_size, rank) for rank in range(world_size)]


def _whole(shards, dim, stride):
    # A replicated tensor (no dim) is whole in every shard: cut it without merging first.
    return shards[0] if dim is None else merge_shards(shards, dim, stride)


def reshard_state_dicts(shards, partitions, world_size, rank):
    """Rank ``rank``'s state dict at ``world_size`` from the shards of another size."""
    if len(shards) == world_size:
        return dict(shards[rank])
    return split_state_dict(merge_state_dicts(shards, partitions), partitions, world_size, rank)


def optimizer_parameter_names(optimizer, module):
    """Names of ``optimizer``'s parameters in the order its ``state_dict()`` numbers them (group by
    group).  The order depends only on the model's structure, so it is the same at every model-parallel
    size: index ``i`` of a checkpoint's optimizer state is the parameter ``names[i]``."""
    return parameter_names([group["params"] for group in optimizer.param_groups], module)


def parameter_names(groups, module):
    """Names of the parameters of ``module`` listed in ``groups`` (lists of parameters), group by group."""
    names = {id(param): name for name, param in module.named_parameters()}
    return [names[id(param)] for group in groups for param in group]


def reshard_optimizer_states(states, names, partitions, world_size, rank):
    """Rank ``rank``'s optimizer state dict at model-parallel size ``world_size`` from ``states``, the
    ``torch.optim`` state dicts of every rank of another size.  Per-parameter tensors of the weight's
    shape (Adam's ``exp_avg``/``exp_avg_sq``) are merged and re-cut with the weight's own
    ``(dim, stride)`` from ``partitions``; scalars (``step``) and the groups' hyperparameters are copied."""
    if any(len(s["state"]) != len(states[0]["state"]) for s in states):
        raise ValueError("the model-parallel shards of the optimizer state hold different numbers of parameters")
    resharded = {}
    for index, entry in states[0]["state"].items():
        dim, stride = partitions.get(names[int(index)], (None, 1))
        resharded[index] = {key: _reshard_value([s["state"][index][key] for s in states], dim, stride, world_size,
                                                rank)
                            for key in entry}
    return {"state": resharded, "param_groups": states[0]["param_groups"]}


def _reshard_value(values, dim, stride, world_size, rank):
    """One entry of a parameter's optimizer state: re-cut when it is a tensor of the weight's shape."""
    if torch.is_tensor(values[0]) and values[0].dim() > 0:
        return reshard_tensors(values, dim, stride, world_size, rank)
    return values[0]


#: The keys of DeepSpeed's fp16/bf16 optimizer wrapper without ZeRO (``FP16_UnfusedOptimizer.state_dict()``)
#: that hold per-parameter tensors: the wrapped ``torch.optim`` state and the fp32 master copies.
WRAPPED_OPTIMIZER_KEY = "optimizer_state_dict"
MASTER_WEIGHTS_KEY = "fp32_groups"


def reshard_master_weight_optimizer_states(states, names, partitions, world_size, rank):
    """The same for DeepSpeed's fp16/bf16 optimizer wrapper without ZeRO, whose state holds the
    ``torch.optim`` state it steps (``optimizer_state_dict``, numbered like ``names``) and every
    parameter's fp32 master copy (``fp32_groups``: one list per group, in the same order).  Both are
    re-cut by the weights' partition rules; the loss scaler's entries are copied."""
    resharded = dict(states[0])
    resharded[WRAPPED_OPTIMIZER_KEY] = reshard_optimizer_states([s[WRAPPED_OPTIMIZER_KEY] for s in states], names,
                                                                partitions, world_size, rank)
    groups, index = [], 0
    for group_index, group in enumerate(states[0][MASTER_WEIGHTS_KEY]):
        resharded_group = []
        for position in range(len(group)):
            dim, stride = partitions.get(names[index], (None, 1))
            shards = [s[MASTER_WEIGHTS_KEY][group_index][position] for s in states]
            resharded_group.append(reshard_tensors(shards, dim, stride, world_size, rank))
            index += 1
        groups.append(resharded_group)
    if index != len(names):
        raise ValueError(f"the checkpoint holds {index} fp32 master weights, the model {len(names)} parameters")
    resharded[MASTER_WEIGHTS_KEY] = groups
    return resharded


#: DeepSpeed's fused fp16 optimizer (``FP16_Optimizer``, with a ``FusedAdam``) keeps one flat fp32 master
#: tensor per group instead, and the ``torch.optim`` state of those flat tensors (one entry per group).
FLAT_MASTER_WEIGHTS_KEY = "fp32_groups_flat"


def shard_shape(shape, dim, world_size, new_world_size):
    """The shape of a shard at ``new_world_size`` of a tensor whose shard at ``world_size`` has ``shape``."""
    if dim is None:
        return tuple(shape)
    return tuple(size * world_size // new_world_size if d == dim else size for d, size in enumerate(shape))


def reshard_flat_master_weight_optimizer_states(states, names, group_sizes, saved_shapes, new_shapes, partitions,
                                                world_size, rank):
    """The same for DeepSpeed's fused fp16 optimizer: each group's flat fp32 masters and flat Adam moments
    are cut into the group's parameters (``group_sizes[g]`` of them, named in order by ``names``, of shape
    ``saved_shapes[name]`` in ``states``), re-cut as :func:`reshard_master_weight_optimizer_states` does,
    and flattened again for the new rank (``new_shapes[name]``); the step and the loss scaler are copied."""
    per_parameter = [_unflatten_master_weight_state(state, names, group_sizes, saved_shapes) for state in states]
    resharded = reshard_master_weight_optimizer_states(per_parameter, names, partitions, world_size, rank)
    for name, tensor in zip(names, (t for group in resharded[MASTER_WEIGHTS_KEY] for t in group)):
        if tuple(tensor.shape) != tuple(new_shapes[name]):
            raise ValueError(f"{name}: re-cut to {tuple(tensor.shape)}, the model has {tuple(new_shapes[name])}")
    return _flatten_master_weight_state(resharded, group_sizes)


def _unflatten_master_weight_state(state, names, group_sizes, shapes):
    """The fused optimizer's state in the unfused one's per-parameter layout."""
    flat_optimizer = state[WRAPPED_OPTIMIZER_KEY]
    out = {key: value for key, value in state.items() if key != FLAT_MASTER_WEIGHTS_KEY}
    groups, parameter_state, param_groups, first = [], {}, [], 0
    for group, (size, flat) in enumerate(zip(group_sizes, state[FLAT_MASTER_WEIGHTS_KEY])):
        group_shapes = [shapes[name] for name in names[first:first + size]]
        groups.append(_split_flat(flat, group_shapes))
        entry = flat_optimizer["state"].get(group, {})
        pieces = {key: _split_flat(value, group_shapes) if torch.is_tensor(value) and value.dim() > 0 else
                  [value] * size for key, value in entry.items()}
        for position in range(size):
            if pieces:
                parameter_state[first + position] = {key: values[position] for key, values in pieces.items()}
        param_groups.append(dict(flat_optimizer["param_groups"][group], params=list(range(first, first + size))))
        first += size
    if first != len(names):
        raise ValueError(f"the checkpoint's groups hold {first} parameters, the model {len(names)}")
    out[MASTER_WEIGHTS_KEY] = groups
    out[WRAPPED_OPTIMIZER_KEY] = {"state": parameter_state, "param_groups": param_groups}
    return out


def _flatten_master_weight_state(state, group_sizes):
    """Inverse of :func:`_unflatten_master_weight_state`."""
    optimizer = state[WRAPPED_OPTIMIZER_KEY]
    out = {key: value for key, value in state.items() if key != MASTER_WEIGHTS_KEY}
    flat_state, param_groups, first = {}, [], 0
    for group, size in enumerate(group_sizes):
        entries = [optimizer["state"][index] for index in range(first, first + size) if index in optimizer["state"]]
        if entries:
            flat_state[group] = {key: torch.cat([entry[key].reshape(-1) for entry in entries])
                                 if torch.is_tensor(value) and value.dim() > 0 else value
                                 for key, value in entries[0].items()}
        param_groups.append(dict(optimizer["param_groups"][group], params=[group]))
        first += size
    out[FLAT_MASTER_WEIGHTS_KEY] = [torch.cat([tensor.reshape(-1) for tensor in group])
                                    for group in state[MASTER_WEIGHTS_KEY]]
    out[WRAPPED_OPTIMIZER_KEY] = {"state": flat_state, "param_groups": param_groups}
    return out


def _split_flat(flat, shapes):
    sizes = [int(torch.Size(shape).numel()) for shape in shapes]
    if sum(sizes) != flat.numel():
        raise ValueError(f"a flat group of {flat.numel()} elements does not hold parameters of shapes {shapes}")
    return [piece.reshape(shape) for piece, shape in zip(torch.split(flat.reshape(-1), sizes), shapes)]
