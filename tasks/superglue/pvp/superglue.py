"""Patterns of the single-token SuperGLUE tasks: RTE (and AX-b/AX-g), CB, BoolQ, MultiRC, WiC.

Each ``get_parts`` reads as the question the model sees; ``SLOT`` marks continuous-prompt
positions, ``shortenable`` the texts truncation may cut.  Pattern tables with the literal strings
are in spec Appendix A and docs/superglue.md.
"""

from .base import PVP
from .parts import MASK, SLOT, remove_final_punc, shortenable

class RtePVP(PVP):
    """RTE: is the hypothesis entailed by the premise?  `` Yes`` / `` No`` (pattern 4: true/false)."""

    PATTERN_IDS = (0, 1, 2, 3, 4)
    COUNTS_PROMPTS = True
    VERBALIZER = {"entailment": [" Yes"], "not_entailment": [" No"]}

    def get_parts(self, example):
        premise = example.text_a
        hypothesis = remove_final_punc(example.text_b)
        return self.entailment_parts(premise, hypothesis, f" {hypothesis}", " True or False?")

    def entailment_parts(self, premise, hypothesis, question, choices):
        """The five entailment layouts shared by RTE and CB (``question`` and ``choices`` feed
        pattern 4: ``premise question: <question> <choices> answer: [MASK]``)."""
        p = self.pattern_id
        if p == 0:
            return ([SLOT, '"', shortenable(hypothesis), '" ?'],
                    [SLOT, MASK, ",", SLOT, ' "', shortenable(premise), '"'])
        if p == 1:
            return [SLOT, shortenable(hypothesis), "?"], [SLOT, MASK, ",", SLOT, shortenable(f" {premise}")]
        if p == 2:
            return ([SLOT, '"', shortenable(hypothesis), '" ?'],
                    [SLOT, MASK, '. "', SLOT, shortenable(premise), '"'])
        if p == 3:
            return [SLOT, shortenable(hypothesis), "?"], [SLOT, MASK, ".", SLOT, shortenable(f" {premise}")]
        return [SLOT, shortenable(premise), SLOT, " question:", shortenable(question), choices, SLOT, " answer:",
                MASK], []

    def verbalize(self, label):
        if self.pattern_id == 4:
            return [" true"] if label == "entailment" else [" false"]
        return self.VERBALIZER[label]


class CbPVP(RtePVP):
    """CommitmentBank: RTE's patterns with a third answer, `` Maybe`` (pattern 4: `` neither``)."""

    VERBALIZER = {"entailment": [" Yes"], "contradiction": [" No"], "neutral": [" Maybe"]}
    VERBALIZER_4 = {"entailment": [" true"], "contradiction": [" false"], "neutral": [" neither"]}

    def get_parts(self, example):
        if self.pattern_id == 4:
            # Unlike RTE, pattern 4 keeps the hypothesis' final punctuation.
            return self.entailment_parts(example.text_a, None, f" {example.text_b}", " true, false or neither?")
        return super().get_parts(example)

    def verbalize(self, label):
        return (self.VERBALIZER_4 if self.pattern_id == 4 else self.VERBALIZER)[label]


class BoolQPVP(PVP):
    """BoolQ: a yes/no question about a passage.  Even patterns answer `` Yes``/`` No``, odd ones
    `` true``/`` false``."""

    PATTERN_IDS = (0, 1, 2, 3, 4, 5)
    COUNTS_PROMPTS = True
    VERBALIZER_A = {"false": [" No"], "true": [" Yes"]}
    VERBALIZER_B = {"false": [" false"], "true": [" true"]}

    def get_parts(self, example):
        passage, question = example.text_a, example.text_b
        if self.pattern_id < 2:
            return [SLOT, shortenable(passage), SLOT, " Question:", shortenable(f" {question}"), "? Answer:", SLOT,
                    MASK, "."], []
        if self.pattern_id < 4:
            return [SLOT, shortenable(passage), " Based on the previous passage,", SLOT,
                    shortenable(f" {question}"), "?", SLOT, MASK, "."], []
        return ["Based on the following passage", SLOT, shortenable(f" {question}"), "?", SLOT, MASK, ".", SLOT,
                shortenable(f" {passage}")], []

    def verbalize(self, label):
        return (self.VERBALIZER_A if self.pattern_id % 2 == 0 else self.VERBALIZER_B)[label]


class MultiRcPVP(PVP):
    """MultiRC: is this answer to the question correct?  `` Yes``/`` No`` (pattern 3: True/False).
    Passage and question lose their final punctuation."""

    PATTERN_IDS = (0, 1, 2, 3, 4)
    COUNTS_PROMPTS = True
    VERBALIZER = {0: [" No"], 1: [" Yes"]}

    def get_parts(self, example):
        passage = remove_final_punc(shortenable(example.text_a.rstrip()))
        question = remove_final_punc(example.text_b.rstrip())
        answer = example.meta["answer"]
        p = self.pattern_id
        if p == 0:
            return [passage, ".", SLOT, " Question:", f" {question}?", SLOT, " Is it", f" {answer}", "?", SLOT,
                    MASK, "."], []
        if p == 1:
            return [passage, ".", SLOT, " Question:", f" {question}", "?", SLOT, ' Is the correct answer "',
                    answer, '"?', SLOT, MASK, "."], []
        if p == 2:
            return [passage, ". Based on the previous passage,", SLOT, f" {question}", "?", SLOT, ' Is "', answer,
                    '" a correct answer?', SLOT, MASK, "."], []
        if p == 3:
            return [SLOT, passage, SLOT, f" {question}", "- [", MASK, "]", SLOT, answer], []
        return [passage, ".", SLOT, " Question:", f" {question}", "?", SLOT, f" {answer}", "?", SLOT, MASK, "."], []

    def verbalize(self, label):
        if self.pattern_id == 3:
            return [" False"] if label == 0 else [" True"]
        return self.VERBALIZER[label]


class WicPVP(PVP):
    """WiC: is ``word`` used in the same sense in both sentences?  `` Yes``/`` No`` (pattern 2:
    ``b`` = same, ``2`` = different)."""

    PATTERN_IDS = (0, 1, 2)
    COUNTS_PROMPTS = True
    VERBALIZER_A = {"false": [" No"], "true": [" Yes"]}
    VERBALIZER_B = {"false": ["2"], "true": ["b"]}

    def get_parts(self, example):
        first, second, word = example.text_a, example.text_b, example.meta["word"]
        if self.pattern_id == 0:
            return [SLOT, shortenable(f'"{first}" / "{second}"'), SLOT, f' Similar sense of "{word}"?', SLOT,
                    MASK, "."], []
        if self.pattern_id == 1:
            return [shortenable(first), SLOT, shortenable(f" {second}"), SLOT,
                    f" Does {word} have the same meaning in both sentences?", SLOT, MASK], []
        return [SLOT, word, " .", SLOT, ' Sense (1) (a) "', shortenable(first), '"', SLOT, " (", MASK, ') "', second,
                '"'], []

    def verbalize(self, label):
        return (self.VERBALIZER_B if self.pattern_id == 2 else self.VERBALIZER_A)[label]
