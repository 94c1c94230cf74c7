"""How one full tensor is cut into model-parallel shards, and glued back.

A parallel parameter is described by ``(dim, stride)``: the full tensor is cut along
``dim`` into ``world * stride`` equal blocks and rank ``r`` owns blocks ``r, r + world,
r + 2*world, ...`` (concatenated in that order).  ``stride == 1`` is a plain contiguous split;
``stride == 3`` is the fused query/key/value layout, where rank ``r`` holds ``[Q_r; K_r; V_r]``.
``dim is None`` means the tensor is replicated.  These two functions are the single source of
truth for the layout: layer initialisation, on-the-fly resharding at load time and
``change_mp.py`` all use them.
"""

import torch


def shard_tensor(full, dim, stride, world_size, rank):
    """Return rank ``rank``'s shard of ``full`` (a copy for replicated tensors)."""
    if dim is None or world_size == 1:
        return full.clone()
    size = full.size(dim)
    blocks = world_size * stride
    if size % blocks != 0:
        raise ValueError(
            f"cannot split a dimension of size {size} into {world_size} model-parallel shards "
            f"with stride {stride}: {size} is not divisible by {blocks}")
    pieces = torch.chunk(full, blocks, dim=dim)
    mine = pieces[rank::world_size]
    return torch.cat(mine, dim=dim).contiguous()


def merge_shards(shards, dim, stride):
    """Inverse of :func:`shard_tensor`: rebuild the full tensor from every rank's shard."""
    world_size = len(shards)
    if dim is None or world_size == 1:
        return shards[0].clone()
    per_rank = [torch.chunk(s, stride, dim=dim) for s in shards]
    ordered = [per_rank[r][j] for j in range(stride) for r in range(world_size)]
    return torch.cat(ordered, dim=dim).contiguous()
