"""Cross entropy over logits whose vocabulary dimension is split across ranks.

Returns the per-token loss (no reduction), like the original.  ``label_smoothing`` (new here;
the original smoothed outside the loss in its seq2seq code) mixes the one-hot target with a
uniform distribution over the full vocabulary:
``loss = (1 - eps) * nll + eps * mean_j(-log p_j)``.
"""

import torch
import torch.distributed as dist

from .initialize import get_model_parallel_group, group_rank, group_world_size


def _all_reduce(x, op, group):
    if group_world_size(group) > 1:
        dist.all_reduce(x, op=op, group=group)
    return x


class _VocabParallelCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits, target, group, label_smoothing):
        world = group_world_size(group)
        local_vocab = logits.size(-1)
        start = group_rank(group) * local_vocab
        full_vocab = local_vocab * world

        logits = logits.float()
        # Subtracting the global max keeps exp() finite; it cancels out of the softmax.
        logits_max = _all_reduce(logits.max(dim=-1)[0], dist.ReduceOp.MAX, group)
        shifted = logits - logits_max.unsqueeze(-1)

        outside = (target < start) | (target >= start + local_vocab)
        local_target = (target - start).masked_fill(outside, 0)
        predicted = shifted.gather(-1, local_target.unsqueeze(-1)).squeeze(-1)
        predicted = predicted.masked_fill(outside, 0.0)
        predicted = _all_reduce(predicted, dist.ReduceOp.SUM, group)

        exp_logits = shifted.exp()
        sum_exp = _all_reduce(exp_logits.sum(dim=-1), dist.ReduceOp.SUM, group)
        log_z = sum_exp.log()
        loss = log_z - predicted
        if label_smoothing > 0.0:
            mean_logit = _all_reduce(shifted.sum(dim=-1), dist.ReduceOp.SUM, group) / full_vocab
            loss = (1.0 - label_smoothing) * loss + label_smoothing * (log_z - mean_logit)

        softmax = exp_logits.div_(sum_exp.unsqueeze(-1))
        ctx.save_for_backward(softmax, outside, local_target)
        ctx.label_smoothing = label_smoothing
        ctx.full_vocab = full_vocab
        return loss

    @staticmethod
    def backward(ctx, grad_output):
        softmax, outside, local_target = ctx.saved_tensors
        eps = ctx.label_smoothing
        grad = softmax.clone()
        on_target = (~outside).to(grad.dtype)
        grad.scatter_add_(-1, local_target.unsqueeze(-1), -(1.0 - eps) * on_target.unsqueeze(-1))
        if eps > 0.0:
            grad.sub_(eps / ctx.full_vocab)
        grad.mul_(grad_output.unsqueeze(-1))
        return grad, None, None, None


def vocab_parallel_cross_entropy(vocab_parallel_logits, target, group=None, label_smoothing=0.0):
    """Per-token cross entropy of ``target`` under logits split on the last dim across ``group``.

    Works unchanged on a single process, where it equals
    ``torch.nn.functional.cross_entropy(logits, target, reduction='none')``.  The gradient is
    returned in float32 cast back by autograd to the logits' dtype.
    """
    group = get_model_parallel_group() if group is None else group
    if group_world_size(group) == 1:
        # One shard holds the whole vocabulary: torch's fused kernel makes fewer passes over the
        # (large) logits than the explicit max/exp/sum of the parallel version.
        vocab = vocab_parallel_logits.size(-1)
        losses = torch.nn.functional.cross_entropy(
            vocab_parallel_logits.reshape(-1, vocab).float(), target.reshape(-1), reduction="none",
            label_smoothing=float(label_smoothing))
        return losses.view(target.shape)
    return _VocabParallelCrossEntropy.apply(vocab_parallel_logits, target, group, float(label_smoothing))
