"""Throughput, MFU and loss logging for the training core (stdout, ``train_log.jsonl``, optional
TensorBoard).

Owns the figures of the log line (loss, loss scale, grad norm, ms/iter, tokens/s, TFLOP/s, MFU against
the device's peak, executed FLOPs) and where they are written.  Must not touch: the step itself (the
core's), the engines, or the run's configuration: it receives explicit values."""

import json
import logging
import math
import os
import resource
import time

import torch
import torch.distributed as dist

from ..memory import PRETRAINING, Devices, format_plan_line, plan
from ..model import executed_flops, flops_per_token
from .engines import autocast_dtype

logger = logging.getLogger(__name__)

NOMINAL_PEAKS = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "V100": 125e12}


def device_peak_flops(device, dtype):
    """Dense peak FLOP/s to compute MFU against: the vendor figure for known GPUs, else a matmul
    measured now (CPUs), so the MFU says how close the model runs to what the device really does.

    On a CPU the faster of ``dtype`` and float32 is taken: CPU autocast leaves much of the model in
    float32, and a CPU without native half-precision units multiplies float16 far slower than
    float32, so a float16-only measurement made an ``--fp16`` run report an MFU above 100%."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        for key, value in NOMINAL_PEAKS.items():
            if key in name:
                return value, f"{key} dense peak {value / 1e12:.0f} TFLOP/s"
    if device.type == "cpu" and dtype != torch.float32:
        return max(_measured_matmul_peak(device, dtype), _measured_matmul_peak(device, torch.float32))
    return _measured_matmul_peak(device, dtype)


def _measured_matmul_peak(device, dtype):
    """``(FLOP/s, label)`` of the fastest of five square matmuls in ``dtype``."""
    size = 1024 if device.type == "cpu" else 8192
    a = torch.randn(size, size, device=device, dtype=dtype)
    a @ a
    # The fastest of several products: a shared machine's speed drifts, and a peak read in a slow moment
    # would make the MFU overstate (an average of three once read 131 GFLOP/s beside a model at 126).
    fastest = math.inf
    for _ in range(5):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        a @ a
        if device.type == "cuda":
            torch.cuda.synchronize()
        fastest = min(fastest, time.perf_counter() - start)
    peak = 2 * size ** 3 / fastest
    return peak, f"measured {dtype} matmul {peak / 1e9:.0f} GFLOP/s (fastest of 5)"


def run_logger(config, model_config, device, writer=None, *, train_iters, log_dir=None, workload=PRETRAINING):
    """The :class:`TrainingLogger` of the run ``config`` describes (both entry points start their runs
    with it): its memory plan (``glm.memory``; ``workload``: what a finetuning task's sample computes)
    is printed on rank 0 and its peak set beside the measured one of the first report.  MFU is counted
    against the peak of ``device`` in the run's compute dtype (:func:`device_peak_flops`, its label in ``peak_label``), FLOPs per device over
    every rank of the job."""
    memory_plan = run_memory_plan(config, device, workload)
    if memory_plan is not None and (not dist.is_initialized() or dist.get_rank() == 0):
        print(format_plan_line(memory_plan), flush=True)
    peak, peak_label = device_peak_flops(device, autocast_dtype(config) or torch.float32)
    num_devices = dist.get_world_size() if dist.is_initialized() else 1
    return TrainingLogger(model_config, num_devices, peak, peak_label, writer, train_iters=train_iters,
                          log_dir=log_dir, recompute=config.training.checkpoint_activations,
                          planned_peak=memory_plan.total if memory_plan else None)


def run_memory_plan(config, device, workload=PRETRAINING):
    """The memory plan of the run ``config`` describes on this job's devices; None where the plan
    cannot be made (it never stops a run)."""
    world = dist.get_world_size() if dist.is_initialized() else 1
    try:
        return plan(config, Devices(world, device_memory(device)), workload=workload)
    except (ValueError, KeyError, ZeroDivisionError) as error:
        logging.getLogger(__name__).warning("no memory plan: %s", error)
        return None


def device_memory(device):
    """The memory of ``device`` in bytes (None on CPU: the host's memory is not the run's alone)."""
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory
    return None


class TrainingLogger:
    """Accumulates per-step figures and prints a line every ``log_interval`` steps."""

    def __init__(self, model_config, num_devices, peak, peak_label, writer=None, *, train_iters, log_dir=None,
                 recompute=False, planned_peak=None):
        """``train_iters``: the last iteration (the line's denominator); ``log_dir``: where
        ``train_log.jsonl`` goes (None: not written); ``recompute``: activations are recomputed in the
        backward (--checkpoint-activations), which the executed-FLOPs figure counts."""
        self.train_iters = train_iters
        self.recompute = recompute
        self.model_config = model_config
        self.num_devices = num_devices
        self.peak = peak
        self.peak_label = peak_label
        self.writer = writer
        # Every report also goes, at full precision, to <save>/train_log.jsonl (machine-readable; the
        # resume tests compare losses bit for bit through it).
        self.jsonl_path = os.path.join(log_dir, "train_log.jsonl") if log_dir else None
        self.reset()
        self.memory_reported = False
        self.planned_peak = planned_peak

    def reset(self):
        self.steps = 0
        self.loss_sum = 0.0
        self.tokens = 0
        self.flops = 0.0
        self.executed = 0.0   # FLOPs really run (projection at the loss positions only), when known
        self.executed_known = True
        self.skipped = 0
        self.loss_steps = 0
        self.started = time.perf_counter()
        self.grad_norm = None   # None: the engine does not expose it (the line then omits it)
        self.loss_scale = 1.0

    def record(self, result, tokens, seq_length, projected=None):
        """One optimizer step of ``tokens`` tokens; ``projected``: how many of them the loss projected
        onto the vocabulary (``None``: unknown, the executed-FLOPs figure is then left out)."""
        self.steps += 1
        if result.nonfinite or result.skipped:
            self.skipped += 1
        # The logged loss is the mean over the steps whose loss is finite: sum and count cover the same
        # steps.  An fp16 overflow skips the update, not the forward pass, so its (finite) loss is a
        # true loss of the current weights and is counted; a NaN/inf loss is left out of both.
        if not result.nonfinite:
            self.loss_sum += result.loss
            self.loss_steps += 1
        self.tokens += tokens
        c = self.model_config
        flops = tokens * flops_per_token(c["num_layers"], c["hidden_size"], c["vocab_size"], seq_length)
        # Executed FLOPs: a NaN/inf loss ends the step before its backward (the engines return at
        # once), so only the forward third was done; an overflow-skipped step ran forward and backward.
        self.flops += flops / 3 if result.nonfinite else flops
        if projected is None:
            self.executed_known = False
        else:
            executed = executed_flops(c["num_layers"], c["hidden_size"], c["vocab_size"], seq_length, tokens,
                                      projected, recompute=self.recompute)
            self.executed += executed / 3 if result.nonfinite else executed
        if result.grad_norm is not None:
            self.grad_norm = result.grad_norm
        self.loss_scale = result.loss_scale

    def report(self, iteration, lr):
        elapsed = time.perf_counter() - self.started
        loss = self.loss_sum / self.loss_steps if self.loss_steps else float("nan")
        tokens_per_s = self.tokens / elapsed
        tflops = self.flops / elapsed / self.num_devices / 1e12
        mfu = 100.0 * self.flops / elapsed / self.num_devices / self.peak
        line = (f"iteration {iteration:8d}/{self.train_iters:8d} | lr {lr:.3e} | loss {loss:.4f} | "
                f"loss scale {self.loss_scale:.1f} | "
                + (f"grad norm {self.grad_norm:.3f} | " if self.grad_norm is not None else "")
                + f"ms/iter {1000 * elapsed / max(1, self.steps):.1f} | tokens/s {tokens_per_s:,.0f} | "
                f"TFLOP/s/device {tflops:.3f} | MFU {mfu:.1f}%")
        executed_tflops = None
        if self.executed_known and self.steps:
            # Labelled apart from the MFU: the MFU counts dense model FLOPs (every position projected onto
            # the vocabulary), this counts what ran (projection at the loss positions, recomputation).
            executed_tflops = float(self.executed) / elapsed / self.num_devices / 1e12
            line += f" (dense model FLOPs) | executed TFLOP/s/device {executed_tflops:.3f}"
        if self.skipped:
            line += f" | skipped {self.skipped}"
        print(line, flush=True)
        if not self.memory_reported:
            print(memory_report(self.planned_peak), flush=True)
            self.memory_reported = True
        if self.jsonl_path:
            record = {"iteration": iteration, "lr": lr, "loss": loss, "loss_scale": self.loss_scale,
                      "grad_norm": self.grad_norm, "skipped": self.skipped, "tokens_per_s": tokens_per_s,
                      "tflops_per_device": tflops, "mfu": mfu, "executed_tflops_per_device": executed_tflops}
            with open(self.jsonl_path, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
        if self.writer is not None:
            for key, value in (("lr", lr), ("train_loss", loss), ("tokens_per_s", tokens_per_s),
                               ("tflops_per_device", tflops), ("mfu", mfu), ("grad_norm", self.grad_norm),
                               ("loss_scale", self.loss_scale)):
                if value is not None and math.isfinite(value):
                    self.writer.add_scalar(f"Train/{key}", value, iteration)
        self.reset()


def memory_report(planned_peak=None):
    """Peak memory of this process (GPU allocator when on CUDA, else the resident set, which includes
    the imported libraries), and the memory plan's peak when given."""
    planned = f" | planned peak {planned_peak / 2**20:.0f}" if planned_peak is not None else ""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        return (f"memory (MB): allocated {torch.cuda.memory_allocated() / 2**20:.0f} | max allocated "
                f"{torch.cuda.max_memory_allocated() / 2**20:.0f} | reserved "
                f"{torch.cuda.memory_reserved() / 2**20:.0f}{planned}")
    return (f"memory (MB): peak resident set {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} "
            f"(with the imports){planned}")


def make_summary_writer(enabled, summary_dir, experiment_name):
    """A TensorBoard writer under ``<summary-dir>/runs/<experiment>`` when ``enabled`` (--tensorboard)."""
    if not enabled:
        return None
    from torch.utils.tensorboard import SummaryWriter
    return SummaryWriter(log_dir=os.path.join(summary_dir or ".", "runs", experiment_name))
