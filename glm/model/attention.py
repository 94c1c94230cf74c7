"""GLM attention masks, the attention kernels that apply them, and the spec that chooses the kernel
(spec section 2).

Masks.  ``GLMModel.forward`` accepts ``attention_mask`` as a separator ``sep`` (one value, or
one per sample) or as an explicit 0/1 matrix.  For a separator, query ``i`` may attend key
``j`` iff ``j < sep`` or ``j <= i``: Part A (``< sep``) is bidirectional, Part B is causal and
sees all of A.  Memory columns (hidden-state memory or key/value cache), when present, are always
visible.  :func:`prepare_mask` also says whether a mask needs the exact kernel.

Kernels.  ``reference`` computes the scores explicitly and masks them the original's way
(multiply by the 0/1 mask, then add ``-65504`` where it is 0).  ``explicit`` computes them the same
way from a boolean mask (turned once per forward into a bias, ``-inf`` where it is False) with
:mod:`.dropout`'s cheap CPU mask.
``sdpa`` hands a boolean mask to ``torch.nn.functional.scaled_dot_product_attention``; ``flex`` to
FlexAttention.  They agree to float rounding whenever every query row can see at least one key,
which is always true for separator masks; explicit matrices with a fully hidden row (a degenerate
padding row) or non-0/1 values need ``reference`` so the result stays identical to the original.

Choice.  :class:`AttentionSpec` (in the spirit of megatron/core's ``ModuleSpec``) is built once when
the model is built, from ``--attention-backend``, and logged; the transformer asks it once per
forward which kernel every layer runs (:meth:`AttentionSpec.kernel`), from the device, the compute
dtype, whether attention dropout is active and the mask's needs -- never from the mask's dtype.
``auto`` picks between ``sdpa`` and ``explicit`` from :data:`AUTO_KERNELS`, a table measured on the
hardware this project runs on (see ``docs/model.md``); the pick is logged once per combination.
Every kernel it may pick agrees with ``reference`` within float rounding of the dtype (tested in
``tests/model/test_attention_choice.py``).

This module owns masks, kernels and the kernel choice; it must not touch parameters, process
groups or inputs other than the mask (those are ``transformer.py``'s and ``glm.inputs``').
"""

import logging
import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F

from .dropout import dropout_with_scale_deferred

logger = logging.getLogger(__name__)

MASK_FILL = -65504.0  # the fp16 minimum the original adds to hidden scores
BACKENDS = ("auto", "sdpa", "reference", "explicit", "flex")


_compiled_flex = None


def flex_block_mask(mask):
    """FlexAttention block mask equal to the boolean ``mask`` ``[B or 1, 1, L, K]`` (built once per forward)."""
    from torch.nn.attention.flex_attention import create_block_mask

    dense = mask[:, 0]
    if dense.size(0) == 1:
        def mask_mod(b, h, q, kv):
            return dense[0, q, kv]
    else:
        def mask_mod(b, h, q, kv):
            return dense[b, q, kv]
    return create_block_mask(mask_mod, B=dense.size(0), H=None, Q_LEN=dense.size(1), KV_LEN=dense.size(2),
                             device=dense.device)


def flex_attention(query, key, value, block_mask):
    """FlexAttention (compiled once per process) with a GLM block mask; no dropout support."""
    global _compiled_flex
    if _compiled_flex is None:
        from torch.nn.attention.flex_attention import flex_attention as eager_flex
        _compiled_flex = torch.compile(eager_flex, dynamic=False)
    return _compiled_flex(query, key, value, block_mask=block_mask)


def sep_to_mask(sep, batch_size, query_length, memory_length, device):
    """Boolean mask ``[B or 1, 1, L, M + L]`` for separator(s) ``sep`` (True = may attend)."""
    sep = sep.to(device=device).reshape(-1)
    if sep.numel() not in (1, batch_size):
        raise ValueError(f"attention_mask separator must have 1 or {batch_size} elements, got {sep.numel()}")
    low, high = torch.stack(torch.aminmax(sep)).tolist()  # one device sync for both bounds, every forward
    if low < 0 or high > query_length:
        raise ValueError(
            f"attention_mask separator values must lie in [0, {query_length}] (the sequence length); "
            f"got {sep.tolist()}")
    q = torch.arange(query_length, device=device).view(1, -1, 1)
    k = torch.arange(query_length, device=device).view(1, 1, -1)
    visible = (k <= q) | (k < sep.view(-1, 1, 1))
    if memory_length > 0:
        memory = torch.ones(visible.size(0), query_length, memory_length, dtype=torch.bool, device=device)
        visible = torch.cat([memory, visible], dim=-1)
    return visible.unsqueeze(1)


def is_separator(attention_mask, batch_size):
    """The original's rule: one element, or one per sample, means a separator."""
    return attention_mask.numel() == 1 or attention_mask.numel() == batch_size


class PreparedMask(NamedTuple):
    """The mask the attention layers consume, whether only the exact ``reference`` kernel may apply it, and
    for separator masks on CPU the :func:`attend_in_two_parts` split ``(min sep, max sep)`` (else None)."""
    mask: torch.Tensor
    exact: bool
    prefix: tuple = None


def prepare_mask(attention_mask, batch_size, query_length, memory_length, dtype):
    """Turn any accepted ``attention_mask`` form into a :class:`PreparedMask`.

    Separators and 0/1 matrices in which every row sees some key become a boolean mask that every
    kernel applies alike; any other matrix (non-0/1 values, a fully hidden row) stays a float
    tensor in ``dtype`` with ``exact=True``: the original's multiply-then-add masking is the only
    faithful way to apply it.
    """
    if is_separator(attention_mask, batch_size):
        mask = sep_to_mask(attention_mask, batch_size, query_length, memory_length, attention_mask.device)
        prefix = None
        if memory_length == 0 and attention_mask.device.type == "cpu":  # on GPUs: no extra host sync
            prefix = tuple(torch.stack(torch.aminmax(attention_mask.reshape(-1))).tolist())
        return PreparedMask(mask, False, prefix)
    if attention_mask.size(-2) != query_length or attention_mask.size(-1) < memory_length + query_length:
        raise ValueError(
            f"attention_mask of shape {tuple(attention_mask.shape)} does not cover {query_length} queries and "
            f"{memory_length + query_length} keys (memory {memory_length} + sequence {query_length})")
    # Only the last M + L columns are used, as in the original.
    matrix = attention_mask[..., -(memory_length + query_length):]
    binary = bool(((matrix == 0) | (matrix == 1)).all())
    every_row_sees_something = bool((matrix != 0).any(dim=-1).all())
    if binary and every_row_sees_something:
        return PreparedMask(matrix != 0, False)
    return PreparedMask(matrix.to(dtype), True)


def attend_in_two_parts(attend, query, key, value, mask, prefix):
    """``attend(query, key, value, mask)`` for a separator mask, without the scores no query can see.

    With separators between ``prefix = (first, last)``, a query before ``first`` is in part A of every
    sample and sees exactly the keys before its sample's separator, all of them before ``last``: those
    rows attend to the first ``last`` keys only, the other rows to all keys.  The same attention (each
    row's softmax, and its dropout, covers the keys it sees either way) with part A's scores on part B's
    keys, about 15% of a token-span batch's attention, never computed.  ``query``/``key``/``value``
    ``[B, n, L, d]`` over the same L positions; anything else runs in one call."""
    length = key.size(-2)
    if prefix is None or query.size(-2) != length:
        return attend(query, key, value, mask)
    rows, columns = prefix
    if rows <= 0 or columns >= length:
        return attend(query, key, value, mask)
    part_a = attend(query[..., :rows, :], key[..., :columns, :], value[..., :columns, :], mask[..., :rows, :columns])
    rest = attend(query[..., rows:, :], key, value, mask[..., rows:, :])
    return torch.cat([part_a, rest], dim=-2)


def reference_attention(query, key, value, mask, dropout, attention_scale=1.0):
    """Explicit attention exactly as the original computes it.

    ``query`` ``[B, n, L, d]``, ``key``/``value`` ``[B, n, K, d]``, ``mask`` bool or 0/1 float
    broadcastable to ``[B, n, L, K]``.  ``dropout`` is a callable applied to the probabilities.
    """
    head_dim = query.size(-1)
    scores = scaled_scores(query, key, attention_scale)
    probs = masked_softmax(scores, mask, attention_scale)
    return torch.matmul(dropout(probs), value)


def additive_mask(mask, dtype):
    """The boolean ``mask`` (True = visible) as the bias :func:`explicit_attention` adds to the scores:
    0 where visible, ``-inf`` where hidden, in the scores' ``dtype`` (built once per forward)."""
    return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill_(~mask, float("-inf"))


def explicit_attention(query, key, value, mask_bias, dropout_p):
    """Explicit attention with an :func:`additive_mask` (from a mask in which every row sees some key),
    faster on CPU than SDPA's unfused path when attention dropout is on.  Hidden scores get ``-inf`` as in
    SDPA, added in place (a masked fill would copy the scores, and its backward the gradient); the dropout
    draws :mod:`.dropout`'s cheap mask, and its ``1 / keep`` scale multiplies the context (``[L, d]``)
    instead of the probabilities (``[L, K]``).  ``dropout_p`` is 0 outside training."""
    scores = torch.matmul(query * (1.0 / math.sqrt(query.size(-1))), key.transpose(-1, -2))
    probs = torch.softmax(scores.add_(mask_bias), dim=-1)
    if dropout_p == 0.0:
        return torch.matmul(probs, value)
    probs, scale = dropout_with_scale_deferred(probs, dropout_p)
    context = torch.matmul(probs, value)
    return context * scale if scale != 1.0 else context


def scaled_scores(query, key, attention_scale=1.0):
    """``Q (K^T / sqrt(d))``; with ``attention_scale`` s > 1 the original's fp16-safe variant
    ``(Q / sqrt(s)) (K^T / sqrt(d s))`` (the softmax later multiplies by s again)."""
    head_dim = query.size(-1)
    if attention_scale > 1.0:
        return torch.matmul(query / math.sqrt(attention_scale),
                            key.transpose(-1, -2) / math.sqrt(head_dim * attention_scale))
    return torch.matmul(query, key.transpose(-1, -2) / math.sqrt(head_dim))


def masked_softmax(scores, mask, attention_scale=1.0):
    """Multiply-then-add masking with -65504, then softmax over keys (spec section 1.2)."""
    mask = mask.to(scores.dtype)
    scores = scores * mask + MASK_FILL * (1.0 - mask)
    if attention_scale > 1.0:
        row_max = scores.max(dim=-1, keepdim=True)[0]
        scores = (scores - row_max) * attention_scale
    return torch.softmax(scores, dim=-1)


# (device type, dtype, attention dropout active) -> the kernel ``auto`` runs for boolean masks; missing
# entries run SDPA.  Measured forward + backward of the attention alone (bench/bench_attention_kernels.py:
# GLM-Base shape, batch 2, 12 heads, sequence 512, head 64, sep at 85%; the demo's, batch 8, 4 heads,
# sequence 256), 2 CPU threads.  With attention dropout SDPA runs its unfused math path with torch's
# dropout mask, and ``explicit`` (the cheap dropout mask, the scale on the context) beats it in both
# dtypes (float32 62 vs 92 ms at GLM-Base, 13 vs 23 ms at the demo's; bfloat16 47 vs 83 ms).  Without
# dropout SDPA's fused float32 kernel is 2x faster than any explicit one at GLM-Base (20 vs 39 ms), while
# in bfloat16 the explicit kernel is faster (29 vs 39 ms).  GPUs: SDPA (flash/cuDNN/efficient kernels).
AUTO_KERNELS = {
    ("cpu", torch.float32, True): "explicit",
    ("cpu", torch.bfloat16, True): "explicit",
    ("cpu", torch.bfloat16, False): "explicit",
}
_logged_choices = set()


def auto_kernel(device_type, dtype, dropout_active):
    """``'sdpa'`` or ``'explicit'``: what ``auto`` runs for a boolean mask (logged the first time)."""
    kernel = AUTO_KERNELS.get((device_type, dtype, bool(dropout_active)), "sdpa")
    key = (device_type, dtype, bool(dropout_active))
    if key not in _logged_choices:
        _logged_choices.add(key)
        logger.info("attention backend auto: %s kernel on %s in %s%s", kernel, device_type,
                    str(dtype).replace("torch.", ""), " with attention dropout" if dropout_active else "")
    return kernel


def sdpa_attention(query, key, value, mask, dropout_p):
    """Fused attention through ``torch.nn.functional.scaled_dot_product_attention``."""
    return F.scaled_dot_product_attention(query, key, value, attn_mask=mask, dropout_p=dropout_p)


@dataclass(frozen=True)
class AttentionSpec:
    """Which attention implementation a model runs, fixed when the model is built.

    ``backend`` is the ``--attention-backend`` value: ``reference``, ``explicit`` and ``sdpa`` force that
    kernel, ``flex`` runs FlexAttention where it can (it has no dropout on the probabilities and is compiled
    per shape, so training with attention dropout and key/value-cache decoding run SDPA), ``auto``
    runs :data:`AUTO_KERNELS`' pick for the device, dtype and dropout.  Transformer-XL models
    (``relative``) always run their explicit relative-position attention.
    """
    backend: str = "auto"
    relative: bool = False

    def __post_init__(self):
        if self.backend not in BACKENDS:
            raise ValueError(f"attention_backend must be one of {BACKENDS}, got {self.backend!r}")

    @classmethod
    def of(cls, backend, relative=False):
        """The spec for an ``--attention-backend`` value (a spec is taken as it is)."""
        if isinstance(backend, cls):
            return backend
        return cls(backend, relative)

    def describe(self):
        if self.relative:
            return "relative-position attention (Transformer-XL), explicit kernel"
        if self.backend == "auto":
            return "auto: SDPA, or the AUTO_KERNELS pick per device, dtype and attention dropout"
        return f"{self.backend} kernel"

    def kernel(self, device_type, dtype, dropout_active, exact_mask=False, incremental=False):
        """The kernel (``'relative'``, ``'reference'``, ``'explicit'``, ``'sdpa'`` or ``'flex'``) every layer
        runs in one forward: ``dtype`` is the attention's compute dtype (autocast's when it is on), ``exact_mask``
        says the mask needs ``reference`` (:class:`PreparedMask`), ``incremental`` that the forward
        extends a key/value cache."""
        if self.relative:
            return "relative"
        if exact_mask or self.backend == "reference":
            return "reference"
        if self.backend == "auto":
            return auto_kernel(device_type, dtype, dropout_active)
        if self.backend == "flex" and (dropout_active or incremental):
            return "sdpa"
        return self.backend
