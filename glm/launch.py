"""Where this process sits in a job, read from whatever launched it.

Every entry point (pretraining, finetuning, evaluation, generation) joins its job through
:func:`resolve_launch`, so a job forms the same way under each launcher:

=================  ==================================================  ===================================
launcher           rank / world size / local rank                      rendezvous (address, port)
=================  ==================================================  ===================================
torchrun,          ``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK``           ``MASTER_ADDR`` / ``MASTER_PORT``
``deepspeed``,
``--deepspeed_mpi``
Open MPI           ``OMPI_COMM_WORLD_RANK`` / ``_SIZE`` / ``_LOCAL_RANK``  ``MASTER_ADDR``, else 127.0.0.1 when
``mpirun``                                                             every rank is on one node
SLURM ``srun``     ``SLURM_PROCID`` / ``SLURM_NTASKS`` / ``SLURM_LOCALID``  ``MASTER_ADDR``, else the first host
(one task a rank)                                                      of ``SLURM_STEP_NODELIST`` (or
                                                                       ``SLURM_JOB_NODELIST``)
=================  ==================================================  ===================================

The first row whose rank variable is set wins, so ``srun`` + ``torchrun`` (one torchrun a node, as
``scripts/pretrain_slurm.sbatch`` does) is read from torchrun's variables.  ``MASTER_PORT`` defaults to
29500, or under SLURM to a port derived from the job id, so two jobs sharing a node do not collide.
Nothing here imports torch: the parser (``--help``, the docs) uses it too.
"""

import dataclasses
import os
import re
from typing import Mapping, Optional

DEFAULT_PORT = 29500


@dataclasses.dataclass(frozen=True)
class JobPlace:
    rank: int
    world_size: int
    local_rank: Optional[int]
    source: str  # "env" (torchrun, deepspeed), "openmpi", "slurm" or "default" (a lone process)


class LaunchError(ValueError):
    """The launcher's variables are inconsistent or incomplete; the message names them."""


def _env_int(env, name):
    value = env.get(name)
    if value is None or value.strip() == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise LaunchError(f"environment variable {name}={value!r} is not an integer") from None


def first_slurm_host(nodelist):
    """The first host of a SLURM host list: ``gpu[07-09,12],cpu1`` -> ``gpu07`` (what
    ``scontrol show hostnames`` prints first)."""
    match = re.match(r"([^,\[]+)(?:\[([^\]]+)\])?", nodelist.strip())
    if not match:
        raise LaunchError(f"cannot read the SLURM host list {nodelist!r}; set MASTER_ADDR")
    prefix, ranges = match.groups()
    if not ranges:
        return prefix
    return prefix + re.split(r"[-,]", ranges)[0]


def _master_addr(env, source, world_size):
    if env.get("MASTER_ADDR"):
        return env["MASTER_ADDR"]
    if world_size == 1:
        return "127.0.0.1"
    if source == "openmpi":
        local_size = _env_int(env, "OMPI_COMM_WORLD_LOCAL_SIZE")
        if local_size == world_size:
            return "127.0.0.1"
        raise LaunchError("mpirun across several nodes: export MASTER_ADDR=<host name of rank 0's node> "
                          "(e.g. mpirun -x MASTER_ADDR=$(hostname) ...)")
    if source == "slurm":
        nodelist = env.get("SLURM_STEP_NODELIST") or env.get("SLURM_JOB_NODELIST")
        if nodelist:
            return first_slurm_host(nodelist)
        raise LaunchError("srun without SLURM_STEP_NODELIST/SLURM_JOB_NODELIST: export MASTER_ADDR=<rank 0's host>")
    raise LaunchError(f"WORLD_SIZE={world_size} but MASTER_ADDR is not set; launch with torchrun or the deepspeed "
                      "launcher, or export MASTER_ADDR and MASTER_PORT")


def _master_port(env, source):
    port = _env_int(env, "MASTER_PORT")
    if port is not None:
        return port
    job = _env_int(env, "SLURM_JOB_ID") if source == "slurm" else None
    return 20000 + job % 20000 if job is not None else DEFAULT_PORT


def resolve_launch(env: Optional[Mapping[str, str]] = None) -> JobPlace:
    """This process's place in the job (see the module docstring); a lone process is rank 0 of 1."""
    env = os.environ if env is None else env
    for source, (rank_key, size_key, local_key) in (
        ("env", ("RANK", "WORLD_SIZE", "LOCAL_RANK")),
        ("openmpi", ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK")),
        ("slurm", ("SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID")),
    ):
        rank = _env_int(env, rank_key)
        if rank is None:
            continue
        world_size = _env_int(env, size_key)
        world_size = 1 if world_size is None else world_size
        if not 0 <= rank < world_size:
            raise LaunchError(f"{rank_key}={rank} is outside [0, {size_key}={world_size})")
        return JobPlace(rank, world_size, _env_int(env, local_key), source)
    # No rank variable: a lone WORLD_SIZE (set by some tools) still tells the size.
    world_size = _env_int(env, "WORLD_SIZE")
    return JobPlace(0, 1 if world_size is None else world_size, _env_int(env, "LOCAL_RANK"), "default")


def rendezvous(place: JobPlace, env: Optional[Mapping[str, str]] = None):
    """``(address, port)`` where the ranks of ``place``'s job meet (rank 0 listens there)."""
    env = os.environ if env is None else env
    return _master_addr(env, place.source, place.world_size), _master_port(env, place.source)


def export_launch_env(place: JobPlace, address, port, environ=None):
    """Write the place as torchrun's variables, for libraries that read them (DeepSpeed)."""
    environ = os.environ if environ is None else environ
    environ.update(RANK=str(place.rank), WORLD_SIZE=str(place.world_size), LOCAL_RANK=str(place.local_rank or 0),
                   MASTER_ADDR=address, MASTER_PORT=str(port))
