"""Fast path for BERT WordPiece and GPT-2 byte-level BPE: a chunk cache in front of small, exact per-chunk
encoders, with the Hugging Face `tokenizers` library (Rust) doing the parts that are slow in Python.

Why a chunk cache: both algorithms treat the text as independent chunks (BERT: whitespace-separated words;
GPT-2: a space that follows a non-space always starts a new piece). So the text is cut into chunks by one
C-level split and the ids are assembled from a dictionary, chunk -> ids, in one C-level pass; a chunk
missing from it is encoded on the spot (`_ChunkCache.__missing__`) and remembered. Prose repeats most of
its words, so the cost of a first ("cold") pass is set by how fast a *distinct* chunk is encoded.

Why not hand every chunk (or whole documents) to the Rust pipeline: measured on this project's CPU, one
Rust `encode` costs about 9 microseconds per chunk however it is batched (`encode_batch`, pre-tokenized
input): building the Encoding object (offsets, alignments) dominates, and whole documents run at only ~2x
the pure-Python reference. So a chunk is encoded here, in three steps:
  1. split into pre-tokens with the reference's own rules, written for the characters whose treatment is
     simple -- ASCII, and the non-ASCII characters the reference itself says behave simply (BERT: a
     character that always stands alone, unchanged: punctuation, CJK; GPT-2: one of the "other" class);
  2. a pre-token that is one vocabulary entry is that entry (WordPiece tries the whole word first; for BPE
     only the entries that BPE turns into themselves count, see `_self_encoding_tokens`);
  3. any other pre-token goes through the Rust model alone (`model.tokenize`: WordPiece or BPE with no
     normaliser and no pre-tokenizer, 1.5-3 microseconds), remembered.
A chunk holding any other character goes through the whole Rust pipeline, which has the Unicode tables.

Why a check there: the Rust pipeline and the reference each carry their own Unicode tables (Rust's crates
vs. Python's `unicodedata`), so a few characters, mostly ones assigned in recent Unicode versions, are
classified differently. Every distinct non-ASCII character sent to Rust is compared once with the reference
(normalisation and splitting of small probe strings) and the verdict remembered; a chunk holding a
character the two disagree on is tokenized by the reference path. So the ids are the reference's ids.

In front of all this, when it builds, sits the compiled helper (native.py, `_native.c`): it does the
splitting, the chunk cache and the printable-ASCII chunks in C, with the same rules, and hands every other
chunk to `_encode_ids_python` below (the Python layer), caching the answer. GLM_TOKENIZER_NATIVE=0 turns it
off; without a C compiler the Python layer does everything, with the same ids.

Selection: `fast=None` (default) uses this path when the library imports, unless the environment variable
GLM_TOKENIZER_FAST is '0'; `fast=True` insists on it; `fast=False` uses the reference path.

Owns the fast encoders only; the byte alphabet and character classes it must agree with are
`byte_classes.py`, and it must not import the tokenizer classes that use it (`byte_bpe.py`, `wordpiece.py`).
"""

from __future__ import annotations

import collections
import itertools
import logging
import os
import re
from typing import Callable, Optional

from .byte_classes import bytes_to_unicode, char_class

__all__ = ['choose_backend', 'fast_available', 'FastWordPiece', 'FastByteLevelBPE', 'FAST_ENV']

logger = logging.getLogger(__name__)

FAST_ENV = 'GLM_TOKENIZER_FAST'
_ASCII = ''.join(chr(i) for i in range(128))
_ASCII_SET = frozenset(_ASCII)
_CACHE_LIMIT = 1_000_000  # distinct chunks (and pieces) remembered per tokenizer; later ones are computed each time

# BERT word separators: characters the reference turns into (or keeps as) a word break -- ASCII white space,
# the Zs spaces and the line/paragraph separators. A subset is enough for correctness: a separator left
# inside a chunk is handled by both pipelines anyway. str.split() is much faster and splits on exactly
# these plus the characters below, which BERT deletes (joining their neighbours) instead, so it is used
# when none of them occurs (seven memchr-like searches cost less than one regular-expression scan).
_BERT_SEPARATORS = re.compile('[\t\n\r \xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+')
_BERT_DELETED_SPACES = '\x0b\x0c\x1c\x1d\x1e\x1f\x85'
# BERT's pieces of a word made of printable ASCII and stand-alone characters: every ASCII character that
# is not a letter or digit is punctuation, a piece of its own, and so is every stand-alone character (the
# only non-ASCII characters let through); runs of the rest stay together.
_BERT_ALONE = '!-/:-@\\[-`{-~\x80-\U0010ffff'
_BERT_PIECES = re.compile(f'[{_BERT_ALONE}]|[^{_BERT_ALONE}]+')

# GPT-2 chunk starts: a space right after a non-space character always begins a new pre-token. When no
# space follows a white-space character, that is every space, and str.split(' ') finds the chunks.
_GPT2_CHUNK_START = re.compile(r'(?<=\S)(?= )')
# A space after a white-space character. (Python's \s is a superset of GPT-2's: erring to the safe side.
# Written with the literal first, the search runs twice as fast as r'\s '.)
_GPT2_SPACE_AFTER_SPACE = re.compile(r' (?<=\s )')


def _spelled_pieces_expression() -> re.Pattern:
    """GPT-2's splitting expression (byte_classes.gpt2_pretokenizer) with letters, digits and white space cut
    down to ASCII and everything else in the "other" class, written over the *spelled* text (each UTF-8
    byte as its stand-in character: a space is 'Ġ', a newline 'Ċ'; letters, digits and ' stand for
    themselves). On a text whose non-ASCII characters are all of the "other" class it finds exactly the
    reference's pieces, already spelled: the stand-ins of their bytes all fall in the catch-all class."""
    spell = bytes_to_unicode()
    space = re.escape(spell[ord(' ')])
    white = ''.join(re.escape(spell[b]) for b in b'\t\n\x0b\x0c\r ')
    return re.compile(rf"'s|'t|'re|'ve|'m|'ll|'d|{space}?[A-Za-z]+|{space}?[0-9]+|{space}?[^{white}A-Za-z0-9]+"
                      rf"|[{white}]+(?![^{white}])|[{white}]+")


_GPT2_SPELLED_PIECES = _spelled_pieces_expression()


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


# Per-vocabulary objects that hold no text-dependent state (the Rust objects are immutable and built with
# no internal cache), built once per process and shared by every tokenizer of that vocabulary.
_SHARED: dict = {}


def _shared(key, build):
    if key is None:
        return build()
    if key not in _SHARED:
        _SHARED[key] = build()
    return _SHARED[key]


class _ChunkCache(dict):
    """key -> ids, as tuples (concatenating tuples is faster than lists). A missing key is encoded by
    `encode(key)` and remembered: found keys stay on dict's C path, and a text needs one pass."""

    __slots__ = ('encode',)

    def __init__(self, encode: Callable[[str], tuple[int, ...]], initial=()):
        super().__init__(initial)
        self.encode = encode

    def __missing__(self, key: str) -> tuple[int, ...]:
        ids = self.encode(key)
        if len(self) < _CACHE_LIMIT:
            self[key] = ids
        return ids

    def ids(self, keys, out: Optional[list[int]] = None) -> list[int]:
        """`out` (default: a new list) extended by the ids of `keys`."""
        out = [] if out is None else out
        # list.extend of each tuple, driven from C by a deque that keeps nothing: ~20% faster than
        # list(itertools.chain.from_iterable(...)), which walks every tuple with an iterator.
        collections.deque(map(out.extend, map(self.__getitem__, keys)), maxlen=0)
        return out


class _ChunkCacheBackend:
    """Shared logic: resolving pre-tokens into ids (whole vocabulary entries, else the Rust model) and the
    whole-pipeline route with its per-character agreement check.

    A subclass supplies `_whole` (pre-token -> id, for the pre-tokens that are exactly one token),
    `_encode_one` (one chunk: the splitting rules, or `_encode_pipeline`), `_is_simple`, `_char_agrees` and
    `encode_ids`."""

    _whole: dict[str, int]

    def __init__(self, hf, reference, id_to_token: dict[int, str]):
        self._native = None  # the compiled helper's encoder, when native.load() builds one (subclasses)
        self._native_module = None
        self.hf = hf
        self._model = hf.model  # each `hf.model` access builds a new Python wrapper
        self.reference = reference
        self._id_to_token = id_to_token
        self._cache = _ChunkCache(self._encode_one, {'': ()})
        self._pieces: dict[str, tuple[int, ...]] = {}  # pre-tokens the Rust model split, see _model_ids
        self._simple: dict[str, bool] = {}  # non-ASCII character -> do the splitting rules cover it
        self._agree: set[str] = set()
        self._disagree: set[str] = set()
        self.ascii_ok = all([self._check(c) for c in _ASCII])
        if not self.ascii_ok:
            logger.warning('%s: the Rust tokenizer disagrees with the reference on ASCII characters %r; '
                           'text holding them uses the reference path', type(self).__name__, sorted(self._disagree))

    # -- characters ------------------------------------------------------------------------------------
    def _is_simple(self, ch: str) -> bool:
        """Whether the subclass's splitting rules treat non-ASCII `ch` exactly as the reference does."""
        raise NotImplementedError

    def _only_simple(self, chunk: str) -> bool:
        """Whether every non-ASCII character of `chunk` is simple (verdicts remembered)."""
        simple = self._simple
        for ch in set(chunk).difference(_ASCII_SET):
            ok = simple.get(ch)
            if ok is None:
                ok = simple[ch] = self._is_simple(ch)
            if not ok:
                return False
        return True

    def _char_agrees(self, ch: str) -> bool:
        """Whether the whole Rust pipeline treats `ch` as the reference does."""
        raise NotImplementedError

    def _check(self, ch: str) -> bool:
        try:
            ok = self._char_agrees(ch)
        except Exception:  # e.g. a lone surrogate, which Rust strings cannot hold: leave it to the reference
            ok = False
        (self._agree if ok else self._disagree).add(ch)
        return ok

    def usable(self, text: str) -> bool:
        """True when every character of `text` is known to be handled identically by the Rust pipeline."""
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

    # -- one chunk ---------------------------------------------------------------------------------------
    def _model_ids(self, piece: str) -> tuple[int, ...]:
        """Ids the Rust model alone (no normaliser, no pre-tokenizer) gives one pre-token, remembered."""
        ids = self._pieces.get(piece)
        if ids is None:
            ids = tuple([t.id for t in self._model.tokenize(piece)])
            if len(self._pieces) < _CACHE_LIMIT:
                self._pieces[piece] = ids
        return ids

    def _piece_ids(self, piece: str) -> tuple[int, ...]:
        """Ids of a chunk that is one pre-token."""
        idx = self._whole.get(piece)
        return self._model_ids(piece) if idx is None else (idx,)

    def _resolve(self, pieces) -> tuple[int, ...]:
        """Ids of a chunk's pre-tokens: a whole vocabulary entry is its id, anything else goes to the model."""
        whole_get, ids = self._whole.get, []
        for piece in pieces:
            idx = whole_get(piece)
            if idx is None:
                ids.extend(self._model_ids(piece))
            else:
                ids.append(idx)
        return tuple(ids)

    def _encode_pipeline(self, chunk: str) -> tuple[int, ...]:
        """A chunk the splitting rules do not cover: the whole Rust pipeline, or the reference."""
        if self.usable(chunk):
            return tuple(self.hf.encode(chunk).ids)
        return tuple(self.reference.encode_ids(chunk))

    def _encode_one(self, chunk: str) -> tuple[int, ...]:
        raise NotImplementedError

    # -- text ------------------------------------------------------------------------------------------
    def _use_native(self) -> None:
        """Set up the compiled helper (native.py), unless it is off or unavailable."""
        from . import native
        module = native.load()
        if module is None:
            return
        try:
            self._native = self._build_native(module)
        except (KeyError, ValueError) as error:  # a vocabulary the helper cannot represent
            logger.warning('%s: the compiled helper is not used (%s)', type(self).__name__, error)
            return
        self._native_module = module

    def _build_native(self, module):
        """The helper's encoder for this vocabulary (a capsule)."""
        raise NotImplementedError

    def __getstate__(self):
        # The helper's encoder is a C object: pickling (e.g. to a spawned worker) leaves it out, and the
        # copy builds its own, with an empty chunk cache.
        state = dict(self.__dict__)
        state['_native'] = state['_native_module'] = None
        state['_native_wanted'] = self._native is not None
        return state

    def __setstate__(self, state):
        wanted = state.pop('_native_wanted', False)
        self.__dict__.update(state)
        if wanted:
            self._use_native()

    def encode_ids(self, text: str) -> list[int]:
        """The reference path's ids for `text`: through the compiled helper, which hands every chunk it
        does not encode itself to the Python path, or through the Python path alone."""
        if self._native is not None:
            ids = self._native_module.encode(self._native, text, self._encode_ids_python)
            if ids is not None:
                return ids
        return self._encode_ids_python(text)

    def _encode_ids_python(self, text: str) -> list[int]:
        raise NotImplementedError

    def tokenize(self, text: str) -> list[str]:
        """The reference path's token strings for `text` (ids and token strings correspond one to one)."""
        id_to_token = self._id_to_token
        return [id_to_token[i] for i in self.encode_ids(text)]


class FastWordPiece(_ChunkCacheBackend):
    """BERT basic tokenizer + WordPiece with ids identical to `BertTextTokenizer`'s."""

    def __init__(self, vocab: dict[str, int], lower: bool, reference, key=None):
        def build():
            from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
            hf = Tokenizer(models.WordPiece(vocab=vocab, unk_token=reference.unk_token,
                                            max_input_chars_per_word=reference.MAX_CHARS_PER_WORD))
            hf.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                                       strip_accents=lower, lowercase=lower)
            hf.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
            # WordPiece tries the whole word first, so a piece that is a vocabulary entry is that one token
            # -- unless it is longer than WordPiece's word limit (no entry of BERT's files is).
            whole = {t: i for t, i in vocab.items() if len(t) <= reference.MAX_CHARS_PER_WORD}
            return hf, whole
        hf, self._whole = _shared(None if key is None else ('wordpiece', key, lower), build)
        super().__init__(hf, reference, reference.ids_to_tokens)
        self.lower = lower
        # A word that is exactly [CLS], [MASK], ... stays whole in BERT (the splitting rules would split it).
        self._cache.update({w: (vocab[w],) for w in reference.NEVER_SPLIT if w in vocab})
        self._use_native()

    def _build_native(self, module):
        ref = self.reference
        specials = {w: ref.vocab[w] for w in ref.NEVER_SPLIT if w in ref.vocab}
        return module.wordpiece_new(ref.vocab, self.lower, ref.vocab[ref.unk_token], ref.MAX_CHARS_PER_WORD, specials)

    def _is_simple(self, ch: str) -> bool:
        # Stands alone and unchanged whatever its neighbours (punctuation, CJK ideographs): a piece of its
        # own, which lower-casing and accent stripping of the word leave alone, and which leaves them alone.
        # (Lower-casing is checked on its own: the splitting rules lower-case but strip no accents.)
        tokens = self.reference.basic_tokenize
        return (tokens(f'a{ch}b') == ['a', ch, 'b'] and tokens(f'{ch}{ch}') == [ch, ch]
                and (not self.lower or ch.lower() == ch))

    def _char_agrees(self, ch: str) -> bool:
        ref = self.reference
        if self.hf.normalizer.normalize_str(ch) != ref.normalize(ch):
            return False
        return all(self.hf.encode(p).tokens == ref.tokenize(p) for p in (ch, f'a{ch}b', f'{ch}{ch}'))

    def _encode_one(self, chunk: str) -> tuple[int, ...]:
        # Printable, and ASCII or holding only simple non-ASCII characters: nothing for BERT to delete or
        # turn into white space, no accents, so the reference only lower-cases the word, splits off the
        # punctuation and runs WordPiece on each piece. (The five literal specials such as [MASK] are in
        # the cache from the start.)
        if chunk.isascii():
            if chunk.isprintable():
                word = chunk.lower() if self.lower else chunk
                return self._piece_ids(word) if word.isalnum() else self._resolve(_BERT_PIECES.findall(word))
        elif chunk.isprintable() and '[' not in chunk and self._only_simple(chunk):
            return self._resolve(_BERT_PIECES.findall(chunk.lower() if self.lower else chunk))
        # With '[': might be a literal [CLS]/[MASK]/... once BERT drops control characters or U+FFFD, or puts
        # spaces around a CJK character next to it ('[MASK]中' keeps [MASK] whole).
        if '[' in chunk:
            return tuple(self.reference.encode_ids(chunk))
        return self._encode_pipeline(chunk)

    def _encode_ids_python(self, text: str) -> list[int]:
        if any([c in text for c in _BERT_DELETED_SPACES]):
            return self._cache.ids(_BERT_SEPARATORS.split(text))
        return self._cache.ids(text.split())


def _self_encoding_tokens(hf, encoder: dict[str, int]) -> dict[str, int]:
    """The vocabulary entries that BPE turns into themselves: a pre-token spelled like one of them is that
    one token, with no merging to do. For GPT-2 and RoBERTa that is every entry but the special ones such
    as <|endoftext|>, which no merge builds (tests check this against the reference BPE)."""
    model = hf.model
    return {token: idx for token, idx in encoder.items() if [t.id for t in model.tokenize(token)] == [idx]}


class FastByteLevelBPE(_ChunkCacheBackend):
    """GPT-2 byte-level pre-tokenizer + BPE with ids identical to `ByteLevelBPE`'s."""

    def __init__(self, encoder: dict[str, int], merges: list[tuple[str, str]], reference, key=None):
        def build():
            from tokenizers import Tokenizer, models, pre_tokenizers
            # No Rust-side cache: our own caches sit in front of it, and a shared Rust object must hold no
            # state that depends on the text seen (a fresh tokenizer is then really cold).
            hf = Tokenizer(models.BPE(vocab=encoder, merges=merges, cache_capacity=0))
            hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
            return hf, _self_encoding_tokens(hf, encoder)
        hf, self._whole = _shared(None if key is None else ('bytebpe', key), build)
        # GPT-2 spells each byte with a stand-in character: str.translate does it for a string of bytes (an
        # ASCII string, or UTF-8 bytes read as Latin-1). Printable ASCII other than space stands for itself.
        self._byte_table = dict(reference.byte_encoder)
        self._spelled_space = reference.byte_encoder[ord(' ')]
        super().__init__(hf, reference, reference.decoder)
        self._lead = _ChunkCache(self._encode_after_space)  # ' ' + part, keyed by part: see encode_ids
        self._vocabulary_key = key
        self._use_native()

    def _build_native(self, module):
        encoder, spelled = self.reference.encoder, [self.reference.byte_encoder[b] for b in range(256)]

        def merge_ids():
            # KeyError when a merge builds a string that is not a token: the reference could not encode it
            merges = sorted(self.reference.ranks, key=self.reference.ranks.__getitem__)
            return [(encoder[a], encoder[b], encoder[a + b]) for a, b in merges]
        key = self._vocabulary_key
        merges = _shared(None if key is None else ('bytebpe-merge-ids', key), merge_ids)
        return module.bpe_new(self._whole, [encoder[c] for c in spelled], spelled, merges)

    def _is_simple(self, ch: str) -> bool:
        # The reference's "other" class: the expression's catch-all class then classifies it right.
        return char_class(ch) == 'O'

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
        return self._rust_class(ch) == char_class(ch)

    def _encode_one(self, chunk: str) -> tuple[int, ...]:
        if chunk.isascii():
            spelled = chunk.translate(self._byte_table)
            if chunk.isalpha() or (chunk[:1] == ' ' and chunk[1:].isalpha()):  # 'word', ' word': one piece
                return self._piece_ids(spelled)
        elif self._only_simple(chunk):
            # 'surrogatepass': a lone surrogate becomes bytes, as in the reference
            spelled = chunk.encode('utf-8', 'surrogatepass').decode('latin-1').translate(self._byte_table)
        else:
            return self._encode_pipeline(chunk)
        return self._resolve(_GPT2_SPELLED_PIECES.findall(spelled))

    def _encode_after_space(self, part: str) -> tuple[int, ...]:
        """Ids of the chunk ' ' + part (`part` holds no space)."""
        if not (part.isascii() and part.isprintable()):
            return self._encode_one(' ' + part)
        spelled = self._spelled_space + part  # printable ASCII but the space is spelled as it is written
        return self._piece_ids(spelled) if part.isalpha() else self._resolve(_GPT2_SPELLED_PIECES.findall(spelled))

    def _encode_ids_python(self, text: str) -> list[int]:
        if _GPT2_SPACE_AFTER_SPACE.search(text) is not None:
            return self._cache.ids(_GPT2_CHUNK_START.split(text))
        # Every chunk after the first is ' ' + part: `_lead` caches them by part, to save building strings.
        parts = text.split(' ')
        return self._lead.ids(itertools.islice(parts, 1, None), list(self._cache[parts[0]]))
