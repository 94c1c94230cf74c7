"""The checkpoint file layout: where the pieces of a checkpoint live on disk (tracker files, tags,
``mp_rank_XX_model_states.pt``, DeepSpeed's ZeRO files).  In this package "layout" means only this; how a
tensor is split across ranks is its *partition* (:mod:`.reshard`).  Owns names and paths; reads no tensors."""

import dataclasses
import os
import re

from .errors import CheckpointError

TRACKER_FILENAME = "latest_checkpointed_iteration.txt"
#: The tag under which finetuning keeps the weights of its best dev score.
BEST_TAG = "best"
DEEPSPEED_TRACKER_FILENAME = "latest"
_MODEL_FILE = re.compile(r"^mp_rank_(\d+)_model_states\.pt$")
#: DeepSpeed ZeRO-3 writes one model-states file per data-parallel rank instead (weights partitioned).
_ZERO3_MODEL_FILE = re.compile(r"^zero_pp_rank_(\d+)_mp_rank_(\d+)_model_states\.pt$")


def model_file_name(mp_rank):
    """``mp_rank_XX_model_states.pt`` with a two-digit rank, as the original writes it."""
    return f"mp_rank_{mp_rank:02d}_model_states.pt"


@dataclasses.dataclass
class ResolvedCheckpoint:
    """A checkpoint found on disk.

    ``tag_dir`` holds the ``mp_rank_XX`` files; ``tag`` is the tracker's content (an iteration
    number, ``release`` or ``best``); ``mp_size`` is the number of model-parallel shards present.
    ``zero3``: a DeepSpeed ZeRO-3 checkpoint (``zero_pp_rank_<dp>_mp_rank_XX_model_states.pt`` files,
    weights partitioned over the data-parallel ranks): only DeepSpeed reads it, or
    ``change_mp.py --consolidate-zero`` turns it into ``mp_rank_XX`` files.
    """
    load_dir: str
    tag: str
    tag_dir: str
    mp_size: int
    zero3: bool = False

    @property
    def release(self):
        return self.tag == "release"

    @property
    def iteration(self):
        return int(self.tag) if self.tag.isdigit() else 0

    def model_file(self, mp_rank):
        return os.path.join(self.tag_dir, model_file_name(mp_rank))


def list_model_files(tag_dir):
    """Sorted ranks of the ``mp_rank_XX_model_states.pt`` files in ``tag_dir``."""
    ranks = []
    for name in os.listdir(tag_dir):
        match = _MODEL_FILE.match(name)
        if match:
            ranks.append(int(match.group(1)))
    return sorted(ranks)


def list_zero3_model_files(tag_dir):
    """``{model-parallel rank: sorted data-parallel ranks}`` of the ZeRO-3 model-states files in ``tag_dir``."""
    ranks = {}
    for name in os.listdir(tag_dir):
        match = _ZERO3_MODEL_FILE.match(name)
        if match:
            ranks.setdefault(int(match.group(2)), []).append(int(match.group(1)))
    return {mp: sorted(dp) for mp, dp in sorted(ranks.items())}


def read_tracker(load_dir):
    """The tag named by the tracker file(s) in ``load_dir``, or None when there is none."""
    for name in (TRACKER_FILENAME, DEEPSPEED_TRACKER_FILENAME):
        path = os.path.join(load_dir, name)
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as f:
                tag = f.read().strip()
            if not tag:
                raise CheckpointError(f"{path} is empty; it should name a checkpoint tag (an iteration, 'release' or 'best')")
            return tag
    return None


def resolve_checkpoint(path, tag=None):
    """Find the checkpoint at ``path``: a save directory with a tracker file, a directory that
    directly holds ``mp_rank_*`` files, or a single ``mp_rank_XX_model_states.pt`` file."""
    if os.path.isfile(path):
        tag_dir = os.path.dirname(os.path.abspath(path))
        return ResolvedCheckpoint(os.path.dirname(tag_dir), os.path.basename(tag_dir), tag_dir,
                                  len(list_model_files(tag_dir)) or 1)
    if not os.path.isdir(path):
        raise CheckpointError(f"checkpoint path {path} does not exist")
    if tag is None:
        tag = read_tracker(path)
    if tag is not None:
        tag_dir = os.path.join(path, tag)
        if not os.path.isdir(tag_dir):
            raise CheckpointError(
                f"the tracker file in {path} names tag '{tag}', but {tag_dir} does not exist")
        load_dir = path
    elif list_model_files(path) or list_zero3_model_files(path):
        tag_dir, load_dir, tag = path, os.path.dirname(os.path.abspath(path)), os.path.basename(os.path.abspath(path))
    else:
        raise CheckpointError(
            f"{path} holds neither {TRACKER_FILENAME} / {DEEPSPEED_TRACKER_FILENAME} nor mp_rank_XX_model_states.pt "
            "files; point --load at a save directory or at the folder containing the mp_rank files")
    ranks = list_model_files(tag_dir)
    zero3 = not ranks and bool(list_zero3_model_files(tag_dir))
    if zero3:
        ranks = list(list_zero3_model_files(tag_dir))
    if not ranks:
        raise CheckpointError(f"no mp_rank_XX_model_states.pt (or DeepSpeed ZeRO-3 zero_pp_rank_*_model_states.pt) "
                              f"files in {tag_dir}")
    if ranks != list(range(len(ranks))):
        missing = sorted(set(range(max(ranks) + 1)) - set(ranks))
        raise CheckpointError(
            f"{tag_dir} is missing model-parallel shard(s) {', '.join(model_file_name(r) for r in missing)}")
    return ResolvedCheckpoint(load_dir, tag, tag_dir, len(ranks), zero3)
