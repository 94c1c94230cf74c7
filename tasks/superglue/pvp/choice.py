"""Patterns of the multi-token SuperGLUE tasks, whose answers are free text scored as sequences:
COPA (the two alternatives), WSC (the referent, plus negative candidates) and ReCoRD (entities)."""

from ..errors import TaskConfigError, TaskDataError
from ..samples import int64_array, make_sample
from .base import PVP
from .parts import MASK, SLOT, encode_parts, flatten, lowercase_first, remove_final_punc, shortenable, truncate


def _alternative(text):
    """A COPA choice as it continues the sentence: first letter lower-cased, final punctuation gone."""
    return remove_final_punc(lowercase_first(text))


class CopaPVP(PVP):
    """COPA: ``"c1" or "c2"? premise because|, so [MASK].``, answered by each alternative.

    Pattern 2 (and 3) without ``--continuous-prompt`` is a different encoder: the blank is put
    before each alternative and filled by the connective (`` because`` / `` so``), one row per
    alternative.
    """

    PATTERN_IDS = (0, 1, 2, 3)
    AVAILABLE_PATTERNS = (0, 1)
    ALWAYS_MULTI_TOKEN = True
    COUNTS_PROMPTS = True

    def __init__(self, config, tokenizer, label_list, max_seq_length, pattern_id=0, **kwargs):
        if pattern_id == 3 and config.adaptation.continuous_prompt:
            # The original accepted 3 only through the connective encoder and crashed here.
            raise TaskConfigError("CopaPVP: pattern 3 exists only without --continuous-prompt (it is the "
                                  "connective encoder of pattern 2); use pattern 0, 1 or 2")
        super().__init__(config, tokenizer, label_list, max_seq_length, pattern_id=pattern_id, **kwargs)

    def get_answers(self, example):
        return [" " + _alternative(example.meta["choice1"]), " " + _alternative(example.meta["choice2"])]

    def get_parts(self, example):
        premise = remove_final_punc(shortenable(f" {example.text_a}"))
        first, second = _alternative(example.meta["choice1"]), _alternative(example.meta["choice2"])
        joiner = " because" if example.meta["question"] == "cause" else ", so"
        if self.pattern_id == 0:
            return [SLOT, '"', first, '" or "', second, '"?', SLOT, premise, joiner, SLOT, MASK, "."], []
        if self.pattern_id == 1:
            return [SLOT, first, " or", f" {second}", "?", SLOT, premise, joiner, SLOT, MASK, "."], []
        return [SLOT, '"', first, '" or "', second, '"', SLOT, premise, joiner, MASK, ".", SLOT], []

    def verbalize(self, label):
        return []

    def encode(self, example):
        if self.continuous_prompt or self.pattern_id < 2:
            return super().encode(example)
        return self.encode_connective(example)

    def encode_connective(self, example):
        """``"c1" or "c2"? premise [MASK] <alternative>`` per alternative, the blank filled by the
        connective (`` because`` for a cause, `` so`` for an effect) followed by ``eop``."""
        connective = " because" if example.meta["question"] == "cause" else " so"
        connective_ids = self.tokenizer.EncodeAsIds(connective).tokenization
        if len(connective_ids) != 1:
            raise TaskConfigError(f"CopaPVP pattern {self.pattern_id}: {connective!r} must be one token, got "
                                  f"{len(connective_ids)}")
        answer = connective_ids + [self.tokenizer.get_command("eop").Id]
        premise = remove_final_punc(shortenable(example.text_a))
        first, second = self.get_answers(example)
        rows = []
        for alternative in (first, second):
            parts = ['"', first[1:], '" or "', second[1:], '"?', premise, MASK, alternative]
            parts = [p for p in parts if (p[0] if isinstance(p, tuple) else p) != ""]  # empty texts vanish
            parts = encode_parts(parts, self.tokenizer, self.mask_id, self.prompt_id)
            self.num_truncated += truncate(parts, None, answer, self.max_seq_length)
            ids, _, _, position, sep, target, loss_mask = self.build(flatten(parts), None, answer)
            rows.append((ids, position, sep, target, loss_mask))
        ids, position, sep, target, loss_mask = zip(*rows)
        return make_sample(ids, self.label_index(example), example.guid, position=position, mask=sep,
                           target=target, logit_mask=loss_mask)


class WscPVP(PVP):
    """WSC: the sentence with the pronoun in asterisks and a question about its referent.

    With ``--loss-func generative`` or ``mix`` each example is a multiple choice over the referent
    (choice 0) and the negative candidates (training labels are 0; at evaluation the choice is
    flipped back to the label, see ``registry.choice_to_label``).  With any other loss it is a
    language-model sample that generates the referent (``text``, ``target``, ``attention_mask``,
    ``loss_mask``, ``position_id``)."""

    PATTERN_IDS = (0, 1, 2)
    ALWAYS_MULTI_TOKEN = True
    COUNTS_PROMPTS = True

    def get_answers(self, example):
        return [" " + example.meta["span1_text"]] + [f" {c}" for c in example.meta.get("candidates", [])]

    def get_parts(self, example):
        pronoun, index = example.meta["span2_text"], example.meta["span2_index"]
        words = example.text_a.split()
        words[index] = f"*{words[index]}*"
        text = shortenable(" ".join(words))
        if self.pattern_id == 0:
            return [SLOT, text, SLOT, f" The pronoun '*{pronoun}*' refers to", SLOT, MASK, "."], []
        if self.pattern_id == 1:
            return [SLOT, text, SLOT, f" In the previous sentence, the pronoun '*{pronoun}*' refers to", SLOT,
                    MASK, "."], []
        return [SLOT, text, SLOT, f" Question: In the passage above, what does the pronoun '*{pronoun}*' refer to?",
                SLOT, " Answer:", MASK, "."], []

    def verbalize(self, label):
        return []

    def encode(self, example):
        if self.config.task.loss_func in ("generative", "mix"):
            sample = super().encode(example)
            if self.split == "train":
                sample["label"] = 0  # the referent is always choice 0
            return sample
        return self.encode_generative(example)

    def encode_generative(self, example):
        """A blank-infilling sample whose answer is the referent (``+ eop``)."""
        parts_a, parts_b = self.encoded_parts(example)
        answer = self.answer_ids(self.get_answers(example)[0])
        tokens_a, tokens_b = self.fitted_tokens(parts_a, parts_b, answer)
        ids, _, _, position, sep, target, loss_mask = self.build(tokens_a, tokens_b, answer)
        ids, prompt_pos = self.take_prompt_positions(ids)
        return {"text": int64_array(ids), "target": int64_array(target), "attention_mask": int64_array(sep),
                "loss_mask": int64_array(loss_mask), "position_id": int64_array(position),
                "prompt_pos": int64_array(prompt_pos), "label": self.label_index(example), "uid": example.guid}


class RecordPVP(PVP):
    """ReCoRD: ``passage <query up to @placeholder> [MASK] <rest of query>``, answered by each
    candidate entity."""

    ALWAYS_MULTI_TOKEN = True

    def get_answers(self, example):
        return [f" {candidate}" for candidate in example.meta["candidates"]]

    def get_parts(self, example):
        pieces = example.text_b.split("@placeholder")
        if len(pieces) != 2:
            raise TaskDataError(f"{example.guid}: the query must contain '@placeholder' exactly once: "
                                  f"{example.text_b!r}")
        left, right = pieces
        return [shortenable(example.text_a), f" {left.rstrip()}", MASK, right], []

    def verbalize(self, label):
        return []
