"""`ChineseSPTokenizer` (GLM-Large-Chinese, GLM-10B-Chinese): the `cog-pretrain.model` SentencePiece model
(50000 pieces) plus GLM command tokens from 50000 on.

The model is not shipped: it comes from --tokenizer-path (the file or its directory), $GLM_VOCAB_DIR or
--cache-dir. Text goes to SentencePiece unchanged (its own NFKC normalisation turns '，' into ',' and so on);
characters the model lacks encode to 0 (`<unk>`) and decode to ' ⁇ '. Two original quirks are kept:
without --fix-command-token `[gMASK]` has `<|endofpiece|>`'s id 50007 (see command_tokens.py), and
`IdToToken(0)` / `IdToToken(1)` return the type tokens '<str0>' / '<str1>' instead of '<unk>' / '<s>'.
"""

from __future__ import annotations

import functools
from typing import Callable, Optional

from .base import Tokenizer, unassigned_token
from .command_tokens import CHINESE_SP, CommandToken, TypeToken, build_command_tokens, pad_vocab_size
from .vocab_files import find_vocab_file, ignore_default_path

__all__ = ['ChineseSPTokenizer', 'CHINESE_SP_MODEL_FILE']

CHINESE_SP_MODEL_FILE = 'cog-pretrain.model'


@functools.lru_cache(maxsize=4)
def load_sentencepiece(path: str):
    """A SentencePieceProcessor for `path` (shared: it is read-only once loaded)."""
    import sentencepiece as spm  # deferred: only the SentencePiece families need it
    return spm.SentencePieceProcessor(model_file=path)


def decode_runs(sp, ids: list[int], in_run: Callable[[int], bool], to_str: Callable[[int], str]) -> str:
    """Decode ids by handing maximal runs of ids with `in_run(id)` true to `sp.decode` and writing every
    other id as `to_str(id)`, with nothing in between (as the original ChineseSP decoder did)."""
    out: list[str] = []
    run: list[int] = []
    for i in ids:
        if in_run(i):
            run.append(i)
            continue
        if run:
            out.append(sp.decode(run))
            run = []
        out.append(to_str(i))
    if run:
        out.append(sp.decode(run))
    return ''.join(out)


class ChineseSPTokenizer(Tokenizer):
    """GLM's Chinese tokenizer; see the module docstring for the two reproduced quirks."""

    backend = 'sentencepiece'

    def __init__(self, model_type: Optional[str] = None, *, add_block_symbols: bool = False,
                 add_task_mask: bool = False, add_decoder_mask: bool = False, fix_command_token: bool = False,
                 tokenizer_path: Optional[str] = None, cache_dir: Optional[str] = None,
                 make_vocab_size_divisible_by: int = 128, **_ignored):
        path = find_vocab_file(CHINESE_SP_MODEL_FILE, tokenizer_path=ignore_default_path(tokenizer_path),
                               cache_dir=cache_dir, path_is_file=True, needed_by='ChineseSPTokenizer')
        self.sp = load_sentencepiece(str(path))
        self.model_path = path
        if self.sp.get_piece_size() != CHINESE_SP.text_vocab_size:
            raise ValueError(f'{path} is not cog-pretrain.model: it has {self.sp.get_piece_size()} pieces, '
                             f'expected {CHINESE_SP.text_vocab_size}')
        commands, num_tokens = build_command_tokens(CHINESE_SP, block=add_block_symbols, task_mask=add_task_mask,
                                                    decoder_mask=add_decoder_mask, fix=fix_command_token)
        super().__init__(commands, num_tokens, CHINESE_SP.num_text_tokens,
                         pad_vocab_size(num_tokens, make_vocab_size_divisible_by))
        self.fix_command_token = fix_command_token

    def _encode_text(self, text: str) -> list[int]:
        return self.sp.encode(text)

    def _text_tokens(self, text: str) -> list[str]:
        return self.sp.encode(text, out_type=str)

    def _text_id_to_token(self, idx: int) -> Optional[str]:
        return self.sp.id_to_piece(idx) if idx < CHINESE_SP.text_vocab_size else None

    def _text_token_to_id(self, token: str) -> Optional[int]:
        idx = self.sp.piece_to_id(token)
        return idx if self.sp.id_to_piece(idx) == token else None  # piece_to_id answers unk for unknowns

    def IdToToken(self, Id) -> str:
        """Like the original: command tokens, then the type tokens (so 0 -> '<str0>'), then the pieces."""
        if isinstance(Id, (CommandToken, TypeToken)):
            return Id.token
        idx = self._check_id(Id)
        if idx in self.command_id_map:
            return self.command_id_map[idx].token
        if idx in self.type_id_map:
            return self.type_id_map[idx].token
        token = self._text_id_to_token(idx)
        return unassigned_token(idx) if token is None else token

    def _decode(self, ids: list[int]) -> str:
        size, commands = CHINESE_SP.text_vocab_size, self.command_id_map
        return decode_runs(self.sp, ids, lambda i: i < size and i not in commands, self.IdToToken)
