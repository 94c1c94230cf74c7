"""Turning next-token logits into token ids: vocabulary restriction, temperature, top-k, top-p,
greedy and multinomial choice.  Every function works on a batch ``[B, V]``.

Fixes relative to the original (spec section 15): top-p works (and works for any batch size), and
ids of the padded part of the vocabulary (``>= tokenizer.num_tokens``) can never be chosen.
"""

import torch

NEG_INF = float("-inf")


def restrict_vocab(logits, num_tokens):
    """Hide the padded vocabulary rows: ids ``>= num_tokens`` get ``-inf`` (returns a new tensor)."""
    if num_tokens is None or num_tokens >= logits.size(-1):
        return logits
    if num_tokens <= 0:
        raise ValueError(f"num_tokens must be positive, got {num_tokens}")
    logits = logits.clone()
    logits[..., num_tokens:] = NEG_INF
    return logits


def top_k_filter(logits, top_k):
    """Keep the ``top_k`` largest logits of each row (ties at the threshold are kept), ``-inf`` elsewhere."""
    if top_k is None or top_k <= 0 or top_k >= logits.size(-1):
        return logits
    threshold = torch.topk(logits, top_k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < threshold, NEG_INF)


def top_p_filter(logits, top_p):
    """Nucleus filter, row by row: keep the most likely tokens whose probability mass *before*
    them is at most ``top_p`` (so the most likely token always survives)."""
    if top_p is None or top_p <= 0.0 or top_p >= 1.0:
        return logits
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    probs = torch.softmax(sorted_logits, dim=-1)
    mass_before = torch.cumsum(probs, dim=-1) - probs
    remove_sorted = mass_before > top_p
    remove_sorted[..., 0] = False
    remove = torch.zeros_like(remove_sorted).scatter(-1, order, remove_sorted)
    return logits.masked_fill(remove, NEG_INF)


def filter_logits(logits, top_k=0, top_p=0.0, num_tokens=None):
    """Vocabulary restriction, then top-k, then top-p (the original's order)."""
    logits = restrict_vocab(logits, num_tokens)
    logits = top_k_filter(logits, top_k)
    return top_p_filter(logits, top_p)


def greedy(logits, num_tokens=None):
    """Arg-max ids ``[B]`` over the real vocabulary."""
    return restrict_vocab(logits, num_tokens).argmax(dim=-1)


def sample_next(logits, temperature=1.0, top_k=0, top_p=0.0, num_tokens=None, generator=None):
    """One id per row ``[B]``: ``logits / temperature`` -> vocabulary restriction -> top-k -> top-p ->
    softmax -> multinomial.  ``top_k == 1`` or ``temperature == 0`` is greedy (the arg-max, without
    touching the random stream; the original's multinomial over a one-hot distribution gives the same)."""
    if logits.dim() != 2:
        raise ValueError(f"logits must be [batch, vocab], got shape {list(logits.shape)}")
    logits = logits.float()
    if top_k == 1 or temperature == 0:
        return greedy(logits, num_tokens)
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    logits = filter_logits(logits / temperature, top_k, top_p, num_tokens)
    probs = torch.softmax(logits, dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


def min_length_processor(log_probs, cur_len, min_length, end_ids):
    """Forbid the end tokens while fewer than ``min_length`` tokens were generated."""
    if min_length and cur_len < min_length:
        log_probs = log_probs.clone()
        log_probs[:, list(end_ids)] = NEG_INF
    return log_probs


def banned_ngram_tokens(history, n):
    """Tokens that would repeat an n-gram of ``history`` (a list of ids) if appended."""
    if n <= 0 or len(history) + 1 < n:
        return []
    prefix = tuple(history[len(history) - n + 1:]) if n > 1 else ()
    banned = []
    for start in range(len(history) - n + 1):
        if tuple(history[start:start + n - 1]) == prefix:
            banned.append(history[start + n - 1])
    return banned


def no_repeat_ngram_processor(log_probs, histories, n):
    """Forbid, per row, every token that would complete an n-gram already in that row's generated
    tokens (``histories``: one list of ids per row)."""
    if n <= 0:
        return log_probs
    out = None
    for row, history in enumerate(histories):
        banned = banned_ngram_tokens(history, n)
        if banned:
            if out is None:
                out = log_probs.clone()
            out[row, banned] = NEG_INF
    return log_probs if out is None else out
