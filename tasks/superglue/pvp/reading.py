"""Patterns of the reading-comprehension sets multi-task pretraining uses (multi-token: the answer
text is generated into the blank): RACE and cloze SQuAD.

``‖`` separates ``parts_a`` from ``parts_b``, ``~`` marks a shortenable text, ``[M]`` the blank.
"""

from .base import PVP
from .parts import MASK, lowercase_first, shortenable


class RacePVP(PVP):
    """RACE, answered by each option.  A question with a ``_`` gap puts the blank there:
    0 ``~article`` ‖ ``~left [M] ~right``, 1 ``~article`` ‖ `` Based on the previous passage, ~left [M]
    ~right`` (left lower-cased first); any other question: 0 ``~article`` ‖ `` Question: ~question
    Answer: [M]``, 1 ``~article`` ‖ `` Based on the previous passage, ~question [M]``."""

    PATTERN_IDS = (0, 1)
    ALWAYS_MULTI_TOKEN = True

    def get_answers(self, example):
        return [f" {choice}" for choice in example.meta["choices"]]

    def get_parts(self, example):
        article = shortenable(example.text_a)
        question = f" {example.text_b}"
        lead = [] if self.pattern_id == 0 else [" Based on the previous passage,"]
        if "_" in question:
            left, right = question.split("_", 1)
            left = left.rstrip()
            if self.pattern_id == 1:
                # The original meant to lower-case the question's first letter but applied it to the
                # leading space; this does what it meant.
                left = f" {lowercase_first(left[1:])}" if left.startswith(" ") else lowercase_first(left)
            return [article], lead + [shortenable(left), MASK, shortenable(right)]
        if self.pattern_id == 0:
            return [article], [" Question:", shortenable(question), " Answer:", MASK]
        return [article], lead + [shortenable(question), MASK]

    def verbalize(self, label):
        return []


class SquadClozePVP(PVP):
    """Cloze SQuAD: ``~context question [M] .``, answered by the gold answer."""

    ALWAYS_MULTI_TOKEN = True

    def get_answers(self, example):
        return [" " + example.meta["answer"]["text"]]

    def get_parts(self, example):
        return [shortenable(example.text_a), f" {example.text_b}", MASK, "."], []

    def verbalize(self, label):
        return []
