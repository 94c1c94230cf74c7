"""Re-cut a checkpoint for another model-parallel size (``python change_mp.py DIR TARGET_MP``).

Reads every ``mp_rank_XX_model_states.pt`` of the checkpoint at ``DIR`` (a save directory with a
tracker file naming an iteration, ``release`` or ``best``, or a folder holding the files
directly), re-cuts the ``module`` state dict for ``TARGET_MP`` ranks with the partition the model
itself declares (:mod:`glm.checkpoint.shape_inference`, :mod:`glm.mpu.partition`), and writes
``DIR_MP<TARGET_MP>`` in the same layout.  Other top-level keys follow spec 4.4: the keys of
:data:`PRESERVED_KEYS` are kept, ``mp_world_size`` becomes the target size, everything else
(the optimizer state above all) is set to ``None`` -- and this is said, not done silently.

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
from .shape_inference import check_target_size, checkpoint_partitions
from ..mpu.partition import merge_shards, shard_tensor

#: Top-level keys copied unchanged into every output shard (the original's preserve list).
PRESERVED_KEYS = ("lr_scheduler", "skipped_steps", "global_steps", "global_samples", "dp_world_size", "iteration",
                  "client_lr_scheduler", "random_rng_state", "np_rng_state", "torch_rng_state", "cuda_rng_state",
                  "rng_tracker_states")
MODULE_KEY = "module"


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


def _other_keys(checkpoint, target_mp):
    """Non-``module`` keys for an output shard, and the names of the keys whose content is dropped."""
    out, dropped = {}, []
    for key, value in checkpoint.items():
        if key == MODULE_KEY:
            continue
        if key in PRESERVED_KEYS:
            out[key] = value
        elif key == "mp_world_size":
            out[key] = target_mp
        else:
            out[key] = None
            if value is not None and not (hasattr(value, "__len__") and len(value) == 0):
                dropped.append(key)
    return out, dropped


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
    others, dropped = _other_keys(checkpoints[0], target_mp)
    if dropped:
        log(f"change_mp: NOTE the following state cannot be re-cut and is set to None in the output: "
            f"{', '.join(dropped)}. The optimizer state is dropped; resume from the output with --no-load-optim "
            "(optimizer moments restart from zero).")
    del checkpoints

    with staged_directory(output_dir, inputs) as staging:
        tag_dir = os.path.join(staging, resolved.tag) if has_tracker else staging
        os.makedirs(tag_dir, exist_ok=True)
        for rank in range(target_mp):
            module = reshard_module(shards, partitions, target_mp, rank, release=rank == target_mp - 1, mapped=mapped)
            state = dict(others)
            state[MODULE_KEY] = module
            atomic_torch_save(state, os.path.join(tag_dir, model_file_name(rank)))
            del module, state
        if has_tracker:
            for name in (TRACKER_FILENAME, DEEPSPEED_TRACKER_FILENAME):
                atomic_write_text(os.path.join(staging, name), resolved.tag + "\n")
    log(f"change_mp: wrote {target_mp} shard(s) to {output_dir}")
    return output_dir
