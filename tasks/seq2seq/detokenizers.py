"""Undo the tokenisation of the released seq2seq corpora before GLM re-tokenises them (spec section 9.4).

The public CNN/DailyMail, Gigaword and Yahoo-blank files were distributed already tokenised (PTB bracket
escapes, split contractions, ``<S_SEP>`` sentence markers, ``UNK`` placeholders).  Feeding those escapes
to a BERT or GPT-2 vocabulary would teach the model to write ``-LRB-``, so the original rewrote them
back to plain text.  Every rule is a plain string replacement applied in the listed order, so the
tables below are the whole behaviour.

Each detokenizer is ``f(text, is_target=False) -> text``; a task's row in :mod:`tasks.seq2seq.registry`
names the one it uses (``None`` for tasks whose files are plain text).  This module knows no task names.
"""

from data_utils.corpora import punctuation_standardization

# PTB bracket escapes, upper case as in the CNN/DM release.
_CNNDM_BRACKETS = (("-LRB-", "("), ("-RRB-", ")"), ("-LSB-", "["), ("-RSB-", "]"), ("-LCB-", "{"), ("-RCB-", "}"))

# Quotes and split contractions of the CNN/DM release (after the brackets).
_CNNDM_TEXT = (("''", '"'), ("``", '"'), ("`", "'"), (" n't", "n't"), (" 's", "'s"), (" 'd", "'d"), (" 'll", "'ll"))

# Gigaword: lower-case bracket escapes and HTML entities.  ``UNK`` goes first so that the ``[UNK]``
# it produces is not rewritten again.
_GIGAWORD_UNKNOWN = (("UNK", "[UNK]"), ("<unk>", "[UNK]"))
_GIGAWORD_ESCAPES = (("-lrb-", "("), ("-rrb-", ")"), ("-lsb-", "["), ("-rsb-", "]"), ("-lcb-", "{"), ("-rcb-", "}"),
                     ("&amp;", "&"), ("&lt;", "<"), ("&gt;", ">"))

# Yahoo Answers blank-infilling files: the unknown-word marker and the blank marker.
_BLANK = (("_UNK", "[UNK]"), ("<blank>", "[MASK]"))


def _replace_all(text, rules):
    for old, new in rules:
        text = text.replace(old, new)
    return text


def cnndm_detokenize(text, is_target=False):
    """CNN/DM: ``<S_SEP>`` becomes ``[SEP]`` in targets (the metric splits sentences on it) and is
    dropped from sources; PTB brackets, quotes and contractions are undone."""
    text = text.replace("<S_SEP>", "[SEP]" if is_target else "")
    text = _replace_all(text, _CNNDM_BRACKETS)
    return _replace_all(text, _CNNDM_TEXT)


def gigaword_detokenize(text, is_target=False):
    """Gigaword: ``UNK``/``<unk>`` become ``[UNK]``; lower-case PTB brackets and HTML entities are undone.
    (``is_target`` is accepted for a uniform signature; sources and targets get the same rules.)"""
    del is_target
    text = _replace_all(text, _GIGAWORD_UNKNOWN)
    return _replace_all(text, _GIGAWORD_ESCAPES)


def blank_detokenize(text, is_target=False):
    """Yahoo blank files: ``_UNK`` becomes ``[UNK]`` and ``<blank>`` becomes ``[MASK]``."""
    del is_target
    return _replace_all(text, _BLANK)


def clean_summary_line(line, detokenize, is_target):
    """One line of a ``.source``/``.target`` file as the original summarisation reader prepared it:
    stripped, curly quotes and en dashes made ASCII, then ``detokenize`` (the task's
    ``TaskSpec.detokenizer``; ``None`` for files used as they are, e.g. the raw ``cnn_dm_original``)."""
    line = punctuation_standardization(line.strip())
    return detokenize(line, is_target=is_target) if detokenize else line
