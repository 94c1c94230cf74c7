"""Joining (or not joining) a process group, from one CPU to a cluster.

The original always required ``torch.distributed``.  Here a plain ``python pretrain_glm.py`` runs as a
single process with no process group; ``torchrun``, the ``deepspeed`` launcher, ``srun`` and ``mpirun``
join one, each read by :func:`glm.launch.resolve_launch`.  DeepSpeed needs a process group even on one
process, so with ``--deepspeed`` and no launcher a one-rank group is created on a free local port.

Collectives wait at most ``--distributed-timeout-minutes`` for a peer: a rank that died (killed, out
of memory) ends the others with an error instead of leaving them waiting for hours.
"""

import datetime
import logging
import os
import socket

import torch
import torch.distributed as dist

from .. import mpu
from ..launch import JobPlace, export_launch_env, rendezvous, resolve_launch

logger = logging.getLogger(__name__)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def initialize_distributed(config):
    """Pick the device, join the process group when launched with several ranks (or with
    ``--deepspeed``), and create the model-parallel groups.

    Returns ``(device, config)``: the ``torch.device`` this rank computes on and a copy of ``config``
    whose ``parallel.rank``/``world_size``/``local_rank`` are the ones the process group agreed on
    (for the entry point, which hands that copy down)."""
    place = resolve_launch()
    world_size, rank = place.world_size, place.rank
    local_rank = place.local_rank if place.local_rank is not None else (config.parallel.local_rank or 0)

    if torch.cuda.is_available():
        device = torch.device("cuda", local_rank % torch.cuda.device_count())
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")

    if not dist.is_initialized() and (world_size > 1 or config.parallel.deepspeed):
        if world_size == 1 and "MASTER_ADDR" not in os.environ:
            # DeepSpeed on a single process without a launcher: give it a one-rank group.
            address, port = "127.0.0.1", _free_port()
        else:
            address, port = rendezvous(place)
        # torch's env:// rendezvous (which also joins torchrun's agent store) and DeepSpeed read torchrun's
        # variables: export them for every launcher, so all tell the same story.
        export_launch_env(JobPlace(rank, world_size, local_rank, place.source), address, port)
        backend = config.parallel.distributed_backend if device.type == "cuda" else "gloo"
        timeout = datetime.timedelta(minutes=config.parallel.distributed_timeout_minutes)
        dist.init_process_group(backend=backend, init_method="env://", rank=rank, world_size=world_size,
                                timeout=timeout,
                                **({"device_id": device} if device.type == "cuda" else {}))
    if dist.is_initialized():
        rank, world_size = dist.get_rank(), dist.get_world_size()
        if world_size % config.parallel.model_parallel_size != 0:
            raise ValueError(f"world size {world_size} is not divisible by --model-parallel-size "
                             f"{config.parallel.model_parallel_size}")
        if not mpu.model_parallel_is_initialized():
            mpu.initialize_model_parallel(config.parallel.model_parallel_size)
    elif config.parallel.model_parallel_size > 1:
        raise ValueError(f"--model-parallel-size {config.parallel.model_parallel_size} needs that many processes; "
                         "launch with torchrun or the deepspeed launcher")
    return device, config.updated(rank=rank, world_size=world_size, local_rank=local_rank)


def barrier():
    if dist.is_initialized():
        dist.barrier()


def is_rank_0():
    return not dist.is_initialized() or dist.get_rank() == 0


def max_over_ranks(value):
    """The largest of an integer ``value`` given by every rank of the job (each learns the same
    answer): how the ranks agree that one of them failed a save or received a stop signal."""
    if not (dist.is_initialized() and dist.get_world_size() > 1):
        return value
    # gloo reduces CPU tensors; NCCL needs the rank's GPU.
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else "cpu"
    tensor = torch.tensor([int(value)], dtype=torch.int64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return int(tensor.item())


def all_reduce_mean(value, group=None):
    """Average a scalar tensor over ``group`` (the data-parallel group by default)."""
    if not dist.is_initialized():
        return value
    group = mpu.get_data_parallel_group() if group is None else group
    value = value.clone()
    dist.all_reduce(value, group=group)
    return value / dist.get_world_size(group=group)
