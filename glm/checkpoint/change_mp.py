"""Re-cut a checkpoint for another model-parallel size (``python change_mp.py DIR TARGET_MP``).

Reads every ``mp_rank_XX_model_states.pt`` of the checkpoint at ``DIR`` (a save directory with a
tracker file naming an iteration, ``release`` or ``best``, or a folder holding the files
directly), re-cuts the ``module`` state dict for ``TARGET_MP`` ranks with the partition the model
itself declares (:mod:`glm.checkpoint.shape_inference`, :mod:`glm.mpu.partition`), and writes
``DIR_MP<TARGET_MP>`` in the same layout.  Other top-level keys follow spec 4.4 and go further: the keys
of :data:`PRESERVED_KEYS` and :data:`REPLICATED_KEYS` are kept (rank 0's copy), ``mp_world_size``
becomes the target size, and a ``torch.optim`` state (the plain engine's Adam) is re-cut like the weights
by :func:`glm.checkpoint.reshard.reshard_optimizer_states`, the code a resume at another size runs.
Anything else -- an optimizer state of another wrapper above all -- is set to ``None``, and this is
said, not done silently.

Memory: the source shards are read once; output shards are built and written one rank at a time
and each full tensor exists only while it is being cut, so the peak stays near the checkpoint
size plus one output shard (``bench/bench_reshard.py``).

Owns re-cutting a checkpoint on disk; its command line (flags, exit codes) is the program ``change_mp.py``.
"""

import os

import torch

from .errors import CheckpointError
from .io import (atomic_torch_save, atomic_write_text, check_output_directory, is_mappable,
                 load_checkpoint_file, release_pages, staged_directory)
from .layout import DEEPSPEED_TRACKER_FILENAME, TRACKER_FILENAME, model_file_name, read_tracker, resolve_checkpoint
from .reshard import parameter_names, reshard_optimizer_states
from .shape_inference import check_target_size, checkpoint_model, checkpoint_partitions
from ..model.glm import glm_get_params_for_weight_decay_optimization
from ..mpu.partition import merge_shards, shard_tensor

#: Top-level keys copied unchanged into every output shard (the original's preserve list).
PRESERVED_KEYS = ("lr_scheduler", "skipped_steps", "global_steps", "global_samples", "dp_world_size", "iteration",
                  "client_lr_scheduler", "random_rng_state", "np_rng_state", "torch_rng_state", "cuda_rng_state",
                  "rng_tracker_states")
#: Training state that is the same on every model-parallel rank (the fp16 loss scaler, the data position,
#: every data-parallel rank's RNG streams): rank 0's copy serves each rank of the target size, as it does
#: when a run resumes at another size directly (glm.training.checkpointing).
REPLICATED_KEYS = ("grad_scaler", "data_state", "rng_states_by_dp_rank")
MODULE_KEY = "module"
OPTIMIZER_KEY = "optimizer"
#: Written beside ``rng_tracker_states`` when those are another model-parallel size's (rank 0's copy: the
#: model-parallel dropout streams are seeded per rank and do not map onto the ranks of another size).  The
#: loader then keeps each rank's freshly seeded stream, as a resume at another size does; the original's
#: tools do not know the key and read the checkpoint as before.
RNG_TRACKER_SIZE_KEY = "rng_tracker_mp_world_size"


def default_output_dir(checkpoint_dir, target_mp):
    return os.path.normpath(checkpoint_dir) + f"_MP{target_mp}"


def _load_shards(resolved, unsafe_unpickle=False):
    # Mapped, not read: a tensor costs memory while it is cut (reshard_module gives its pages back).
    checkpoints = [load_checkpoint_file(resolved.model_file(r), unsafe_unpickle=unsafe_unpickle, mmap=True)
                   for r in range(resolved.mp_size)]
    for rank, ckpt in enumerate(checkpoints):
        if not isinstance(ckpt, dict) or MODULE_KEY not in ckpt:
            raise CheckpointError(f"{resolved.model_file(rank)} has no '{MODULE_KEY}' entry; not a GLM model checkpoint")
    iterations = {ckpt.get("iteration") for ckpt in checkpoints}
    if len(iterations) > 1:
        found = ", ".join(f"rank {r}: {c.get('iteration')}" for r, c in enumerate(checkpoints))
        raise CheckpointError(f"the shards in {resolved.tag_dir} come from different iterations ({found})")
    keys0 = list(checkpoints[0][MODULE_KEY])
    for rank, ckpt in enumerate(checkpoints[1:], start=1):
        if set(ckpt[MODULE_KEY]) != set(keys0):
            diff = sorted(set(ckpt[MODULE_KEY]) ^ set(keys0))
            raise CheckpointError(f"shard {rank} of {resolved.tag_dir} holds other tensors than shard 0: {diff[:10]}")
    for ckpt in checkpoints:
        stored = ckpt.get("mp_world_size")
        if isinstance(stored, int) and stored != resolved.mp_size:
            raise CheckpointError(
                f"{resolved.tag_dir} has {resolved.mp_size} shard files but they say mp_world_size={stored}; "
                "a rank is missing or files from another run are mixed in")
    return checkpoints


def _other_keys(checkpoint, source_mp, target_mp):
    """Keys other than ``module`` for an output shard (``optimizer`` None: the caller fills it in), and
    the names of the keys whose content is dropped."""
    out, dropped = {}, []
    for key, value in checkpoint.items():
        if key in (MODULE_KEY, RNG_TRACKER_SIZE_KEY):
            continue
        if key == OPTIMIZER_KEY:
            out[key] = None
        elif key in PRESERVED_KEYS or key in REPLICATED_KEYS:
            out[key] = value
        elif key == "mp_world_size":
            out[key] = target_mp
        else:
            out[key] = None
            if value is not None and not (hasattr(value, "__len__") and len(value) == 0):
                dropped.append(key)
    tracker_size = checkpoint.get(RNG_TRACKER_SIZE_KEY, source_mp)
    if checkpoint.get("rng_tracker_states") is not None and tracker_size != target_mp:
        out[RNG_TRACKER_SIZE_KEY] = tracker_size
    return out, dropped


def _optimizer_parameter_names(model):
    """The names of ``model``'s trainable parameters in the order a run's optimizer numbers them: the
    weight-decay groups the plain engine builds (glm.training.model_setup.param_groups; empty groups left
    out), with their sizes."""
    groups = [g["params"] for g in glm_get_params_for_weight_decay_optimization(model) if g["params"]]
    return parameter_names(groups, model), [len(group) for group in groups]


def _recuttable_optimizer(checkpoints, shards, mp_size, num_attention_heads):
    """``(states, names, None)`` when every shard's ``optimizer`` is a ``torch.optim`` state whose
    parameters are those of the model the shapes describe, in the plain engine's order (checked group by
    group and against every moment's shape); else ``(None, None, why not)``.  ``(None, None, None)``:
    the checkpoint holds no optimizer state."""
    states = [c.get(OPTIMIZER_KEY) for c in checkpoints]
    if all(s is None or (hasattr(s, "__len__") and len(s) == 0) for s in states):
        return None, None, None
    if not all(isinstance(s, dict) and set(s) == {"state", "param_groups"}
               and all(isinstance(g.get("params"), list) for g in s["param_groups"]) for s in states):
        return None, None, ("it is not a torch.optim state (another optimizer wrapper wrote it, e.g. the "
                            "original's FP16_Optimizer or DeepSpeed)")
    model, _ = checkpoint_model(shards[0], mp_size, num_attention_heads)
    names, sizes = _optimizer_parameter_names(model)
    for rank, state in enumerate(states):
        saved = [len(group["params"]) for group in state["param_groups"]]
        if saved != sizes:
            return None, None, (f"its parameter groups hold {saved} parameters where the model the shapes describe "
                                f"trains {sizes} (a run that froze other parameters)")
        for index, entry in state["state"].items():
            weight = shards[rank].get(names[int(index)])
            for key, value in entry.items():
                if torch.is_tensor(value) and value.dim() > 0 and (weight is None or value.shape != weight.shape):
                    return None, None, (f"its entry {index} '{key}' of shape {list(value.shape)} does not match "
                                        f"the parameter {names[int(index)]} of rank {rank}")
    return states, names, None


def _full_tensor(shards, key, dim, stride):
    if len(shards) == 1 or dim is None:
        return shards[0][key]
    return merge_shards([s[key] for s in shards], dim, stride)


def reshard_module(shards, partitions, target_mp, rank, release=False, mapped=False):
    """Rank ``rank``'s ``module`` at ``target_mp`` from the source ``shards`` (list of state
    dicts); each full tensor lives only while it is cut.  With ``release`` the source tensors are
    dropped from ``shards`` as soon as they are used (call it for the last rank).  ``mapped``: the
    shards are memory-mapped files, whose pages are given back once a tensor is cut (read again
    from the file for the next rank)."""
    out = {}
    for key in list(shards[0]):
        value = shards[0][key]
        if not torch.is_tensor(value):
            out[key] = value
        else:
            dim, stride = partitions[key]
            full = _full_tensor(shards, key, dim, stride)
            if dim is None or target_mp == 1:
                out[key] = full
            else:
                out[key] = shard_tensor(full, dim, stride, target_mp, rank)
            del full
            if mapped:
                for shard in shards:
                    release_pages(shard[key])
        if release:
            for s in shards:
                del s[key]
    return out


def change_model_parallel(checkpoint_dir, target_mp, output_dir=None, overwrite=False, num_attention_heads=None,
                          log=print, unsafe_unpickle=False, protect=()):
    """Write ``checkpoint_dir`` re-cut for ``target_mp`` ranks; returns the output directory.

    The output may not be, contain or lie inside ``checkpoint_dir`` or any folder in ``protect`` (the
    user's original input when ``checkpoint_dir`` is an intermediate), whatever ``overwrite`` says."""
    target_mp = int(target_mp)
    if not os.path.isdir(checkpoint_dir):
        raise CheckpointError(f"{checkpoint_dir} is not a directory; change_mp.py takes a checkpoint directory")
    resolved = resolve_checkpoint(checkpoint_dir)
    has_tracker = read_tracker(checkpoint_dir) is not None
    output_dir = output_dir or default_output_dir(checkpoint_dir, target_mp)
    inputs = (checkpoint_dir, *protect)
    check_output_directory(output_dir, inputs, overwrite)

    checkpoints = _load_shards(resolved, unsafe_unpickle)
    mapped = all(is_mappable(resolved.model_file(r)) for r in range(resolved.mp_size))
    shards = [c[MODULE_KEY] for c in checkpoints]
    partitions, info = checkpoint_partitions(shards[0], resolved.mp_size, num_attention_heads)
    check_target_size(info, partitions, shards, target_mp)
    log(f"change_mp: {resolved.tag_dir} (tag '{resolved.tag}', model-parallel size {resolved.mp_size}) -> "
        f"{output_dir} (size {target_mp})")
    log(f"change_mp: model inferred from the shapes: {info.num_layers} layers, hidden {info.hidden_size}, "
        f"vocab {info.vocab_size}, {'relative' if info.relative_encoding else 'block' if info.block_position_encoding else 'absolute'}"
        f" positions, head={info.head}" + (f", prompt spell {info.spell_length} ({info.spell_func})" if info.spell_length else "")
        + ("" if info.num_attention_heads else "; number of attention heads unknown (pass --num-attention-heads "
           "to check that it divides the target size)"))
    others, dropped = _other_keys(checkpoints[0], resolved.mp_size, target_mp)
    optimizer_states, optimizer_names, not_recut = _recuttable_optimizer(checkpoints, shards, resolved.mp_size,
                                                                         num_attention_heads)
    if not_recut:
        dropped.insert(0, f"{OPTIMIZER_KEY} ({not_recut})")
    if dropped:
        log(f"change_mp: NOTE the following state cannot be re-cut and is set to None in the output: "
            f"{', '.join(dropped)}."
            + (" Resume from the output with --no-load-optim (optimizer moments restart from zero)."
               if not_recut else ""))
    if optimizer_states is not None:
        log(f"change_mp: optimizer state re-cut like the weights ({len(optimizer_names)} parameters' moments)")
    if RNG_TRACKER_SIZE_KEY in others:
        log("change_mp: the model-parallel RNG streams (rng_tracker_states) are rank 0's of size "
            f"{others[RNG_TRACKER_SIZE_KEY]}; a resume from the output seeds each rank's stream afresh")
    del checkpoints

    with staged_directory(output_dir, inputs) as staging:
        tag_dir = os.path.join(staging, resolved.tag) if has_tracker else staging
        os.makedirs(tag_dir, exist_ok=True)
        for rank in range(target_mp):
            module = reshard_module(shards, partitions, target_mp, rank, release=rank == target_mp - 1, mapped=mapped)
            state = dict(others)
            if optimizer_states is not None:
                state[OPTIMIZER_KEY] = reshard_optimizer_states(optimizer_states, optimizer_names, partitions,
                                                                target_mp, rank)
            state[MODULE_KEY] = module
            atomic_torch_save(state, os.path.join(tag_dir, model_file_name(rank)))
            del module, state
        if has_tracker:
            for name in (TRACKER_FILENAME, DEEPSPEED_TRACKER_FILENAME):
                atomic_write_text(os.path.join(staging, name), resolved.tag + "\n")
    log(f"change_mp: wrote {target_mp} shard(s) to {output_dir}")
    return output_dir
