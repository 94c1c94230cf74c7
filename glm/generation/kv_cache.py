"""Decoding through a key/value cache: the decoders' calling convention over ``GLMModel(kv_cache=...)``.

The model's own memory holds each layer's *input* hidden states, so every step re-projects the
whole memory into keys and values (``3 H^2`` multiply-adds per memory position and layer).  Keys and
values of a position depend on that position only (``K = W_k LN(h)``), so caching them instead is
exactly equivalent -- including the truncation to the last ``max_memory_length`` positions -- and a
step then costs one token's worth of projections.  The cache is an argument of the model's own
forward (``kv_cache=``); this module only adapts it to the decoders.

:class:`KVCacheModel` wraps a ``GLMModel`` and has the calling convention the decoders use for the
hidden-state memory: ``forward(input_ids, position_ids, attention_mask, *cache) -> (logits, *cache)``,
where ``cache`` is ``[K_0, V_0, K_1, V_1, ...]``, each ``[B, M, hidden / model-parallel size]`` with
the batch first, so the decoders reorder and repeat it like the model's memory.  With
``last_logits_only`` (default) the logits are those of the last position only (``[B, 1, V]``): a
long context is then not projected onto the whole vocabulary for nothing.

This module must not reach into the model's layers or choose its attention kernel.
"""

import torch
from torch import nn


def supports_kv_cache(model):
    transformer = getattr(model, "transformer", None)
    return (transformer is not None and not transformer.relative_encoding and getattr(model, "output_predict", False)
            and not isinstance(model, KVCacheModel))


class KVCacheModel(nn.Module):
    """``max_memory_length``: ``None`` keeps the model's own limit (its ``max_memory_length``; 0 keeps
    every position), ``0`` keeps every position whatever the model's limit (as ``return_memory``)."""

    def __init__(self, model, max_memory_length=None, last_logits_only=True):
        super().__init__()
        if not supports_kv_cache(model):
            raise ValueError("KVCacheModel needs a GLMModel with absolute (block or plain) positions and logits")
        if max_memory_length not in (None, 0, model.transformer.max_memory_length):
            raise ValueError(f"max_memory_length must be None (the model's {model.transformer.max_memory_length}) "
                             f"or 0 (keep everything), got {max_memory_length}")
        self.model = model
        self.keep_everything = max_memory_length == 0
        self.last_logits_only = last_logits_only  # decoders read the last position only

    def forward(self, input_ids, position_ids, attention_mask, *cache):
        batch, length = input_ids.shape
        last = None
        if self.last_logits_only:
            last = torch.zeros(batch, length, dtype=torch.bool, device=input_ids.device)
            last[:, -1] = True
        logits, *new_cache = self.model(input_ids, position_ids, attention_mask, kv_cache=list(cache),
                                        return_memory=self.keep_everything, logit_positions=last)
        if self.last_logits_only:
            logits = logits.view(batch, 1, -1)
        return (logits, *new_cache)


def with_kv_cache(model, enabled=True):
    """The model to decode with: a :class:`KVCacheModel` around a plain ``GLMModel`` (when
    ``enabled`` and supported), the model itself otherwise (its hidden-state memory is used)."""
    if enabled and supports_kv_cache(model):
        return KVCacheModel(model)
    return model
