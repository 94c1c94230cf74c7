"""Undo the WikiText-103 tokenisation before re-tokenising with the model's tokenizer.

The released perplexity numbers depend on these exact rewrites (the Megatron convention the original
follows), so they are listed as data and applied in order.
"""

import os
import re

# (kind, pattern, replacement), applied top to bottom; "str" is a plain replace, "re" a regex sub.
WIKITEXT_RULES = (
    ("str", "s '", "s'"),                                   # plural possessive
    ("re", r"/' [0-9]/", r"/'[0-9]/"),
    ("str", " @-@ ", "-"),                                  # escaped number/word separators
    ("str", " @,@ ", ","),
    ("str", " @.@ ", "."),
    ("str", " : ", ": "),                                   # no space before punctuation
    ("str", " ; ", "; "),
    ("str", " . ", ". "),
    ("str", " ! ", "! "),
    ("str", " ? ", "? "),
    ("str", " , ", ", "),
    ("re", r"\(\s*([^\)]*?)\s*\)", r"(\1)"),                # no padding inside brackets and quotes
    ("re", r"\[\s*([^\]]*?)\s*\]", r"[\1]"),
    ("re", r"{\s*([^}]*?)\s*}", r"{\1}"),
    ("re", r"\"\s*([^\"]*?)\s*\"", r'"\1"'),
    ("re", r"'\s*([^']*?)\s*'", r"'\1'"),
    ("str", "= = = =", "===="),                             # section headings
    ("str", "= = =", "==="),
    ("str", "= =", "=="),
    ("str", " \N{DEGREE SIGN} ", "\N{DEGREE SIGN}"),
    ("str", " \n", "\n"),
    ("str", "\n ", "\n"),
    ("str", " N ", " 1 "),
    ("str", " 's", "'s"),
)


def wikitext_detokenize(text):
    for kind, pattern, replacement in WIKITEXT_RULES:
        text = text.replace(pattern, replacement) if kind == "str" else re.sub(pattern, replacement, text)
    return text


def identity(text):
    return text


def get_detokenizer(path):
    """The detokenizer for a data file: WikiText rules for ``wiki*`` files, none otherwise."""
    return wikitext_detokenize if os.path.basename(path).startswith("wiki") else identity
