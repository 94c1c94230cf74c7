"""Re-cutting model state dicts between model-parallel sizes.

The layout of every tensor -- split dimension and stride, or replicated -- comes from the model
itself (the attributes the ``glm.mpu`` layers put on their parameters), never from substrings
of names, so classification heads, prompt encoders and Transformer-XL parameters are handled
by the same rule as everything else.
"""

from ..mpu.layers import partition_info
from ..mpu.partition import merge_shards, shard_tensor


def partition_layout(model):
    """``{state_dict key: (dim, stride)}`` for every tensor in ``model.state_dict()``
    (``dim`` None = replicated)."""
    return {key: partition_info(value) for key, value in model.state_dict(keep_vars=True).items()}


def merge_state_dicts(shards, layout):
    """Full (model-parallel size 1) state dict from the per-rank dicts of one checkpoint.
    Keys unknown to ``layout`` are treated as replicated."""
    merged = {}
    for key in shards[0]:
        dim, stride = layout.get(key, (None, 1))
        merged[key] = merge_shards([s[key] for s in shards], dim, stride)
    return merged


def split_state_dict(full, layout, world_size, rank):
    """Rank ``rank``'s part of a full state dict for model-parallel size ``world_size``."""
    out = {}
    for key, tensor in full.items():
        dim, stride = layout.get(key, (None, 1))
        out[key] = shard_tensor(tensor, dim, stride, world_size, rank)
    return out


def reshard_tensors(shards, dim, stride, world_size, rank):
    """Rank ``rank``'s part at ``world_size`` of one tensor stored as ``shards`` (one per rank of
    another size)."""
    return shard_tensor(merge_shards(shards, dim, stride), dim, stride, world_size, rank)


def reshard_state_dicts(shards, layout, world_size, rank):
    """Rank ``rank``'s state dict at ``world_size`` from the shards of another size."""
    if len(shards) == world_size:
        return dict(shards[rank])
    return split_state_dict(merge_state_dicts(shards, layout), layout, world_size, rank)
