"""Which family runs a ``--task``: the one lookup ``finetune_glm.py`` dispatches through.

Each family keeps its own table of task rows; this module only joins them::

    family, spec = find_task("cnn_dm")     # any case; TaskError listing every task if unknown
    family.name                            # "zero-shot", "seq2seq" or "superglue"
    config = family.configure(config, spec)   # what the family decides before anything runs
    family.run(config, spec, tokenizer, device)

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


def _finetune(config, build_task, tokenizer, device):
    """Train and evaluate through ``tasks.finetune.finetune`` (imported on call: training pulls in
    the engines)."""
    from .finetune import finetune
    return finetune(config, build_task(config, tokenizer), device)


def _run_seq2seq(config, spec, tokenizer, device):
    """The seq2seq entry (its ``build_task`` reads ``spec`` again from ``--task``)."""
    del spec
    from .seq2seq.finetune import build_task
    return _finetune(config, build_task, tokenizer, device)


def _run_superglue(config, spec, tokenizer, device):
    """The SuperGLUE/CLUE entry (its ``build_task`` reads ``spec`` again from ``--task``)."""
    del spec
    from .superglue.finetune import build_task
    return _finetune(config, build_task, tokenizer, device)


def _no_check(config, spec):
    del config, spec


def _no_results_file(config):
    del config


def _same_config(config, spec):
    del spec
    return config


def _seq2seq_config(config, spec):
    """Seq2seq runs hand down the source/target lengths (:func:`tasks.seq2seq.finetune.fit_lengths`)."""
    del spec
    from .seq2seq.finetune import fit_lengths
    return fit_lengths(config)


@dataclasses.dataclass(frozen=True)
class Family:
    """A family of tasks: its table of rows and what runs one of them."""
    name: str
    tasks: Mapping[str, object]                       # lower-case --task name -> the family's row
    run: Callable                                     # (config, spec, tokenizer, device) -> results
    check: Callable = _no_check                       # (config, spec): refuse bad flags before any work
    results_file: Callable = _no_results_file         # (config) -> the one file a run writes, or None
    configure: Callable = _same_config                # (config, spec) -> the configuration handed down


FAMILIES = (
    Family("zero-shot", zero_shot.TASKS, zero_shot.run, check=zero_shot.check_flags,
           results_file=zero_shot.results_path),
    Family("seq2seq", seq2seq_registry.TASKS, _run_seq2seq, configure=_seq2seq_config),
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
