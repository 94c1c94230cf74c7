"""Seq2seq samples laid out through the shared GLM input builder (spec sections 9.2 and 9.4).

Every seq2seq task packs its source into part A, padded with ``pad`` to ``--src-seq-length`` (so the
pads sit inside the bidirectional region and ``sep`` is always the full source length -- the
original's layout, see docs/seq2seq.md), and then:

* training: part B = ``[sop] + target[:-1]`` at the mask's position, predicting ``target`` =
  ``" " + text`` tokens + ``[eop]``, cut or padded (with ``pad``, loss 0) to ``--tgt-seq-length``;
* evaluation: part B = ``[sop]`` only; decoding continues from there.

The blank-infilling tasks (extraction, blank) instead put one ``[sop] span`` per mask in B.
Items are dicts of numpy int64 arrays with the original keys and key order.
"""

import dataclasses

import numpy as np

from ..inputs import command_id, pack_glm_input, pack_glm_spans
from ..jsonl import TaskDataError


@dataclasses.dataclass(frozen=True)
class CommandIds:
    """The command-token ids the seq2seq layouts use."""
    enc: int
    pad: int
    eos: int
    sop: int
    eop: int

    @classmethod
    def of(cls, tokenizer):
        return cls(*(command_id(tokenizer, name) for name in ("ENC", "pad", "eos", "sop", "eop")))


def task_mask_name(config, task):
    """``sMASK`` with ``--task-mask`` (the 2B/10B/Chinese models were trained with it for short
    spans), except for cmrc, whose released recipe always used ``MASK``."""
    return "sMASK" if config.objective.task_mask and task != "cmrc" else "MASK"


def pad_source(tokens, length, pad_id, where):
    """Pad a packed source to ``length``; a source that is already longer was packed wrongly."""
    if len(tokens) > length:
        raise TaskDataError(f"{where}: the source takes {len(tokens)} tokens, more than --src-seq-length "
                            f"{length} (the prompt alone is too long)")
    return list(tokens) + [pad_id] * (length - len(tokens))


def find_mask(tokens, mask_id, where, mask_name="mask"):
    """Index of the first ``mask_id`` in the source; a source without one cannot be generated from."""
    try:
        return list(tokens).index(mask_id)
    except ValueError:
        raise TaskDataError(f"{where}: the source has no {mask_name} token (id {mask_id}) within "
                            "--src-seq-length, so there is nothing to fill") from None


def encode_target(tokenizer, text, max_length, ids):
    """``" " + text`` tokens + ``[eop]``, cut to ``max_length``; then the loss mask (1 on real tokens)
    and the padded target."""
    target = tokenizer.EncodeAsIds(" " + text).tokenization + [ids.eop]
    target = target[:max_length]
    loss_mask = [1] * len(target) + [0] * (max_length - len(target))
    return target + [ids.pad] * (max_length - len(target)), loss_mask


def train_sample(source, target, loss_mask, mask_position, uid, ids, block_position=True, attention_mask=None):
    """Training item: A = the padded source, B = ``[sop] + target[:-1]`` predicting ``target``.
    ``attention_mask`` defaults to the scalar ``sep`` (= len(source))."""
    packed = pack_glm_input(source, [ids.sop] + list(target[:-1]), target, loss_mask, mask_position=mask_position,
                            pad_id=ids.pad, block_position=block_position)
    return {"text": packed.text, "target": packed.target,
            "attention_mask": _sep_or(attention_mask, packed.sep),
            "loss_mask": packed.loss_mask, "position_id": packed.position_id, "uid": uid}


def eval_sample(source, mask_position, uid, ids, attention_mask=None):
    """Evaluation item: A = the padded source, B = ``[sop]`` at the mask's position (block id 1)."""
    packed = pack_glm_input(source, [ids.sop], mask_position=mask_position, pad_id=ids.pad)
    return {"text": packed.text, "attention_mask": _sep_or(attention_mask, packed.sep),
            "position_id": packed.position_id, "uid": uid}


def spans_sample(source, spans, max_length, uid, ids):
    """Blank-infilling training item: after the padded source, one ``[sop] + span`` per mask, each
    predicting ``span + [eop]`` at its mask's position; the whole item padded (text and targets with
    ``pad``) or cut to ``max_length``.  ``spans``: ``(mask_position, span_tokens)`` in mask order."""
    packed = pack_glm_spans(source, [(position, [ids.sop] + list(tokens), list(tokens) + [ids.eop])
                                     for position, tokens in spans],
                            max_len=max_length, pad_id=ids.pad, target_pad_id=ids.pad)
    return {"text": packed.text, "target": packed.target, "attention_mask": np.array(packed.sep, dtype=np.int64),
            "loss_mask": packed.loss_mask, "position_id": packed.position_id, "uid": uid}


def hide_padding_mask(context_length, src_length, tgt_length=None):
    """The ``--mask-pad-token`` attention matrix ``[1, L, L]`` (int64) of the customization task.

    Every row sees the real source (the first ``context_length`` columns) and nothing of the padding
    after it.  Training (``tgt_length`` given, L = src + tgt): the target rows also see the target
    causally.  Evaluation (L = src + 1): the ``[sop]`` row also sees itself.  Note that the source
    rows do not see each other beyond this either: they read the real source bidirectionally.
    """
    if tgt_length is None:
        mask = np.zeros((src_length + 1, src_length + 1), dtype=np.int64)
        mask[:, :context_length] = 1
        mask[-1, -1] = 1
    else:
        length = src_length + tgt_length
        mask = np.zeros((length, length), dtype=np.int64)
        mask[:, :context_length] = 1
        mask[src_length:, src_length:] = np.tril(np.ones((tgt_length, tgt_length), dtype=np.int64))
    return mask[None]


def _sep_or(attention_mask, sep):
    return np.array(sep, dtype=np.int64) if attention_mask is None else attention_mask
