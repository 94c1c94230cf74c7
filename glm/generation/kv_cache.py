"""A key/value cache for decoding with ``GLMModel`` (block or plain positions, not Transformer-XL).

The model's own memory holds each layer's *input* hidden states, so every step re-projects the
whole memory into keys and values (``3 H^2`` multiply-adds per memory position and layer).  Keys and
values of a position depend on that position only (``K = W_k LN(h)``), so caching them instead is
exactly equivalent -- including the truncation to the last ``max_memory_length`` positions -- and a
step then costs one token's worth of projections.

:class:`KVCacheModel` wraps a ``GLMModel`` and has its calling convention:
``forward(input_ids, position_ids, attention_mask, *cache) -> (logits, *cache)``, where ``cache`` is
``[K_0, V_0, K_1, V_1, ...]``, each ``[B, M, hidden / model-parallel size]`` with the batch first, so
the decoders reorder and repeat it like the model's memory.  With ``last_logits_only`` (default)
the logits are those of the last position only (``[B, 1, V]``): a long context is then not
projected onto the whole vocabulary for nothing.  It calls the model's own modules, so
tensor parallelism and the attention backends behave as in the model (``forward_cached`` of its layers).
"""

import torch.nn.functional as F
from torch import nn

from .. import mpu
from ..model import attention as attn


def supports_kv_cache(model):
    transformer = getattr(model, "transformer", None)
    return (transformer is not None and not transformer.relative_encoding and getattr(model, "output_predict", False)
            and not isinstance(model, KVCacheModel))


class KVCacheModel(nn.Module):
    def __init__(self, model, max_memory_length=None, last_logits_only=True):
        super().__init__()
        if not supports_kv_cache(model):
            raise ValueError("KVCacheModel needs a GLMModel with absolute (block or plain) positions and logits")
        self.model = model
        limit = model.transformer.max_memory_length if max_memory_length is None else max_memory_length
        self.max_memory_length = limit  # 0: keep everything
        self.last_logits_only = last_logits_only  # decoders read the last position only

    def forward(self, input_ids, position_ids, attention_mask, *cache):
        model, transformer = self.model, self.model.transformer
        batch, length = input_ids.shape
        if cache and len(cache) != 2 * transformer.num_layers:
            raise ValueError(f"expected {2 * transformer.num_layers} cache tensors, got {len(cache)}")
        memory_length = cache[0].size(1) if cache else 0
        hidden = transformer.embed_positions(model.word_embeddings(input_ids), position_ids)
        mask = attn.prepare_mask(attention_mask, batch, length, memory_length, hidden.dtype)
        new_cache = []
        keep = self.max_memory_length
        for i, layer in enumerate(transformer.layers):
            key_cache = cache[2 * i] if cache else None
            value_cache = cache[2 * i + 1] if cache else None
            hidden, key, value = layer.forward_cached(hidden, mask, key_cache, value_cache)
            if keep and key.size(1) > keep:
                key, value = key[:, -keep:], value[:, -keep:]
            new_cache += [key.contiguous(), value.contiguous()]  # reordered per beam: keep them dense
        if self.last_logits_only:
            hidden = hidden[:, -1:]
        hidden = transformer.final_layernorm(hidden)
        hidden = mpu.copy_to_model_parallel_region(hidden, model.group)
        logits = F.linear(hidden, model.word_embeddings.weight)
        if not model.parallel_output:
            logits = mpu.gather_from_model_parallel_region(logits, model.group)
        return (logits, *new_cache)


def with_kv_cache(model, enabled=True):
    """The model to decode with: a :class:`KVCacheModel` around a plain ``GLMModel`` (when
    ``enabled`` and supported), the model itself otherwise (its hidden-state memory is used)."""
    if enabled and supports_kv_cache(model):
        return KVCacheModel(model)
    return model
