"""Small builders used by several test modules."""

import torch

from glm.model import GLMModel


def tiny_glm(vocab=64, hidden=32, heads=4, layers=2, max_seq=32, mem=0, block=True, relative=False,
             dropout=0.0, checkpoint=False, parallel_output=True, group=None, backend="auto", **kw):
    """A tiny GLMModel with the original keyword names."""
    return GLMModel(num_layers=layers, vocab_size=vocab, hidden_size=hidden, num_attention_heads=heads,
                    embedding_dropout_prob=dropout, attention_dropout_prob=dropout, output_dropout_prob=dropout,
                    max_sequence_length=max_seq, max_memory_length=mem, checkpoint_activations=checkpoint,
                    parallel_output=parallel_output, relative_encoding=relative, block_position_encoding=block,
                    group=group, attention_backend=backend, **kw)


def glm_batch(batch=2, length=12, vocab=64, max_seq=32, seed=0, block=True):
    """Random ids, GLM-style 2D positions and per-sample separators."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab, (batch, length), generator=g)
    sep = torch.randint(1, length, (batch,), generator=g)
    if block:
        pos = torch.randint(0, max_seq, (batch, 2, length), generator=g)
    else:
        pos = torch.arange(length).expand(batch, -1).clone()
    return ids, pos, sep


def parse_config(argv=(), **updates):
    """GLM flags parsed as the entry points parse them, as the typed configuration the library takes;
    ``updates`` replace fields by name (``vocab_size=128``)."""
    from glm.arguments import get_args
    from glm.config import build_config

    config = build_config(get_args(list(argv)))
    return config.updated(**updates) if updates else config
