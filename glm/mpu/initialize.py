"""Model- and data-parallel process groups (spec section 3).

Ranks ``[k*p, ..., k*p + p - 1]`` form model-parallel group ``k``; ranks with equal
``rank % p`` form a data-parallel group.  The groups are kept in module state because
torch.distributed itself is global; layers still receive their group explicitly so that
tests can build their own.  Without torch.distributed every getter answers as a single
process (rank 0 of a world of 1) and groups are ``None``.
"""

import torch
import torch.distributed as dist

_MODEL_PARALLEL_GROUP = None
_DATA_PARALLEL_GROUP = None
_MODEL_PARALLEL_RANKS = None


def _dist_ready():
    return dist.is_available() and dist.is_initialized()


def initialize_model_parallel(model_parallel_size):
    """Create the model- and data-parallel groups for the current world.

    ``model_parallel_size`` is clipped to the world size, as the original did.  Must be called
    after ``torch.distributed.init_process_group`` on every rank (the group constructors are
    collective).
    """
    global _MODEL_PARALLEL_GROUP, _DATA_PARALLEL_GROUP, _MODEL_PARALLEL_RANKS
    if not _dist_ready():
        raise RuntimeError("initialize_model_parallel needs torch.distributed.init_process_group first")
    if _MODEL_PARALLEL_GROUP is not None:
        raise RuntimeError("model parallel groups are already initialised; call destroy_model_parallel first")
    world_size = dist.get_world_size()
    model_parallel_size = max(1, min(int(model_parallel_size), world_size))
    if world_size % model_parallel_size != 0:
        raise ValueError(f"world size {world_size} is not divisible by model parallel size {model_parallel_size}")
    rank = dist.get_rank()
    # new_group is collective: every rank must create every group, in the same order.
    for first in range(model_parallel_size):
        ranks = list(range(first, world_size, model_parallel_size))
        group = dist.new_group(ranks)
        if rank in ranks:
            _DATA_PARALLEL_GROUP = group
    for k in range(world_size // model_parallel_size):
        ranks = list(range(k * model_parallel_size, (k + 1) * model_parallel_size))
        group = dist.new_group(ranks)
        if rank in ranks:
            _MODEL_PARALLEL_GROUP = group
            _MODEL_PARALLEL_RANKS = ranks


def model_parallel_is_initialized():
    """True once :func:`initialize_model_parallel` has run."""
    return _MODEL_PARALLEL_GROUP is not None


def destroy_model_parallel():
    """Forget the groups (the process group itself is left to the caller)."""
    global _MODEL_PARALLEL_GROUP, _DATA_PARALLEL_GROUP, _MODEL_PARALLEL_RANKS
    _MODEL_PARALLEL_GROUP = None
    _DATA_PARALLEL_GROUP = None
    _MODEL_PARALLEL_RANKS = None


def get_model_parallel_group():
    """The model-parallel group of this rank, or ``None`` when running as a single process."""
    return _MODEL_PARALLEL_GROUP


def get_data_parallel_group():
    """The data-parallel group of this rank; the whole world if groups were never set up."""
    if _DATA_PARALLEL_GROUP is None and _dist_ready():
        return dist.group.WORLD
    return _DATA_PARALLEL_GROUP


def group_world_size(group):
    """World size of ``group``; 1 when there is no distributed context."""
    if not _dist_ready():
        return 1
    if group is None:
        return 1
    return dist.get_world_size(group=group)


def group_rank(group):
    """Rank inside ``group``; 0 when there is no distributed context."""
    if not _dist_ready() or group is None:
        return 0
    return dist.get_rank(group=group)


def get_model_parallel_world_size():
    return group_world_size(_MODEL_PARALLEL_GROUP)


def get_model_parallel_rank():
    return group_rank(_MODEL_PARALLEL_GROUP)


def get_model_parallel_src_rank():
    """Global rank of the first member of this rank's model-parallel group."""
    if _MODEL_PARALLEL_RANKS is None:
        return dist.get_rank() if _dist_ready() else 0
    return _MODEL_PARALLEL_RANKS[0]


def get_data_parallel_world_size():
    if not _dist_ready():
        return 1
    return dist.get_world_size(group=get_data_parallel_group())


def get_data_parallel_rank():
    if not _dist_ready():
        return 0
    return dist.get_rank(group=get_data_parallel_group())


def data_parallel_rank_and_size():
    """``(rank, world size)`` of this process in its data-parallel group: ``(0, 1)`` without
    torch.distributed, the whole world's when the model-parallel groups were never set up."""
    return get_data_parallel_rank(), get_data_parallel_world_size()


# DeepSpeed's newer checkpoint code (universal checkpoints) asks its ``mpu`` for the tensor-parallel
# group by these Megatron-LM names; GLM's model parallelism is tensor parallelism, so they are the same.
get_tensor_model_parallel_group = get_model_parallel_group
get_tensor_model_parallel_rank = get_model_parallel_rank
get_tensor_model_parallel_world_size = get_model_parallel_world_size
get_tensor_model_parallel_src_rank = get_model_parallel_src_rank
