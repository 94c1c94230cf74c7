"""Decoding for GLM: sampling, beam search and blank filling over the model's memory.

* :mod:`.sampling` -- vocabulary restriction, temperature, top-k, top-p, greedy (any batch size);
* :mod:`.steps` -- one-token (or one-run) steps through the memory, shared by every decoder;
* :mod:`.decoding` -- :class:`DecodeConfig`, sampling, and
  :func:`generate` for batches of already-built ``(tokens, position_ids, sep)`` inputs (seq2seq);
* :mod:`.kv_cache` -- a key/value cache equivalent to the model's hidden-state memory;
* :mod:`.beam_search` -- beam search (top-k candidates by default, sampling as an option);
* :mod:`.blank_filling` -- ``[MASK]``/``[sMASK]``/``[gMASK]`` filled left to right.

See docs/generation.md.
"""

from .sampling import filter_logits, greedy, restrict_vocab, sample_next, top_k_filter, top_p_filter
from .steps import GenerationInputError, feed_block, model_step
from .decoding import DecodeConfig, generate, sample_block, search_block
from .kv_cache import KVCacheModel, with_kv_cache
from .beam_search import BeamHypotheses, beam_search_block
from .blank_filling import (Blank, FillResult, encode_context, fill_blanks, fill_text, mask_token_ids,
                            prepare_context_text)

__all__ = ["filter_logits", "greedy", "restrict_vocab", "sample_next", "top_k_filter", "top_p_filter",
           "DecodeConfig", "KVCacheModel", "with_kv_cache", "GenerationInputError", "feed_block", "generate", "model_step", "sample_block",
           "search_block", "BeamHypotheses", "beam_search_block", "Blank", "FillResult", "encode_context",
           "fill_blanks", "fill_text", "mask_token_ids", "prepare_context_text"]
