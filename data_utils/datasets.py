"""Pretraining datasets (spec section 6.3): documents from lazy caches, the train/valid/test split, and
``BlockDataset``, which packs documents into training samples for the blank-infilling collator.

* :class:`PromptDataset` / :class:`KeyDataset` -- one item per document: ``{"tokens": [...], "loss_masks":
  [...]}`` (prompt tokens have loss mask 0).
* :class:`ConcatDataset`, :class:`SplitDataset`, :func:`split_ds` -- several corpora side by side, and the
  deterministic split: document indices shuffled with ``np.random.RandomState(1234)`` and cut into contiguous
  ranges by the ``--split`` proportions.
* :class:`BlockDataset` -- ``len = 1000 x #documents``; item ``idx`` seeds its own RNG, so an item is the same
  whatever the order, worker or rank that asks for it; returns ``{'text': int64 array, 'loss_mask': int64
  array}`` of at most ``max_seq_len`` tokens, starting with ``ENC``.

Owns the datasets and the meaning of the split proportions (the ``--split`` syntax is :mod:`.splits`);
imports nothing above ``data_utils``.
"""

from __future__ import annotations

import bisect
import os
import random
from typing import Callable, List, Optional, Sequence

import numpy as np
import torch.utils.data

from .lazy import LazyArray, LazyCorpus
from .splits import split_parts

__all__ = ['PromptDataset', 'KeyDataset', 'ConcatDataset', 'SplitDataset', 'BlockDataset', 'split_ds',
           'parse_split', 'should_split', 'load_corpus_dataset', 'text_lengths']


def text_lengths(ds) -> np.ndarray:
    """Per-document token counts of ``ds`` (prompt + text): the sampling weights of :class:`BlockDataset`."""
    if hasattr(ds, 'text_lengths'):
        return np.asarray(ds.text_lengths(), dtype=np.int64)
    if hasattr(ds, 'get_text_len'):
        return np.array([ds.get_text_len(i) for i in range(len(ds))], dtype=np.int64)
    return np.array([len(d['tokens']) if isinstance(d, dict) else len(d) for d in ds], dtype=np.int64)


def _document_arrays(ds, idx: int):
    """(tokens, loss_masks) int64 arrays of document ``idx`` of any document dataset."""
    if hasattr(ds, 'document_arrays'):
        return ds.document_arrays(idx)
    item = ds[idx]
    return np.asarray(item['tokens'], dtype=np.int64), np.asarray(item['loss_masks'], dtype=np.int64)


class PromptDataset(torch.utils.data.Dataset):
    """Documents of a prompt cache: ``{"tokens": prompt + text, "loss_masks": [0]*len(prompt) + [1]*len(text)}``.

    ``prompt_loader``/``text_loader`` are :class:`~data_utils.lazy.LazyArray` fields (or any sequences of token
    lists).  With text payloads (caches built with ``--no-pre-tokenize``) the documents are tokenised here with
    ``tokenizer`` (``to_tokenize``)."""

    def __init__(self, prompt_loader, text_loader, tokenizer=None, to_tokenize: bool = False):
        if len(prompt_loader) != len(text_loader):
            raise ValueError(f'{len(prompt_loader)} prompts but {len(text_loader)} texts')
        self.prompts = prompt_loader
        self.texts = text_loader
        self.tokenizer = tokenizer
        self.to_tokenize = to_tokenize
        if to_tokenize and tokenizer is None:
            raise ValueError('a text cache needs a tokenizer to tokenise on the fly')
        self.is_lazy = isinstance(text_loader, LazyArray)

    def __len__(self) -> int:
        return len(self.texts)

    def text_lengths(self) -> np.ndarray:
        if isinstance(self.texts, LazyArray) and isinstance(self.prompts, LazyArray):
            return self.prompts.lens + self.texts.lens
        return np.array([self.get_text_len(i) for i in range(len(self))], dtype=np.int64)

    def get_text_len(self, idx: int) -> int:
        """Length of document ``idx`` (tokens; bytes for text caches, as in the original)."""
        if isinstance(self.texts, LazyArray) and isinstance(self.prompts, LazyArray):
            return int(self.prompts.lens[idx] + self.texts.lens[idx])
        return len(self.prompts[idx]) + len(self.texts[idx])

    def _ids(self, value) -> List[int]:
        if isinstance(value, str):
            return self.tokenizer.EncodeAsIds(value).tokenization if (self.to_tokenize and value) else []
        return value.tolist() if hasattr(value, 'tolist') else list(value)

    def __getitem__(self, idx: int):
        prompt, text = self._ids(self.prompts[idx]), self._ids(self.texts[idx])
        return {'tokens': prompt + text, 'loss_masks': [0] * len(prompt) + [1] * len(text)}

    def document_arrays(self, idx: int):
        """(tokens, loss_masks) of document ``idx`` as int64 arrays, without Python lists (the fast path)."""
        prompt, text = self.prompts[idx], self.texts[idx]
        if isinstance(prompt, str) or isinstance(text, str):
            item = self[idx]
            return np.asarray(item['tokens'], dtype=np.int64), np.asarray(item['loss_masks'], dtype=np.int64)
        tokens = np.concatenate([np.asarray(prompt, dtype=np.int64), np.asarray(text, dtype=np.int64)])
        mask = np.ones(len(tokens), dtype=np.int64)
        mask[:len(prompt)] = 0
        return tokens, mask


class KeyDataset(torch.utils.data.Dataset):
    """Documents of a ``wikipedia-key`` cache: the ``mask`` field holds alternating 0/1 run lengths."""

    def __init__(self, text_loader, mask_loader):
        if len(text_loader) != len(mask_loader):
            raise ValueError(f'{len(text_loader)} texts but {len(mask_loader)} masks')
        self.texts = text_loader
        self.masks = mask_loader
        self.is_lazy = isinstance(text_loader, LazyArray)

    def __len__(self) -> int:
        return len(self.texts)

    def text_lengths(self) -> np.ndarray:
        if isinstance(self.texts, LazyArray):
            return self.texts.lens.copy()
        return np.array([len(t) for t in self.texts], dtype=np.int64)

    def get_text_len(self, idx: int) -> int:
        return int(self.texts.lens[idx]) if isinstance(self.texts, LazyArray) else len(self.texts[idx])

    def __getitem__(self, idx: int):
        text = self.texts[idx]
        text = text.tolist() if hasattr(text, 'tolist') else list(text)
        mask: List[int] = []
        for i, run in enumerate(np.asarray(self.masks[idx]).tolist()):
            mask += [i % 2] * int(run)
        if len(mask) != len(text):
            raise ValueError(f'document {idx}: mask runs cover {len(mask)} tokens, text has {len(text)}')
        return {'tokens': text, 'loss_masks': mask}


class ConcatDataset(torch.utils.data.Dataset):
    """Datasets side by side (documents of several corpora)."""

    def __init__(self, datasets: Sequence):
        if not datasets:
            raise ValueError('ConcatDataset needs at least one dataset')
        self.datasets = list(datasets)
        self.cumulative_sizes = np.cumsum([len(d) for d in self.datasets]).tolist()
        self.is_lazy = all(getattr(d, 'is_lazy', False) for d in self.datasets)

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def _locate(self, idx: int):
        if idx < 0:
            idx += len(self)
        if not 0 <= idx < len(self):
            raise IndexError(f'index {idx} out of range for {len(self)} documents')
        which = bisect.bisect_right(self.cumulative_sizes, idx)
        return which, idx - (self.cumulative_sizes[which - 1] if which else 0)

    def text_lengths(self) -> np.ndarray:
        return np.concatenate([text_lengths(d) for d in self.datasets])

    def get_text_len(self, idx: int) -> int:
        which, inner = self._locate(idx)
        return self.datasets[which].get_text_len(inner)

    def __getitem__(self, idx: int):
        which, inner = self._locate(idx)
        return self.datasets[which][inner]

    def document_arrays(self, idx: int):
        which, inner = self._locate(idx)
        return _document_arrays(self.datasets[which], inner)


class SplitDataset(torch.utils.data.Dataset):
    """The documents of ``ds`` at ``split_inds`` (one part of a train/valid/test split)."""

    def __init__(self, ds, split_inds):
        self.wrapped_data = ds
        self.split_inds = np.asarray(split_inds, dtype=np.int64)
        self.is_lazy = getattr(ds, 'is_lazy', False)

    def __len__(self) -> int:
        return len(self.split_inds)

    def text_lengths(self) -> np.ndarray:
        return text_lengths(self.wrapped_data)[self.split_inds]

    def get_text_len(self, idx: int) -> int:
        return self.wrapped_data.get_text_len(int(self.split_inds[idx]))

    def __getitem__(self, idx: int):
        return self.wrapped_data[int(self.split_inds[idx])]

    def document_arrays(self, idx: int):
        return _document_arrays(self.wrapped_data, int(self.split_inds[idx]))


def parse_split(split, *, zero_valid: bool = False, zero_test: bool = False) -> List[float]:
    """``'949,50,1'`` (or ``'949/50/1'``, or one number) -> three proportions summing to 1, as the original's
    ``get_split``: parts summing to less than 1 get the rest appended (``'0.9'`` -> 0.9, 0.1, 0); ``zero_valid``
    / ``zero_test`` (``--valid-data`` / ``--test-data`` given) zero the corresponding part."""
    if isinstance(split, str):
        parts = split_parts(split)
    else:
        parts = [float(s) for s in split]
    if any(p < 0 for p in parts):
        raise ValueError(f'split proportions must not be negative: {split!r}')
    if sum(parts) < 1.0:
        parts.append(1.0 - sum(parts))
    parts = (parts + [0.0, 0.0, 0.0])[:3]
    if zero_valid:
        parts[1] = 0.0
    if zero_test:
        parts[2] = 0.0
    total = sum(parts)
    if total <= 0:
        raise ValueError(f'split proportions must not sum to 0: {split!r}')
    return [p / total for p in parts]


def should_split(split: Sequence[float]) -> bool:
    """True when more than one part of the split is non-empty."""
    return max(split) / sum(split) != 1.0


def split_ds(ds, split: Sequence[float], shuffle: bool = True, save_splits: Optional[str] = None,
             load_splits: Optional[str] = None, seed: int = 1234) -> List[Optional[SplitDataset]]:
    """Split ``ds`` into len(split) parts: shuffle the document indices with ``np.random.RandomState(seed)``
    (1234, as the original), then cut contiguous ranges.  Part sizes follow the original's arithmetic: the
    fractional remainders carry over to the next part, and a part with a non-zero proportion gets at least one
    document.  A zero proportion gives ``None``.  ``save_splits``/``load_splits`` write/read the permutation
    (``.npy``)."""
    split = np.asarray(split, dtype=np.float64)
    if split.sum() <= 0:
        raise ValueError('split cannot sum to 0')
    split = split / split.sum()
    n = len(ds)
    inds = np.arange(n)
    if shuffle:
        np.random.RandomState(seed).shuffle(inds)
    if load_splits is not None:
        inds = np.load(load_splits)
        if len(inds) != n:
            raise ValueError(f'{load_splits} holds {len(inds)} indices, the data has {n} documents')
    elif save_splits is not None:
        os.makedirs(os.path.dirname(os.path.abspath(save_splits)), exist_ok=True)
        np.save(save_splits, inds)
    parts: List[Optional[SplitDataset]] = [None] * len(split)
    start, carry = 0, 0.0
    for i, frac in enumerate(split):
        if frac == 0:
            continue
        share = n * frac
        carry += share % 1
        size = int(int(share) + carry)
        parts[i] = SplitDataset(ds, inds[start:start + max(size, 1)])
        start += size
        carry %= 1
    return parts


def load_corpus_dataset(directory: str, tokenizer=None, *, in_memory: bool = False, half_lazy: bool = False):
    """The document dataset of one cache directory (:class:`PromptDataset` or :class:`KeyDataset`).
    ``in_memory`` is ``--no-lazy-loader``; ``half_lazy`` (``--half-lazy-loader``) keeps only the first 2/3 of
    the documents, as the original did."""
    corpus = LazyCorpus(directory, in_memory=in_memory, limit_fraction=2 / 3 if half_lazy else None)
    if corpus.kind == 'key':
        return KeyDataset(corpus['text'], corpus['mask'])
    return PromptDataset(corpus['prompt'], corpus['text'], tokenizer=tokenizer, to_tokenize=not corpus.is_array)


class BlockDataset(torch.utils.data.Dataset):
    """GLM pretraining samples (spec section 6.3), deterministic per index.

    Item ``idx``: ``random.Random(idx)`` draws 16 ints that seed a ``np.random.RandomState``; a document is
    drawn with probability proportional to its token count and ``eos`` appended (loss mask 1).

    * If it has ``>= max_seq_len`` tokens: a random left crop; with probability ``1 - non_sentence_start`` the
      start moves (50/50 backward or forward, at most ``max_seq_len // 2`` steps) to just after a sentence end
      (a token whose string contains one of ``. ? ! ; :`` or a newline); ``ENC`` is prefixed, and the right end
      is cut back to a sentence end when that keeps at least half of the sequence.
    * Otherwise ``ENC + document``; unless ``sample_across_doc`` is false (``--sample-one-document``), further
      documents, each prefixed with ``ENC``, fill the remaining room (the last one cut as above).

    ``filter_english`` redraws documents until ``language_filter(text)`` (a fastText model, see
    :class:`data_utils.corpora.LanguageFilter`) accepts the decoded first 1024 tokens.
    ``sentence_end_chars`` changes the sentence-end characters (the original lacks Chinese punctuation; pass
    e.g. ``'.?!;:\\n。？！；：'`` to add it).  Returns ``{'text': int64 array, 'loss_mask': int64 array}``.
    """

    SENTENCE_END_CHARS = '.?!;:\n'

    def __init__(self, ds, tokenizer, max_seq_len: int = 1024, sample_across_doc: bool = True,
                 non_sentence_start: float = 0.0, filter_english: bool = False,
                 language_filter: Optional[Callable[[str], bool]] = None, sentence_end_chars: Optional[str] = None,
                 samples_per_document: int = 1000):
        if max_seq_len < 2:
            raise ValueError('max_seq_len must be at least 2')
        self.ds = ds
        self.ds_len = len(ds)
        self.num_samples = samples_per_document * self.ds_len
        self.max_seq_len = int(max_seq_len)
        self.tokenizer = tokenizer
        self.sample_across_doc = sample_across_doc
        self.non_sentence_start = float(non_sentence_start)
        self.filter_english = filter_english
        self.language_filter = language_filter
        if filter_english and language_filter is None:
            raise ValueError('filter_english needs a language_filter (a fastText language-id model)')
        self.sentence_end_chars = sentence_end_chars or self.SENTENCE_END_CHARS
        self.enc_id = tokenizer.get_command('ENC').Id
        self.eos_id = tokenizer.get_command('eos').Id
        lens = text_lengths(ds)
        self.weighting = np.cumsum(lens, dtype=np.int64)
        self.total_len = int(self.weighting[-1]) if len(self.weighting) else 0
        if self.total_len <= 0:
            raise ValueError('BlockDataset needs at least one non-empty document')
        self._end_cache: dict = {}

    def __len__(self) -> int:
        return self.num_samples

    # -- helpers
    def contains_sentence_end(self, tok: int) -> bool:
        """Whether token ``tok``'s string contains a sentence-end character (cached per id)."""
        tok = int(tok)
        hit = self._end_cache.get(tok)
        if hit is None:
            try:
                token = self.tokenizer.IdToToken(tok)
            except (KeyError, ValueError, IndexError):
                token = ''
            hit = any(c in token for c in self.sentence_end_chars)
            self._end_cache[tok] = hit
        return hit

    def get_document(self, data_idx: int):
        """Document ``data_idx`` with ``eos`` appended: (tokens, loss_mask) int64 arrays."""
        tokens, mask = _document_arrays(self.ds, data_idx)
        return np.append(tokens, self.eos_id), np.append(mask, 1)

    def get_weighted_samples(self, rng: np.random.RandomState):
        """Draw a document with probability proportional to its length (redrawn until English with
        ``filter_english``)."""
        while True:
            pos = rng.randint(self.total_len)
            data_idx = int(np.searchsorted(self.weighting, pos, side='right'))
            tokens, mask = self.get_document(data_idx)
            if not self.filter_english:
                return tokens, mask
            if self.language_filter(self.tokenizer.DecodeIds(tokens[:1024])):
                return tokens, mask

    def right_strip_seq(self, tokens, loss_mask, seq_length: int):
        """Cut to ``seq_length``, moving the cut back to just after a sentence end if that keeps at least
        ``seq_length // 2`` tokens."""
        strip = len(tokens) - seq_length
        if strip > 0:
            while strip < len(tokens) - 1 and not self.contains_sentence_end(tokens[-strip - 1]):
                strip += 1
            if len(tokens) - strip < seq_length // 2:
                strip = len(tokens) - seq_length
            tokens, loss_mask = tokens[:-strip], loss_mask[:-strip]
        return tokens, loss_mask

    # -- the sample
    def __getitem__(self, idx: int):
        seeder = random.Random(int(idx))
        rng = np.random.RandomState(seed=[seeder.randint(0, 2 ** 32 - 1) for _ in range(16)])
        tokens, loss_mask = self.get_weighted_samples(rng)
        enc = np.array([self.enc_id], dtype=np.int64)
        zero = np.zeros(1, dtype=np.int64)
        length = self.max_seq_len
        excess = len(tokens) - length + 1
        if excess > 0:
            start = rng.randint(excess)
            if rng.random() > self.non_sentence_start:
                moved = 0
                if rng.random() < 0.5:  # backward to the previous sentence end
                    while moved < length // 2 and start > 0 and not self.contains_sentence_end(tokens[start - 1]):
                        start -= 1
                        moved += 1
                else:  # forward to the next one (start 0 looks at the last token, as the original did)
                    while moved < length // 2 and start < len(tokens) and \
                            not self.contains_sentence_end(tokens[start - 1]):
                        start += 1
                        moved += 1
            tokens = np.concatenate([enc, tokens[start:]])
            loss_mask = np.concatenate([zero, loss_mask[start:]])
            if len(tokens) == 2 and tokens[1] == self.eos_id:
                tokens, loss_mask = tokens[:0], loss_mask[:0]
            tokens, loss_mask = self.right_strip_seq(tokens, loss_mask, length)
        else:
            pieces, masks = [enc, tokens], [zero, loss_mask]
            filled = 1 + len(tokens)
            if self.sample_across_doc:
                while filled < length:
                    new_tokens, new_mask = self.get_weighted_samples(rng)
                    new_tokens = np.concatenate([enc, new_tokens])
                    new_mask = np.concatenate([zero, new_mask])
                    room = length - filled
                    is_last = len(new_tokens) >= room
                    new_tokens, new_mask = self.right_strip_seq(new_tokens, new_mask, room)
                    pieces.append(new_tokens)
                    masks.append(new_mask)
                    filled += len(new_tokens)
                    if is_last:
                        break
            tokens, loss_mask = np.concatenate(pieces), np.concatenate(masks)
        return {'text': tokens.astype(np.int64), 'loss_mask': loss_mask.astype(np.int64)}
