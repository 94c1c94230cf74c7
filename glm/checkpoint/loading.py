"""Loading a checkpoint into a (possibly model-parallel) model."""

import logging
import os
import re

import torch

from .. import mpu
from .errors import CheckpointError
from .io import load_checkpoint_file
from .layout import BEST_TAG, list_model_files, read_tracker, resolve_checkpoint
from .reshard import partition_layout, reshard_state_dicts

logger = logging.getLogger(__name__)

POSITION_TABLES = ("transformer.position_embeddings.weight", "transformer.block_position_embeddings.weight")


def read_model_state_dict(checkpoint, key="module"):
    """The model state dict inside a loaded checkpoint dict (``module`` by default)."""
    if key not in checkpoint:
        raise CheckpointError(f"checkpoint has no '{key}' entry (keys: {sorted(checkpoint)})")
    return checkpoint[key]


def _model_parallel(model):
    group = getattr(model, "group", None)
    if group is None and hasattr(model, "model"):
        group = getattr(model.model, "group", None)
    if group is None:
        group = mpu.get_model_parallel_group()
    return mpu.group_rank(group), mpu.group_world_size(group)


def _fit_to_model(state_dict, model_state, extend_position_tables):
    """Cast to the model's dtypes, grow position tables, and name any shape mismatch."""
    fitted = {}
    for key, value in state_dict.items():
        target = model_state.get(key)
        if target is None or not torch.is_tensor(value):
            fitted[key] = value
            continue
        if value.shape != target.shape:
            grows = (key.endswith(POSITION_TABLES) and extend_position_tables and value.dim() == 2
                     and value.size(1) == target.size(1) and value.size(0) < target.size(0))
            if not grows:
                raise CheckpointError(
                    f"checkpoint tensor '{key}' has shape {list(value.shape)} but the model expects "
                    f"{list(target.shape)}; check --num-layers/--hidden-size/--num-attention-heads/"
                    "--max-position-embeddings and the tokenizer flags against the checkpoint")
            # A longer --max-position-embeddings than the checkpoint: keep the stored rows and
            # the model's own initialisation for the new ones (the original guarded this by
            # mistake on the block-position key for both tables; here each table is checked).
            grown = target.detach().clone()
            grown[: value.size(0)] = value.to(grown.dtype)
            logger.info("extended %s from %d to %d rows", key, value.size(0), target.size(0))
            value = grown
        fitted[key] = value.to(dtype=target.dtype)
    return fitted


def load_model_state(model, path, strict=True, extend_position_tables=True, tag=None, key="module",
                     unsafe_unpickle=False):
    """Load the checkpoint at ``path`` into ``model`` and return the checkpoint dict of this rank
    (without its ``module`` entry) for the caller's other state.

    ``path`` may be a save directory (tracker file), a directory of ``mp_rank_XX`` files or one
    such file.  Files are read without running code from them unless ``unsafe_unpickle``
    (:func:`~glm.checkpoint.io.load_checkpoint_file`).  When the checkpoint was saved at another
    model-parallel size, every shard is read, merged and re-cut for this rank using the model's own
    layout.  fp16 weights load into models of any dtype.
    """
    resolved = resolve_checkpoint(path, tag=tag)
    if resolved.zero3:
        raise CheckpointError(
            f"{resolved.tag_dir} is a DeepSpeed ZeRO-3 checkpoint: its weights are partitioned over the "
            "zero_pp_rank_* files. Resume it with --deepspeed (a ZeRO-3 config), or consolidate it first: "
            f"python change_mp.py {resolved.load_dir} 1 --consolidate-zero --tag {resolved.tag}")
    rank, world = _model_parallel(model)
    if resolved.mp_size == world:
        checkpoint = load_checkpoint_file(resolved.model_file(rank), unsafe_unpickle=unsafe_unpickle)
        state_dict = read_model_state_dict(checkpoint, key)
    else:
        logger.info("resharding %s from model-parallel size %d to %d", resolved.tag_dir, resolved.mp_size, world)
        checkpoints = [load_checkpoint_file(resolved.model_file(r), unsafe_unpickle=unsafe_unpickle)
                       for r in range(resolved.mp_size)]
        shards = [read_model_state_dict(c, key) for c in checkpoints]
        state_dict = reshard_state_dicts(shards, partition_layout(model), world, rank)
        checkpoint = checkpoints[0]
    model_state = model.state_dict()
    state_dict = _fit_to_model(state_dict, model_state, extend_position_tables)
    result = model.load_state_dict(state_dict, strict=strict)
    if not strict and (result.missing_keys or result.unexpected_keys):
        logger.warning("loading %s: missing keys %s, unexpected keys %s", resolved.tag_dir,
                       result.missing_keys, result.unexpected_keys)
    meta = {k: v for k, v in checkpoint.items() if k != key}
    meta.setdefault("iteration", resolved.iteration)
    meta["_resolved"] = resolved
    meta["_missing_keys"], meta["_unexpected_keys"] = list(result.missing_keys), list(result.unexpected_keys)
    return meta


def load_pretrained_weights(model, path, new_parts=(), unsafe_unpickle=False, log=print):
    """Load the GLM weights a run starts from (``--load-pretrained``) into ``model`` (a ``GLMModel``),
    say which checkpoint was read, and return the checkpoint's other entries.

    Every entry must match, except parameters whose names start with one of ``new_parts`` (parts the
    checkpoint cannot have, e.g. a P-tuning prompt encoder).  A checkpoint of another shape
    (``--num-layers`` 3 against 2 stored layers, ...) is one :class:`CheckpointError` naming the
    folder and the flags to check, the same for finetuning, zero-shot evaluation and generation.

    A finetuning run's folder holds its last epoch (named by the tracker) and its best dev score (tag
    ``best``); the best one is what a user starting from that run means, so it is chosen, and the
    message says how to take the last epoch instead."""
    tag, note = None, ""
    best_dir = os.path.join(path, BEST_TAG)
    if os.path.isdir(best_dir) and list_model_files(best_dir):
        tag = BEST_TAG
        last = read_tracker(path)
        if last is not None and last != BEST_TAG:
            note = (f" (the best dev checkpoint of that finetuning run; for its last checkpoint, pass "
                    f"{os.path.join(path, last)})")
    meta = load_model_state(model, path, strict=False, tag=tag, unsafe_unpickle=unsafe_unpickle)
    missing = [k for k in meta["_missing_keys"] if not k.startswith(tuple(new_parts))]
    unexpected = meta["_unexpected_keys"]
    if missing or unexpected:
        model_layers = _layer_numbers(model.state_dict())
        stored_layers = (model_layers - _layer_numbers(missing)) | _layer_numbers(unexpected)
        layers = (f"the checkpoint has {len(stored_layers)} layers, the model {len(model_layers)} (--num-layers); "
                  if stored_layers != model_layers else "")
        raise CheckpointError(
            f"{meta['_resolved'].tag_dir} does not match the model: {layers}{len(missing)} model entries are not in "
            f"the checkpoint {missing[:3]}, {len(unexpected)} checkpoint entries are not in the model "
            f"{unexpected[:3]}; check the model flags (--num-layers, --hidden-size, ...) against the checkpoint")
    log(f"loaded weights from {meta['_resolved'].tag_dir}{note}")
    return meta


def _layer_numbers(keys):
    """The transformer layer indices named by state-dict ``keys`` (a layer counts when any key of it does)."""
    return {int(match.group(1)) for key in keys if (match := re.match(r"transformer\.layers\.(\d+)\.", key))}
