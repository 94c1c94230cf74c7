"""Loading a checkpoint into a (possibly model-parallel) model: resolving the files, re-cutting for
this rank's partition when the sizes differ, fitting position tables, putting saved LoRA adapters on a
base model.  Owns loading model weights; the training state (optimizer, RNG, iteration) is restored by
``glm.training.checkpointing``."""

import logging
import math
import os
import re

import torch

from .. import mpu
from .errors import CheckpointError
from .io import is_mappable, load_checkpoint_file, release_pages
from .layout import BEST_TAG, list_model_files, read_tracker, resolve_checkpoint
from .reshard import partition_map, reshard_tensors
from ..model.lora import SETTINGS_KEY, add_lora, is_adapter_key, stored_adapter_shape

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


def _grow_position_table(key, value, target, init_std):
    """A longer ``--max-position-embeddings`` than the checkpoint: the stored rows, then rows drawn
    as the model initialises its tables (N(0, ``init_std``)).  The original guarded this by mistake
    on the block-position key for both tables; here each table is checked."""
    if target.is_meta:
        grown = torch.empty(target.shape, dtype=target.dtype)
        torch.nn.init.normal_(grown[value.size(0):], mean=0.0, std=init_std)
    else:
        grown = target.detach().clone()
    grown[: value.size(0)] = value.to(grown.dtype)
    logger.info("extended %s from %d to %d rows", key, value.size(0), target.size(0))
    return grown


def _fit_tensor(key, value, target, extend_position_tables, init_std=0.02):
    """``value`` in the model's dtype and shape (a position table may grow); a shape mismatch is
    named.  May be ``value`` itself when nothing needs changing."""
    if value.shape != target.shape:
        grows = (key.endswith(POSITION_TABLES) and extend_position_tables and value.dim() == 2
                 and value.size(1) == target.size(1) and value.size(0) < target.size(0))
        if not grows:
            raise CheckpointError(
                f"checkpoint tensor '{key}' has shape {list(value.shape)} but the model expects "
                f"{list(target.shape)}; check --num-layers/--hidden-size/--num-attention-heads/"
                "--max-position-embeddings and the tokenizer flags against the checkpoint")
        return _grow_position_table(key, value, target, init_std)
    return value.to(dtype=target.dtype)


def _owners(model):
    """``{id(tensor): (module, attribute name)}`` for every parameter and buffer of ``model``
    (heads may rename their state-dict keys, so keys are not module paths)."""
    owners = {}
    for module in model.modules():
        for name, tensor in [*module._parameters.items(), *module._buffers.items()]:
            if tensor is not None:
                owners[id(tensor)] = (module, name)
    return owners


def _put(target, value, owners):
    """Store ``value`` in the model: copied into ``target``, or -- when ``target`` is a meta tensor
    of a model built on the meta device -- put in its place, keeping the parameter's
    ``requires_grad`` and its other attributes (the model-parallel partitions)."""
    if not target.is_meta:
        with torch.no_grad():
            target.copy_(value)
        return
    module, name = owners[id(target)]
    if isinstance(target, torch.nn.Parameter):
        param = torch.nn.Parameter(value, requires_grad=target.requires_grad)
        param.__dict__.update(target.__dict__)
        setattr(module, name, param)
    else:
        module._buffers[name] = value


def _source_tensors(shards, key):
    return [shard[key] for shard in shards if torch.is_tensor(shard.get(key))]


def _load_into(model, shards, resharding, mapped, extend_position_tables):
    """Put every entry of the checkpoint into ``model`` one tensor at a time; returns (missing,
    unexpected) keys.  ``shards``: one state dict per stored model-parallel rank when ``resharding``
    (each tensor is re-cut for this rank), else this rank's state dict alone.  Peak memory: the model plus one full tensor -- each tensor's mapped pages are
    given back once it is in the model."""
    rank, world = _model_parallel(model) if resharding else (0, 1)
    model_state = model.state_dict(keep_vars=True)
    partitions = partition_map(model) if resharding else {}
    init_std = getattr(getattr(model, "transformer", None), "init_method_std", 0.02)
    owners = _owners(model)
    for key in list(shards[0]):
        sources = _source_tensors(shards, key)
        target = model_state.get(key)
        if target is None or not sources:
            continue
        if not resharding:
            value = sources[0]
        else:
            value = reshard_tensors(sources, *partitions.get(key, (None, 1)), world, rank)
        fitted = _fit_tensor(key, value, target, extend_position_tables, init_std)
        if target.is_meta and mapped and fitted.data_ptr() == sources[0].data_ptr():
            # Put in place of a meta tensor, a mapped checkpoint page would become the parameter:
            # give the model its own memory (a copied-into or re-cut tensor already has it).
            fitted = fitted.clone()
        _put(target, fitted, owners)
        del value, fitted
        if mapped:
            for source in sources:
                release_pages(source)
    stored = set(shards[0])
    missing = [key for key in model_state if key not in stored]
    unexpected = [key for key in shards[0] if key not in model_state]
    return missing, unexpected


def load_model_state(model, path, strict=True, extend_position_tables=True, tag=None, key="module",
                     unsafe_unpickle=False):
    """Load the checkpoint at ``path`` into ``model`` and return the checkpoint dict of this rank
    (without its ``module`` entry) for the caller's other state.

    ``path`` may be a save directory (tracker file), a directory of ``mp_rank_XX`` files or one
    such file.  Files are read without running code from them unless ``unsafe_unpickle``
    (:func:`~glm.checkpoint.io.load_checkpoint_file`).  When the checkpoint was saved at another
    model-parallel size, every shard is read and each tensor merged and re-cut for this rank using
    the model's own partitions.  fp16 weights load into models of any dtype.

    Files are memory-mapped and read tensor by tensor.  A model built on the meta device
    (:func:`glm.training.model_setup.build_model` with ``on_meta=True``) gets the checkpoint's
    tensors as its parameters, in its own dtype, without a random initialisation first: loading
    then holds the model plus one tensor (``bench/bench_loading.py``).  Entries the checkpoint lacks
    stay on the meta device (``strict=False``); the caller must fill them."""
    resolved = resolve_checkpoint(path, tag=tag)
    if resolved.zero3:
        raise CheckpointError(
            f"{resolved.tag_dir} is a DeepSpeed ZeRO-3 checkpoint: its weights are partitioned over the "
            "zero_pp_rank_* files. Resume it with --deepspeed (a ZeRO-3 config), or consolidate it first: "
            f"python change_mp.py {resolved.load_dir} 1 --consolidate-zero --tag {resolved.tag}")
    rank, world = _model_parallel(model)
    resharding = resolved.mp_size != world
    ranks = list(range(resolved.mp_size)) if resharding else [rank]
    if resharding:
        logger.info("resharding %s from model-parallel size %d to %d", resolved.tag_dir, resolved.mp_size, world)
    files = {r: resolved.model_file(r) for r in ranks}
    checkpoints = {r: load_checkpoint_file(f, unsafe_unpickle=unsafe_unpickle, mmap=True) for r, f in files.items()}
    mapped = all(is_mappable(f) for f in files.values())
    shards = [read_model_state_dict(checkpoints[r], key) for r in ranks]
    missing, unexpected = _load_into(model, shards, resharding, mapped, extend_position_tables)
    if strict and (missing or unexpected):
        raise CheckpointError(f"loading {resolved.tag_dir}: the model has entries the checkpoint lacks {missing[:5]} "
                              f"and the checkpoint entries the model lacks {unexpected[:5]}")
    if not strict and (missing or unexpected):
        logger.warning("loading %s: missing keys %s, unexpected keys %s", resolved.tag_dir, missing, unexpected)
    meta = {k: v for k, v in checkpoints[ranks[0]].items() if k != key}
    del shards, checkpoints
    meta.setdefault("iteration", resolved.iteration)
    meta["_resolved"] = resolved
    meta["_missing_keys"], meta["_unexpected_keys"] = missing, unexpected
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
    tag, note = _finetuning_run_tag(path)
    meta = load_model_state(model, path, strict=False, tag=tag, unsafe_unpickle=unsafe_unpickle)
    missing = [k for k in meta["_missing_keys"] if not k.startswith(tuple(new_parts))]
    unexpected = meta["_unexpected_keys"]
    if any(is_adapter_key(key) for key in unexpected):
        raise CheckpointError(
            f"{meta['_resolved'].tag_dir} holds LoRA adapters besides its weights (a LoRA run's resumable "
            "checkpoint): resume it with --load and the run's --lora-* flags, or put its adapters on a base model "
            "with --load-pretrained BASE --load-adapter PATH")
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


def _finetuning_run_tag(path):
    """``(tag, note)``: ``best`` when ``path`` is a finetuning run's folder with a best dev checkpoint
    (else None: the tracker decides), and a note saying how to take its last checkpoint instead."""
    best_dir = os.path.join(path, BEST_TAG)
    if not (os.path.isdir(best_dir) and list_model_files(best_dir)):
        return None, ""
    last = read_tracker(path)
    if last is None or last == BEST_TAG:
        return BEST_TAG, ""
    return BEST_TAG, (f" (the best dev checkpoint of that finetuning run; for its last checkpoint, pass "
                      f"{os.path.join(path, last)})")


def _first_shard(path, tag=None, unsafe_unpickle=False):
    """``(resolved, rank 0's checkpoint dict)``; the file is mapped, so reading its keys costs no memory."""
    resolved = resolve_checkpoint(path, tag=tag)
    return resolved, load_checkpoint_file(resolved.model_file(0), unsafe_unpickle=unsafe_unpickle, mmap=True)


def checkpoint_holds_adapters(path, unsafe_unpickle=False):
    """Whether the checkpoint at ``path`` (as ``--load`` resolves it) holds LoRA adapter entries."""
    _, first = _first_shard(path, unsafe_unpickle=unsafe_unpickle)
    return any(is_adapter_key(key) for key in read_model_state_dict(first))


def _adapter_settings_to_use(tag_dir, stored, found, requested):
    """The ``{rank, alpha, targets}`` to build the adapters of ``tag_dir`` with: what the file records
    (``stored``), else the flags (``requested``); either checked against the adapters' shapes (``found``:
    rank, targets) and against each other."""
    rank, targets = found
    settings = stored or requested
    if settings is None:
        raise CheckpointError(
            f"{tag_dir} does not record how its adapters were built (an adapter file written before the "
            f"settings were saved with it): pass the run's --lora-rank {rank}, --lora-alpha and --lora-targets "
            f"{','.join(targets)}")
    if settings["rank"] != rank or sorted(settings["targets"]) != targets:
        raise CheckpointError(f"{tag_dir} holds rank-{rank} adapters on {','.join(targets)}, not the rank "
                              f"{settings['rank']} on {','.join(sorted(settings['targets']))} that "
                              f"{'it records' if stored else 'the --lora-* flags ask for'}")
    if stored and requested and (requested["rank"] != stored["rank"]
                                 or not math.isclose(requested["alpha"], stored["alpha"], rel_tol=1e-9)
                                 or sorted(requested["targets"]) != sorted(stored["targets"])):
        raise CheckpointError(f"the --lora-* flags (rank {requested['rank']}, alpha {requested['alpha']:g}, "
                              f"{','.join(requested['targets'])}) contradict the adapters of {tag_dir} (rank "
                              f"{stored['rank']}, alpha {stored['alpha']:g}, {','.join(stored['targets'])}); leave "
                              "them out: --load-adapter takes the settings from the file")
    return settings


def load_adapter(model, path, requested=None, dropout=0.0, unsafe_unpickle=False, log=print):
    """``--load-adapter PATH``: put the LoRA adapters saved at ``path`` on ``model``, whose base weights
    are already loaded, and return the checkpoint's other entries.

    ``path`` is a LoRA run's folder (its ``best`` weights are taken, like ``--load-pretrained`` does),
    a tag folder or a file; what it holds must include adapter entries: an adapter-only save
    (``--lora-save adapter``) or a resumable checkpoint.  Every entry of the file is loaded (the
    adapters, and the heads or prompt encoder an adapter save holds too), re-cut when it was written at
    another model-parallel size.  The adapters are built with the rank, alpha and targets the file
    records (``requested``, the ``--lora-*`` flags, serve files that record none and must agree with
    those that do) and ``dropout``."""
    tag, note = _finetuning_run_tag(path)
    resolved, first = _first_shard(path, tag, unsafe_unpickle)
    found = stored_adapter_shape(read_model_state_dict(first))
    if found is None:
        raise CheckpointError(f"{resolved.tag_dir} holds no LoRA adapters (merged or plain weights): load it "
                              "as the model's weights with --load-pretrained instead of --load-adapter")
    settings = _adapter_settings_to_use(resolved.tag_dir, first.get(SETTINGS_KEY), found, requested)
    del first
    # A's random draw is overwritten from the file: it must not shift the run's random streams (sampling).
    with torch.random.fork_rng(devices=[]):
        add_lora(model, settings["rank"], settings["alpha"], dropout, tuple(settings["targets"]))
    meta = load_model_state(model, path, strict=False, tag=tag, unsafe_unpickle=unsafe_unpickle)
    missing = [key for key in meta["_missing_keys"] if is_adapter_key(key)]
    if missing or meta["_unexpected_keys"]:
        raise CheckpointError(
            f"{resolved.tag_dir} does not fit the model: adapters missing {missing[:3]}, entries the model does "
            f"not have {meta['_unexpected_keys'][:3]} (a head or prompt encoder of another task?)")
    log(f"loaded LoRA adapters (rank {settings['rank']}, alpha {settings['alpha']:g}, on "
        f"{','.join(settings['targets'])}) from {resolved.tag_dir}{note}")
    return meta


def _layer_numbers(keys):
    """The transformer layer indices named by state-dict ``keys`` (a layer counts when any key of it does)."""
    return {int(match.group(1)) for key in keys if (match := re.match(r"transformer\.layers\.(\d+)\.", key))}
