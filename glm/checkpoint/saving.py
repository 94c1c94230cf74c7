"""Writing checkpoints in the original layout."""

import os

from .io import atomic_torch_save, atomic_write_text
from .layout import BEST_TAG, DEEPSPEED_TRACKER_FILENAME, TRACKER_FILENAME, model_file_name


def save_model_checkpoint(save_dir, tag, state, mp_rank=0, update_tracker=True):
    """Write ``state`` (a dict with at least ``module``) to ``<save_dir>/<tag>/mp_rank_XX_model_states.pt``.

    The file is written atomically.  With ``update_tracker`` the tracker files are rewritten
    afterwards, so they only ever name a tag whose file is complete.  In a multi-rank job call
    it with ``update_tracker=False`` on every rank, synchronise, then let one rank update the
    tracker (``update_tracker_files``).
    """
    tag = str(tag)
    path = os.path.join(save_dir, tag, model_file_name(mp_rank))
    atomic_torch_save(state, path)
    if update_tracker:
        update_tracker_files(save_dir, tag)
    return path


def update_tracker_files(save_dir, tag):
    """Point ``latest_checkpointed_iteration.txt`` and DeepSpeed's ``latest`` at ``tag``."""
    atomic_write_text(os.path.join(save_dir, TRACKER_FILENAME), str(tag))
    atomic_write_text(os.path.join(save_dir, DEEPSPEED_TRACKER_FILENAME), str(tag))


BEST_TRACKER_FILENAME = "best_checkpointed_iteration.txt"


def save_best_model(save_dir, state_dict, iteration, epoch, mp_rank=0, extra=None):
    """Write a finetuning run's best model, weights only, in the original layout:
    ``<save_dir>/best/mp_rank_XX_model_states.pt`` = ``{module, iteration, epoch}`` and the entries of
    ``extra`` (an adapter-only save records its LoRA settings).  The resume trackers are left alone
    (they keep naming the last resumable checkpoint).  Call it on one data-parallel rank of each
    model-parallel rank, synchronise, then let one rank call :func:`update_best_tracker`."""
    state = {"module": state_dict, "iteration": iteration, "epoch": epoch, **(extra or {})}
    return save_model_checkpoint(save_dir, BEST_TAG, state, mp_rank=mp_rank, update_tracker=False)


def update_best_tracker(save_dir, iteration):
    """Record in ``best_checkpointed_iteration.txt`` which iteration ``best/`` holds."""
    atomic_write_text(os.path.join(save_dir, BEST_TRACKER_FILENAME), str(iteration))
