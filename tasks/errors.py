"""The error of a ``--task`` the finetuning entry cannot run (unknown name, wrong flags for its family).

Kept apart from the task tables so that the entry script can name it without loading them.
"""


class TaskError(ValueError):
    """A task or flag combination ``finetune_glm.py`` cannot run; the message says what to change."""
