"""GLM data utilities: tokenizers (spec section 5), corpora and their on-disk caches, datasets,
samplers (section 6.1-6.3) and the blank-infilling objective (section 6.4).

``prepare_tokenizer(config)`` builds the tokenizer the original flags describe;
``ConstructBlockStrategy`` turns token samples into GLM training batches;
``make_pretrain_loaders(config, tokenizer)`` gives the train/valid/test loaders of ``pretrain_glm.py``.

``import data_utils`` loads the tokenizers (pure Python) and nothing of torch: every other name below is
looked up in its module on first use (:func:`__getattr__`), so the flag parser and ``--help`` stay light
(tests/test_architecture.py checks it).  This package sits beside ``glm.training`` and ``glm.generation``
in docs/architecture.md: it may use ``glm.mpu``, ``glm.model`` and the tokenizers, never the training
loop, generation, tasks or the flag parser (the flags reach it as values).
"""

import importlib

from .tokenizers import make_tokenizer, prepare_tokenizer

_LAZY = {
    "ConstructBlockStrategy": "blocklm", "build_block_strategy": "blocklm",
    "make_pretrain_loaders": "configure_data", "make_data_loader": "configure_data",
    "BlockDataset": "datasets", "PromptDataset": "datasets", "KeyDataset": "datasets", "split_ds": "datasets",
    "DistributedBatchSampler": "samplers", "RandomSampler": "samplers",
    "CorpusRegistry": "corpora", "CorpusError": "corpora", "NAMED_CORPORA": "corpora",
    "LazyCorpus": "lazy", "build_cache": "preprocess", "ensure_cache": "preprocess",
}

__all__ = ["prepare_tokenizer", "make_tokenizer", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'data_utils' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
