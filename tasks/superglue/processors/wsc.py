"""WSC (Winograd schema): the sentence, the candidate referent (span 1) and the pronoun (span 2).

The SuperGLUE files have a few off-by-one word indices and pronouns glued to punctuation, so the
reader repairs the spans first (as the original did).  What happens next depends on the variant:

* ``wsc`` (cloze): training keeps only the positive examples (the pattern asks the model to
  *generate* the referent); the de-duplicated ``candidates`` of the line are kept in ``meta``
  (``--wsc-negative`` scores them as wrong choices).  A training example with more than 9
  candidates is split into examples of 9 (the last one padded with the first candidates).
* ``wsc1``: one example per (sentence, candidate) pair, ``text_b`` = the candidate; training adds
  a ``False`` example for every candidate of a positive line.
"""

import copy

from ..errors import TaskDataError
from ..examples import InputExample, punctuation_standardization as standardize
from .base import SuperGlueProcessor, field, read_json_lines

MAX_TRAIN_CANDIDATES = 9


def dedupe(items):
    """``items`` without repeats, first occurrences kept in order."""
    seen, kept = set(), []
    for item in items:
        if item not in seen:
            seen.add(item)
            kept.append(item)
    return kept


def _word_at(words, index):
    """``words[index]`` with Python's negative wrap-around (the original indexed this way), or
    ``None`` past either end instead of an ``IndexError``."""
    return words[index] if -len(words) <= index < len(words) else None


def repair_spans(text, span1_index, span1_text, span2_index, span2_text, where):
    """Fix the word indices of both spans; returns ``(words, span1_index, span2_index)``.

    Span 1 (case-insensitive, several words) and span 2 (the pronoun, one word) move by one word
    when the neighbouring position matches; a pronoun glued to what follows (``his,``) is split off
    into its own word.  A pronoun that still does not match is an error.
    """
    words, lower = text.split(), text.lower().split()
    target = span1_text.lower().split()
    if lower[span1_index:span1_index + len(target)] != target:
        for offset in (-1, 1):
            start = span1_index + offset
            if lower[start:start + len(target)] == target:
                span1_index = start
    if _word_at(words, span2_index) != span2_text:
        for offset in (-1, 1):
            if _word_at(words, span2_index + offset) == span2_text:
                span2_index += offset
        word = _word_at(words, span2_index)
        if word is not None and word != span2_text and word.startswith(span2_text):
            words[span2_index:span2_index + 1] = [word[:len(span2_text)], word[len(span2_text):]]
    if _word_at(words, span2_index) != span2_text:
        raise TaskDataError(f"{where}: pronoun {span2_text!r} not found at word {span2_index} "
                            f"(or next to it) of {text!r}")
    return words, span1_index, span2_index


class WscProcessor(SuperGlueProcessor):
    """The cloze WSC reader (``--task wsc``); labels ``"False"``/``"True"``."""

    # wsc1 (subclass below) turns every candidate into its own example.
    ONE_EXAMPLE_PER_CANDIDATE = False

    def get_labels(self):
        return ["False", "True"]

    @property
    def variable_num_choices(self):
        # With --wsc-negative each example scores the referent plus its own number of candidates.
        return self.config is not None and self.config.task.wsc_negative

    def create_examples(self, path, set_type, for_train=False):
        examples = []
        for _, where, record in read_json_lines(path):
            examples += self._line_examples(record, set_type, where)
        return examples

    def _line_examples(self, record, set_type, where):
        idx = field(record, "idx", where)
        label = self.checked_label(str(record["label"]) if "label" in record else None, where)
        target = field(record, "target", where)
        span1_text, span2_text = field(target, "span1_text", where), field(target, "span2_text", where)
        words, span1_index, span2_index = repair_spans(
            standardize(field(record, "text", where)), field(target, "span1_index", where), span1_text,
            field(target, "span2_index", where), span2_text, where)
        text = " ".join(words)
        meta = {"span1_text": span1_text, "span2_text": span2_text, "span1_index": span1_index,
                "span2_index": span2_index}
        has_candidates = "candidates" in record
        candidates = dedupe(field(c, "text", where) for c in record["candidates"]) if has_candidates else []
        guid, train = f"{set_type}-{idx}", set_type == "train"

        if self.ONE_EXAMPLE_PER_CANDIDATE:
            examples = [InputExample(guid=guid, text_a=text, text_b=span1_text, label=label, meta=meta, idx=idx)]
            if train and label == "True":
                examples += [InputExample(guid=guid, text_a=text, text_b=candidate, label="False", meta=meta,
                                          idx=idx) for candidate in candidates]
            return examples

        # Cloze training generates the referent, so only positive lines can teach it.
        if train and self.config is not None and self.config.task.cloze_eval and label != "True":
            return []
        if train and has_candidates and len(candidates) > MAX_TRAIN_CANDIDATES:
            examples = []
            for start in range(0, len(candidates), MAX_TRAIN_CANDIDATES):
                chunk = candidates[start:start + MAX_TRAIN_CANDIDATES]
                chunk += candidates[:MAX_TRAIN_CANDIDATES - len(chunk)]  # pad the last chunk
                examples.append(InputExample(guid=guid, text_a=text, label=label,
                                             meta={**copy.deepcopy(meta), "candidates": chunk}, idx=idx))
            return examples
        if has_candidates:
            meta["candidates"] = candidates
        return [InputExample(guid=guid, text_a=text, label=label, meta=meta, idx=idx)]

    def get_classifier_input(self, example):
        """The sentence with the pronoun in asterisks, and the candidate referent."""
        words = example.text_a.split()
        index = example.meta["span2_index"]
        words[index] = f"*{words[index]}*"
        # wsc1 examples carry their candidate in text_b.  The original always used span 1 here,
        # which made wsc1's negative examples identical to the positive one (see docs/superglue.md).
        candidate = example.text_b if example.text_b is not None else example.meta["span1_text"]
        return " ".join(words), candidate


class Wsc1Processor(WscProcessor):
    """``--task wsc1``: WSC as pair classification, one example per (sentence, candidate)."""

    ONE_EXAMPLE_PER_CANDIDATE = True
