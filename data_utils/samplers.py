"""Samplers for pretraining (spec section 6.3): which dataset indices form which batch, on which rank.

* :class:`SequentialSampler` -- 0, 1, 2, ... (the content is still random: ``BlockDataset`` seeds each item
  from its index).
* :class:`RandomSampler` -- ``--shuffle``: draws **with replacement**, seeded by ``(seed, epoch)``.  Indices
  are generated in fixed blocks, each from its own seeded generator, so position ``p`` of an epoch is computed
  without generating the positions before it (an exact, O(1) resume).
* :class:`DistributedBatchSampler` -- cuts the index stream into global batches of ``batch_size x world_size``
  and gives data-parallel rank ``r`` the contiguous slice ``[r*batch_size, (r+1)*batch_size)``.  It yields
  ``(iteration, indices)`` from :meth:`~DistributedBatchSampler.batches`, where ``iteration`` is the global
  batch index counted from the start of training (across epochs); ``start_iter`` resumes exactly: a sampler
  started at ``k`` yields the same batches as an uninterrupted one from its batch ``k`` on.

Deviations from the original: the random stream is numpy's (block-seeded) instead of one big
``torch.randint`` (same distribution, not the same numbers); the seed is ``--seed + epoch`` instead of the
epoch alone; without replacement (the original crashed there) a seeded permutation is used.
"""

from __future__ import annotations

import itertools
from typing import Iterator, List, Optional, Tuple

import numpy as np
import torch.utils.data

__all__ = ['SequentialSampler', 'RandomSampler', 'DistributedBatchSampler']


class SequentialSampler(torch.utils.data.Sampler):
    """``0 .. n-1``, resumable at any position."""

    def __init__(self, data_source_or_len):
        super().__init__()
        self.n = data_source_or_len if isinstance(data_source_or_len, int) else len(data_source_or_len)

    def __len__(self) -> int:
        return self.n

    def set_epoch(self, epoch: int) -> None:
        """Sequential order does not depend on the epoch."""

    def iter_from(self, start: int) -> Iterator[int]:
        return iter(range(start, self.n))

    def __iter__(self) -> Iterator[int]:
        return self.iter_from(0)


class RandomSampler(torch.utils.data.Sampler):
    """Random indices into a dataset of ``n`` items, ``num_samples`` per epoch (default ``n``).

    With ``replacement`` (the pretraining default), block ``b`` of :attr:`BLOCK` indices comes from
    ``np.random.default_rng([seed, epoch, b])``; without, one permutation per epoch from
    ``np.random.default_rng([seed, epoch])`` (memory ``8 n`` bytes)."""

    BLOCK = 8192

    def __init__(self, data_source_or_len, replacement: bool = True, num_samples: Optional[int] = None,
                 seed: int = 0):
        super().__init__()
        self.n = data_source_or_len if isinstance(data_source_or_len, int) else len(data_source_or_len)
        if self.n <= 0:
            raise ValueError('RandomSampler needs a non-empty dataset')
        self.replacement = replacement
        self._num_samples = num_samples
        if num_samples is not None and num_samples < 0:
            raise ValueError('num_samples must not be negative')
        if not replacement and num_samples is not None and num_samples > self.n:
            raise ValueError('without replacement num_samples cannot exceed the dataset size')
        self.seed = int(seed) % 2 ** 63
        self.epoch = 0

    @property
    def num_samples(self) -> int:
        return self.n if self._num_samples is None else self._num_samples

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _block(self, b: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, self.epoch, b])
        return rng.integers(0, self.n, size=self.BLOCK, dtype=np.int64)

    def iter_from(self, start: int) -> Iterator[int]:
        """Indices of this epoch from position ``start`` on."""
        end = self.num_samples
        if start >= end:
            return
        if not self.replacement:
            perm = np.random.default_rng([self.seed, self.epoch]).permutation(self.n)
            yield from perm[start:end].tolist()
            return
        b, offset = divmod(start, self.BLOCK)
        pos = start
        while pos < end:
            block = self._block(b)[offset:offset + (end - pos)]
            yield from block.tolist()
            pos += len(block)
            b, offset = b + 1, 0

    def __iter__(self) -> Iterator[int]:
        return self.iter_from(0)


class DistributedBatchSampler(torch.utils.data.Sampler):
    """Global batches of ``batch_size * world_size`` indices from ``sampler``; rank ``rank`` gets its
    contiguous ``batch_size`` slice.  The last incomplete global batch of an epoch is dropped (ranks stay in
    step).

    ``start_iter`` is counted in optimizer iterations as ``--resume-dataloader`` uses it: iteration ``k`` with
    ``gradient_accumulation_steps = a`` starts at global batch ``k * a`` (the original's
    ``start_iter * effective_batch_size``).  It may exceed one epoch (the epoch is derived from it).  As in the
    original, ``start_iter`` is reset to 0 once the first batch was produced, so a new iterator starts over.

    ``num_epochs`` passes over the sampler (``None``: endless); epoch ``e`` calls ``sampler.set_epoch(e)``.
    :meth:`batches` yields ``(iteration, indices)``; iterating the sampler itself yields lists of
    ``(iteration, index)`` pairs, the form a ``DataLoader(batch_sampler=...)`` hands to its dataset (see
    :class:`data_utils.configure_data.IterationTagged`)."""

    def __init__(self, sampler, batch_size: int, rank: int = 0, world_size: int = 1, start_iter: int = 0,
                 gradient_accumulation_steps: int = 1, num_epochs: Optional[int] = 1):
        super().__init__()
        if batch_size <= 0 or world_size <= 0:
            raise ValueError('batch_size and world_size must be positive')
        if not 0 <= rank < world_size:
            raise ValueError(f'rank {rank} outside a world of {world_size}')
        self.sampler = sampler
        self.batch_size = int(batch_size)
        self.rank = int(rank)
        self.world_size = int(world_size)
        self.global_batch_size = self.batch_size * self.world_size
        self.start_iter = int(start_iter)
        self.gradient_accumulation_steps = max(1, int(gradient_accumulation_steps or 1))
        self.num_epochs = num_epochs
        if self.batches_per_epoch == 0:
            raise ValueError(f'{len(sampler)} samples are fewer than one global batch of {self.global_batch_size} '
                             f'({self.batch_size} per rank x {self.world_size} data-parallel ranks)')

    @property
    def batches_per_epoch(self) -> int:
        return len(self.sampler) // self.global_batch_size

    def __len__(self) -> int:
        """Batches per epoch (the original's ``len(loader)``)."""
        return self.batches_per_epoch

    def _epoch_indices(self, epoch: int, first_batch: int) -> Iterator[int]:
        if hasattr(self.sampler, 'set_epoch'):
            self.sampler.set_epoch(epoch)
        start = first_batch * self.global_batch_size
        if hasattr(self.sampler, 'iter_from'):
            return self.sampler.iter_from(start)
        return itertools.islice(iter(self.sampler), start, None)

    def batches(self) -> Iterator[Tuple[int, List[int]]]:
        """``(iteration, this rank's indices)`` from ``start_iter`` on."""
        per_epoch = self.batches_per_epoch
        first = self.start_iter * self.gradient_accumulation_steps
        epoch, offset = divmod(first, per_epoch)
        lo, hi = self.rank * self.batch_size, (self.rank + 1) * self.batch_size
        while self.num_epochs is None or epoch < self.num_epochs:
            stream = self._epoch_indices(epoch, offset)
            for b in range(offset, per_epoch):
                batch = list(itertools.islice(stream, self.global_batch_size))
                if len(batch) < self.global_batch_size:  # a sampler shorter than it said
                    break
                self.start_iter = 0
                yield epoch * per_epoch + b, batch[lo:hi]
            epoch, offset = epoch + 1, 0

    def __iter__(self) -> Iterator[List[Tuple[int, int]]]:
        for iteration, indices in self.batches():
            yield [(iteration, i) for i in indices]
