"""Filling ``[MASK]`` / ``[sMASK]`` / ``[gMASK]`` blanks left to right (spec section 10).

The context ``[CLS] + text (+ [eos] unless the text ends with [gMASK])`` is encoded once
(positions ``0..L-1``, block positions 0, fully bidirectional).  Then each mask, in ascending
position, is filled: ``sop`` is fed at ``(mask_position, 1)``, every further token at
``(mask_position, 2, 3, ...)`` with every memory column visible; the memory keeps growing, so a
later blank sees the context and every earlier filled blank.  A blank ends before ``eop``/``eos``
or after ``max_new_tokens`` tokens.  The output is the concatenation of ``sop + tokens`` of each
blank, printed as the original did (``<|startofpiece|> ... <|startofpiece|> ...``).

This module owns the blank-filling loop and its text helpers (context encoding, mask lookup, the
result records).  Positions come from ``glm.inputs``, steps from :mod:`.steps`, token choice from
:mod:`.decoding`; it must not parse flags or load models (``glm/generation/cli.py`` does).
"""

from dataclasses import dataclass, field
from typing import List, Optional

import torch

from ..inputs import MASK_NAMES, context_position_ids
from .decoding import DecodeConfig, search_block
from .kv_cache import with_kv_cache
from .steps import GenerationInputError, feed_block, model_step


def mask_token_ids(tokenizer, task_mask):
    """Ids that mark a blank: ``[MASK]``, plus ``[sMASK]``/``[gMASK]`` with ``--task-mask``."""
    names = MASK_NAMES if task_mask else ("MASK",)
    ids = {}
    for name in names:
        try:
            ids[tokenizer.get_command(name).Id] = name
        except (KeyError, AttributeError):
            continue
    return ids


def prepare_context_text(text, task_mask, auto_mask=True):
    """The original's convenience: a text without any ``MASK]`` gets `` [gMASK]`` (task-mask models)
    or `` [MASK]`` appended.  With ``auto_mask=False`` such a text is an error."""
    if "MASK]" in text:
        return text
    if not auto_mask:
        raise GenerationInputError(
            f"the context has no blank to fill: put [MASK]{', [sMASK] or [gMASK]' if task_mask else ''} "
            f"where text should be generated: {text[:80]!r}")
    return text + (" [gMASK]" if task_mask else " [MASK]")


def encode_context(tokenizer, text, seq_length=None):
    """``[CLS] + ids (+ [eos] unless the text ends with [gMASK])``; a context of ``seq_length`` tokens
    or more is refused, saying by how much it is too long."""
    ids = [tokenizer.get_command("ENC").Id] + list(tokenizer.EncodeAsIds(text).tokenization)
    if not text.endswith("[gMASK]"):
        ids.append(tokenizer.get_command("eos").Id)
    if seq_length is not None and len(ids) >= seq_length:
        raise GenerationInputError(
            f"the context is {len(ids)} tokens long, {len(ids) - seq_length + 1} more than the model accepts "
            f"(--seq-length {seq_length}: at most {seq_length - 1} tokens, [CLS] and [eos] included)")
    return ids


@dataclass
class Blank:
    mask_position: int
    mask_token: str
    generated_ids: List[int]  # starts with sop
    generated_text: str
    score: Optional[float] = None

    def to_json(self):
        out = dict(mask_position=self.mask_position, mask_token=self.mask_token,
                   generated_ids=self.generated_ids, generated_text=self.generated_text)
        if self.score is not None:
            out["score"] = self.score
        return out


@dataclass
class FillResult:
    context: str
    context_ids: List[int]
    blanks: List[Blank] = field(default_factory=list)
    output_ids: List[int] = field(default_factory=list)
    output_text: str = ""

    @property
    def final_token_ids(self):
        return self.context_ids + self.output_ids

    def to_json(self):
        return dict(context=self.context, context_ids=self.context_ids, blanks=[b.to_json() for b in self.blanks],
                    output_ids=self.output_ids, output_text=self.output_text)


@torch.no_grad()
def fill_blanks(model, tokenizer, context_ids, config: DecodeConfig, task_mask=False, generator=None,
                context=None, device=None, kv_cache=True):
    """Fill every blank of ``context_ids`` (a list of ids from :func:`encode_context`) left to right.

    ``model`` must return memory (``max_memory_length > 0``; generation uses ``seq_length - 1``) and
    full-vocabulary logits.  With ``config.num_beams > 1`` each blank is beam-searched and its best
    hypothesis is fed back in one call before the next blank.  With ``kv_cache`` (default) a plain
    ``GLMModel`` decodes through :class:`~.kv_cache.KVCacheModel` (same results, faster steps);
    anything else is called as given with its hidden-state memory.
    """
    masks = mask_token_ids(tokenizer, task_mask)
    positions = [(i, masks[t]) for i, t in enumerate(context_ids) if t in masks]
    if not positions:
        allowed = ", ".join(f"[{n}]" for n in masks.values()) or "none"
        raise GenerationInputError(
            f"the context has no blank to fill (mask tokens of this tokenizer/flags: {allowed}"
            f"{'' if task_mask else '; [sMASK]/[gMASK] need --task-mask'})")
    if device is None:
        device = next(model.parameters()).device if hasattr(model, "parameters") else torch.device("cpu")
    model = with_kv_cache(model, kv_cache)
    length = len(context_ids)
    ids = torch.tensor([context_ids], dtype=torch.long, device=device)
    _, *mems = model(ids, context_position_ids(length, device), torch.tensor([length], device=device))
    if not mems:
        raise GenerationInputError("the model returned no memory: build it with max_memory_length > 0")

    sop = tokenizer.get_command("sop").Id
    result = FillResult(context=context if context is not None else tokenizer.DecodeIds(context_ids),
                        context_ids=list(context_ids))
    sop_tensor = torch.tensor([sop], dtype=torch.long, device=device)
    for position, name in positions:
        mask_position = torch.tensor([position], dtype=torch.long, device=device)
        before = mems
        logits, mems = model_step(model, sop_tensor, mask_position, 1, mems)
        outputs, scores, mems = search_block(model, logits, mems, mask_position, 2, config, generator)
        tokens = outputs[0]
        if mems is None:  # beam search: extend the memory with the chosen hypothesis
            block = torch.tensor([[sop] + tokens], dtype=torch.long, device=device)
            _, mems = feed_block(model, block, mask_position, 1, before)
        generated = [sop] + tokens
        result.blanks.append(Blank(position, f"[{name}]", generated, tokenizer.DecodeIds(tokens),
                                   None if scores is None else scores[0]))
        result.output_ids.extend(generated)
    result.output_text = tokenizer.DecodeIds(result.output_ids)
    return result


def fill_text(model, tokenizer, text, config, task_mask=False, seq_length=None, auto_mask=True, generator=None,
              device=None, kv_cache=True):
    """Text in, :class:`FillResult` out (adds a mask if none, encodes, checks the length, fills)."""
    text = prepare_context_text(text, task_mask, auto_mask)
    ids = encode_context(tokenizer, text, seq_length)
    return fill_blanks(model, tokenizer, ids, config, task_mask=task_mask, generator=generator, context=text,
                       device=device, kv_cache=kv_cache)
