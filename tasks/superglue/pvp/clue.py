"""Patterns of the CLUE tasks (Chinese, single-token): AFQMC, TNEWS, CLUEWSC.

The AFQMC verbalizers keep the original's literal ``▁`` (SentencePiece's word-start mark): the
Chinese tokenizer reads it as white space, so ``▁是`` encodes exactly like ``是`` and nothing
changes.
"""

from ..processors.clue import mark_spans
from .base import PVP
from .parts import MASK, SLOT, shortenable


class AfqmcPVP(PVP):
    """AFQMC: do the two questions mean the same?  ``是`` (yes) / ``不是`` (no)."""

    PATTERN_IDS = (0, 1)
    VERBALIZER = {"0": ["▁不是"], "1": ["▁是"]}

    def get_parts(self, example):
        first, second = shortenable(example.text_a), shortenable(example.text_b)
        if self.pattern_id == 0:
            return [first, "？"], ["你是说", second, "？", MASK, "。"]
        return [first, "？"], [MASK, "，", second]

    def verbalize(self, label):
        return self.VERBALIZER[label]


class TnewsPVP(PVP):
    """TNEWS: ``标题：<title>关键词：<keywords>类别：[MASK]`` answered by a two-character class name."""

    VERBALIZER = {"100": ["故事"], "101": ["文化"], "102": ["娱乐"], "103": ["体育"], "104": ["金融"],
                  "106": ["居家"], "107": ["汽车"], "108": ["教育"], "109": ["科技"], "110": ["军事"],
                  "112": ["旅游"], "113": ["世界"], "114": ["股票"], "115": ["农业"], "116": ["游戏"]}

    def get_parts(self, example):
        return ["标题：", shortenable(example.text_a), "关键词：", shortenable(example.text_b), "类别：", MASK], []

    def verbalize(self, label):
        return self.VERBALIZER[label]


class ClueWscPVP(PVP):
    """CLUEWSC: the text with the pronoun in ``*`` and the candidate referent in ``#``; does the
    pronoun refer to it?  ``是`` / ``不是``."""

    PATTERN_IDS = (0, 1)
    COUNTS_PROMPTS = True
    VERBALIZER = {"false": ["不是"], "true": ["是"]}

    def get_parts(self, example):
        pronoun, target = example.meta["span2_text"], example.meta["span1_text"]
        text = shortenable(mark_spans(example))
        if self.pattern_id == 0:
            return [SLOT, text, f"代词'*{pronoun}*'", MASK, f"指#{target}#."], []
        return ["在如下的句子中：", text, f"代词'*{pronoun}*'", MASK, f"指'#{target}#'."], []

    def verbalize(self, label):
        return self.VERBALIZER[label]
