"""Pretrain GLM with the blank-infilling objective.

    python pretrain_glm.py --block-lm --train-data kjv --num-layers 2 ...      # one process, CPU or GPU
    torchrun --nproc-per-node 8 pretrain_glm.py ...                            # data / tensor parallel
    deepspeed pretrain_glm.py --deepspeed --deepspeed_config config/x.json ... # DeepSpeed engine

Every original flag works (docs/flags.md); docs/training.md describes the run, its outputs and resume.

This entry point owns the pretraining run's setup (devices, data, model, engine, resume checks), the
run's folder (:func:`resolve_run_folder`, decided once and passed on as :class:`RunFolder`, never
written back into the flags) and the exit codes; the steps run in the training core
(:mod:`glm.training.core`, fed by :mod:`glm.training.pretraining`).
"""

import copy
import dataclasses
import functools
import logging
import os
import sys
from typing import Any, Optional

import torch

from glm import mpu
from glm.arguments import get_args
from glm.config import build_config, format_config_summary, format_resolved_config, save_resolved_config
from glm.learning_rates import get_learning_rate_scheduler
from glm.checkpoint import CheckpointError, resolve_checkpoint
from glm.training.checkpointing import ResumeState, load_training_checkpoint, save_training_checkpoint
from glm.training.interrupt import StopRequest, resume_note
from glm.training.distributed import barrier, initialize_distributed, is_rank_0
from glm.training.engines import build_engine
from glm.training.core import LoopSettings, TrainingDiverged, format_eval
from glm.training.losses import language_model_loss
from glm.training.pretraining import count_multi_task_iterations, cycle, evaluate_with_multi_task, train
from glm.training.metrics import make_summary_writer, run_logger
from glm.training.model_setup import build_model, build_optimizer
from glm.training.run_directory import prepare_run_directory
from glm.training.seed import set_random_seed

logger = logging.getLogger("pretrain_glm")


def _user_errors():
    from data_utils.corpora import CorpusError
    from glm.checkpoint import CheckpointError
    return (CorpusError, CheckpointError, FileNotFoundError, ValueError)  # RunDirectoryError is a ValueError


USER_ERRORS = _user_errors()


@dataclasses.dataclass(frozen=True)
class RunFolder:
    """Where this run writes, decided once by :func:`resolve_run_folder`: the checkpoint folder
    (``None`` without ``--save``), the experiment name (TensorBoard's folder) and the folder's lock
    (``None`` without ``--save`` and on ranks other than 0)."""
    save_dir: Optional[str]
    experiment_name: str
    lock: Any = None


def resolve_run_folder(config):
    """The original's naming: ``--experiment-name`` plus a timestamp (to the second, with ``-2``...
    when two runs start in the same second), or the name of the ``--load`` directory when resuming
    into it (unless ``--new-save-directory``).  The folder is created, locked for this run and given
    the resolved ``config.json``; returns a :class:`RunFolder`."""
    resume_into = bool(config.checkpoint.load) and not config.checkpoint.new_save_directory
    name = os.path.basename(os.path.normpath(config.checkpoint.load)) if resume_into else config.logging.experiment_name
    if not config.checkpoint.save:
        return RunFolder(None, name)

    def write_config(path):
        save_resolved_config(config.updated(save=path, experiment_name=name), os.path.join(path, "config.json"))

    log = print if is_rank_0() else (lambda *a: None)
    path, lock = prepare_run_directory(config.checkpoint.save, name, resume_into, log, write_config)
    return RunFolder(path, os.path.basename(path), lock)


def check_resume(config, engine, resume, flags_schedule):
    """What a resumed run would do silently otherwise: train nothing, save nothing, continue a
    finetuning run as pretraining, or keep a schedule the flags no longer describe."""
    if resume.data_state.get("epoch") is not None:
        raise ValueError(
            f"{config.checkpoint.load} was written by finetuning (epoch {resume.data_state['epoch']}); pretraining "
            "cannot resume from it. To start pretraining from its weights, add --finetune (weights only, "
            "iteration 0)")
    if resume.iteration >= config.training.train_iters:
        raise ValueError(
            f"the checkpoint in {config.checkpoint.load} is at iteration {resume.iteration} and --train-iters is "
            f"{config.training.train_iters}: nothing is left to train. Raise --train-iters to continue training")
    if not is_rank_0():
        return
    if not config.checkpoint.save:
        print(f"note: no --save: this resumed run saves nothing. To keep its checkpoints in the same folder pass "
              f"--save {os.path.dirname(os.path.normpath(config.checkpoint.load)) or '.'}", flush=True)
    scheduler = engine.lr_scheduler
    if scheduler is not None and flags_schedule is not None and \
            (scheduler.end_iter, scheduler.warmup_iter) != (flags_schedule.end_iter, flags_schedule.warmup_iter):
        print(f"note: the checkpoint's LR schedule (warmup {scheduler.warmup_iter:g} + decay {scheduler.end_iter:g} "
              f"iterations) differs from the flags' (warmup {flags_schedule.warmup_iter:g} + decay "
              f"{flags_schedule.end_iter:g}, from --train-iters/--lr-decay-iters/--warmup); the checkpoint's is kept. "
              "Pass --no-load-lr-scheduler to start the flags' schedule, or --switch-linear to decay linearly over "
              "the remaining iterations", flush=True)


def check_global_batch(config):
    """With DeepSpeed, a ``train_batch_size`` in the JSON must equal micro batch x accumulation x
    data-parallel ranks; say so before DeepSpeed fails deep inside its engine."""
    deepspeed_json = config.parallel.deepspeed_config_dict or {}
    if not config.parallel.deepspeed or "train_batch_size" not in deepspeed_json:
        return
    dp = mpu.get_data_parallel_world_size()
    expected = config.training.batch_size * config.training.gradient_accumulation_steps * dp
    if deepspeed_json["train_batch_size"] != expected:
        raise SystemExit(
            f"{config.parallel.deepspeed_config}: train_batch_size {deepspeed_json['train_batch_size']} is not micro "
            f"batch {config.training.batch_size} x gradient accumulation {config.training.gradient_accumulation_steps} "
            f"x data-parallel size "
            f"{dp} = {expected}; fix one of them (or drop train_batch_size from the JSON)")


def check_multi_task_flags(config):
    """Multi-task pretraining (``--multi-task-data``, spec 7.5): the tasks and their directories, or
    ``None`` when no task is named.  Checked on every rank, so bad names or directories stop all ranks
    alike (only model-parallel rank 0 reads the files)."""
    ratio = config.data.multi_task_ratio
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"--multi-task-ratio must lie in [0, 1], got {ratio}")
    if not config.data.multi_task_data:
        if ratio > 0:
            raise ValueError("--multi-task-ratio needs --multi-task-data (the tasks to draw batches from)")
        return None
    # Imported only here: plain pretraining never loads the task packages.
    from tasks.superglue.multitask import resolve_multi_tasks
    tasks = resolve_multi_tasks(config.data.multi_task_data, config.data.data_dir)
    if ratio == 0 and is_rank_0():
        print("note: --multi-task-data without --multi-task-ratio: the tasks are evaluated (Multi loss), "
              "not trained on", flush=True)
    return tasks


def build_loaders(config, tokenizer, start, multi_tasks):
    """``(train, valid, test, multi-task train, multi-task valid)`` loaders of this rank (``None`` where
    absent), resumed at optimizer iteration ``start``.  With multi-task data each loader restarts
    after the batches this rank drew from it before ``start`` (the choices are replayed)."""
    from data_utils.configure_data import make_pretrain_loaders

    ratio = config.data.multi_task_ratio if multi_tasks else 0.0
    multi_start = count_multi_task_iterations(start, ratio, mpu.get_data_parallel_rank(),
                                              mpu.get_data_parallel_world_size())
    loaders = make_pretrain_loaders(config, tokenizer, start_iter=start - multi_start)
    if not multi_tasks:
        return (*loaders, None, None)
    from tasks.superglue.multitask import build_multi_task_loaders
    return (*loaders, *build_multi_task_loaders(config, tokenizer, multi_tasks, start_iter=multi_start,
                                                train=ratio > 0))


def setup(config):
    """Everything before the first step: devices, seeds, tokenizer, data, model, engine, resume."""
    from data_utils.tokenizers import configure_tokenizer

    device, config = initialize_distributed(config)
    set_random_seed(config.training.seed)
    tokenizer, config = configure_tokenizer(config)
    if not config.objective.block_lm:
        raise SystemExit("pretrain_glm.py trains the blank-infilling objective: pass --block-lm")
    if config.training.train_iters <= 0:
        raise SystemExit("--train-iters must be positive")

    check_global_batch(config)
    multi_tasks = check_multi_task_flags(config)
    model = build_model(config, device)
    engine = build_engine(config, model, lambda m: build_optimizer(config, m),
                          lambda opt: get_learning_rate_scheduler(opt, config), device)
    resume = ResumeState()
    if config.checkpoint.load:
        flags_schedule = copy.copy(engine.lr_scheduler) if engine.lr_scheduler is not None else None
        resume = load_training_checkpoint(config, engine)
        # Before --save is resolved: config.checkpoint.save is still the root folder.
        check_resume(config, engine, resume, flags_schedule)
        if is_rank_0():
            print(
                f"resumed from {resolve_checkpoint(config.checkpoint.load).tag_dir} at iteration {resume.iteration}",
                flush=True)
    iteration = resume.iteration
    if config.training.switch_linear and engine.lr_scheduler is not None:
        engine.lr_scheduler.switch_linear(config)

    start = iteration if config.checkpoint.resume_dataloader else 0  # counted in optimizer iterations
    if iteration and not config.checkpoint.resume_dataloader and is_rank_0():
        print("note: resuming without --resume-dataloader restarts the data order from its beginning", flush=True)
    # Only model-parallel rank 0 reads data; the others receive batches by broadcast.
    loaders = (None,) * 5
    if mpu.get_model_parallel_rank() == 0:
        loaders = build_loaders(config, tokenizer, start, multi_tasks)
    present = [loader is not None for loader in loaders]
    if mpu.get_model_parallel_world_size() > 1:
        torch.distributed.broadcast_object_list(present, src=mpu.get_model_parallel_src_rank(),
                                                group=mpu.get_model_parallel_group())
    if not present[0]:
        raise ValueError("no training data: check --train-data and --split")
    # Last, so that bad flags, data or checkpoints leave nothing behind under --save.
    folder = resolve_run_folder(config)
    return config, device, tokenizer, engine, resume, loaders, present, folder


def main(argv=None):
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = build_config(get_args(argv))
    try:
        config, device, tokenizer, engine, resume, loaders, present, folder = setup(config)
    except USER_ERRORS as err:
        # Bad flags, data, vocabularies or checkpoints: one clear line, no traceback, nothing written.
        print(f"error: {err}", file=sys.stderr, flush=True)
        return 2
    try:
        return run(config, folder, device, engine, resume, loaders, present)
    finally:
        if folder.lock is not None:
            folder.lock.release()


def run(config, folder, device, engine, resume, loaders, present):
    """Train, save and evaluate after :func:`setup` in the run's ``folder``; returns the exit code."""
    train_loader, valid_loader, test_loader, multi_train_loader, multi_valid_loader = loaders
    _, has_valid, has_test, has_multi_train, has_multi_valid = present
    if is_rank_0():
        # The ~190-line dump hid the start of every run: the terminal gets a summary, config.json (and the
        # debug log) every value; --print-config prints them all here as before.
        resolved = config.updated(save=folder.save_dir or config.checkpoint.save,
                                  experiment_name=folder.experiment_name)
        logger.debug("%s", format_resolved_config(resolved))
        print(format_resolved_config(resolved) if config.logging.print_config else format_config_summary(resolved),
              flush=True)
        print(f"model: {engine.module.num_parameters():,} parameters; engine: {engine.name}; device: {device}",
              flush=True)

    writer = make_summary_writer(config.logging.tensorboard, config.logging.summary_dir,
                                 folder.experiment_name) if is_rank_0() else None
    train_logger = run_logger(config, engine.module.config, device, writer, train_iters=config.training.train_iters,
                              log_dir=folder.save_dir)
    if is_rank_0():
        print(f"MFU is reported against the {train_logger.peak_label}", flush=True)
    forward = functools.partial(language_model_loss, label_smoothing=config.training.label_smoothing)

    # Ranks other than model-parallel rank 0 hold no loaders: get_batch ignores their iterators.
    def endless(loader):
        return cycle(loader) if loader is not None else iter(())

    train_iterator = iter(train_loader) if train_loader is not None else iter(())
    valid_iterator = endless(valid_loader) if has_valid else None
    multi_iterator = iter(multi_train_loader) if multi_train_loader is not None else iter(())
    multi_valid_iterator = endless(multi_valid_loader) if has_multi_valid else None
    resume.restore_rng()  # last, so the streams continue exactly where the checkpoint left them
    iteration = resume.iteration

    def save(iteration):
        save_training_checkpoint(folder.save_dir, iteration, engine, save_rng=not config.checkpoint.no_save_rng,
                                 save_optimizer=not config.checkpoint.no_save_optim)

    save_fn = save if folder.save_dir else None

    stop = StopRequest(announce=is_rank_0()).install()
    try:
        iteration, stopped = train(LoopSettings.from_config(config), engine, train_iterator, forward, iteration, device,
                                   train_logger, valid_iterator=valid_iterator, save_fn=save_fn, writer=writer,
                                   multi_task_iterator=multi_iterator if has_multi_train else None,
                                   multi_task_ratio=config.data.multi_task_ratio,
                                   multi_task_valid_iterator=multi_valid_iterator, stop_request=stop)
        saved_now = config.checkpoint.save_interval and iteration % config.checkpoint.save_interval == 0
        # The core saved a run it stopped; a signal that came after its last check still counts here.
        interrupted_without_save = stop.signum and config.checkpoint.no_save_on_interrupt
        if save_fn is not None and not saved_now and not stopped and not interrupted_without_save:
            save_fn(iteration)
    except TrainingDiverged as err:
        if is_rank_0():
            print(f"error: {err}", file=sys.stderr, flush=True)
        return 3
    except CheckpointError as err:  # a save failed: disk full, permissions...
        if is_rank_0():
            print(f"error: {err}", file=sys.stderr, flush=True)
        return 2
    except KeyboardInterrupt:  # a second Ctrl-C: stop at once, without saving
        if is_rank_0():
            print(f"\nstopped at once by a second Ctrl-C; {resume_note(folder.save_dir)}", file=sys.stderr, flush=True)
        return 130
    finally:
        stop.restore()
    if stop.signum:
        if is_rank_0():
            print(stop.message(iteration, folder.save_dir), file=sys.stderr, flush=True)
        return stop.exit_code
    final = (("validation", endless(valid_loader) if has_valid else None,
              endless(multi_valid_loader) if has_multi_valid else None),
             ("test", endless(test_loader) if has_test else None, None))
    if has_valid and config.evaluation.eval_interval and iteration >= config.evaluation.eval_interval and is_rank_0():
        # Both lines at the last iteration use --eval-iters batches, but not the same ones.
        print(
            f"note: each 'validation at iteration N' line reads the next {config.evaluation.eval_iters} batches of the "
            f"validation set (it cycles); 'final validation' reads its first {config.evaluation.eval_iters}: at the same "
            "iteration their losses differ",
            flush=True)
    for name, iterator, multi in final:
        if iterator is not None or multi is not None:
            results = evaluate_with_multi_task(engine, iterator, multi, config.evaluation.eval_iters, forward, device)
            if is_rank_0():
                print(format_eval(f"final {name}", iteration, results), flush=True)
    barrier()
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    # DeepSpeed ZeRO-3 can abort at interpreter exit after a clean run (spec/environment.md); leave
    # without running its teardown.
    os._exit(code)
