"""Errors of the SuperGLUE/CLUE package.

Bad *data* (a missing split file, a malformed line, a label the task does not know) raises
:class:`tasks.jsonl.TaskDataError` naming the file (and line).  Bad *configuration* (an unknown task
or pattern id, a verbalizer that is not one token) raises :class:`TaskConfigError`.  Both are
``ValueError`` subclasses, so callers that only want "bad input" can catch that.
"""

from ..jsonl import TaskDataError  # noqa: F401  (re-exported)


class TaskConfigError(ValueError):
    """The flags ask for something the task cannot do; the message lists what it can."""
