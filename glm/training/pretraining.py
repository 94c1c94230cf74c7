"""Pretraining's batches, fed to the training core (:mod:`glm.training.core`).

Owns what only pretraining does around the core: reading batches on model-parallel rank 0 and
broadcasting them to its group (:func:`get_batch`), the per-iteration choice between the corpus and
the multi-task data (``--multi-task-ratio``, :func:`uses_multi_task`, replayed on resume by
:func:`count_multi_task_iterations`), cycling validation sets, and the validation figures with the
multi-task ``Multi loss`` (:func:`evaluate_with_multi_task`).  :func:`train` runs the core over them.

Must not touch: the step, NaN guard, logging, saving and stop handling (the core's), the loss
(:mod:`glm.training.losses`), or the run's configuration (it receives :class:`LoopSettings`).
"""

import itertools
import random

import torch
import torch.distributed as dist

from .. import mpu
from .core import MODE_NAMES, LoopSettings, TrainingCore, evaluate_loss
from .losses import projected_positions

BATCH_KEYS = ("text", "target", "loss_mask", "attention_mask", "position_id")


def get_batch(data_iterator, device):
    """Next batch on ``device``.  Only model-parallel rank 0 reads data; the other ranks of the group
    receive it by broadcast (the original's layout), so every rank of a group sees the same batch."""
    group = mpu.get_model_parallel_group()
    if mpu.group_world_size(group) == 1:
        batch = next(data_iterator)
        out = {k: batch[k].to(device, non_blocking=True) for k in BATCH_KEYS if k in batch}
        out["mode"] = batch.get("mode")
        return out
    batch = next(data_iterator) if mpu.get_model_parallel_rank() == 0 else None
    keys = [k for k in BATCH_KEYS if batch is None or k in batch]
    message = [keys, batch.get("mode") if batch else None]
    dist.broadcast_object_list(message, src=mpu.get_model_parallel_src_rank(), group=group)
    keys, mode = message
    data = mpu.broadcast_data(keys, batch, torch.int64)
    out = {k: v.to(device) for k, v in data.items()}
    out["mode"] = mode
    return out


def batches_on_device(data_iterator, device):
    """:func:`get_batch` until ``data_iterator`` ends."""
    while True:
        try:
            yield get_batch(data_iterator, device)
        except StopIteration:
            return


def uses_multi_task(iteration, ratio, dp_rank=0, dp_world=1):
    """Whether optimizer iteration ``iteration`` (counted from 0) takes its batches from the
    multi-task data: probability ``ratio``, from ``random.Random(iteration * dp_world + dp_rank)`` as
    the original, so a resumed run makes the same choices (at the same data-parallel size)."""
    if ratio <= 0:
        return False
    return random.Random(iteration * dp_world + dp_rank).random() < ratio


def count_multi_task_iterations(iterations, ratio, dp_rank=0, dp_world=1):
    """How many of the first ``iterations`` optimizer iterations used multi-task batches on this
    rank: where a resumed run's multi-task loader (and, by difference, its main loader) restarts."""
    if ratio <= 0:
        return 0
    return sum(uses_multi_task(i, ratio, dp_rank, dp_world) for i in range(iterations))


def step_batches(train_iterator, device, micro_batches_per_step, start_iteration, multi_task_iterator=None,
                 multi_task_ratio=0.0):
    """Each optimizer step's micro-batches from ``start_iteration`` on.  The source is drawn per
    iteration (:func:`uses_multi_task`), so every micro-batch of a step comes from the same data."""
    dp_world, dp_rank = mpu.get_data_parallel_world_size(), mpu.get_data_parallel_rank()
    if multi_task_iterator is None:
        multi_task_ratio = 0.0
    for iteration in itertools.count(start_iteration):
        source = multi_task_iterator if uses_multi_task(iteration, multi_task_ratio, dp_rank, dp_world) \
            else train_iterator
        yield [get_batch(source, device) for _ in range(micro_batches_per_step)]


def evaluate_with_multi_task(engine, valid_iterator, multi_task_iterator, eval_iters, forward_fn, device):
    """The validation loss (:func:`~glm.training.core.evaluate_loss`) of ``eval_iters`` batches, plus
    ``Multi loss`` from ``eval_iters`` batches of the multi-task validation set when there is one.
    ``loss`` and ``PPL`` stay those of the validation corpus, comparable with runs without multi-task
    data."""
    def evaluate(iterator):
        return evaluate_loss(engine, batches_on_device(iterator, device), forward_fn, eval_iters, device)

    results = evaluate(valid_iterator) if valid_iterator is not None else {}
    if multi_task_iterator is not None:
        multi = evaluate(multi_task_iterator)
        key = MODE_NAMES["multi-task"]
        if key in multi:
            results[key] = multi[key]
    return results


def cycle(loader):
    """Endless iteration over a finite loader (validation batches repeat across evaluations)."""
    while True:
        empty = True
        for batch in loader:
            empty = False
            yield batch
        if empty:
            return


def train(settings: LoopSettings, engine, train_iterator, forward_fn, start_iteration, device, train_logger, *,
          valid_iterator=None, save_fn=None, writer=None, multi_task_iterator=None,
          multi_task_ratio=0.0, multi_task_valid_iterator=None, stop_request=None):
    """Run optimizer steps from ``start_iteration`` to ``settings.train_iters`` through the training
    core; returns ``(the iteration reached, whether a stop request ended the run)``.

    With ``multi_task_iterator``, an iteration takes all its micro-batches from it with probability
    ``multi_task_ratio`` (:func:`uses_multi_task`), else from ``train_iterator``; evaluation adds the
    ``Multi loss`` of ``multi_task_valid_iterator``.  With ``stop_request`` the run ends after the
    first step at which any rank received SIGINT/SIGTERM, saved by the core (``save_on_stop``).
    """
    def validate():
        return evaluate_with_multi_task(engine, valid_iterator, multi_task_valid_iterator, settings.eval_iters,
                                        forward_fn, device)

    evaluates = valid_iterator is not None or multi_task_valid_iterator is not None
    core = TrainingCore(engine,
                        forward_fn,
                        device,
                        settings,
                        train_logger,
                        start_iteration=start_iteration,
                        validate=validate if evaluates else None,
                        save=save_fn,
                        count_projected=projected_positions,
                        stop_request=stop_request,
                        writer=writer,
                        progress_bar=True)
    try:
        stopped = core.run(step_batches(train_iterator, device, settings.micro_batches_per_step, start_iteration,
                              multi_task_iterator, multi_task_ratio))
    finally:
        core.close()
    return core.iteration, stopped
