"""The GLM command tokens of every tokenizer family, as declarative tables (spec §5.1).

GLM adds "command tokens" (padding, mask, start/end of piece, ...) on top of a text vocabulary. The original
computed their ids with a running counter, and the arithmetic differed per family; one ChineseSP variant even
gives two tokens the same id. Released checkpoints depend on those exact ids, so here every id is written
down explicitly, group by group, and each group says which options switch it on. The only computed ids are
the ones the original appended at "the next free id" (`[dBLOCK]` and the BERT sentinel tokens), marked NEXT.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Optional, Sequence

__all__ = [
    'CommandToken', 'TypeToken', 'Entry', 'Group', 'FamilyTable', 'NEXT', 'TYPE_TOKENS',
    'BERT_UNCASED', 'GPT2', 'ROBERTA', 'CHINESE_SP', 'TOY_CHAR', 'build_command_tokens', 'vocab_checks',
    'pad_vocab_size',
]


@dataclass(frozen=True)
class CommandToken:
    """A special token: `name` is how code asks for it (`get_command('MASK')`), `token` the literal string
    that is split out of raw text, `Id` its id. `lstrip=True` makes the token swallow the whitespace on its
    left (the text before it is right-stripped); `rstrip=True` likewise on its right."""
    name: str
    token: str
    Id: int
    lstrip: bool = False
    rstrip: bool = False


@dataclass(frozen=True)
class TypeToken:
    """A token-type (segment) id; GLM never feeds these to the model but keeps them in the interface."""
    name: str
    token: str
    Id: int


# Every original tokenizer declares the same two type tokens.
TYPE_TOKENS = (TypeToken('str0', '<str0>', 0), TypeToken('str1', '<str1>', 1))

NEXT = None  # id marker: "the next free id", i.e. the vocabulary size reached before this entry


@dataclass(frozen=True)
class Entry:
    """One command token of a table. `vocab_token` names the text-vocabulary entry that must carry `id`
    (checked when the vocabulary file is loaded, so a wrong file fails loudly instead of shifting ids)."""
    name: str
    token: str
    id: Optional[int]
    lstrip: bool = False
    vocab_token: Optional[str] = None


@dataclass(frozen=True)
class Group:
    """Entries added together when every option in `when` holds ('!x' means option x is off).
    `num_tokens` is the vocabulary size the original reported after this group (None: one more per
    NEXT entry). It is not always max(id) + 1: ChineseSP without the fix leaves `eop` outside it."""
    when: tuple
    entries: tuple
    num_tokens: Optional[int] = None


@dataclass(frozen=True)
class FamilyTable:
    """All command tokens of one tokenizer family. `text_vocab_size` is the size of the vocabulary file the
    ids were fixed for; `num_text_tokens` the figure the original reported (it excludes some specials)."""
    family: str
    text_vocab_size: int
    num_text_tokens: int
    groups: tuple


def _g(when: Sequence[str], *entries: Entry, num_tokens: Optional[int] = None) -> Group:
    return Group(tuple(when), tuple(entries), num_tokens)


E = Entry
EOT, SOP, EOP = '<|endoftext|>', '<|startofpiece|>', '<|endofpiece|>'

# BERT uncased WordPiece (30522 entries). eos is [PAD]: documents are delimited by the padding id 0.
BERT_UNCASED = FamilyTable('BertWordPieceTokenizer', 30522, 30517, (
    _g((), E('pad', '[PAD]', 0, vocab_token='[PAD]'), E('ENC', '[CLS]', 101, vocab_token='[CLS]'),
       E('MASK', '[MASK]', 103, vocab_token='[MASK]'), E('unk', '[UNK]', 100, vocab_token='[UNK]'),
       E('sep', '[SEP]', 102, vocab_token='[SEP]'), E('eos', '[PAD]', 0, vocab_token='[PAD]'), num_tokens=30522),
    _g(('block',), E('sop', SOP, 30522), E('eop', EOP, 30523), num_tokens=30524),
    _g(('block', 'task_mask'), E('gMASK', '[gMASK]', 30524), E('sMASK', '[sMASK]', 30525), num_tokens=30526),
    _g(('block', 'decoder_mask'), E('dBLOCK', '[dBLOCK]', NEXT)),
))

# GPT-2 byte-level BPE (50257 entries). Without --block-lm only pad/eos exist.
GPT2 = FamilyTable('GPT2BPETokenizer', 50257, 50256, (
    _g((), E('pad', EOT, 50256, vocab_token=EOT), E('eos', EOT, 50256, vocab_token=EOT), num_tokens=50257),
    _g(('block',), E('sop', SOP, 50257), E('eop', EOP, 50258), E('ENC', '[CLS]', 50259),
       E('MASK', '[MASK]', 50260, lstrip=True), E('sep', '[SEP]', 50261), E('unk', '[UNK]', 50262),
       num_tokens=50263),
    _g(('block', 'task_mask'), E('gMASK', '[gMASK]', 50263, lstrip=True),
       E('sMASK', '[sMASK]', 50264, lstrip=True), num_tokens=50265),
    _g(('block', 'decoder_mask'), E('dBLOCK', '[dBLOCK]', NEXT)),
))

# RoBERTa: GPT-2's merges with fairseq dictionary ids (50265 entries). The GLM command strings map onto
# RoBERTa's own specials; note '<|endoftext|>' means '</s>' (2), not the real '<|endoftext|>' entry (50260).
# gMASK/sMASK lstrip: the original shares that code with GPT-2 (no reference file covers it).
ROBERTA = FamilyTable('GPT2BPETokenizer', 50265, 50262, (
    _g((), E('pad', EOT, 2, vocab_token='</s>'), E('eos', EOT, 2, vocab_token='</s>'),
       E('sep', '[SEP]', 2, vocab_token='</s>'), E('ENC', '[CLS]', 0, vocab_token='<s>'),
       E('MASK', '[MASK]', 50264, lstrip=True, vocab_token='<mask>'), E('unk', '[UNK]', 3, vocab_token='<unk>'),
       num_tokens=50265),
    _g(('block',), E('sop', SOP, 50265), E('eop', EOP, 50266), num_tokens=50267),
    _g(('block', 'task_mask'), E('gMASK', '[gMASK]', 50267, lstrip=True),
       E('sMASK', '[sMASK]', 50268, lstrip=True), num_tokens=50269),
    _g(('block', 'decoder_mask'), E('dBLOCK', '[dBLOCK]', NEXT)),
))

# Chinese SentencePiece (cog-pretrain.model, 50000 pieces). Id 50005 is never used. Without
# --fix-command-token the original counted only two ids for sop/eop, so the next group starts on eop's id:
# [gMASK] == <|endofpiece|> == 50007. GLM-10B-Chinese was trained like that; it is reproduced, not fixed.
CHINESE_SP = FamilyTable('ChineseSPTokenizer', 50000, 50000, (
    _g((), E('pad', EOT, 50000), E('eos', EOT, 50000), E('sep', '[SEP]', 50001), E('ENC', '[CLS]', 50002),
       E('MASK', '[MASK]', 50003, lstrip=True), E('unk', '[UNK]', 50004), num_tokens=50005),
    _g(('block', '!fix'), E('sop', SOP, 50006), E('eop', EOP, 50007), num_tokens=50007),
    _g(('block', 'fix'), E('sop', SOP, 50006), E('eop', EOP, 50007), num_tokens=50008),
    _g(('block', 'task_mask', '!fix'), E('gMASK', '[gMASK]', 50007, lstrip=True),  # collides with eop
       E('sMASK', '[sMASK]', 50008, lstrip=True), num_tokens=50009),
    _g(('block', 'task_mask', 'fix'), E('sMASK', '[sMASK]', 50008, lstrip=True),
       E('gMASK', '[gMASK]', 50009, lstrip=True), num_tokens=50010),
    _g(('block', 'decoder_mask'), E('dBLOCK', '[dBLOCK]', NEXT)),
))

# "toy_char" of the reference vectors: every command always present, text character c -> ord(c) + 10.
TOY_CHAR = FamilyTable('CharacterLevelTokenizer', 256, 256, (
    _g((), E('pad', EOT, 0), E('eos', EOT, 0), E('ENC', '[CLS]', 1), E('MASK', '[MASK]', 2),
       E('sep', '[SEP]', 3), E('unk', '[UNK]', 4), E('sop', SOP, 5), E('eop', EOP, 6),
       E('gMASK', '[gMASK]', 7), E('sMASK', '[sMASK]', 8), E('dBLOCK', '[dBLOCK]', 9), num_tokens=266),
))


def _enabled(when: Iterable[str], options: dict) -> bool:
    for cond in when:
        wanted = not cond.startswith('!')
        if bool(options.get(cond.lstrip('!'), False)) != wanted:
            return False
    return True


def build_command_tokens(table: FamilyTable, *, block: bool = False, task_mask: bool = False,
                         decoder_mask: bool = False, fix: bool = False, sentinels: int = 0
                         ) -> tuple[list[CommandToken], int]:
    """Return (command tokens in the original's order, num_tokens) for the given options.

    `sentinels` = n > 0 appends the pairs `MASK{i}` / `sop{i}` (`[MASK{i}]`, `<|startofpiece{i}|>`) for
    i in 1..n-1 at the next free ids, as `--sentinel-token` did (n = --max-position-embeddings)."""
    options = {'block': block, 'task_mask': task_mask, 'decoder_mask': decoder_mask, 'fix': fix}
    tokens: list[CommandToken] = []
    num_tokens = table.text_vocab_size
    for group in table.groups:
        if not _enabled(group.when, options):
            continue
        next_free = num_tokens
        for e in group.entries:
            if e.id is NEXT:
                tokens.append(CommandToken(e.name, e.token, next_free, e.lstrip))
                next_free += 1
            else:
                tokens.append(CommandToken(e.name, e.token, e.id, e.lstrip))
        num_tokens = group.num_tokens if group.num_tokens is not None else next_free
    for i in range(1, sentinels):
        tokens.append(CommandToken(f'MASK{i}', f'[MASK{i}]', num_tokens))
        tokens.append(CommandToken(f'sop{i}', f'<|startofpiece{i}|>', num_tokens + 1))
        num_tokens += 2
    return tokens, num_tokens


def vocab_checks(table: FamilyTable) -> list[tuple[str, int]]:
    """(vocabulary entry, id it must have) pairs that pin a vocabulary file to this table."""
    return [(e.vocab_token, e.id) for g in table.groups for e in g.entries if e.vocab_token is not None]


def pad_vocab_size(num_tokens: int, multiple: int) -> int:
    """Round `num_tokens` up to a multiple of `multiple` (--make-vocab-size-divisible-by).

    The model's embedding and output layer have this many rows; rows past `num_tokens` belong to no token
    (they only make the matrix shape friendly to GPUs and to the model-parallel split)."""
    if multiple is None or multiple < 1:
        raise ValueError(f'--make-vocab-size-divisible-by must be a positive integer, got {multiple!r}')
    return -(-num_tokens // multiple) * multiple
