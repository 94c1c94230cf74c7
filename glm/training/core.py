"""The one training core: pretraining (:mod:`glm.training.pretraining`) and every finetuning family
(``tasks/finetune.py``) run their optimizer steps through :class:`TrainingCore`.

Owns what surrounds one optimizer step, for every caller alike:

* the step itself through the engine (``engine.train_batch``: forward, backward, gradient
  accumulation over the micro-batches it is given, optimizer and LR-schedule step);
* the NaN/inf guard: a skipped step is announced, and ``max_nan_steps`` of them in a row raise
  :class:`TrainingDiverged`;
* the counting (tokens, executed FLOPs when the loss says how many positions it projects) and the log
  line every ``log_interval`` steps (:class:`~glm.training.metrics.TrainingLogger`: throughput, MFU,
  loss scale);
* the validation loss every ``eval_interval`` steps (:func:`evaluate_loss`, the line
  ``validation at iteration N | loss ...``);
* the periodic save every ``save_interval`` steps (through the caller's save function, which writes
  with :mod:`glm.training.checkpointing`) and the stop request (:mod:`glm.training.interrupt`) asked
  after every step: the run then saves the step it stopped after (unless ``save_on_stop`` is off,
  --no-save-on-interrupt) and returns.

Must not touch: where batches come from (callers hand it each step's micro-batches), how losses are
computed (:mod:`glm.training.losses`), how checkpoints are laid out (``glm/checkpoint``), epochs, task
metrics and best-model choice (``tasks/finetune.py``), or the run's configuration: it receives
:class:`LoopSettings` (built from the run's :class:`glm.config.RunConfig`) and changes no configuration.
"""

import contextlib
import dataclasses
import math
import sys
from typing import Callable, Optional

import torch
import torch.distributed as dist

from .. import mpu
from .distributed import all_reduce_mean, is_rank_0

#: The log's name for the loss of each pretraining objective (a batch's ``mode``).
MODE_NAMES = {"bert": "BERT loss", "sentence": "Sent loss", "gpt": "GPT loss", "multi-task": "Multi loss"}


class TrainingDiverged(RuntimeError):
    """Too many consecutive steps had a NaN/inf loss."""


@dataclasses.dataclass(frozen=True)
class LoopSettings:
    """What the core reads, fixed for the run.  Intervals count optimizer steps (0: never).  Built by
    :meth:`from_config`: the flag defaults live in the parser only, so the fields that mirror a flag
    have none here.

    ``count_micro_batches``: the iteration number counts micro-batches, as the original's finetuning
    did (a step of ``micro_batches_per_step`` micro-batches advances it by that many); otherwise it
    counts optimizer steps, as pretraining."""
    train_iters: int
    micro_batches_per_step: int
    log_interval: int
    eval_interval: int
    eval_iters: int
    save_interval: int
    max_nan_steps: int
    save_on_stop: bool   # save the step a stop request ended the run after
    base_lr: float   # logged when the engine has no LR scheduler
    count_micro_batches: bool = False

    @classmethod
    def from_config(cls, config, **overrides):
        """The settings of the flags (``overrides`` replace what the caller computed itself)."""
        values = dict(train_iters=config.training.train_iters,
                      micro_batches_per_step=config.training.gradient_accumulation_steps,
                      log_interval=config.logging.log_interval,
                      eval_interval=config.evaluation.eval_interval or 0,
                      eval_iters=config.evaluation.eval_iters,
                      save_interval=config.checkpoint.save_interval or 0,
                      max_nan_steps=config.training.max_nan_steps,
                      save_on_stop=not config.checkpoint.no_save_on_interrupt,
                      base_lr=config.training.lr)
        values.update(overrides)
        return cls(**values)

    @property
    def iterations_per_step(self):
        return self.micro_batches_per_step if self.count_micro_batches else 1


def format_eval(prefix, iteration, results):
    parts = [f"{prefix} at iteration {iteration}"]
    parts += [f"{k} {v:.4f}" for k, v in results.items()]
    return " | ".join(parts)


@contextlib.contextmanager
def clear_of_progress_bar(progress):
    """Print log lines clear of the progress bar: the bar (stderr) is erased while the lines (stdout)
    are written and redrawn below them, so a bar and a log line never share a terminal line."""
    if progress is None:
        yield
        return
    progress.clear()
    try:
        yield
    finally:
        progress.refresh()


def evaluation_model(engine):
    """What a loss is computed on outside training: the bare model on the plain engine (not its DDP
    wrapper), the DeepSpeed engine itself on DeepSpeed."""
    return engine.module if engine.name == "plain" else engine.forward_model


def evaluate_loss(engine, batches, forward_fn, max_batches, device, perplexity=True):
    """Average loss (and per-objective losses, :data:`MODE_NAMES`) of ``forward_fn`` over up to
    ``max_batches`` of ``batches`` (batches on ``device``), averaged over data parallel; with
    ``perplexity`` also ``PPL`` = exp(loss) (capped at exp(20))."""
    engine.eval()
    totals, counts = {}, {}
    with torch.no_grad():
        for _, batch in zip(range(max_batches), batches):
            with engine.autocast():
                loss, extra = forward_fn(evaluation_model(engine), batch)
            for key in ("loss", MODE_NAMES.get((extra or {}).get("mode"))):
                if key:
                    totals[key] = totals.get(key, 0.0) + loss.float().item()
                    counts[key] = counts.get(key, 0) + 1
    engine.train()
    results = {}
    for key in sorted(totals):
        value = torch.tensor(totals[key] / counts[key], device=device)
        results[key] = all_reduce_mean(value).item() if dist.is_initialized() else value.item()
    if perplexity and "loss" in results:
        results["PPL"] = math.exp(min(20.0, results["loss"]))
    return results


class TrainingCore:
    """Runs optimizer steps on ``engine`` with ``forward_fn`` (``(model, batch) -> (loss, extras)``)
    and does what follows each step (see the module docstring).

    ``validate()`` returns the validation results to log (a dict, empty for none); ``save(iteration)``
    writes a resumable checkpoint; ``count_projected(micro_batches)`` says how many positions the loss
    projects onto the vocabulary (``None``: the executed-FLOPs figure is left out);
    ``stop_request`` is a :class:`~glm.training.interrupt.StopRequest`; ``progress_bar`` shows a bar
    on rank 0 when stderr is a terminal.  ``iteration`` is where the run stands."""

    def __init__(self, engine, forward_fn, device, settings: LoopSettings, logger, *, start_iteration=0,
                 validate: Optional[Callable[[], dict]] = None, save: Optional[Callable[[int], None]] = None,
                 count_projected: Optional[Callable] = None, stop_request=None, writer=None, progress_bar=False):
        self.engine, self.forward_fn, self.device = engine, forward_fn, device
        self.settings, self.logger, self.writer = settings, logger, writer
        self.validate_fn, self.save_fn = validate, save
        self.count_projected, self.stop_request = count_projected, stop_request
        self.iteration = start_iteration
        self.nonfinite_in_a_row = 0
        self.progress = None
        if progress_bar and is_rank_0() and sys.stderr.isatty():
            from tqdm import tqdm
            self.progress = tqdm(total=settings.train_iters, initial=start_iteration, desc="train",
                                 dynamic_ncols=True)

    def print(self, line):
        """Print ``line`` on rank 0, clear of the progress bar."""
        if is_rank_0():
            with clear_of_progress_bar(self.progress):
                print(line, flush=True)

    def close(self):
        if self.progress is not None:
            self.progress.close()
            self.progress = None

    # -- one step -------------------------------------------------------------------------------
    def step(self, micro_batches):
        """One optimizer step over ``micro_batches``: train, guard against NaN/inf, count, log."""
        settings = self.settings
        result = self.engine.train_batch(micro_batches, self.forward_fn)
        self.iteration += settings.iterations_per_step
        self._guard(result)
        dp_world = mpu.get_data_parallel_world_size()
        tokens = sum(b["text"].numel() for b in micro_batches) * dp_world
        projected = self.count_projected(micro_batches) if self.count_projected is not None else None
        self.logger.record(result, tokens, micro_batches[0]["text"].size(-1),
                           projected=None if projected is None else projected * dp_world)
        if self.progress is not None:
            self.progress.update(settings.iterations_per_step)
        if self.steps_done % settings.log_interval == 0 and is_rank_0():
            lr = self.engine.lr_scheduler.get_lr() if self.engine.lr_scheduler is not None else settings.base_lr
            with clear_of_progress_bar(self.progress):
                self.logger.report(self.iteration, lr)
        return result

    @property
    def steps_done(self):
        return self.iteration // self.settings.iterations_per_step

    def _guard(self, result):
        """Count consecutive NaN/inf losses (the engine skipped their steps) and stop the run after
        ``max_nan_steps`` of them."""
        if not result.nonfinite:
            self.nonfinite_in_a_row = 0
            return
        self.nonfinite_in_a_row += 1
        self.print(f"iteration {self.iteration}: loss is {result.loss}; step skipped "
                   f"({self.nonfinite_in_a_row} in a row)")
        if self.nonfinite_in_a_row >= self.settings.max_nan_steps:
            raise TrainingDiverged(
                f"the loss was NaN/inf for {self.nonfinite_in_a_row} consecutive steps (last at iteration "
                f"{self.iteration}); stopping. Lower --lr, raise --warmup or use --bf16, then resume from the last "
                f"checkpoint; --max-nan-steps sets the limit")

    # -- the run --------------------------------------------------------------------------------
    def run(self, step_batches):
        """Steps over ``step_batches`` (an iterator of each step's micro-batch lists) until it ends or
        the iteration reaches ``train_iters``, with the periodic save and validation after each step.
        Returns whether a stop was requested: the run then ends after the step that saw it, saved
        (unless ``save_on_stop`` is off or the periodic save just wrote it)."""
        settings = self.settings
        while self.iteration < settings.train_iters:
            micro_batches = next(step_batches, None)
            if micro_batches is None:
                return False
            self.step(micro_batches)
            step = self.steps_done
            saved = self.save_fn is not None and settings.save_interval and step % settings.save_interval == 0
            if saved:
                self.save_fn(self.iteration)
            if self.validate_fn is not None and settings.eval_interval and step % settings.eval_interval == 0:
                self.report_validation("validation", self.validate_fn())
            if self.stop_request is not None and self.stop_request.requested():
                if self.save_fn is not None and settings.save_on_stop and not saved:
                    self.save_fn(self.iteration)
                return True
        return False

    def report_validation(self, prefix, results):
        """The validation line (and its TensorBoard scalars) of ``results`` at this iteration."""
        if not is_rank_0():
            return
        self.print(format_eval(prefix, self.iteration, results))
        if self.writer is not None:
            for key, value in results.items():
                self.writer.add_scalar(f"Train/valid_{key.replace(' ', '_')}", value, self.iteration)
