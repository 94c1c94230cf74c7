"""Readers of the text-classification sets PET used and multi-task pretraining draws on: AG News,
Yahoo Answers, Yelp polarity and Yelp full (spec section 7.5).

The files are the usual public CSVs (Zhang et al. 2015, as PET reads them): ``train.csv`` and
``test.csv``, comma-separated with ``"`` quoting, no header, the label first (``"1"`` ...).  The
``test.csv`` file is labelled and serves as the **dev** split; these tasks have no test split.  The
texts escape line breaks as a literal ``\\n`` and other characters with a backslash; both become a
space.
"""

import csv

from ...jsonl import MissingSplitError
from ..errors import TaskDataError
from ..examples import InputExample, punctuation_standardization as standardize
from .base import DataProcessor


def read_csv_rows(path, num_fields):
    """Yield ``(row_index, where, fields)`` for every non-empty row of ``path``, each with exactly
    ``num_fields`` fields."""
    with open(path, encoding="utf-8", newline="") as f:
        for index, fields in enumerate(csv.reader(f)):
            where = f"{path}:{index + 1}"
            if not fields:
                continue
            if len(fields) != num_fields:
                raise TaskDataError(f"{where}: expected {num_fields} comma-separated fields, got {len(fields)}")
            yield index, where, fields


def clean(text):
    """Undo the CSVs' escapes: ``\\n`` and lone backslashes become spaces."""
    return standardize(text.replace("\\n", " ").replace("\\", " "))


class CsvClassificationProcessor(DataProcessor):
    """Shared reader: ``NUM_FIELDS`` columns, the label first; subclasses say how the other fields
    make ``text_a`` / ``text_b``."""

    SPLIT_FILES = {"train": "train.csv", "dev": "test.csv"}
    NUM_FIELDS = 2
    NUM_LABELS = 2

    def get_labels(self):
        return [str(i) for i in range(1, self.NUM_LABELS + 1)]

    def split_file(self, split):
        if split == "test":
            # The driver skips an absent test split; say why there is none.
            raise MissingSplitError(f"{type(self).__name__}: this task has no test split (its labelled test.csv "
                                    "is the dev split)")
        return self.SPLIT_FILES[split]

    def texts(self, fields):
        """``(text_a, text_b)`` from the fields after the label."""
        return clean(fields[1]), None

    def create_examples(self, path, set_type, for_train=False):
        examples = []
        for index, where, fields in read_csv_rows(path, self.NUM_FIELDS):
            text_a, text_b = self.texts(fields)
            examples.append(InputExample(guid=f"{set_type}-{index}", text_a=text_a, text_b=text_b,
                                         label=self.checked_label(fields[0].strip(), where), idx=index))
        return examples


class AgnewsProcessor(CsvClassificationProcessor):
    """AG News: label (1 World, 2 Sports, 3 Business, 4 Sci/Tech), title -> ``text_a``,
    description -> ``text_b``."""

    NUM_FIELDS, NUM_LABELS = 3, 4

    def texts(self, fields):
        return clean(fields[1]), clean(fields[2])


class YahooAnswersProcessor(CsvClassificationProcessor):
    """Yahoo Answers: label (10 topics), question title and content -> ``text_a``, best answer ->
    ``text_b``."""

    NUM_FIELDS, NUM_LABELS = 4, 10

    def texts(self, fields):
        return clean(f"{fields[1]} {fields[2]}"), clean(fields[3])


class YelpPolarityProcessor(CsvClassificationProcessor):
    """Yelp reviews, polarity: label 1 (negative) or 2 (positive), review -> ``text_a``."""


class YelpFullProcessor(CsvClassificationProcessor):
    """Yelp reviews, 1 to 5 stars."""

    NUM_LABELS = 5
