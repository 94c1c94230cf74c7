"""Fast path: BERT WordPiece and GPT-2 byte-level BPE run by the Hugging Face `tokenizers` library (Rust),
behind a word cache.

Why a cache: on a long text the Rust pipeline spends most of its time on per-token bookkeeping (offsets,
alignments, Python objects), which made it only 2-5x faster than the pure-Python reference. Both pipelines
treat the text as independent chunks (BERT: whitespace-separated words; GPT-2: a space that follows a
non-space always starts a new piece), so each distinct chunk is tokenized once by Rust and its ids are
remembered; the text is then cut into chunks by one C-level regex split and assembled from the cache.

Why a check: the two pipelines are the same algorithm, but each carries its own Unicode tables (Rust's
crates vs. Python's `unicodedata`), so a few characters, mostly ones assigned in recent Unicode versions,
are classified differently. Every distinct non-ASCII character is compared once with the reference
(normalisation and splitting of small probe strings) and the verdict remembered; a chunk holding a
character the two disagree on is tokenized by the reference path. So the ids are the reference's ids.

Selection: `fast=None` (default) uses this path when the library imports, unless the environment variable
GLM_TOKENIZER_FAST is '0'; `fast=True` insists on it; `fast=False` uses the reference path.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
from typing import Callable, Optional

__all__ = ['choose_backend', 'fast_available', 'FastWordPiece', 'FastByteLevelBPE', 'FAST_ENV']

logger = logging.getLogger(__name__)

FAST_ENV = 'GLM_TOKENIZER_FAST'
_ASCII = ''.join(chr(i) for i in range(128))
_CACHE_LIMIT = 1_000_000  # distinct chunks remembered per tokenizer; later ones are computed each time

# BERT word separators: characters the reference turns into (or keeps as) a word break -- ASCII white space,
# the Zs spaces and the line/paragraph separators. A subset is enough for correctness: a separator left
# inside a chunk is handled by both pipelines anyway. str.split() is much faster and splits on exactly
# these plus five control characters (which BERT deletes, joining their neighbours), so it is used when
# none of those five occurs.
_BERT_SEPARATORS = re.compile('[\t\n\r \xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+')
_BERT_DELETED_SPACES = re.compile('[\x0b\x0c\x1c-\x1f\x85]')
# GPT-2 chunk starts: a space right after a non-space character always begins a new pre-token. When no
# space follows a white-space character, that is every space, and str.split(' ') finds the chunks.
_GPT2_CHUNK_START = re.compile(r'(?<=\S)(?= )')
_GPT2_SPACE_AFTER_SPACE = re.compile(r'\s ')


def fast_available() -> bool:
    """True when the Hugging Face `tokenizers` library can be imported."""
    try:
        import tokenizers  # noqa: F401
    except ImportError:
        return False
    return True


def choose_backend(fast: Optional[bool], make_fast: Callable[[], object], reference) -> tuple[str, object]:
    """('fast', fast backend) or ('reference', reference) according to `fast` and GLM_TOKENIZER_FAST."""
    if fast is None:
        fast = os.environ.get(FAST_ENV, '1').strip().lower() not in ('0', 'false', 'no', 'off')
        if fast and not fast_available():
            logger.warning('The Hugging Face `tokenizers` library is not installed: using the (slower) '
                           'pure-Python tokenizer. `pip install tokenizers` enables the fast path.')
            fast = False
    if not fast:
        return 'reference', reference
    if not fast_available():
        raise ImportError('fast=True needs the Hugging Face `tokenizers` library (pip install tokenizers)')
    return 'fast', make_fast()


_HF_CACHE: dict = {}  # the Rust objects are immutable and thread-safe: build each vocabulary once


class _CachedRustBackend:
    """Shared logic: chunk cache, per-character agreement check, routing to the reference path."""

    def __init__(self, hf, reference, id_to_token: dict[int, str]):
        self.hf = hf
        self.reference = reference
        self._id_to_token = id_to_token
        self._cache: dict[str, list[int]] = {'': []}
        self._agree: set[str] = set()
        self._disagree: set[str] = set()
        self.ascii_ok = all([self._check(c) for c in _ASCII])
        if not self.ascii_ok:
            logger.warning('%s: the Rust tokenizer disagrees with the reference on ASCII characters %r; '
                           'text holding them uses the reference path', type(self).__name__, sorted(self._disagree))

    # -- per-character agreement ----------------------------------------------------------------------
    def _char_agrees(self, ch: str) -> bool:
        raise NotImplementedError

    def _check(self, ch: str) -> bool:
        try:
            ok = self._char_agrees(ch)
        except Exception:  # e.g. a lone surrogate, which Rust strings cannot hold: leave it to the reference
            ok = False
        (self._agree if ok else self._disagree).add(ch)
        return ok

    def usable(self, text: str) -> bool:
        """True when every character of `text` is known to be handled identically by both paths."""
        if self.ascii_ok and text.isascii():
            return True
        unknown = set(text) - self._agree
        if not unknown:
            return True
        if unknown & self._disagree:
            return False
        return all([self._check(c) for c in unknown])  # a list: record every verdict, not just the first

    def disagreeing_characters(self) -> set[str]:
        """Characters met so far that are routed to the reference path."""
        return set(self._disagree)

    # -- encoding ---------------------------------------------------------------------------------------
    def _encode_chunk(self, chunk: str) -> list[int]:
        if self.usable(chunk):
            return self.hf.encode(chunk).ids
        return self.reference.encode_ids(chunk)

    def _encode_chunks(self, cache: dict, keys: list[str], lead: str = '') -> list[int]:
        """Ids of the chunks `lead + key` for `keys`, through `cache` (keyed by `key`)."""
        try:
            return list(itertools.chain.from_iterable(map(cache.__getitem__, keys)))
        except KeyError:
            pass
        fresh = {k: self._encode_chunk(lead + k) for k in set(keys) if k not in cache}
        if len(cache) + len(fresh) <= _CACHE_LIMIT:
            cache.update(fresh)
            return list(itertools.chain.from_iterable(map(cache.__getitem__, keys)))
        out: list[int] = []
        for k in keys:
            ids = cache.get(k)
            out.extend(fresh[k] if ids is None else ids)
        return out

    def encode_ids(self, text: str) -> list[int]:
        """The reference path's ids for `text`."""
        raise NotImplementedError

    def tokenize(self, text: str) -> list[str]:
        """The reference path's token strings for `text` (ids and token strings correspond one to one)."""
        id_to_token = self._id_to_token
        return [id_to_token[i] for i in self.encode_ids(text)]


def _cached_rust(key, build):
    if key is None:
        return build()
    if key not in _HF_CACHE:
        _HF_CACHE[key] = build()
    return _HF_CACHE[key]


class FastWordPiece(_CachedRustBackend):
    """BERT normaliser + pre-tokenizer + WordPiece in Rust, checked against `BertTextTokenizer`."""

    def __init__(self, vocab: dict[str, int], lower: bool, reference, key=None):
        def build():
            from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
            hf = Tokenizer(models.WordPiece(vocab=vocab, unk_token=reference.unk_token,
                                            max_input_chars_per_word=reference.MAX_CHARS_PER_WORD))
            hf.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                                       strip_accents=lower, lowercase=lower)
            hf.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
            return hf
        super().__init__(_cached_rust(None if key is None else ('wordpiece', key, lower), build), reference,
                         reference.ids_to_tokens)
        # A word that is exactly [CLS], [MASK], ... stays whole in BERT; the Rust pipeline would split it.
        self._cache.update({w: [vocab[w]] for w in reference.NEVER_SPLIT if w in vocab})

    def _char_agrees(self, ch: str) -> bool:
        ref = self.reference
        if self.hf.normalizer.normalize_str(ch) != ref.normalize(ch):
            return False
        return all(self.hf.encode(p).tokens == ref.tokenize(p) for p in (ch, f'a{ch}b', f'{ch}{ch}'))

    def _encode_chunk(self, chunk: str) -> list[int]:
        if '[' in chunk:  # might be a literal [CLS]/[MASK]/... once control characters are dropped
            return self.reference.encode_ids(chunk)
        return super()._encode_chunk(chunk)

    def encode_ids(self, text: str) -> list[int]:
        """The reference path's ids for `text`."""
        if _BERT_DELETED_SPACES.search(text) is None:
            words = text.split()
        else:
            words = _BERT_SEPARATORS.split(text)
        return self._encode_chunks(self._cache, words)


class FastByteLevelBPE(_CachedRustBackend):
    """GPT-2 byte-level pre-tokenizer + BPE in Rust, checked against `ByteLevelBPE`."""

    def __init__(self, encoder: dict[str, int], merges: list[tuple[str, str]], reference, key=None):
        def build():
            from tokenizers import Tokenizer, models, pre_tokenizers
            hf = Tokenizer(models.BPE(vocab=encoder, merges=merges))
            hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
            return hf
        super().__init__(_cached_rust(None if key is None else ('bytebpe', key), build), reference,
                         reference.decoder)
        self._lead: dict[str, list[int]] = {}

    def _rust_class(self, ch: str) -> str:
        """The class the Rust pre-tokenizer gives `ch`, read off how it splits probe strings: a letter
        joins a preceding letter, a number a preceding digit, a symbol a preceding '!'; white space none."""
        split = self.hf.pre_tokenizer.pre_tokenize_str
        for cls, lead in (('L', 'a'), ('N', '1'), ('O', '!')):
            if len(split(lead + ch)) == 1:
                return cls
        return 'S'

    def _char_agrees(self, ch: str) -> bool:
        # The splitting expression is the same on both sides; only its character classes can differ.
        # (BPE itself works on the byte-level strings and needs no per-character check.)
        from .byte_bpe import char_class
        return self._rust_class(ch) == char_class(ch)

    def encode_ids(self, text: str) -> list[int]:
        """The reference path's ids for `text`."""
        if _GPT2_SPACE_AFTER_SPACE.search(text) is not None:
            return self._encode_chunks(self._cache, _GPT2_CHUNK_START.split(text))
        # Every chunk after the first is ' ' + part; `_lead` caches them by `part` to save building strings.
        parts = text.split(' ')
        return (self._encode_chunks(self._cache, parts[:1])
                + self._encode_chunks(self._lead, parts[1:], lead=' '))
