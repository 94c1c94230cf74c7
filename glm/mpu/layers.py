"""Tensor-parallel embedding and linear layers (Megatron style, spec section 3).

With a group of one these are exactly ``nn.Embedding`` / ``nn.Linear``.  Weights are always
initialised as the *full* master tensor on the CPU with the CPU RNG and then sliced, so a model
is bit-identical whatever its model-parallel size.  Every parameter carries attributes that
describe its layout (``model_parallel``, ``partition_dim``, ``partition_stride``); the
checkpoint resharder reads them instead of guessing from names.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from .initialize import get_model_parallel_group, group_rank, group_world_size
from .mappings import (
    copy_to_model_parallel_region,
    gather_from_model_parallel_region,
    reduce_from_model_parallel_region,
    scatter_to_model_parallel_region,
)
from .partition import shard_tensor
from .utils import divide


def normal_init(std=0.02):
    """Initialiser N(0, std)."""
    def init_(tensor):
        return nn.init.normal_(tensor, mean=0.0, std=std)
    return init_


def scaled_normal_init(std, num_layers):
    """N(0, std / sqrt(2 * num_layers)): the output projections of each residual branch."""
    return normal_init(std / math.sqrt(2.0 * num_layers))


def set_partition_attributes(param, dim, stride=1):
    """Record how ``param`` is split across model-parallel ranks (``dim=None``: replicated)."""
    param.model_parallel = dim is not None
    param.partition_dim = dim
    param.partition_stride = stride


def partition_info(param):
    """``(dim, stride)`` of a parameter or buffer; plain torch parameters are replicated."""
    return getattr(param, "partition_dim", None), getattr(param, "partition_stride", 1)


def _init_sharded(param, full_shape, init_method, dim, stride, group):
    """Fill ``param`` with this rank's slice of a full tensor initialised on the CPU."""
    if param.device.type == "meta":
        return
    full = torch.empty(full_shape, dtype=torch.float32, device="cpu")
    init_method(full)
    shard = shard_tensor(full, dim, stride, group_world_size(group), group_rank(group))
    with torch.no_grad():
        param.copy_(shard.to(param.dtype))


class VocabParallelEmbedding(nn.Module):
    """Embedding whose rows (the vocabulary) are split across the model-parallel group.

    Rank ``r`` owns ids ``[r*V/p, (r+1)*V/p)``; other ids look up zeros locally and the
    all-reduce assembles the full embedding.  ``V`` must be divisible by ``p``, which is why the
    vocabulary is padded.
    """

    def __init__(self, num_embeddings, embedding_dim, init_method=None, group=None, device=None, dtype=None):
        super().__init__()
        self.group = get_model_parallel_group() if group is None else group
        world = group_world_size(self.group)
        if num_embeddings % world != 0:
            raise ValueError(
                f"vocabulary size {num_embeddings} is not divisible by the model-parallel size {world}; "
                "pad it (--make-vocab-size-divisible-by)")
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        per_rank = num_embeddings // world
        self.vocab_start_index = group_rank(self.group) * per_rank
        self.vocab_end_index = self.vocab_start_index + per_rank
        self.weight = nn.Parameter(torch.empty(per_rank, embedding_dim, device=device, dtype=dtype))
        set_partition_attributes(self.weight, 0, 1)
        _init_sharded(self.weight, (num_embeddings, embedding_dim), init_method or normal_init(0.02), 0, 1, self.group)

    def forward(self, input_ids):
        if group_world_size(self.group) == 1:
            return F.embedding(input_ids, self.weight)
        outside = (input_ids < self.vocab_start_index) | (input_ids >= self.vocab_end_index)
        local_ids = (input_ids - self.vocab_start_index).masked_fill(outside, 0)
        out = F.embedding(local_ids, self.weight)
        out = out.masked_fill(outside.unsqueeze(-1), 0.0)
        return reduce_from_model_parallel_region(out, self.group)


class ColumnParallelLinear(nn.Module):
    """``Y = X A^T + b`` with ``A`` split along its output rows.

    ``stride`` > 1 interleaves the split (``stride=3`` gives each rank ``[Q_r; K_r; V_r]`` of a
    fused QKV projection).  With ``gather_output=False`` the caller receives only this rank's
    output columns.
    """

    def __init__(self, input_size, output_size, bias=True, gather_output=True, init_method=None,
                 stride=1, group=None, device=None, dtype=None):
        super().__init__()
        self.group = get_model_parallel_group() if group is None else group
        world = group_world_size(self.group)
        self.input_size = input_size
        self.output_size = output_size
        self.gather_output = gather_output
        per_rank = divide(output_size, world, "output size of a column-parallel layer")
        divide(output_size, world * stride, "output size of a strided column-parallel layer")
        self.weight = nn.Parameter(torch.empty(per_rank, input_size, device=device, dtype=dtype))
        set_partition_attributes(self.weight, 0, stride)
        _init_sharded(self.weight, (output_size, input_size), init_method or normal_init(0.02), 0, stride, self.group)
        if bias:
            self.bias = nn.Parameter(torch.zeros(per_rank, device=device, dtype=dtype))
            set_partition_attributes(self.bias, 0, stride)
        else:
            self.register_parameter("bias", None)
        self.lora = None  # a glm.mpu.lora.LoRA adapter, when added

    def forward(self, x):
        out = F.linear(copy_to_model_parallel_region(x, self.group), self.weight, self.bias)
        if self.lora is not None:
            out = out + self.lora(x)
        if self.gather_output:
            out = gather_from_model_parallel_region(out, self.group)
        return out


class RowParallelLinear(nn.Module):
    """``Y = X A^T + b`` with ``A`` split along its input columns.

    The partial products are summed by an all-reduce; the bias is replicated and added once,
    after the reduction.
    """

    def __init__(self, input_size, output_size, bias=True, input_is_parallel=False, init_method=None,
                 stride=1, group=None, device=None, dtype=None):
        super().__init__()
        self.group = get_model_parallel_group() if group is None else group
        world = group_world_size(self.group)
        self.input_size = input_size
        self.output_size = output_size
        self.input_is_parallel = input_is_parallel
        per_rank = divide(input_size, world, "input size of a row-parallel layer")
        self.weight = nn.Parameter(torch.empty(output_size, per_rank, device=device, dtype=dtype))
        set_partition_attributes(self.weight, 1, stride)
        _init_sharded(self.weight, (output_size, input_size), init_method or normal_init(0.02), 1, stride, self.group)
        if bias:
            self.bias = nn.Parameter(torch.zeros(output_size, device=device, dtype=dtype))
            set_partition_attributes(self.bias, None)
        else:
            self.register_parameter("bias", None)
        self.lora = None  # a glm.mpu.lora.LoRA adapter, when added

    def forward(self, x):
        if not self.input_is_parallel:
            x = scatter_to_model_parallel_region(x, self.group)
        out = reduce_from_model_parallel_region(F.linear(x, self.weight), self.group)
        if self.lora is not None:
            out = out + self.lora(x)
        if self.bias is not None:
            out = out + self.bias
        return out
