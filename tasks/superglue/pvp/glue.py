"""Patterns of the GLUE tasks multi-task pretraining uses (all single-token): MNLI (PET's patterns),
SST-2, CoLA, MRPC, QQP and QNLI (GLM's own, simple ones).  None has continuous-prompt slots.

``‖`` in the docstrings separates ``parts_a`` from ``parts_b`` (truncated independently), ``~`` marks
a shortenable text, ``[M]`` the blank.
"""

from .base import PVP
from .parts import MASK, lowercase_first, remove_final_punc, shortenable


class MnliPVP(PVP):
    """MNLI: 0, 2 ``" ~premise " ?`` ‖ ``[M] , " ~hypothesis "``; 1, 3 ``~premise ?`` ‖ ``[M] ,
    ~hypothesis``.  Patterns 0-1 answer `` Wrong``/`` Right``/`` Maybe``, 2-3 `` No``/`` Yes``/
    `` Maybe`` (contradiction / entailment / neutral)."""

    PATTERN_IDS = (0, 1, 2, 3)
    VERBALIZER_A = {"contradiction": [" Wrong"], "entailment": [" Right"], "neutral": [" Maybe"]}
    VERBALIZER_B = {"contradiction": [" No"], "entailment": [" Yes"], "neutral": [" Maybe"]}

    def get_parts(self, example):
        premise = shortenable(remove_final_punc(example.text_a))
        hypothesis = shortenable(example.text_b)
        if self.pattern_id in (0, 2):
            return ['"', premise, '" ?'], [MASK, ', "', hypothesis, '"']
        return [premise, "?"], [MASK, ",", hypothesis]

    def verbalize(self, label):
        return (self.VERBALIZER_A if self.pattern_id < 2 else self.VERBALIZER_B)[label]


class Sst2PVP(PVP):
    """SST-2: ``~sentence It was [M] .``; pattern 0 answers `` terrible``/`` great``, 1 `` bad``/
    `` good``."""

    PATTERN_IDS = (0, 1)
    VERBALIZER_A = {"0": [" terrible"], "1": [" great"]}
    VERBALIZER_B = {"0": [" bad"], "1": [" good"]}

    def get_parts(self, example):
        return [shortenable(example.text_a), " It was", MASK, "."], []

    def verbalize(self, label):
        return (self.VERBALIZER_A if self.pattern_id == 0 else self.VERBALIZER_B)[label]


class ColaPVP(PVP):
    """CoLA: ``" ~sentence " This is [M] .`` -> `` incorrect`` / `` correct``."""

    VERBALIZER = {"0": [" incorrect"], "1": [" correct"]}

    def get_parts(self, example):
        return ['"', shortenable(example.text_a), '"', " This is", MASK, "."], []

    def verbalize(self, label):
        return self.VERBALIZER[label]


class MrpcPVP(PVP):
    """MRPC: 0 ``~s1`` ‖ ``[M] , ~s2`` (s2 lower-cased first); 1 ``~s1`` ‖ `` Does it mean that ~s2 ?
    [M]`` (s2 also without final punctuation).  `` No`` / `` Yes``."""

    PATTERN_IDS = (0, 1)
    VERBALIZER = {"0": [" No"], "1": [" Yes"]}

    def get_parts(self, example):
        first = shortenable(example.text_a)
        second = lowercase_first(example.text_b)
        if self.pattern_id == 0:
            return [first], [MASK, ", ", shortenable(second)]
        return [first], [" Does it mean that", shortenable(remove_final_punc(second)), "?", MASK]

    def verbalize(self, label):
        return self.VERBALIZER[label]


class QqpPVP(PVP):
    """QQP: 0 ``~q1`` ‖ `` Do you mean ~q2 [M] .``; 1 ``~q1`` ‖ ``[M] , ~q2`` (q2 lower-cased first).
    `` No`` / `` Yes``."""

    PATTERN_IDS = (0, 1)
    VERBALIZER = {"0": [" No"], "1": [" Yes"]}

    def get_parts(self, example):
        first = shortenable(example.text_a)
        second = shortenable(lowercase_first(example.text_b))
        if self.pattern_id == 0:
            return [first], [" Do you mean ", second, MASK, "."]
        return [first], [MASK, ", ", second]

    def verbalize(self, label):
        return self.VERBALIZER[label]


class QnliPVP(PVP):
    """QNLI (question without final punctuation): 0 ``~sentence Question: ~question ? Do you know the
    answer? [M] .``; 1 ``~sentence Based on the previous passage, do you know the answer ~question ?
    [M] .``; 2 ``Based on the following passage, do you know the answer ~question ? [M] . ~sentence``.
    `` Yes`` (entailment) / `` No``."""

    PATTERN_IDS = (0, 1, 2)
    VERBALIZER = {"entailment": [" Yes"], "not_entailment": [" No"]}

    def get_parts(self, example):
        question = shortenable(f" {remove_final_punc(example.text_a)}")
        passage = example.text_b
        if self.pattern_id == 0:
            return [shortenable(passage), " Question:", question, "? Do you know the answer?", MASK, "."], []
        if self.pattern_id == 1:
            return [shortenable(passage), " Based on the previous passage, do you know the answer", question, "?",
                    MASK, "."], []
        return ["Based on the following passage, do you know the answer", question, "?", MASK, ".",
                shortenable(f" {passage}")], []

    def verbalize(self, label):
        return self.VERBALIZER[label]
