"""Command-line flags of GLM: one parser for every entry point.

Every flag of the original ``arguments.py`` (spec section 8) is registered here under its original
name, type and default, in the original groups, so that the original shell configs keep working
unchanged.  DeepSpeed's launcher flags (``--deepspeed``, ``--deepspeed_config``, ``--deepscale``,
``--deepscale_config``, ``--deepspeed_mpi``) are registered by this module itself: importing it never
imports DeepSpeed, and the set of flags does not depend on which DeepSpeed version is installed.

A handful of flags are new in this reimplementation; their help text starts with ``(new)``:
``--bf16``, ``--attention-backend``, ``--lr-schedule-compat``, ``--max-nan-steps``,
``--tensorboard``, ``--print-config`` and the ``--local-rank`` spelling of ``--local_rank``.

Public functions:

* :func:`build_parser` -- the parser (for docs generation and for CLIs that add their own flags).
* :func:`get_args` -- parse and derive (rank/world size from the environment, model-parallel size,
  loss-scaling mode, DeepSpeed JSON precedence, ...), as the original ``get_args`` did.

The parsed namespace is turned into the typed groups the library receives by
:func:`glm.config.build_config` (which also prints and saves the resolved configuration).

``docs/flags.md`` is generated from :func:`build_parser` by ``scripts/gen_flag_docs.py``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import socket
import sys
import warnings
from typing import Any, Mapping, Optional, Sequence

from data_utils.splits import split_parts

from .launch import resolve_launch

__all__ = [
    "DEEPSPEED_FLAGS",
    "DeepSpeedConfigError",
    "DeepSpeedConfigOverrideWarning",
    "add_model_config_args",
    "add_fp16_config_args",
    "add_training_args",
    "add_blocklm_args",
    "add_evaluation_args",
    "add_text_generate_args",
    "add_data_args",
    "add_finetune_config_args",
    "add_deepspeed_args",
    "build_parser",
    "get_args",
    "resolve_distributed_env",
    "load_deepspeed_config",
    "check_deepspeed_keys",
]

#: The flags DeepSpeed's ``add_config_arguments`` used to register (``--deepspeed_mpi`` was dropped by
#: later DeepSpeed releases but is still accepted here because the original GLM read it).
DEEPSPEED_FLAGS = ("--deepspeed", "--deepspeed_config", "--deepscale", "--deepscale_config", "--deepspeed_mpi")

#: Tokenizer classes the original data pipeline knows (``--tokenizer-type``).
TOKENIZER_TYPES = (
    "CharacterLevelTokenizer",
    "SentencePieceTokenizer",
    "BertWordPieceTokenizer",
    "GPT2BPETokenizer",
    "ChineseSPTokenizer",
)

#: Values of ``--lr-decay-style`` (see ``glm.learning_rates.AnnealingLR``).
LR_DECAY_STYLES = ("constant", "linear", "cosine", "exponential")

#: Values of ``--attention-backend`` (new).
ATTENTION_BACKENDS = ("auto", "sdpa", "reference", "explicit", "flex")


#: Top-level keys of a DeepSpeed JSON (DeepSpeed 0.19 and the releases the original used).  DeepSpeed
#: ignores a top-level key it does not know, so a misspelt ``gradient_acumulation_steps`` or
#: ``zero_optimisation`` silently trained with accumulation 1 and ZeRO 0; the nested sections are checked
#: by DeepSpeed itself (its pydantic models forbid unknown fields).
DEEPSPEED_TOP_LEVEL_KEYS = frozenset((
    "train_batch_size", "train_micro_batch_size_per_gpu", "gradient_accumulation_steps", "optimizer", "scheduler",
    "fp16", "bf16", "bfloat16", "amp", "torch_autocast", "data_types", "gradient_clipping", "zero_optimization",
    "zero_allow_untested_optimizer", "zero_force_ds_cpu_optimizer", "communication_data_type",
    "seq_parallel_communication_data_type", "prescale_gradients", "gradient_predivide_factor",
    "gradient_allreduce_op", "sparse_gradients", "steps_per_print", "wall_clock_breakdown", "dump_state",
    "memory_breakdown", "disable_allgather", "disable_python_gc", "dataloader_drop_last", "checkpoint",
    "activation_checkpointing", "sparse_attention", "flops_profiler", "autotuning", "comms_logger",
    "tensorboard", "wandb", "csv_monitor", "comet", "elasticity", "data_efficiency", "curriculum_learning",
    "compression_training", "aio", "nebula", "pipeline", "progressive_layer_drop", "eigenvalue",
    "quantize_training", "weight_quantization", "hybrid_engine", "compile", "timers", "log_level",
    "use_data_before_expert_parallelism", "expert_parallel", "tensor_parallel", "managed_gradient_accumulation",
    "zero_quantized_weights", "zero_quantized_gradients", "graph_harvesting", "legacy_fusion",
    "dynamic_batching", "checkpoint_writer"))


class DeepSpeedConfigError(ValueError):
    """The DeepSpeed JSON named by ``--deepspeed_config`` is missing, unreadable or not valid JSON."""


class DeepSpeedConfigOverrideWarning(UserWarning):
    """A value in the DeepSpeed JSON replaces (or governs instead of) a command-line flag."""


# ---------------------------------------------------------------------------------------------------
# Flag groups.  The function names are those of the original module so that code written against it
# (e.g. a script that builds its own parser from some of the groups) keeps working.
# Help strings must not contain a bare percent sign: argparse %-formats them.
# ---------------------------------------------------------------------------------------------------


def add_model_config_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Register the model-shape flags (group ``model``)."""
    group = parser.add_argument_group("model", "Model shape, dropout and optimizer placement.")
    group.add_argument("--transformer-xl", action="store_true",
                       help="Use Transformer-XL style relative position encoding with a memory of past "
                            "hidden states (see --mem-length).")
    group.add_argument("--pretrained-bert", action="store_true",
                       help="Build the BERT baseline model instead of GLM (kept for compatibility; "
                            "the BERT baseline is not part of this reimplementation).")
    group.add_argument("--encoder-decoder", action="store_true",
                       help="Separate encoder/decoder variant of the original; dead code there and not "
                            "supported here. Accepted so that old command lines still parse.")
    group.add_argument("--attention-dropout", type=float, default=0.1,
                       help="Dropout probability applied to the attention probabilities.")
    group.add_argument("--num-attention-heads", type=int, default=16,
                       help="Number of attention heads per layer (must divide --hidden-size).")
    group.add_argument("--hidden-size", type=int, default=1024,
                       help="Width of the transformer hidden states.")
    group.add_argument("--intermediate-size", type=int, default=None,
                       help="MLP inner width. Ignored, as in the original: the MLP is always 4 x hidden size.")
    group.add_argument("--num-layers", type=int, default=24,
                       help="Number of transformer layers.")
    group.add_argument("--layernorm-epsilon", type=float, default=1e-5,
                       help="LayerNorm epsilon. Not wired to the GLM model in the original (which always "
                            "uses 1e-5); accepted for compatibility.")
    group.add_argument("--hidden-dropout", type=float, default=0.1,
                       help="Dropout probability on the embeddings and on the outputs of attention and MLP.")
    group.add_argument("--output-dropout", type=float, default=0.1,
                       help="Dropout probability in front of the sequence-classification head.")
    group.add_argument("--max-position-embeddings", type=int, default=512,
                       help="Longest sequence the position tables cover; each table has this many rows plus one.")
    group.add_argument("--vocab-size", type=int, default=30522,
                       help="Vocabulary size. Overwritten by the tokenizer setup with the padded tokenizer size.")
    group.add_argument("--deep-init", action="store_true",
                       help="Scaled initialisation of output layers by depth. Ignored by GLM, as in the original.")
    group.add_argument("--make-vocab-size-divisible-by", type=int, default=128,
                       help="Pad the vocabulary to a multiple of this (times the model-parallel size) so the "
                            "embedding splits evenly and matmuls stay aligned.")
    group.add_argument("--cpu-optimizer", action="store_true",
                       help="Run the optimizer on the CPU (DeepSpeed CPU Adam, or torch AdamW with "
                            "--cpu_torch_adam).")
    group.add_argument("--cpu_torch_adam", action="store_true",
                       help="With --cpu-optimizer, use torch's AdamW instead of DeepSpeed's CPU Adam.")
    group.add_argument("--attention-backend", choices=ATTENTION_BACKENDS, default="auto",
                       help="(new) Attention kernel: 'reference' is the explicit matmul/softmax of the "
                            "original, 'explicit' the same with a boolean mask and a cheap CPU dropout mask, "
                            "'sdpa' is torch scaled_dot_product_attention, 'flex' is FlexAttention; 'auto' picks "
                            "the fastest one that supports the current mask and device.")
    group.add_argument("--compile", action="store_true",
                       help="(new) torch.compile every transformer layer (fuses the element-wise work; "
                            "worth it on GPUs, where kernel launches dominate small layers; on CPU it measured "
                            "slower than eager for GLM-Base, see docs/training.md, Throughput).")
    return parser


def add_fp16_config_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Register the mixed-precision flags (group ``fp16``)."""
    group = parser.add_argument_group("fp16", "Mixed precision and loss scaling.")
    group.add_argument("--fp16", action="store_true",
                       help="Train/run in fp16 with fp32 master weights and loss scaling.")
    group.add_argument("--fp32-embedding", action="store_true",
                       help="Keep the embedding in fp32 under --fp16. Not used by GLM; cleared without --fp16.")
    group.add_argument("--fp32-layernorm", action="store_true",
                       help="Keep LayerNorm in fp32 under --fp16. Not used by GLM; cleared without --fp16.")
    group.add_argument("--fp32-tokentypes", action="store_true",
                       help="Keep token-type embeddings in fp32 under --fp16 (BERT baseline only); cleared "
                            "without --fp16.")
    group.add_argument("--fp32-allreduce", action="store_true",
                       help="All-reduce fp16 gradients in fp32 (local DDP only); cleared without --fp16.")
    group.add_argument("--hysteresis", type=int, default=2,
                       help="Dynamic loss scaling: number of overflowing steps tolerated before the scale "
                            "is reduced.")
    group.add_argument("--loss-scale", type=float, default=None,
                       help="Static loss scale (a positive number, powers of two work best). When not given, "
                            "dynamic loss scaling is used.")
    group.add_argument("--loss-scale-window", type=float, default=1000,
                       help="Dynamic loss scaling: number of overflow-free steps after which the scale is "
                            "raised again.")
    group.add_argument("--min-scale", type=float, default=1,
                       help="Dynamic loss scaling: lower bound of the loss scale.")
    group.add_argument("--attention-scale", type=float, default=1.0,
                       help="Divide queries by this before the attention matmul and multiply the scores back "
                            "afterwards, to keep fp16 scores in range (results unchanged up to rounding).")
    group.add_argument("--bf16", action="store_true",
                       help="(new) Use bfloat16 (autocast, or bf16 weights under DeepSpeed). Needs no loss "
                            "scaling. Cannot be combined with --fp16.")
    return parser


def add_training_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Register the training-loop, schedule, checkpointing and distributed flags (group ``train``)."""
    group = parser.add_argument_group("train", "Training loop, LR schedule, checkpointing and distributed setup.")
    group.add_argument("--experiment-name", type=str, default="glm",
                       help="Run name: sub-directory of --save and of the summary/result directories.")
    group.add_argument("--batch-size", type=int, default=4,
                       help="Micro-batch size per data-parallel rank (under DeepSpeed the JSON's "
                            "train_micro_batch_size_per_gpu wins).")
    group.add_argument("--gradient-accumulation-steps", type=int, default=1,
                       help="Number of micro-batches accumulated per optimizer step (under DeepSpeed taken "
                            "from the JSON, 1 if absent there).")
    group.add_argument("--weight-decay", type=float, default=0.01,
                       help="Decoupled weight decay (under DeepSpeed the JSON optimizer's value wins).")
    group.add_argument("--checkpoint-activations", action="store_true",
                       help="Recompute layer activations in the backward pass to save memory.")
    group.add_argument("--checkpoint-num-layers", type=int, default=1,
                       help="Number of consecutive layers per activation-checkpointing chunk.")
    group.add_argument("--deepspeed-activation-checkpointing", action="store_true",
                       help="Use DeepSpeed's activation checkpointing (with its RNG tracking) instead of the "
                            "built-in one.")
    group.add_argument("--epochs", type=int, default=None,
                       help="Finetuning: number of passes over the training set (0 = evaluation only). "
                            "Pretraining: when set, derives --train-iters from the data size.")
    group.add_argument("--clip-grad", type=float, default=1.0,
                       help="Clip the global gradient norm to this value (0 disables; under DeepSpeed the "
                            "JSON's gradient_clipping wins).")
    group.add_argument("--train-iters", type=int, default=0,
                       help="Total number of optimizer steps to train for.")
    group.add_argument("--label-smoothing", type=float, default=0.0,
                       help="Label smoothing for the language-modelling loss.")
    group.add_argument("--log-interval", type=int, default=100,
                       help="Print and record training statistics every this many iterations.")
    group.add_argument("--summary-dir", type=str, default="",
                       help="Directory under which runs/<experiment-name> holds the summaries and results.")
    group.add_argument("--seed", type=int, default=1234,
                       help="Random seed for python, numpy and torch (and the model-parallel RNG tracker).")
    group.add_argument("--reset-position-ids", action="store_true",
                       help="Restart position ids after each end-of-document token (GPT-2 style data only).")
    group.add_argument("--reset-attention-mask", action="store_true",
                       help="Do not attend across end-of-document tokens (GPT-2 style data only).")
    group.add_argument("--lr-decay-iters", type=int, default=None,
                       help="Length of the LR schedule in iterations (defaults to --train-iters).")
    group.add_argument("--lr-decay-style", type=str, default="linear", choices=LR_DECAY_STYLES,
                       help="Shape of the LR decay after warmup.")
    group.add_argument("--lr-decay-ratio", type=float, default=0.1,
                       help="Final LR as a fraction of --lr (floor of the decay).")
    group.add_argument("--lr", type=float, default=1.0e-4,
                       help="Peak learning rate (under DeepSpeed the JSON optimizer's lr wins).")
    group.add_argument("--warmup", type=float, default=0.01,
                       help="Fraction of the schedule length spent in linear warmup from 0 to --lr.")
    group.add_argument("--switch-linear", action="store_true",
                       help="After loading a checkpoint, restart the schedule as a linear decay from the "
                            "current LR over the remaining --train-iters (with a fresh warmup).")
    group.add_argument("--lr-schedule-compat", action="store_true",
                       help="(new) Reproduce the original LR scheduler bit for bit, including its bugs: "
                            "linear decay not clamped past the end, 'exponential' constant, and "
                            "load_state_dict ignoring the saved end/style/ratio.")
    group.add_argument("--save", type=str, default=None,
                       help="Directory to save checkpoints to (a sub-directory <experiment-name> is used).")
    group.add_argument("--new-save-directory", action="store_true",
                       help="Append a timestamp to the experiment name so every run saves to a new directory.")
    group.add_argument("--save-epoch", type=int, default=1,
                       help="Finetuning: save a checkpoint every this many epochs.")
    group.add_argument("--save-interval", type=int, default=5000,
                       help="Pretraining: save a checkpoint every this many iterations.")
    group.add_argument("--no-save-optim", action="store_true",
                       help="Do not store optimizer state in checkpoints.")
    group.add_argument("--no-save-rng", action="store_true",
                       help="Do not store RNG states in checkpoints.")
    group.add_argument("--no-save-on-interrupt", action="store_true",
                       help="(new) On Ctrl-C or SIGTERM stop after the current step without saving (by default "
                            "a checkpoint of that step is saved first, when --save is given).")
    group.add_argument("--load", type=str, default=None,
                       help="Directory to resume from (reads latest_checkpointed_iteration.txt there).")
    group.add_argument("--no-load-optim", action="store_true",
                       help="When loading, skip the optimizer state.")
    group.add_argument("--no-load-rng", action="store_true",
                       help="When loading, skip the RNG states.")
    group.add_argument("--no-load-lr-scheduler", action="store_true",
                       help="When loading, skip the LR scheduler state (start a new schedule from the flags).")
    group.add_argument("--unsafe-unpickle", action="store_true",
                       help="(new) Read checkpoint files (--load, --load-pretrained) with full unpickling, which "
                            "can run code stored in them. Only for files you trust: by default only tensors, "
                            "containers and numpy RNG states are read, and anything else is refused.")
    group.add_argument("--no-deepspeed-load", action="store_true",
                       help="Load checkpoints with the plain loader even under DeepSpeed (needed to start "
                            "from released checkpoints that carry no optimizer state).")
    group.add_argument("--finetune", action="store_true",
                       help="Finetuning mode: load weights only, reset the iteration count, and measure "
                            "the LR schedule in optimizer steps (iterations divided by accumulation steps).")
    group.add_argument("--resume-dataloader", action="store_true",
                       help="On resume, skip the samples already consumed so the data order continues.")
    group.add_argument("--distributed-backend", default="nccl",
                       help="torch.distributed backend (nccl or gloo).")
    group.add_argument("--distributed-timeout-minutes", type=float, default=10.0,
                       help="(new) How long a collective waits for the other ranks before the run fails: a rank "
                            "that died ends the job after at most this long (the original waited 30 minutes).")
    group.add_argument("--DDP-impl", default="torch", choices=("local", "torch", "none"),
                       help="Data-parallel wrapper when DeepSpeed is not used: torch DDP, a local "
                            "all-reduce implementation, or none.")
    group.add_argument("--local_rank", "--local-rank", dest="local_rank", type=int, default=None,
                       help="Rank of this process on its node, passed by launchers (when absent it is read "
                            "from LOCAL_RANK, OMPI_COMM_WORLD_LOCAL_RANK or SLURM_LOCALID). The --local-rank "
                            "spelling is new (recent torch launchers use it).")
    group.add_argument("--max-nan-steps", type=int, default=10,
                       help="(new) Stop training after this many consecutive steps whose loss was NaN or "
                            "inf (such steps are skipped, as in the original); 0 never stops.")
    group.add_argument("--tensorboard", action="store_true",
                       help="(new) Write TensorBoard scalars to <summary-dir>/runs/<experiment-name>. Off by "
                            "default because TensorBoard is an optional dependency here.")
    group.add_argument("--print-config", action="store_true",
                       help="(new) Print every resolved flag value at the start of the run (about 190 lines). "
                            "Without it the terminal gets a short summary; the full configuration is always "
                            "in <save>/config.json (and the debug log).")
    return parser


def add_blocklm_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Register the blank-infilling objective flags (group ``blocklm``).

    In the original these sit in the training group; they get their own group here (same names and
    defaults) because they describe the pretraining objective, see spec section 6.4.
    """
    group = parser.add_argument_group("blocklm", "The GLM blank-infilling pretraining objective.")
    group.add_argument("--block-lm", action="store_true",
                       help="Use the GLM blank-infilling model layout (2D positions, Part A/Part B).")
    group.add_argument("--masked-lm", action="store_true",
                       help="Plain masked-LM variant of the objective (spans replaced in place, no Part B).")
    group.add_argument("--bert-prob", type=float, default=0.5,
                       help="Probability that a batch uses token-level span masking ([MASK]).")
    group.add_argument("--gpt-infill-prob", type=float, default=0.5,
                       help="Within generation-mode batches, probability of the single-span path rather than "
                            "the document-suffix path (the name is the reverse of what it does, as in the "
                            "original).")
    group.add_argument("--gpt-min-ratio", type=float, default=0.5,
                       help="Generation mode: minimum fraction of the document kept as context.")
    group.add_argument("--gap-sentence-prob", type=float, default=0.0,
                       help="Probability that a batch masks whole sentences ([sMASK] with --task-mask).")
    group.add_argument("--gap-sentence-ratio", type=float, default=0.15,
                       help="Fraction of tokens masked in sentence mode.")
    group.add_argument("--avg-block-length", type=int, default=3,
                       help="Mean of the Poisson distribution of span lengths in token mode.")
    group.add_argument("--short-seq-prob", type=float, default=0.0,
                       help="Probability of truncating a sample to a random shorter length.")
    group.add_argument("--single-span-prob", type=float, default=0.0,
                       help="Probability of masking exactly one span in token mode.")
    group.add_argument("--task-mask", action="store_true",
                       help="Use a different mask token per mode: [MASK] tokens, [sMASK] sentences, "
                            "[gMASK] generation.")
    group.add_argument("--no-shuffle-block", action="store_true",
                       help="Keep the masked spans in document order in Part B instead of shuffling them.")
    group.add_argument("--no-block-position", action="store_true",
                       help="Drop the second (intra-span) position id; use one position per token.")
    group.add_argument("--sentinel-token", action="store_true",
                       help="Use a distinct sentinel id per span instead of one mask token.")
    group.add_argument("--block-mask-prob", type=float, default=0.0,
                       help="Probability of replacing Part B input tokens by [dBLOCK].")
    group.add_argument("--context-mask-ratio", type=float, default=0.0,
                       help="Fraction of Part A context additionally hidden from Part B.")
    group.add_argument("--random-position", action="store_true",
                       help="Randomly offset position ids within the sequence length.")
    return parser


def add_evaluation_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Register the evaluation flags (group ``validation``)."""
    group = parser.add_argument_group("validation", "Periodic evaluation during training.")
    group.add_argument("--eval-batch-size", type=int, default=None,
                       help="Micro-batch size for evaluation (defaults to the training batch size).")
    group.add_argument("--eval-iters", type=int, default=100,
                       help="Number of batches per periodic validation.")
    group.add_argument("--eval-interval", type=int, default=1000,
                       help="Validate every this many iterations.")
    group.add_argument("--eval-epoch", type=int, default=1,
                       help="Finetuning: run the task metrics every this many epochs.")
    group.add_argument("--eval-seq-length", type=int, default=None,
                       help="Sequence length for evaluation (defaults to --seq-length).")
    group.add_argument("--eval-max-preds-per-seq", type=int, default=None,
                       help="Maximum predictions per sequence for evaluation (defaults to --max-preds-per-seq).")
    group.add_argument("--overlapping-eval", type=int, default=32,
                       help="Language-model evaluation: stride overlap (in tokens) between sliding windows.")
    return parser


def add_text_generate_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Register the decoding flags (group ``Text generation``)."""
    group = parser.add_argument_group("Text generation", "Decoding (sampling and beam search).")
    group.add_argument("--temperature", type=float, default=1.0,
                       help="Divide logits by this before sampling.")
    group.add_argument("--top-p", type=float, default=0.0,
                       help="Nucleus sampling threshold (0 disables).")
    group.add_argument("--top-k", type=int, default=0,
                       help="Sample only among the k most likely tokens (0 disables).")
    group.add_argument("--out-seq-length", type=int, default=256,
                       help="Maximum number of tokens to generate.")
    group.add_argument("--num-beams", type=int, default=1,
                       help="Beam size for seq2seq decoding (1 = no beam search).")
    group.add_argument("--length-penalty", type=float, default=0.0,
                       help="Beam search: exponent of the length normalisation of scores.")
    group.add_argument("--no-repeat-ngram-size", type=int, default=0,
                       help="Forbid repeating n-grams of this size (0 disables).")
    group.add_argument("--min-tgt-length", type=int, default=0,
                       help="Suppress end-of-piece before this many generated tokens.")
    group.add_argument("--select-topk", action="store_true",
                       help="Beam search: take the top-k candidates deterministically (without this flag "
                            "the original samples candidates).")
    group.add_argument("--blank-maskratio", type=float, default=0.1,
                       help="Blank-filling task: fraction of tokens masked in the synthetic inputs.")
    return parser


def add_data_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Register the data, tokenizer and parallel-size flags (group ``data``)."""
    group = parser.add_argument_group("data", "Corpora, splits, tokenizer and sequence layout.")
    group.add_argument("--model-parallel-size", type=int, default=1,
                       help="Tensor model-parallel size (capped at the world size).")
    group.add_argument("--shuffle", action="store_true",
                       help="Shuffle the training data (sample order and document order).")
    group.add_argument("--filter-english", action="store_true",
                       help="Keep only documents detected as English (needs a language-id model).")
    group.add_argument("--train-data", nargs="+", default=None,
                       help="Names of the training corpora (registry keys) or files.")
    group.add_argument("--valid-data", nargs="*", default=None,
                       help="Validation data (corpus names or files).")
    group.add_argument("--test-data", nargs="*", default=None,
                       help="Test data (corpus names or files).")
    group.add_argument("--data-dir", type=str, default=None,
                       help="Directory holding the task data (finetuning and multi-task pretraining).")
    group.add_argument("--input-data-sizes-file", type=str, default="sizes.txt",
                       help="Name of the file listing shard sizes (unused by GLM, kept for compatibility).")
    group.add_argument("--delim", default=",",
                       help="Field delimiter of csv/tsv data files (unused by the GLM corpora).")
    group.add_argument("--text-key", default="sentence",
                       help="JSON/csv key holding the text (unused by the GLM corpora).")
    group.add_argument("--eval-text-key", default=None,
                       help="Text key for evaluation files (defaults to --text-key; unused by the GLM corpora).")
    group.add_argument("--split", default="1000,1,1", type=proportions,
                       help="Train,valid,test proportions used to split --train-data when no separate "
                            "valid/test data is given: one to three non-negative numbers separated by commas "
                            "(or /), e.g. 949,50,1.")
    group.add_argument("--no-lazy-loader", action="store_true",
                       help="Load whole corpora into memory instead of the lazy memory-mapped cache.")
    group.add_argument("--half-lazy-loader", action="store_true",
                       help="Lazy loader that keeps the text offsets in memory but reads text from disk.")
    group.add_argument("--loader-scatter", type=int, default=None,
                       help="Split the corpus into this many shards and let each data-parallel group read "
                            "only its own.")
    group.add_argument("--loose-json", action="store_true",
                       help="Data files hold one JSON object per line (unused by the GLM corpora).")
    group.add_argument("--presplit-sentences", action="store_true",
                       help="Input text already has one sentence per line.")
    group.add_argument("--num-workers", type=int, default=2,
                       help="Data-loader worker processes per rank.")
    group.add_argument("--tokenizer-model-type", type=str, default=None,
                       help="Which vocabulary to use: the BERT vocab name for BertWordPieceTokenizer "
                            "(e.g. bert-large-uncased), 'roberta' or 'gpt2' for GPT2BPETokenizer, or the "
                            "sentencepiece model type.")
    group.add_argument("--tokenizer-path", type=str, default="tokenizer.model",
                       help="Path of the sentencepiece model (SentencePieceTokenizer).")
    group.add_argument("--tokenizer-type", type=str, default="BertWordPieceTokenizer", choices=TOKENIZER_TYPES,
                       help="Tokenizer family.")
    group.add_argument("--fix-command-token", action="store_true",
                       help="ChineseSPTokenizer: give [gMASK] its own id instead of sharing the end-of-piece "
                            "id (the unfixed layout is what GLM-10B-Chinese was trained with).")
    group.add_argument("--no-pre-tokenize", action="store_true",
                       help="Tokenize on the fly in the dataset instead of once when the cache is built.")
    group.add_argument("--cache-dir", default=None, type=str,
                       help="Directory for downloaded/cached tokenizer files.")
    group.add_argument("--use-tfrecords", action="store_true",
                       help="TFRecord input of the original (its module was missing there); not supported.")
    group.add_argument("--seq-length", type=int, default=512,
                       help="Training sequence length in tokens.")
    group.add_argument("--mem-length", type=int, default=0,
                       help="Number of past hidden states kept as memory (only with --transformer-xl in "
                            "pretraining; generation sets its own).")
    group.add_argument("--max-preds-per-seq", type=int, default=None,
                       help="Maximum number of masked-LM predictions per sequence (BERT-style data).")
    group.add_argument("--non-sentence-start", type=float, default=0.0,
                       help="Probability of starting a training sample in the middle of a sentence.")
    group.add_argument("--sample-one-document", action="store_true",
                       help="Make each training sample come from a single document.")
    group.add_argument("--load-splits", type=str, default=None,
                       help="Read the train/valid/test split indices from this file.")
    group.add_argument("--save-splits", type=str, default=None,
                       help="Write the train/valid/test split indices to this file.")
    group.add_argument("--save-test-data", type=str, default=None,
                       help="Write the test split's samples to this path.")
    group.add_argument("--multi-task-data", nargs="*", default=None,
                       help="Multi-task pretraining: task names whose data lives under --data-dir.")
    group.add_argument("--multi-task-ratio", type=float, default=0.0,
                       help="Multi-task pretraining: probability that an iteration uses a multi-task batch.")
    group.add_argument("--multi-seq-length", type=int, default=None,
                       help="Multi-task pretraining: sequence length of the task batches.")
    group.add_argument("--multi-batch-size", type=int, default=None,
                       help="Multi-task pretraining: batch size of the task batches.")
    group.add_argument("--corpus-registry", default=None,
                       help="(new) JSON file mapping corpus names (--train-data) to files and readers; "
                            "default $GLM_CORPORA. See docs/data.md.")
    return parser


def add_finetune_config_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Register the finetuning, task and optimizer flags (group ``finetune``)."""
    group = parser.add_argument_group("finetune", "Finetuning tasks, patterns, prompts and the optimizer.")
    group.add_argument("--task", type=str, default=None,
                       help="Task name (e.g. RTE, copa, cnn_dm, lambda, wikitext, blank).")
    group.add_argument("--load-pretrained", type=str, default=None,
                       help="Checkpoint directory of the pretrained model to start finetuning from.")
    group.add_argument("--pool-token", type=str, default="cls", choices=("start", "pad", "cls"),
                       help="Sequence classification: which position's hidden state feeds the head.")
    group.add_argument("--cloze-eval", action="store_true",
                       help="Formulate classification as cloze filling with verbalizer tokens (PET style).")
    group.add_argument("--multi-token", action="store_true",
                       help="Cloze answers may span several tokens (score whole answer sequences).")
    group.add_argument("--segment-length", type=int, default=0,
                       help="Score long answers in segments of this many tokens (0 disables).")
    group.add_argument("--loss-func", type=str, default="cross_entropy",
                       choices=("cross_entropy", "hinge", "generative", "mix"),
                       help="Finetuning loss over the choice scores.")
    group.add_argument("--block-lm-ratio", type=float, default=0.0,
                       help="Weight of an auxiliary blank-infilling LM loss mixed into finetuning.")
    group.add_argument("--adapet", action="store_true",
                       help="Add ADAPET's decoupled label objective.")
    group.add_argument("--pattern-id", type=int, default=0,
                       help="Which PVP pattern of the task to use.")
    group.add_argument("--fast-decode", action="store_true",
                       help="Multi-token cloze: encode the context once and reuse its memory for all choices.")
    group.add_argument("--few-superglue", action="store_true",
                       help="Use the few-shot SuperGLUE splits (FewGLUE).")
    group.add_argument("--eval-valid", action="store_true",
                       help="Also evaluate on the validation set at the end (with the test callback).")
    group.add_argument("--validation-metric", type=str, default=None,
                       help="Metric that selects the best checkpoint (defaults to the task's first metric).")
    group.add_argument("--unidirectional", action="store_true",
                       help="Use a causal (left-to-right) attention mask, as for GPT-style evaluation.")
    group.add_argument("--src-seq-length", type=int, default=None,
                       help="Seq2seq: maximum source length in tokens.")
    group.add_argument("--tgt-seq-length", type=int, default=None,
                       help="Seq2seq: maximum target length in tokens.")
    group.add_argument("--adam-beta1", type=float, default=0.9,
                       help="Adam beta1.")
    group.add_argument("--adam-beta2", type=float, default=0.999,
                       help="Adam beta2.")
    group.add_argument("--adam-eps", type=float, default=1e-8,
                       help="Adam epsilon.")
    group.add_argument("--optimizer", type=str, default="adam", choices=("adam", "adafactor"),
                       help="Optimizer when DeepSpeed does not provide one.")
    group.add_argument("--wsc-negative", action="store_true",
                       help="WSC: add negative candidates mined from the sentence as extra choices.")
    group.add_argument("--overwrite", action="store_true",
                       help="Allow overwriting an existing test_results.json of the same experiment.")
    group.add_argument("--no-validation", action="store_true",
                       help="Skip validation during finetuning.")
    group.add_argument("--continuous-prompt", action="store_true",
                       help="P-tuning: insert trainable prompt embeddings into the pattern.")
    group.add_argument("--num-prompt-tokens", type=int, default=0,
                       help="P-tuning: number of prompt tokens.")
    group.add_argument("--prompt-func", default="lstm", choices=("lstm", "mlp", "none"),
                       help="P-tuning: encoder applied to the prompt embeddings.")
    group.add_argument("--freeze-transformer", action="store_true",
                       help="Train only the prompt/head parameters, keep the transformer frozen.")
    group.add_argument("--tune-prefix-layers", type=int, default=None,
                       help="Train only the first this many layers (plus prompts).")
    group.add_argument("--lora-rank", type=int, default=0,
                       help="(new) LoRA finetuning: put rank-r adapters on the --lora-targets layers of every "
                            "transformer layer and freeze the embeddings and transformer (0: off).")
    group.add_argument("--lora-alpha", type=float, default=None,
                       help="(new) LoRA scaling numerator: the update is alpha / rank * B A (default: the rank).")
    group.add_argument("--lora-dropout", type=float, default=0.0,
                       help="(new) Dropout on the input of the LoRA adapters.")
    group.add_argument("--lora-targets", default="query_key_value,dense,dense_h_to_4h,dense_4h_to_h",
                       help="(new) Comma-separated layers that get adapters: query_key_value, dense (attention "
                            "output), dense_h_to_4h, dense_4h_to_h.")
    group.add_argument("--lora-save", choices=("merged", "adapter"), default="merged",
                       help="(new) What the best-dev weights of a LoRA run hold: 'merged' (W + alpha/r B A in the "
                            "original checkpoint layout, for change_mp.py, generation and the Hugging Face export) "
                            "or 'adapter' (the trainable tensors only).")
    group.add_argument("--load-adapter", default=None, metavar="PATH",
                       help="(new) Put the LoRA adapters saved by another run (--lora-save adapter, or a resumable "
                            "LoRA checkpoint; a run folder means its best weights) on the --load-pretrained base "
                            "model, with the rank, alpha and targets the file records (finetune_glm.py: evaluate "
                            "with --epochs 0 or train on; generate_samples.py).")
    group.add_argument("--prefix-prompt", type=int, default=0,
                       help="Number of prefix prompt tokens placed before the input.")
    group.add_argument("--prompt-init", action="store_true",
                       help="Initialise prompt embeddings from the embeddings of the pattern's tokens.")
    group.add_argument("--mask-pad-token", action="store_true",
                       help="Seq2seq: hide source padding from attention (the original attends to it "
                            "without this flag).")
    return parser


def add_deepspeed_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Register DeepSpeed's launcher flags without importing DeepSpeed (group ``DeepSpeed``).

    Names, types and defaults match what ``deepspeed.add_config_arguments`` registers, so the parser
    works the same whether DeepSpeed is installed or not.  Do not call ``add_config_arguments`` on a
    parser built here: the flags would be registered twice and argparse would refuse.
    """
    group = parser.add_argument_group("DeepSpeed", "DeepSpeed launcher flags (registered without importing DeepSpeed).")
    group.add_argument("--deepspeed", action="store_true", default=False,
                       help="Train with the DeepSpeed engine configured by --deepspeed_config.")
    group.add_argument("--deepspeed_config", type=str, default=None,
                       help="DeepSpeed JSON file. Its micro batch, accumulation steps, optimizer lr/weight "
                            "decay, fp16/bf16 and gradient clipping take precedence over the matching flags "
                            "(a warning names each value that differs).")
    group.add_argument("--deepscale", action="store_true", default=False,
                       help="Old name of --deepspeed kept by DeepSpeed; GLM only reads --deepspeed.")
    group.add_argument("--deepscale_config", type=str, default=None,
                       help="Old name of --deepspeed_config kept by DeepSpeed (used when --deepspeed_config "
                            "is not given).")
    group.add_argument("--deepspeed_mpi", action="store_true", default=False,
                       help="Discover rank, world size and master address through MPI (mpi4py) when "
                            "started by mpirun instead of a torch/DeepSpeed launcher.")
    return parser


def proportions(text: str) -> str:
    """``type=`` of ``--split``: the text itself (the data code computes the proportions), checked now so
    that a bad value stops at parse time."""
    try:
        split_parts(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


class GLMArgumentParser(argparse.ArgumentParser):
    """``argparse`` with two changes for the user's sake.

    * Negative numbers in exponent form (``--lr -1e-3``) are values, not flags (argparse only knew
      ``-1`` and ``-0.5``); the flag's own check then says what is wrong with the value.
    * An error prints one line and a pointer to ``--help`` instead of the whole usage (over a hundred
      lines that hid the message).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n(run {self.prog} --help for the list of flags)\n")


def build_parser(description: str = "GLM (General Language Model)") -> argparse.ArgumentParser:
    """Return a parser holding every GLM flag, grouped as in the original, plus DeepSpeed's flags.

    The parser keeps argparse's defaults of the original (unknown flags are an error, unambiguous
    prefixes of long flags are accepted).  Entry points may add their own flags before parsing and
    hand the parser to :func:`get_args`.
    """
    parser = GLMArgumentParser(description=description)
    add_model_config_args(parser)
    add_fp16_config_args(parser)
    add_training_args(parser)
    add_blocklm_args(parser)
    add_evaluation_args(parser)
    add_text_generate_args(parser)
    add_data_args(parser)
    add_finetune_config_args(parser)
    add_deepspeed_args(parser)
    return parser


# ---------------------------------------------------------------------------------------------------
# Derivations
# ---------------------------------------------------------------------------------------------------


def resolve_distributed_env(env: Optional[Mapping[str, str]] = None) -> dict:
    """``{'rank', 'world_size', 'local_rank', 'source'}`` of this process, from the launcher's variables
    (:func:`glm.launch.resolve_launch`, the one place that reads them)."""
    return dataclasses.asdict(resolve_launch(env))


def _mpi_define_env(args: argparse.Namespace, master_port: int = 29500) -> None:
    """``--deepspeed_mpi``: take rank/size from MPI and export what torch.distributed needs.

    The master address is rank 0's host name; the local rank is this process's index among the
    ranks on the same host.  Environment variables already set by the user are not overwritten.
    """
    try:
        from mpi4py import MPI  # optional dependency, only for this flag
    except ImportError as exc:
        raise RuntimeError("--deepspeed_mpi needs the mpi4py package (pip install mpi4py)") from exc
    comm = MPI.COMM_WORLD
    rank, world_size = comm.Get_rank(), comm.Get_size()
    master_addr = comm.bcast(socket.gethostname() if rank == 0 else None, root=0)
    hosts = comm.allgather(socket.gethostname())
    local_rank = hosts[:rank].count(hosts[rank])
    os.environ["RANK"] = str(rank)
    os.environ["WORLD_SIZE"] = str(world_size)
    os.environ["LOCAL_RANK"] = str(local_rank)
    os.environ.setdefault("MASTER_ADDR", master_addr)
    os.environ.setdefault("MASTER_PORT", str(master_port))
    args.rank, args.world_size, args.local_rank = rank, world_size, local_rank


def load_deepspeed_config(path: str) -> dict:
    """Read a DeepSpeed JSON file; raise :class:`DeepSpeedConfigError` naming the file on any problem."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        raise DeepSpeedConfigError(f"DeepSpeed config file not found: {path}") from None
    except OSError as exc:
        raise DeepSpeedConfigError(f"cannot read DeepSpeed config file {path}: {exc.strerror or exc}") from None
    try:
        config = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DeepSpeedConfigError(
            f"DeepSpeed config file {path} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        ) from None
    if not isinstance(config, dict):
        raise DeepSpeedConfigError(f"DeepSpeed config file {path} must hold a JSON object, got {type(config).__name__}")
    return config


def check_deepspeed_keys(config: Mapping[str, Any], path: str, emit: bool = True) -> None:
    """Report top-level keys of the DeepSpeed JSON that DeepSpeed does not know (it ignores them).

    A key within a close spelling of a known one (``gradient_acumulation_steps``, ``zero_optimisation``)
    is almost surely a typo whose intent would be lost: that is an error naming the key and the
    known one.  Any other unknown key may belong to a DeepSpeed release newer than this list: a
    warning, so the run goes on.  Keys starting with ``_`` or ``comment`` are comments.
    """
    import difflib

    typos, unknown = [], []
    for key in config:
        if key in DEEPSPEED_TOP_LEVEL_KEYS or key.startswith("_") or key.lower().startswith("comment"):
            continue
        close = difflib.get_close_matches(key, DEEPSPEED_TOP_LEVEL_KEYS, n=1, cutoff=0.8)
        (typos if close else unknown).append((key, close[0] if close else None))
    if typos:
        listed = "; ".join(f"{key!r} (did you mean {known!r}?)" for key, known in typos)
        raise DeepSpeedConfigError(f"DeepSpeed config file {path}: unknown key {listed}. DeepSpeed would ignore "
                                   "it and train without that setting; fix the spelling")
    if unknown and emit:
        warnings.warn(f"DeepSpeed config {path}: unknown top-level key(s) {', '.join(repr(k) for k, _ in unknown)} "
                      "(not a DeepSpeed setting this version of GLM knows; DeepSpeed ignores keys it does not know)",
                      DeepSpeedConfigOverrideWarning, stacklevel=3)


def _explicit_dests(parser: argparse.ArgumentParser, argv: Sequence[str]) -> set:
    """Names of the options that appear on the command line (as opposed to keeping their default).

    Parses ``argv`` a second time with every default suppressed, so that only options actually
    given land in the namespace; the defaults are restored afterwards.  Used to word the DeepSpeed
    precedence warnings.
    """
    actions = parser._actions  # noqa: SLF001 -- argparse has no public way to reach its actions
    saved_defaults = [action.default for action in actions]
    saved_parser_defaults = parser._defaults  # noqa: SLF001 -- values from parser.set_defaults()
    try:
        for action in actions:
            action.default = argparse.SUPPRESS
        parser._defaults = {}  # noqa: SLF001
        given, _ = parser.parse_known_args(list(argv))
    finally:
        for action, default in zip(actions, saved_defaults):
            action.default = default
        parser._defaults = saved_parser_defaults  # noqa: SLF001
    return set(vars(given))


def _flag_name(parser: argparse.ArgumentParser, dest: str) -> str:
    for action in parser._actions:  # noqa: SLF001
        if action.dest == dest and action.option_strings:
            return action.option_strings[0]
    return "--" + dest


def _apply_deepspeed_config(args: argparse.Namespace, config: Mapping[str, Any], path: str,
                            parser: argparse.ArgumentParser, explicit: set, emit: bool) -> None:
    """Apply the original precedence of the DeepSpeed JSON over flags, warning where values differ.

    Precedence (spec section 7.2): ``train_micro_batch_size_per_gpu`` -> ``--batch-size``;
    ``gradient_accumulation_steps`` -> ``--gradient-accumulation-steps`` (1 when the JSON lacks it);
    ``optimizer.params.lr`` / ``weight_decay`` -> ``--lr`` / ``--weight-decay``.  The original rewrote
    those silently.  The DeepSpeed engine also takes ``fp16.enabled``, ``bf16.enabled`` and
    ``gradient_clipping`` from the JSON whatever the flags say; they are copied into the namespace as
    well so that the rest of the code sees what the engine will do.  Raises
    :class:`DeepSpeedConfigError` (before changing anything) when one of these JSON values has an
    unusable type.
    """
    overrides = []  # (dest, json_key, json_value)
    if "train_micro_batch_size_per_gpu" in config:
        overrides.append(("batch_size", "train_micro_batch_size_per_gpu", config["train_micro_batch_size_per_gpu"]))
    # The original fell back to 1 when the JSON has no accumulation entry, discarding the flag.
    overrides.append(("gradient_accumulation_steps", "gradient_accumulation_steps",
                      config.get("gradient_accumulation_steps", 1)))
    optimizer = config.get("optimizer")
    if isinstance(optimizer, Mapping):
        params = optimizer.get("params") or {}
        for key in ("lr", "weight_decay"):
            if key in params:
                overrides.append((key, f"optimizer.params.{key}", params[key]))
    for dest, section in (("fp16", "fp16"), ("bf16", "bf16")):
        block = config.get(section)
        if section == "bf16" and block is None:
            block = config.get("bfloat16")  # DeepSpeed's older spelling
        if isinstance(block, Mapping) and "enabled" in block:
            overrides.append((dest, f"{section}.enabled", block["enabled"]))
    if "gradient_clipping" in config:
        overrides.append(("clip_grad", "gradient_clipping", config["gradient_clipping"]))

    # Check types before touching args: a wrong JSON type (e.g. HF-style "auto") would otherwise
    # surface much later as a confusing error far from its cause.
    for dest, json_key, json_value in overrides:
        if dest in ("fp16", "bf16"):
            ok = isinstance(json_value, bool)
        elif dest in ("batch_size", "gradient_accumulation_steps"):
            ok = isinstance(json_value, int) and not isinstance(json_value, bool) and json_value > 0
        else:
            ok = isinstance(json_value, (int, float)) and not isinstance(json_value, bool)
        if not ok:
            raise DeepSpeedConfigError(f"DeepSpeed config file {path}: {json_key} has the unusable value "
                                       f"{json_value!r}")

    for dest, json_key, json_value in overrides:
        current = getattr(args, dest)
        if current != json_value and emit:
            origin = "given on the command line" if dest in explicit else "its default"
            warnings.warn(
                f"DeepSpeed config {path}: {json_key}={json_value!r} overrides "
                f"{_flag_name(parser, dest)} {current!r} ({origin}); the JSON value is used. "
                f"The original GLM applied this override silently.",
                DeepSpeedConfigOverrideWarning,
                stacklevel=3,  # point at the caller of get_args
            )
        setattr(args, dest, json_value)


def get_args(argv: Optional[Sequence[str]] = None, *,
             parser: Optional[argparse.ArgumentParser] = None) -> argparse.Namespace:
    """Parse GLM's command line and derive the values the original ``get_args`` derived.

    Args:
        argv: the arguments without the program name; ``None`` reads ``sys.argv[1:]``.
        parser: a parser from :func:`build_parser`, possibly extended by the caller; built here if
            not given.

    Derived attributes (after parsing):

    * ``cuda`` -- whether torch sees a CUDA device;
    * ``rank``, ``world_size``, ``local_rank`` -- from the launcher environment (see
      :func:`resolve_distributed_env`), or from MPI with ``--deepspeed_mpi``; an explicit
      ``--local_rank`` wins over the environment;
    * ``model_parallel_size`` -- capped at ``world_size``;
    * DeepSpeed JSON precedence (only with ``--deepspeed``, see :func:`_apply_deepspeed_config`); the
      JSON named by ``--deepspeed_config`` is validated whenever it is given;
    * ``dynamic_loss_scale`` -- true when ``--loss-scale`` is not given;
    * ``fp32_*`` -- cleared unless ``--fp16``;
    * ``eval_batch_size`` -- defaults to the (possibly overridden) ``batch_size``.

    Errors (unknown flag, invalid DeepSpeed JSON, ``--fp16`` with ``--bf16``) exit through
    ``parser.error``: message on stderr and ``SystemExit(2)``.
    """
    parser = build_parser() if parser is None else parser
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)

    try:
        import torch  # imported lazily: building the parser (docs, --help) must not need torch

        args.cuda = bool(torch.cuda.is_available())
    except ImportError:
        args.cuda = False

    # Where this process sits in the job.
    if args.deepspeed_mpi:
        _mpi_define_env(args)
    else:
        try:
            place = resolve_distributed_env()
        except ValueError as exc:
            parser.error(str(exc))
        args.rank, args.world_size = place["rank"], place["world_size"]
        if args.local_rank is None:
            args.local_rank = place["local_rank"]
    args.model_parallel_size = min(args.model_parallel_size, args.world_size)

    # The DeepSpeed JSON: always validated when named, applied only when DeepSpeed is on (as the
    # original, which looked at it only under --deepspeed).
    config_path = args.deepspeed_config or args.deepscale_config
    if config_path is not None:
        try:
            config = load_deepspeed_config(config_path)
            check_deepspeed_keys(config, config_path, emit=args.rank == 0)
        except DeepSpeedConfigError as exc:
            parser.error(str(exc))
        if args.deepspeed:
            args.deepspeed_config_dict = config
            try:
                _apply_deepspeed_config(args, config, config_path, parser, _explicit_dests(parser, argv),
                                        emit=args.rank == 0)
            except DeepSpeedConfigError as exc:
                parser.error(str(exc))
        elif args.rank == 0:
            warnings.warn(f"DeepSpeed config {config_path} is ignored because --deepspeed is not set.",
                          DeepSpeedConfigOverrideWarning, stacklevel=2)

    if args.fp16 and args.bf16:
        parser.error("--fp16 and --bf16 are mutually exclusive (check the DeepSpeed JSON's fp16/bf16 "
                     "sections too)")

    if args.lr <= 0:
        parser.error(f"--lr must be positive, got {args.lr:g}")

    args.dynamic_loss_scale = args.loss_scale is None
    # The fp32_* switches only mean something inside fp16 training.
    if not args.fp16:
        args.fp32_embedding = False
        args.fp32_tokentypes = False
        args.fp32_layernorm = False
        args.fp32_allreduce = False
    if args.eval_batch_size is None:
        args.eval_batch_size = args.batch_size
    return args
