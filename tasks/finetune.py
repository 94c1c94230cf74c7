"""The epoch-based finetuning driver every trained task shares (spec section 9.1): a thin layer over
the training core (:mod:`glm.training.core`).

Owns: epochs (sampler seeds, skipping what a mid-epoch resume already trained, the micro-batches of
an epoch that do not fill an accumulation group), the task metrics on the dev split every
``--eval-epoch`` epochs and the choice of the best model, the final evaluation and the run's result
files.  Must not touch: the optimizer step, NaN guard, log line, validation loss and stop handling
(the core's), how checkpoints are written (``glm/checkpoint`` via :mod:`glm.training.checkpointing`),
and the configuration: the values it derives (the run's save folder, the number of iterations) are
computed once and passed on, never written back into ``config``.

A task describes itself with a :class:`FinetuneTask` (datasets, model, loss, evaluation, prediction
files); :func:`finetune` runs it:

* loads the pretrained weights (``--load-pretrained``) into the task's model, or resumes a finetuning
  run (``--load``);
* trains ``--epochs`` passes over the training set on the plain or DeepSpeed engine of pretraining
  (data parallel through a ``DistributedSampler`` over the data-parallel group; every rank of a
  model-parallel group builds the same dataset, so no batch broadcast is needed);
* logs loss/throughput every ``--log-interval`` steps, the loss on the validation set every
  ``--eval-interval`` steps, and runs the task metrics on the dev split every ``--eval-epoch`` epochs;
* keeps the best model by ``--validation-metric`` (the tag ``best`` under ``--save``, weights only;
  in memory when there is no ``--save``) and writes ``results.json``;
* saves a resumable checkpoint every ``--save-epoch`` epochs;
* at the end reloads the best model and evaluates the test split (and the dev split with
  ``--eval-valid``), writing predictions and ``test_results.json``.  ``--epochs 0`` only evaluates.

Outputs go to ``<summary-dir>/runs/<experiment-name>/`` (metrics, predictions) and
``<save>/<experiment-name>/`` (checkpoints).
"""

import contextlib
import dataclasses
import json
import logging
import math
import os
import time
from typing import Any, Callable, Optional

import torch
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler

from glm import mpu
from glm.checkpoint import load_model_state, load_pretrained_weights, read_model_state_dict
from glm.checkpoint.loading import checkpoint_holds_adapters, load_adapter
from glm.checkpoint.io import path_relation, load_checkpoint_file
from glm.checkpoint.layout import BEST_TAG, resolve_checkpoint
from glm.checkpoint.saving import save_best_model, update_best_tracker
from glm.model.lora import (SETTINGS_KEY, adapter_settings, add_lora_from_config, has_lora, load_saved_weights,
                            settings_from_config, state_dict_to_save)
from glm.training.distributed import barrier, is_rank_0
from glm.training.run_directory import LOCK_NAME, prepare_run_directory

from .batching import batch_to_device, collate_choices

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class FinetuneTask:
    """What a task contributes to :func:`finetune`.

    ``build_model(config, device)`` returns the model to train; ``forward_step(model, batch)`` returns
    ``(loss, extras)`` for a collated batch on the device; ``evaluate(model, split)`` returns
    ``(metrics dict, predictions)`` for ``"dev"`` or ``"test"`` with the same result on every rank
    (``(None, None)`` when the split has no data, an empty dict when it has no labels); ``write_predictions(predictions, split, directory)`` writes
    the task's prediction files (rank 0 only).  ``metric_names`` lists what ``evaluate`` reports, the
    first being the default ``--validation-metric``.
    """
    name: str
    build_model: Callable[[Any, torch.device], torch.nn.Module]
    forward_step: Callable[[torch.nn.Module, dict], Any]
    evaluate: Callable[[torch.nn.Module, str], Any]
    metric_names: tuple
    train_dataset: Any = None
    valid_dataset: Any = None
    collate_fn: Callable = collate_choices
    write_predictions: Optional[Callable[[Any, str, str], None]] = None
    prompt_token_ids: Optional[list] = None   # verbalizer ids for --prompt-init


class FinetuneError(ValueError):
    """A flag combination or file problem the user must fix (the message says how)."""


def log_directory(config):
    return os.path.join(config.logging.summary_dir or ".", "runs", config.logging.experiment_name)


def run_save_directory(config):
    """``--save``/<experiment-name>: where this run's checkpoints and ``best/`` go (None without --save)."""
    return os.path.join(config.checkpoint.save, config.logging.experiment_name) if config.checkpoint.save else None


def _holds_files(directory):
    """Whether ``directory`` holds anything but the run lock a finished or failed run leaves."""
    return directory is not None and os.path.isdir(directory) and any(
        entry.name != LOCK_NAME for entry in os.scandir(directory))


def check_outputs_free(config, results_file=None):
    """Refuse to start a run whose outputs would replace an earlier run's, before anything is
    written: the results folder (``<summary-dir>/runs/<experiment-name>``: metrics, predictions,
    hypotheses) or the checkpoint folder (``--save``/<experiment-name>: ``best/`` and checkpoints)
    already holding files.  ``--overwrite`` allows it, except when the weights this run reads lie in
    the folder it would write (they could be replaced mid-run).  Resuming with ``--load`` of the
    checkpoint folder itself continues that run and is allowed."""
    save = run_save_directory(config)
    sources = [p for p in (config.task.load_pretrained, config.checkpoint.load) if p]
    if save and any(path_relation(source, save) in ("is", "lies inside") for source in sources
                    if source != config.checkpoint.load):
        raise FinetuneError(f"--load-pretrained {config.task.load_pretrained} lies inside this run's checkpoint folder "
                            f"{save}, which the run writes: copy the weights elsewhere or choose another --save or "
                            "--experiment-name")
    resuming = bool(config.checkpoint.load and save and
                    os.path.realpath(config.checkpoint.load) == os.path.realpath(save))
    if config.task.overwrite:
        return
    occupied = []
    results = results_file or os.path.join(log_directory(config), "test_results.json")
    if os.path.exists(results) or (results_file is None and _holds_files(log_directory(config)) and not resuming):
        occupied.append(f"results folder {os.path.dirname(results)}")
    if _holds_files(save) and not resuming:
        occupied.append(f"checkpoint folder {save}")
    if occupied:
        verb = "hold" if len(occupied) > 1 else "holds"
        raise FinetuneError(f"the {' and the '.join(occupied)} already {verb} an earlier run's outputs; pass "
                            "--overwrite to replace them, or choose another --experiment-name (or --save / "
                            f"SAVE_PATH / --summary-dir)" + (f", or resume with --load {save}" if _holds_files(save)
                                                             and config.training.epochs else ""))


# -- weights ----------------------------------------------------------------------------------------

def _glm(model):
    """The ``GLMModel`` inside a head (or the model itself)."""
    return getattr(model, "model", model)


def load_pretrained(model, path, unsafe_unpickle=False):
    """Load pretrained GLM weights (``--load-pretrained``) into the task model.  Heads that wrap the
    GLM under ``model.`` get the weights of their inner model; the new parts (P-tuning prompt encoder,
    classification layers) keep their initialisation.  Anything else that does not match is an error."""
    return load_pretrained_weights(_glm(model), path, new_parts=("prompt_spell.",), unsafe_unpickle=unsafe_unpickle,
                                   log=_rank_0_print)


def _rank_0_print(message):
    if is_rank_0():
        print(message, flush=True)


def load_lora_weights(config, model):
    """After ``--load-pretrained``: put the LoRA adapters on ``model`` -- those of ``--load-adapter``
    (saved by another run), else fresh ones by the ``--lora-*`` flags -- and, when ``--load`` names a
    checkpoint without adapters (merged weights, a run without LoRA) for a LoRA model, load it as the
    base first.  Returns ``(merged_base, config)``: whether that happened (the run then starts afresh on
    those weights instead of resuming: nothing of its optimizer, schedule or position belongs to the
    adapters), and ``config`` with the ``--lora-*`` settings of loaded adapters filled in (the memory
    plan and a later adapter save describe them)."""
    load, unsafe = config.checkpoint.load, config.checkpoint.unsafe_unpickle
    lora = bool(config.adaptation.lora_rank or config.adaptation.load_adapter)
    merged_base = bool(load) and lora and not checkpoint_holds_adapters(load, unsafe_unpickle=unsafe)
    if merged_base:
        load_model_state(model, load, unsafe_unpickle=unsafe)
        _rank_0_print(f"--load {load} holds no LoRA adapters (merged weights): loaded as the base weights; the "
                      "adapters start fresh (B = 0, the model unchanged), and so do the optimizer, the schedule "
                      "and the iteration count")
    if config.adaptation.load_adapter:
        if not (config.task.load_pretrained or merged_base):
            raise FinetuneError("--load-adapter puts adapters on a base model: give the base with --load-pretrained")
        load_adapter(model, config.adaptation.load_adapter, settings_from_config(config),
                     config.adaptation.lora_dropout, unsafe, log=_rank_0_print)
        loaded = adapter_settings(model)
        config = config.updated(lora_rank=loaded["rank"], lora_alpha=loaded["alpha"],
                                lora_targets=",".join(loaded["targets"]))
    else:
        add_lora_from_config(model, config)
    return merged_base, config


def evaluation_precision(config, device):
    """Evaluation under the training precision: ``torch.autocast`` to bf16/fp16 on GPUs when the
    flags ask for it, and to bf16 on CPUs with bf16 instructions (elsewhere on CPU a no-op, where
    autocast would only slow fp32 models down)."""
    from glm.precision import native_bf16
    from glm.training.engines import autocast_dtype
    dtype = autocast_dtype(config)
    if dtype is None or (device.type != "cuda" and not (dtype == torch.bfloat16 and native_bf16(device))):
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def _trainable_state(model):
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


# -- data ----------------------------------------------------------------------------------------

def make_train_loader(config, task):
    """Shuffled micro-batches of ``--batch-size`` for this data-parallel rank (incomplete last batch
    dropped)."""
    sampler = DistributedSampler(task.train_dataset, num_replicas=mpu.get_data_parallel_world_size(),
                                 rank=mpu.get_data_parallel_rank(), shuffle=True, seed=0, drop_last=True)
    return DataLoader(task.train_dataset, batch_size=config.training.batch_size, sampler=sampler, drop_last=True,
                      collate_fn=task.collate_fn, num_workers=config.data.num_workers)


def memory_workload(model, dataset):
    """What one training sample of this task computes, for the memory plan (:class:`glm.memory.Workload`):
    a multiple-choice sample runs one sequence per choice; the multi-token cloze head projects only the
    answer tokens onto the vocabulary, the single-token one the ``sop`` position, a classification head
    nothing; the cloze heads gather the whole vocabulary on every tensor-parallel rank.  Read off the
    dataset's first and last samples (SuperGLUE datasets sort their examples by the number of choices,
    so the last has the most).  A generative task (seq2seq, language modelling) and the fast multi-token
    head (an encoder pass plus short decoder passes) keep the pretraining defaults."""
    from glm.memory import PRETRAINING, Workload
    from glm.model import GLMForMultiTokenCloze, GLMForSequenceClassification, GLMForSingleTokenCloze

    if not isinstance(model, (GLMForMultiTokenCloze, GLMForSingleTokenCloze, GLMForSequenceClassification)) \
            or len(dataset) == 0:
        return PRETRAINING
    samples = [dataset[0], dataset[len(dataset) - 1]]
    shapes = [tuple(torch.as_tensor(sample["text"]).shape) for sample in samples]
    sequences = max(math.prod(shape[:-1]) for shape in shapes)
    length = shapes[0][-1]
    if isinstance(model, GLMForSequenceClassification):
        return Workload(sequences_per_sample=sequences, projected_fraction=0.0)
    if isinstance(model, GLMForSingleTokenCloze):
        return Workload(sequences_per_sample=sequences, projected_fraction=1 / length, whole_vocabulary=True)
    answer = max(float((torch.as_tensor(sample["logit_mask"]) != 0).float().mean()) for sample in samples)
    return Workload(sequences_per_sample=sequences, projected_fraction=answer, whole_vocabulary=True)


def make_eval_loader(config, dataset, collate_fn):
    sampler = DistributedSampler(dataset, num_replicas=mpu.get_data_parallel_world_size(),
                                 rank=mpu.get_data_parallel_rank(), shuffle=False)
    return DataLoader(dataset,
                      batch_size=config.evaluation.eval_batch_size or config.training.batch_size,
                      sampler=sampler,
                      collate_fn=collate_fn,
                      num_workers=config.data.num_workers)


# -- the run --------------------------------------------------------------------------------------

def _write_json(path, payload):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(payload, f, indent=1, sort_keys=True)


def _metric_for_selection(config, task):
    metric = config.task.validation_metric or task.metric_names[0]
    if metric not in task.metric_names:
        raise FinetuneError(f"--validation-metric {metric!r} is not reported by task {task.name}; "
                            f"choose one of {', '.join(task.metric_names)}")
    return metric


class _Trainer:
    """The epoch loop over the training core; holds the best model seen so far.  ``save_dir`` is the
    run's checkpoint folder (``--save``/<experiment-name>, resolved by :func:`finetune`; None without
    ``--save``)."""

    def __init__(self, config, task, model, device, save_dir, stop_request):
        from glm.learning_rates import get_learning_rate_scheduler
        from glm.training.core import LoopSettings, TrainingCore
        from glm.training.engines import build_engine
        from glm.training.metrics import make_summary_writer, run_logger
        from glm.training.model_setup import build_optimizer

        self.config, self.task, self.device, self.save_dir = config, task, device, save_dir
        self.loader = make_train_loader(config, task)
        if len(self.loader) == 0:
            raise FinetuneError(
                f"the training set of {task.name} ({len(task.train_dataset)} samples) gives no "
                f"batch of --batch-size {config.training.batch_size} per data-parallel rank; lower --batch-size")
        self.iters_per_epoch = len(self.loader)
        # As the original: iterations count micro-batches; the scheduler divides by accumulation.
        train_iters = config.training.epochs * self.iters_per_epoch
        self.engine = build_engine(config, model, lambda m: build_optimizer(config, m),
                                   lambda opt: get_learning_rate_scheduler(opt, config, train_iters=train_iters),
                                   device)
        self.valid_loader = (make_eval_loader(config, task.valid_dataset, task.collate_fn)
                             if task.valid_dataset is not None and config.evaluation.eval_interval else None)
        self.writer = make_summary_writer(config.logging.tensorboard, config.logging.summary_dir, config.logging.experiment_name) \
            if is_rank_0() else None
        logger = run_logger(config, _glm(self.engine.module).config, device, self.writer, train_iters=train_iters,
                            workload=memory_workload(model, task.train_dataset),
                            log_dir=save_dir)
        # Checkpoints are saved at epoch ends (--save-epoch), not every --save-interval steps; the core
        # saves mid-epoch only where a stop request ends the run.
        settings = LoopSettings.from_config(config, train_iters=train_iters, count_micro_batches=True, save_interval=0)
        self.epoch = None   # the epoch run() is in
        self.core = TrainingCore(self.engine, task.forward_step, device, settings, logger,
                                 validate=self.validation_loss if self.valid_loader is not None else None,
                                 save=(lambda iteration: self.save(iteration, self.epoch)) if save_dir else None,
                                 stop_request=stop_request, writer=self.writer)
        self.best_score, self.best_state, self.best_epoch = None, None, None
        self.pending_rng = None  # the ResumeState whose RNG streams run() restores
        self.metric = _metric_for_selection(config, task)

    def validation_loss(self):
        """The loss of the first ``--eval-iters`` batches of the dev split (no perplexity: not every
        task's loss is a language-model loss)."""
        from glm.training.core import evaluate_loss
        batches = (batch_to_device(batch, self.device) for batch in self.valid_loader)
        return evaluate_loss(self.engine,
                             batches,
                             self.task.forward_step,
                             self.config.evaluation.eval_iters,
                             self.device,
                             perplexity=False)

    def resume(self):
        """``--load`` of an earlier finetuning run: weights, optimizer, schedule, RNG and position."""
        from glm.training.checkpointing import load_training_checkpoint
        # --finetune would load the weights only.
        state = load_training_checkpoint(self.config.updated(finetune=False), self.engine)
        # The RNG streams are restored by run(), at the point where the saved run stood: a checkpoint
        # saved mid-epoch was taken after that epoch's loader iterator drew its seed.
        self.pending_rng = state
        self.best_score = state.data_state.get("best_score")
        return state.iteration

    def save(self, iteration, epoch):
        from glm.training.checkpointing import save_training_checkpoint
        save_training_checkpoint(self.save_dir,
                                 iteration,
                                 self.engine,
                                 data_state={"epoch": epoch, "best_score": self.best_score},
                                 save_rng=not self.config.checkpoint.no_save_rng,
                                 save_optimizer=not self.config.checkpoint.no_save_optim)

    def save_best(self, iteration, epoch):
        """The tag ``best`` (weights only; a LoRA run's merged into the original layout or the adapter
        alone, --lora-save), written by ``glm.checkpoint``."""
        with self.engine.whole_parameters():  # collective under ZeRO-3
            if mpu.get_data_parallel_rank() == 0:
                module = state_dict_to_save(self.engine.module, self.config.adaptation.lora_save)
                # An adapter alone says how to rebuild it (--load-adapter reads this).
                settings = adapter_settings(self.engine.module) if self.config.adaptation.lora_save == "adapter" else None
                save_best_model(self.save_dir, module, iteration, epoch, mp_rank=mpu.get_model_parallel_rank(),
                                extra={SETTINGS_KEY: settings} if settings else None)
        barrier()
        if is_rank_0():
            update_best_tracker(self.save_dir, iteration)

    def end_of_epoch(self, iteration, epoch):
        with evaluation_precision(self.config, self.device):
            metrics, _ = self.task.evaluate(self.engine.module, "dev")
        if metrics is None:
            return
        if is_rank_0():
            print(f"epoch {epoch} dev: " + " | ".join(f"{k} {v:.4f}" for k, v in metrics.items()), flush=True)
            if self.writer is not None:
                for key, value in metrics.items():
                    self.writer.add_scalar(f"Train/dev_{key}", value, iteration)
        score = metrics[self.metric]
        if self.best_score is None or score > self.best_score:
            self.best_score, self.best_epoch = score, epoch
            if self.save_dir:
                self.save_best(iteration, epoch)
            else:
                with self.engine.whole_parameters():
                    self.best_state = _trainable_state(self.engine.module)
            if is_rank_0():
                _write_json(os.path.join(log_directory(self.config), "results.json"),
                            {"epoch": epoch, "iteration": iteration, "metric": self.metric, **metrics})
                print(f"new best dev {self.metric} {score:.4f} at epoch {epoch}", flush=True)

    def run(self, start_iteration=0):
        from glm.training.interrupt import RunInterrupted
        config, core = self.config, self.core
        accumulation = config.training.gradient_accumulation_steps
        if self.iters_per_epoch % accumulation and is_rank_0():
            print(f"note: {self.iters_per_epoch % accumulation} micro-batch(es) per epoch do not fill a "
                  f"gradient-accumulation group of {accumulation} and are skipped", flush=True)
        core.iteration = start_iteration
        first_epoch = start_iteration // self.iters_per_epoch
        self.engine.train()
        for epoch in range(first_epoch, config.training.epochs):
            self.epoch = epoch
            self.loader.sampler.set_epoch(config.training.seed + epoch)
            done_in_epoch = core.iteration - epoch * self.iters_per_epoch
            if not done_in_epoch:
                self.resume_rng()            # saved at an epoch's end: before this epoch's loader draws
            batches = iter(self.loader)
            for _ in range(done_in_epoch):   # resuming mid-epoch: the same order, skip what was trained
                next(batches)
            self.resume_rng()                # saved mid-epoch: after the loader drew its seed
            steps = (self.iters_per_epoch - done_in_epoch) // accumulation
            step_batches = ([batch_to_device(next(batches), self.device) for _ in range(accumulation)]
                            for _ in range(steps))
            if core.run(step_batches):   # a stop request: the core saved the step it stopped after
                raise RunInterrupted(core.stop_request.message(core.iteration, self.save_dir, f" (epoch {epoch})"),
                                     core.stop_request.exit_code)
            core.iteration = (epoch + 1) * self.iters_per_epoch   # past the micro-batches left over
            if not config.task.no_validation and (epoch + 1) % config.evaluation.eval_epoch == 0:
                self.end_of_epoch(core.iteration, epoch)
            if self.save_dir and config.checkpoint.save_epoch and (epoch + 1) % config.checkpoint.save_epoch == 0:
                self.save(core.iteration, epoch)
        return core.iteration

    def resume_rng(self):
        """Restore the resumed checkpoint's RNG streams, once, where :meth:`run` says the saved run stood."""
        if self.pending_rng is not None:
            self.pending_rng.restore_rng()
            self.pending_rng = None

    def restore_best(self):
        """Put the best weights back into the model before the final evaluation."""
        has_best = self.save_dir and os.path.isdir(os.path.join(self.save_dir, BEST_TAG))
        # Every rank reads the same weights; under ZeRO-3 data-parallel rank 0's become the partitions.
        with self.engine.whole_parameters(modify=True):
            self._load_best(has_best)

    def _load_best(self, has_best):
        if self.best_state is not None:
            self.engine.module.load_state_dict(self.best_state)
        elif self.best_epoch is not None or has_best:
            if has_lora(self.engine.module):
                path = resolve_checkpoint(self.save_dir, tag=BEST_TAG).model_file(mpu.get_model_parallel_rank())
                load_saved_weights(self.engine.module, read_model_state_dict(load_checkpoint_file(path)))
            else:
                load_model_state(self.engine.module, self.save_dir, tag=BEST_TAG)


def final_evaluation(config, task, model, device):
    """Evaluate the test split (and dev with ``--eval-valid``), write predictions and
    ``test_results.json``; returns ``{split: metrics}``."""
    results = {}
    splits = ["test"] + (["dev"] if config.task.eval_valid else [])
    for split in splits:
        with evaluation_precision(config, device):
            metrics, predictions = task.evaluate(model, split)
        if metrics is None:
            continue
        results[split] = metrics
        if is_rank_0():
            scores = " | ".join(f"{k} {v:.4f}" for k, v in metrics.items()) or "no labels, predictions only"
            print(f"final {split}: {scores}", flush=True)
            if task.write_predictions is not None:
                task.write_predictions(predictions, split, log_directory(config))
    if not results and is_rank_0():
        print(f"note: no test data for {task.name} (and no --eval-valid): nothing evaluated at the end", flush=True)
    if is_rank_0():
        _write_json(os.path.join(log_directory(config), "test_results.json"), {"task": task.name, **results})
    return results


def finetune(config, task, device):
    """Train (``--epochs`` > 0) and evaluate ``task``; returns the final ``{split: metrics}``."""
    start = time.time()
    if not config.training.epochs and not (config.task.load_pretrained or config.checkpoint.load):
        # Nothing to train and nothing to load: the score would be that of random weights.
        raise FinetuneError("--epochs 0 only evaluates, and no weights were given: pass --load-pretrained "
                            "CHECKPOINT_DIR (or --load a finetuning run's folder) to evaluate a trained model")
    save_dir, lock = None, None
    if config.checkpoint.save:
        # The run's folder (--save/<experiment-name>), locked for its life (a second run on it is refused;
        # a killed one leaves no lock) and cleared of what an interrupted save left.
        save_dir, lock = prepare_run_directory(config.checkpoint.save, config.logging.experiment_name, resume_into=True,
                                               log=print if is_rank_0() else (lambda *a: None))
    try:
        return _finetune(config, task, device, start, save_dir)
    finally:
        if lock is not None:
            lock.release()


def _finetune(config, task, device, start, save_dir):
    from glm.training.interrupt import StopRequest
    model = task.build_model(config, device)
    if config.task.load_pretrained:
        # The backbone was built on the meta device (build_task_model): the checkpoint fills it.
        load_pretrained(model, config.task.load_pretrained, config.checkpoint.unsafe_unpickle)
    # LoRA adapters go on the loaded weights (their A is drawn here, B starts at zero), or come from a file.
    merged_base, config = load_lora_weights(config, model)
    resume = bool(config.checkpoint.load) and not merged_base
    model = model.to(device)
    prompt = config.adaptation.continuous_prompt and config.adaptation.prompt_init
    if prompt and getattr(_glm(model), "prompt_spell", None) is not None:
        _glm(model).prompt_spell.init_embedding(_glm(model).word_embeddings, task.prompt_token_ids)
    if not config.training.epochs:
        if resume:
            load_model_state(model, config.checkpoint.load, unsafe_unpickle=config.checkpoint.unsafe_unpickle)
        model.eval()
        return final_evaluation(config, task, model, device)
    if task.train_dataset is None:
        raise FinetuneError(f"task {task.name} has no training data; pass --epochs 0 to evaluate only")
    stop = StopRequest(announce=is_rank_0())
    trainer = _Trainer(config, task, model, device, save_dir, stop)
    start_iteration = trainer.resume() if resume else 0
    if is_rank_0():
        print(
            f"finetuning {task.name}: {len(task.train_dataset)} training samples, {trainer.iters_per_epoch} "
            f"micro-batches per epoch per data-parallel rank, {config.training.epochs} epochs, engine {trainer.engine.name}",
            flush=True)
    stop.install()
    try:
        trainer.run(start_iteration)
    finally:
        stop.restore()
    trainer.restore_best()
    trainer.engine.eval()
    results = final_evaluation(config, task, trainer.engine.module, device)
    if is_rank_0():
        print(f"finetuning done in {time.time() - start:.0f} s", flush=True)
    return results
