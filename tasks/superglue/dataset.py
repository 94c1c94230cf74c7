"""``SuperGlueDataset``: the examples of one split of a SuperGLUE/CLUE task, encoded on access.

With ``--cloze-eval`` (all released configs) an item is the task pattern's encoding (see
``tasks.superglue.pvp``); without it, the processor's classification encoding
(``[CLS] a [SEP] b [eos]`` for the sequence-classification head).
"""

from torch.utils.data import Dataset

from .errors import TaskConfigError
from .registry import get_task

SPLITS = ("train", "dev", "test")


class SuperGlueDataset(Dataset):
    """``SuperGlueDataset(config, split, tokenizer, for_train=False)``.

    Reads ``config.task.task`` (any case), ``config.data.data_dir``, ``config.data.seq_length``, ``config.task.cloze_eval``,
    ``config.task.pattern_id`` and the pattern flags.  ``split`` is ``train``, ``dev`` or ``test``;
    ``for_train`` marks a dev set used for validation during training (ReCoRD then builds
    training-style examples).

    Attributes for the driver: ``examples`` (list, dataset order: sorted by number of choices, as
    the original), ``processor``, ``pvp`` (``None`` without ``--cloze-eval``), ``spec`` (the
    registry entry: metrics, prediction format), ``labels``, ``num_labels``, ``multi_token``,
    ``variable_num_choices`` (batches need choice padding), ``dataset_name`` (``<task>-<split>``).
    Items are encoded when accessed, so memory stays at the size of the text.
    """

    def __init__(self, config, split, tokenizer, for_train=False):
        if split not in SPLITS:
            raise ValueError(f"split must be one of {list(SPLITS)}, got {split!r}")
        self.spec = get_task(config.task.task)
        self.config, self.split, self.tokenizer = config, split, tokenizer
        self.dataset_name = f"{self.spec.name}-{split}"
        self.processor = self.spec.make_processor(config)
        self.cloze_eval = bool(config.task.cloze_eval)
        # The pattern is built before reading so that a bad pattern id or verbalizer fails at once.
        self.pvp = self.spec.make_pvp(config, tokenizer, split) if self.cloze_eval else None
        examples = self.processor.get_examples(split, config.data.data_dir, for_train=for_train)
        # Stable sort: examples with equally many choices keep their file order.
        self.examples = sorted(examples, key=lambda example: example.num_choices)
        self.labeled = split != "test"
        self._check_first_encoding()

    def _check_first_encoding(self):
        """Encode the first example now, in the main process: a ``--seq-length`` too short for the
        task's pattern then stops here with its own message, not later inside a DataLoader worker
        (whose error arrives wrapped in a worker traceback)."""
        if not self.examples:
            return
        encoder = self.pvp or self.processor
        truncated = encoder.num_truncated
        try:
            self[0]
        except TaskConfigError as exc:
            raise TaskConfigError(f"{self.dataset_name}: {exc} (--seq-length {self.config.data.seq_length}); raise "
                                  "--seq-length") from None
        encoder.num_truncated = truncated   # a check, not a sample: the count stays that of real use

    @property
    def labels(self):
        return self.processor.get_labels()

    @property
    def num_labels(self):
        return len(self.labels)

    @property
    def multi_token(self):
        """Samples hold one row per answer (multi-token cloze, or COPA/ReCoRD without cloze)."""
        return self.spec.is_multi_token(self.config)

    @property
    def variable_num_choices(self):
        return self.processor.variable_num_choices

    @property
    def num_truncated(self):
        """How many encodings so far had to cut text to fit ``--seq-length``."""
        return (self.pvp or self.processor).num_truncated

    def __len__(self):
        return len(self.examples)

    def __getitem__(self, index):
        example = self.examples[index]
        if self.pvp is not None:
            return self.pvp.encode(example)
        return self.processor.encode(example, self.tokenizer, self.config)
