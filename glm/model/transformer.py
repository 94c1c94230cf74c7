"""The GLM transformer stack: pre-LayerNorm layers with 2D, plain or relative positions.

Parameter names match the original state dict (spec section 1.3): the stack lives under
``transformer.`` with ``position_embeddings``, ``block_position_embeddings``, ``layers.{i}``
(``input_layernorm``, ``attention.query_key_value``, ``attention.dense``,
``attention.relative``, ``post_attention_layernorm``, ``mlp.dense_h_to_4h``,
``mlp.dense_4h_to_h``), ``final_layernorm``, and for Transformer-XL ``r_w_bias``/``r_r_bias``.
The maths reads as a plain transformer; the parallel plumbing is in the ``glm.mpu`` layers.
"""

import contextlib

import torch
import torch.nn.functional as F
from torch import nn

from .. import mpu
from ..mpu.layers import normal_init, scaled_normal_init, set_partition_attributes
from . import attention as attn

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
                 group=None, attention_backend="auto"):
        super().__init__()
        world = mpu.group_world_size(mpu.get_model_parallel_group() if group is None else group)
        self.hidden_size_per_partition = mpu.divide(hidden_size, world, "hidden size")
        self.num_heads = num_attention_heads
        self.num_heads_per_partition = mpu.divide(num_attention_heads, world, "number of attention heads")
        self.head_dim = mpu.divide(hidden_size, num_attention_heads, "hidden size")
        self.relative_encoding = relative_encoding
        self.attention_scale = attention_scale
        self.attention_backend = attention_backend
        self.query_key_value = mpu.ColumnParallelLinear(
            hidden_size, 3 * hidden_size, stride=3, gather_output=False, init_method=init_method, group=group)
        if relative_encoding:
            self.relative = mpu.ColumnParallelLinear(
                hidden_size, hidden_size, gather_output=False, init_method=init_method, group=group)
        self.attention_dropout = nn.Dropout(attention_dropout_prob)
        self.dense = mpu.RowParallelLinear(
            hidden_size, hidden_size, input_is_parallel=True, init_method=output_layer_init_method, group=group)
        self.output_dropout = nn.Dropout(output_dropout_prob)

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

    def forward(self, hidden_states, mask, mem=None, position_embeddings=None, r_w_bias=None, r_r_bias=None,
                kernel=None):
        """Attention of ``hidden_states`` over ``[mem, hidden_states]`` (both already normed); ``kernel``
        (``'sdpa'``/``'reference'``) is the transformer's choice for boolean masks, else :meth:`_kernel`."""
        query_length = hidden_states.size(1)
        full = hidden_states if mem is None else torch.cat([mem, hidden_states], dim=1)
        query, key, value = torch.chunk(self.query_key_value(full), 3, dim=-1)
        return self._attend(query[:, -query_length:], key, value, mask, position_embeddings, r_w_bias, r_r_bias,
                            kernel)

    def forward_cached(self, hidden_states, mask, key_cache=None, value_cache=None):
        """Attention of ``hidden_states`` (normed) over cached keys and values followed by its own:
        ``(output, keys, values)``, the last two ``[B, K, hidden / model-parallel size]`` to cache.
        Keys and values depend on their own position only, so this equals ``forward`` with the
        memory the cache was built from (absolute positions only)."""
        query, key, value = torch.chunk(self.query_key_value(hidden_states), 3, dim=-1)
        if key_cache is not None:
            key = torch.cat([key_cache, key], dim=1)
            value = torch.cat([value_cache, value], dim=1)
        return self._attend(query, key, value, mask), key, value

    def _attend(self, query, key, value, mask, position_embeddings=None, r_w_bias=None, r_r_bias=None,
                kernel=None):
        """The attention kernel chosen by the backend and the mask, then the output projection.
        ``query`` ``[B, L, h]``, ``key``/``value`` ``[B, K, h]`` with ``h`` this rank's hidden part."""
        batch, query_length = query.shape[:2]
        query, key, value = self._heads(query), self._heads(key), self._heads(value)
        dropout_rng = self._dropout_rng()
        if isinstance(mask, attn.FlexMask):
            if not self.relative_encoding and not (self.training and self.attention_dropout.p > 0):
                context = attn.flex_attention(query, key, value, mask.block)
                context = context.transpose(1, 2).reshape(batch, query_length, self.hidden_size_per_partition)
                return self.output_dropout(self.dense(context))
            mask = mask.dense  # FlexAttention has no dropout on the probabilities: use SDPA then
        if self.relative_encoding:
            context = self._relative_attention(query, key, value, mask, position_embeddings, r_w_bias, r_r_bias)
        elif mask.dtype == torch.bool and (kernel or self._kernel(query.device.type, query.dtype)) == "sdpa":
            with dropout_rng:
                p = self.attention_dropout.p if self.training else 0.0
                context = attn.sdpa_attention(query, key, value, mask, p)
        else:
            with dropout_rng:
                context = attn.reference_attention(query, key, value, mask, self.attention_dropout,
                                                   self.attention_scale)
        context = context.transpose(1, 2).reshape(batch, query_length, self.hidden_size_per_partition)
        return self.output_dropout(self.dense(context))

    def _kernel(self, device_type, dtype):
        """The kernel for a boolean mask: the forced one, or ``auto``'s measured pick for this device,
        dtype and dropout (``flex`` masks that reach here fall back to SDPA, as before)."""
        if self.attention_backend == "reference":
            return "reference"
        if self.attention_backend == "auto":
            dropout_active = self.training and self.attention_dropout.p > 0
            return attn.auto_kernel(device_type, dtype, dropout_active)
        return "sdpa"

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
        self.dropout = nn.Dropout(output_dropout_prob)

    def forward(self, x):
        return self.dropout(self.dense_4h_to_h(gelu(self.dense_h_to_4h(x))))


class ParallelTransformerLayer(nn.Module):
    """Pre-LN block; the memory of this layer is normed by the same ``input_layernorm``."""

    def __init__(self, hidden_size, num_attention_heads, attention_dropout_prob, output_dropout_prob,
                 init_method, output_layer_init_method, relative_encoding=False, attention_scale=1.0,
                 group=None, attention_backend="auto"):
        super().__init__()
        self.input_layernorm = nn.LayerNorm(hidden_size, eps=LAYERNORM_EPS)
        self.attention = ParallelSelfAttention(
            hidden_size, num_attention_heads, attention_dropout_prob, output_dropout_prob, init_method,
            output_layer_init_method, relative_encoding, attention_scale, group, attention_backend)
        self.post_attention_layernorm = nn.LayerNorm(hidden_size, eps=LAYERNORM_EPS)
        self.mlp = ParallelMLP(hidden_size, output_dropout_prob, init_method, output_layer_init_method, group)

    def forward(self, hidden_states, mask, mem=None, position_embeddings=None, r_w_bias=None, r_r_bias=None,
                kernel=None):
        normed = self.input_layernorm(hidden_states)
        normed_mem = self.input_layernorm(mem) if mem is not None else None
        x = hidden_states + self.attention(normed, mask, normed_mem, position_embeddings, r_w_bias, r_r_bias, kernel)
        return x + self.mlp(self.post_attention_layernorm(x))

    def forward_cached(self, hidden_states, mask, key_cache=None, value_cache=None):
        """The layer with a key/value cache instead of a hidden-state memory: ``(output, keys, values)``
        (see ``ParallelSelfAttention.forward_cached``)."""
        context, key, value = self.attention.forward_cached(self.input_layernorm(hidden_states), mask,
                                                            key_cache, value_cache)
        x = hidden_states + context
        return x + self.mlp(self.post_attention_layernorm(x)), key, value


class GLMTransformer(nn.Module):
    """Position embeddings, the layer stack and the final LayerNorm (the original
    ``GPT2ParallelTransformer``)."""

    def __init__(self, num_layers, hidden_size, num_attention_heads, max_sequence_length, max_memory_length,
                 embedding_dropout_prob, attention_dropout_prob, output_dropout_prob, checkpoint_activations,
                 checkpoint_num_layers=1, init_method_std=0.02, relative_encoding=False,
                 block_position_encoding=False, attention_scale=1.0, group=None, attention_backend="auto"):
        super().__init__()
        if attention_backend not in attn.BACKENDS:
            raise ValueError(f"attention_backend must be one of {attn.BACKENDS}, got {attention_backend!r}")
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
        self.attention_backend = attention_backend
        self.embedding_dropout = nn.Dropout(embedding_dropout_prob)

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
                                     init, output_init, relative_encoding, attention_scale, group,
                                     attention_backend)
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

    def forward(self, hidden_states, position_ids, attention_mask, *mems, return_memory=False, detach_memory=True):
        batch, query_length = hidden_states.shape[:2]
        memory_length = self._check_mems(mems, batch)
        mask = attn.prepare_mask(attention_mask, batch, query_length, memory_length, hidden_states.dtype)
        if self.attention_backend == "flex" and mask.dtype == torch.bool and not self.relative_encoding:
            mask = attn.FlexMask(mask, attn.flex_block_mask(mask))

        position_embeddings = None
        if self.relative_encoding:
            distances = torch.arange(memory_length + query_length - 1, -1, -1.0, device=hidden_states.device)
            position_embeddings = self.embedding_dropout(self.position_embeddings(distances).to(hidden_states.dtype))
            hidden_states = self.embedding_dropout(hidden_states)
        else:
            hidden_states = self.embed_positions(hidden_states, position_ids)

        keep_memory = self.max_memory_length > 0 or return_memory
        layer_inputs = [hidden_states] if keep_memory else []
        extra = dict(position_embeddings=position_embeddings,
                     r_w_bias=getattr(self, "r_w_bias", None), r_r_bias=getattr(self, "r_r_bias", None),
                     kernel=self._attention_kernel(hidden_states))

        if self.checkpoint_activations and torch.is_grad_enabled():
            chunk = max(1, self.checkpoint_num_layers)
            for start in range(0, self.num_layers, chunk):
                end = min(start + chunk, self.num_layers)
                chunk_mems = list(mems[start:end]) if mems else []
                outputs = mpu.checkpoint(self._chunk_forward(start, end, mask, extra), hidden_states, *chunk_mems)
                hidden_states = outputs[-1]
                if keep_memory:
                    layer_inputs.extend(outputs)
        else:
            for i, layer in enumerate(self.layers):
                hidden_states = layer(hidden_states, mask, mems[i] if mems else None, **extra)
                if keep_memory:
                    layer_inputs.append(hidden_states)

        output = self.final_layernorm(hidden_states)
        new_mems = self.update_mems(layer_inputs, mems, return_memory, detach_memory) if keep_memory else []
        return output, new_mems

    def _attention_kernel(self, hidden_states):
        """The kernel every layer runs for a boolean mask in this forward, chosen here, outside the
        (possibly compiled) layers: the dtype is the one autocast will give the attention inputs."""
        if not self.layers:
            return None
        device_type = hidden_states.device.type
        dtype = torch.get_autocast_dtype(device_type) if torch.is_autocast_enabled(device_type) \
            else hidden_states.dtype
        return self.layers[0].attention._kernel(device_type, dtype)

    def _chunk_forward(self, start, end, mask, extra):
        def run(hidden_states, *chunk_mems):
            outputs = []
            for offset, layer in enumerate(self.layers[start:end]):
                hidden_states = layer(hidden_states, mask, chunk_mems[offset] if chunk_mems else None, **extra)
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
