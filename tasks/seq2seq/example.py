"""One seq2seq example: the raw texts a sample is built from, kept for scoring and prediction files."""

import dataclasses
from typing import Any, Optional


@dataclasses.dataclass
class InputExample:
    """The original ``tasks.data_utils.InputExample`` fields.

    ``guid`` (``"<split>-<index>"``) is the ``uid`` of the dataset item built from this example;
    ``text_a`` is the source, ``text_b`` the target text (``None`` where the target lives in ``meta``);
    ``meta["ref"]`` is the reference the metrics compare predictions with; ``idx`` is the question id of
    SQuAD examples (several windows of one question share it) and ``-1`` elsewhere.
    """

    guid: str
    text_a: str
    text_b: Optional[str] = None
    label: Any = None
    logits: Any = None
    idx: Any = -1
    num_choices: int = 1
    meta: dict = dataclasses.field(default_factory=dict)

    @property
    def uid(self):
        """The item's ``uid`` (same as ``guid``)."""
        return self.guid

    def to_dict(self):
        """The example as a plain dict, in the original's field order."""
        return dataclasses.asdict(self)
