"""Prediction files in the benchmark's submission format (one JSON object per line).

The records themselves come from the task's processor (``format_predictions``): ``{"idx", "label"}``
with the label string for most tasks, the chosen entity for ReCoRD, one nested record per passage
for MultiRC, records sorted by id for AFQMC/TNEWS.
"""

import json
import os


def prediction_filename(task_name, split):
    """``<task>-<split>.jsonl``, the name the original gave each evaluated dataset's predictions."""
    return f"{task_name.lower()}-{split}.jsonl"


def write_records(records, path):
    """Write ``records`` as JSON lines (directories are created); returns ``path``."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record) + "\n")
    return path
