"""Beam search over the model's memory (spec section 9.4), with the original's scoring and stopping rules.

Per step: logits -> real-vocabulary restriction -> top-k/top-p (``--top-k``/``--top-p``, off by
default) -> log-softmax -> minimum length (end ids forbidden before ``--min-tgt-length`` generated
tokens) -> no-repeat n-grams (over the generated tokens) -> plus the beam's running score; then
``2 * num_beams`` candidates, chosen by **top-k by default** (the original sampled them unless
``--select-topk`` was given; ``beam_sample=True`` keeps that behaviour), sorted by score.

The rules below are those of the original's beam scorer (used by both its seq2seq evaluator and
``generate_samples.py``); what differs between those two callers is a :class:`~.decoding.DecodeConfig`
option, not a second implementation:

* **hypothesis score** = ``sum log p / max(n + length_offset, 1) ** length_penalty``, ``n`` generated
  tokens (end token excluded).  ``length_offset`` is 0 for the seq2seq evaluator (its generated tensor
  starts empty) and 1 for blank filling (its tensor starts with ``sop``);
* **what ends a hypothesis**: a candidate whose token is in ``end_ids`` and that ranks among the
  first ``num_beams`` candidates becomes a finished hypothesis (one ranked lower is dropped); any
  other token, ``pad`` included when it is not an end id, continues a beam;
* **when a row is done**: once it holds ``num_beams`` hypotheses and the worst of them scores at
  least ``max(all 2 * num_beams candidate sums of the step) / max(t + length_offset, 1) ** length_penalty``,
  ``t`` tokens generated *before* the step (the original divided by ``t ** length_penalty`` with
  the same offset; the clamp at 1 only avoids its division by zero at ``t = 0``);
* after ``max_new_tokens`` steps the live beams of unfinished rows join the hypotheses.

Initial scores: 0 for beam 0 and ``-1e9`` for the others, so the first step expands beam 0 only.

This module owns beam search only; it feeds tokens through :mod:`.steps` and must not import
:mod:`.decoding` (which imports it).
"""

import torch

from .sampling import filter_logits, min_length_processor, no_repeat_ngram_processor
from .steps import check_memory, model_step

NEG_INF = float("-inf")


class BeamHypotheses:
    """The best ``num_beams`` finished hypotheses of one row."""

    def __init__(self, num_beams, length_penalty, length_offset):
        self.num_beams = num_beams
        self.length_penalty = length_penalty
        self.length_offset = length_offset
        self.items = []  # (score, ids)

    def normalise(self, sum_logprobs, length):
        return sum_logprobs / (max(length + self.length_offset, 1) ** self.length_penalty)

    @property
    def worst(self):
        return min(score for score, _ in self.items) if self.items else NEG_INF

    def add(self, ids, sum_logprobs):
        if sum_logprobs == NEG_INF:
            return
        score = self.normalise(sum_logprobs, len(ids))
        if len(self.items) < self.num_beams or score > self.worst:
            self.items.append((score, list(ids)))
            if len(self.items) > self.num_beams:
                self.items.remove(min(self.items, key=lambda item: item[0]))

    def is_done(self, best_candidate_sum, generated_before_step):
        """The original's stopping test: full, and the worst kept hypothesis at least as good as the
        step's best candidate sum normalised at the length *before* the step."""
        if len(self.items) < self.num_beams:
            return False
        return self.worst >= self.normalise(best_candidate_sum, generated_before_step)

    def best(self):
        """The best hypothesis; among equal scores the one added last, as the original's stable sort
        then ``pop()`` chose (and :meth:`add` drops the earliest of equally bad ones, as it did)."""
        if not self.items:
            return NEG_INF, []
        return max(reversed(self.items), key=lambda item: item[0])


def beam_search_block(model, logits, mems, mask_positions, next_block_position, config, generator=None):
    """Beam search for every row of ``logits`` ``[B, V]`` (the first-token logits; ``mems`` the
    matching memory).  Returns ``(best ids per row, best normalised score per row)``."""
    k = config.num_beams
    batch, vocab = logits.shape
    device = logits.device
    logits = logits.repeat_interleave(k, dim=0)
    mems = [m.repeat_interleave(k, dim=0) for m in mems]
    mask_positions = mask_positions.to(device).repeat_interleave(k, dim=0)
    beam_scores = torch.zeros(batch, k, device=device)
    beam_scores[:, 1:] = -1e9
    beam_scores = beam_scores.view(-1)
    histories = [[] for _ in range(batch * k)]
    hyps = [BeamHypotheses(k, config.length_penalty, config.length_offset) for _ in range(batch)]
    done = [False] * batch
    end_ids = set(config.end_ids)

    for t in range(config.max_new_tokens):
        scores = filter_logits(logits.float(), config.top_k, config.top_p, config.num_tokens)
        scores = torch.log_softmax(scores, dim=-1)
        scores = min_length_processor(scores, t, config.min_length, config.end_ids)
        scores = no_repeat_ngram_processor(scores, histories, config.no_repeat_ngram_size)
        scores = (scores + beam_scores.unsqueeze(1)).view(batch, k * vocab)
        width = min(2 * k, k * vocab)
        if config.beam_sample:
            probs = torch.softmax(scores, dim=-1).nan_to_num(0.0)
            probs[probs.sum(-1) == 0] = 1.0
            picked = torch.multinomial(probs, width, generator=generator)
            cand_scores = scores.gather(1, picked)
            cand_scores, order = torch.sort(cand_scores, dim=1, descending=True)
            cand_index = picked.gather(1, order)
        else:
            cand_scores, cand_index = torch.topk(scores, width, dim=1)
        cand_scores, cand_index = cand_scores.tolist(), cand_index.tolist()

        next_tokens, next_scores, sources = [], [], []
        for b in range(batch):
            chosen = []
            if not done[b]:
                for rank, (score, index) in enumerate(zip(cand_scores[b], cand_index[b])):
                    if score == NEG_INF:
                        break
                    source = b * k + index // vocab
                    token = index % vocab
                    if token in end_ids:
                        if rank < k:
                            hyps[b].add(histories[source], score)
                        continue
                    chosen.append((token, score, source))
                    if len(chosen) == k:
                        break
            while len(chosen) < k:  # finished row, or too few live candidates: dead beams
                chosen.append((config.pad_id, NEG_INF, b * k))
            for token, score, source in chosen:
                next_tokens.append(token)
                next_scores.append(score)
                sources.append(source)
            if not done[b]:
                no_live_beam = all(score == NEG_INF for _, score, _ in chosen)
                # cand_scores[b] is sorted: its first entry is the step's best candidate, end ids included.
                done[b] = no_live_beam or hyps[b].is_done(cand_scores[b][0], t)

        histories = [histories[s] + [tok] for tok, s in zip(next_tokens, sources)]
        beam_scores = torch.tensor(next_scores, device=device)
        if all(done) or t == config.max_new_tokens - 1:
            break
        check_memory(mems)
        if sources != list(range(batch * k)):
            source_index = torch.tensor(sources, device=device)
            mems = [m[source_index] for m in mems]  # (index_select is many times slower on CPU here)
        feed = torch.tensor(next_tokens, dtype=torch.long, device=device)
        logits, mems = model_step(model, feed, mask_positions, next_block_position + t, mems)

    for b in range(batch):
        if not done[b]:
            for j in range(b * k, (b + 1) * k):
                hyps[b].add(histories[j], float(beam_scores[j]))
    results = [hyps[b].best() for b in range(batch)]
    return [ids for _, ids in results], [score for score, _ in results]
