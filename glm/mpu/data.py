"""Broadcast a batch from the first rank of a model-parallel group to the others."""

import torch
import torch.distributed as dist

from .initialize import get_model_parallel_group, get_model_parallel_src_rank, group_rank, group_world_size


def broadcast_data(keys, data, datatype, group=None, src=None):
    """Return ``{key: tensor}`` with the source rank's tensors on every rank of ``group``.

    Only the source rank needs ``data``; the others may pass ``None``.  Shapes travel first as
    ``[ndim, d0, d1, ...]`` per key, so zero-sized dimensions are fine (the original used 0 as a
    terminator and broke on them).  Every tensor is sent as ``datatype``.
    """
    group = get_model_parallel_group() if group is None else group
    if group_world_size(group) == 1:
        return {k: data[k].to(datatype) for k in keys}
    src = get_model_parallel_src_rank() if src is None else src
    is_src = group_rank(group) == 0
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend(group) == "nccl" else torch.device("cpu")
    if is_src:
        meta = []
        for k in keys:
            shape = list(data[k].shape)
            meta += [len(shape)] + shape
        meta_t = torch.tensor([len(meta)] + meta, dtype=torch.long, device=device)
        size_t = torch.tensor([meta_t.numel()], dtype=torch.long, device=device)
    else:
        size_t = torch.zeros(1, dtype=torch.long, device=device)
    dist.broadcast(size_t, src, group=group)
    if not is_src:
        meta_t = torch.zeros(int(size_t.item()), dtype=torch.long, device=device)
    dist.broadcast(meta_t, src, group=group)
    meta = meta_t.tolist()[1:]
    shapes, i = [], 0
    for _ in keys:
        ndim = meta[i]
        shapes.append(meta[i + 1:i + 1 + ndim])
        i += 1 + ndim
    numels = [int(torch.Size(s).numel()) for s in shapes]
    if is_src:
        flat = torch.cat([data[k].reshape(-1).to(device=device, dtype=datatype) for k in keys])
    else:
        flat = torch.empty(sum(numels), dtype=datatype, device=device)
    dist.broadcast(flat, src, group=group)
    out, offset = {}, 0
    for k, shape, n in zip(keys, shapes, numels):
        out[k] = flat[offset:offset + n].view(shape)
        offset += n
    return out
