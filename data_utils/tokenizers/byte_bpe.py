"""Byte-level BPE: `GPT2BPETokenizer` (GLM-2B, GLM-10B with 'gpt2'; GLM-RoBERTa with 'roberta') and its
pure-Python text tokenizer.

The text tokenizer follows GPT-2: a regular expression cuts the text into contractions, letter runs, digit
runs, other-symbol runs (each optionally led by one space) and whitespace runs; each piece's UTF-8 bytes are
spelled with a printable stand-in character per byte, and BPE merges are applied lowest rank first.
The expression needs Unicode letter/number classes, which the standard `re` module lacks, so they are
built once from `unicodedata` by :mod:`.byte_classes` (about half a second, only when the reference path is used).
"""

from __future__ import annotations

import functools
import json
import logging
from pathlib import Path
from typing import Optional

from .base import Tokenizer
from .byte_classes import WHITE_SPACE, bytes_to_unicode, char_class, gpt2_pretokenizer  # noqa: F401  (re-exported)
from .command_tokens import GPT2, ROBERTA, build_command_tokens, pad_vocab_size, vocab_checks
from .fast import FastByteLevelBPE, choose_backend  # the Rust library itself is imported only when used
from .vocab_files import find_vocab_file, ignore_default_path

__all__ = ['GPT2BPETokenizer', 'ByteLevelBPE', 'GPT2_MODEL_TYPES', 'bytes_to_unicode', 'char_class',
           'WHITE_SPACE']

logger = logging.getLogger(__name__)

# --tokenizer-model-type -> (command table, vocabulary file, merges file). None means 'gpt2'.
GPT2_MODEL_TYPES = {
    'gpt2': (GPT2, 'gpt2-vocab.json', 'gpt2-merges.txt', True),
    'roberta': (ROBERTA, 'roberta-vocab.json', 'roberta-merges.txt', False),  # not shipped
}

def load_bpe_files(vocab_path: Path, merges_path: Path) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """(token -> id, merges in rank order) from a GPT-2 style vocab.json and merges.txt."""
    with open(vocab_path, encoding='utf-8') as f:
        encoder = json.load(f)
    with open(merges_path, encoding='utf-8') as f:
        lines = f.read().split('\n')
    merges = [tuple(line.split(' ')) for line in lines if line and not line.startswith('#version')]
    return encoder, merges


@functools.lru_cache(maxsize=4)
def _cached_bpe_files(vocab_path: str, merges_path: str):
    return load_bpe_files(Path(vocab_path), Path(merges_path))


class ByteLevelBPE:
    """Reference (pure Python) GPT-2 byte-level BPE over an encoder dict and a merge list."""

    def __init__(self, encoder: dict[str, int], merges: list[tuple[str, str]]):
        self.encoder = encoder
        self.decoder = {i: t for t, i in encoder.items()}
        self.ranks = {pair: rank for rank, pair in enumerate(merges)}
        self.byte_encoder = bytes_to_unicode()
        self.byte_decoder = {c: b for b, c in self.byte_encoder.items()}
        self._cache: dict[str, list[str]] = {}

    def bpe(self, word: str) -> list[str]:
        """Merge the characters of one pre-token (already byte-mapped) into vocabulary tokens."""
        cached = self._cache.get(word)
        if cached is not None:
            return cached
        parts = list(word)
        ranks = self.ranks
        while len(parts) > 1:
            best = min(range(len(parts) - 1), key=lambda i: ranks.get((parts[i], parts[i + 1]), float('inf')))
            pair = (parts[best], parts[best + 1])
            if pair not in ranks:
                break
            merged, i = [], 0
            while i < len(parts):  # merge every occurrence of the pair, left to right
                if i < len(parts) - 1 and parts[i] == pair[0] and parts[i + 1] == pair[1]:
                    merged.append(pair[0] + pair[1])
                    i += 2
                else:
                    merged.append(parts[i])
                    i += 1
            parts = merged
        if len(self._cache) < 1_000_000:  # bounded: a long corpus must not grow it forever
            self._cache[word] = parts
        return parts

    def tokenize(self, text: str) -> list[str]:
        """Byte-level BPE token strings of `text`."""
        byte_encoder = self.byte_encoder
        out: list[str] = []
        for piece in gpt2_pretokenizer().findall(text):
            # 'surrogatepass': a lone surrogate (not valid text) still becomes bytes instead of an exception
            out.extend(self.bpe(''.join(byte_encoder[b] for b in piece.encode('utf-8', 'surrogatepass'))))
        return out

    def encode_ids(self, text: str) -> list[int]:
        """Vocabulary ids of `text`."""
        encoder = self.encoder
        return [encoder[t] for t in self.tokenize(text)]

    def token_bytes(self, token: str) -> bytes:
        """The raw bytes a token string stands for."""
        return bytes(self.byte_decoder[c] for c in token)


class GPT2BPETokenizer(Tokenizer):
    """GLM's byte-level BPE tokenizer: GPT-2 (50257 entries) or RoBERTa (50265) plus GLM command tokens.

    Decoding concatenates the bytes of all tokens (command tokens contribute their literal strings) and reads
    them as UTF-8, replacing invalid sequences, so encode/decode round-trips text exactly except for the
    whitespace swallowed by lstrip command tokens."""

    def __init__(self, model_type: Optional[str] = None, *, add_block_symbols: bool = False,
                 add_task_mask: bool = False, add_decoder_mask: bool = False, tokenizer_path: Optional[str] = None,
                 cache_dir: Optional[str] = None, fast: Optional[bool] = None, make_vocab_size_divisible_by: int = 128,
                 **_ignored):
        model_type = 'gpt2' if model_type is None else model_type
        if model_type not in GPT2_MODEL_TYPES:
            raise ValueError(f'GPT2BPETokenizer: unknown --tokenizer-model-type {model_type!r}; '
                             f'choices: {", ".join(GPT2_MODEL_TYPES)}')
        table, vocab_name, merges_name, shipped = GPT2_MODEL_TYPES[model_type]
        self.model_type = model_type
        path = ignore_default_path(tokenizer_path)
        needed = f'GPT2BPETokenizer ({model_type})'
        vocab_path = find_vocab_file(vocab_name, tokenizer_path=path, cache_dir=cache_dir, shipped=shipped,
                                     needed_by=needed)
        merges_path = find_vocab_file(merges_name, tokenizer_path=path, cache_dir=cache_dir, shipped=shipped,
                                      needed_by=needed)
        encoder, merges = _cached_bpe_files(str(vocab_path), str(merges_path))
        if len(encoder) != table.text_vocab_size or any(encoder.get(t) != i for t, i in vocab_checks(table)):
            raise ValueError(f'{vocab_path} is not the {model_type} vocabulary GLM uses '
                             f'({table.text_vocab_size} entries); it has {len(encoder)}')
        commands, num_tokens = build_command_tokens(table, block=add_block_symbols, task_mask=add_task_mask,
                                                    decoder_mask=add_decoder_mask)
        super().__init__(commands, num_tokens, table.num_text_tokens,
                         pad_vocab_size(num_tokens, make_vocab_size_divisible_by))
        self.encoder = encoder
        self.vocab_path, self.merges_path = vocab_path, merges_path
        reference = ByteLevelBPE(encoder, merges)
        self._reference = reference
        self.backend, self.text_tokenizer = choose_backend(
            fast, lambda: FastByteLevelBPE(encoder, merges, reference, key=(str(vocab_path), str(merges_path))),
            reference)

    def _encode_text(self, text: str) -> list[int]:
        return self.text_tokenizer.encode_ids(text)

    def _text_tokens(self, text: str) -> list[str]:
        return self.text_tokenizer.tokenize(text)

    def _text_id_to_token(self, idx: int) -> Optional[str]:
        return self._reference.decoder.get(idx)

    def _text_token_to_id(self, token: str) -> Optional[int]:
        return self.encoder.get(token)

    def _decode(self, ids: list[int]) -> str:
        ref = self._reference
        chunks: list[bytes] = []
        for i in ids:
            cmd = self.command_id_map.get(i)
            if cmd is not None:
                chunks.append(cmd.token.encode('utf-8'))
            elif i in ref.decoder:
                chunks.append(ref.token_bytes(ref.decoder[i]))
            else:
                chunks.append(self.IdToToken(i).encode('utf-8'))
        return b''.join(chunks).decode('utf-8', errors='replace')
