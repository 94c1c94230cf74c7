"""Character offsets of BERT WordPiece tokens in the text they came from.

Extractive SQuAD scores the answer *text*, but a BERT model generates lower-cased, accent-stripped
word pieces.  When the generated ids occur in the context's ids, the original mapped them back to the
context's own characters through the offsets of Hugging Face's fast tokenizer.  This module computes
the same offsets from our tokenizer alone: BERT's normalisation (drop control characters, lower-case,
strip accents) keeps every character's origin, and the pieces are then found one after the other in
the normalised text.  ``[UNK]`` stands for one whole BERT "basic token" (a run of characters up to
white space, punctuation or a CJK ideograph; or that single punctuation/CJK character).
"""

import unicodedata


def _is_control(char):
    if char in "\t\n\r":
        return False
    return unicodedata.category(char) in ("Cc", "Cf")


def _is_punctuation(char):
    """BERT's definition: every non-alphanumeric ASCII printable, plus Unicode category P*."""
    code = ord(char)
    if 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126:
        return True
    return unicodedata.category(char).startswith("P")


def _is_cjk(char):
    code = ord(char)
    return (0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0x20000 <= code <= 0x2A6DF
            or 0x2A700 <= code <= 0x2B73F or 0x2B740 <= code <= 0x2B81F or 0x2B820 <= code <= 0x2CEAF
            or 0xF900 <= code <= 0xFAFF or 0x2F800 <= code <= 0x2FA1F)


def _stands_alone(char):
    return _is_punctuation(char) or _is_cjk(char)


def normalize(text):
    """BERT's uncased normalisation of ``text``: ``(normalised string, origin index of each of its
    characters)``."""
    chars, origins = [], []
    for index, char in enumerate(text):
        if char in ("\x00", "\ufffd") or _is_control(char):
            continue
        for piece in unicodedata.normalize("NFD", char.lower()):
            if unicodedata.category(piece) != "Mn":
                chars.append(piece)
                origins.append(index)
    return "".join(chars), origins


def wordpiece_offsets(tokenizer, text, ids):
    """``[(start, end)]`` character span in ``text`` of each id of ``ids`` (the encoding of ``text``),
    or ``None`` when the pieces cannot be found in order (e.g. a tokenizer that is not WordPiece)."""
    chars, origins = normalize(text)
    unk_id = tokenizer.get_command("unk").Id
    offsets, position = [], 0
    for token_id in ids:
        while position < len(chars) and chars[position].isspace():
            position += 1
        if position >= len(chars):
            return None
        if token_id == unk_id:
            end = position + 1
            if not _stands_alone(chars[position]):
                while end < len(chars) and not (chars[end].isspace() or _stands_alone(chars[end])):
                    end += 1
        else:
            token = tokenizer.IdToToken(token_id)
            piece = normalize(token[2:] if token.startswith("##") else token)[0]
            if not piece or not chars.startswith(piece, position):
                return None
            end = position + len(piece)
        offsets.append((origins[position], origins[end - 1] + 1))
        position = end
    return offsets
