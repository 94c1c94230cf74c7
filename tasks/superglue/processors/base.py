"""What every task reader shares: split files, JSON lines with file:line errors, label checks, the
non-cloze (classification-head) encoding and the default prediction records.

A processor turns the files of one task into :class:`~tasks.superglue.examples.InputExample` lists.
It knows its label list, which file holds which split, how to encode an example for the
classification head (used without ``--cloze-eval``) and how a prediction is written in the
benchmark's submission format.  Patterns (cloze encoding) live in ``tasks.superglue.pvp``.
"""

import json
import os

from ...inputs import build_input_from_ids
from ...jsonl import MissingSplitError
from ..errors import TaskDataError
from ..samples import classification_sample

SPLITS = ("train", "dev", "test")


def read_json_lines(path):
    """Yield ``(line_index, where, record)`` for every non-blank line of ``path``.

    ``line_index`` counts physical lines from 0 (some readers use it as the example id, as the
    original did); ``where`` is ``"path:line"`` (1-based) for error messages.
    """
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    for index, line in enumerate(lines):
        if not line.strip():
            continue
        where = f"{path}:{index + 1}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise TaskDataError(f"{where}: not a JSON line ({e})") from None
        if not isinstance(record, dict):
            raise TaskDataError(f"{where}: expected a JSON object, got {type(record).__name__}")
        yield index, where, record


def field(record, key, where):
    """``record[key]``, or a :class:`TaskDataError` naming the line and the missing key."""
    try:
        return record[key]
    except (KeyError, TypeError):
        raise TaskDataError(f"{where}: missing key {key!r}") from None


class DataProcessor:
    """Base reader.  Subclasses define :meth:`get_labels` and :meth:`create_examples`, and override
    :meth:`split_file` when their files are not ``train.jsonl`` / ``val.jsonl`` / ``test.jsonl``."""

    SPLIT_FILES = {"train": "train.jsonl", "dev": "val.jsonl", "test": "test.jsonl"}

    def __init__(self, config=None):
        self.config = config
        self.num_truncated = 0  # how many classification inputs were cut to --seq-length
        self.reading_split = None  # the split get_examples is reading (labels are required in "train")

    # ------------------------------------------------------------------ labels and choices
    def get_labels(self):
        """The label list; a label's index is what the model predicts."""
        raise NotImplementedError

    @property
    def variable_num_choices(self):
        """Whether examples of one batch may have different numbers of choices (the collate pads)."""
        return False

    def checked_label(self, label, where):
        """``label`` if the task knows it (or it is ``None``, i.e. unlabelled, outside the training
        split), else an error naming the line."""
        if label is None and self.reading_split == "train":
            # An unlabelled example trains as label index 0 (label_index), silently teaching the
            # first label: every training line must say its label.
            raise TaskDataError(f"{where}: this training line has no label (every line of the train split "
                                f"needs one of {self.get_labels()}); add it, or move the line to the test file")
        if label is not None and label not in self.get_labels():
            raise TaskDataError(f"{where}: label {label!r} is not one of this task's labels "
                                f"{self.get_labels()}")
        return label

    # ------------------------------------------------------------------ reading
    def split_file(self, split):
        """The file name holding ``split`` (a tuple: the first of these names that exists)."""
        return self.SPLIT_FILES[split]

    def get_examples(self, split, data_dir, for_train=False):
        """The examples of ``split`` (one of ``train``, ``dev``, ``test``) read from ``data_dir``.

        ``for_train``: the dev set is used for validation during training (ReCoRD then builds
        training-style examples)."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {list(SPLITS)}, got {split!r}")
        if data_dir is None:
            raise TaskDataError("--data-dir is not set: it must name the task's data directory")
        names = self.split_file(split)
        names = (names,) if isinstance(names, str) else tuple(names)
        paths = [os.path.join(data_dir, name) for name in names]
        found = [path for path in paths if os.path.isfile(path)]
        if not found:
            raise MissingSplitError(f"{paths[0]}: the {split} split needs the file {' or '.join(names)} in the "
                                f"directory {data_dir}, which has no such file")
        self.reading_split = split
        return self.create_examples(found[0], split, for_train=for_train)

    def get_train_examples(self, data_dir):
        """The original's name for ``get_examples("train", data_dir)``."""
        return self.get_examples("train", data_dir)

    def get_dev_examples(self, data_dir, for_train=False):
        """The original's name for ``get_examples("dev", data_dir, for_train)``."""
        return self.get_examples("dev", data_dir, for_train=for_train)

    def get_test_examples(self, data_dir):
        """The original's name for ``get_examples("test", data_dir)``."""
        return self.get_examples("test", data_dir)

    def create_examples(self, path, set_type, for_train=False):
        """Read one split file; ``set_type`` prefixes the guids (``train-0``, ``dev-0``, ...)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ classification head
    def get_classifier_input(self, example):
        """The two texts the classification encoding joins with ``[SEP]``."""
        return example.text_a, example.text_b

    def label_index(self, example):
        """Index of the example's label (0 for unlabelled examples, as the original)."""
        return 0 if example.label is None else self.get_labels().index(example.label)

    def encode_pair(self, tokenizer, text_a, text_b, config):
        """``[CLS] a [SEP] b [eos]`` padded to ``--seq-length`` (counting the inputs that had to be cut)."""
        tokens_a = tokenizer.EncodeAsIds(text_a).tokenization
        tokens_b = tokenizer.EncodeAsIds(text_b).tokenization if text_b is not None else None
        return self.encode_pair_ids(tokenizer, tokens_a, tokens_b, config)

    def encode_pair_ids(self, tokenizer, tokens_a, tokens_b, config):
        """:meth:`encode_pair` on token ids; returns the builder's 7-tuple."""
        specials = 2 + bool(tokens_b)  # [CLS], [eos], and [SEP] before a non-empty b
        if len(tokens_a) + len(tokens_b or ()) + specials > config.data.seq_length:
            self.num_truncated += 1
        return build_input_from_ids(tokens_a, tokens_b, None, config.data.seq_length, tokenizer, config,
                                    add_cls=True, add_sep=tokens_b is not None, add_piece=False)

    def encode(self, example, tokenizer, config):
        """The non-cloze sample for the classification head (``text``, ``position``, ``mask``)."""
        text_a, text_b = self.get_classifier_input(example)
        encoded = self.encode_pair(tokenizer, text_a, text_b, config)
        return classification_sample(encoded, self.label_index(example), example.guid, config)

    # ------------------------------------------------------------------ predictions
    def format_predictions(self, predictions, examples):
        """Submission records, one per example: ``{"idx": ..., "label": <label string>}``."""
        labels = self.get_labels()
        return [{"idx": example.idx, "label": labels[prediction]}
                for prediction, example in zip(predictions, examples)]


class SuperGlueProcessor(DataProcessor):
    """SuperGLUE file layout: ``train.jsonl``, ``val.jsonl`` (dev), ``test.jsonl``; with
    ``--few-superglue`` (FewGLUE) the dev set is ``dev32.jsonl`` and ``val.jsonl`` becomes the test set."""

    def split_file(self, split):
        if self.config is not None and self.config.task.few_superglue:
            return {"train": "train.jsonl", "dev": "dev32.jsonl", "test": "val.jsonl"}[split]
        return self.SPLIT_FILES[split]
