"""Losses over choice / label scores used by cloze and classification finetuning (the original's
``finetune_forward_step``), checked against its recorded values in ``glm_reference/downstream``.

``logits`` are ``[B, C]`` scores (summed log-probabilities for multi-token cloze, verbalizer logits or
log-probabilities for single-token cloze, head outputs for classification).  With a ``loss_mask``
(variable number of choices, padded), invalid choices are pushed to ``-10000`` first.
"""

import torch
import torch.nn.functional as F

LOSS_FUNCS = ("cross_entropy", "hinge", "generative", "mix")


def choice_loss(logits, labels, loss_func="cross_entropy", loss_mask=None, adapet=False):
    """The finetuning loss of ``--loss-func`` (and ``--adapet``) for one batch."""
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
