"""Consolidating a DeepSpeed ZeRO checkpoint into an fp32 ``module`` in the original layout.

Under ZeRO the ``mp_rank_XX_model_states.pt`` file that DeepSpeed writes holds the model in the
training precision (fp16/bf16) and the fp32 master weights are spread over the
``zero_pp_rank_*_optim_states.pt`` shards of the data-parallel ranks.  DeepSpeed's library
function ``deepspeed.utils.zero_to_fp32.get_fp32_state_dict_from_zero_checkpoint`` gathers them
(the ``zero_to_fp32.py`` copy DeepSpeed drops into the save directory needs ``huggingface_hub``;
the library function does not).  The result is written as
``OUT/<tag>/mp_rank_00_model_states.pt`` = ``{'module': fp32 state dict, 'iteration': ..., ...}``
with both tracker files, loadable by every loader of this project and by ``change_mp.py``.

    python change_mp.py SAVE_DIR 1 --consolidate-zero [--tag TAG] [--output OUT]

A training run resumed at another data-parallel size re-partitions the ZeRO optimizer shards through
DeepSpeed's universal checkpoint (:func:`convert_to_universal`, the library form of ``ds_to_universal.py``);
at another model-parallel size, :func:`convert_to_universal_at_model_parallel_size` also re-cuts every
parameter's fp32 weight and Adam moments by the model's partition rules (:mod:`glm.mpu.partition`).
"""

import contextlib
import io
import os
import re
import shutil
import types

import torch

from .change_mp import PRESERVED_KEYS
from .errors import CheckpointError
from .io import (atomic_torch_save, atomic_write_text, check_checkpoint_globals, check_output_directory,
                 load_checkpoint_file, staged_directory)
from .layout import (DEEPSPEED_TRACKER_FILENAME, TRACKER_FILENAME, list_model_files, list_zero3_model_files,
                     model_file_name)
from .reshard import reshard_tensors_for_every_rank


_OPTIM_SHARD = re.compile(r"^(?:bf16_)?zero_pp_rank_(\d+)_mp_rank_\d+_optim_states\.pt$")


def zero_data_parallel_size(tag_dir):
    """The data-parallel size a ZeRO checkpoint was written at (its number of optimizer shards per
    model-parallel rank), or 0 when ``tag_dir`` holds no ZeRO optimizer shards."""
    ranks = {int(m.group(1)) for m in map(_OPTIM_SHARD.match, os.listdir(tag_dir)) if m}
    return len(ranks)


def convert_to_universal(tag_dir, output_dir):
    """Write DeepSpeed's universal form of the ZeRO checkpoint ``tag_dir`` (every parameter's fp32
    weight and optimizer moments whole, under ``output_dir/zero``) so that any data-parallel size can
    load it.  Runs in this process (no worker pool); DeepSpeed's progress output is swallowed."""
    try:
        from deepspeed.checkpoint.ds_to_universal import main as ds_to_universal
    except ImportError as err:  # pragma: no cover - deepspeed is in requirements.txt
        raise CheckpointError("re-partitioning ZeRO shards needs DeepSpeed (pip install deepspeed)") from err
    options = types.SimpleNamespace(input_folder=tag_dir, output_folder=output_dir, num_extract_workers=1,
                                 num_merge_workers=1, keep_temp_folder=False, strict=True,
                                 inject_missing_state=True)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        ds_to_universal(options)
    return output_dir


#: Any file of one model-parallel rank of a DeepSpeed checkpoint: (prefix, rank, suffix).
_RANK_FILE = re.compile(r"^(.*mp_rank_)(\d+)(_(?:model|optim)_states\.pt)$")
#: The files of a parameter's folder in a universal checkpoint that hold a tensor of the parameter's shape
#: (re-cut at another model-parallel size); the others (``step.pt``) are the same for every shard.
_UNIVERSAL_TENSORS = ("fp32.pt", "exp_avg.pt", "exp_avg_sq.pt")


def convert_to_universal_at_model_parallel_size(tag_dir, output_dir, partitions, world_size, name):
    """Universal forms of the ZeRO checkpoint ``tag_dir`` for the ranks of model-parallel size
    ``world_size``: a list of folders ``output_dir/mp_rank_XX/<name>``, one per new rank, each loadable by
    DeepSpeed's universal loader at any data-parallel size.  ``partitions`` is the model's
    ``{parameter name: (dim, stride)}`` (:func:`glm.checkpoint.reshard.partition_map`).

    DeepSpeed's converter could merge model-parallel shards only by name patterns that the checkpoint
    would have to carry, a second description of the partition.  Instead each model-parallel rank of the
    checkpoint is converted on its own (its files shown to the converter as a checkpoint of model-parallel
    size 1), which gathers its shard of every parameter's fp32 weight and Adam moments from the
    data-parallel ranks; the shards are then merged and cut for the new size by :mod:`glm.mpu.partition`.
    A new rank's folder holds tensors of its own shard's shape, which DeepSpeed's loader takes as they are
    (it only splits them further over the data-parallel ranks)."""
    ranks = sorted({int(m.group(2)) for m in map(_RANK_FILE.match, os.listdir(tag_dir)) if m})
    if ranks != list(range(len(ranks))) or not ranks:
        raise CheckpointError(f"{tag_dir}: model-parallel ranks {ranks} found, expected 0..N-1")
    work = os.path.join(output_dir, "sources")
    sources = [convert_to_universal(_stage_model_parallel_rank(tag_dir, rank, os.path.join(work, f"staged-{rank}")),
                                    os.path.join(work, f"mp_rank_{rank:02d}", "universal")) for rank in ranks]
    shapes = [_parameter_shapes(source) for source in sources]
    targets = [os.path.join(output_dir, f"mp_rank_{rank:02d}", name) for rank in range(world_size)]
    for target in targets:
        # The model-states files carry the client state; a universal load takes the weights from zero/.
        shutil.copytree(sources[0], target, ignore=shutil.ignore_patterns("zero"))
        os.makedirs(os.path.join(target, "zero"))
        shutil.copy2(os.path.join(sources[0], "zero", "optimizer_state.pt"), os.path.join(target, "zero"))
    zero = os.path.join(sources[0], "zero")
    for parameter in sorted(os.listdir(zero)):
        if not os.path.isdir(os.path.join(zero, parameter)):
            continue
        if parameter not in partitions:
            raise CheckpointError(f"{tag_dir} holds parameter {parameter!r}, which this model does not have")
        dim, stride = partitions[parameter]
        for file in sorted(os.listdir(os.path.join(zero, parameter))):
            destinations = [os.path.join(target, "zero", parameter, file) for target in targets]
            for destination in destinations:
                os.makedirs(os.path.dirname(destination), exist_ok=True)
            if file not in _UNIVERSAL_TENSORS:
                for destination in destinations:
                    shutil.copy2(os.path.join(zero, parameter, file), destination)
                continue
            shards = [_universal_tensor(os.path.join(source, "zero", parameter, file)).reshape(shape[parameter])
                      for source, shape in zip(sources, shapes)]
            for destination, piece in zip(destinations, reshard_tensors_for_every_rank(shards, dim, stride,
                                                                                       world_size)):
                torch.save({_UNIVERSAL_PARAM_KEY: piece}, destination)
    shutil.rmtree(work)
    return targets


#: The key of a tensor in a universal checkpoint's per-parameter file (deepspeed.checkpoint.constants.PARAM).
_UNIVERSAL_PARAM_KEY = "param"


def _stage_model_parallel_rank(tag_dir, rank, staged):
    """A folder in which the files of model-parallel rank ``rank`` of ``tag_dir`` appear under the
    names of rank 0: a checkpoint of model-parallel size 1 for DeepSpeed's converter.  The optimizer
    shards are links; the model-states files are copies that also say tensor-parallel size 1 (DeepSpeed
    checks the number of files against the ``checkpoint_parallel_dimensions`` recorded there)."""
    os.makedirs(staged)
    for name in os.listdir(tag_dir):
        match = _RANK_FILE.match(name)
        if not match or int(match.group(2)) != rank:
            continue
        source = os.path.abspath(os.path.join(tag_dir, name))
        staged_file = os.path.join(staged, f"{match.group(1)}{0:0{len(match.group(2))}d}{match.group(3)}")
        if not name.endswith("_model_states.pt"):
            os.symlink(source, staged_file)
            continue
        state = torch.load(source, map_location="cpu", weights_only=False)
        if isinstance(state.get(_PARALLEL_DIMENSIONS_KEY), dict):
            state[_PARALLEL_DIMENSIONS_KEY] = dict(state[_PARALLEL_DIMENSIONS_KEY], tp_degree=1)
        state["mp_world_size"] = 1
        torch.save(state, staged_file)
    return staged


#: Where DeepSpeed records a checkpoint's pipeline- and tensor-parallel sizes in its model-states files
#: (deepspeed.checkpoint.constants.CHECKPOINT_PARALLEL_DIMS).
_PARALLEL_DIMENSIONS_KEY = "checkpoint_parallel_dimensions"


def _universal_tensor(path):
    # The converter writes ZeRO-1/2 tensors as {'param': ..., ...} and ZeRO-3 ones bare (and flat).
    value = torch.load(path, map_location="cpu", weights_only=False)
    return value[_UNIVERSAL_PARAM_KEY] if isinstance(value, dict) else value


def _parameter_shapes(universal_dir):
    """``{name: shape}`` of a universal folder's parameters, from the ``param_shapes`` DeepSpeed keeps
    in its model-states files (ZeRO-3 leaves the universal tensors flat)."""
    name = next(name for name in sorted(os.listdir(universal_dir)) if name.endswith("model_states.pt"))
    state = torch.load(os.path.join(universal_dir, name), map_location="cpu", weights_only=False)
    return {key: shape for group in state["param_shapes"] for key, shape in group.items()}


def _zero_tag(save_dir, tag):
    if tag is not None:
        return str(tag)
    path = os.path.join(save_dir, DEEPSPEED_TRACKER_FILENAME)
    if not os.path.isfile(path):
        path = os.path.join(save_dir, TRACKER_FILENAME)
    if not os.path.isfile(path):
        raise CheckpointError(f"{save_dir} has no '{DEEPSPEED_TRACKER_FILENAME}' file; pass --tag")
    with open(path, encoding="utf-8") as f:
        return f.read().strip()


def zero_fp32_state_dict(save_dir, tag=None, unsafe_unpickle=False):
    """``(fp32 state dict, tag, client state of mp_rank_00)`` of the ZeRO checkpoint ``save_dir/tag``."""
    try:
        from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint
    except ImportError as err:  # pragma: no cover - deepspeed is in requirements.txt
        raise CheckpointError("consolidating a ZeRO checkpoint needs DeepSpeed (pip install deepspeed)") from err
    tag = _zero_tag(save_dir, tag)
    tag_dir = os.path.join(save_dir, tag)
    if not os.path.isdir(tag_dir):
        raise CheckpointError(f"{tag_dir} does not exist")
    if not any(name.endswith("optim_states.pt") for name in os.listdir(tag_dir)):
        raise CheckpointError(f"{tag_dir} holds no ZeRO optimizer shards (*optim_states.pt); "
                              "it is not a DeepSpeed ZeRO checkpoint (use change_mp.py without --consolidate-zero)")
    # ZeRO-3 writes zero_pp_rank_<dp>_mp_rank_XX_model_states.pt (one per data-parallel rank) instead.
    zero3 = list_zero3_model_files(tag_dir)
    ranks = list_model_files(tag_dir) or list(zero3)
    if ranks != [0]:
        raise CheckpointError(
            f"{tag_dir} has model-parallel ranks {ranks}; consolidation handles model-parallel size 1 "
            "(DeepSpeed's zero_to_fp32 reads mp_rank_00 only)")
    # DeepSpeed unpickles the shards in full: check what they would import before it does.
    check_checkpoint_globals([os.path.join(tag_dir, name) for name in sorted(os.listdir(tag_dir))
                              if name.endswith(".pt")], unsafe_unpickle)
    state_dict = get_fp32_state_dict_from_zero_checkpoint(save_dir, tag=tag)
    client_file = model_file_name(0) if not zero3 else f"zero_pp_rank_{zero3[0][0]}_mp_rank_00_model_states.pt"
    client = load_checkpoint_file(os.path.join(tag_dir, client_file), unsafe_unpickle=unsafe_unpickle)
    return {k: v.float() if torch.is_tensor(v) and v.is_floating_point() else v for k, v in state_dict.items()}, \
        tag, client


def consolidate_zero_checkpoint(save_dir, output_dir, tag=None, overwrite=False, unsafe_unpickle=False):
    """Write the fp32 weights of a ZeRO checkpoint as ``output_dir/<tag>/mp_rank_00_model_states.pt``."""
    check_output_directory(output_dir, [save_dir], overwrite)
    module, tag, client = zero_fp32_state_dict(save_dir, tag, unsafe_unpickle)
    state = {k: client[k] for k in PRESERVED_KEYS if k in client}
    state.setdefault("iteration", int(tag) if tag.isdigit() else client.get("global_steps", 0))
    state["mp_world_size"] = 1
    state["module"] = module
    with staged_directory(output_dir, [save_dir]) as staging:
        atomic_torch_save(state, os.path.join(staging, tag, model_file_name(0)))
        for name in (TRACKER_FILENAME, DEEPSPEED_TRACKER_FILENAME):
            atomic_write_text(os.path.join(staging, name), tag + "\n")
    return output_dir
