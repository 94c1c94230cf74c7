"""Readers of three CLUE tasks (Chinese): AFQMC (question matching), TNEWS (news titles, 15
classes) and CLUEWSC2020 (Winograd).

CLUE files are JSON lines named ``train.json``, ``dev.json`` and ``test.json`` (``train.jsonl``,
``dev.jsonl``/``val.jsonl`` and ``test.jsonl`` are read too).  Texts are used as they are: no
punctuation standardisation, Chinese punctuation is meaningful to the Chinese tokenizer."""

from ..errors import TaskDataError
from ..examples import InputExample
from .base import DataProcessor, field, read_json_lines


def _label(record):
    # CLUE writes labels as strings; a number in a hand-made file means the same label.
    return None if record.get("label") is None else str(record["label"])


# CLUE's own names first (the original read only these); SuperGLUE-style names are accepted too.
CLUE_SPLIT_FILES = {"train": ("train.json", "train.jsonl"), "dev": ("dev.json", "dev.jsonl", "val.jsonl"),
                    "test": ("test.json", "test.jsonl")}


class ClueProcessor(DataProcessor):
    """CLUE file layout; examples are numbered by their line in the file."""

    SPLIT_FILES = CLUE_SPLIT_FILES

    def format_predictions(self, predictions, examples):
        """Records sorted by example id, as the CLUE submission expects."""
        labels = self.get_labels()
        pairs = sorted(zip(predictions, examples), key=lambda pair: pair[1].idx)
        return [{"idx": example.idx, "label": labels[prediction]} for prediction, example in pairs]


class AfqmcProcessor(ClueProcessor):
    """AFQMC: ``sentence1``, ``sentence2``; labels ``"0"`` (different) / ``"1"`` (same meaning)."""

    def get_labels(self):
        return ["0", "1"]

    def create_examples(self, path, set_type, for_train=False):
        return [InputExample(guid=f"{set_type}-{index}", text_a=field(record, "sentence1", where),
                             text_b=field(record, "sentence2", where),
                             label=self.checked_label(_label(record), where), idx=index)
                for index, where, record in read_json_lines(path)]


class TnewsProcessor(ClueProcessor):
    """TNEWS: title ``sentence`` and its ``keywords``; 15 class codes ``"100"`` ... ``"116"``
    (105 and 111 are unused)."""

    def get_labels(self):
        return ["100", "101", "102", "103", "104", "106", "107", "108", "109", "110", "112", "113", "114",
                "115", "116"]

    def create_examples(self, path, set_type, for_train=False):
        return [InputExample(guid=f"{set_type}-{index}", text_a=field(record, "sentence", where),
                             text_b=record.get("keywords", ""),
                             label=self.checked_label(_label(record), where), idx=index)
                for index, where, record in read_json_lines(path)]


class ClueWscProcessor(DataProcessor):
    """CLUEWSC2020: ``text``, ``target`` spans as *character* offsets; labels ``"false"``/``"true"``.
    ``meta`` adds the span lengths (the pattern marks the pronoun with ``*`` and the referent with
    ``#``).  ``text_b`` holds span 1's index, as in the original."""

    SPLIT_FILES = CLUE_SPLIT_FILES

    def get_labels(self):
        return ["false", "true"]

    def create_examples(self, path, set_type, for_train=False):
        examples = []
        for _, where, record in read_json_lines(path):
            idx = record["id"] if "id" in record else field(record, "idx", where)
            target = field(record, "target", where)
            meta = {key: field(target, key, where)
                    for key in ("span1_text", "span2_text", "span1_index", "span2_index")}
            meta["span1_length"], meta["span2_length"] = len(meta["span1_text"]), len(meta["span2_text"])
            text = field(record, "text", where)
            for span in ("span1", "span2"):
                start, length = meta[f"{span}_index"], meta[f"{span}_length"]
                if length == 0 or not 0 <= start <= len(text) - length:
                    raise TaskDataError(f"{where}: {span} ({meta[f'{span}_text']!r} at character {start}) "
                                        "lies outside the text")
            examples.append(InputExample(guid=f"{set_type}-{idx}", text_a=text, text_b=meta["span1_index"],
                                         label=self.checked_label(_label(record), where), meta=meta, idx=idx))
        return examples

    def get_classifier_input(self, example):
        """The marked text and the referent (the original passed span 1's index here and crashed)."""
        return mark_spans(example), example.meta["span1_text"]


def mark_spans(example):
    """The text with the pronoun wrapped in ``*`` and the referent in ``#`` (character spans)."""
    chars = list(example.text_a)
    meta = example.meta
    for start, length, marker in ((meta["span2_index"], meta["span2_length"], "*"),
                                  (meta["span1_index"], meta["span1_length"], "#")):
        chars[start] = marker + chars[start]
        chars[start + length - 1] = chars[start + length - 1] + marker
    return "".join(chars)
