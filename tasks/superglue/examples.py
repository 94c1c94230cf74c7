"""The unit every processor produces and every pattern consumes: :class:`InputExample`.

The field names, their order and the defaults (``idx=-1``, ``num_choices=1``, ``meta={}``) follow the
original (which took them from PET), because the reference files store examples as these dicts and
downstream code (metrics, prediction files) reads ``idx`` and ``meta`` by name.
"""

import copy
import dataclasses
from typing import Any, Optional

# Curly quotes and the en dash become ASCII; the SuperGLUE readers apply it to most texts.
from data_utils.corpora import punctuation_standardization  # noqa: F401  (re-exported)


@dataclasses.dataclass
class InputExample:
    """One example: up to two texts, a label (a string or int from the processor's label list, or
    ``None`` when unlabelled) and task-specific ``meta`` (choices, spans, candidates, ...).

    ``idx`` is the id the SuperGLUE submission files use (an int, or ``[passage, question, answer]``
    for MultiRC/ReCoRD training examples); ``num_choices`` orders the dataset (examples are sorted by
    it, so batches of ReCoRD hold similar numbers of entities).
    """
    guid: str
    text_a: Any
    text_b: Any = None
    label: Any = None
    logits: Optional[list] = None
    idx: Any = -1
    num_choices: int = 1
    meta: dict = dataclasses.field(default_factory=dict)

    def to_dict(self):
        """A deep copy as a plain dict, keys in the original's order."""
        return copy.deepcopy(dataclasses.asdict(self))
