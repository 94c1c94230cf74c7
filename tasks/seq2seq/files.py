"""Where each seq2seq task keeps its splits, and readers whose errors name the file (and line).

The original used a different file name for the development split per task (``val``, ``valid``,
``dev``); :data:`SPLIT_STEMS` is that table.  Lines are read the way ``for line in open(...)`` reads
them (universal newlines only), not with ``str.splitlines``, which would also cut at U+2028 and
friends and shift every later line of a news corpus.
"""

import json
import os

from ..jsonl import MissingSplitError, TaskDataError

SPLITS = ("train", "dev", "test")

# task -> the file stem of each split inside --data-dir.
SPLIT_STEMS = {
    "summary": {"train": "train", "dev": "val", "test": "test"},        # cnn_dm, cnn_dm_original, gigaword, xsum
    "customization": {"train": "train", "dev": "val", "test": "test"},
    "extraction": {"train": "train", "dev": "valid", "test": "test"},
    "blank": {"train": "train", "dev": "valid", "test": "test"},
    "squad_json": {"train": "train", "dev": "dev", "test": "test"},     # squad_generation, cmrc
}

# XSum's own split file and the key of each split in it.
XSUM_SPLIT_FILE = "XSum-TRAINING-DEV-TEST-SPLIT-90-5-5.json"
XSUM_SPLIT_KEYS = {"train": "train", "dev": "validation", "test": "test"}


def check_split(split):
    """Refuse a split name other than train/dev/test."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")


def split_path(data_dir, layout, split, suffix):
    """``<data_dir>/<stem of split><suffix>`` for a layout of :data:`SPLIT_STEMS`."""
    check_split(split)
    if not data_dir:
        raise TaskDataError("seq2seq tasks need --data-dir pointing at the folder with the split files")
    return os.path.join(data_dir, SPLIT_STEMS[layout][split] + suffix)


def read_lines(path, what="split file"):
    """The lines of a text file, newline removed (not stripped), in file order."""
    try:
        with open(path, encoding="utf-8") as f:
            return [line.rstrip("\n") for line in f]
    except FileNotFoundError:
        raise MissingSplitError(f"{path}: {what} not found") from None
    except UnicodeDecodeError as e:
        raise TaskDataError(f"{path}: not UTF-8 text ({e})") from None


def read_parallel(source_path, target_path):
    """Line-aligned ``(source, target)`` files: a list of ``(source_line, target_line)``.

    Files of different lengths are refused, naming the first line that has no partner: a silent
    ``zip`` would pair every later source with the wrong summary.
    """
    sources, targets = read_lines(source_path), read_lines(target_path)
    if len(sources) != len(targets):
        longer, shorter = (source_path, target_path) if len(sources) > len(targets) else (target_path, source_path)
        line = min(len(sources), len(targets)) + 1
        raise TaskDataError(f"{longer}:{line}: no matching line in {shorter} ({len(sources)} source lines, "
                            f"{len(targets)} target lines)")
    return list(zip(sources, targets))


def read_json(path, what="split file"):
    """A whole JSON document (SQuAD files, the XSum split list)."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise MissingSplitError(f"{path}: {what} not found") from None
    except json.JSONDecodeError as e:
        raise TaskDataError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None
