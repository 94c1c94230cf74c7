"""Low-rank adapters (LoRA) on the tensor-parallel linear layers.

A layer ``y = x W^T`` gains ``scaling * B A x`` with ``A`` ``[rank, in]`` and ``B`` ``[out, rank]``
(``scaling = alpha / rank``); ``B`` starts at zero, so a fresh adapter changes nothing.  The
adapter is cut like its layer so that no extra communication of activations is needed:

* column-parallel layer (``W`` split by output rows, maybe strided as the fused QKV): ``A``
  replicated, ``B`` split by rows exactly like ``W`` (same dim and stride), so ``B_r A`` is
  rank ``r``'s rows of the update;
* row-parallel layer (``W`` split by input columns): ``A`` split by columns like ``W``, ``B``
  replicated, so ``B A_r`` is rank ``r``'s columns of the update.

The rank-sized intermediate ``A x`` is what crosses ranks: identity forward / all-reduce
backward on a column layer (every rank's ``B_r`` contributes to the gradient of the shared ``A``),
all-reduce forward on a row layer (the partial products of the column blocks).  Both adapters
carry the partition attributes of :mod:`glm.mpu.layers`, so resharding and ``change_mp.py`` cut
them with the same rule as every other tensor.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from .layers import ColumnParallelLinear, RowParallelLinear, _init_sharded, partition_info, set_partition_attributes
from .mappings import copy_to_model_parallel_region, reduce_from_model_parallel_region


def _kaiming_uniform(tensor):
    # What nn.Linear draws for its weight (and common LoRA practice for A), on the full tensor.
    return nn.init.kaiming_uniform_(tensor, a=math.sqrt(5))


class LoRA(nn.Module):
    """The adapter of one :class:`ColumnParallelLinear` or :class:`RowParallelLinear` ``layer``;
    ``forward`` takes the input the layer's own matmul sees (the replicated input of a column layer,
    this rank's slice for a row layer) and returns the update to add to the layer's output."""

    def __init__(self, layer, rank, alpha, dropout=0.0):
        super().__init__()
        if rank < 1:
            raise ValueError(f"the LoRA rank must be >= 1, got {rank}")
        self.column = isinstance(layer, ColumnParallelLinear)
        if not self.column and not isinstance(layer, RowParallelLinear):
            raise TypeError(f"LoRA adapts ColumnParallelLinear/RowParallelLinear layers, not {type(layer).__name__}")
        self.group = layer.group
        self.rank = rank
        self.scaling = alpha / rank
        self.dropout = nn.Dropout(dropout)
        dim, stride = partition_info(layer.weight)
        out_local, in_local = layer.weight.shape
        factory = dict(device=layer.weight.device, dtype=layer.weight.dtype)
        if self.column:
            self.a = nn.Parameter(torch.empty(rank, layer.input_size, **factory))
            self.b = nn.Parameter(torch.zeros(out_local, rank, **factory))
            a_layout, b_layout = (None, 1), (dim, stride)
        else:
            self.a = nn.Parameter(torch.empty(rank, in_local, **factory))
            self.b = nn.Parameter(torch.zeros(layer.output_size, rank, **factory))
            a_layout, b_layout = (dim, stride), (None, 1)
        set_partition_attributes(self.a, *a_layout)
        set_partition_attributes(self.b, *b_layout)
        # Drawn as the full tensor on the CPU and sliced, like the layers: the same at every TP size.
        _init_sharded(self.a, (rank, layer.input_size), _kaiming_uniform, *a_layout, self.group)

    def forward(self, x):
        h = F.linear(self.dropout(x), self.a)
        if self.column:
            h = copy_to_model_parallel_region(h, self.group)
        else:
            h = reduce_from_model_parallel_region(h, self.group)
        return F.linear(h, self.b) * self.scaling

    def delta_weight(self):
        """This rank's part of ``scaling * B A``, shaped like the layer's weight shard."""
        return (self.b.float() @ self.a.float()) * self.scaling


def lora_layers(model):
    """``(name, layer)`` of every parallel linear layer of ``model`` that carries an adapter."""
    return [(name, module) for name, module in model.named_modules()
            if isinstance(module, (ColumnParallelLinear, RowParallelLinear)) and module.lora is not None]


def merge_lora(model):
    """Fold every adapter into its layer's weight (``W += scaling * B A``) and remove it: the model
    is then a plain model with the original layout."""
    for _, layer in lora_layers(model):
        with torch.no_grad():
            layer.weight.add_(layer.lora.delta_weight().to(layer.weight.dtype))
        layer.lora = None
    return model
