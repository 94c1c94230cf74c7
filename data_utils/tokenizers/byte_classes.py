"""GPT-2's byte-level alphabet and character classes, shared by the pure-Python byte-level BPE
(:mod:`.byte_bpe`) and the fast Rust-backed one (:mod:`.fast`), which checks its pre-tokenizer against them.

Owns: the byte -> stand-in character map, the Unicode white-space set, the letter / number / space / other
classes and GPT-2's splitting expression built from them.  Imports nothing of the project, so both
tokenizers depend on it and not on each other.
"""

from __future__ import annotations

import functools
import re
import unicodedata

# The Unicode White_Space property (what the original's `regex` module means by \s). Python's `re` would
# also count U+001C..U+001F, which GPT-2 treats as symbols.
WHITE_SPACE = frozenset('\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008'
                        '\u2009\u200a\u2028\u2029\u202f\u205f\u3000')


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> stand-in character map: printable Latin-1 bytes stand for themselves, the other 68
    bytes get the characters from U+0100 on, so every token is a printable string."""
    keep = list(range(ord('!'), ord('~') + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    mapping = {b: chr(b) for b in keep}
    extra = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping


def char_class(ch: str) -> str:
    """The pre-tokenizer's class of one character: 'L' letter, 'N' number, 'S' white space, 'O' other."""
    if ch in WHITE_SPACE:
        return 'S'
    if ch.isalpha():  # exactly the categories Lu, Ll, Lt, Lm, Lo
        return 'L'
    if unicodedata.category(ch)[0] == 'N':
        return 'N'
    return 'O'


def _class_ranges(wanted: str) -> str:
    """Regex character-class body covering every code point of class `wanted`."""
    ranges: list[list[int]] = []
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        if char_class(chr(cp)) == wanted:
            if ranges and ranges[-1][1] == cp - 1:
                ranges[-1][1] = cp
            else:
                ranges.append([cp, cp])
    return ''.join(re.escape(chr(a)) if a == b else f'{re.escape(chr(a))}-{re.escape(chr(b))}' for a, b in ranges)


@functools.lru_cache(maxsize=1)
def gpt2_pretokenizer() -> re.Pattern:
    """GPT-2's splitting expression with explicit Unicode classes (letters L, numbers N, white space S):
    's|'t|'re|'ve|'m|'ll|'d| ?L+| ?N+| ?[^SLN]+|S+(?!non-S)|S+"""
    letters, numbers = _class_ranges('L'), _class_ranges('N')
    space = ''.join(re.escape(c) for c in sorted(WHITE_SPACE))
    pattern = (rf"'s|'t|'re|'ve|'m|'ll|'d| ?[{letters}]+| ?[{numbers}]+| ?[^{space}{letters}{numbers}]+"
               rf"|[{space}]+(?![^{space}])|[{space}]+")
    return re.compile(pattern)
