"""BERT WordPiece: `BertWordPieceTokenizer` (GLM-Base/Large/Doc/410M/515M) and its pure-Python text tokenizer.

The text tokenizer reproduces BERT's uncased pipeline: drop control characters, turn whitespace into spaces,
put spaces around CJK ideographs, split on whitespace, then per word (except the five literal BERT specials)
lower-case, strip accents (NFD without combining marks) and split off punctuation; finally greedy
longest-match-first WordPiece with '##' continuations, a word that cannot be covered (or longer than 100
characters) becoming [UNK]. The fast path (fast.py) gives the same ids faster.
"""

from __future__ import annotations

import functools
import logging
import unicodedata
from pathlib import Path
from typing import Optional

from .base import Tokenizer
from .command_tokens import BERT_UNCASED, build_command_tokens, pad_vocab_size, vocab_checks
from .vocab_files import find_vocab_file, ignore_default_path

__all__ = ['BertWordPieceTokenizer', 'BertTextTokenizer', 'load_wordpiece_vocab', 'BERT_MODEL_TYPES']

logger = logging.getLogger(__name__)

# The model types whose vocabulary ships with the project (both are the same uncased file).
BERT_MODEL_TYPES = ('bert-base-uncased', 'bert-large-uncased')
DEFAULT_BERT_MODEL_TYPE = 'bert-large-uncased'

# BERT's "Chinese character" blocks: CJK Unified Ideographs and their extensions and compatibility blocks.
_CJK_RANGES = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
               (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F))


@functools.lru_cache(maxsize=None)
def _char_kind(ch: str) -> str:
    """'drop' (NUL, U+FFFD, control/format/unassigned), 'space', 'cjk', 'punct' or 'other'."""
    if ch in ' \t\n\r':
        return 'space'
    if ch in '\x00\ufffd':
        return 'drop'
    cat = unicodedata.category(ch)
    if cat == 'Zs':
        return 'space'
    if cat[0] == 'C':
        return 'drop'
    cp = ord(ch)
    if any(lo <= cp <= hi for lo, hi in _CJK_RANGES):
        return 'cjk'
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126 or cat[0] == 'P':
        return 'punct'  # BERT counts all non-alphanumeric ASCII as punctuation, e.g. '$', '^', '`'
    return 'other'


def _is_punct(ch: str) -> bool:
    return _char_kind(ch) == 'punct'


def _strip_accents(word: str) -> str:
    return ''.join(c for c in unicodedata.normalize('NFD', word) if unicodedata.category(c) != 'Mn')


def _split_punctuation(word: str) -> list[str]:
    """Every punctuation character becomes its own token; runs of other characters stay together."""
    out: list[str] = []
    start = 0
    for i, ch in enumerate(word):
        if _is_punct(ch):
            if start < i:
                out.append(word[start:i])
            out.append(ch)
            start = i + 1
    if start < len(word):
        out.append(word[start:])
    return out


def load_wordpiece_vocab(path: Path) -> dict[str, int]:
    """token -> id (= line number) of a BERT vocab.txt."""
    with open(path, encoding='utf-8', newline='\n') as f:
        tokens = [line.rstrip('\n') for line in f]
    return {tok: i for i, tok in enumerate(tokens)}


@functools.lru_cache(maxsize=4)
def _cached_vocab(path: str) -> dict[str, int]:
    return load_wordpiece_vocab(Path(path))


class BertTextTokenizer:
    """Reference (pure Python) BERT basic tokenizer + WordPiece over a vocabulary dict."""

    NEVER_SPLIT = frozenset(('[UNK]', '[SEP]', '[PAD]', '[CLS]', '[MASK]'))
    MAX_CHARS_PER_WORD = 100

    def __init__(self, vocab: dict[str, int], lower: bool = True, unk_token: str = '[UNK]'):
        self.vocab = vocab
        self.lower = lower
        self.unk_token = unk_token
        self.ids_to_tokens = {i: t for t, i in vocab.items()}

    def normalize(self, text: str) -> str:
        """Cleaning, whitespace and CJK spacing, lower-casing and accent stripping of a text with no
        BERT specials in it (used to compare with the fast path character by character)."""
        return ' '.join(self._normalize_word(w) for w in self._clean(text).split(' '))

    def _clean(self, text: str) -> str:
        out = []
        for ch in text:
            kind = _char_kind(ch)
            if kind == 'drop':
                continue
            if kind == 'space':
                out.append(' ')
            elif kind == 'cjk':
                out.append(f' {ch} ')
            else:
                out.append(ch)
        return ''.join(out)

    def _normalize_word(self, word: str) -> str:
        return _strip_accents(word.lower()) if self.lower else word

    def basic_tokenize(self, text: str) -> list[str]:
        """Words and punctuation before WordPiece."""
        out: list[str] = []
        for word in self._clean(text).split():
            if word in self.NEVER_SPLIT:  # literal [CLS], [MASK], ... stay whole and upper-case
                out.append(word)
                continue
            out.extend(_split_punctuation(self._normalize_word(word)))
        return out

    def wordpiece(self, word: str) -> list[str]:
        """Greedy longest-match-first split of one word into vocabulary pieces."""
        if len(word) > self.MAX_CHARS_PER_WORD:
            return [self.unk_token]
        pieces: list[str] = []
        start, n = 0, len(word)
        while start < n:
            end = n
            match = None
            while start < end:
                piece = word[start:end] if start == 0 else '##' + word[start:end]
                if piece in self.vocab:
                    match = piece
                    break
                end -= 1
            if match is None:
                return [self.unk_token]
            pieces.append(match)
            start = end
        return pieces

    def tokenize(self, text: str) -> list[str]:
        """WordPiece token strings of `text`."""
        return [p for word in self.basic_tokenize(text) for p in self.wordpiece(word)]

    def encode_ids(self, text: str) -> list[int]:
        """Vocabulary ids of `text`."""
        vocab = self.vocab
        return [vocab[p] for p in self.tokenize(text)]


def resolve_bert_model_type(model_type: Optional[str]) -> tuple[str, bool]:
    """(vocabulary model type, lower-case?) for --tokenizer-model-type.

    Like the original: None means bert-large-uncased; any other unknown name silently used the
    bert-large-uncased vocabulary. That fallback is kept for compatibility but now logs a warning.
    Lower-casing follows the *requested* name (off if it contains '-cased' or 'chinese'), as in the original."""
    if model_type is None:
        return DEFAULT_BERT_MODEL_TYPE, True
    lower = not ('-cased' in model_type or 'chinese' in model_type)
    if model_type in BERT_MODEL_TYPES:
        return model_type, lower
    logger.warning('BertWordPieceTokenizer: unknown --tokenizer-model-type %r (known: %s); using the %s vocabulary '
                   'as the original did%s.', model_type, ', '.join(BERT_MODEL_TYPES), DEFAULT_BERT_MODEL_TYPE,
                   '' if lower else ', without lower-casing because the name says cased/chinese')
    return DEFAULT_BERT_MODEL_TYPE, lower


class BertWordPieceTokenizer(Tokenizer):
    """GLM's BERT tokenizer: uncased WordPiece (30522 entries) plus the GLM command tokens.

    Decoding joins the token strings with spaces and glues '##' continuations back on, so it returns the
    normalised (lower-cased, accent-stripped, punctuation-spaced) text, as the original did."""

    def __init__(self, model_type: Optional[str] = None, *, add_block_symbols: bool = False,
                 add_task_mask: bool = False, add_decoder_mask: bool = False, add_sentinel_token: int = 0,
                 tokenizer_path: Optional[str] = None, cache_dir: Optional[str] = None, fast: Optional[bool] = None,
                 make_vocab_size_divisible_by: int = 128, **_ignored):
        vocab_type, lower = resolve_bert_model_type(model_type)
        self.model_type = vocab_type
        self.do_lower_case = lower
        path = find_vocab_file(f'{vocab_type}-vocab.txt', tokenizer_path=ignore_default_path(tokenizer_path),
                               cache_dir=cache_dir, shipped=True, needed_by='BertWordPieceTokenizer')
        vocab = _cached_vocab(str(path))
        _check_vocab(vocab, path)
        commands, num_tokens = build_command_tokens(
            BERT_UNCASED, block=add_block_symbols, task_mask=add_task_mask, decoder_mask=add_decoder_mask,
            sentinels=add_sentinel_token)
        super().__init__(commands, num_tokens, BERT_UNCASED.num_text_tokens,
                         pad_vocab_size(num_tokens, make_vocab_size_divisible_by))
        self.vocab = vocab
        self.vocab_path = path
        reference = BertTextTokenizer(vocab, lower=lower)
        from .fast import choose_backend, FastWordPiece  # deferred: the Rust library is optional
        self.backend, self.text_tokenizer = choose_backend(
            fast, lambda: FastWordPiece(vocab, lower, reference, key=(str(path), lower)), reference)
        self._ids_to_tokens = reference.ids_to_tokens

    def _encode_text(self, text: str) -> list[int]:
        return self.text_tokenizer.encode_ids(text)

    def _text_tokens(self, text: str) -> list[str]:
        return self.text_tokenizer.tokenize(text)

    def _text_id_to_token(self, idx: int) -> Optional[str]:
        return self._ids_to_tokens.get(idx)

    def _text_token_to_id(self, token: str) -> Optional[int]:
        return self.vocab.get(token)

    def _decode(self, ids: list[int]) -> str:
        return ' '.join(self.IdToToken(i) for i in ids).replace(' ##', '')


def _check_vocab(vocab: dict[str, int], path: Path) -> None:
    if len(vocab) != BERT_UNCASED.text_vocab_size or any(vocab.get(t) != i for t, i in vocab_checks(BERT_UNCASED)):
        raise ValueError(f'{path} is not the BERT uncased vocabulary GLM uses ({BERT_UNCASED.text_vocab_size} '
                         f'entries, [PAD]=0, [UNK]=100, [CLS]=101, [SEP]=102, [MASK]=103); it has {len(vocab)} entries')
