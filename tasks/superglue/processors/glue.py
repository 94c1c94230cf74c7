"""Readers of the GLUE tasks multi-task pretraining draws on (spec section 7.5): MNLI (matched and
mismatched dev sets), CoLA, MRPC, QNLI, QQP and SST-2.

The files are the GLUE distribution's: ``train.tsv``, ``dev.tsv`` and ``test.tsv`` (MNLI:
``dev_matched.tsv`` / ``dev_mismatched.tsv`` and ``test_matched.tsv`` / ``test_mismatched.tsv``),
tab-separated with a header row naming the columns, and no quoting: quote characters are part of
the text (GLUE's own readers and the original's ``pandas.read_csv(quoting=QUOTE_NONE)`` read them so).
CoLA's train and dev files are the exception: no header, the columns are source, label, original
label and sentence.  Test files have no label column; their examples are unlabelled.
"""

import csv

from ..errors import TaskDataError
from ..examples import InputExample, punctuation_standardization as standardize
from .base import DataProcessor


def read_tsv(path, header=True):
    """Yield ``(row_index, where, row)`` for every non-blank data line of ``path``: ``row`` is a dict
    keyed by the header's column names (``header=False``: a list of fields).  ``row_index`` counts
    data rows from 0; ``where`` is ``"path:line"`` for error messages."""
    # utf-8-sig: some GLUE files (MRPC) start with a byte-order mark that would otherwise end up in
    # the first column's name.
    with open(path, encoding="utf-8-sig", newline="") as f:
        lines = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    columns = None
    row_index = 0
    for number, fields in enumerate(lines, 1):
        if not any(field.strip() for field in fields):
            continue
        if header and columns is None:
            columns = fields
            continue
        where = f"{path}:{number}"
        if columns is not None:
            if len(fields) != len(columns):
                raise TaskDataError(f"{where}: expected {len(columns)} tab-separated fields (the header's "
                                    f"columns), got {len(fields)}")
            fields = dict(zip(columns, fields))
        yield row_index, where, fields
        row_index += 1


class GlueProcessor(DataProcessor):
    """A GLUE TSV reader: subclasses name the columns holding ``text_a``, ``text_b`` (optional) and
    the label.  Examples are numbered by their data row (``guid`` ``<split>-<row>``)."""

    SPLIT_FILES = {"train": "train.tsv", "dev": "dev.tsv", "test": "test.tsv"}
    TEXT_A, TEXT_B, LABEL = "sentence", None, "label"

    def get_labels(self):
        return ["0", "1"]

    def column(self, row, name, where):
        try:
            return row[name]
        except KeyError:
            raise TaskDataError(f"{where}: the header has no column {name!r} (columns: {list(row)})") from None

    def create_examples(self, path, set_type, for_train=False):
        examples = []
        for index, where, row in read_tsv(path):
            text_a = standardize(self.column(row, self.TEXT_A, where))
            text_b = standardize(self.column(row, self.TEXT_B, where)) if self.TEXT_B else None
            # Test files have no label column: unlabelled examples.
            label = self.checked_label(row[self.LABEL], where) if self.LABEL in row else None
            examples.append(InputExample(guid=f"{set_type}-{index}", text_a=text_a, text_b=text_b, label=label,
                                         idx=index))
        return examples


class MnliProcessor(GlueProcessor):
    """MultiNLI: ``sentence1`` (premise) -> ``text_a``, ``sentence2`` (hypothesis) -> ``text_b``,
    ``gold_label``; the dev set is the matched one."""

    SPLIT_FILES = {"train": "train.tsv", "dev": "dev_matched.tsv", "test": "test_matched.tsv"}
    TEXT_A, TEXT_B, LABEL = "sentence1", "sentence2", "gold_label"

    def get_labels(self):
        return ["contradiction", "entailment", "neutral"]


class MnliMismatchedProcessor(MnliProcessor):
    """MultiNLI with the mismatched (other genres) dev and test sets."""

    SPLIT_FILES = {"train": "train.tsv", "dev": "dev_mismatched.tsv", "test": "test_mismatched.tsv"}


class ColaProcessor(GlueProcessor):
    """CoLA: is the sentence grammatical?  Labels ``"0"``/``"1"``.  Train and dev files have no
    header (source, label, original label, sentence); the test file has ``index``, ``sentence``."""

    def create_examples(self, path, set_type, for_train=False):
        if set_type == "test":
            return super().create_examples(path, set_type, for_train)
        examples = []
        for index, where, fields in read_tsv(path, header=False):
            if len(fields) < 4:
                raise TaskDataError(f"{where}: expected 4 tab-separated fields (source, label, original label, "
                                    f"sentence), got {len(fields)}")
            examples.append(InputExample(guid=f"{set_type}-{index}", text_a=standardize(fields[3]),
                                         label=self.checked_label(fields[1], where), idx=index))
        return examples


class Sst2Processor(GlueProcessor):
    """SST-2: sentiment of ``sentence``; labels ``"0"`` (negative) / ``"1"`` (positive)."""


class MrpcProcessor(GlueProcessor):
    """MRPC: are ``#1 String`` and ``#2 String`` paraphrases?  Label column ``Quality``."""

    TEXT_A, TEXT_B, LABEL = "#1 String", "#2 String", "Quality"


class QqpProcessor(GlueProcessor):
    """QQP: are ``question1`` and ``question2`` duplicates?  Label column ``is_duplicate``."""

    TEXT_A, TEXT_B, LABEL = "question1", "question2", "is_duplicate"


class QnliProcessor(GlueProcessor):
    """QNLI: does ``sentence`` answer ``question``?  ``question`` -> ``text_a``, ``sentence`` ->
    ``text_b``; labels ``entailment`` / ``not_entailment``."""

    TEXT_A, TEXT_B, LABEL = "question", "sentence", "label"

    def get_labels(self):
        return ["entailment", "not_entailment"]
