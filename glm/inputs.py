"""The GLM input layout: the one place that lays out what ``GLMModel`` reads (spec sections 2 and 9.2).

A GLM sample has two parts.  Part A is read bidirectionally; part B holds one or more spans, each
generated left to right, each seeing all of A and the spans before it.  Every B token sits at the
position of the mask it fills and counts its own position inside its span (the "block" position,
1, 2, ...).  :func:`lay_out` turns the parts into the arrays the model and the losses take::

    text        A ids, then each span's ids, then padding
    position_id [2, L]: row 0 = position (A: its own positions, B: the mask's position), row 1 = block position
    target      the token each position predicts (A: ``a_targets`` or 0; B: the span's targets)
    loss_mask   1 where a target is scored (never in A)
    sep         len(A): the attention boundary (the model's scalar attention mask)

Its users: the pretraining collator (``data_utils/blocklm.py``), every downstream task (through the
tokenizer-aware adapters of ``tasks/inputs.py``) and decoding (``glm/generation``, which encodes a
context as part A and feeds each generated token with :func:`block_position_ids`).

This module owns the layout only.  It must not touch tokenizers, command tokens, flags, process
groups or the model: callers pass ids and positions, and it imports nothing from ``glm`` or above.
"""

from dataclasses import dataclass

import numpy as np
import torch

__all__ = [
    "MASK_NAMES", "GLMInput", "lay_out", "pack_glm_input", "pack_glm_spans", "context_position_ids",
    "block_position_ids"
]

# The command tokens a part A may hold where part B goes (by name; ids are the tokenizer's business).
MASK_NAMES = ("MASK", "sMASK", "gMASK")


@dataclass
class GLMInput:
    text: np.ndarray
    position_id: np.ndarray
    target: np.ndarray
    loss_mask: np.ndarray
    sep: int
    types: np.ndarray
    paddings: np.ndarray

    def sample(self):
        """The dict the block-LM datasets yield (``attention_mask`` is the separator)."""
        return {"text": self.text, "target": self.target, "attention_mask": self.sep,
                "loss_mask": self.loss_mask, "position_id": self.position_id}


def _ints(values):
    return np.asarray(values, dtype=np.int64).reshape(-1)


def _concat(arrays):
    return np.concatenate(arrays).astype(np.int64, copy=False) if arrays else np.zeros(0, dtype=np.int64)


def lay_out(part_a, spans=(), *, a_positions=None, a_targets=None, a_types=None, block_position=True,
            max_len=None, pad_id=0, target_pad_id=0, cut=False):
    """Lay out one GLM sample: part A followed by the ``spans`` of part B, in the given order.

    ``spans``: ``(mask_position, inputs, targets)`` or ``(mask_position, inputs, targets, loss_mask)``
    per span; every token of a span sits at ``mask_position`` and counts block positions from 1 (all 1
    with ``block_position=False``, the ``--no-block-position`` ablation); ``loss_mask`` defaults to all
    scored.  ``a_positions`` (default ``0..len(A)-1``), ``a_targets`` (default 0) and ``a_types``
    (default 0) describe part A.  ``max_len``: the length of the result (``None``: no padding); padding
    is ``pad_id`` in the text, ``target_pad_id`` in the targets and 0 elsewhere.  A sample longer than
    ``max_len`` is an error, or with ``cut=True`` its part B is cut at ``max_len`` (part A must fit).
    """
    part_a = _ints(part_a)
    sep = len(part_a)
    b_text, b_target, b_loss, b_position, b_block = [], [], [], [], []
    for span in spans:
        mask_position, inputs, targets = span[:3]
        inputs, targets = _ints(inputs), _ints(targets)
        width = len(inputs)
        loss = np.ones(width, dtype=np.int64) if len(span) < 4 or span[3] is None else _ints(span[3])
        if not len(targets) == len(loss) == width:
            raise ValueError(f"a span has {width} ids but {len(targets)} targets and {len(loss)} loss-mask entries")
        b_text.append(inputs)
        b_target.append(targets)
        b_loss.append(loss)
        b_position.append(np.full(width, mask_position, dtype=np.int64))
        b_block.append(np.arange(1, width + 1, dtype=np.int64) if block_position else np.ones(width, dtype=np.int64))
    b_text, b_target, b_loss, b_position, b_block = map(_concat, (b_text, b_target, b_loss, b_position, b_block))

    length = sep + len(b_text)
    max_len = length if max_len is None else max_len
    if length > max_len:
        if not cut:
            raise ValueError(f"sample of {length} tokens does not fit in {max_len}; truncate the inputs first")
        if sep > max_len:
            raise ValueError(f"part A of {sep} tokens does not fit in {max_len}")
    room = max_len - sep
    pad = room - min(len(b_text), room)

    def fill(a_values, b_values, pad_value):
        return np.concatenate((a_values, b_values[:room], np.full(pad, pad_value, dtype=np.int64)))

    zeros_a = np.zeros(sep, dtype=np.int64)
    positions = np.arange(sep, dtype=np.int64) if a_positions is None else _ints(a_positions)
    return GLMInput(
        text=fill(part_a, b_text, pad_id),
        position_id=np.stack([fill(positions, b_position, 0), fill(zeros_a, b_block, 0)]),
        target=fill(zeros_a if a_targets is None else _ints(a_targets), b_target, target_pad_id),
        loss_mask=fill(zeros_a, b_loss, 0),
        sep=sep,
        types=fill(zeros_a if a_types is None else _ints(a_types), np.zeros(len(b_text), dtype=np.int64), 0),
        paddings=fill(np.ones(sep, dtype=np.int64), np.ones(len(b_text), dtype=np.int64), 0),
    )


def pack_glm_input(part_a, part_b=(), targets=None, loss_mask=None, mask_position=None, max_len=None,
                   pad_id=0, types_a=None, block_position=True):
    """One sample whose part B is a single span (the layout of every cloze and seq2seq task).

    ``part_a``: ids of the bidirectional part.  ``part_b``: ids fed to the autoregressive part (normally
    ``[sop] + answer[:-1]``); ``targets``: what each B position predicts (same length, default zeros);
    ``loss_mask``: which B positions are scored (default all).  ``mask_position``: the position every B
    token takes (required when B is not empty).  ``max_len``: pad to this length (``None``: no padding);
    a sample longer than ``max_len`` is an error, callers truncate first.
    """
    part_b = list(part_b)
    targets = [0] * len(part_b) if targets is None else list(targets)
    loss_mask = [1] * len(part_b) if loss_mask is None else list(loss_mask)
    if not len(targets) == len(loss_mask) == len(part_b):
        raise ValueError(f"part B has {len(part_b)} ids but {len(targets)} targets and {len(loss_mask)} "
                         "loss-mask entries")
    if part_b and mask_position is None:
        raise ValueError("part B needs the position of the mask it fills")
    spans = [(mask_position, part_b, targets, loss_mask)] if part_b else []
    return lay_out(part_a, spans, a_types=types_a, block_position=block_position, max_len=max_len, pad_id=pad_id)


def pack_glm_spans(part_a, spans, max_len=None, pad_id=0, target_pad_id=0, block_position=True):
    """One sample whose part B fills several masks of A, one span after the other, every span token
    scored.  ``spans``: ``(mask_position, inputs, targets)`` per span, in order.  When the spans do not
    fit in ``max_len`` part B is cut there -- the original blank-infilling datasets truncate rather
    than refuse; ``part_a`` must fit."""
    return lay_out(part_a, [tuple(span)[:3] for span in spans], block_position=block_position, max_len=max_len,
                   pad_id=pad_id, target_pad_id=target_pad_id, cut=True)


# -- decoding: the same layout, one step at a time, as tensors ------------------------------------------

def context_position_ids(length, device=None):
    """Positions ``[1, 2, length]`` of a context encoded as part A alone: ``(0..length-1, 0)``."""
    return torch.stack([torch.arange(length, device=device),
                        torch.zeros(length, dtype=torch.long, device=device)]).unsqueeze(0)


def block_position_ids(mask_positions, first_block_position, length, device=None):
    """Positions ``[B, 2, length]`` of ``length`` part-B tokens per row, fed after part A: row ``b`` sits
    at ``mask_positions[b]`` with block positions ``first_block_position, first_block_position + 1, ...``."""
    mask_positions = torch.as_tensor(mask_positions, device=device).reshape(-1)
    batch = mask_positions.numel()
    first = torch.as_tensor(first_block_position, dtype=torch.long, device=mask_positions.device)
    blocks = first + torch.arange(length, device=mask_positions.device)
    return torch.stack([mask_positions.view(-1, 1).expand(batch, length), blocks.expand(batch, length)], dim=1)
