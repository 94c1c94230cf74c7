"""`CharacterLevelTokenizer`: the "toy_char" tokenizer of the reference vectors (small test models).

Command ids 0..9 (pad = eos = 0, ENC 1, MASK 2, sep 3, unk 4, sop 5, eop 6, gMASK 7, sMASK 8, dBLOCK 9),
then one id per Latin-1 character: c -> ord(c) + 10, so num_tokens = 266. The id table is fixed whatever
the flags, because the test checkpoints were built with it. Characters above U+00FF have no id of their
own and encode to unk (the original would have produced ids past the vocabulary). Decoding concatenates
characters and command strings, so it inverts encoding.
"""

from __future__ import annotations

from typing import Optional

from .base import Tokenizer
from .command_tokens import TOY_CHAR, build_command_tokens, pad_vocab_size

__all__ = ['CharacterLevelTokenizer']


class CharacterLevelTokenizer(Tokenizer):
    """One id per character (ord + 10) after the ten toy_char command ids."""

    OFFSET = 10  # number of distinct command ids before the first character id

    def __init__(self, model_type: Optional[str] = None, *, make_vocab_size_divisible_by: int = 128, **_ignored):
        commands, num_tokens = build_command_tokens(TOY_CHAR)
        super().__init__(commands, num_tokens, TOY_CHAR.num_text_tokens,
                         pad_vocab_size(num_tokens, make_vocab_size_divisible_by))
        self._unk = self.get_command('unk').Id

    def _encode_text(self, text: str) -> list[int]:
        unk, offset = self._unk, self.OFFSET
        return [ord(c) + offset if ord(c) < 256 else unk for c in text]

    def _text_tokens(self, text: str) -> list[str]:
        return [c if ord(c) < 256 else '[UNK]' for c in text]

    def _text_id_to_token(self, idx: int) -> Optional[str]:
        return chr(idx - self.OFFSET) if self.OFFSET <= idx < self.OFFSET + 256 else None

    def _text_token_to_id(self, token: str) -> Optional[int]:
        return ord(token) + self.OFFSET if len(token) == 1 and ord(token) < 256 else None

    def _decode(self, ids: list[int]) -> str:
        return ''.join(self.IdToToken(i) for i in ids)
