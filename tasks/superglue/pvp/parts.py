"""The pieces a pattern is made of, and the two operations on them: placing continuous-prompt
tokens and truncating to the sequence length.

A pattern returns two lists of parts (``parts_a`` and ``parts_b``: the second is truncated
independently, as PET's text_b side).  A part is one of

* a string (encoded with the tokenizer; leading spaces matter, they are part of the text),
* ``shortenable(text)``: a string the truncation may cut from the end,
* :data:`MASK`: the position to fill,
* :data:`SLOT`: where continuous-prompt tokens go with ``--continuous-prompt`` (dropped otherwise).

Parts are concatenated with nothing in between.
"""

import math
import string

from ..errors import TaskConfigError


class _Mask:
    """The placeholder of the blank (becomes the tokenizer's ``[MASK]`` id)."""

    def __repr__(self):
        return "MASK"


MASK = _Mask()
SLOT = None  # a continuous-prompt position; the original used None too


def shortenable(text):
    """Mark ``text`` as a part the truncation may shorten."""
    return text, True


def remove_final_punc(text):
    """``text`` without trailing ASCII punctuation (works on shortenable parts too)."""
    if isinstance(text, tuple):
        return remove_final_punc(text[0]), text[1]
    return text.rstrip(string.punctuation)


def lowercase_first(text):
    """``text`` with its first character lower-cased (works on shortenable parts too)."""
    if isinstance(text, tuple):
        return lowercase_first(text[0]), text[1]
    return text[:1].lower() + text[1:]


def place_prompts(parts_a, parts_b, num_prompt_tokens, enabled):
    """Replace the :data:`SLOT` markers.

    Without continuous prompts the slots disappear.  With them, the ``num_prompt_tokens`` tokens are
    spread over the slots in order, ``ceil(tokens / slots)`` per slot until they run out (later
    slots get none); a slot becomes the integer count of placeholder tokens it holds.  Returns the
    new lists and the number of slots seen.
    """
    slots = sum(part is SLOT for part in list(parts_a) + list(parts_b))
    if not enabled or not slots:
        return [p for p in parts_a if p is not SLOT], [p for p in parts_b if p is not SLOT], slots
    per_slot, left = math.ceil(num_prompt_tokens / slots), num_prompt_tokens

    def fill(parts):
        nonlocal left
        filled = []
        for part in parts:
            if part is not SLOT:
                filled.append(part)
            elif left > 0:
                take = min(per_slot, left)
                filled.append(take)
                left -= take
        return filled

    return fill(parts_a), fill(parts_b), slots


def encode_parts(parts, tokenizer, mask_id, prompt_id):
    """Parts -> ``[(ids, shortenable)]``: strings through the tokenizer, :data:`MASK` -> ``[mask_id]``,
    an integer n (placed prompt tokens) -> n copies of ``prompt_id``, id lists kept as they are."""
    encoded = []
    for part in parts:
        content, short = part if isinstance(part, tuple) else (part, False)
        if isinstance(content, str):
            ids = tokenizer.EncodeAsIds(content).tokenization
        elif content is MASK:
            ids = [mask_id]
        elif isinstance(content, int):
            ids = [prompt_id] * content
        else:
            ids = content
        encoded.append((list(ids), short))
    return encoded


def _length(parts, only_shortenable=False):
    return sum(len(ids) for ids, short in parts or () if short or not only_shortenable)


def _drop_last_token(parts, side):
    """Remove one token from the end of the last non-empty shortenable part."""
    candidates = [i for i, (ids, short) in enumerate(parts or ()) if short and ids]
    if not candidates:
        raise TaskConfigError(f"the pattern does not fit --seq-length: nothing shortenable is left in part {side}")
    i = candidates[-1]
    parts[i] = (parts[i][0][:-1], True)


def truncate(parts_a, parts_b, answer, max_length):
    """Shorten ``parts_a``/``parts_b`` in place until the sample fits ``max_length``.

    The sample holds ``[CLS]`` + A + B + ``[eos]`` and then the answer (``[sop]`` + answer[:-1], i.e.
    ``len(answer)`` tokens) or, without one (``answer`` empty or ``None``), a lone ``[sop]``.  Each
    removed token comes from whichever side has more shortenable tokens (B on a tie).  Returns
    whether anything was removed.
    """
    answer_length = len(answer) if answer else 1
    excess = _length(parts_a) + _length(parts_b) + answer_length + 2 - max_length
    for _ in range(max(excess, 0)):
        if _length(parts_a, True) > _length(parts_b, True):
            _drop_last_token(parts_a, "A")
        else:
            _drop_last_token(parts_b, "B")
    return excess > 0


def flatten(parts):
    """The token ids of a part list, in order (``None`` stays ``None``)."""
    return None if parts is None else [token for ids, _ in parts for token in ids]
