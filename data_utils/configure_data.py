"""Pretraining data loaders from the original flags (spec section 6.3): corpora -> caches -> split ->
``BlockDataset`` -> resumable distributed batches -> collate.

:func:`make_pretrain_loaders` is the one entry point the training loop needs::

    train, valid, test = make_pretrain_loaders(config, tokenizer, start_iter=iteration)

Every sample handed to the collate function carries ``'iteration'``: the global batch index it belongs to,
counted from the start of training.  The blank-infilling collator seeds its per-batch RNG from it, so a
resumed run (``start_iter``) sees exactly the batches an uninterrupted run would have seen.

Owns assembling the loaders; the data-parallel rank comes from ``glm.mpu`` (the one helper,
:func:`glm.mpu.data_parallel_rank_and_size`).  Must not import the training loop, tasks or the flag parser
(``config`` is the typed :class:`glm.config.RunConfig`).
"""

from __future__ import annotations

import functools
import os
import sys
from typing import Callable, Optional, Sequence

import numpy as np
import torch
import torch.utils.data

from glm import mpu

from .corpora import CorpusError, CorpusRegistry, CorpusSpec, LanguageFilter, fasttext_model_from
from .datasets import BlockDataset, ConcatDataset, load_corpus_dataset, parse_split, should_split, split_ds
from .preprocess import cache_path_for, ensure_cache
from .samplers import DistributedBatchSampler, RandomSampler, SequentialSampler

__all__ = ['make_pretrain_loaders', 'make_data_loader', 'build_document_dataset', 'IterationTagged',
           'pad_collate']


class IterationTagged(torch.utils.data.Dataset):
    """Wraps a dataset whose items are dicts: ``tagged[(iteration, idx)]`` is ``dataset[idx]`` plus
    ``'iteration': iteration`` (the keys :class:`~data_utils.samplers.DistributedBatchSampler` yields)."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key):
        iteration, idx = key
        sample = dict(self.dataset[idx])
        sample['iteration'] = int(iteration)
        return sample


def pad_collate(samples: Sequence[dict], pad_id: int = 0) -> dict:
    """A plain collate for variable-length samples (used when ``--block-lm`` is off): ``text`` and
    ``loss_mask`` right-padded to the longest sample (pad id / 0), plus ``iteration``."""
    length = max(len(s['text']) for s in samples)
    text = torch.full((len(samples), length), int(pad_id), dtype=torch.long)
    mask = torch.zeros((len(samples), length), dtype=torch.long)
    for row, s in enumerate(samples):
        n = len(s['text'])
        text[row, :n] = torch.as_tensor(np.asarray(s['text'], dtype=np.int64))
        mask[row, :n] = torch.as_tensor(np.asarray(s['loss_mask'], dtype=np.int64))
    out = {'text': text, 'loss_mask': mask}
    if 'iteration' in samples[0]:
        out['iteration'] = torch.tensor([s['iteration'] for s in samples], dtype=torch.long)
    return out


def make_data_loader(dataset, batch_size: int, *, rank: int = 0, world_size: int = 1, shuffle: bool = False,
                     num_samples: Optional[int] = None, seed: int = 0, start_iter: int = 0,
                     gradient_accumulation_steps: int = 1, num_workers: int = 0,
                     collate_fn: Optional[Callable] = None, num_epochs: Optional[int] = None,
                     pin_memory: Optional[bool] = None) -> torch.utils.data.DataLoader:
    """A DataLoader over ``dataset`` whose batches are this rank's slices of global batches (see
    :class:`~data_utils.samplers.DistributedBatchSampler`); ``loader.batch_sampler.start_iter`` may be set
    before iterating, as the original's training loop did."""
    if shuffle:
        sampler = RandomSampler(len(dataset), replacement=True, num_samples=num_samples, seed=seed)
    else:
        sampler = SequentialSampler(len(dataset))
    batch_sampler = DistributedBatchSampler(sampler, batch_size, rank=rank, world_size=world_size,
                                            start_iter=start_iter,
                                            gradient_accumulation_steps=gradient_accumulation_steps,
                                            num_epochs=num_epochs)
    if pin_memory is None:
        pin_memory = torch.cuda.is_available()
    return torch.utils.data.DataLoader(IterationTagged(dataset), batch_sampler=batch_sampler,
                                       num_workers=num_workers, collate_fn=collate_fn or pad_collate,
                                       pin_memory=pin_memory)


def _global_rank() -> int:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank()
    return 0


def _reader_group():
    """The process group of the ranks that read data together: with model parallelism only model-parallel
    rank 0 of each group reads, and those ranks form global rank 0's data-parallel group; without it, every
    rank (``None``: the default group)."""
    return mpu.get_data_parallel_group() if mpu.model_parallel_is_initialized() else None


def _ensure_caches(specs: Sequence[CorpusSpec], tokenizer, pre_tokenize: bool, echo) -> None:
    """Global rank 0 builds missing caches; the other reading ranks wait and get rank 0's error, if any (no
    hang).  Only the ranks that read data call this (model-parallel rank 0 of each group)."""
    distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
    error = None
    if _global_rank() == 0:
        try:
            for spec in specs:
                ensure_cache(spec, tokenizer, pre_tokenize=pre_tokenize, progress=sys.stderr.isatty(), echo=echo)
        except Exception as exc:  # noqa: BLE001 - handed to every rank below
            error = f'{type(exc).__name__}: {exc}' if not isinstance(exc, CorpusError) else str(exc)
            if not distributed:
                raise
    if distributed:
        box = [error]
        # Within the reading ranks: a broadcast over all ranks would wait for model-parallel ranks > 0,
        # which never get here.
        torch.distributed.broadcast_object_list(box, src=0, group=_reader_group())
        error = box[0]
        if error is not None:
            raise CorpusError(f'building the corpus caches failed on rank 0: {error}')


def build_document_dataset(names: Sequence[str], config, tokenizer, registry: Optional[CorpusRegistry] = None,
                           echo=None):
    """Documents of the corpora ``names`` (registry names or paths), caches built when missing."""
    registry = registry if registry is not None else \
        CorpusRegistry.from_env(config.data.corpus_registry)
    cache_dir = config.data.cache_dir
    specs = [registry.resolve(name, cache_dir=cache_dir) for name in names]
    pre_tokenize = not config.data.no_pre_tokenize
    _ensure_caches(specs, tokenizer, pre_tokenize, echo)
    datasets = []
    for spec in specs:
        path = cache_path_for(spec, tokenizer, pre_tokenize)
        ds = load_corpus_dataset(path, tokenizer, in_memory=config.data.no_lazy_loader,
                                 half_lazy=config.data.half_lazy_loader)
        if len(ds) == 0:
            raise CorpusError(f'corpus {spec.name!r} has no documents (every input item was skipped or filtered; '
                              f'see the summary in {path}/meta.json)')
        datasets.append(ds)
    return ConcatDataset(datasets) if len(datasets) > 1 else datasets[0], registry


def _language_filter(config, registry: CorpusRegistry):
    if not config.data.filter_english:
        return None
    model = fasttext_model_from({'fasttext_model': registry.fasttext_model})
    if not model:
        raise CorpusError('--filter-english needs a fastText language-id model (lid.176.bin): set '
                          '"fasttext_model" in the corpus registry or $GLM_FASTTEXT_MODEL')
    return LanguageFilter(model)


def _save_test_data(path: str, ds, tokenizer) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)) or '.', exist_ok=True)
    with open(path, 'w', encoding='utf-8') as f:
        for i in range(len(ds)):
            f.write(tokenizer.DecodeIds(ds[i]['tokens']).replace('\n', ' ') + '\n')


def make_pretrain_loaders(config, tokenizer, collate_fn: Optional[Callable] = None, start_iter: int = 0,
                          valid_start_iter: int = 0, registry: Optional[CorpusRegistry] = None, echo=print):
    """``(train, valid, test)`` DataLoaders (None for an empty split) over ``config.data.train_data``.

    Flags used: ``--train-data`` (registry names or paths), ``--valid-data``/``--test-data`` (separate data; they
    zero the matching ``--split`` part), ``--split``, ``--seq-length``/``--eval-seq-length``,
    ``--batch-size``/``--eval-batch-size`` (per data-parallel rank), ``--shuffle``, ``--seed``, ``--train-iters``,
    ``--gradient-accumulation-steps``, ``--num-workers``, ``--sample-one-document``, ``--non-sentence-start``,
    ``--filter-english``, ``--cache-dir``, ``--no-pre-tokenize``, ``--no-lazy-loader``, ``--half-lazy-loader``,
    ``--save-splits``/``--load-splits``/``--save-test-data``, ``--block-lm``.  The corpus registry is
    ``$GLM_CORPORA`` (or ``config.data.corpus_registry`` when a CLI defines it).

    ``start_iter`` (optimizer iterations) resumes the training loader (``--resume-dataloader``);
    ``valid_start_iter`` the validation loader.  ``collate_fn`` defaults to
    the blank-infilling collator (:func:`~data_utils.blocklm.build_block_strategy`, given this rank's
    data-parallel rank and size) with ``--block-lm``, else :func:`pad_collate`.
    All loaders are endless (each epoch reseeds the shuffle); ``len(loader)`` is the batches per epoch."""
    if not config.data.train_data:
        raise CorpusError('no training data: pass --train-data with corpus names or paths')
    if config.data.loader_scatter:
        echo('note: --loader-scatter is ignored; every rank memory-maps the shared cache')
    registry = registry if registry is not None else \
        CorpusRegistry.from_env(config.data.corpus_registry)
    valid_names = list(config.data.valid_data or [])
    test_names = list(config.data.test_data or [])
    rank_echo = echo if _global_rank() == 0 else None

    documents, _ = build_document_dataset(config.data.train_data, config, tokenizer, registry, echo=rank_echo)
    split = parse_split(config.data.split, zero_valid=bool(valid_names), zero_test=bool(test_names))
    if should_split(split):
        parts = split_ds(documents, split, save_splits=config.data.save_splits if _global_rank() == 0
                         else None, load_splits=config.data.load_splits)
    else:
        parts = [documents, None, None]
    train_docs, valid_docs, test_docs = parts
    if valid_names:
        valid_docs, _ = build_document_dataset(valid_names, config, tokenizer, registry, echo=rank_echo)
    if test_names:
        test_docs, _ = build_document_dataset(test_names, config, tokenizer, registry, echo=rank_echo)
    if test_docs is not None and config.data.save_test_data and _global_rank() == 0:
        _save_test_data(config.data.save_test_data, test_docs, tokenizer)

    language_filter = _language_filter(config, registry)
    seq_length = int(config.data.seq_length)
    eval_seq_length = int(config.evaluation.eval_seq_length or seq_length)

    def block(docs, length):
        if docs is None:
            return None
        return BlockDataset(docs, tokenizer, max_seq_len=length,
                            sample_across_doc=not config.data.sample_one_document,
                            non_sentence_start=config.data.non_sentence_start,
                            filter_english=language_filter is not None, language_filter=language_filter)

    train_ds, valid_ds, test_ds = block(train_docs, seq_length), block(valid_docs, eval_seq_length), \
        block(test_docs, eval_seq_length)

    rank, world = mpu.data_parallel_rank_and_size()
    if collate_fn is None:
        if config.objective.block_lm or config.model.encoder_decoder:
            from .blocklm import build_block_strategy  # imported lazily: the collator lives in its own module
            collate_fn = build_block_strategy(config, tokenizer, data_parallel_rank=rank,
                                              data_parallel_world_size=world).construct_blocks
        else:
            pad_id = tokenizer.get_command('pad').Id
            collate_fn = functools.partial(pad_collate, pad_id=pad_id)

    batch_size = int(config.training.batch_size)
    eval_batch_size = int(config.evaluation.eval_batch_size or batch_size)
    accum = int(config.training.gradient_accumulation_steps or 1)
    train_iters = int(config.training.train_iters or 0)
    common = dict(rank=rank, world_size=world, shuffle=config.data.shuffle,
                  seed=int(config.training.seed), num_workers=int(config.data.num_workers),
                  collate_fn=collate_fn)

    def loader(ds, size, num_samples, start, steps):
        if ds is None:
            return None
        return make_data_loader(ds, size, num_samples=num_samples, start_iter=start,
                                gradient_accumulation_steps=steps, **common)

    train_samples = batch_size * world * train_iters * accum if train_iters > 0 else None
    train = loader(train_ds, batch_size, train_samples, start_iter, accum)
    valid = loader(valid_ds, eval_batch_size, None, valid_start_iter, 1)
    test = loader(test_ds, eval_batch_size, None, 0, 1)
    return train, valid, test
