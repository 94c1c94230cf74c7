"""Gradient-norm clipping that counts every parameter exactly once across the group."""

import torch
import torch.distributed as dist

from .initialize import get_model_parallel_group, group_rank, group_world_size


def clip_grad_norm(parameters, max_norm, norm_type=2, group=None):
    """Clip gradients to a total ``norm_type`` norm of ``max_norm``; return the norm before clipping.

    Sharded parameters contribute their local part on every rank; replicated ones
    (``model_parallel`` false) are counted on model-parallel rank 0 only, so the sum over the
    group is the norm of the full, unsharded model.
    """
    if isinstance(parameters, torch.Tensor):
        parameters = [parameters]
    params = [p for p in parameters if p.grad is not None]
    group = get_model_parallel_group() if group is None else group
    norm_type = float(norm_type)
    first_rank = group_rank(group) == 0
    counted = [p for p in params if getattr(p, "model_parallel", False) or first_rank]
    device = params[0].grad.device if params else torch.device("cpu")
    if norm_type == float("inf"):
        local = max((p.grad.detach().abs().max().float() for p in params), default=torch.zeros((), device=device))
        total = torch.as_tensor(local, dtype=torch.float32, device=device).clone()
        if group_world_size(group) > 1:
            dist.all_reduce(total, op=dist.ReduceOp.MAX, group=group)
    else:
        if counted:
            norms = torch._foreach_norm([p.grad.detach().float() for p in counted], norm_type)
            local = torch.stack(norms).pow(norm_type).sum()
        else:
            local = torch.zeros((), device=device)
        total = local.clone()
        if group_world_size(group) > 1:
            dist.all_reduce(total, op=dist.ReduceOp.SUM, group=group)
        total = total.pow(1.0 / norm_type)
    clip_coef = max_norm / (total + 1e-6)
    if clip_coef < 1.0:
        torch._foreach_mul_([p.grad.detach() for p in params], clip_coef)
    return total
