"""Building the model and optimizer from the flags (the original ``train_utils.get_model`` /
``get_optimizer``)."""


import torch

from ..model import GLMModel, glm_get_params_for_weight_decay_optimization


def check_lengths(config):
    """Refuse a ``--seq-length`` the position table cannot index (block positions reach the
    sequence length; the table has ``--max-position-embeddings + 1`` rows)."""
    if not config.model.transformer_xl and config.data.seq_length > config.model.max_position_embeddings:
        raise ValueError(
            f"--seq-length {config.data.seq_length} is larger than the position table "
            f"(--max-position-embeddings {config.model.max_position_embeddings}); raise --max-position-embeddings "
            "or shorten --seq-length")


def build_model(config, device=None, on_meta=False, dtype=None, **overrides):
    """The ``GLMModel`` the flags describe, with the original's flag-to-argument mapping:
    dropouts from ``--hidden-dropout``/``--attention-dropout``, the table size from
    ``--max-position-embeddings``, memory only with ``--transformer-xl``, 2D positions with
    ``--block-lm`` (unless ``--masked-lm``).  ``overrides`` replace or add ``GLMModel`` arguments
    (generation asks for a longer memory and full-vocabulary logits, heads for prompts).

    ``on_meta``: the model is about to receive a checkpoint, so its weights are not drawn: the
    transformer and embeddings are built on the meta device (no memory, no random numbers) in
    ``dtype`` and :func:`glm.checkpoint.load_model_state` puts the checkpoint's tensors in their
    place; ``device`` is then ignored (move the model after loading).  The P-tuning prompt
    encoder, which no pretrained checkpoint holds, is built for real."""
    check_lengths(config)
    kwargs = dict(num_layers=config.model.num_layers,
                  vocab_size=config.model.vocab_size,
                  hidden_size=config.model.hidden_size,
                  num_attention_heads=config.model.num_attention_heads,
                  embedding_dropout_prob=config.model.hidden_dropout,
                  attention_dropout_prob=config.model.attention_dropout,
                  output_dropout_prob=config.model.hidden_dropout,
                  max_sequence_length=config.model.max_position_embeddings,
                  max_memory_length=config.model.mem_length if config.model.transformer_xl else 0,
                  checkpoint_activations=config.training.checkpoint_activations,
                  checkpoint_num_layers=config.training.checkpoint_num_layers,
                  parallel_output=True,
                  relative_encoding=config.model.transformer_xl,
                  block_position_encoding=config.objective.block_lm and not config.objective.masked_lm,
                  attention_scale=config.model.attention_scale,
                  attention_backend=config.model.attention_backend)
    kwargs.update(overrides)
    if on_meta:
        from ..checkpoint.shape_inference import skip_init
        with torch.device("meta"), skip_init():
            model = GLMModel(**kwargs)
        if dtype is not None:
            model = model.to(dtype)
        if model.spell_length is not None:
            model.add_prompt_spell(model.spell_length, kwargs.get("spell_func", "lstm"))
        device = None
    else:
        model = GLMModel(**kwargs)
    if dtype is not None and not on_meta:
        model = model.to(dtype)
    if device is not None:
        model = model.to(device)
    if config.model.compile:
        # Layer by layer: the model's input checks and mask building stay eager (they read values),
        # the layers themselves are static graphs.
        for layer in model.transformer.layers:
            layer.compile()
    return model


def param_groups(model):
    """Weight-decay groups (LayerNorm and biases without decay); frozen parameters left out."""
    return [g for g in glm_get_params_for_weight_decay_optimization(model) if g["params"]]


def build_optimizer(config, model):
    """``torch.optim.AdamW`` (decoupled weight decay, like apex FusedAdam) with ``--lr``,
    ``--weight-decay``, ``--adam-beta1/2``, ``--adam-eps``; fused kernels where available."""
    if config.training.optimizer != "adam":
        raise ValueError(f"--optimizer {config.training.optimizer!r} is not supported by the plain engine; use adam "
                         "(or a DeepSpeed JSON optimizer)")
    groups = param_groups(model)
    for group in groups:
        group.setdefault("weight_decay", config.training.weight_decay)
    # Fused on CPUs too: one pass over parameter, gradient and both moments per tensor; measured on 2
    # threads for GLM-Base's 110M parameters, 267 ms a step against 983 ms for the foreach kernels.
    return torch.optim.AdamW(groups,
                             lr=config.training.lr,
                             betas=(config.training.adam_beta1, config.training.adam_beta2),
                             eps=config.training.adam_eps,
                             weight_decay=config.training.weight_decay,
                             fused=True)


# The kinds of model a finetuning task asks for (the original's ``get_model(config, model_type, ...)``).
MODEL_TYPES = ("generation", "multiple_choice", "classification")


def build_task_model(config, device=None, model_type="generation", multi_token=True, num_labels=2,
                     spell_length=None):
    """The model a downstream task finetunes, chosen from the flags as the original did:

    * ``generation``: the plain ``GLMModel`` (seq2seq, language modelling);
    * ``multiple_choice`` with ``--cloze-eval``: ``GLMForMultiTokenCloze`` (``GLMForMultiTokenClozeFast``
      with ``--fast-decode``) for multi-token answers, ``GLMForSingleTokenCloze`` for verbalizer tokens;
    * ``multiple_choice`` without ``--cloze-eval``: ``GLMForSequenceClassification`` with one output per
      choice; ``classification``: the same head with ``num_labels`` outputs.

    Cloze heads read full-vocabulary logits (``parallel_output=False``): their log-softmax over the
    vocabulary would otherwise cover one model-parallel shard only, which is what broke the
    original's evaluation with model parallelism.  ``spell_length`` adds the P-tuning prompt encoder
    (``--prompt-func``); ``--freeze-transformer`` / ``--tune-prefix-layers`` freeze the backbone.
    """
    from ..model import (GLMForMultiTokenCloze, GLMForMultiTokenClozeFast, GLMForSequenceClassification,
                         GLMForSingleTokenCloze)

    if model_type not in MODEL_TYPES:
        raise ValueError(f"model_type must be one of {MODEL_TYPES}, got {model_type!r}")
    head_on_hidden = model_type == "classification" or (model_type == "multiple_choice" and not config.task.cloze_eval)
    overrides = dict(parallel_output=model_type == "generation", output_predict=not head_on_hidden)
    if spell_length:
        overrides.update(spell_length=spell_length, spell_func=config.adaptation.prompt_func)
    # With --load-pretrained the backbone's weights come from the checkpoint: build it on the meta
    # device (the caller loads, then moves the model to its device).
    on_meta = bool(config.task.load_pretrained)
    model = build_model(config, None, on_meta=on_meta, **overrides)
    if config.adaptation.freeze_transformer:
        model.freeze_transformer(tune_prefix_layers=config.adaptation.tune_prefix_layers)
    if model_type == "multiple_choice" and config.task.cloze_eval:
        if multi_token:
            head_class = GLMForMultiTokenClozeFast if config.task.fast_decode else GLMForMultiTokenCloze
            model = head_class(model, length_penalty=config.generation.length_penalty)
        else:
            model = GLMForSingleTokenCloze(model, take_softmax=config.task.adapet)
    elif head_on_hidden:
        num_class = 1 if model_type == "multiple_choice" else num_labels
        model = GLMForSequenceClassification(model,
                                             config.model.hidden_size,
                                             config.model.output_dropout,
                                             config.task.pool_token,
                                             num_class=num_class)
    return model.to(device) if device is not None and not on_meta else model
