"""Exact match and token F1 of a predicted answer string against a gold one (SQuAD's normalisation),
shared by extractive QA (``tasks.seq2seq``) and ReCoRD (``tasks.superglue``)."""

import re
import string
import unicodedata
from collections import Counter

_PUNCTUATION = frozenset(string.punctuation)


def strip_accents(text):
    """Drop combining marks after NFKD decomposition (``Café`` -> ``Cafe``).  The original SQuAD
    evaluation transliterated with ``unidecode``; this gives the same for accented Latin letters."""
    return "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))


def normalize_answer(text, accents=True):
    """Lower case, punctuation and the articles a/an/the removed, white space collapsed; with
    ``accents=False`` accents are stripped too (SQuAD does, ReCoRD does not)."""
    text = text.lower() if accents else strip_accents(text.lower())
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def exact_match_score(prediction, truth, accents=True):
    """1.0 when the normalised strings are equal, else 0.0."""
    return float(normalize_answer(prediction, accents) == normalize_answer(truth, accents))


def f1_score(prediction, truth, accents=True):
    """Bag-of-words F1 of the normalised strings."""
    predicted, gold = normalize_answer(prediction, accents).split(), normalize_answer(truth, accents).split()
    common = sum((Counter(predicted) & Counter(gold)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(gold)
    return 2 * precision * recall / (precision + recall)
