"""Tensor model parallelism in the style of Megatron-LM (spec section 3).

Every layer and mapping takes an explicit process ``group``; when it is omitted the
model-parallel group registered by :func:`initialize_model_parallel` is used, and when
torch.distributed is not initialised at all everything degrades to plain single-process
layers (so the model runs on one CPU or GPU without a launcher).
"""

from .initialize import (
    initialize_model_parallel,
    destroy_model_parallel,
    model_parallel_is_initialized,
    get_model_parallel_group,
    get_model_parallel_rank,
    get_model_parallel_world_size,
    get_model_parallel_src_rank,
    get_data_parallel_group,
    get_data_parallel_rank,
    get_data_parallel_world_size,
    data_parallel_rank_and_size,
    group_rank,
    group_world_size,
    get_tensor_model_parallel_group,
    get_tensor_model_parallel_rank,
    get_tensor_model_parallel_world_size,
    get_tensor_model_parallel_src_rank,
)
from .mappings import (
    copy_to_model_parallel_region,
    reduce_from_model_parallel_region,
    scatter_to_model_parallel_region,
    gather_from_model_parallel_region,
)
from .layers import (
    VocabParallelEmbedding,
    ColumnParallelLinear,
    RowParallelLinear,
    set_partition_attributes,
    partition_info,
)
from .cross_entropy import vocab_parallel_cross_entropy
from .grads import clip_grad_norm
from .data import broadcast_data
from .random import (
    RNGStatesTracker,
    get_rng_tracker,
    get_cuda_rng_tracker,
    model_parallel_manual_seed,
    model_parallel_cuda_manual_seed,
    checkpoint,
)
from .utils import divide, ensure_divisibility, split_tensor_along_last_dim
