"""The GLM transformer stack: pre-LayerNorm layers with 2D, plain or relative positions.

Parameter names match the original state dict (spec section 1.3): the stack lives under
``transformer.`` with ``position_embeddings``, ``block_position_embeddings``, ``layers.{i}``
(``input_layernorm``, ``attention.query_key_value``, ``attention.dense``,
``attention.relative``, ``post_attention_layernorm``, ``mlp.dense_h_to_4h``,
``mlp.dense_4h_to_h``), ``final_layernorm``, and for Transformer-XL ``r_w_bias``/``r_r_bias``.
The maths reads as a plain transformer; the parallel plumbing is in the ``glm.mpu`` layers.

One forward serves training, evaluation and decoding: its memory is either the original's
hidden-state memory (``*mems``, the layers' inputs) or a key/value cache (``kv_cache=``, each
layer's keys and values, for decoding with absolute positions).  The attention kernel of a forward
comes from the model's :class:`~.attention.AttentionSpec`, asked once per forward here and passed to
every layer; the layers never choose it.

This module owns the transformer's parameters and forward; it must not touch tokenizers, input
layouts (``glm.inputs``), files or process-group creation (groups are passed in).
"""

import contextlib
import logging

import torch
import torch.nn.functional as F
from torch import nn

from .. import mpu
from ..mpu.layers import normal_init, scaled_normal_init, set_partition_attributes
from . import attention as attn
from .dropout import Dropout

logger = logging.getLogger(__name__)

LAYERNORM_EPS = 1e-5  # the original never wired --layernorm-epsilon through


def gelu(x):
    """tanh-approximated GELU, identical to the original's fused version."""
    return F.gelu(x, approximate="tanh")


class SinusoidalPositionalEmbedding(nn.Module):
    """Transformer-XL relative position table: sin half then cos half, ``1/10000^(2i/H)``."""

    def __init__(self, hidden_size):
        super().__init__()
        inv_freq = 1.0 / (10000 ** (torch.arange(0.0, hidden_size, 2.0) / hidden_size))
        self.register_buffer("inv_freq", inv_freq)

    def forward(self, positions):
        angles = torch.outer(positions.to(self.inv_freq.dtype), self.inv_freq)
        return torch.cat([angles.sin(), angles.cos()], dim=-1).unsqueeze(0)


def relative_shift(scores):
    """Transformer-XL's shift: row ``i`` of ``[.., L, K]`` moves so that column ``j`` holds the
    score for relative distance ``(K - L + i) - j``."""
    *lead, q_len, k_len = scores.shape
    padded = torch.cat([scores.new_zeros(*lead, q_len, 1), scores], dim=-1)
    padded = padded.view(*lead, k_len + 1, q_len)
    return padded[..., 1:, :].reshape(*lead, q_len, k_len)


class ParallelSelfAttention(nn.Module):
    """Multi-head self-attention with a fused, column-parallel QKV and a row-parallel output."""

    def __init__(self, hidden_size, num_attention_heads, attention_dropout_prob, output_dropout_prob,
                 init_method, output_layer_init_method, relative_encoding=False, attention_scale=1.0,
                 group=None):
        super().__init__()
        world = mpu.group_world_size(mpu.get_model_parallel_group() if group is None else group)
        self.hidden_size_per_partition = mpu.divide(hidden_size, world, "hidden size")
        self.num_heads = num_attention_heads
        self.num_heads_per_partition = mpu.divide(num_attention_heads, world, "number of attention heads")
        self.head_dim = mpu.divide(hidden_size, num_attention_heads, "hidden size")
        self.relative_encoding = relative_encoding
        self.attention_scale = attention_scale
        self.query_key_value = mpu.ColumnParallelLinear(
            hidden_size, 3 * hidden_size, stride=3, gather_output=False, init_method=init_method, group=group)
        if relative_encoding:
            self.relative = mpu.ColumnParallelLinear(
                hidden_size, hidden_size, gather_output=False, init_method=init_method, group=group)
        self.attention_dropout = Dropout(attention_dropout_prob)
        self.dense = mpu.RowParallelLinear(
            hidden_size, hidden_size, input_is_parallel=True, init_method=output_layer_init_method, group=group)
        self.output_dropout = Dropout(output_dropout_prob)

    def _dropout_rng(self):
        """The model-parallel RNG stream for attention dropout, as the original -- but only when it
        matters: with dropout active and the heads split over several ranks.  Swapping generator
        states otherwise costs time and breaks torch.compile graphs for nothing."""
        if self.training and self.attention_dropout.p > 0 and self.num_heads_per_partition != self.num_heads:
            return mpu.get_rng_tracker().fork()
        return contextlib.nullcontext()

    def _heads(self, x):
        batch, length = x.shape[:2]
        return x.view(batch, length, self.num_heads_per_partition, self.head_dim).transpose(1, 2)

    def forward(self, hidden_states, mask, mem=None, position_embeddings=None, r_w_bias=None, r_r_bias=None, *,
                kernel, kv_cache=None, prefix=None):
        """Attention of ``hidden_states`` (already normed) with the transformer's ``kernel`` (see
        :meth:`.attention.AttentionSpec.kernel`; ``mask`` is the one that kernel takes; ``prefix`` the
        separators' range for :func:`.attention.attend_in_two_parts`, or None).

        Without ``kv_cache``: over ``[mem, hidden_states]`` (``mem`` normed too); returns the output.
        With ``kv_cache = (keys, values)`` (``None, None`` to start one; ``[B, K, hidden / model-parallel
        size]``): over the cached keys and values followed by this call's own; returns
        ``(output, (keys, values))``.  Keys and values depend on their own position only, so both
        give the same result for the same history (absolute positions only)."""
        if kv_cache is not None:
            query, key, value = torch.chunk(self.query_key_value(hidden_states), 3, dim=-1)
            key_cache, value_cache = kv_cache
            if key_cache is not None:
                key = torch.cat([key_cache, key], dim=1)
                value = torch.cat([value_cache, value], dim=1)
            return self._attend(query, key, value, mask, kernel), (key, value)
        query_length = hidden_states.size(1)
        full = hidden_states if mem is None else torch.cat([mem, hidden_states], dim=1)
        query, key, value = torch.chunk(self.query_key_value(full), 3, dim=-1)
        return self._attend(query[:, -query_length:], key, value, mask, kernel, position_embeddings, r_w_bias,
                            r_r_bias, prefix)

    def _attend(self, query, key, value, mask, kernel, position_embeddings=None, r_w_bias=None, r_r_bias=None,
                prefix=None):
        """Run ``kernel``, then the output projection.  ``query`` ``[B, L, h]``, ``key``/``value``
        ``[B, K, h]`` with ``h`` this rank's hidden part."""
        batch, query_length = query.shape[:2]
        query, key, value = self._heads(query), self._heads(key), self._heads(value)
        if kernel == "relative":
            context = self._relative_attention(query, key, value, mask, position_embeddings, r_w_bias, r_r_bias)
        elif kernel == "flex":  # never with active dropout (the spec runs SDPA then)
            context = attn.flex_attention(query, key, value, mask)
        elif kernel in ("sdpa", "explicit"):   # both take the dropout probability
            attend = attn.sdpa_attention if kernel == "sdpa" else attn.explicit_attention
            p = self.attention_dropout.p if self.training else 0.0
            with self._dropout_rng():
                context = attn.attend_in_two_parts(lambda q, k, v, m: attend(q, k, v, m, p),
                                                   query, key, value, mask, prefix)
        elif kernel == "reference":
            with self._dropout_rng():
                context = attn.attend_in_two_parts(
                    lambda q, k, v, m: attn.reference_attention(q, k, v, m, self.attention_dropout,
                                                                self.attention_scale),
                    query, key, value, mask, prefix)
        else:
            raise ValueError(f"unknown attention kernel {kernel!r}")
        context = context.transpose(1, 2).reshape(batch, query_length, self.hidden_size_per_partition)
        return self.output_dropout(self.dense(context))

    def _relative_attention(self, query, key, value, mask, position_embeddings, r_w_bias, r_r_bias):
        relative = self._heads(self.relative(position_embeddings))
        content = torch.matmul(query + r_w_bias.unsqueeze(1), key.transpose(-1, -2))
        position = relative_shift(torch.matmul(query + r_r_bias.unsqueeze(1), relative.transpose(-1, -2)))
        scores = (content + position) / (self.head_dim ** 0.5)
        with self._dropout_rng():
            probs = self.attention_dropout(attn.masked_softmax(scores, mask))
        return torch.matmul(probs, value)


class ParallelMLP(nn.Module):
    """``H -> 4H -> gelu -> H`` with column- then row-parallel projections."""

    def __init__(self, hidden_size, output_dropout_prob, init_method, output_layer_init_method, group=None):
        super().__init__()
        self.dense_h_to_4h = mpu.ColumnParallelLinear(
            hidden_size, 4 * hidden_size, gather_output=False, init_method=init_method, group=group)
        self.dense_4h_to_h = mpu.RowParallelLinear(
            4 * hidden_size, hidden_size, input_is_parallel=True, init_method=output_layer_init_method, group=group)
        self.dropout = Dropout(output_dropout_prob)

    def forward(self, x):
        return self.dropout(self.dense_4h_to_h(gelu(self.dense_h_to_4h(x))))


class ParallelTransformerLayer(nn.Module):
    """Pre-LN block; the memory of this layer is normed by the same ``input_layernorm``."""

    def __init__(self, hidden_size, num_attention_heads, attention_dropout_prob, output_dropout_prob,
                 init_method, output_layer_init_method, relative_encoding=False, attention_scale=1.0,
                 group=None):
        super().__init__()
        self.input_layernorm = nn.LayerNorm(hidden_size, eps=LAYERNORM_EPS)
        self.attention = ParallelSelfAttention(
            hidden_size, num_attention_heads, attention_dropout_prob, output_dropout_prob, init_method,
            output_layer_init_method, relative_encoding, attention_scale, group)
        self.post_attention_layernorm = nn.LayerNorm(hidden_size, eps=LAYERNORM_EPS)
        self.mlp = ParallelMLP(hidden_size, output_dropout_prob, init_method, output_layer_init_method, group)

    def forward(self, hidden_states, mask, mem=None, position_embeddings=None, r_w_bias=None, r_r_bias=None, *,
                kernel, kv_cache=None, prefix=None):
        """The layer's output; with ``kv_cache`` (see ``ParallelSelfAttention.forward``) also the grown
        ``(keys, values)``."""
        normed = self.input_layernorm(hidden_states)
        normed_mem = self.input_layernorm(mem) if mem is not None else None
        context = self.attention(normed, mask, normed_mem, position_embeddings, r_w_bias, r_r_bias, kernel=kernel,
                                 kv_cache=kv_cache, prefix=prefix)
        if kv_cache is not None:
            context, kv_cache = context
        x = hidden_states + context
        x = x + self.mlp(self.post_attention_layernorm(x))
        return x if kv_cache is None else (x, kv_cache)


class GLMTransformer(nn.Module):
    """Position embeddings, the layer stack and the final LayerNorm (the original
    ``GPT2ParallelTransformer``)."""

    def __init__(self, num_layers, hidden_size, num_attention_heads, max_sequence_length, max_memory_length,
                 embedding_dropout_prob, attention_dropout_prob, output_dropout_prob, checkpoint_activations,
                 checkpoint_num_layers=1, init_method_std=0.02, relative_encoding=False,
                 block_position_encoding=False, attention_scale=1.0, group=None, attention_backend="auto"):
        super().__init__()
        self.attention_spec = attn.AttentionSpec.of(attention_backend, relative_encoding)
        logger.info("attention: %s", self.attention_spec.describe())
        if hidden_size % num_attention_heads != 0:
            raise ValueError(
                f"hidden size {hidden_size} is not divisible by the number of attention heads {num_attention_heads}")
        group = mpu.get_model_parallel_group() if group is None else group
        world = mpu.group_world_size(group)
        if num_attention_heads % world != 0 or hidden_size % world != 0:
            raise ValueError(
                f"hidden size {hidden_size} and attention heads {num_attention_heads} must both be divisible "
                f"by the model-parallel size {world}")
        self.num_layers = num_layers
        self.hidden_size = hidden_size
        self.max_sequence_length = max_sequence_length
        self.max_memory_length = max_memory_length
        self.checkpoint_activations = checkpoint_activations
        self.checkpoint_num_layers = checkpoint_num_layers
        self.relative_encoding = relative_encoding
        self.block_position_encoding = block_position_encoding
        self.attention_dropout_prob = attention_dropout_prob
        self.embedding_dropout = Dropout(embedding_dropout_prob)

        self.init_method_std = init_method_std
        init = normal_init(init_method_std)
        if relative_encoding:
            self.position_embeddings = SinusoidalPositionalEmbedding(hidden_size)
            heads_per_rank = num_attention_heads // world
            head_dim = hidden_size // num_attention_heads
            self.r_w_bias = nn.Parameter(torch.zeros(heads_per_rank, head_dim))
            self.r_r_bias = nn.Parameter(torch.zeros(heads_per_rank, head_dim))
            set_partition_attributes(self.r_w_bias, 0)
            set_partition_attributes(self.r_r_bias, 0)
        elif block_position_encoding:
            # "+1" rows: released 512-position models have 513-row tables.
            self.position_embeddings = nn.Embedding(max_sequence_length + 1, hidden_size)
            self.block_position_embeddings = nn.Embedding(max_sequence_length + 1, hidden_size)
            init(self.block_position_embeddings.weight)
            init(self.position_embeddings.weight)
        else:
            self.position_embeddings = nn.Embedding(max_sequence_length, hidden_size)
            init(self.position_embeddings.weight)

        output_init = scaled_normal_init(init_method_std, num_layers)
        self.layers = nn.ModuleList([
            ParallelTransformerLayer(hidden_size, num_attention_heads, attention_dropout_prob, output_dropout_prob,
                                     init, output_init, relative_encoding, attention_scale, group)
            for _ in range(num_layers)])
        self.final_layernorm = nn.LayerNorm(hidden_size, eps=LAYERNORM_EPS)

    # -- input checks --------------------------------------------------------------------------
    def _check_positions(self, position_ids, batch, length):
        if self.relative_encoding:
            return
        expected = (batch, 2, length) if self.block_position_encoding else (batch, length)
        if tuple(position_ids.shape) != expected:
            raise ValueError(f"position_ids must have shape {list(expected)}, got {list(position_ids.shape)}")
        rows = self.position_embeddings.num_embeddings
        low, high = torch.stack(torch.aminmax(position_ids)).tolist()  # one device sync per forward
        if low < 0 or high >= rows:
            raise ValueError(
                f"position ids must lie in [0, {rows - 1}] (the position table has {rows} rows, "
                f"max_sequence_length={self.max_sequence_length}); got values in [{low}, {high}]")

    def _check_mems(self, mems, batch):
        if not mems:
            return 0
        if len(mems) != self.num_layers + 1:
            raise ValueError(f"expected {self.num_layers + 1} memory tensors (num_layers + 1), got {len(mems)}")
        length = mems[0].size(1)
        for i, m in enumerate(mems):
            if m.dim() != 3 or m.size(0) != batch or m.size(1) != length or m.size(2) != self.hidden_size:
                raise ValueError(
                    f"memory tensor {i} has shape {list(m.shape)}; expected [{batch}, {length}, {self.hidden_size}]")
        return length

    # -- forward ----------------------------------------------------------------------------------
    def embed_positions(self, hidden_states, position_ids):
        """Word embeddings plus absolute (plain or 2D block) position embeddings, then dropout."""
        self._check_positions(position_ids, *hidden_states.shape[:2])
        if self.block_position_encoding:
            hidden_states = (hidden_states + self.position_embeddings(position_ids[:, 0])
                             + self.block_position_embeddings(position_ids[:, 1]))
        else:
            hidden_states = hidden_states + self.position_embeddings(position_ids)
        return self.embedding_dropout(hidden_states)

    def _check_kv_cache(self, kv_cache, batch):
        if self.relative_encoding:
            raise ValueError("a key/value cache needs absolute positions; Transformer-XL models decode with "
                             "their hidden-state memory")
        if not kv_cache:
            return 0
        if len(kv_cache) != 2 * self.num_layers:
            raise ValueError(f"expected {2 * self.num_layers} key/value cache tensors (2 per layer), got "
                             f"{len(kv_cache)}")
        length = kv_cache[0].size(1)
        for i, c in enumerate(kv_cache):
            if c.dim() != 3 or c.size(0) != batch or c.size(1) != length:
                raise ValueError(f"key/value cache tensor {i} has shape {list(c.shape)}; expected [{batch}, {length}, "
                                 "hidden / model-parallel size]")
        return length

    def forward(self, hidden_states, position_ids, attention_mask, *mems, return_memory=False, detach_memory=True,
                kv_cache=None, output_from=0):
        """The stack over ``hidden_states`` (word embeddings); returns ``(final hidden states, memory)``.

        ``output_from`` (new): the caller reads the final hidden states from that position on only, so
        the last layer computes its queries, output projection and MLP for those positions; the earlier
        ones still give it their keys and values, as a memory does.  The hidden states then come back
        as ``[B, L - output_from, H]``.  Applied without memory, cache or relative positions and with
        the SDPA or reference kernel; otherwise (and for ``0``) every position is returned.

        The memory is the hidden-state memory (``mems``: ``num_layers + 1`` layer inputs, kept when
        ``max_memory_length > 0`` or ``return_memory``), or, when ``kv_cache`` is given (a list
        ``[K_0, V_0, K_1, V_1, ...]``, empty to start one), the grown key/value cache.  Both keep the
        last ``max_memory_length`` positions unless ``return_memory`` (a cache with
        ``max_memory_length == 0`` keeps every position)."""
        batch, query_length = hidden_states.shape[:2]
        if kv_cache is not None and mems:
            raise ValueError("pass either a hidden-state memory or a key/value cache, not both")
        memory_length = self._check_kv_cache(kv_cache, batch) if kv_cache is not None else self._check_mems(mems, batch)
        # The two-part split (attn.attend_in_two_parts) is cut where the batch's separators lie, so a sample's
        # scores would depend on its batch-mates to the last float bit: training only, where the time goes;
        # evaluation keeps one call, and a sample scores the same in any batch.
        mask, exact_mask, prefix = attn.prepare_mask(attention_mask, batch, query_length, memory_length,
                                                     hidden_states.dtype)

        position_embeddings = None
        if self.relative_encoding:
            distances = torch.arange(memory_length + query_length - 1, -1, -1.0, device=hidden_states.device)
            position_embeddings = self.embedding_dropout(self.position_embeddings(distances).to(hidden_states.dtype))
            hidden_states = self.embedding_dropout(hidden_states)
        else:
            hidden_states = self.embed_positions(hidden_states, position_ids)

        kernel = self._attention_kernel(hidden_states, exact_mask, incremental=kv_cache is not None)
        if kernel == "flex":
            mask = attn.flex_block_mask(mask)
        elif kernel == "explicit":
            mask = attn.additive_mask(mask, self._compute_dtype(hidden_states))
        split = kernel in ("sdpa", "explicit", "reference") and self.training
        extra = dict(position_embeddings=position_embeddings,
                     r_w_bias=getattr(self, "r_w_bias", None), r_r_bias=getattr(self, "r_r_bias", None),
                     kernel=kernel, prefix=prefix if split else None)
        if kv_cache is not None:
            hidden_states, new_cache = self._cached_forward(hidden_states, mask, kv_cache, extra, return_memory,
                                                            detach_memory)
            return self.final_layernorm(hidden_states), new_cache

        keep_memory = self.max_memory_length > 0 or return_memory
        if keep_memory or mems or self.relative_encoding or kernel not in ("sdpa", "reference"):
            output_from = 0
        layer_inputs = [hidden_states] if keep_memory else []
        if self.checkpoint_activations and torch.is_grad_enabled():
            chunk = max(1, self.checkpoint_num_layers)
            for start in range(0, self.num_layers, chunk):
                end = min(start + chunk, self.num_layers)
                chunk_mems = list(mems[start:end]) if mems else []
                outputs = mpu.checkpoint(self._chunk_forward(start, end, mask, extra, output_from), hidden_states,
                                         *chunk_mems)
                hidden_states = outputs[-1]
                if keep_memory:
                    layer_inputs.extend(outputs)
        else:
            for i, layer in enumerate(self.layers):
                hidden_states = self._layer_forward(i, hidden_states, mask, mems[i] if mems else None, extra,
                                                    output_from)
                if keep_memory:
                    layer_inputs.append(hidden_states)

        output = self.final_layernorm(hidden_states)
        new_mems = self.update_mems(layer_inputs, mems, return_memory, detach_memory) if keep_memory else []
        return output, new_mems

    def _cached_forward(self, hidden_states, mask, kv_cache, extra, return_memory, detach_memory):
        """Every layer over its cached keys and values; returns the last hidden states and the new cache
        (the last ``max_memory_length`` positions, all of them with ``return_memory`` or a limit of 0)."""
        keep = 0 if return_memory else self.max_memory_length
        new_cache = []
        for i, layer in enumerate(self.layers):
            layer_cache = (kv_cache[2 * i], kv_cache[2 * i + 1]) if kv_cache else (None, None)
            hidden_states, (key, value) = layer(hidden_states, mask, kv_cache=layer_cache, **extra)
            if keep and key.size(1) > keep:
                key, value = key[:, -keep:], value[:, -keep:]
            key, value = key.contiguous(), value.contiguous()  # reordered per beam: keep them dense
            new_cache += [key.detach(), value.detach()] if detach_memory else [key, value]
        return hidden_states, new_cache

    @staticmethod
    def _compute_dtype(hidden_states):
        """The dtype autocast will give the attention inputs (the hidden states' own without autocast)."""
        device_type = hidden_states.device.type
        if torch.is_autocast_enabled(device_type):
            return torch.get_autocast_dtype(device_type)
        return hidden_states.dtype

    def _attention_kernel(self, hidden_states, exact_mask, incremental):
        """The kernel every layer runs in this forward, asked of the model's attention spec here, outside
        the (possibly compiled) layers."""
        dropout_active = self.training and self.attention_dropout_prob > 0
        return self.attention_spec.kernel(hidden_states.device.type, self._compute_dtype(hidden_states),
                                          dropout_active, exact_mask, incremental)

    def _layer_forward(self, index, hidden_states, mask, mem, extra, output_from=0):
        """Layer ``index``; the last one, with ``output_from > 0``, for the positions from there on only:
        the positions before it enter as its memory (normed alike, keys and values only), which is the
        same attention for the positions it computes."""
        layer = self.layers[index]
        if output_from and index == self.num_layers - 1:
            return layer(hidden_states[:, output_from:], mask[..., output_from:, :], hidden_states[:, :output_from],
                         **extra)
        return layer(hidden_states, mask, mem, **extra)

    def _chunk_forward(self, start, end, mask, extra, output_from=0):
        def run(hidden_states, *chunk_mems):
            outputs = []
            for offset, index in enumerate(range(start, end)):
                hidden_states = self._layer_forward(index, hidden_states, mask,
                                                    chunk_mems[offset] if chunk_mems else None, extra, output_from)
                outputs.append(hidden_states)
            return tuple(outputs)
        return run

    def update_mems(self, hiddens, mems, return_memory=False, detach_memory=True):
        """Append this call's layer inputs to the memory; keep the last ``max_memory_length``
        positions unless ``return_memory`` asks for all of them."""
        old_length = mems[0].size(1) if mems else 0
        query_length = hiddens[0].size(1)
        new_length = old_length + query_length
        if not return_memory:
            new_length = min(self.max_memory_length, new_length)
        new_mems = []
        for i, h in enumerate(hiddens):
            if new_length <= query_length:
                m = h[:, query_length - new_length:]
            else:
                m = torch.cat([mems[i][:, old_length - (new_length - query_length):], h], dim=1)
            new_mems.append(m.detach() if detach_memory else m)
        return new_mems
