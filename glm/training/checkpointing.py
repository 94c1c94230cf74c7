"""Saving and resuming the whole training state in the original layout (spec section 4).

Plain engine: ``<save>/<iteration>/mp_rank_XX_model_states.pt`` = ``{iteration, module, optimizer,
lr_scheduler, grad_scaler, random_rng_state, np_rng_state, torch_rng_state, cuda_rng_state,
rng_tracker_states, rng_states_by_dp_rank, data_state, mp_world_size, dp_world_size}`` written by
data-parallel rank 0 of each model-parallel rank.  The top-level RNG keys are that rank's (the original's
layout); ``rng_states_by_dp_rank`` adds the same five states of every data-parallel rank of the
model-parallel rank, gathered at save time, because the ranks' streams drift apart (each draws its own
dropout masks), so a resume at the same size gives every rank back its own streams.  The data position is
the iteration: each rank's sampler restarts at it (``--resume-dataloader``).  DeepSpeed engine:
``engine.save_checkpoint`` with the same client state.  Every file is complete before the tracker files name its tag: files are written to a temporary name and
renamed, all ranks meet at a barrier, then rank 0 rewrites the trackers (also atomically).  A run
killed at any moment therefore resumes from the last complete checkpoint.

Owns the whole training state of a checkpoint (engine, scheduler, RNG streams, data position) and the
all-ranks-or-none save protocol.  Must not touch: the file layout and tracker files themselves
(written through ``glm.checkpoint``), the training step, or the run's configuration (saving receives
the folder and the ``--no-save-*`` choices as explicit values).
"""

import dataclasses
import glob
import logging
import os
import shutil
import tempfile

import torch
import torch.distributed as dist

from .. import mpu
from ..checkpoint import (CheckpointError, atomic_torch_save, check_checkpoint_globals, load_model_state,
                          model_file_name, resolve_checkpoint)
from ..checkpoint.change_mp import RNG_TRACKER_SIZE_KEY
from ..checkpoint.io import load_checkpoint_file
from ..checkpoint.layout import TRACKER_FILENAME, read_tracker
from ..checkpoint.reshard import (FLAT_MASTER_WEIGHTS_KEY, MASTER_WEIGHTS_KEY, WRAPPED_OPTIMIZER_KEY,
                                  optimizer_parameter_names, parameter_names, partition_map,
                                  reshard_flat_master_weight_optimizer_states,
                                  reshard_master_weight_optimizer_states, reshard_optimizer_states, shard_shape)
from ..checkpoint.saving import update_tracker_files
from ..checkpoint.zero import (convert_to_universal, convert_to_universal_at_model_parallel_size,
                               zero_data_parallel_size)
from .distributed import barrier, is_rank_0, max_over_ranks
from .seed import get_rng_state, set_rng_state

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class ResumeState:
    """What a resumed run continues from.  ``rng_state`` is restored by :meth:`restore_rng` at the
    last moment before training, so nothing the setup does in between (building data loaders, which
    draws a seed from torch's generator) shifts the random streams."""
    iteration: int = 0
    data_state: dict = dataclasses.field(default_factory=dict)
    rng_state: dict = None

    def restore_rng(self):
        if self.rng_state is not None:
            set_rng_state(self.rng_state)
            self.rng_state = None


RNG_KEYS = ("random_rng_state", "np_rng_state", "torch_rng_state", "cuda_rng_state", "rng_tracker_states")
#: Every data-parallel rank's RNG states, a list indexed by data-parallel rank.
RNG_BY_DP_RANK_KEY = "rng_states_by_dp_rank"


def _rng_states_of_data_parallel_group():
    """``(this rank's RNG states, list of every data-parallel rank's)``; collective over the
    data-parallel group."""
    own = get_rng_state()
    world = mpu.get_data_parallel_world_size()
    if world == 1:
        return own, [own]
    gathered = [None] * world
    dist.all_gather_object(gathered, own, group=mpu.get_data_parallel_group())
    return own, gathered


def _rng_state_for_this_rank(meta):
    """The RNG states this rank resumes with: its own entry of ``rng_states_by_dp_rank`` when the
    checkpoint was saved at this data-parallel size, else the top-level ones (data-parallel rank 0's;
    checkpoints of the original and of a run at another size)."""
    if meta.get("torch_rng_state") is None:
        return None
    world, rank = mpu.get_data_parallel_world_size(), mpu.get_data_parallel_rank()
    by_rank = meta.get(RNG_BY_DP_RANK_KEY)
    if by_rank and len(by_rank) == world:
        state = {key: by_rank[rank].get(key) for key in RNG_KEYS}
    else:
        if world > 1 or (by_rank and len(by_rank) > 1):
            logger.info("the checkpoint holds no RNG states for data-parallel size %d; every rank continues the "
                        "streams of data-parallel rank 0", world)
        state = {key: meta.get(key) for key in RNG_KEYS}
    # change_mp.py output names the size its (rank 0's) model-parallel streams come from.
    saved_mp = meta.get(RNG_TRACKER_SIZE_KEY) or meta.get("mp_world_size")
    if saved_mp is not None and saved_mp != mpu.get_model_parallel_world_size():
        # The model-parallel stream is seeded per model-parallel rank (seed + 2718 + rank); at another
        # size the saved ones do not map onto the ranks, so each rank keeps its freshly seeded stream
        # rather than sharing another rank's.
        state["rng_tracker_states"] = mpu.get_rng_tracker().get_states()
    return state


class CheckpointSaveError(CheckpointError):
    """A checkpoint could not be written (disk full, permissions...); the previous one is intact."""


def _any_rank(flag):
    """Whether ``flag`` is true on any rank (every rank learns the same answer)."""
    return bool(max_over_ranks(int(flag)))


def _save_failure(save_dir, tag_dir, error):
    free = shutil.disk_usage(save_dir).free if os.path.isdir(save_dir) else None
    space = f"; {free / 2**20:.0f} MiB free on that file system" if free is not None else ""
    previous = read_tracker(save_dir) if os.path.isdir(save_dir) else None
    resume = (f"The previous complete checkpoint {os.path.join(save_dir, previous)} is untouched and the tracker "
              f"still names it: fix the cause, then resume with --load {save_dir}" if previous else
              "No earlier checkpoint of this run exists")
    return CheckpointSaveError(f"could not write checkpoint {tag_dir}: {error or 'failed on another rank'}{space}. "
                               f"{resume}")


def save_training_checkpoint(save_dir, iteration, engine, data_state=None, *, save_rng=True, save_optimizer=True):
    """Write a checkpoint of ``iteration`` under ``save_dir`` and point the trackers at it; without
    ``save_rng`` (--no-save-rng) or ``save_optimizer`` (--no-save-optim) those parts are left out.

    When any rank fails to write its part, every rank raises :class:`CheckpointSaveError` naming the
    path and the cause, the trackers keep naming the previous checkpoint, and a new tag folder that
    the failed save created is removed (DeepSpeed writes its files in place)."""
    tag = str(iteration)
    tag_dir = os.path.join(save_dir, tag)
    new_folder = not os.path.exists(tag_dir)
    client = {"iteration": iteration, "data_state": data_state or {},
              "mp_world_size": mpu.get_model_parallel_world_size(),
              "dp_world_size": mpu.get_data_parallel_world_size()}
    if engine.lr_scheduler is not None:
        client["lr_scheduler"] = engine.lr_scheduler.state_dict()
    if save_rng:
        own, by_rank = _rng_states_of_data_parallel_group()
        client.update(own)
        client[RNG_BY_DP_RANK_KEY] = by_rank
    error = None
    try:
        if engine.name == "deepspeed":
            client["client_lr_scheduler"] = client.pop("lr_scheduler", None)
            engine.engine.save_checkpoint(save_dir, tag=tag, client_state=client, save_latest=False)
        elif mpu.get_data_parallel_rank() == 0:
            state = dict(client, module=engine.module.state_dict())
            if save_optimizer:
                state.update(engine.state_dict())
            atomic_torch_save(state, os.path.join(tag_dir, model_file_name(mpu.get_model_parallel_rank())))
    except (OSError, RuntimeError) as err:  # torch reports a full disk as RuntimeError ("unexpected pos")
        error = f"{type(err).__name__}: {err}"
    if not _any_rank(error is not None) and is_rank_0():
        try:  # every part is complete: only now may the trackers name the new tag
            update_tracker_files(save_dir, tag)
        except OSError as err:
            error = f"{type(err).__name__}: {err}"
    if _any_rank(error is not None):
        if is_rank_0() and new_folder and read_tracker(save_dir) != tag:
            shutil.rmtree(tag_dir, ignore_errors=True)
        barrier()
        raise _save_failure(save_dir, tag_dir, error)
    if is_rank_0():
        logger.info("saved checkpoint %s", tag_dir)


def load_training_checkpoint(config, engine):
    """Resume from ``config.checkpoint.load``; returns a :class:`ResumeState` (call its ``restore_rng()`` just before
    the first step).

    ``--no-load-optim``, ``--no-load-rng``, ``--no-load-lr-scheduler`` and ``--finetune`` skip those
    parts; a ``release`` tag loads the weights only.  A checkpoint saved at another model-parallel size
    is resharded, the weights and Adam's moments alike (plain engine and DeepSpeed without ZeRO: here;
    ZeRO: through DeepSpeed's universal checkpoint, re-cut by
    :func:`~glm.checkpoint.zero.convert_to_universal_at_model_parallel_size`); DeepSpeed ZeRO shards saved
    at another data-parallel size are re-partitioned through DeepSpeed's universal checkpoint.
    """
    resolved = resolve_checkpoint(config.checkpoint.load)
    weights_only_load = resolved.release or config.checkpoint.finetune
    if engine.name == "deepspeed" and not config.checkpoint.no_deepspeed_load and not weights_only_load:
        return _load_deepspeed(config, engine, resolved)
    try:
        meta = load_model_state(engine.module, config.checkpoint.load, unsafe_unpickle=config.checkpoint.unsafe_unpickle)
    except CheckpointError as err:
        raise CheckpointError(f"{err}{'' if resolved.zero3 else _earlier_checkpoints_hint(resolved)}") from err
    _refresh_deepspeed_master_weights(engine)
    if not weights_only_load and not config.checkpoint.no_load_optim:
        if meta.get("optimizer") is None:
            raise CheckpointError(
                f"{resolved.tag_dir} holds no optimizer state; resume with --no-load-optim to start a fresh optimizer")
        if resolved.mp_size != mpu.get_model_parallel_world_size():
            meta = dict(meta, optimizer=_resharded_optimizer_state(config, engine, resolved))
        engine.load_state_dict(meta)
    return _restore_client_state(config, engine, meta, weights_only_load)


def _load_deepspeed_without_zero_at_other_model_parallel_size(config, engine, resolved):
    """DeepSpeed without ZeRO (stage 0) keeps its whole optimizer state in its ``mp_rank_XX`` files,
    beside the weights: in fp32 a ``torch.optim`` state, in fp16 and bf16 its optimizer wrapper's (the
    loss scaler, every parameter's fp32 master copy and the ``torch.optim`` state that steps them).
    The weights, masters and moments are re-cut as the plain engine's are."""
    meta = load_model_state(engine.module, config.checkpoint.load, unsafe_unpickle=config.checkpoint.unsafe_unpickle)
    if config.checkpoint.no_load_optim:
        _refresh_deepspeed_master_weights(engine)
    else:
        engine.optimizer.load_state_dict(_resharded_optimizer_state(config, engine, resolved))
    ds = engine.engine
    ds.global_steps, ds.global_samples = meta.get("global_steps", 0), meta.get("global_samples", 0)
    return _restore_client_state(config, engine, meta, False)


def _refresh_deepspeed_master_weights(engine):
    """After weights were loaded into a DeepSpeed engine's module: its optimizer's fp32 master copies
    (fp16/bf16 wrapper, ZeRO-1/2 partitions) were taken when the engine was built, and its next step
    would write them back over the loaded weights; copy them from the loaded weights."""
    refresh = getattr(engine.engine.optimizer, "refresh_fp32_params", None) if engine.name == "deepspeed" else None
    if refresh is not None:
        refresh()


def _resharded_optimizer_state(config, engine, resolved):
    """This rank's optimizer state from a checkpoint of another model-parallel size: Adam's moments
    (and DeepSpeed's fp32 master weights) have their weights' shapes, so they are merged and re-cut by
    the weights' partition rules."""
    # Memory-mapped: only the optimizer tensors are paged in, not the weights beside them.
    states = [
        load_checkpoint_file(resolved.model_file(r), unsafe_unpickle=config.checkpoint.unsafe_unpickle,
                             mmap=True)["optimizer"] for r in range(resolved.mp_size)
    ]
    logger.info("resharding the optimizer state of %s from model-parallel size %d to %d", resolved.tag_dir,
                resolved.mp_size, mpu.get_model_parallel_world_size())
    partitions, world, rank = partition_map(engine.module), mpu.get_model_parallel_world_size(), \
        mpu.get_model_parallel_rank()
    if all(set(state) == {"state", "param_groups"} for state in states):
        return reshard_optimizer_states(states, optimizer_parameter_names(engine.optimizer, engine.module),
                                        partitions, world, rank)
    # DeepSpeed's fp16/bf16 optimizer wrappers: fp16_groups are the module's parameters, in the groups' order.
    master_groups = getattr(engine.optimizer, "fp16_groups", None)
    if master_groups is not None and all(WRAPPED_OPTIMIZER_KEY in state for state in states):
        names = parameter_names(master_groups, engine.module)
        if all(MASTER_WEIGHTS_KEY in state for state in states):
            return reshard_master_weight_optimizer_states(states, names, partitions, world, rank)
        if all(FLAT_MASTER_WEIGHTS_KEY in state for state in states):
            # Flat groups: cut by the parameters' shapes at the checkpoint's size, derived from this rank's.
            new_shapes = {name: tuple(param.shape) for name, param in engine.module.named_parameters()}
            saved_shapes = {name: shard_shape(shape, partitions.get(name, (None, 1))[0], world, resolved.mp_size)
                            for name, shape in new_shapes.items()}
            return reshard_flat_master_weight_optimizer_states(states, names, [len(group) for group in master_groups],
                                                               saved_shapes, new_shapes, partitions, world, rank)
    raise CheckpointError(
        f"{resolved.tag_dir}: its optimizer state (keys {sorted(states[0])}) is neither a torch.optim state nor that "
        "of DeepSpeed's fp16/bf16 optimizer, so it cannot be re-cut for model-parallel size "
        f"{mpu.get_model_parallel_world_size()}; resume with --no-load-optim to start a fresh optimizer")


def _earlier_checkpoints_hint(resolved):
    """Where to go when the checkpoint the tracker names cannot be read: the run's earlier
    checkpoints that have every model-parallel shard."""
    if not resolved.tag.isdigit() or not os.path.isdir(resolved.load_dir):
        return ""
    earlier = []
    for name in os.listdir(resolved.load_dir):
        tag_dir = os.path.join(resolved.load_dir, name)
        if name.isdigit() and int(name) < int(resolved.tag) and os.path.isdir(tag_dir) and all(
                os.path.isfile(os.path.join(tag_dir, model_file_name(r))) for r in range(resolved.mp_size)):
            earlier.append(int(name))
    if not earlier:
        return f". {resolved.load_dir} holds no earlier checkpoint"
    tracker = os.path.join(resolved.load_dir, TRACKER_FILENAME)
    return (f". Earlier checkpoints of this run: {', '.join(map(str, sorted(earlier)))}; to resume from the newest, "
            f"name it in the tracker (echo {max(earlier)} > {tracker}) and run again")


def _restore_client_state(config, engine, meta, weights_only_load):
    if weights_only_load:
        return ResumeState()
    scheduler_state = meta.get("lr_scheduler") or meta.get("client_lr_scheduler")
    if engine.lr_scheduler is not None and scheduler_state and not config.checkpoint.no_load_lr_scheduler:
        engine.lr_scheduler.load_state_dict(scheduler_state)
    rng_state = None if config.checkpoint.no_load_rng else _rng_state_for_this_rank(meta)
    iteration = meta.get("iteration", meta.get("total_iters", 0))
    return ResumeState(int(iteration), meta.get("data_state") or {}, rng_state)


UNIVERSAL_SUFFIX = "-universal"


def _universal_checkpoint(config, resolved, saved_dp, partitions):
    """``(load_dir, tag, temporary folder)`` of the universal form of a ZeRO checkpoint written at
    data-parallel size ``saved_dp``, converted by global rank 0 while the other ranks wait.  It goes into
    a new hidden folder ``.universal-XXXX`` under this run's ``--save`` (shared storage that every node
    sees and that this run writes anyway; without ``--save``, beside the checkpoint), never among the
    ``--load`` run's own files; :func:`_load_deepspeed` removes it once every rank has loaded.  At the
    checkpoint's model-parallel size it holds ``<tag>-universal``; at another one,
    ``mp_rank_XX/<tag>-universal`` for each new model-parallel rank, re-cut by ``partitions`` (the model's
    ``{name: (dim, stride)}``).  A failed conversion stops every rank with the cause."""
    parent = config.checkpoint.save or resolved.load_dir
    mp_world = mpu.get_model_parallel_world_size()
    name = resolved.tag + UNIVERSAL_SUFFIX
    temporary, outputs, error = None, None, None
    if is_rank_0():
        try:
            os.makedirs(parent, exist_ok=True)
            # DeepSpeed's converter also writes a 'latest_universal' beside its output: both stay in here.
            temporary = tempfile.mkdtemp(prefix=".universal-", dir=parent)
            logger.info("re-partitioning the ZeRO optimizer state of %s (model-parallel size %d -> %d, data-parallel "
                        "size %d -> %d) through DeepSpeed's universal checkpoint in %s", resolved.tag_dir,
                        resolved.mp_size, mp_world, saved_dp, mpu.get_data_parallel_world_size(), temporary)
            if resolved.mp_size == mp_world:
                outputs = [convert_to_universal(resolved.tag_dir, os.path.join(temporary, name))] * mp_world
            else:
                outputs = convert_to_universal_at_model_parallel_size(resolved.tag_dir, temporary, partitions,
                                                                      mp_world, name)
        except Exception as err:  # DeepSpeed's converter raises assorted errors (and asserts)
            error = f"{type(err).__name__}: {err}"
    named = [temporary, outputs]
    if dist.is_initialized():
        dist.broadcast_object_list(named, src=0)
    temporary, outputs = named
    if _any_rank(error is not None):
        _remove_universal(temporary)
        raise CheckpointError(f"could not convert {resolved.tag_dir} (model-parallel size {resolved.mp_size}, "
                              f"data-parallel size {saved_dp}) into DeepSpeed's universal form under {parent}: "
                              f"{error or 'failed on rank 0'}")
    output = outputs[mpu.get_model_parallel_rank()]
    return os.path.dirname(output), os.path.basename(output), temporary


def _remove_universal(temporary):
    """Remove the universal form's temporary folder once no rank reads it any more."""
    barrier()
    if is_rank_0() and temporary:
        shutil.rmtree(temporary, ignore_errors=True)


def _repair_zero3_universal_load(zero_optimizer, groups_before, universal_dir, unsafe_unpickle=False):
    """Undo two slips of DeepSpeed 0.19's ZeRO-3 universal load: it gives every optimizer group the
    hyperparameters of the first one (weight decay on biases and LayerNorm), and one shared ``step``
    tensor to every group's state (Adam then counts each update once per group).  Each group gets its
    own saved hyperparameters back and its own step counter."""
    optimizer = zero_optimizer.optimizer
    path = os.path.join(universal_dir, "zero", "optimizer_state.pt")
    # DeepSpeed's own file, read in full as DeepSpeed reads it: checked by name first, like every other.
    check_checkpoint_globals([path], unsafe_unpickle)
    saved = torch.load(path, map_location="cpu", weights_only=False)["optimizer_state_dict"]["param_groups"]
    if len(saved) != len(groups_before):
        raise CheckpointError(f"{universal_dir}: {len(saved)} optimizer groups saved, {len(groups_before)} now")
    for group, before, stored in zip(optimizer.param_groups, groups_before, saved):
        group.update({key: value for key, value in stored.items() if key != "params"})
        group["params"] = before["params"]
    for flat in zero_optimizer.fp32_partitioned_groups_flat:
        state = optimizer.state.get(flat, {})
        if torch.is_tensor(state.get("step")):
            state["step"] = state["step"].clone()


def _restart_zero_optimizer_state(zero_optimizer):
    """--no-load-optim through DeepSpeed's universal load, which brings Adam's moments and step in with
    the fp32 weights (ZeRO-1/2 always; ZeRO-3 loads weights alone only from native ZeRO files, of the
    checkpoint's own sizes).  They are zeroed in place (the tensors DeepSpeed links to its parameters stay
    the same): a fresh Adam, whose first update starts from zero moments at step 0 as a new one does."""
    for state in zero_optimizer.optimizer.state.values():
        for key, value in state.items():
            if torch.is_tensor(value):
                value.zero_()
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                state[key] = type(value)(0)


def _load_deepspeed(config, engine, resolved):
    # DeepSpeed unpickles its files in full: check what they would import before it reads them.
    check_checkpoint_globals(sorted(glob.glob(os.path.join(glob.escape(resolved.tag_dir), "*.pt"))),
                             config.checkpoint.unsafe_unpickle)
    saved_dp = zero_data_parallel_size(resolved.tag_dir)
    other_mp = resolved.mp_size != mpu.get_model_parallel_world_size()
    if other_mp and saved_dp == 0:
        return _load_deepspeed_without_zero_at_other_model_parallel_size(config, engine, resolved)
    # The optimizer state at another size comes from the universal form; so do the weights at another
    # model-parallel size (the ZeRO files hold them cut for the old one) and ZeRO-3's at another data-parallel
    # size (partitioned too), with or without the optimizer state.
    other_dp = saved_dp not in (0, mpu.get_data_parallel_world_size())
    repartition = other_mp or (other_dp and (not config.checkpoint.no_load_optim
                                             or engine.engine.zero_optimization_partition_weights()))
    load_dir, tag, temporary = (_universal_checkpoint(config, resolved, saved_dp, partition_map(engine.module))
                                if repartition else (resolved.load_dir, resolved.tag, None))
    try:
        ds = engine.engine
        ds._config.load_universal_checkpoint = repartition  # what "checkpoint": {"load_universal": true} sets
        groups_before = [dict(group) for group in ds.optimizer.optimizer.param_groups] if repartition else None
        try:
            # A universal load always takes the optimizer state (ZeRO-3's weights-only load reads the native
            # ZeRO files instead); with --no-load-optim it is restarted after the load.
            _, client = ds.load_checkpoint(
                load_dir, tag=tag, load_optimizer_states=repartition or not config.checkpoint.no_load_optim,
                load_lr_scheduler_states=False, load_module_strict=True)
        finally:
            ds._config.load_universal_checkpoint = False
        if repartition and ds.zero_optimization_partition_weights():
            _repair_zero3_universal_load(ds.optimizer, groups_before, os.path.join(load_dir, tag),
                                         config.checkpoint.unsafe_unpickle)
        if repartition and config.checkpoint.no_load_optim:
            _restart_zero_optimizer_state(ds.optimizer)
    except Exception as err:  # DeepSpeed raises assorted errors
        raise CheckpointError(
            f"DeepSpeed could not load {resolved.tag_dir} ({type(err).__name__}: {err}). To resume without its "
            "optimizer state, pass --no-load-optim (weights, schedule and data position are kept)") from err
    finally:
        if repartition:
            _remove_universal(temporary)
    if client is None:
        raise CheckpointError(f"DeepSpeed found no checkpoint in {resolved.tag_dir}")
    return _restore_client_state(config, engine, client, False)
