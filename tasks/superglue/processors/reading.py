"""Readers of the two reading-comprehension sets multi-task pretraining draws on (spec section 7.5):
RACE (multiple choice) and SQuAD (cloze: the gold answer generated into a blank).

RACE, as distributed: ``train/``, ``dev/`` and ``test/`` folders, each with ``middle/`` and ``high/``
sub-folders of files (``*.txt``, also ``*.json``) holding one JSON object ``{"id", "article",
"questions", "options", "answers"}``: one example per question, the options its choices, the answer
letter its label.  Files are read middle first, then high, each folder in name order.

SQuAD: ``train-v2.0.json`` / ``dev-v2.0.json`` (or the v1.1 names), one example per answerable
question with its first gold answer.  This cloze SQuAD exists for multi-task pretraining only:
``--task squad`` on ``finetune_glm.py`` is extractive QA as generation (``tasks/seq2seq``).
"""

import glob
import json
import os
import re

from ...jsonl import MissingSplitError
from ..errors import TaskDataError
from ..examples import InputExample
from ..samples import classification_sample
from .base import SPLITS, DataProcessor, field

RACE_LEVELS = ("middle", "high")


def clean_race_text(text):
    """One line, single spaces, and ``" . "`` tightened to ``". "`` (the articles are tokenized text)."""
    text = re.sub(r"\s+", " ", text.replace("\n", " "))
    for _ in range(3):  # overlapping matches (". . .") need more than one pass
        text = text.replace(" . ", ". ")
    return text


def _load_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise TaskDataError(f"{path}: not a JSON file ({e})") from None


class RaceProcessor(DataProcessor):
    """RACE: article -> ``text_a``, question -> ``text_b``, the options in ``meta["choices"]``,
    labels ``A``-``D``."""

    def get_labels(self):
        return ["A", "B", "C", "D"]

    @property
    def variable_num_choices(self):
        return True

    def get_examples(self, split, data_dir, for_train=False):
        if split not in SPLITS:
            raise ValueError(f"split must be one of {list(SPLITS)}, got {split!r}")
        if data_dir is None:
            raise TaskDataError("--data-dir is not set: it must name the task's data directory")
        folder = os.path.join(data_dir, split)
        paths = []
        for level in RACE_LEVELS:
            level_files = glob.glob(os.path.join(folder, level, "*.txt")) + \
                glob.glob(os.path.join(folder, level, "*.json"))
            paths += sorted(level_files)
        if not paths:
            raise MissingSplitError(f"{folder}: the {split} split needs RACE files in {folder}/middle or "
                                    f"{folder}/high, and there are none")
        examples = []
        self.reading_split = split
        for path in paths:
            examples += self.create_examples(path, split, for_train=for_train)
        return examples

    def create_examples(self, path, set_type, for_train=False):
        record = _load_json(path)
        where = path
        questions, options = field(record, "questions", where), field(record, "options", where)
        answers = field(record, "answers", where)
        if not len(questions) == len(options) == len(answers):
            raise TaskDataError(f"{where}: {len(questions)} questions, {len(options)} option lists and "
                                f"{len(answers)} answers; they must match")
        article = clean_race_text(field(record, "article", where))
        passage_id = record.get("id", os.path.basename(path))
        examples = []
        for number, (question, choices, answer) in enumerate(zip(questions, options, answers)):
            if len(choices) != len(self.get_labels()):
                raise TaskDataError(f"{where}: question {number} has {len(choices)} options, RACE has 4")
            examples.append(InputExample(
                guid=f"{set_type}-p{passage_id}-q{number}", text_a=article, text_b=question,
                label=self.checked_label(answer, where), meta={"choices": list(choices)},
                idx=[set_type, passage_id, number]))
        return examples

    def encode(self, example, tokenizer, config):
        """Non-cloze: one ``[CLS] article [SEP] question option [eos]`` row per option."""
        article = tokenizer.EncodeAsIds(example.text_a).tokenization
        rows = [self.encode_pair_ids(tokenizer, article,
                                     tokenizer.EncodeAsIds(f"{example.text_b} {choice}").tokenization, config)
                for choice in example.meta["choices"]]
        return classification_sample(rows, self.label_index(example), example.guid, config)


class SquadClozeProcessor(DataProcessor):
    """SQuAD as a cloze task: context -> ``text_a``, question -> ``text_b``, the first gold answer
    in ``meta["answer"]`` (``{"text", "answer_start"}``); the single label is ``"0"``.  Unanswerable
    (SQuAD 2.0) questions are left out."""

    SPLIT_FILES = {"train": ("train-v2.0.json", "train-v1.1.json"), "dev": ("dev-v2.0.json", "dev-v1.1.json")}

    def get_labels(self):
        return ["0"]

    def split_file(self, split):
        if split == "test":
            raise MissingSplitError("SQuAD has no test split")
        return self.SPLIT_FILES[split]

    def create_examples(self, path, set_type, for_train=False):
        articles = field(_load_json(path), "data", path)
        examples = []
        for article_number, article in enumerate(articles):
            for paragraph_number, paragraph in enumerate(field(article, "paragraphs", path)):
                context = field(paragraph, "context", path)
                for question_number, qa in enumerate(field(paragraph, "qas", path)):
                    answers = qa.get("answers") or []
                    if not answers:
                        continue
                    field(answers[0], "text", path)  # checked here, not when the sample is built
                    guid = f"{set_type}-{article_number}-{paragraph_number}-{question_number}"
                    examples.append(InputExample(guid=guid, text_a=context, text_b=field(qa, "question", path),
                                                 label="0", meta={"answer": answers[0]}, idx=qa.get("id", guid)))
        return examples
