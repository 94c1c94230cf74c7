"""Reading task files of one JSON object per line, with errors that name the file and line."""

import json


class TaskDataError(ValueError):
    """A task data file is missing, empty or malformed; the message names the file (and line)."""


class MissingSplitError(TaskDataError):
    """A split file that does not exist: the finetuning driver skips an absent test split (training
    and validation splits are required)."""


def json_lines(path):
    """Yield ``("path:line", record)`` for every non-blank line of ``path``."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        raise TaskDataError(f"{path}: evaluation file not found") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            yield where, json.loads(line)
        except json.JSONDecodeError as e:
            raise TaskDataError(f"{where}: not a JSON line ({e})") from None
