"""Feeding a decoder's tokens through the model's memory, one step or one run at a time.

Sampling (:mod:`.decoding`), beam search (:mod:`.beam_search`) and blank filling all grow a GLM
block the same way: each new token is part B of the sample whose part A is already in the memory,
fed at ``(mask_position, block_position)`` (laid out by :func:`glm.inputs.block_position_ids`) with the
scalar separator ``0`` (every memory column visible).  This module owns those steps and the error a
decoder raises for inputs it cannot use; it sits below the decoders so that they import it one way.
It must not choose tokens (that is the decoders' job) nor build a model.
"""

import torch

from ..inputs import block_position_ids


class GenerationInputError(ValueError):
    """A context the decoder cannot use (too long, no mask, ...); the message says why."""


def step_inputs(tokens, mask_positions, block_position):
    """Model inputs for one incremental step: ids ``[B, 1]``, positions ``[B, 2, 1]`` =
    ``(mask_position, block_position)``, separator ``[0]``."""
    tokens = tokens.view(-1, 1)
    positions = block_position_ids(mask_positions, block_position, 1, device=tokens.device)
    return tokens, positions, torch.zeros(1, dtype=torch.long, device=tokens.device)


def model_step(model, tokens, mask_positions, block_position, mems):
    """Feed one token per row; returns the next-token logits ``[B, V]`` and the grown memory."""
    ids, positions, mask = step_inputs(tokens, mask_positions, block_position)
    logits, *mems = model(ids, positions, mask, *mems)
    return logits[:, -1], mems


def feed_block(model, tokens, mask_position, first_block_position, mems):
    """Append a whole run of block tokens ``[B, n]`` to the memory in one call (causal among
    themselves, every memory column visible): the memory a token-by-token feed would leave."""
    batch, n = tokens.shape
    positions = block_position_ids(mask_position.reshape(-1).expand(batch), first_block_position, n,
                                   device=tokens.device)
    logits, *mems = model(tokens, positions, torch.zeros(1, dtype=torch.long, device=tokens.device), *mems)
    return logits[:, -1], mems


def check_memory(mems):
    """Refuse a model that returned no memory: decoding reuses the encoded context through it."""
    if not mems:
        raise GenerationInputError(
            "the model returned no memory: build it with max_memory_length > 0 (generation uses "
            "seq_length - 1) so that decoding can reuse the encoded context")
