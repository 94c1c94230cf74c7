"""The task side of the GLM input layout: tokenizer-aware builders over :mod:`glm.inputs` (spec 9.2).

The layout itself (part A, part B, 2D positions, ``sep``, targets and loss mask) is owned by
:mod:`glm.inputs`; this module adds what only tasks know: command tokens (``[ENC]``, ``[sop]``,
``[eos]``, the masks), where a task's answer goes, and the original's entry points
``build_input_from_ids``, ``build_uni_input_from_ids`` and ``build_decoder_input``, which keep their
signatures and return tuples.  ``pack_glm_input``/``pack_glm_spans``/``GLMInput`` are re-exported
for the task packages that import them from here.

It must not lay out positions or targets itself (extend :mod:`glm.inputs` instead), nor touch the
model, process groups or training state.
"""

from glm.inputs import MASK_NAMES, GLMInput, pack_glm_input, pack_glm_spans

__all__ = ["GLMInput", "pack_glm_input", "pack_glm_spans", "MASK_NAMES", "command_id", "mask_ids", "build_part_a",
           "build_input_from_ids", "build_uni_input_from_ids", "build_decoder_input"]


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


def _mask_position(ids, mask_id_set, last=True):
    found = [i for i, t in enumerate(ids) if t in mask_id_set]
    if not found:
        raise ValueError("part A contains no mask token, so part B has no position to fill")
    return found[-1] if last else found[0]


def _block_position(config):
    """2D positions unless ``--no-block-position`` (no configuration: the GLM default)."""
    return config is None or not config.objective.no_block_position


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
        if config is not None and config.objective.sentinel_token:
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
    if config is not None and config.objective.masked_lm:
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
