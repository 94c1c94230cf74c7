"""The memory plan: what a run will hold per device, estimated before it starts (docs/memory.md).

From a :class:`glm.config.RunConfig` (model shape, micro-batch, sequence length, precision, engine and
ZeRO stage from the DeepSpeed JSON, tensor-parallel size, activation checkpointing, LoRA / P-tuning /
frozen transformer) and the job's devices (how many, how much memory each) :func:`plan` returns a
:class:`MemoryPlan`: parameters, gradients, optimizer state, activations and temporary buffers per device,
the peak they add up to, and what CPU offload puts in host memory.  :func:`smallest_layout` tries layouts
from the cheapest (no tensor parallelism, plain data parallelism, no recomputation) to the most
economical and returns the first whose plan fits.

How the terms add up to a peak.  Gradients and activations never peak together: the backward pass frees
each layer's activations as it fills that layer's gradients, so the peak of a step is the parameters and
optimizer state plus the larger of (activations + the loss's temporaries + the gradients the backward
creates first, those of the tied word embeddings) and (all gradients + the all-reduce copy).  The terms
and their byte counts per element are explained in docs/memory.md; the activation coefficients were
fitted to resident-memory peaks measured on CPU (``bench/bench_memory.py``, pinned by
``tests/test_memory.py``).

This module owns the arithmetic; it reads the configuration duck-typed (no import of ``glm.config``,
torch or DeepSpeed), so the planner runs anywhere, even before a GPU is seen.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

__all__ = ["GiB", "parse_size", "format_size", "Devices", "MemoryPlan", "Workload", "PRETRAINING", "plan",
           "smallest_layout", "layout_updates", "format_plan", "format_plan_line", "parameter_counts", "PADDED_VOCAB"]

GiB = 2 ** 30

#: The padded vocabulary of each tokenizer (the model's embedding rows), for plans made before a
#: tokenizer is built (memory_plan.py); a run knows its own from the tokenizer.
PADDED_VOCAB = {"BertWordPieceTokenizer": 30592, "GPT2BPETokenizer": 50304, "ChineseSPTokenizer": 50048}

# Activations kept for the backward pass, per transformer layer and per token, in elements of the
# compute dtype (fitted, see docs/memory.md): the layer input, both LayerNorm outputs, the fused QKV
# output, the attention context, the residual sum, the MLP's 4h pre-activation and GELU output.
_LAYER_REPLICATED = 6.0   # elements x hidden: residual stream, LayerNorm inputs/outputs (every TP rank)
_LAYER_SHARDED = 13.0     # elements x hidden: QKV, context, MLP 4h tensors (split over TP ranks)
_MASK_BYTES = 2.0         # bytes x hidden: the two hidden-dropout masks (bool), when dropout is on
# Attention that materialises scores and probabilities: (head, query, key) elements per layer in the
# compute dtype, fitted (docs/memory.md): the reference kernel and SDPA's unfused path 2; the explicit
# kernel, which ``auto`` runs on CPU with attention dropout and in bf16, measured 1 less.
_SCORES_KEPT_BY_REFERENCE_OR_SDPA_MATH = 2.0
_SCORES_KEPT_BY_EXPLICIT_KERNEL = 1.0
# The loss over the projected positions: logits, their softmax and the logits' gradient, fp32.
_LOSS_COPIES = 3.0


def parse_size(text) -> int:
    """``"40GB"``, ``"80G"``, ``"24GiB"``, ``"512MB"`` or a number of bytes -> bytes (binary units:
    a "40 GB" card is sold as 40 GiB of memory)."""
    if isinstance(text, (int, float)):
        return int(text)
    match = re.fullmatch(r"\s*([0-9.]+)\s*([kKmMgGtT]?)(i?[bB])?\s*", str(text))
    if not match:
        raise ValueError(f"not a memory size: {text!r} (write e.g. 40GB, 80G or 512MB)")
    scale = {"": 1, "k": 2 ** 10, "m": 2 ** 20, "g": 2 ** 30, "t": 2 ** 40}[match.group(2).lower()]
    return int(float(match.group(1)) * scale)


def format_size(nbytes: float) -> str:
    """Bytes as GiB with two decimals (MiB below 1 GiB)."""
    if abs(nbytes) < GiB:
        return f"{nbytes / 2 ** 20:.0f} MiB"
    return f"{nbytes / GiB:.2f} GiB"


@dataclass(frozen=True)
class Devices:
    """The job's accelerators: how many, and the memory of each (None: unknown, nothing is compared);
    ``host_memory``: the host memory of one node, for offload (None: not compared)."""
    count: int = 1
    memory: Optional[int] = None
    host_memory: Optional[int] = None


@dataclass(frozen=True)
class MemoryPlan:
    """Bytes per device, and what the run looks like (see :func:`plan`)."""
    parameters: float
    gradients: float
    optimizer: float
    activations: float
    temporary: float
    total: float
    host: float                    # offloaded optimizer state / parameters of every rank of the job
    device_memory: Optional[int]
    host_memory: Optional[int]
    # what was planned
    mode: str                      # "train" or "inference"
    precision: str                 # fp32 / fp16 / bf16
    engine: str                    # plain / deepspeed
    zero_stage: int
    offload_optimizer: bool
    offload_param: bool
    tensor_parallel: int
    data_parallel: int
    micro_batch: int
    seq_length: int
    checkpoint_activations: bool
    parameters_total: int          # whole model, every TP rank together
    trainable_total: int

    @property
    def fits(self) -> Optional[bool]:
        """Whether the peak fits the device (and the offloaded part the host); None: nothing to compare."""
        if self.device_memory is None:
            return None
        fits = self.total <= self.device_memory
        if self.host_memory is not None and self.host:
            fits = fits and self.host <= self.host_memory
        return fits

    def layout(self) -> str:
        """One phrase naming the layout (TP, ZeRO, offload, checkpointing)."""
        parts = [f"TP {self.tensor_parallel} x DP {self.data_parallel}",
                 f"ZeRO-{self.zero_stage}" if self.engine == "deepspeed" else "plain engine"]
        if self.offload_optimizer:
            parts.append("optimizer offload")
        if self.offload_param:
            parts.append("parameter offload")
        if self.checkpoint_activations:
            parts.append("activation checkpointing")
        return ", ".join(parts)


# ---------------------------------------------------------------------------------------------------
# Parameter counts
# ---------------------------------------------------------------------------------------------------


def _lora_targets(adaptation) -> Tuple[str, ...]:
    return tuple(t.strip() for t in (adaptation.lora_targets or "").split(",") if t.strip())


def parameter_counts(config, tensor_parallel: Optional[int] = None) -> Dict[str, float]:
    """``{"total", "trainable", "rank", "rank_trainable"}``: parameters of the whole model, of one
    tensor-parallel rank, and how many of each get gradients (LoRA, P-tuning, frozen transformer)."""
    m, adaptation = config.model, config.adaptation
    tp = tensor_parallel or config.parallel.model_parallel_size
    h, layers, vocab = m.hidden_size, m.num_layers, m.vocab_size
    inner = m.intermediate_size or 4 * h
    block = config.objective.block_lm and not config.objective.masked_lm
    # Split over TP ranks: the weights and biases of the column-parallel layers, the row-parallel weights.
    layer_split = (3 * h * h + 3 * h) + h * h + (h * inner + inner) + inner * h
    layer_replicated = 2 * h + 4 * h  # row-parallel biases, two LayerNorms
    if m.transformer_xl:
        layer_split += h * h + h
    embeddings_split = vocab * h
    replicated = 2 * h  # final LayerNorm
    if m.transformer_xl:
        replicated += 2 * h
    else:
        rows = m.max_position_embeddings + (1 if block else 0)
        replicated += rows * h * (2 if block else 1)
    # LoRA: A (rank x in) and B (out x rank); the side along the layer's split is cut like the layer.
    lora_split = lora_replicated = 0
    if adaptation.lora_rank:
        r = adaptation.lora_rank
        shapes = {"query_key_value": (h, 3 * h, "column"), "dense": (h, h, "row"),
                  "dense_h_to_4h": (h, inner, "column"), "dense_4h_to_h": (inner, h, "row")}
        for target in _lora_targets(adaptation):
            fan_in, fan_out, kind = shapes[target]
            split, whole = (fan_out * r, fan_in * r) if kind == "column" else (fan_in * r, fan_out * r)
            lora_split += layers * split
            lora_replicated += layers * whole
    prompt = 0
    if adaptation.continuous_prompt and adaptation.num_prompt_tokens:
        n = adaptation.num_prompt_tokens
        prompt = n * h
        if adaptation.prompt_func == "lstm":
            prompt += 8 * (2 * h * h + 2 * h) + 8 * (3 * h * h + 2 * h) + (2 * h * h + h) + (h * h + h)
        elif adaptation.prompt_func == "mlp":
            prompt += 2 * (h * h + h)
    backbone_total = layers * (layer_split + layer_replicated) + embeddings_split + replicated
    backbone_rank = layers * (layer_split / tp + layer_replicated) + embeddings_split / tp + replicated
    adapters_total = lora_split + lora_replicated + prompt
    adapters_rank = lora_split / tp + lora_replicated + prompt
    if adaptation.lora_rank:
        trainable_total, trainable_rank = adapters_total, adapters_rank
    elif adaptation.freeze_transformer:
        tuned = adaptation.tune_prefix_layers or 0
        trainable_total = tuned * (layer_split + layer_replicated) + prompt
        trainable_rank = tuned * (layer_split / tp + layer_replicated) + prompt
    else:
        trainable_total, trainable_rank = backbone_total + prompt, backbone_rank + prompt
    return {"total": backbone_total + adapters_total, "rank": backbone_rank + adapters_rank,
            "trainable": trainable_total, "rank_trainable": trainable_rank,
            "word_embeddings_rank": embeddings_split / tp}


# ---------------------------------------------------------------------------------------------------
# The plan
# ---------------------------------------------------------------------------------------------------


def _deepspeed_settings(config) -> Dict[str, Any]:
    """``{"stage", "offload_optimizer", "offload_param", "precision"}`` of the DeepSpeed JSON
    (precision None: the JSON says nothing, the flags decide)."""
    json = config.parallel.deepspeed_config_dict or {}
    zero = json.get("zero_optimization") or {}

    def offloaded(key):
        section = zero.get(key) or {}
        return str(section.get("device", "none")).lower() in ("cpu", "nvme")

    precision = None
    if (json.get("bf16") or {}).get("enabled"):
        precision = "bf16"
    elif (json.get("fp16") or {}).get("enabled"):
        precision = "fp16"
    return {"stage": int(zero.get("stage", 0)), "offload_optimizer": offloaded("offload_optimizer"),
            "offload_param": offloaded("offload_param"), "precision": precision,
            "reduce_bucket": float(zero.get("reduce_bucket_size", 5e8)),
            "allgather_bucket": float(zero.get("allgather_bucket_size", 5e8)),
            # ZeRO-3 keeps a gathered parameter whole while it is used again within this many
            # elements, and never more than the live limit (DeepSpeed's defaults: 1e9 each).
            "live_parameters": float(min(zero.get("stage3_max_live_parameters", 1e9),
                                         zero.get("stage3_max_reuse_distance", 1e9)))}


def _precision(config, deepspeed) -> str:
    if deepspeed and deepspeed["precision"]:
        return deepspeed["precision"]
    if config.precision.bf16:
        return "bf16"
    if config.precision.fp16:
        return "fp16"
    return "fp32"


def default_projected_fraction(config) -> float:
    """The share of a sample's positions the loss projects onto the vocabulary: Part B of blank
    infilling (the masked spans plus their start tokens, about 15% of the tokens plus one start token
    per span), the target of a seq2seq task, the answer tokens of a cloze."""
    if config.task.task and config.task.tgt_seq_length and config.task.src_seq_length:
        return config.task.tgt_seq_length / (config.task.src_seq_length + config.task.tgt_seq_length)
    return 0.2


@dataclass(frozen=True)
class Workload:
    """What one sample of a finetuning task computes, where it differs from pretraining (which the
    defaults describe): ``sequences_per_sample``, one sequence per choice of a multiple-choice task;
    ``projected_fraction``, the share of each sequence's positions projected onto the vocabulary (a
    single-token cloze: one; a classification head: none; None: :func:`default_projected_fraction`);
    ``whole_vocabulary``, the cloze heads gather the full vocabulary's logits on every tensor-parallel
    rank.  The finetuning driver reads it off its task's samples (``tasks.finetune.memory_workload``)."""
    sequences_per_sample: float = 1.0
    projected_fraction: Optional[float] = None
    whole_vocabulary: bool = False


PRETRAINING = Workload()


def plan(config, devices: Devices = Devices(), *, mode: str = "train",
         projected_fraction: Optional[float] = None, workload: Workload = PRETRAINING) -> MemoryPlan:
    """The memory plan of ``config`` on ``devices`` (``mode``: ``"train"`` or ``"inference"``).

    ``devices.count`` is the job's number of devices; ``devices.host_memory`` is compared with what
    offload puts on the hosts, all ranks together (one node, or divide by your nodes); data parallelism
    is ``count`` over the tensor-parallel size (``--model-parallel-size``).  ``projected_fraction``: the
    share of positions the loss projects onto the vocabulary (default: the workload's, else
    :func:`default_projected_fraction`);
    ``workload``: a finetuning task's sequences per sample and heads (:class:`Workload`)."""
    if mode not in ("train", "inference"):
        raise ValueError(f"mode must be 'train' or 'inference', got {mode!r}")
    m, training = config.model, config.training
    tp = max(1, config.parallel.model_parallel_size)
    if devices.count % tp:
        raise ValueError(f"{devices.count} devices cannot hold tensor-parallel groups of {tp}")
    dp = devices.count // tp
    deepspeed = _deepspeed_settings(config) if config.parallel.deepspeed else None
    engine = "deepspeed" if deepspeed else "plain"
    stage = deepspeed["stage"] if deepspeed else 0
    offload_optimizer = bool(deepspeed and deepspeed["offload_optimizer"] and stage >= 1)
    offload_param = bool(deepspeed and deepspeed["offload_param"] and stage == 3)
    precision = _precision(config, deepspeed)
    half = precision in ("fp16", "bf16")
    counts = parameter_counts(config, tp)
    n_rank, n_train = counts["rank"], counts["rank_trainable"]
    h, layers = m.hidden_size, m.num_layers
    inner = m.intermediate_size or 4 * h
    batch, seq = training.batch_size, config.data.seq_length
    training_run = mode == "train"
    if not training_run:
        batch = config.evaluation.eval_batch_size or batch
    samples = batch
    batch = batch * workload.sequences_per_sample   # sequences, not samples, from here on
    tokens = batch * seq

    # -- parameters, gradients, optimizer state -------------------------------------------------------
    # DeepSpeed casts the whole model to fp16/bf16 and keeps an fp32 master copy of what trains in its
    # optimizer; the plain engine keeps fp32 weights and computes under autocast.
    weight_bytes = 2 if (half and (engine == "deepspeed" or not training_run)) else 4
    parameters = n_rank * weight_bytes
    gradients = optimizer = host = 0.0
    if training_run:
        grad_bytes = weight_bytes
        # Adam's two moments, plus fp32 master weights when the model itself is half precision; ZeRO's
        # optimizer keeps its own flat fp32 partition of the weights even in fp32 (measured).
        optimizer_bytes = 8 + (4 if weight_bytes == 2 or stage >= 1 else 0)
        gradients = n_train * grad_bytes
        optimizer = n_train * optimizer_bytes
        if stage >= 1:
            optimizer /= dp
        if stage >= 2:
            gradients /= dp
        if stage >= 3:
            parameters /= dp
        if offload_optimizer:
            # The optimizer state moves to the host, with an fp32 copy of the gradients it steps on.
            host += optimizer * dp + n_train * 4 / (1 if stage >= 2 else dp) * dp
            optimizer = 0.0
        if offload_param:
            host += parameters * dp
            parameters = 0.0
    if stage == 3:
        # The gathered parameters of ZeRO-3: at least the layer being computed, its prefetched successor
        # and the word embeddings; DeepSpeed keeps a gathered parameter until it is not used again
        # within its reuse distance, so below the live limit the whole model stays gathered (measured).
        per_layer = (n_rank - counts["word_embeddings_rank"]) / max(1, layers)
        working_set = 2 * per_layer + counts["word_embeddings_rank"]
        parameters += max(working_set, min(n_rank, deepspeed["live_parameters"])) * weight_bytes

    # -- activations --------------------------------------------------------------------------------
    act_bytes = 2 if half else 4
    dropout = training_run and (m.hidden_dropout > 0)
    # Attention that keeps s^2 scores and probabilities: the explicit kernels (reference, explicit,
    # Transformer-XL's), on CPU any kernel with attention dropout (SDPA's is its unfused path) and what
    # ``auto`` runs in bfloat16 (glm.model.attention.AUTO_KERNELS); GPUs run fused kernels.
    cpu = not config.parallel.cuda
    cpu_dropout = cpu and training_run and m.attention_dropout > 0
    auto_explicit = m.attention_backend == "auto" and (cpu_dropout or (cpu and precision == "bf16"))
    if m.attention_backend == "reference" or m.transformer_xl:
        attention_elements = _SCORES_KEPT_BY_REFERENCE_OR_SDPA_MATH
    elif m.attention_backend == "explicit" or auto_explicit:
        attention_elements = _SCORES_KEPT_BY_EXPLICIT_KERNEL
    elif cpu_dropout:
        attention_elements = _SCORES_KEPT_BY_REFERENCE_OR_SDPA_MATH
    else:
        attention_elements = 0.0
    heads_rank = m.num_attention_heads / tp
    per_token_layer = (_LAYER_REPLICATED * h + _LAYER_SHARDED * h * (inner / (4 * h)) / tp) * act_bytes
    if dropout:
        per_token_layer += _MASK_BYTES * h
    per_token_layer += attention_elements * heads_rank * seq * act_bytes
    if not training_run:
        # Inference keeps one layer's tensors alive at a time.
        activations = tokens * per_token_layer + tokens * 4 * h * act_bytes
    elif training.checkpoint_activations:
        # One stored input per checkpointed chunk, and the chunk being recomputed in the backward.
        chunk = max(1, training.checkpoint_num_layers)
        stored = tokens * h * act_bytes * layers / chunk
        activations = stored + tokens * per_token_layer * min(chunk, layers)
    else:
        activations = tokens * per_token_layer * layers
    # Embeddings and the final LayerNorm: their inputs and outputs (a few hidden-size tensors).
    activations += tokens * h * 4 * act_bytes

    # -- temporaries ----------------------------------------------------------------------------------
    fraction = next(f for f in (projected_fraction, workload.projected_fraction, default_projected_fraction(config))
                    if f is not None)
    projected = tokens * fraction if training_run else batch  # inference: the last position of each sample
    vocab_rank = m.vocab_size / (1 if workload.whole_vocabulary else tp)
    loss_temporaries = projected * vocab_rank * 4 * (_LOSS_COPIES if training_run else 1)
    temporary = loss_temporaries
    if engine == "plain" and half and training_run:
        # autocast casts each fp32 weight to half once per forward and keeps the copy for the backward.
        temporary += n_rank * 2
    # Gradient buffers of the data-parallel reduction.  ``held`` ones are allocated with the engine and
    # kept for the run, so they add to every moment of the step; the others exist at its end only.
    allreduce = held_buffers = 0.0
    if training_run and engine == "plain" and dp > 1:
        # DDP's buckets: a flat copy of every gradient, allocated when DDP wraps the model.
        held_buffers = n_train * 4
    elif training_run and stage == 3:
        # ZeRO-3's reduce bucket is allocated at start-up, even on one rank; a GPU allocator holds all
        # of it, a CPU touches only the part the gradients fill.
        bucket = deepspeed["reduce_bucket"] if config.parallel.cuda else min(n_rank, deepspeed["reduce_bucket"])
        held_buffers = bucket * (2 if half else 4)
    elif training_run and dp > 1 and engine == "deepspeed":
        # DeepSpeed's reduce bucket.  ZeRO-2's all-gather of the updated weights runs in the optimizer
        # step, after the reduction: its bucket replaces the reduce bucket rather than adding to it (two
        # ranks measured the same peak for ZeRO-1 and ZeRO-2, docs/memory.md).
        bucket = deepspeed["reduce_bucket"]
        if stage == 2:
            bucket = max(bucket, deepspeed["allgather_bucket"])
        allreduce = min(n_train, bucket) * (2 if half else 4)

    # -- the peak ---------------------------------------------------------------------------------------
    if training_run:
        # The tied word embeddings get two gradients, the projection's first (at the start of the
        # backward) and the lookup's last, added into the first: one extra copy at the end.
        embeddings_train = not (config.adaptation.lora_rank or config.adaptation.freeze_transformer)
        embedding_grad = counts["word_embeddings_rank"] * weight_bytes if embeddings_train else 0.0
        first_backward = activations + temporary + embedding_grad
        # At the end the lookup's gradient and the sum of the two are alive beside the projection's.
        end_of_backward = gradients + allreduce + 2 * embedding_grad
        if training.checkpoint_activations:
            # The first chunk's recomputed activations are still held when the lookup's gradient arrives.
            end_of_backward += tokens * per_token_layer * min(max(1, training.checkpoint_num_layers), layers)
        total = parameters + optimizer + held_buffers + max(first_backward, end_of_backward)
    else:
        total = parameters + activations + temporary
    return MemoryPlan(
        parameters=parameters, gradients=gradients, optimizer=optimizer, activations=activations,
        temporary=temporary + allreduce + held_buffers, total=total, host=host, device_memory=devices.memory,
        host_memory=devices.host_memory, mode=mode, precision=precision, engine=engine, zero_stage=stage,
        offload_optimizer=offload_optimizer, offload_param=offload_param, tensor_parallel=tp,
        data_parallel=dp, micro_batch=samples, seq_length=seq,
        checkpoint_activations=bool(training_run and training.checkpoint_activations),
        parameters_total=int(counts["total"]), trainable_total=int(counts["trainable"]))


# ---------------------------------------------------------------------------------------------------
# The smallest layout that fits
# ---------------------------------------------------------------------------------------------------


def layout_updates(config, *, tensor_parallel: int, zero_stage: Optional[int], offload: bool,
                   checkpoint: bool) -> Dict[str, Any]:
    """The ``RunConfig.updated`` values of a layout: ``zero_stage`` None is the plain engine; a ZeRO
    stage keeps the precision of the run (fp16/bf16 sections of the JSON from the flags)."""
    updates: Dict[str, Any] = {"model_parallel_size": tensor_parallel, "checkpoint_activations": checkpoint}
    if zero_stage is None:
        updates.update(deepspeed=False, deepspeed_config_dict=None)
        return updates
    base = dict(config.parallel.deepspeed_config_dict or {})
    zero = dict(base.get("zero_optimization") or {})
    zero["stage"] = zero_stage
    for key in ("offload_optimizer", "offload_param"):
        zero.pop(key, None)
    if offload:
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": True}
        if zero_stage == 3:
            zero["offload_param"] = {"device": "cpu", "pin_memory": True}
    base["zero_optimization"] = zero
    if config.precision.bf16 and "bf16" not in base:
        base["bf16"] = {"enabled": True}
    if config.precision.fp16 and "fp16" not in base:
        base["fp16"] = {"enabled": True}
    updates.update(deepspeed=True, deepspeed_config_dict=base)
    return updates


def candidate_layouts(config, devices: Devices) -> List[Dict[str, Any]]:
    """Layouts from the one that costs least speed to the most economical: tensor parallelism first
    kept small (it needs fast links inside a node), then ZeRO stages (0: DeepSpeed's half-precision
    weights without partitioning), then recomputation, then offload."""
    heads, hidden = config.model.num_attention_heads, config.model.hidden_size
    sizes = [tp for tp in (1, 2, 4, 8) if tp <= devices.count and devices.count % tp == 0
             and heads % tp == 0 and hidden % tp == 0]
    layouts = []
    for tp, zero, checkpoint, offload in itertools.product(sizes, (None, 0, 1, 2, 3), (False, True), (False, True)):
        if offload and not zero:
            continue
        layouts.append(dict(tensor_parallel=tp, zero_stage=zero, checkpoint=checkpoint, offload=offload))
    # Order: no offload before offload, no recomputation before it, small TP before large, low stage first.
    layouts.sort(key=lambda l: (l["offload"], l["checkpoint"], l["tensor_parallel"],
                                -1 if l["zero_stage"] is None else l["zero_stage"]))
    return layouts


def smallest_layout(config, devices: Devices, *, mode: str = "train",
                    projected_fraction: Optional[float] = None, allow_offload: bool = True,
                    workload: Workload = PRETRAINING):
    """``(updates, plan)`` of the first layout of :func:`candidate_layouts` that fits ``devices``
    (``updates`` for ``RunConfig.updated``), or ``(None, None)`` when none does; ``allow_offload``
    False leaves the CPU-offload layouts out."""
    if devices.memory is None:
        raise ValueError("the smallest layout needs the device memory (--gpu-memory)")
    for layout in candidate_layouts(config, devices):
        if mode == "inference" and (layout["zero_stage"] is not None or layout["checkpoint"]):
            continue
        if layout["offload"] and not allow_offload:
            continue
        updates = layout_updates(config, tensor_parallel=layout["tensor_parallel"],
                                 zero_stage=layout["zero_stage"], offload=layout["offload"],
                                 checkpoint=layout["checkpoint"])
        candidate = plan(config.updated(**updates), devices, mode=mode, projected_fraction=projected_fraction,
                         workload=workload)
        if candidate.fits:
            return updates, candidate
    return None, None


# ---------------------------------------------------------------------------------------------------
# Printing
# ---------------------------------------------------------------------------------------------------


def format_plan(p: MemoryPlan) -> str:
    """The plan as a short table (what memory_plan.py prints)."""
    rows = [("parameters", p.parameters), ("gradients", p.gradients), ("optimizer state", p.optimizer),
            ("activations", p.activations), ("temporary buffers", p.temporary)]
    lines = [f"memory plan ({p.mode}, {p.precision}, {p.layout()}, micro-batch {p.micro_batch} x "
             f"sequence {p.seq_length}; {p.parameters_total / 1e6:,.1f}M parameters, "
             f"{p.trainable_total / 1e6:,.2f}M trainable)", "  per device:"]
    lines += [f"    {name:<18} {format_size(value):>12}" for name, value in rows]
    lines.append(f"    {'peak (see docs)':<18} {format_size(p.total):>12}")
    if p.device_memory is not None:
        verdict = "fits" if p.total <= p.device_memory else "does NOT fit"
        lines.append(f"    {'device memory':<18} {format_size(p.device_memory):>12}   -> {verdict} "
                     f"({100 * p.total / p.device_memory:.0f}% used)")
    if p.host:
        line = f"  host (offload, all ranks of the job): {format_size(p.host)}"
        if p.host_memory is not None:
            line += " -> " + ("fits" if p.host <= p.host_memory else "does NOT fit") + \
                    f" in {format_size(p.host_memory)}"
        lines.append(line)
    return "\n".join(lines)


def format_plan_line(p: MemoryPlan) -> str:
    """One line for a run's log: the planned peak and its parts."""
    return (f"memory plan: peak {format_size(p.total)} per device ({p.precision}, {p.layout()}) = parameters "
            f"{format_size(p.parameters)} + optimizer {format_size(p.optimizer)} + max(activations "
            f"{format_size(p.activations)} + temporaries {format_size(p.temporary)}, gradients "
            f"{format_size(p.gradients)})" + (f"; host {format_size(p.host)}" if p.host else ""))
