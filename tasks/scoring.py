"""Scoring GLM samples with a model, batched and spread over data-parallel ranks.

Every zero-shot metric here reduces to the same per-sample numbers: the summed log-probability of
the scored targets, how many targets were scored, and whether each scored target was the argmax.
:func:`score_samples` computes them for any list of samples (block-LM dicts from
``tasks.inputs.pack_glm_input``, or GPT-style ``text``/``loss_mask`` dicts) and returns them in
sample order on every rank, whatever the number of data-parallel ranks.
"""

import torch
import torch.distributed as dist
import torch.nn.functional as F

from glm import mpu

def collate(samples):
    """Stack samples, right-padding every field with zeros to the longest in the batch (padding is
    after B, where neither attention nor loss can see it)."""
    batch = {}
    for key in samples[0]:
        values = [torch.as_tensor(s[key]) for s in samples]
        if values[0].dim() == 0:
            batch[key] = torch.stack(values)
            continue
        length = max(v.size(-1) for v in values)
        batch[key] = torch.stack([F.pad(v, (0, length - v.size(-1))) for v in values])
    return batch


def check_positions(model, positions):
    """A clear error instead of an embedding index error when a sample's positions exceed the model's
    position table (e.g. --seq-length / --overlapping-eval too large for --max-position-embeddings)."""
    table = getattr(getattr(model, "transformer", None), "position_embeddings", None)
    if isinstance(table, torch.nn.Embedding) and int(positions.max()) >= table.num_embeddings:
        raise ValueError(f"a sample uses position {int(positions.max())} but the model's position table has "
                         f"{table.num_embeddings} rows; lower --seq-length (or raise --overlapping-eval)")


@torch.no_grad()
def score_batch(model, batch, device=None):
    """``(logprob_sum [B] float64, count [B], all_correct [B] bool)`` for one collated batch."""
    batch = {k: v.to(device) if device is not None else v for k, v in batch.items()}
    if "target" in batch:
        tokens, targets, loss_mask = batch["text"], batch["target"], batch["loss_mask"]
        check_positions(model, batch["position_id"])
        logits = model(tokens, batch["position_id"], batch["attention_mask"])[0]
    else:
        # GPT-style: position i predicts token i+1, fully causal (separator 0).
        text, mask = batch["text"], batch["loss_mask"]
        tokens, targets, loss_mask = text[:, :-1], text[:, 1:], mask[:, 1:]
        positions = torch.arange(tokens.size(1), device=tokens.device).expand_as(tokens)
        check_positions(model, positions)
        logits = model(tokens, positions, torch.zeros(tokens.size(0), dtype=torch.long, device=tokens.device))[0]
    logits = logits.float()
    log_probs = torch.log_softmax(logits, dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    scored = loss_mask.bool()
    logprob_sum = (log_probs.double() * scored).sum(-1)
    hits = (logits.argmax(-1) == targets) | ~scored
    return logprob_sum.cpu(), scored.sum(-1).cpu(), hits.all(-1).cpu()


def gather_in_order(local, rank, world):
    """``local`` = ``[(index, value), ...]`` of this rank -> every rank's values in index order."""
    if world > 1:
        parts = [None] * world
        group = mpu.get_data_parallel_group() if mpu.model_parallel_is_initialized() else None
        dist.all_gather_object(parts, local, group=group)
        local = [item for part in parts for item in part]
    return [value for _, value in sorted(local, key=lambda item: item[0])]


def score_samples(model, samples, batch_size=1, device=None):
    """Score ``samples`` (a sequence of sample dicts; a Dataset works) on this rank's share — every
    ``world``-th sample — and return ``[(logprob_sum, count, all_correct), ...]`` for all of them, in
    order.  Model-parallel ranks of one replica see the same samples; the model must return full
    logits (``parallel_output=False``)."""
    rank, world = mpu.data_parallel_rank_and_size()
    mine = list(range(rank, len(samples), world))
    local = []
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(mine), batch_size):
            indices = mine[start:start + batch_size]
            sums, counts, correct = score_batch(model, collate([samples[i] for i in indices]), device)
            local += [(i, (float(s), int(c), bool(k))) for i, s, c, k in zip(indices, sums, counts, correct)]
    finally:
        model.train(was_training)
    return gather_in_order(local, rank, world)
