"""LoRA finetuning of a GLM (``--lora-rank``, ``--lora-alpha``, ``--lora-dropout``, ``--lora-targets``,
``--lora-save``; docs/finetuning.md).  The adapters themselves are :class:`glm.mpu.lora.LoRA`.

With adapters on, the word embeddings and the transformer are frozen; what trains is the adapters
plus whatever lies outside the backbone (the P-tuning prompt encoder, classification layers).
A checkpoint is written either merged (the original layout, ``W + scaling * B A``, readable by
every tool that reads GLM checkpoints) or as the adapter alone (the trainable tensors only).
"""

from ..mpu.layers import ColumnParallelLinear, RowParallelLinear
from ..mpu.lora import LoRA, lora_layers, merge_lora

#: The parallel layers of a transformer layer that can take an adapter.
LORA_TARGETS = ("query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h")
SAVE_MODES = ("merged", "adapter")
#: Every adapter tensor's state-dict key holds this (the adapter sits at ``<layer>.lora``).
ADAPTER_KEY_MARK = ".lora."
#: The checkpoint entry where an adapter-only save records how its adapters were built.
SETTINGS_KEY = "lora"


def parse_targets(text):
    """``"query_key_value,dense"`` -> a tuple of known target names (an unknown one is an error)."""
    targets = tuple(t.strip() for t in text.split(",") if t.strip())
    unknown = [t for t in targets if t not in LORA_TARGETS]
    if unknown or not targets:
        raise ValueError(
            f"--lora-targets: {', '.join(unknown) or 'nothing given'}; choose from {', '.join(LORA_TARGETS)}")
    return targets


def _backbone(model):
    return getattr(model, "model", model)


def add_lora(model, rank, alpha, dropout=0.0, targets=LORA_TARGETS):
    """Put adapters on the ``targets`` layers of every transformer layer of ``model`` (a GLMModel
    or a head around one) and freeze the embeddings and transformer; returns the adapted layer names.
    Call it once the backbone holds its real weights (after loading a checkpoint)."""
    glm = _backbone(model)
    glm.word_embeddings.requires_grad_(False)
    glm.transformer.requires_grad_(False)
    adapted = []
    for name, module in glm.transformer.named_modules():
        if isinstance(module, (ColumnParallelLinear, RowParallelLinear)) and name.rsplit(".", 1)[-1] in targets:
            module.lora = LoRA(module, rank, alpha, dropout)
            adapted.append(name)
    return adapted


def settings_from_config(config):
    """``{rank, alpha, targets}`` of the ``--lora-*`` flags (alpha defaults to the rank); None without
    ``--lora-rank``."""
    rank = config.adaptation.lora_rank
    if not rank:
        return None
    alpha = config.adaptation.lora_alpha if config.adaptation.lora_alpha is not None else rank
    return {"rank": rank, "alpha": float(alpha), "targets": list(parse_targets(config.adaptation.lora_targets))}


def add_lora_from_config(model, config):
    """:func:`add_lora` with the flags; a no-op without ``--lora-rank``."""
    settings = settings_from_config(config)
    if settings is None:
        return []
    return add_lora(model, settings["rank"], settings["alpha"], config.adaptation.lora_dropout, settings["targets"])


def adapter_settings(model):
    """``{rank, alpha, targets}`` of the adapters on ``model`` (what an adapter-only save records);
    None without adapters."""
    layers = lora_layers(model)
    if not layers:
        return None
    lora = layers[0][1].lora
    return {"rank": lora.rank, "alpha": lora.scaling * lora.rank,
            "targets": sorted({name.rsplit(".", 1)[-1] for name, _ in layers})}


def is_adapter_key(key):
    return ADAPTER_KEY_MARK in key


def stored_adapter_shape(state_dict):
    """``(rank, targets)`` of the adapters in ``state_dict`` (their A's rows and the layers they sit
    on); None when it holds none."""
    keys = [key for key in state_dict if is_adapter_key(key)]
    if not keys:
        return None
    targets = sorted({key.split(ADAPTER_KEY_MARK)[0].rsplit(".", 1)[-1] for key in keys})
    rank = next(state_dict[key].shape[0] for key in keys if key.endswith(ADAPTER_KEY_MARK + "a"))
    return rank, targets


def has_lora(model):
    return bool(lora_layers(model))


def _adapter_tensors(model):
    return {id(layer.lora.a) for _, layer in lora_layers(model)} | {id(layer.lora.b) for _, layer in lora_layers(model)}


def merged_state_dict(model):
    """``model.state_dict()`` in the original layout: each adapted weight replaced by
    ``W + scaling * B A`` (in ``W``'s dtype) and the adapter entries left out; the model is unchanged."""
    merged = {id(layer.weight): layer for _, layer in lora_layers(model)}
    adapters = _adapter_tensors(model)
    out = {}
    for key, value in model.state_dict(keep_vars=True).items():
        if id(value) in adapters:
            continue
        layer = merged.get(id(value))
        if layer is not None:
            value = value + layer.lora.delta_weight().to(value.dtype)
        out[key] = value.detach()
    return out


def adapter_state_dict(model):
    """The trainable entries only: the adapters and the parts outside the frozen backbone."""
    return {key: value.detach() for key, value in model.state_dict(keep_vars=True).items() if value.requires_grad}


def state_dict_to_save(model, mode="merged"):
    """What a LoRA run writes as its weights (``--lora-save``); the plain state dict without adapters."""
    if not has_lora(model):
        return model.state_dict()
    if mode not in SAVE_MODES:
        raise ValueError(f"--lora-save must be one of {SAVE_MODES}, got {mode!r}")
    return merged_state_dict(model) if mode == "merged" else adapter_state_dict(model)


def load_saved_weights(model, state_dict):
    """Put weights written by :func:`state_dict_to_save` back into the adapted ``model``: an adapter
    file fills the adapters (and heads); a merged file replaces the weights and the adapters are
    removed (the merged weights already hold them)."""
    adapters = _adapter_tensors(model)
    keys = model.state_dict(keep_vars=True)
    if any(id(keys[k]) in adapters for k in state_dict if k in keys):
        result = model.load_state_dict(state_dict, strict=False)
        unexpected = list(result.unexpected_keys)
    else:
        merge_lora(model)
        result = model.load_state_dict(state_dict, strict=False)
        unexpected = list(result.unexpected_keys) + list(result.missing_keys)
    if unexpected:
        raise ValueError(f"the saved LoRA weights do not match the model: {unexpected[:5]}")
    return model


__all__ = ["ADAPTER_KEY_MARK", "LORA_TARGETS", "SAVE_MODES", "SETTINGS_KEY", "adapter_settings", "add_lora",
           "add_lora_from_config", "adapter_state_dict", "has_lora", "is_adapter_key", "load_saved_weights",
           "merge_lora", "merged_state_dict", "parse_targets", "settings_from_config", "state_dict_to_save",
           "stored_adapter_shape"]
