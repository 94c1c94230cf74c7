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
DeepSpeed's universal checkpoint (:func:`convert_to_universal`, the library form of ``ds_to_universal.py``).
"""

import contextlib
import io
import os
import re
import types

import torch

from .change_mp import PRESERVED_KEYS
from .errors import CheckpointError
from .io import (atomic_torch_save, atomic_write_text, check_checkpoint_globals, check_output_directory,
                 load_checkpoint_file, staged_directory)
from .layout import (DEEPSPEED_TRACKER_FILENAME, TRACKER_FILENAME, list_model_files, list_zero3_model_files,
                     model_file_name)


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
