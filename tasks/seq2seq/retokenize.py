"""Re-tokenise decoded model output the way the references were tokenised, before scoring.

A BERT model decodes to lower-cased word pieces joined by spaces (``he said " it ' s 3 , 000 "``), while
the CNN/DM references of the original evaluation are PTB-tokenised (``he said `` it 's 3,000 ''``).
ROUGE counts tokens, so the original rewrote predictions and references into PTB conventions first.
The rules, their order and their quirks (e.g. the acronym rule's look-ahead) are the original's, since
they move the reported numbers.
"""

import re
import string

# Which re-tokenisation the original applied (tasks/seq2seq/finetune.py): PTB rules for every
# BERT-vocabulary model ("cnn_dm"), only the unknown-word marker for Gigaword ("gigaword"), nothing
# otherwise ("cnn_dm_org", GPT-2 models decode to natural text already).
RETOKENIZERS = ("cnn_dm", "gigaword", "cnn_dm_org")


def retokenizer_for(config):
    """The :data:`RETOKENIZERS` name the original used for ``config`` (tokenizer type and task)."""
    if config.data.tokenizer_type == "BertWordPieceTokenizer":
        return "cnn_dm"
    if (config.task.task or "").lower() == "gigaword":
        return "gigaword"
    return "cnn_dm_org"


def fix_tokenization(text, dataset="cnn_dm"):
    """Rewrite decoded text for scoring: ``dataset`` is one of :data:`RETOKENIZERS`."""
    if dataset == "cnn_dm_org":
        return text
    if dataset == "gigaword":
        return text.replace("[UNK]", "UNK")
    if dataset != "cnn_dm":
        raise ValueError(f"unknown re-tokenisation {dataset!r}; expected one of {', '.join(RETOKENIZERS)}")
    return " ".join(_PtbRewriter(text.split()).run())


def _is_number(token):
    """Digits and thousands commas only (``3``, ``3,000``)."""
    return all(ch.isdigit() or ch == "," for ch in token)


class _PtbRewriter:
    """One left-to-right pass over the whitespace tokens; each rule either rewrites the last output
    token or appends new ones, and says how many input tokens it consumed."""

    def __init__(self, tokens):
        self.tokens, self.out = tokens, []
        self.open_double = self.open_single = False
        self.glue_next = False   # the previous token ended with a dash that joins the next word

    def peek(self, offset):
        index = self.i + offset
        return self.tokens[index] if index < len(self.tokens) else None

    def run(self):
        self.i = 0
        while self.i < len(self.tokens):
            glue, self.glue_next = self.glue_next, False
            self.i += self.step(self.tokens[self.i], glue)
        return self.out

    def step(self, tok, glue):
        out, nxt = self.out, self.peek(1)
        if tok == '"':                                          # straight quotes become `` / ''
            out.append("''" if self.open_double else "``")
            self.open_double = not self.open_double
            return 1
        if tok == "'" and out and out[-1].endswith("n") and nxt == "t":    # don ' t -> do n't
            out[-1] = out[-1][:-1]
            out.append("n't")
            return 2
        if tok == "'" and nxt in ("s", "d", "ll"):               # it ' s -> it 's
            out.append("'" + nxt)
            return 2
        if tok == "'":                                          # single quotes become ` / '
            out.append("'" if self.open_single else "`")
            self.open_single = not self.open_single
            return 1
        if tok == "." and nxt == "." and self.peek(2) == ".":    # . . . -> ...
            out.append("...")
            return 3
        if tok == "," and out and _is_number(out[-1]) and nxt is not None and _is_number(nxt):
            out[-1] += "," + nxt                                # 3 , 000 -> 3,000
            return 2
        if tok == "." and out and out[-1].isdigit() and nxt is not None and nxt.isdigit():
            out[-1] += "." + nxt                                # 3 . 03 -> 3.03
            return 2
        if tok == "." and out and _single_letter(out[-1]) and _single_letter(nxt) and self.peek(2) == ".":
            return self.acronym()                               # u . n . -> u.n.
        if tok == "-":
            return self.dash(nxt)
        if glue and out and tok[0] not in string.punctuation:   # well- known -> well-known
            out[-1] += tok
            return 1
        out.append(tok)
        return 1

    def acronym(self):
        # The original's look-ahead checks the token *after* each letter for a letter, so only the first
        # ". x ." is merged in practice; kept as is because it changes the scores.
        end = self.i + 3
        while end + 2 < len(self.tokens) and _single_letter(self.tokens[end + 1]) and self.tokens[end + 2] == ".":
            end += 2
        self.out[-1] += "".join(self.tokens[self.i:end])
        return end - self.i

    def dash(self, nxt):
        out = self.out
        if nxt == "-":
            out.append("--")
            return 2
        if self.i in (0, len(self.tokens) - 1):
            out.append("-")
            return 1
        # ``not in string.punctuation`` is a substring test in the original: a multi-character word is
        # never "in" it, a lone punctuation mark is.
        if out[-1] not in string.punctuation and nxt[0] not in string.punctuation:
            out[-1] += "-"
            self.glue_next = True
            return 1
        out.append("-")
        return 1


def _single_letter(token):
    return token is not None and len(token) == 1 and token.isalpha()


# SQuAD answers decoded from BERT pieces: glue hyphens, times, "'s", "u.s." and numbers back together.
_SQUAD_RULES = (
    ("str", " - ", "-"),
    ("str", " \u2013 ", "\u2013"),
    ("re", r"\ba \. m \.\b", "a.m."),
    ("re", r"\ba \. m\b", "a.m"),
    ("re", r"\bp \. m \.\b", "p.m."),
    ("re", r"\bp \. m\b", "p.m"),
    ("re", r"\b' s\b", "'s"),
    ("re", r"\bu \. s \.\b", "u.s."),
    ("re", r"\bu \. s\b", "u.s"),
)


def squad_fix_tokenization(text):
    """A decoded SQuAD answer with BERT's spacing undone where the original undid it; then
    ``3 , 000`` -> ``3,000`` (at most three digits after a comma), ``3 . 5`` -> ``3.5``, ``10 : 30`` -> ``10:30``."""
    for kind, pattern, replacement in _SQUAD_RULES:
        text = text.replace(pattern, replacement) if kind == "str" else re.sub(pattern, replacement, text)
    tokens = text.split()
    i = 0
    while i < len(tokens):
        if tokens[i] in (",", ".", ":") and 0 < i < len(tokens) - 1:
            left, right = tokens[i - 1], tokens[i + 1]
            if left[-1].isdigit() and right[0].isdigit() and (tokens[i] != "," or len(right) <= 3):
                tokens[i - 1:i + 2] = [left + tokens[i] + right]
                i -= 1
        i += 1
    return " ".join(tokens)


# The Yahoo blank-infilling output: BERT's spacing of quotes, contractions and abbreviations undone.
_BLANK_RULES = (("` `", "``"), ("' '", "''"), ("n ' t", "n't"), ("' s", "'s"), ("' m", "'m"), ("' re", "'re"),
                (". . .", "..."), (" . .", " .."), ("- -", "--"), ("u . s .", "u.s."), ("u . k .", "u.k."),
                ("e . g .", "e.g."))


def blank_fix_tokenization(text):
    """Re-tokenise a filled-in Yahoo blank text as the original did before scoring it."""
    for old, new in _BLANK_RULES:
        text = text.replace(old, new)
    return text
