"""Where each seq2seq task keeps its splits, and readers whose errors name the file (and line).

The original used a different file name for the development split per task (``val``, ``valid``,
``dev``): each task's row in :mod:`tasks.seq2seq.registry` names one of the stem tables below.

Lines end at ``\n`` only (a ``\r\n`` pair counts as one end), not with ``str.splitlines``, which would
also cut at U+2028 and friends, nor at a lone ``\r`` as Python's universal newlines (and so the
original's ``for line in open(...)``) would: either shifts every later line of a news corpus against
its summaries.  A UTF-8 byte-order mark at the start of a file (Windows editors write one) is
dropped, in text and JSON files alike.
"""

import json
import os

from ..jsonl import MissingSplitError, TaskDataError

SPLITS = ("train", "dev", "test")

# The file stem of each split inside --data-dir, by what the development split is called.
VAL_STEMS = {"train": "train", "dev": "val", "test": "test"}
VALID_STEMS = {"train": "train", "dev": "valid", "test": "test"}
DEV_STEMS = {"train": "train", "dev": "dev", "test": "test"}

# XSum's own split file and the key of each split in it.
XSUM_SPLIT_FILE = "XSum-TRAINING-DEV-TEST-SPLIT-90-5-5.json"
XSUM_SPLIT_KEYS = {"train": "train", "dev": "validation", "test": "test"}


def check_split(split):
    """Refuse a split name other than train/dev/test."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")


def split_path(data_dir, stems, split, suffix):
    """``<data_dir>/<stem of split><suffix>``; ``stems`` maps each split to its file stem
    (:data:`VAL_STEMS`, :data:`VALID_STEMS`, :data:`DEV_STEMS`)."""
    check_split(split)
    if not data_dir:
        raise TaskDataError("seq2seq tasks need --data-dir pointing at the folder with the split files")
    return os.path.join(data_dir, stems[split] + suffix)


def _without_line_end(line):
    if line.endswith("\n"):
        line = line[:-1]
    return line[:-1] if line.endswith("\r") else line


def read_lines(path, what="split file"):
    """The lines of a text file, line end (``\n`` or ``\r\n``) removed, nothing else stripped, in
    file order; a ``\r`` inside a line stays in it."""
    try:
        with open(path, encoding="utf-8-sig", newline="\n") as f:
            return [_without_line_end(line) for line in f]
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
        with open(path, encoding="utf-8-sig") as f:
            return json.load(f)
    except FileNotFoundError:
        raise MissingSplitError(f"{path}: {what} not found") from None
    except json.JSONDecodeError as e:
        raise TaskDataError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None
