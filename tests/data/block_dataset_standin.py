"""A small stand-in for the pretraining `BlockDataset` (spec §6.3), for the blocklm reference tests.

It keeps the collator's reference tests independent of the data pipeline (whose
`data_utils.datasets.BlockDataset` is cross-checked against it in test_blocklm_reference.py). It rebuilds
the samples of the reference statistics the way spec §6.3 describes: item `idx` seeds its own RNG, draws a
document with probability proportional to its token count, appends eos, and either crops a long document
(start moved to a sentence start, end right-stripped at a sentence end) or packs several documents, each
prefixed with ENC, up to `max_seq_len` tokens.
"""

import bisect
import itertools
import random

import numpy as np

SENTENCE_END_MARKS = ('.', '?', '!', ';', ':', '\n')  # the dataset's list (no Chinese marks, spec §15)


class StandInBlockDataset:
    """Samples `{'text', 'loss_mask'}` (int64 arrays of at most `max_seq_len` tokens) from tokenized
    documents (lists of ids, loss mask 1 everywhere: a PromptDataset with empty prompts)."""

    def __init__(self, documents, tokenizer, max_seq_len=512, sample_across_doc=True, non_sentence_start=0.0):
        self.documents = [list(doc) for doc in documents]
        self.tokenizer = tokenizer
        self.max_seq_len = max_seq_len
        self.sample_across_doc = sample_across_doc
        self.non_sentence_start = non_sentence_start
        self.cumulative = list(itertools.accumulate(len(doc) for doc in self.documents))
        self.total_len = self.cumulative[-1]
        self.eos = tokenizer.get_command('eos').Id
        self.enc = tokenizer.get_command('ENC').Id
        self._ends = {}

    def __len__(self):
        return 1000 * len(self.documents)

    def __getitem__(self, idx):
        # Per-index seeding: the sample depends on idx only, not on the loader's order or workers.
        seeds = random.Random(idx)
        rng = np.random.RandomState(seed=[seeds.randint(0, 2 ** 32 - 1) for _ in range(16)])
        tokens, loss_mask = self._draw_document(rng)
        excess = len(tokens) - self.max_seq_len + 1
        if excess > 0:
            tokens, loss_mask = self._crop(tokens, loss_mask, excess, rng)
        else:
            tokens, loss_mask = [self.enc] + tokens, [0] + loss_mask
            while self.sample_across_doc and len(tokens) < self.max_seq_len:
                more, more_mask = self._draw_document(rng)
                more, more_mask = [self.enc] + more, [0] + more_mask
                room = self.max_seq_len - len(tokens)
                last = len(more) >= room
                more, more_mask = self._right_strip(more, more_mask, room)
                tokens, loss_mask = tokens + more, loss_mask + more_mask
                if last:
                    break
        return {'text': np.array(tokens, dtype=np.int64), 'loss_mask': np.array(loss_mask, dtype=np.int64)}

    def _draw_document(self, rng):
        position = rng.randint(self.total_len)
        doc = self.documents[bisect.bisect_right(self.cumulative, position)]
        return doc + [self.eos], [1] * (len(doc) + 1)

    def _crop(self, tokens, loss_mask, excess, rng):
        start = rng.randint(excess)
        if rng.random() > self.non_sentence_start:
            # Move the start to just after a sentence end, backward or forward, at most half a sequence.
            backward = rng.random() < 0.5
            for _ in range(self.max_seq_len // 2):
                inside = start > 0 if backward else start < len(tokens)
                if not inside or self._is_end(tokens[start - 1]):
                    break
                start += -1 if backward else 1
        tokens, loss_mask = [self.enc] + tokens[start:], [0] + loss_mask[start:]
        if len(tokens) == 2 and tokens[1] == self.eos:
            tokens, loss_mask = [], []
        return self._right_strip(tokens, loss_mask, self.max_seq_len)

    def _right_strip(self, tokens, loss_mask, length):
        strip = len(tokens) - length
        if strip > 0:
            while strip < len(tokens) - 1 and not self._is_end(tokens[-strip - 1]):
                strip += 1
            if len(tokens) - strip < length // 2:
                strip = len(tokens) - length
            tokens, loss_mask = tokens[:-strip], loss_mask[:-strip]
        return tokens, loss_mask

    def _is_end(self, token_id):
        if token_id not in self._ends:
            token = self.tokenizer.IdToToken(token_id)
            self._ends[token_id] = any(mark in token for mark in SENTENCE_END_MARKS)
        return self._ends[token_id]
