"""Pretrain GLM with the blank-infilling objective.

    python pretrain_glm.py --block-lm --train-data kjv --num-layers 2 ...      # one process, CPU or GPU
    torchrun --nproc-per-node 8 pretrain_glm.py ...                            # data / tensor parallel
    deepspeed pretrain_glm.py --deepspeed --deepspeed_config config/x.json ... # DeepSpeed engine

Every original flag works (docs/flags.md); docs/training.md describes the run, its outputs and resume.
"""

import datetime
import json
import logging
import os
import sys

import torch

from glm import mpu
from glm.arguments import format_config_summary, format_resolved_config, get_args, save_resolved_config
from glm.learning_rates import get_learning_rate_scheduler
from glm.training.checkpointing import ResumeState, load_training_checkpoint, save_training_checkpoint
from glm.training.distributed import barrier, initialize_distributed, is_rank_0
from glm.training.engines import build_engine, autocast_dtype
from glm.training.loop import (TrainingDiverged, count_multi_task_iterations, cycle, evaluate_with_multi_task,
                               format_eval, pretrain_forward, train)
from glm.training.metrics import TrainingLogger, device_peak_flops, make_summary_writer
from glm.training.model_setup import build_model, build_optimizer
from glm.training.seed import set_random_seed

logger = logging.getLogger("pretrain_glm")


def _user_errors():
    from data_utils.corpora import CorpusError
    from glm.checkpoint import CheckpointError
    return (CorpusError, CheckpointError, FileNotFoundError, ValueError)


USER_ERRORS = _user_errors()


def resolve_save_directory(args):
    """The original's naming: ``--experiment-name`` plus a timestamp, or the name of the ``--load``
    directory when resuming into it (unless ``--new-save-directory``)."""
    if args.load and not args.new_save_directory:
        args.experiment_name = os.path.basename(os.path.normpath(args.load))
    elif not getattr(args, "_experiment_name_resolved", False):
        args.experiment_name = args.experiment_name + datetime.datetime.now().strftime("-%m-%d-%H-%M")
    args._experiment_name_resolved = True
    if args.save:
        args.save = os.path.join(args.save, args.experiment_name)


def check_global_batch(args):
    """With DeepSpeed, a ``train_batch_size`` in the JSON must equal micro batch x accumulation x
    data-parallel ranks; say so before DeepSpeed fails deep inside its engine."""
    config = getattr(args, "deepspeed_config_dict", None) or {}
    if not args.deepspeed or "train_batch_size" not in config:
        return
    dp = mpu.get_data_parallel_world_size()
    expected = args.batch_size * args.gradient_accumulation_steps * dp
    if config["train_batch_size"] != expected:
        raise SystemExit(
            f"{args.deepspeed_config}: train_batch_size {config['train_batch_size']} is not micro batch "
            f"{args.batch_size} x gradient accumulation {args.gradient_accumulation_steps} x data-parallel size "
            f"{dp} = {expected}; fix one of them (or drop train_batch_size from the JSON)")


def check_multi_task_flags(args):
    """Multi-task pretraining (``--multi-task-data``, spec 7.5): the tasks and their directories, or
    ``None`` when no task is named.  Checked on every rank, so bad names or directories stop all ranks
    alike (only model-parallel rank 0 reads the files)."""
    ratio = args.multi_task_ratio
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"--multi-task-ratio must lie in [0, 1], got {ratio}")
    if not args.multi_task_data:
        if ratio > 0:
            raise ValueError("--multi-task-ratio needs --multi-task-data (the tasks to draw batches from)")
        return None
    # Imported only here: plain pretraining never loads the task packages.
    from tasks.superglue.multitask import resolve_multi_tasks
    tasks = resolve_multi_tasks(args.multi_task_data, args.data_dir)
    if ratio == 0 and is_rank_0():
        print("note: --multi-task-data without --multi-task-ratio: the tasks are evaluated (Multi loss), "
              "not trained on", flush=True)
    return tasks


def build_loaders(args, tokenizer, start, multi_tasks):
    """``(train, valid, test, multi-task train, multi-task valid)`` loaders of this rank (``None`` where
    absent), resumed at optimizer iteration ``start``.  With multi-task data each loader restarts
    after the batches this rank drew from it before ``start`` (the choices are replayed)."""
    from data_utils.configure_data import make_pretrain_loaders

    ratio = args.multi_task_ratio if multi_tasks else 0.0
    multi_start = count_multi_task_iterations(start, ratio, mpu.get_data_parallel_rank(),
                                              mpu.get_data_parallel_world_size())
    loaders = make_pretrain_loaders(args, tokenizer, start_iter=start - multi_start)
    if not multi_tasks:
        return (*loaders, None, None)
    from tasks.superglue.multitask import build_multi_task_loaders
    return (*loaders, *build_multi_task_loaders(args, tokenizer, multi_tasks, start_iter=multi_start,
                                                train=ratio > 0))


def setup(args):
    """Everything before the first step: devices, seeds, tokenizer, data, model, engine, resume."""
    from data_utils import prepare_tokenizer

    if not args.transformer_xl:
        args.mem_length = 0
    device = initialize_distributed(args)
    resolve_save_directory(args)
    set_random_seed(args.seed)
    tokenizer = prepare_tokenizer(args)
    if not args.block_lm:
        raise SystemExit("pretrain_glm.py trains the blank-infilling objective: pass --block-lm")
    if args.train_iters <= 0:
        raise SystemExit("--train-iters must be positive")

    check_global_batch(args)
    multi_tasks = check_multi_task_flags(args)
    model = build_model(args, device)
    engine = build_engine(args, model, lambda m: build_optimizer(args, m),
                          lambda opt: get_learning_rate_scheduler(opt, args), device)
    resume = ResumeState()
    if args.load:
        resume = load_training_checkpoint(args, engine)
        if is_rank_0():
            print(f"resumed from {args.load} at iteration {resume.iteration}", flush=True)
    iteration = resume.iteration
    if args.switch_linear and engine.lr_scheduler is not None:
        engine.lr_scheduler.switch_linear(args)

    start = iteration if args.resume_dataloader else 0  # counted in optimizer iterations
    if iteration and not args.resume_dataloader and is_rank_0():
        print("note: resuming without --resume-dataloader restarts the data order from its beginning", flush=True)
    # Only model-parallel rank 0 reads data; the others receive batches by broadcast.
    loaders = (None,) * 5
    if mpu.get_model_parallel_rank() == 0:
        loaders = build_loaders(args, tokenizer, start, multi_tasks)
    present = [loader is not None for loader in loaders]
    if mpu.get_model_parallel_world_size() > 1:
        torch.distributed.broadcast_object_list(present, src=mpu.get_model_parallel_src_rank(),
                                                group=mpu.get_model_parallel_group())
    return device, tokenizer, engine, resume, loaders, present


def main(argv=None):
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = get_args(argv)
    try:
        device, tokenizer, engine, resume, loaders, present = setup(args)
    except USER_ERRORS as err:
        # Bad flags, data, vocabularies or checkpoints: one clear line, no traceback, nothing written.
        print(f"error: {err}", file=sys.stderr, flush=True)
        return 2
    train_loader, valid_loader, test_loader, multi_train_loader, multi_valid_loader = loaders
    has_train, has_valid, has_test, has_multi_train, has_multi_valid = present
    if not has_train:
        raise SystemExit("no training data: check --train-data and --split")
    if is_rank_0():
        # The ~190-line dump hid the start of every run: the terminal gets a summary, config.json (and the
        # debug log) every value; --print-config prints them all here as before.
        logger.debug("%s", format_resolved_config(args))
        print(format_resolved_config(args) if args.print_config else format_config_summary(args), flush=True)
        print(f"model: {engine.module.num_parameters():,} parameters; engine: {engine.name}; device: {device}",
              flush=True)
        if args.save:
            os.makedirs(args.save, exist_ok=True)
            save_resolved_config(args, os.path.join(args.save, "config.json"))

    dtype = autocast_dtype(args) or torch.float32
    peak, peak_label = device_peak_flops(device, dtype)
    if is_rank_0():
        print(f"MFU is reported against the {peak_label}", flush=True)
    writer = make_summary_writer(args) if is_rank_0() else None
    train_logger = TrainingLogger(args, engine.module.config, torch.distributed.get_world_size()
                                  if torch.distributed.is_initialized() else 1, peak, peak_label, writer)
    forward = lambda model, batch: pretrain_forward(model, batch, args.label_smoothing)  # noqa: E731

    # Ranks other than model-parallel rank 0 hold no loaders: get_batch ignores their iterators.
    def endless(loader):
        return cycle(loader) if loader is not None else iter(())

    train_iterator = iter(train_loader) if train_loader is not None else iter(())
    valid_iterator = endless(valid_loader) if has_valid else None
    multi_iterator = iter(multi_train_loader) if multi_train_loader is not None else iter(())
    multi_valid_iterator = endless(multi_valid_loader) if has_multi_valid else None
    resume.restore_rng()  # last, so the streams continue exactly where the checkpoint left them
    iteration = resume.iteration
    save_fn = (lambda it: save_training_checkpoint(args, it, engine)) if args.save else None

    try:
        iteration = train(args, engine, train_iterator, forward, iteration, device, train_logger,
                          valid_iterator=valid_iterator, save_fn=save_fn, writer=writer,
                          multi_task_iterator=multi_iterator if has_multi_train else None,
                          multi_task_ratio=args.multi_task_ratio, multi_task_valid_iterator=multi_valid_iterator)
    except TrainingDiverged as err:
        if is_rank_0():
            print(f"error: {err}", file=sys.stderr, flush=True)
        return 3
    if save_fn is not None and not (args.save_interval and iteration % args.save_interval == 0):
        save_fn(iteration)  # the loop has not just saved this iteration
    final = (("validation", endless(valid_loader) if has_valid else None,
              endless(multi_valid_loader) if has_multi_valid else None),
             ("test", endless(test_loader) if has_test else None, None))
    if has_valid and args.eval_interval and iteration >= args.eval_interval and is_rank_0():
        # Both lines at the last iteration use --eval-iters batches, but not the same ones.
        print(f"note: each 'validation at iteration N' line reads the next {args.eval_iters} batches of the "
              f"validation set (it cycles); 'final validation' reads its first {args.eval_iters}: at the same "
              "iteration their losses differ", flush=True)
    for name, iterator, multi in final:
        if iterator is not None or multi is not None:
            results = evaluate_with_multi_task(engine, iterator, multi, args.eval_iters, forward, device)
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
