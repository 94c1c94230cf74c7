"""Which family runs a ``--task``: the one lookup ``finetune_glm.py`` dispatches through.

Each family keeps its own table of task rows; this module only joins them::

    family, spec = find_task("cnn_dm")     # any case; TaskError listing every task if unknown
    family.name                            # "zero-shot", "seq2seq" or "superglue"
    family.run(args, spec, tokenizer, device)

=============  =================================  ==============================================
family         table                              entry
=============  =================================  ==============================================
zero-shot      ``tasks.zero_shot.TASKS``          :func:`tasks.zero_shot.run` (evaluation only)
seq2seq        ``tasks.seq2seq.registry.TASKS``   :func:`tasks.finetune.finetune` of the task
superglue      ``tasks.superglue.registry.TASKS`` :func:`tasks.finetune.finetune` of the task
=============  =================================  ==============================================

The families are searched in that order; their names do not overlap (a test checks), so the order
only matters for a task added to two tables.  Adding a task is a row in its family's table (see
docs/finetuning.md, "Adding a task"); nothing here changes.
"""

import dataclasses
from typing import Callable, Mapping, NamedTuple, Optional

from . import zero_shot
from .errors import TaskError
from .seq2seq import registry as seq2seq_registry
from .superglue import registry as superglue_registry

__all__ = ["FAMILIES", "Family", "FoundTask", "TaskError", "find_task", "task_names"]


def _finetune(args, build_task, tokenizer, device):
    """Train and evaluate through ``tasks.finetune.finetune`` (imported on call: training pulls in
    the engines)."""
    from .finetune import finetune
    return finetune(args, build_task(args, tokenizer), device)


def _run_seq2seq(args, spec, tokenizer, device):
    """The seq2seq entry (its ``build_task`` reads ``spec`` again from ``--task``)."""
    del spec
    from .seq2seq.finetune import build_task
    return _finetune(args, build_task, tokenizer, device)


def _run_superglue(args, spec, tokenizer, device):
    """The SuperGLUE/CLUE entry (its ``build_task`` reads ``spec`` again from ``--task``)."""
    del spec
    from .superglue.finetune import build_task
    return _finetune(args, build_task, tokenizer, device)


def _no_check(args, spec):
    del args, spec


def _no_results_file(args):
    del args


@dataclasses.dataclass(frozen=True)
class Family:
    """A family of tasks: its table of rows and what runs one of them."""
    name: str
    tasks: Mapping[str, object]                       # lower-case --task name -> the family's row
    run: Callable                                     # (args, spec, tokenizer, device) -> results
    check: Callable = _no_check                       # (args, spec): refuse bad flags before any work
    results_file: Callable = _no_results_file         # (args) -> the one file a run writes, or None


FAMILIES = (
    Family("zero-shot", zero_shot.TASKS, zero_shot.run, check=zero_shot.check_flags,
           results_file=zero_shot.results_path),
    Family("seq2seq", seq2seq_registry.TASKS, _run_seq2seq),
    Family("superglue", superglue_registry.TASKS, _run_superglue),
)


class FoundTask(NamedTuple):
    family: Family
    spec: object


def task_names():
    """Every ``--task`` value of every family (lower case)."""
    return sorted(name for family in FAMILIES for name in family.tasks)


def find_task(name) -> FoundTask:
    """``(family, row)`` of ``--task name`` (any case); a :class:`TaskError` listing every task otherwise."""
    key = str(name or "").lower()
    for family in FAMILIES:
        spec: Optional[object] = family.tasks.get(key)
        if spec is not None:
            return FoundTask(family, spec)
    available = ", ".join(task_names())
    if not key:
        raise TaskError(f"--task is required; available: {available}")
    raise TaskError(f"unknown --task {name!r}; available: {available}")
