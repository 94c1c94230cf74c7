"""What to generate (:class:`DecodeConfig`), sampling a block, and decoding batches of built inputs.

A GLM block is decoded through the model's memory (hidden states or a key/value cache): the context
is encoded once, then every step feeds one token per row with the 2D position
``(mask_position, block_position)`` and the scalar separator ``0`` (every memory column is visible),
through :mod:`.steps`.  The model keeps the last ``max_memory_length`` positions of memory, as the
original does.  Beam search lives in :mod:`.beam_search` (imported here, never the other way).

The entry point for batches (a seq2seq evaluator, or anything holding already-built GLM inputs) is
:func:`generate`: ``tokens [B, L]`` ending with ``sop``, ``position_ids [B, 2, L]`` and the
separator(s) ``attention_mask``; it returns the generated ids of every row.

This module must not lay out inputs (``glm.inputs`` does) nor reach into the model's layers.
"""

from dataclasses import dataclass, field
from typing import List, Optional, Sequence

import torch

from .beam_search import beam_search_block
from .kv_cache import KVCacheModel, supports_kv_cache
from .sampling import min_length_processor, no_repeat_ngram_processor, sample_next
from .steps import GenerationInputError, check_memory, model_step


@dataclass
class DecodeConfig:
    """What to generate and how.

    ``max_new_tokens`` (``--out-seq-length`` / ``--tgt-seq-length``) counts tokens after ``sop``;
    ``end_ids`` end a row or a beam hypothesis (never part of the output; any other id, ``pad``
    included, is an ordinary token); ``num_tokens`` is the real vocabulary size
    (``tokenizer.num_tokens``): padded ids are never produced (``None`` allows them, as the original
    did).  ``num_beams > 1`` runs beam search, choosing candidates by top-k unless ``beam_sample``
    (the original's default without ``--select-topk``).  A hypothesis scores
    ``sum log p / max(n + length_offset, 1) ** length_penalty`` with ``n`` generated tokens; the same
    offset enters the stopping test (see :mod:`.beam_search`).  ``min_length`` and
    ``no_repeat_ngram_size`` look at the generated tokens only.

    The two original callers differ only in these options: blank filling (``generate_samples.py``,
    :meth:`from_config`) counts ``sop`` (``length_offset=1``) and ends on ``eop`` and ``eos``; the
    seq2seq evaluator (``tasks.eval_utils.seq2seq_decode_config``) counts generated tokens only
    (``length_offset=0``) and ends on ``eop`` only.
    """

    max_new_tokens: int = 256
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 0.0
    num_beams: int = 1
    length_penalty: float = 0.0
    no_repeat_ngram_size: int = 0
    min_length: int = 0
    beam_sample: bool = False
    end_ids: Sequence[int] = field(default_factory=tuple)
    pad_id: int = 0
    num_tokens: Optional[int] = None
    length_offset: int = 1

    def __post_init__(self):
        if self.max_new_tokens < 0:
            raise ValueError(f"max_new_tokens must be >= 0, got {self.max_new_tokens}")
        if self.num_beams < 1:
            raise ValueError(f"num_beams must be >= 1, got {self.num_beams}")
        if not 0.0 <= self.top_p <= 1.0:
            raise ValueError(f"top_p must lie in [0, 1], got {self.top_p}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0, got {self.top_k}")
        self.end_ids = tuple(int(i) for i in self.end_ids)

    @classmethod
    def from_config(cls, config, tokenizer, max_new_tokens=None, **overrides):
        """The flags of ``glm.arguments`` (``--out-seq-length``, ``--temperature``, ``--top-k``,
        ``--top-p``, ``--num-beams``, ``--length-penalty``, ``--no-repeat-ngram-size``,
        ``--min-tgt-length``; ``beam_sample`` comes as an override from the generation script's
        ``--beam-sample``) with the rules of the original's blank filling:
        ends on ``eop`` and ``eos``, ``sop`` counted in the length (``length_offset=1``)."""
        values = dict(max_new_tokens=config.generation.out_seq_length if max_new_tokens is None else max_new_tokens,
                      temperature=config.generation.temperature,
                      top_k=config.generation.top_k,
                      top_p=config.generation.top_p,
                      num_beams=config.generation.num_beams,
                      length_penalty=config.generation.length_penalty,
                      no_repeat_ngram_size=config.generation.no_repeat_ngram_size,
                      min_length=config.generation.min_tgt_length,
                      end_ids=(tokenizer.get_command("eop").Id, tokenizer.get_command("eos").Id),
                      pad_id=tokenizer.get_command("pad").Id,
                      num_tokens=tokenizer.num_tokens)
        values.update(overrides)
        return cls(**values)


def sample_block(model, logits, mems, mask_positions, next_block_position, config, generator=None):
    """Sample (or greedily pick) up to ``config.max_new_tokens`` ids per row.

    ``logits`` ``[B, V]`` predict the first token; each chosen token that is not an end id is fed
    at ``(mask_position, next_block_position + t)``.  A row stops *before* appending an end id; the
    last allowed token is never fed.  Returns ``(ids per row, mems)``.
    """
    batch = logits.size(0)
    outputs: List[List[int]] = [[] for _ in range(batch)]
    finished = torch.zeros(batch, dtype=torch.bool, device=logits.device)
    end_ids = torch.tensor(config.end_ids, dtype=torch.long, device=logits.device)
    for t in range(config.max_new_tokens):
        scores = logits.float()
        if config.min_length or config.no_repeat_ngram_size:
            scores = min_length_processor(scores, t, config.min_length, config.end_ids)
            scores = no_repeat_ngram_processor(scores, outputs, config.no_repeat_ngram_size)
        next_ids = sample_next(scores, config.temperature, config.top_k, config.top_p, config.num_tokens,
                               generator)
        finished |= torch.isin(next_ids, end_ids)
        for row, (token, done) in enumerate(zip(next_ids.tolist(), finished.tolist())):
            if not done:
                outputs[row].append(token)
        if bool(finished.all()) or t == config.max_new_tokens - 1:
            break
        check_memory(mems)
        feed = next_ids.masked_fill(finished, config.pad_id)
        logits, mems = model_step(model, feed, mask_positions, next_block_position + t, mems)
    return outputs, mems


def search_block(model, logits, mems, mask_positions, next_block_position, config, generator=None):
    """Sampling or beam search from the first-token ``logits``; returns ``(ids per row, scores or None, mems)``.
    After beam search the memory is that of the beams alive at the end (``None``): callers that go
    on decoding re-feed the chosen hypothesis with :func:`feed_block`."""
    if config.num_beams > 1:
        ids, scores = beam_search_block(model, logits, mems, mask_positions, next_block_position, config,
                                        generator)
        return ids, scores, None
    ids, mems = sample_block(model, logits, mems, mask_positions, next_block_position, config, generator)
    return ids, None, mems


@torch.no_grad()
def generate(model, tokens, position_ids, attention_mask, config, generator=None, kv_cache=True):
    """Decode one block per row from already-built GLM inputs (the seq2seq layout).

    ``tokens`` ``[B, L]`` end with ``sop``; ``position_ids`` ``[B, 2, L]`` (the last column is
    ``(mask_position, block_position)`` of that ``sop``); ``attention_mask`` the separator(s).  The
    whole input is encoded once; the last position's logits start the search and each further
    step feeds one token at ``(mask_position, block_position + 1 + t)``.
    The memory is never truncated here (the original passed ``return_memory=True``).  With
    ``kv_cache`` (default) a plain ``GLMModel`` decodes through :class:`~.kv_cache.KVCacheModel`.
    The logits must cover the whole vocabulary: with tensor parallelism build the model with
    ``parallel_output=False``.
    Returns ``(ids per row without end tokens, beam scores or None)``.
    """
    if tokens.dim() != 2 or position_ids.dim() != 3 or position_ids.size(1) != 2:
        raise GenerationInputError(
            f"generate expects tokens [B, L] and block position ids [B, 2, L]; got {list(tokens.shape)} and "
            f"{list(position_ids.shape)}")
    if kv_cache and supports_kv_cache(model):
        keep_memory = KVCacheModel(model, max_memory_length=0)
    else:
        def keep_memory(*inputs):  # the whole memory, whatever max_memory_length (finetuned models have 0)
            return model(*inputs, return_memory=True)

    logits, *mems = keep_memory(tokens, position_ids, attention_mask)
    check_memory(mems)
    mask_positions = position_ids[:, 0, -1]
    next_block = position_ids[:, 1, -1] + 1
    if bool((next_block != next_block[0]).any()):
        raise GenerationInputError("every row must end with its sop at the same block position")
    ids, scores, _ = search_block(keep_memory, logits[:, -1], mems, mask_positions, int(next_block[0]), config,
                                  generator)
    return ids, scores


__all__ = ["DecodeConfig", "generate", "sample_block", "search_block"]
