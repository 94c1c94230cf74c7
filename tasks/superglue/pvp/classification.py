"""PET's patterns for the topic and sentiment classification sets (all single-token, no
continuous-prompt slots): AG News, Yahoo Answers, Yelp polarity and Yelp full.

``‖`` separates ``parts_a`` from ``parts_b``, ``~`` marks a shortenable text, ``[M]`` the blank.
"""

from .base import PVP
from .parts import MASK, shortenable


class TopicPVP(PVP):
    """The six topic layouts AG News and Yahoo share (``a``, ``b`` the two texts):
    0 ``[M] : ~a ~b``, 1 ``[M] <HEADING>: ~a ~b``, 2 ``~a ( [M] ) ~b``, 3 ``~a ~b ( [M] )``,
    4 ``[ Category: [M] ] ~a ~b``, 5 ``[M] - ~a ~b``."""

    PATTERN_IDS = (0, 1, 2, 3, 4, 5)
    HEADING = " News:"
    VERBALIZER = {}

    def get_parts(self, example):
        a, b = shortenable(example.text_a), shortenable(example.text_b)
        layouts = {0: [MASK, ":", a, b], 1: [MASK, self.HEADING, a, b], 2: [a, "(", MASK, ")", b],
                   3: [a, b, "(", MASK, ")"], 4: ["[ Category:", MASK, "]", a, b], 5: [MASK, "-", a, b]}
        return layouts[self.pattern_id], []

    def verbalize(self, label):
        return self.VERBALIZER[label]


class AgnewsPVP(TopicPVP):
    """AG News: `` World`` / `` Sports`` / `` Business`` / `` Tech``; pattern 1 reads ``[M] News:``."""

    VERBALIZER = {"1": [" World"], "2": [" Sports"], "3": [" Business"], "4": [" Tech"]}


class YahooPVP(TopicPVP):
    """Yahoo Answers: ten topic words; pattern 1 reads ``[M] Question:``."""

    HEADING = " Question:"
    VERBALIZER = {"1": [" Society"], "2": [" Science"], "3": [" Health"], "4": [" Education"], "5": [" Computer"],
                  "6": [" Sports"], "7": [" Business"], "8": [" Entertainment"], "9": [" Relationship"],
                  "10": [" Politics"]}


class YelpPolarityPVP(PVP):
    """Yelp: 0 ``It was [M] . ~review``, 1 ``~review . All in all, it was [M] .``, 2 ``Just [M] !`` ‖
    ``~review``, 3 ``~review`` ‖ `` In summary, the restaurant is [M] .``.  `` bad`` / `` good``."""

    PATTERN_IDS = (0, 1, 2, 3)
    VERBALIZER = {"1": [" bad"], "2": [" good"]}

    def get_parts(self, example):
        review = shortenable(example.text_a)
        if self.pattern_id == 0:
            return ["It was", MASK, ".", review], []
        if self.pattern_id == 1:
            return [review, ". All in all, it was", MASK, "."], []
        if self.pattern_id == 2:
            return ["Just", MASK, "!"], [review]
        return [review], [" In summary, the restaurant is", MASK, "."]

    def verbalize(self, label):
        return self.VERBALIZER[label]


class YelpFullPVP(YelpPolarityPVP):
    """Yelp full: Yelp's patterns answered `` terrible`` / `` bad`` / `` okay`` / `` good`` /
    `` great`` (1 to 5 stars)."""

    VERBALIZER = {"1": [" terrible"], "2": [" bad"], "3": [" okay"], "4": [" good"], "5": [" great"]}
