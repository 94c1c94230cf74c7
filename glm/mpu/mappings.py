"""Autograd-aware communication between the ranks of a model-parallel group.

Each mapping is the identity when the group has a single member, so model code can call
them unconditionally.  Forward/backward pairs follow spec section 3:

=================================  ==========================  ==========================
function                           forward                     backward
=================================  ==========================  ==========================
copy_to_model_parallel_region      identity                    all-reduce (sum)
reduce_from_model_parallel_region  all-reduce (sum)            identity
scatter_to_model_parallel_region   keep own slice (last dim)   all-gather (last dim)
gather_from_model_parallel_region  all-gather (last dim)       keep own slice
=================================  ==========================  ==========================
"""

import torch
import torch.distributed as dist

from .initialize import get_model_parallel_group, group_rank, group_world_size
from .utils import split_tensor_along_last_dim


def _resolve(group):
    return get_model_parallel_group() if group is None else group


def _all_reduce(x, group):
    if group_world_size(group) == 1:
        return x
    x = x.contiguous()
    dist.all_reduce(x, group=group)
    return x


def _split_last(x, group):
    world = group_world_size(group)
    if world == 1:
        return x
    return split_tensor_along_last_dim(x, world)[group_rank(group)].contiguous()


def _gather_last(x, group):
    world = group_world_size(group)
    if world == 1:
        return x
    x = x.contiguous()
    parts = [torch.empty_like(x) for _ in range(world)]
    dist.all_gather(parts, x, group=group)
    return torch.cat(parts, dim=-1).contiguous()


class _Copy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, group):
        ctx.group = group
        return x

    @staticmethod
    def backward(ctx, grad):
        return _all_reduce(grad.clone(), ctx.group), None


class _Reduce(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, group):
        return _all_reduce(x.clone(), group)

    @staticmethod
    def backward(ctx, grad):
        return grad, None


class _Scatter(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, group):
        ctx.group = group
        return _split_last(x, group)

    @staticmethod
    def backward(ctx, grad):
        return _gather_last(grad, ctx.group), None


class _Gather(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, group):
        ctx.group = group
        return _gather_last(x, group)

    @staticmethod
    def backward(ctx, grad):
        return _split_last(grad, ctx.group), None


def copy_to_model_parallel_region(x, group=None):
    group = _resolve(group)
    if group_world_size(group) == 1:
        return x
    return _Copy.apply(x, group)


def reduce_from_model_parallel_region(x, group=None):
    group = _resolve(group)
    if group_world_size(group) == 1:
        return x
    return _Reduce.apply(x, group)


def scatter_to_model_parallel_region(x, group=None):
    group = _resolve(group)
    if group_world_size(group) == 1:
        return x
    return _Scatter.apply(x, group)


def gather_from_model_parallel_region(x, group=None):
    group = _resolve(group)
    if group_world_size(group) == 1:
        return x
    return _Gather.apply(x, group)
