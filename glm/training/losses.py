"""The training losses, named for what they compute.

Owns:

* :func:`language_model_loss`: vocab-parallel cross entropy of the target tokens, averaged over the
  loss mask (pretraining with every objective, seq2seq finetuning, generative WSC), and
  :func:`projected_positions`, how many positions it projects onto the vocabulary (for the
  executed-FLOPs figure);
* :func:`choice_loss`: the losses over choice/label scores of cloze and classification finetuning
  (``--loss-func``, ``--adapet``; the original's ``finetune_forward_step``), checked against its
  recorded values in ``glm_reference/downstream``.

Must not touch: engines, optimizers, data loading or the run's configuration; a loss receives the
model, a batch and explicit options, and returns ``(loss, extras)`` or a loss tensor.
"""

import torch
import torch.nn.functional as F

from .. import mpu

LOSS_FUNCS = ("cross_entropy", "hinge", "generative", "mix")


def language_model_loss(model, batch, label_smoothing=0.0):
    """Blank-infilling / language-model loss of a batch: per-token vocab-parallel cross entropy averaged
    over the loss mask (left unnormalised when the mask is empty, as the original).  Returns
    ``(loss, {"mode": batch's pretraining mode or None})``.

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
    """How many positions :func:`language_model_loss` projects onto the vocabulary in these batches
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


def choice_loss(logits, labels, loss_func="cross_entropy", loss_mask=None, adapet=False):
    """The loss of ``--loss-func`` (and ``--adapet``) over the choice scores ``logits`` ``[B, C]``
    (summed log-probabilities for multi-token cloze, verbalizer logits or log-probabilities for
    single-token cloze, head outputs for classification) of one batch with gold choices ``labels``.
    With a ``loss_mask`` (variable number of choices, padded), invalid choices are pushed to
    ``-10000`` first."""
    if loss_func not in LOSS_FUNCS:
        raise ValueError(f"--loss-func must be one of {LOSS_FUNCS}, got {loss_func!r}")
    logits = logits.float()
    if loss_mask is not None:
        mask = loss_mask.to(logits.dtype)
        logits = logits * mask - 10000.0 * (1.0 - mask)
    rows = torch.arange(logits.size(0), device=logits.device)
    if adapet:
        # The original's decoupled label objective: +score for every wrong label, -score for the right
        # one (scores are log-probabilities here), summed over labels and averaged over the batch.
        signs = torch.ones_like(logits)
        signs[rows, labels] = -1.0
        if loss_mask is not None:
            signs = signs * loss_mask.to(logits.dtype)
        return (logits * signs).sum(dim=1).mean()
    if loss_func == "cross_entropy":
        return F.cross_entropy(logits, labels)
    if loss_func == "hinge":
        correct = logits[rows, labels].unsqueeze(1)
        return (1.0 + logits - correct).clamp(min=0.0).sum(dim=1).mean() - 1.0
    generative = -logits[rows, labels].mean()
    if loss_func == "mix":
        return generative + F.cross_entropy(logits, labels)
    return generative
