"""Which tensors of a checkpoint are split, and how: asked of the model itself.

A checkpoint does not say how it was built, but its shapes do (number of layers, hidden size,
vocabulary, position table, relative or block position encoding, P-tuning prompt encoder,
classification head).  From them we build the matching ``GLMModel`` (and head wrapper) on the
``meta`` device -- no memory, no initialisation -- and read every tensor's ``(dim, stride)``
from the attributes the ``glm.mpu`` layers put on their parameters
(:func:`glm.checkpoint.partition_map`).  No decision is ever taken from a name substring.

The number of attention heads is not stored (except under the relative encoding, where
``r_w_bias`` is ``[heads, head_dim]``); it does not change any partitions, only which target sizes
are legal, so it is optional.

Owns inferring the model and the partition map from a state dict's shapes; builds models only on the
``meta`` device and reads no files (callers hand it state dicts).
"""

import contextlib
import dataclasses
import re

import torch

from .errors import CheckpointError
from .reshard import partition_map

_LAYER = re.compile(r"transformer\.layers\.(\d+)\.")
WORD_EMBEDDINGS = "word_embeddings.weight"


@dataclasses.dataclass
class InferredModel:
    """What the shapes of a (possibly model-parallel) checkpoint say about its model."""
    prefix: str                      # "" or "model." (wrapped GLMModel of a head)
    head: str                        # "none", "classification" or "cloze_fast"
    num_layers: int
    hidden_size: int
    vocab_size: int                  # full (unsplit) vocabulary; None when the embeddings are absent
    max_sequence_length: int
    relative_encoding: bool
    block_position_encoding: bool
    spell_length: int = None
    spell_func: str = "lstm"
    num_attention_heads: int = None  # known only under the relative encoding or when given
    num_class: int = 1

    def model_kwargs(self, heads):
        return dict(num_layers=max(self.num_layers, 1), vocab_size=self.vocab_size or 1, hidden_size=self.hidden_size,
                    num_attention_heads=heads, embedding_dropout_prob=0.0, attention_dropout_prob=0.0,
                    output_dropout_prob=0.0, max_sequence_length=self.max_sequence_length, max_memory_length=0,
                    checkpoint_activations=False, relative_encoding=self.relative_encoding,
                    block_position_encoding=self.block_position_encoding, spell_length=self.spell_length,
                    spell_func=self.spell_func, output_predict=self.head != "classification")


def _strip(state_dict, prefix):
    return {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}


def infer_model(state_dict, mp_size=1, num_attention_heads=None):
    """Read the model's hyper-parameters off the shapes of one shard (of ``mp_size``)."""
    keys = list(state_dict)
    if not keys:
        raise CheckpointError("the checkpoint's 'module' state dict is empty")
    prefix = "model." if any(k.startswith("model.") for k in keys) else ""
    core = _strip(state_dict, prefix)
    if "pool_layer.weight" in state_dict or "multichoice_head.weight" in state_dict:
        head = "classification"
    elif prefix:
        head = "cloze_fast"
    else:
        head = "none"

    def shape(key):
        value = core.get(key)
        return tuple(value.shape) if torch.is_tensor(value) else None

    layers = {int(m.group(1)) for k in core for m in [_LAYER.match(k)] if m}
    num_layers = max(layers) + 1 if layers else 0
    hidden = None
    if shape(WORD_EMBEDDINGS):
        hidden = shape(WORD_EMBEDDINGS)[1]
    else:
        for key, value in core.items():
            if key.endswith("layernorm.weight") and torch.is_tensor(value):
                hidden = value.shape[0]
                break
        if hidden is None and shape("prompt_spell.spell_embeddings.weight"):
            hidden = shape("prompt_spell.spell_embeddings.weight")[1]
    if hidden is None:
        raise CheckpointError(
            f"cannot tell the hidden size of the model from the checkpoint keys {keys[:8]}...; "
            "is this a GLM checkpoint?")
    # A partial state dict (finetuning saves only trainable parameters) may lack the embeddings.
    vocab = shape(WORD_EMBEDDINGS)[0] * mp_size if shape(WORD_EMBEDDINGS) else None
    relative = "transformer.r_w_bias" in core
    block = "transformer.block_position_embeddings.weight" in core
    positions = shape("transformer.position_embeddings.weight")
    max_seq = positions[0] - 1 if positions else 1
    heads_found = None
    if relative and shape("transformer.r_w_bias"):
        heads_found = shape("transformer.r_w_bias")[0] * mp_size
        if num_attention_heads is not None and num_attention_heads != heads_found:
            raise CheckpointError(
                f"--num-attention-heads {num_attention_heads} contradicts the checkpoint, whose "
                f"transformer.r_w_bias has {heads_found} heads")
    spell_length, spell_func = None, "lstm"
    if shape("prompt_spell.spell_embeddings.weight"):
        spell_length = shape("prompt_spell.spell_embeddings.weight")[0]
        if any(k.startswith("prompt_spell.lstm_head.") for k in core):
            spell_func = "lstm"
        elif any(k.startswith("prompt_spell.mlp_head.") for k in core):
            spell_func = "mlp"
        else:
            spell_func = "none"
    num_class = state_dict["multichoice_head.weight"].shape[0] if "multichoice_head.weight" in state_dict else 1
    return InferredModel(prefix=prefix, head=head, num_layers=num_layers, hidden_size=hidden, vocab_size=vocab,
                         max_sequence_length=max_seq, relative_encoding=relative, block_position_encoding=block,
                         spell_length=spell_length, spell_func=spell_func,
                         num_attention_heads=heads_found or num_attention_heads, num_class=num_class)


@contextlib.contextmanager
def skip_init():
    """Skip ``torch.nn.init`` while building on ``meta``: there is nothing to initialise, and
    the meta implementations of the random fills pull in ``torch._dynamo`` (seconds, ~100 MB)."""
    init = torch.nn.init
    names = [n for n in dir(init) if n.endswith("_") and not n.startswith("_") and callable(getattr(init, n))]
    saved = {n: getattr(init, n) for n in names}
    try:
        for n in names:
            setattr(init, n, lambda tensor, *args, **kwargs: tensor)
        yield
    finally:
        for n, fn in saved.items():
            setattr(init, n, fn)


def build_meta_model(info):
    """The model (with its head wrapper) described by ``info``, on the ``meta`` device, unsplit."""
    from ..model import GLMModel, GLMForMultiTokenClozeFast, GLMForSequenceClassification

    # Any head count that divides the hidden size gives the same parameter partitions.
    heads = info.num_attention_heads or 1
    if info.hidden_size % heads:
        raise CheckpointError(f"{heads} attention heads do not divide the hidden size {info.hidden_size}")
    with torch.device("meta"), skip_init():
        model = GLMModel(**info.model_kwargs(heads))
        if info.head == "classification":
            model = GLMForSequenceClassification(model, info.hidden_size, 0.0, "cls", num_class=info.num_class)
        elif info.head == "cloze_fast":
            model = GLMForMultiTokenClozeFast(model)
    return model


def _add_stored_adapters(model, state_dict):
    """Put LoRA adapters (a run saved with its adapters, not merged) on the meta ``model`` where
    ``state_dict`` has them, so their partition comes from the adapters themselves."""
    from ..model.lora import add_lora, stored_adapter_shape
    stored = stored_adapter_shape(state_dict)
    if stored is None:
        return
    rank, targets = stored
    with torch.device("meta"), skip_init():
        add_lora(model, rank, rank, targets=targets)


def checkpoint_model(state_dict, mp_size=1, num_attention_heads=None):
    """``(model, info)``: the unsplit model (head wrapper and stored LoRA adapters included) that the
    shapes of ``state_dict`` (one shard of ``mp_size``) describe, on the ``meta`` device."""
    info = infer_model(state_dict, mp_size, num_attention_heads)
    model = build_meta_model(info)
    _add_stored_adapters(model, state_dict)
    return model, info


def checkpoint_partitions(state_dict, mp_size=1, num_attention_heads=None):
    """``(partitions, info)``: ``{key: (dim, stride)}`` for every key of ``state_dict`` (one shard of
    ``mp_size``), decided by the model the shapes describe.  Keys the model does not have are an
    error: guessing their partition is how the original mis-split heads."""
    model, info = checkpoint_model(state_dict, mp_size, num_attention_heads)
    partitions = partition_map(model)
    unknown = [k for k in state_dict if k not in partitions]
    if unknown:
        raise CheckpointError(
            f"the checkpoint holds tensors the inferred model ({info.head} head, {info.num_layers} layers, "
            f"hidden {info.hidden_size}) does not have, so their model-parallel partition is unknown: {unknown[:10]}")
    return {k: partitions[k] for k in state_dict}, info


def check_target_size(info, partitions, shards, target):
    """Refuse a target model-parallel size that does not divide what must be split."""
    if target < 1:
        raise CheckpointError(f"the target model-parallel size must be >= 1, got {target}")
    if info.vocab_size is not None and info.vocab_size % target:
        raise CheckpointError(
            f"target model-parallel size {target} does not divide the vocabulary size {info.vocab_size} "
            "(word_embeddings rows); pad the vocabulary (--make-vocab-size-divisible-by) or pick another size")
    if info.num_attention_heads is not None and info.num_attention_heads % target:
        raise CheckpointError(
            f"target model-parallel size {target} does not divide the number of attention heads "
            f"{info.num_attention_heads}")
    if info.hidden_size % target:
        raise CheckpointError(
            f"target model-parallel size {target} does not divide the hidden size {info.hidden_size}, "
            "so the attention heads cannot be split evenly")
    mp_size = len(shards)
    for key, (dim, stride) in partitions.items():
        if dim is None or not torch.is_tensor(shards[0][key]):
            continue
        full = shards[0][key].size(dim) * mp_size
        if full % (target * stride):
            raise CheckpointError(
                f"target model-parallel size {target} does not divide dimension {dim} of '{key}' "
                f"(size {full}, {stride} interleaved parts)")
