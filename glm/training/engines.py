"""Two engines behind one training loop.

``PlainEngine``: ``torch.optim.AdamW``, ``torch.autocast`` (bf16, or fp16 with the original's dynamic
loss scaling, :mod:`glm.training.loss_scaler`), ``DistributedDataParallel`` over the data-parallel group, gradient accumulation,
clipping that counts model-parallel shards once.  ``DeepSpeedEngine``: ``deepspeed.initialize`` with
the JSON of ``--deepspeed_config`` (ZeRO 0-3, fp16/bf16, clipping, accumulation, offload).

Both expose ``train_batch(micro_batches, forward_fn)`` returning a :class:`StepResult`, ``eval()`` /
``train()``, ``module`` (the bare model) and ``forward_model`` (what ``forward_fn`` must call).

Non-finite losses: the loss of each micro-batch is averaged over the data-parallel group before its
backward; if it is NaN or inf the step is abandoned (no update, the LR schedule does not advance) and
counted.  The caller stops the run after ``--max-nan-steps`` such steps in a row.
"""

import contextlib
import dataclasses
import math
from typing import Optional

import torch
import torch.distributed as dist

from .. import mpu
from .distributed import all_reduce_mean
from .loss_scaler import DynamicLossScaler


@dataclasses.dataclass
class StepResult:
    loss: float               # mean loss of the step's micro-batches (averaged over data parallel)
    skipped: bool             # no optimizer update happened (non-finite loss or fp16 overflow)
    nonfinite: bool           # the loss was NaN/inf
    grad_norm: Optional[float] = None  # None: not computed (NaN/inf loss) or not exposed by DeepSpeed
    loss_scale: float = 1.0
    extras: dict = dataclasses.field(default_factory=dict)


def autocast_dtype(config):
    if config.precision.bf16:
        return torch.bfloat16
    if config.precision.fp16:
        return torch.float16
    return None


def _finite_mean_loss(loss):
    reduced = all_reduce_mean(loss.detach().float())
    value = reduced.item()
    return value, math.isfinite(value)


class PlainEngine:
    """Training without DeepSpeed: one optimizer step per ``train_batch`` call."""

    name = "plain"

    def __init__(self, model, optimizer, lr_scheduler, config, device):
        self.module = model
        self.optimizer = optimizer
        self.lr_scheduler = lr_scheduler
        self.config = config
        self.device = device
        self.amp_dtype = autocast_dtype(config)
        dp_group = mpu.get_data_parallel_group()
        self.data_parallel = dist.is_initialized() and dist.get_world_size(group=dp_group) > 1
        if self.data_parallel and config.parallel.DDP_impl != "none":
            # Gradients stay apart from DDP's buckets (a second copy of every gradient at the end of the
            # backward, docs/memory.md): with gradient_as_bucket_view=True, a process that went on to build a
            # DeepSpeed engine aborted ("terminate called without an active exception") in 6 of 9 runs of
            # tests/distributed/test_engines_distributed.py here (torch 2.13, gloo), and never without it.
            self.forward_model = torch.nn.parallel.DistributedDataParallel(
                model, process_group=dp_group, device_ids=[device] if device.type == "cuda" else None,
                broadcast_buffers=False)
        else:
            self.forward_model = model
        # fp16 only: start at 2^32 (or a static --loss-scale), --loss-scale-window, --hysteresis, --min-scale.
        self.scaler = DynamicLossScaler.from_config(config) if self.amp_dtype == torch.float16 else None

    # -- modes --------------------------------------------------------------------------------
    def train(self):
        self.module.train()

    def eval(self):
        self.module.eval()

    def autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    # -- one optimizer step -------------------------------------------------------------------
    def train_batch(self, micro_batches, forward_fn):
        accumulation = len(micro_batches)
        losses, extras = [], {}
        self.optimizer.zero_grad(set_to_none=True)
        for i, batch in enumerate(micro_batches):
            # Gradients are all-reduced once, on the last micro-batch; the earlier ones only accumulate.
            skip_grad_sync = self.data_parallel and i < accumulation - 1 and hasattr(self.forward_model, "no_sync")
            with (self.forward_model.no_sync() if skip_grad_sync else contextlib.nullcontext()):
                with self.autocast():
                    loss, extra = forward_fn(self.forward_model, batch)
                value, finite = _finite_mean_loss(loss)
                if not finite:
                    self.optimizer.zero_grad(set_to_none=True)
                    return StepResult(loss=value, skipped=True, nonfinite=True)
                scaled = loss / accumulation
                (scaled * self.scaler.scale if self.scaler else scaled).backward()
            losses.append(value)
            extras.update(extra or {})
        params = [p for g in self.optimizer.param_groups for p in g["params"]]
        grads = [p.grad for p in params if p.grad is not None]
        if self.scaler and grads:
            torch._foreach_mul_(grads, 1.0 / self.scaler.scale)
        max_norm = self.config.training.clip_grad if self.config.training.clip_grad > 0 else float("inf")
        # The norm is reduced over the model-parallel group, so every rank sees the same overflow.
        grad_norm = mpu.clip_grad_norm(params, max_norm).item()
        skipped = self.scaler is not None and not math.isfinite(grad_norm)  # fp16 overflow: skip the update
        if not skipped:
            self.optimizer.step()
        if self.scaler:
            self.scaler.update(overflow=skipped)
        if not skipped and self.lr_scheduler is not None:
            self.lr_scheduler.step()
        return StepResult(loss=sum(losses) / len(losses), skipped=skipped, nonfinite=False, grad_norm=grad_norm,
                          loss_scale=self.scaler.scale if self.scaler else 1.0, extras=extras)

    # -- state for checkpoints ----------------------------------------------------------------
    def whole_parameters(self, modify=False):
        """The module's parameters are always whole here (see :meth:`DeepSpeedEngine.whole_parameters`)."""
        return contextlib.nullcontext()

    def state_dict(self):
        state = {"optimizer": self.optimizer.state_dict()}
        if self.scaler is not None:
            state["grad_scaler"] = self.scaler.state_dict()
        return state

    def load_state_dict(self, state):
        if state.get("optimizer") is not None:
            self.optimizer.load_state_dict(state["optimizer"])
        if self.scaler is not None and state.get("grad_scaler") is not None:
            self.scaler.load_state_dict(state["grad_scaler"])


class DeepSpeedEngine:
    """Training through a DeepSpeed engine configured by ``--deepspeed_config``."""

    name = "deepspeed"

    def __init__(self, model, optimizer, lr_scheduler, config, device, model_parameters=None):
        import deepspeed  # optional dependency: imported only when --deepspeed is given

        self.config = config
        self.device = device
        engine, ds_optimizer, _, _ = deepspeed.initialize(
            model=model, optimizer=optimizer, model_parameters=model_parameters,
            config=config.parallel.deepspeed_config_dict, mpu=mpu,
            dist_init_required=False)
        self.engine = engine
        self.forward_model = engine
        self.module = engine.module
        self.optimizer = ds_optimizer
        # The LR schedule is stepped here, not by DeepSpeed, so both engines skip it the same way.
        self.lr_scheduler = lr_scheduler

    def train(self):
        self.engine.train()

    def eval(self):
        self.engine.eval()

    def autocast(self):
        return contextlib.nullcontext()  # DeepSpeed casts the model itself (fp16/bf16 sections of the JSON)

    def train_batch(self, micro_batches, forward_fn):
        losses, extras = [], {}
        for batch in micro_batches:
            loss, extra = forward_fn(self.engine, batch)
            value, finite = _finite_mean_loss(loss)
            if not finite:
                # Discard the micro-batch before DeepSpeed sees it (as the original did).
                return StepResult(loss=value, skipped=True, nonfinite=True)
            self.engine.backward(loss)
            self.engine.step()
            losses.append(value)
            extras.update(extra or {})
        applied = self.engine.was_step_applied() if hasattr(self.engine, "was_step_applied") else True
        if applied and self.lr_scheduler is not None:
            self.lr_scheduler.step()
        # DeepSpeed's optimizers for fp16, bf16 and ZeRO record the norm; a plain fp32 run without ZeRO
        # does not (None): the log line then omits it instead of printing "grad norm nan" every time.
        grad_norm = self.engine.get_global_grad_norm()
        scale = getattr(self.engine.optimizer, "cur_scale", None) or getattr(self.engine.optimizer, "loss_scale", 1.0)
        return StepResult(loss=sum(losses) / len(losses), skipped=not applied, nonfinite=False,
                          grad_norm=float(grad_norm) if grad_norm is not None else None,
                          loss_scale=float(scale) if not callable(scale) else 1.0, extras=extras)

    def whole_parameters(self, modify=False):
        """A context in which ``module``'s parameters hold their whole values, for reading or writing
        them outside a forward (the best model's weights, restoring them).  Under ZeRO-3 each rank keeps
        a partition only (with offload, on the CPU): every rank must enter; with ``modify`` the values
        data-parallel rank 0 holds at the exit become the new partitions.  Other stages: nothing to do."""
        if not self.engine.zero_optimization_partition_weights():
            return contextlib.nullcontext()
        import deepspeed
        return deepspeed.zero.GatheredParameters(list(self.module.parameters()), modifier_rank=0 if modify else None)

    def state_dict(self):
        return {}  # DeepSpeed writes its own optimizer state next to the model files

    def load_state_dict(self, state):
        pass


def offloads_optimizer(deepspeed_json):
    """Whether a DeepSpeed JSON moves the ZeRO optimizer state and step to the CPU (or NVMe)."""
    offload = (deepspeed_json.get("zero_optimization") or {}).get("offload_optimizer") or {}
    return offload.get("device", "none") in ("cpu", "nvme")


def cpu_adam_like(optimizer):
    """DeepSpeed's CPU Adam with the groups and hyperparameters of our ``torch.optim.AdamW``
    (decoupled weight decay: ``adamw_mode``).  ZeRO-Offload steps the optimizer on the CPU and by
    default refuses any other optimizer ("zero_force_ds_cpu_optimizer"); DeepSpeed compiles the op
    (C++, ninja) at its first use and caches it under ``TORCH_EXTENSIONS_DIR``."""
    try:
        from deepspeed.ops.adam import DeepSpeedCPUAdam
        defaults = optimizer.defaults
        groups = [{"params": group["params"], "weight_decay": group["weight_decay"], "lr": group["lr"]}
                  for group in optimizer.param_groups]
        return DeepSpeedCPUAdam(groups, lr=defaults["lr"], betas=defaults["betas"], eps=defaults["eps"],
                                weight_decay=defaults["weight_decay"], adamw_mode=True)
    except Exception as err:  # the op's build raises assorted errors (no compiler, no ninja, ...)
        raise RuntimeError(
            f"ZeRO-Offload needs DeepSpeed's CPU Adam, which could not be built here ({type(err).__name__}: {err}). "
            'Install a C++ compiler and ninja, or add "zero_force_ds_cpu_optimizer": false to the DeepSpeed JSON '
            "to step torch's AdamW on the CPU instead") from err


def build_engine(config, model, optimizer_factory, scheduler_factory, device):
    """Create the engine the flags ask for; the LR scheduler is built on the optimizer that will
    really be stepped (DeepSpeed may create its own from the JSON).  With optimizer offload and no
    JSON optimizer, our AdamW's groups go to DeepSpeed's CPU Adam unless the JSON sets
    ``"zero_force_ds_cpu_optimizer": false`` (then torch's AdamW steps on the CPU)."""
    if config.parallel.deepspeed:
        from .model_setup import param_groups
        deepspeed_json = config.parallel.deepspeed_config_dict or {}
        if "optimizer" in deepspeed_json:
            engine = DeepSpeedEngine(model, None, None, config, device, model_parameters=param_groups(model))
        else:
            optimizer = optimizer_factory(model)
            if offloads_optimizer(deepspeed_json) and deepspeed_json.get("zero_force_ds_cpu_optimizer", True):
                optimizer = cpu_adam_like(optimizer)
            engine = DeepSpeedEngine(model, optimizer, None, config, device)
        engine.lr_scheduler = scheduler_factory(engine.optimizer)
        return engine
    optimizer = optimizer_factory(model)
    return PlainEngine(model, optimizer, scheduler_factory(optimizer), config, device)
