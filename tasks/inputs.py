"""The GLM input builder shared by every downstream task (spec section 9.2).

A GLM sample has two parts.  Part A is read bidirectionally; part B is generated left to right and may
look at all of A.  Every B token sits at the position of the mask it fills and counts its own
position inside the span (the "block" position, 1, 2, ...).  :func:`pack_glm_input` turns the two parts
into the arrays the model and the losses take::

    text        A ids, then B ids (B starts with [sop]), then padding
    position_id [2, L]: row 0 = position (A: 0..sep-1, B: the mask's position), row 1 = block position
    target      the token each B position predicts (0 elsewhere)
    loss_mask   1 where a target is scored
    sep         len(A): the attention boundary (the model's scalar attention mask)

The original's ``build_input_from_ids``, ``build_uni_input_from_ids`` and ``build_decoder_input``
are thin wrappers over it and keep their signatures and return tuples.
"""

from dataclasses import dataclass

import numpy as np

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


def command_id(tokenizer, name):
    return tokenizer.get_command(name).Id


def mask_ids(tokenizer):
    """Ids of the mask command tokens the tokenizer has."""
    ids = []
    for name in MASK_NAMES:
        try:
            ids.append(command_id(tokenizer, name))
        except (KeyError, ValueError, AttributeError):
            pass
    return ids


def pack_glm_input(part_a, part_b=(), targets=None, loss_mask=None, mask_position=None, max_len=None,
                   pad_id=0, types_a=None, block_position=True):
    """Lay out one GLM sample.

    ``part_a``: ids of the bidirectional part.  ``part_b``: ids fed to the autoregressive part (normally
    ``[sop] + answer[:-1]``); ``targets``: what each B position predicts (same length, default zeros);
    ``loss_mask``: which B positions are scored (default all).  ``mask_position``: the position every B
    token takes (required when B is not empty).  ``block_position=False`` gives every B token block
    position 1 (``--no-block-position``).  ``max_len``: pad to this length (``None``: no padding); a
    sample longer than ``max_len`` is an error, callers truncate first.
    """
    part_a, part_b = list(part_a), list(part_b)
    targets = [0] * len(part_b) if targets is None else list(targets)
    loss_mask = [1] * len(part_b) if loss_mask is None else list(loss_mask)
    if not len(targets) == len(loss_mask) == len(part_b):
        raise ValueError(f"part B has {len(part_b)} ids but {len(targets)} targets and {len(loss_mask)} "
                         "loss-mask entries")
    if part_b and mask_position is None:
        raise ValueError("part B needs the position of the mask it fills")
    sep, length = len(part_a), len(part_a) + len(part_b)
    max_len = length if max_len is None else max_len
    if length > max_len:
        raise ValueError(f"sample of {length} tokens does not fit in {max_len}; truncate the inputs first")
    pad = max_len - length
    text = np.array(part_a + part_b + [pad_id] * pad, dtype=np.int64)
    positions = list(range(sep)) + [mask_position] * len(part_b) + [0] * pad
    blocks = [0] * sep + (list(range(1, len(part_b) + 1)) if block_position else [1] * len(part_b)) + [0] * pad
    types_a = [0] * sep if types_a is None else list(types_a)
    return GLMInput(
        text=text,
        position_id=np.array([positions, blocks], dtype=np.int64),
        target=np.array([0] * sep + targets + [0] * pad, dtype=np.int64),
        loss_mask=np.array([0] * sep + loss_mask + [0] * pad, dtype=np.int64),
        sep=sep,
        types=np.array(types_a + [0] * (len(part_b) + pad), dtype=np.int64),
        paddings=np.array([1] * length + [0] * pad, dtype=np.int64),
    )


def _mask_position(ids, mask_id_set, last=True):
    found = [i for i, t in enumerate(ids) if t in mask_id_set]
    if not found:
        raise ValueError("part A contains no mask token, so part B has no position to fill")
    return found[-1] if last else found[0]


def _block_position(config):
    return not config.objective.no_block_position


def build_part_a(text_a, text_b, max_len, tokenizer, add_cls=True, add_sep=False, add_eos=True):
    """``[ENC] + text_a (+ [sep]) + text_b`` cut to ``max_len - 1``, then ``[eos]``; with its types
    (1 on ``text_b``)."""
    ids, types = [], []
    if add_cls:
        ids.append(command_id(tokenizer, "ENC"))
    ids += list(text_a)
    if add_sep:
        ids.append(command_id(tokenizer, "sep"))
    types = [0] * len(ids)
    if text_b is not None:
        ids += list(text_b)
        types += [1] * len(text_b)
    ids, types = ids[:max_len - 1], types[:max_len - 1]
    if add_eos:
        ids.append(command_id(tokenizer, "eos"))
        types.append(types[-1] if types else 0)
    return ids, types


def build_input_from_ids(text_a, text_b, answer, max_len, tokenizer, config=None, add_cls=True, add_sep=False,
                         add_piece=False, add_eos=True, mask_id=None):
    """The original cloze/answer layout: A = ``[ENC] text_a text_b [eos]``, and with an answer (or
    ``add_piece``) B = ``[sop] + answer[:-1]`` at the last mask of A, predicting ``answer``.
    Returns ``(ids, types, paddings, position_ids, sep, target_ids, loss_masks)``."""
    part_a, types = build_part_a(text_a, text_b, max_len, tokenizer, add_cls, add_sep, add_eos)
    part_b, targets, mask_position = [], None, None
    if add_piece or answer is not None:
        if config.objective.sentinel_token:
            mask_position = config.model.max_position_embeddings
        else:
            ids = {mask_id} if mask_id is not None else set(mask_ids(tokenizer))
            mask_position = _mask_position(part_a, ids)
        sop = command_id(tokenizer, "sop")
        if answer is not None:
            part_b, targets = [sop] + list(answer[:-1]), list(answer)
        else:
            part_b, targets = [sop], [0]
    packed = pack_glm_input(part_a, part_b, targets, mask_position=mask_position, max_len=max_len,
                            pad_id=command_id(tokenizer, "eos"), types_a=types,
                            block_position=_block_position(config))
    position_ids = packed.position_id
    if config.objective.masked_lm:
        position_ids = position_ids[0]
    return (packed.text, packed.types, packed.paddings, position_ids, packed.sep, packed.target,
            packed.loss_mask)


def build_uni_input_from_ids(text_a, text_b, answer, max_len, tokenizer, config=None, add_cls=True,
                             add_sep=False, add_piece=False, add_eos=True, mask_id=None):
    """Unidirectional variant: A = ``[ENC, mask]``; the whole text and the answer are generated in B
    (``[sop] + text + answer[:-1]`` at the mask's position), with loss only on the answer.
    Same return tuple as :func:`build_input_from_ids`."""
    mask_id = command_id(tokenizer, "MASK") if mask_id is None else mask_id
    part_a = ([command_id(tokenizer, "ENC")] if add_cls else []) + [mask_id]
    body = list(text_a)
    if add_sep:
        body.append(command_id(tokenizer, "sep"))
    if text_b is not None:
        body += list(text_b)
    answer = list(answer) if answer is not None else []
    room = max_len - len(part_a) - len(answer)
    if room < 1:
        raise ValueError(f"an answer of {len(answer)} tokens does not fit in {max_len}")
    body = body[-(room - 1):] if room > 1 else []   # keep the end of the text next to the answer
    sequence = body + answer
    part_b = [command_id(tokenizer, "sop")] + sequence[:-1]
    loss = [0] * len(body) + [1] * len(answer)
    packed = pack_glm_input(part_a, part_b, sequence, loss, mask_position=len(part_a) - 1, max_len=max_len,
                            pad_id=command_id(tokenizer, "eos"), block_position=_block_position(config))
    return (packed.text, packed.types, packed.paddings, packed.position_id, packed.sep, packed.target,
            packed.loss_mask)


def build_decoder_input(enc_ids, answer_ids, max_length, max_dec_len, tokenizer):
    """Decoder half for fast multi-token decoding: ``[sop] + answer[:-1]`` at the position of the
    first mask of ``enc_ids``, padded to ``max_dec_len``.  ``max_length`` is the encoder length (kept
    for the original signature).  Returns ``(ids, types, paddings, position_ids, masks, target_ids,
    loss_masks)`` where ``masks`` is the encoder length the decoder may attend to."""
    del max_length
    mask_position = _mask_position(list(enc_ids), set(mask_ids(tokenizer)), last=False)
    answer_ids = list(answer_ids)[:max_dec_len]
    part_b = [command_id(tokenizer, "sop")] + answer_ids[:-1]
    packed = pack_glm_input([], part_b, answer_ids, mask_position=mask_position, max_len=max_dec_len,
                            pad_id=command_id(tokenizer, "eos"))
    return (packed.text, packed.types, packed.paddings, packed.position_id, len(enc_ids), packed.target,
            packed.loss_mask)


def pack_glm_spans(part_a, spans, max_len=None, pad_id=0, target_pad_id=0, block_position=True):
    """Lay out one GLM sample whose part B fills several masks of A, one span after the other.

    ``spans``: ``(mask_position, inputs, targets)`` per span, in order; each span's tokens sit at its
    mask's position and count block positions from 1 (all 1 with ``block_position=False``), and every
    span token is scored.  ``max_len``: the length of the result; B is padded (text ``pad_id``, targets
    ``target_pad_id``, loss mask and positions 0) or, when the spans do not fit, cut at ``max_len`` --
    the original blank-infilling datasets truncate rather than refuse.  ``part_a`` must fit.
    """
    part_a = list(part_a)
    inputs, targets, positions, blocks = [], [], [], []
    for mask_position, span_inputs, span_targets in spans:
        span_inputs, span_targets = list(span_inputs), list(span_targets)
        if len(span_inputs) != len(span_targets):
            raise ValueError(f"a span has {len(span_inputs)} ids but {len(span_targets)} targets")
        inputs += span_inputs
        targets += span_targets
        positions += [mask_position] * len(span_inputs)
        blocks += list(range(1, len(span_inputs) + 1)) if block_position else [1] * len(span_inputs)
    sep = len(part_a)
    max_len = sep + len(inputs) if max_len is None else max_len
    if sep > max_len:
        raise ValueError(f"part A of {sep} tokens does not fit in {max_len}")
    room = max_len - sep
    scored = [1] * min(len(inputs), room)
    pad = room - len(scored)

    def fill(a_values, b_values, pad_value):
        return np.array(list(a_values) + list(b_values[:room]) + [pad_value] * pad, dtype=np.int64)

    return GLMInput(
        text=fill(part_a, inputs, pad_id),
        position_id=np.stack([fill(range(sep), positions, 0), fill([0] * sep, blocks, 0)]),
        target=fill([0] * sep, targets, target_pad_id),
        loss_mask=fill([0] * sep, scored, 0),
        sep=sep,
        types=np.zeros(max_len, dtype=np.int64),
        paddings=fill([1] * sep, scored, 0),
    )
