"""`SentencePieceTokenizer`: a SentencePiece model of your own plus the GLM command tokens, and
`train_sentencepiece` to make one from a corpus.

Models trained here carry the GLM command strings as user-defined symbols (so SentencePiece itself never
cuts them), keep spaces verbatim, and use '[UNK]' as the unknown piece, which gives these ids:
0 '[UNK]', 1 '<|endoftext|>' (pad and eos), 2 '[CLS]', 3 '[MASK]', 4 '[SEP]', 5 '<|startofpiece|>',
6 '<|endofpiece|>', 7 '[gMASK]', 8 '[sMASK]', 9 '[dBLOCK]', then the learned pieces. Every command string
found in a model is a command token whatever the flags; a model without them (e.g. one trained elsewhere)
gets the missing ones appended after its last piece, as the other families do, following --block-lm /
--task-mask / the decoder-mask flags.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Optional, Union

from .base import Tokenizer
from .chinese_sp import decode_runs, load_sentencepiece
from .command_tokens import CommandToken, pad_vocab_size
from .vocab_files import DEFAULT_TOKENIZER_PATH, find_vocab_file

__all__ = ['SentencePieceTokenizer', 'train_sentencepiece', 'GLM_SYMBOLS']

EOT, SOP, EOP = '<|endoftext|>', '<|startofpiece|>', '<|endofpiece|>'

# (name, string, lstrip, option that adds it when the model lacks it); order = command-token order.
_COMMANDS = (
    ('pad', EOT, False, None), ('eos', EOT, False, None), ('ENC', '[CLS]', False, None),
    ('MASK', '[MASK]', True, None), ('sep', '[SEP]', False, None), ('unk', '[UNK]', False, None),
    ('sop', SOP, False, 'block'), ('eop', EOP, False, 'block'),
    ('gMASK', '[gMASK]', True, 'task_mask'), ('sMASK', '[sMASK]', True, 'task_mask'),
    ('dBLOCK', '[dBLOCK]', False, 'decoder_mask'),
)

# The user-defined symbols put into trained models, in id order after '[UNK]'.
GLM_SYMBOLS = (EOT, '[CLS]', '[MASK]', '[SEP]', SOP, EOP, '[gMASK]', '[sMASK]', '[dBLOCK]')


def train_sentencepiece(texts: Union[Iterable[str], str, os.PathLike], model_prefix: Union[str, os.PathLike],
                        vocab_size: int = 8000, model_type: str = 'unigram', character_coverage: float = 1.0,
                        **trainer_options) -> Path:
    """Train a SentencePiece model with the GLM command strings as user-defined symbols; return the
    path of `<model_prefix>.model` (a `.vocab` file is written beside it).

    `texts` is an iterable of sentences (e.g. Bible verses; SentencePiece skips sentences longer than
    `max_sentence_length` bytes, 4192 by default, so split long documents into lines) or the path of a text
    file with one sentence per line. Spaces are kept as they are (no dummy leading space, no collapsing), so
    the pieces of a text cut at command tokens decode back to exactly that text. Extra keyword arguments go
    to `SentencePieceTrainer.train` and override these defaults."""
    import sentencepiece as spm  # deferred: optional dependency
    prefix = Path(model_prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    options = dict(model_prefix=str(prefix), vocab_size=vocab_size, model_type=model_type,
                   character_coverage=character_coverage, user_defined_symbols=list(GLM_SYMBOLS),
                   unk_id=0, unk_piece='[UNK]', bos_id=-1, eos_id=-1, pad_id=-1,
                   add_dummy_prefix=False, remove_extra_whitespaces=False,
                   num_threads=min(16, os.cpu_count() or 1), minloglevel=2)
    options.update(trainer_options)
    if isinstance(texts, (str, os.PathLike)):
        spm.SentencePieceTrainer.train(input=str(texts), **options)
    else:
        spm.SentencePieceTrainer.train(sentence_iterator=iter(texts), **options)
    return prefix.with_name(prefix.name + '.model')


class SentencePieceTokenizer(Tokenizer):
    """A SentencePiece model (`--tokenizer-path`, default ./tokenizer.model) with GLM command tokens."""

    backend = 'sentencepiece'

    def __init__(self, model_type: Optional[str] = None, *, tokenizer_path: Optional[str] = DEFAULT_TOKENIZER_PATH,
                 add_block_symbols: bool = False, add_task_mask: bool = False, add_decoder_mask: bool = False,
                 cache_dir: Optional[str] = None, make_vocab_size_divisible_by: int = 128, **_ignored):
        path = Path(tokenizer_path or DEFAULT_TOKENIZER_PATH)
        try:
            path = find_vocab_file(path.name, tokenizer_path=str(path), cache_dir=cache_dir, path_is_file=True,
                                   needed_by='SentencePieceTokenizer')
        except FileNotFoundError as err:
            raise FileNotFoundError(f'{err}\nTrain one with data_utils.tokenizers.train_sentencepiece(texts, '
                                    f'model_prefix) and pass the .model file as --tokenizer-path.') from None
        self.sp = load_sentencepiece(str(path))
        self.model_path = path
        sp_size = self.sp.get_piece_size()
        options = {None: True, 'block': add_block_symbols, 'task_mask': add_task_mask,
                   'decoder_mask': add_decoder_mask}
        commands, next_id, in_model = [], sp_size, 0
        for name, string, lstrip, option in _COMMANDS:
            idx = self.sp.unk_id() if name == 'unk' else self._piece_id(string)
            if idx is None:
                if not options[option]:
                    continue
                if name == 'eos':  # eos shares pad's string, so it also shares the id just given to pad
                    idx = commands[0].Id
                else:
                    idx, next_id = next_id, next_id + 1
            elif name != 'eos':
                in_model += 1
            commands.append(CommandToken(name, string, idx, lstrip))
        super().__init__(commands, next_id, sp_size - in_model, pad_vocab_size(next_id, make_vocab_size_divisible_by))
        self._sp_size = sp_size

    def _piece_id(self, piece: str) -> Optional[int]:
        idx = self.sp.piece_to_id(piece)
        return idx if self.sp.id_to_piece(idx) == piece else None

    def _encode_text(self, text: str) -> list[int]:
        return self.sp.encode(text)

    def _text_tokens(self, text: str) -> list[str]:
        return self.sp.encode(text, out_type=str)

    def _text_id_to_token(self, idx: int) -> Optional[str]:
        return self.sp.id_to_piece(idx) if idx < self._sp_size else None

    def _text_token_to_id(self, token: str) -> Optional[int]:
        return self._piece_id(token)

    def _decode(self, ids: list[int]) -> str:
        # Command strings that are pieces of the model decode through SentencePiece like any piece (which
        # keeps the spaces around them); only ids past the model's pieces are written out separately.
        size = self._sp_size
        return decode_runs(self.sp, ids, lambda i: i < size, self.IdToToken)
