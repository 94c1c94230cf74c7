"""Typed configuration: the frozen, grouped values every module below the entry points receives.

The command line stays the user surface: ``glm.arguments`` registers every original flag, parses it
and derives what the original derived (rank from the launcher, DeepSpeed JSON precedence, ...).  The
entry point then calls :func:`build_config` once, finishes what only it can know (the padded
vocabulary of the tokenizer it built, the iteration count of an epoch-based run, the run folder) with
:meth:`RunConfig.updated`, and hands the resulting :class:`RunConfig` -- or just the group a module
needs -- down.  Nothing below the entry points sees the argparse namespace, and nothing changes a
configuration once it has been handed down: the dataclasses are frozen, and :meth:`RunConfig.updated`
returns a new object.

Defaults live in one place, the parser (``glm/arguments.py``; rendered in ``docs/flags.md``): a field
has no default of its own unless it is derived after parsing.  Every field is named after its flag's
destination, so ``--hidden-size`` is ``config.model.hidden_size`` and the flag help in
``docs/flags.md`` documents the field.

This module owns the grouping, the conversion, and the resolved configuration a run prints and
saves as its ``config.json``; it must not parse command lines, read the environment, or import torch.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import tempfile
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple

__all__ = [
    "ModelConfig", "PrecisionConfig", "TrainingConfig", "EvaluationConfig", "DataConfig",
    "ObjectiveConfig", "ParallelConfig", "CheckpointConfig", "LoggingConfig", "GenerationConfig",
    "TaskConfig", "AdaptationConfig", "RunConfig", "GROUPS", "build_config", "group_of",
    "format_resolved_config", "format_config_summary", "save_resolved_config", "load_resolved_config",
]


@dataclass(frozen=True)
class ModelConfig:
    """The transformer's shape, dropout and attention kernel (what ``glm.model`` builds).

    One field per flag (same name as the flag's destination; help in ``docs/flags.md``).
    ``vocab_size`` is the padded tokenizer size once the entry point has built the tokenizer.
    """
    transformer_xl: bool  # --transformer-xl
    pretrained_bert: bool  # --pretrained-bert
    encoder_decoder: bool  # --encoder-decoder
    attention_dropout: float  # --attention-dropout
    num_attention_heads: int  # --num-attention-heads
    hidden_size: int  # --hidden-size
    intermediate_size: Optional[int]  # --intermediate-size
    num_layers: int  # --num-layers
    layernorm_epsilon: float  # --layernorm-epsilon
    hidden_dropout: float  # --hidden-dropout
    output_dropout: float  # --output-dropout
    max_position_embeddings: int  # --max-position-embeddings
    vocab_size: int  # --vocab-size
    deep_init: bool  # --deep-init
    make_vocab_size_divisible_by: int  # --make-vocab-size-divisible-by
    attention_backend: str  # --attention-backend
    compile: bool  # --compile
    attention_scale: float  # --attention-scale
    mem_length: int  # --mem-length


@dataclass(frozen=True)
class PrecisionConfig:
    """Number formats and fp16 loss scaling.

    One field per flag (same name as the flag's destination; help in ``docs/flags.md``).
    ``dynamic_loss_scale`` is derived: true when ``--loss-scale`` is not given. The ``fp32_*``
    switches are cleared unless ``--fp16``.
    """
    fp16: bool  # --fp16
    bf16: bool  # --bf16
    fp32_embedding: bool  # --fp32-embedding
    fp32_layernorm: bool  # --fp32-layernorm
    fp32_tokentypes: bool  # --fp32-tokentypes
    fp32_allreduce: bool  # --fp32-allreduce
    hysteresis: int  # --hysteresis
    loss_scale: Optional[float]  # --loss-scale
    loss_scale_window: float  # --loss-scale-window
    min_scale: float  # --min-scale
    dynamic_loss_scale: bool = True  # derived


@dataclass(frozen=True)
class TrainingConfig:
    """The optimisation: batch, iterations, optimizer, learning-rate schedule, activation checkpointing.

    One field per flag (same name as the flag's destination; help in ``docs/flags.md``).
    ``train_iters`` of an epoch-based finetuning run is computed by the entry point from ``epochs``.
    """
    batch_size: int  # --batch-size
    gradient_accumulation_steps: int  # --gradient-accumulation-steps
    train_iters: int  # --train-iters
    epochs: Optional[int]  # --epochs
    seed: int  # --seed
    checkpoint_activations: bool  # --checkpoint-activations
    checkpoint_num_layers: int  # --checkpoint-num-layers
    deepspeed_activation_checkpointing: bool  # --deepspeed-activation-checkpointing
    clip_grad: float  # --clip-grad
    label_smoothing: float  # --label-smoothing
    max_nan_steps: int  # --max-nan-steps
    optimizer: str  # --optimizer
    weight_decay: float  # --weight-decay
    adam_beta1: float  # --adam-beta1
    adam_beta2: float  # --adam-beta2
    adam_eps: float  # --adam-eps
    cpu_optimizer: bool  # --cpu-optimizer
    cpu_torch_adam: bool  # --cpu_torch_adam
    lr: float  # --lr
    lr_decay_iters: Optional[int]  # --lr-decay-iters
    lr_decay_style: str  # --lr-decay-style
    lr_decay_ratio: float  # --lr-decay-ratio
    warmup: float  # --warmup
    switch_linear: bool  # --switch-linear
    lr_schedule_compat: bool  # --lr-schedule-compat


@dataclass(frozen=True)
class EvaluationConfig:
    """Periodic validation during training.

    One field per flag (same name as the flag's destination; help in ``docs/flags.md``).
    ``eval_batch_size`` defaults to ``TrainingConfig.batch_size``.
    """
    eval_batch_size: Optional[int]  # --eval-batch-size
    eval_iters: int  # --eval-iters
    eval_interval: int  # --eval-interval
    eval_epoch: int  # --eval-epoch
    eval_seq_length: Optional[int]  # --eval-seq-length
    eval_max_preds_per_seq: Optional[int]  # --eval-max-preds-per-seq
    overlapping_eval: int  # --overlapping-eval


@dataclass(frozen=True)
class DataConfig:
    """Corpora, splits, tokenizer and sequence length.

    One field per flag (same name as the flag's destination; help in ``docs/flags.md``).
    ``eod_token`` is derived from the tokenizer by the entry point.
    """
    train_data: Optional[List[str]]  # --train-data
    valid_data: Optional[List[str]]  # --valid-data
    test_data: Optional[List[str]]  # --test-data
    data_dir: Optional[str]  # --data-dir
    corpus_registry: Optional[str]  # --corpus-registry
    input_data_sizes_file: str  # --input-data-sizes-file
    split: str  # --split
    load_splits: Optional[str]  # --load-splits
    save_splits: Optional[str]  # --save-splits
    save_test_data: Optional[str]  # --save-test-data
    shuffle: bool  # --shuffle
    filter_english: bool  # --filter-english
    delim: str  # --delim
    text_key: str  # --text-key
    eval_text_key: Optional[str]  # --eval-text-key
    loose_json: bool  # --loose-json
    presplit_sentences: bool  # --presplit-sentences
    no_lazy_loader: bool  # --no-lazy-loader
    half_lazy_loader: bool  # --half-lazy-loader
    loader_scatter: Optional[int]  # --loader-scatter
    num_workers: int  # --num-workers
    use_tfrecords: bool  # --use-tfrecords
    tokenizer_type: str  # --tokenizer-type
    tokenizer_model_type: Optional[str]  # --tokenizer-model-type
    tokenizer_path: str  # --tokenizer-path
    fix_command_token: bool  # --fix-command-token
    no_pre_tokenize: bool  # --no-pre-tokenize
    cache_dir: Optional[str]  # --cache-dir
    seq_length: int  # --seq-length
    max_preds_per_seq: Optional[int]  # --max-preds-per-seq
    non_sentence_start: float  # --non-sentence-start
    sample_one_document: bool  # --sample-one-document
    reset_position_ids: bool  # --reset-position-ids
    reset_attention_mask: bool  # --reset-attention-mask
    multi_task_data: Optional[List[str]]  # --multi-task-data
    multi_task_ratio: float  # --multi-task-ratio
    multi_seq_length: Optional[int]  # --multi-seq-length
    multi_batch_size: Optional[int]  # --multi-batch-size
    eod_token: Optional[int] = None  # derived


@dataclass(frozen=True)
class ObjectiveConfig:
    """The pretraining objective (GLM blank infilling and its variants).

    One field per flag (same name as the flag's destination; help in ``docs/flags.md``).
    """
    block_lm: bool  # --block-lm
    masked_lm: bool  # --masked-lm
    bert_prob: float  # --bert-prob
    gpt_infill_prob: float  # --gpt-infill-prob
    gpt_min_ratio: float  # --gpt-min-ratio
    gap_sentence_prob: float  # --gap-sentence-prob
    gap_sentence_ratio: float  # --gap-sentence-ratio
    avg_block_length: int  # --avg-block-length
    short_seq_prob: float  # --short-seq-prob
    single_span_prob: float  # --single-span-prob
    task_mask: bool  # --task-mask
    no_shuffle_block: bool  # --no-shuffle-block
    no_block_position: bool  # --no-block-position
    sentinel_token: bool  # --sentinel-token
    block_mask_prob: float  # --block-mask-prob
    context_mask_ratio: float  # --context-mask-ratio
    random_position: bool  # --random-position


@dataclass(frozen=True)
class ParallelConfig:
    """Where this process sits in the job and how ranks talk.

    One field per flag (same name as the flag's destination; help in ``docs/flags.md``). ``rank``,
    ``world_size``, ``local_rank`` and ``cuda`` are derived from the launcher environment;
    ``model_parallel_size`` is capped at ``world_size``; ``deepspeed_config_dict`` is the parsed
    DeepSpeed JSON when ``--deepspeed`` is on.
    """
    model_parallel_size: int  # --model-parallel-size
    distributed_backend: str  # --distributed-backend
    distributed_timeout_minutes: float  # --distributed-timeout-minutes
    DDP_impl: str  # --DDP-impl
    local_rank: Optional[int]  # --local_rank
    deepspeed: bool  # --deepspeed
    deepspeed_config: Optional[str]  # --deepspeed_config
    deepscale: bool  # --deepscale
    deepscale_config: Optional[str]  # --deepscale_config
    deepspeed_mpi: bool  # --deepspeed_mpi
    rank: int = 0  # derived
    world_size: int = 1  # derived
    cuda: bool = False  # derived
    deepspeed_config_dict: Optional[Dict[str, Any]] = None  # derived


@dataclass(frozen=True)
class CheckpointConfig:
    """What is saved and loaded, and where.

    One field per flag (same name as the flag's destination; help in ``docs/flags.md``).
    """
    save: Optional[str]  # --save
    load: Optional[str]  # --load
    new_save_directory: bool  # --new-save-directory
    save_epoch: int  # --save-epoch
    save_interval: int  # --save-interval
    no_save_optim: bool  # --no-save-optim
    no_save_rng: bool  # --no-save-rng
    no_save_on_interrupt: bool  # --no-save-on-interrupt
    no_load_optim: bool  # --no-load-optim
    no_load_rng: bool  # --no-load-rng
    no_load_lr_scheduler: bool  # --no-load-lr-scheduler
    unsafe_unpickle: bool  # --unsafe-unpickle
    no_deepspeed_load: bool  # --no-deepspeed-load
    finetune: bool  # --finetune
    resume_dataloader: bool  # --resume-dataloader


@dataclass(frozen=True)
class LoggingConfig:
    """Names, log cadence and summaries of a run.

    One field per flag (same name as the flag's destination; help in ``docs/flags.md``).
    """
    experiment_name: str  # --experiment-name
    log_interval: int  # --log-interval
    summary_dir: str  # --summary-dir
    tensorboard: bool  # --tensorboard
    print_config: bool  # --print-config


@dataclass(frozen=True)
class GenerationConfig:
    """Decoding: sampling and beam search.

    One field per flag (same name as the flag's destination; help in ``docs/flags.md``).
    """
    temperature: float  # --temperature
    top_p: float  # --top-p
    top_k: int  # --top-k
    out_seq_length: int  # --out-seq-length
    num_beams: int  # --num-beams
    length_penalty: float  # --length-penalty
    no_repeat_ngram_size: int  # --no-repeat-ngram-size
    min_tgt_length: int  # --min-tgt-length
    select_topk: bool  # --select-topk
    blank_maskratio: float  # --blank-maskratio


@dataclass(frozen=True)
class TaskConfig:
    """Finetuning and evaluation tasks: which task, its input format, pattern and metric.

    One field per flag (same name as the flag's destination; help in ``docs/flags.md``).
    """
    task: Optional[str]  # --task
    load_pretrained: Optional[str]  # --load-pretrained
    pool_token: str  # --pool-token
    cloze_eval: bool  # --cloze-eval
    multi_token: bool  # --multi-token
    segment_length: int  # --segment-length
    loss_func: str  # --loss-func
    block_lm_ratio: float  # --block-lm-ratio
    adapet: bool  # --adapet
    pattern_id: int  # --pattern-id
    fast_decode: bool  # --fast-decode
    few_superglue: bool  # --few-superglue
    eval_valid: bool  # --eval-valid
    validation_metric: Optional[str]  # --validation-metric
    unidirectional: bool  # --unidirectional
    src_seq_length: Optional[int]  # --src-seq-length
    tgt_seq_length: Optional[int]  # --tgt-seq-length
    wsc_negative: bool  # --wsc-negative
    overwrite: bool  # --overwrite
    no_validation: bool  # --no-validation
    mask_pad_token: bool  # --mask-pad-token


@dataclass(frozen=True)
class AdaptationConfig:
    """Parameter-efficient finetuning: continuous prompts, prefix tuning, frozen layers, LoRA.

    One field per flag (same name as the flag's destination; help in ``docs/flags.md``).
    """
    continuous_prompt: bool  # --continuous-prompt
    num_prompt_tokens: int  # --num-prompt-tokens
    prompt_func: str  # --prompt-func
    prefix_prompt: int  # --prefix-prompt
    prompt_init: bool  # --prompt-init
    freeze_transformer: bool  # --freeze-transformer
    tune_prefix_layers: Optional[int]  # --tune-prefix-layers
    lora_rank: int  # --lora-rank
    lora_alpha: Optional[float]  # --lora-alpha
    lora_dropout: float  # --lora-dropout
    lora_targets: str  # --lora-targets
    lora_save: str  # --lora-save
    load_adapter: Optional[str]  # --load-adapter


#: Group name -> its dataclass, in the order :class:`RunConfig` holds them.
GROUPS: Dict[str, type] = {
    "model": ModelConfig,
    "precision": PrecisionConfig,
    "training": TrainingConfig,
    "evaluation": EvaluationConfig,
    "data": DataConfig,
    "objective": ObjectiveConfig,
    "parallel": ParallelConfig,
    "checkpoint": CheckpointConfig,
    "logging": LoggingConfig,
    "generation": GenerationConfig,
    "task": TaskConfig,
    "adaptation": AdaptationConfig,
}

_FIELD_GROUP: Dict[str, str] = {
    field.name: group for group, cls in GROUPS.items() for field in dataclasses.fields(cls)
}


def group_of(name: str) -> str:
    """The group that holds the field ``name`` (a flag destination or a derived value)."""
    try:
        return _FIELD_GROUP[name]
    except KeyError:
        raise KeyError(f"{name!r} is not a GLM configuration field") from None


@dataclass(frozen=True)
class RunConfig:
    """Everything one run was configured with, one frozen group per concern."""

    model: ModelConfig
    precision: PrecisionConfig
    training: TrainingConfig
    evaluation: EvaluationConfig
    data: DataConfig
    objective: ObjectiveConfig
    parallel: ParallelConfig
    checkpoint: CheckpointConfig
    logging: LoggingConfig
    generation: GenerationConfig
    task: TaskConfig
    adaptation: AdaptationConfig

    def updated(self, **values: Any) -> "RunConfig":
        """A copy with some fields replaced, named flat (``updated(vocab_size=50048, eod_token=3)``).

        Meant for the entry points, which finish a configuration before handing it down.
        """
        by_group: Dict[str, Dict[str, Any]] = {}
        for name, value in values.items():
            by_group.setdefault(group_of(name), {})[name] = value
        return dataclasses.replace(
            self, **{group: dataclasses.replace(getattr(self, group), **changes)
                     for group, changes in by_group.items()})

    def items(self) -> Iterator[Tuple[str, Any]]:
        """Every field as ``(name, value)``, flat, in group order."""
        for group in GROUPS:
            section = getattr(self, group)
            for field in dataclasses.fields(section):
                yield field.name, getattr(section, field.name)

    def to_dict(self) -> Dict[str, Any]:
        """The flat ``{field: value}`` mapping (the layout of a run's ``config.json``)."""
        return dict(self.items())


def build_config(values: "argparse.Namespace | Mapping[str, Any]") -> RunConfig:
    """Group the parsed (and derived) values of :func:`glm.arguments.get_args` into a :class:`RunConfig`.

    Extra values that are no configuration field (an entry point's own flags) are left out; a missing
    field that has no derived default is an error naming it, so a flag added to the parser but not to
    a group cannot go unnoticed (``tests/test_config.py`` checks both directions).
    """
    source = vars(values) if isinstance(values, argparse.Namespace) else dict(values)
    groups = {}
    for group, cls in GROUPS.items():
        kwargs = {}
        for field in dataclasses.fields(cls):
            if field.name in source:
                kwargs[field.name] = source[field.name]
            elif field.default is dataclasses.MISSING:
                raise ValueError(f"configuration field {group}.{field.name} has no value: was the namespace "
                                 f"built by glm.arguments.get_args?")
        groups[group] = cls(**kwargs)
    return RunConfig(**groups)


# ---------------------------------------------------------------------------------------------------
# The resolved configuration at the start of a run: printed, and saved as the run's config.json
# ---------------------------------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    """Something JSON can hold (unknown objects, such as paths, become their text)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)


def format_resolved_config(config: RunConfig) -> str:
    """Every value of ``config``, one per line, sorted by name."""
    items = sorted(config.items())
    width = max((len(key) for key, _ in items), default=0)
    lines = [f"resolved configuration ({len(items)} values):"]
    lines += [f"  {key:<{width}} : {value!r}" for key, value in items]
    return "\n".join(lines)


def format_config_summary(config: RunConfig) -> str:
    """The few values that say what a run is (a handful of lines for the terminal); the full
    configuration goes to ``config.json`` and, with ``--print-config``, to the terminal."""
    model, data, training = config.model, config.data, config.training
    precision = "bf16" if config.precision.bf16 else "fp16" if config.precision.fp16 else "fp32"
    engine = (f"deepspeed {config.parallel.deepspeed_config}" if config.parallel.deepspeed else "plain engine")
    save = config.checkpoint.save
    lines = [
        "configuration (summary):",
        f"  model      {model.num_layers} layers, hidden {model.hidden_size}, {model.num_attention_heads} heads, "
        f"{model.max_position_embeddings} positions, vocab {model.vocab_size}",
        f"  data       {' '.join(data.train_data or []) or '-'} | seq length {data.seq_length} | split "
        f"{data.split} | tokenizer {data.tokenizer_type}",
        f"  training   {training.train_iters} iterations of batch {training.batch_size} x "
        f"{training.gradient_accumulation_steps} accumulation | lr {training.lr:g} ({training.lr_decay_style}, "
        f"warmup {training.warmup}) | {precision} | {engine}",
        f"  outputs    {save or 'not saved (no --save)'}",
        "  every value: " + (os.path.join(save, "config.json") if save else "--print-config"),
    ]
    return "\n".join(lines)


def save_resolved_config(config: RunConfig, path: str) -> None:
    """Write ``config`` flat, as sorted, indented JSON, to ``path`` atomically.

    The JSON goes to a temporary file in the same directory which then replaces ``path`` in one
    ``os.replace``, so a crash never leaves a half-written config behind.
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    payload = json.dumps(_jsonable(config.to_dict()), indent=2, sort_keys=True) + "\n"
    fd, tmp_path = tempfile.mkstemp(prefix=".tmp-" + os.path.basename(path) + "-", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        try:
            os.unlink(tmp_path)
        except OSError:
            pass
        raise


def load_resolved_config(path: str) -> RunConfig:
    """Read a file written by :func:`save_resolved_config` back into a :class:`RunConfig`."""
    with open(path, encoding="utf-8") as handle:
        return build_config(json.load(handle))
