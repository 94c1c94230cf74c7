"""The train/evaluate loop shared by the engines."""

import contextlib
import itertools
import logging
import math
import random
import sys

import torch
import torch.distributed as dist

from .. import mpu
from .distributed import all_reduce_mean, is_rank_0

logger = logging.getLogger(__name__)

BATCH_KEYS = ("text", "target", "loss_mask", "attention_mask", "position_id")
MODE_NAMES = {"bert": "BERT loss", "sentence": "Sent loss", "gpt": "GPT loss", "multi-task": "Multi loss"}


class TrainingDiverged(RuntimeError):
    """Too many consecutive steps had a NaN/inf loss."""


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


def pretrain_forward(model, batch, label_smoothing=0.0):
    """Blank-infilling loss: per-token vocab-parallel cross entropy averaged over the loss mask
    (left unnormalised when the mask is empty, as the original).

    Only the positions with a non-zero loss-mask weight are projected onto the vocabulary
    (``logit_positions``): the others are multiplied by zero in the original, so the loss and its
    gradients are those of the full projection while the largest matmul of the step shrinks to Part B."""
    mask = batch["loss_mask"]
    selected = mask != 0
    logits = model(batch["text"], batch["position_id"], batch["attention_mask"], logit_positions=selected)[0]
    losses = mpu.vocab_parallel_cross_entropy(logits, batch["target"][selected], label_smoothing=label_smoothing)
    weights = mask[selected].float()
    loss = (losses * weights).sum() / mask.float().sum().clamp(min=1.0)
    return loss, {"mode": batch.get("mode")}


def projected_positions(micro_batches):
    """How many positions :func:`pretrain_forward` projects onto the vocabulary in these batches
    (for the executed-FLOPs figure), or ``None`` for batches it does not handle (cloze heads).  A
    tensor on the batches' device: the logger adds it up and reads it only when it reports, so the
    step pays no host synchronisation for it."""
    count = 0
    for batch in micro_batches:
        mask = batch.get("loss_mask")
        if mask is None or mask.shape != batch["text"].shape:
            return None
        count = count + (mask != 0).sum(dtype=torch.float64)  # float: the FLOPs it scales reach 1e20
    return count


def evaluate(engine, data_iterator, eval_iters, forward_fn, device):
    """Average loss (and per-mode losses) over ``eval_iters`` batches, averaged over data parallel."""
    engine.eval()
    totals, counts = {}, {}
    with torch.no_grad():
        for _ in range(eval_iters):
            try:
                batch = get_batch(data_iterator, device)
            except StopIteration:
                break
            with engine.autocast():
                loss, extra = forward_fn(engine.module if engine.name == "plain" else engine.forward_model, batch)
            for key in ("loss", MODE_NAMES.get((extra or {}).get("mode"))):
                if key:
                    totals[key] = totals.get(key, 0.0) + loss.float().item()
                    counts[key] = counts.get(key, 0) + 1
    engine.train()
    results = {}
    for key in sorted(totals):
        value = torch.tensor(totals[key] / counts[key], device=device)
        results[key] = all_reduce_mean(value).item() if dist.is_initialized() else value.item()
    if "loss" in results:
        results["PPL"] = math.exp(min(20.0, results["loss"]))
    return results


def evaluate_with_multi_task(engine, valid_iterator, multi_task_iterator, eval_iters, forward_fn, device):
    """:func:`evaluate` on the validation batches, plus ``Multi loss`` from ``eval_iters`` batches of
    the multi-task validation set when there is one.  ``loss`` and ``PPL`` stay those of the
    validation corpus, comparable with runs without multi-task data."""
    results = evaluate(engine, valid_iterator, eval_iters, forward_fn, device) if valid_iterator is not None else {}
    if multi_task_iterator is not None:
        multi = evaluate(engine, multi_task_iterator, eval_iters, forward_fn, device)
        key = MODE_NAMES["multi-task"]
        if key in multi:
            results[key] = multi[key]
    return results


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


def cycle(loader):
    """Endless iteration over a finite loader (validation batches repeat across evaluations)."""
    while True:
        empty = True
        for batch in loader:
            empty = False
            yield batch
        if empty:
            return


def train(config, engine, train_iterator, forward_fn, start_iteration, device, train_logger, *,
          valid_iterator=None, save_fn=None, writer=None, tokens_per_sample=None,
          multi_task_iterator=None, multi_task_ratio=0.0, multi_task_valid_iterator=None, stop_request=None):
    """Run optimizer steps from ``start_iteration`` to ``--train-iters``.

    Logs every ``--log-interval``, evaluates every ``--eval-interval`` (when a validation iterator is
    given), saves every ``--save-interval`` (when ``save_fn`` is given).  Raises
    :class:`TrainingDiverged` after ``--max-nan-steps`` consecutive non-finite losses.

    With ``multi_task_iterator``, an iteration takes all its micro-batches from it with probability
    ``multi_task_ratio`` (:func:`uses_multi_task`), else from ``train_iterator``; evaluation adds the
    ``Multi loss`` of ``multi_task_valid_iterator``.

    With ``stop_request`` (:class:`~glm.training.interrupt.StopRequest`) the loop also ends after
    the first step at which any rank received SIGINT/SIGTERM; the caller reads the request to tell.
    """
    iteration = start_iteration
    consecutive_nonfinite = 0
    progress = None
    if is_rank_0() and sys.stderr.isatty():
        from tqdm import tqdm
        progress = tqdm(total=config.training.train_iters, initial=iteration, desc="train", dynamic_ncols=True)
    dp_world, dp_rank = mpu.get_data_parallel_world_size(), mpu.get_data_parallel_rank()
    if multi_task_iterator is None:
        multi_task_ratio = 0.0
    evaluates = valid_iterator is not None or multi_task_valid_iterator is not None
    while iteration < config.training.train_iters:
        # Seeded by the iteration about to run, so every micro-batch of it comes from the same data.
        source = multi_task_iterator if uses_multi_task(iteration, multi_task_ratio, dp_rank, dp_world) \
            else train_iterator
        micro_batches = [get_batch(source, device) for _ in range(config.training.gradient_accumulation_steps)]
        result = engine.train_batch(micro_batches, forward_fn)
        iteration += 1
        if result.nonfinite:
            consecutive_nonfinite += 1
            if is_rank_0():
                with clear_of_progress_bar(progress):
                    print(f"iteration {iteration}: loss is {result.loss}; step skipped "
                          f"({consecutive_nonfinite} in a row)", flush=True)
            if consecutive_nonfinite >= config.training.max_nan_steps:
                raise TrainingDiverged(
                    f"the loss was NaN/inf for {consecutive_nonfinite} consecutive steps (last at iteration "
                    f"{iteration}); stopping. Lower --lr, raise --warmup or use --bf16, then resume from the last "
                    f"checkpoint; --max-nan-steps sets the limit")
        else:
            consecutive_nonfinite = 0
        tokens = sum(b["text"].numel() for b in micro_batches) * dp_world
        projected = projected_positions(micro_batches)
        train_logger.record(result, tokens, micro_batches[0]["text"].size(1),
                            projected=None if projected is None else projected * dp_world)
        if progress is not None:
            progress.update(1)
        lr = engine.lr_scheduler.get_lr() if engine.lr_scheduler is not None else config.training.lr
        if iteration % config.logging.log_interval == 0 and is_rank_0():
            with clear_of_progress_bar(progress):
                train_logger.report(iteration, lr)
        if save_fn is not None and config.checkpoint.save_interval and iteration % config.checkpoint.save_interval == 0:
            save_fn(iteration)
        if evaluates and config.evaluation.eval_interval and iteration % config.evaluation.eval_interval == 0:
            results = evaluate_with_multi_task(engine, valid_iterator, multi_task_valid_iterator, config.evaluation.eval_iters,
                                               forward_fn, device)
            if is_rank_0():
                with clear_of_progress_bar(progress):
                    print(format_eval("validation", iteration, results), flush=True)
                if writer is not None:
                    for key, value in results.items():
                        writer.add_scalar(f"Train/valid_{key.replace(' ', '_')}", value, iteration)
        if stop_request is not None and stop_request.requested():
            break
    if progress is not None:
        progress.close()
    return iteration
