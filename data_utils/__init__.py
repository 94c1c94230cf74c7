"""GLM data utilities: tokenizers (spec section 5), corpora and their on-disk caches, datasets,
samplers (section 6.1-6.3) and the blank-infilling objective (section 6.4).

``prepare_tokenizer(config)`` builds the tokenizer the original flags describe;
``ConstructBlockStrategy`` turns token samples into GLM training batches;
``make_pretrain_loaders(config, tokenizer)`` gives the train/valid/test loaders of ``pretrain_glm.py``.
The torch-dependent modules are imported on first use, so ``import data_utils`` stays light.
"""

import importlib

from .tokenizers import make_tokenizer, prepare_tokenizer
from .blocklm import ConstructBlockStrategy, build_block_strategy

_LAZY = {
    "make_pretrain_loaders": "configure_data", "make_data_loader": "configure_data",
    "BlockDataset": "datasets", "PromptDataset": "datasets", "KeyDataset": "datasets", "split_ds": "datasets",
    "DistributedBatchSampler": "samplers", "RandomSampler": "samplers",
    "CorpusRegistry": "corpora", "CorpusError": "corpora", "NAMED_CORPORA": "corpora",
    "LazyCorpus": "lazy", "build_cache": "preprocess", "ensure_cache": "preprocess",
}

__all__ = ["prepare_tokenizer", "make_tokenizer", "ConstructBlockStrategy", "build_block_strategy", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'data_utils' has no attribute {name!r}")
