"""The GLM pretraining objective: autoregressive blank infilling (spec §6.4).

`ConstructBlockStrategy.construct_blocks` is the collate function of GLM pretraining. It takes a list of
samples (`{'text': int array, 'loss_mask': int array}`, each starting with the `ENC` token, as produced by
the block dataset of spec §6.3) and turns every sample into

    Part A (the corrupted context, attended bidirectionally)  ‖  Part B (the removed spans, generated)

Each removed span is replaced in Part A by one mask token; in Part B it appears as `[sop] + span` (inputs) and
`span + [eop]` (targets). Positions are 2-D: row 0 is the position in the corrupted text (a span's tokens all
carry the position of its mask token), row 1 the position inside the span (0 in Part A, 1, 2, ... in Part B).
One of three modes is drawn per batch: token spans (`bert`), whole sentences (`sentence`) or one long span /
document suffix (`gpt`). See docs/objective.md for the full description and every flag.

Deviations from the original implementation (both on purpose, both documented in docs/objective.md):

1. Seeding. Every random choice of a batch, including the `block_mask_prob` ([dBLOCK]) draws that the
   original took from the unseeded process-global `random`, comes from one `random.Random` per batch.
   * If the samples carry an `'iteration'` key (the global batch index, set by the data pipeline), the seed is
     `derive_batch_seed(config.training.seed, iteration, data_parallel_rank)`: the first 8 bytes (little-endian) of
     SHA-256 over the text `"glm-blocklm/<seed>/<iteration>/<rank>"`. Batches are then reproducible whatever
     the number of loader workers, and a resumed run sees the same batches.
   * Without it, the original per-call counter scheme is used:
     `random.Random((count * num_workers + worker_id) * dp_world + dp_rank)`, `count` incremented per call.
   * `compat=True` keeps the consumption order of the batch RNG identical to the original's for everything
     the original drew from it (mode, splits, span lengths, placements, shuffles, random positions, context
     masks) and takes the [dBLOCK] draws from the same batch RNG *after* the batch is complete, in the
     original's order (sample, target span, token). With `block_mask_prob == 0` a compat batch is therefore
     bit-identical to the original's; with `block_mask_prob > 0` everything but *which* Part-B tokens become
     [dBLOCK] is identical (the original's choice depended on the global `random` state, which no seed of
     ours can reproduce). `legacy_block_mask_rng` (any object with `.random()`) replays such a recording by
     drawing the [dBLOCK] decisions from it instead - for reproduction tests only.
   * Default (`compat=False`): the [dBLOCK] draws come from the batch RNG right after each sample is built.
2. Unfit samples. In token mode the original silently drops a sample whose spans do not all fit into its
   documents, so the batch shrinks. Here such a sample gets new span lengths (up to `max_span_redraws`
   tries); if none fits, the spans of the last try that did fit are kept (fewer spans, possibly none).
   The counters `unfit_samples`, `span_redraws`, `reduced_samples` and `dropped_samples` are kept for
   logging. `drop_unfit_samples=True` restores the original dropping.

Other choices where the original crashed or was undefined: see `docs/objective.md`, section "Edge cases".

This module owns the pretraining objective: which spans are drawn and how a batch is seeded and padded.
The layout of a sample (Part A, Part B, 2-D positions, targets, loss mask, separator) is `glm.inputs.lay_out`'s;
the data-parallel rank and world size arrive as constructor arguments. It must not read process groups,
the model or the flags beyond the `config` fields named above.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import math
import random
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np
import torch

from glm.inputs import lay_out

logger = logging.getLogger(__name__)

__all__ = ['ConstructBlockStrategy', 'build_block_strategy', 'derive_batch_seed', 'counter_seed',
           'span_length_weights', 'SENTENCE_END_MARKS']

# A token ends a sentence when its string contains one of these (the collator's list includes the Chinese
# punctuation that the dataset's list lacks, spec §15).
SENTENCE_END_MARKS = ('.', '?', '!', ';', ':', '。', '？', '！', '；', '…', '\n')

def derive_batch_seed(seed: int, iteration: int, dp_rank: int) -> int:
    """Seed of the batch RNG for global batch `iteration` on data-parallel rank `dp_rank`.

    A hash rather than arithmetic so that neighbouring (seed, iteration, rank) triples give unrelated
    streams and no two triples collide in practice."""
    text = f'glm-blocklm/{int(seed)}/{int(iteration)}/{int(dp_rank)}'.encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], 'little')


def counter_seed(count: int, worker_id: int, num_workers: int, dp_rank: int, dp_world: int) -> int:
    """The original's batch seed: unique per (call count, loader worker, data-parallel rank)."""
    return (count * num_workers + worker_id) * dp_world + dp_rank


def span_length_weights(average_block_length: float, max_block_length: int) -> list[float]:
    """Poisson(λ = average_block_length) pmf at 1 .. max_block_length-1: the (unnormalised) sampling
    weights of a span length. Computed as exp(k log λ - λ - log k!) like scipy's `poisson.pmf`."""
    lam = float(average_block_length)
    return [math.exp(k * math.log(lam) - lam - math.lgamma(k + 1)) for k in range(1, max_block_length)]


@dataclass
class _Built:
    """One collated sample before padding."""
    tokens: np.ndarray
    targets: np.ndarray
    loss_mask: np.ndarray
    position_ids: np.ndarray  # [2, L] (or [L] for the masked-LM ablation)
    sep: int
    # Part-B positions eligible for [dBLOCK] (token mode only), in the original's draw order.
    block_mask_candidates: list = field(default_factory=list)


class ConstructBlockStrategy:
    """Collate function of GLM pretraining (spec §6.4); see the module docstring for the deviations.

    Arguments are those of the original (`config` supplies `eod_token` and `seed`; `tokenizer` the command
    ids and token strings). Extra keyword-only arguments:
      compat: keep the original's RNG consumption order (see module docstring).
      drop_unfit_samples: drop token-mode samples whose spans do not fit (the original), instead of
        re-drawing their span lengths.
      max_span_redraws: how many new span-length draws an unfit sample gets before falling back to fewer spans.
      legacy_block_mask_rng: object with `.random()` used for the [dBLOCK] draws instead of the batch RNG
        (replays recordings of the original, whose draws came from the global `random`).
      seed: base seed for iteration-keyed batches (default `config.training.seed`, else 1234).
      data_parallel_rank, data_parallel_world_size: where this process sits among the data-parallel
        ranks (they key the batch seeds); the caller reads them from its process groups.
    """

    def __init__(self, config, tokenizer, max_seq_length, bert_prob=1.0, gap_sentence_prob=0.0, gpt_infill_prob=0.5,
                 gpt_min_ratio=0.5, bert_ratio=0.15, gap_sentence_ratio=0.15, average_block_length=3,
                 max_block_length=40, block_mask_prob=0.0, context_mask_ratio=0.0, context_mask_range=3,
                 short_seq_prob=0.0, single_span_prob=0.0, block_position_encoding=True, encoder_decoder=False,
                 shuffle_blocks=True, sentinel_token=False, task_mask=False, random_position=False, masked_lm=False,
                 *, compat=False, drop_unfit_samples=False, max_span_redraws=10, legacy_block_mask_rng=None,
                 seed=None, data_parallel_rank=0, data_parallel_world_size=1):
        _check_probability('bert_prob', bert_prob)
        _check_probability('gap_sentence_prob', gap_sentence_prob)
        if bert_prob + gap_sentence_prob > 1.0 + 1e-10:
            raise ValueError(f'bert_prob + gap_sentence_prob = {bert_prob + gap_sentence_prob} exceeds 1 '
                             '(the generation probability is 1 - bert_prob - gap_sentence_prob)')
        if encoder_decoder:
            # The original's encoder-decoder collate returned ragged lists that nothing consumed (spec §15).
            raise ValueError('encoder_decoder=True is not supported: it was a dead path in the original GLM')
        if masked_lm and bert_prob < 1.0:
            raise ValueError('masked_lm (the BERT-style ablation) only exists in token mode; use bert_prob=1.0')
        if average_block_length <= 0 or max_block_length < 2:
            raise ValueError('average_block_length must be > 0 and max_block_length >= 2')
        if max_seq_length < 2:
            raise ValueError(f'max_seq_length must be at least 2, got {max_seq_length}')
        if short_seq_prob > 0 and max_seq_length < 34:
            # split_samples draws window lengths from [32, max_seq_length - 1).
            raise ValueError(f'short_seq_prob needs max_seq_length >= 34, got {max_seq_length}')

        self.tokenizer = tokenizer
        self.max_seq_length = int(max_seq_length)
        self.bert_prob = bert_prob
        self.gap_sentence_prob = gap_sentence_prob
        self.gpt_prob = 1.0 - bert_prob - gap_sentence_prob
        self.infill_prob = gpt_infill_prob  # named as in the original; it is the *suffix* probability
        self.gpt_min_ratio = gpt_min_ratio
        self.bert_ratio = bert_ratio
        self.gap_sentence_ratio = gap_sentence_ratio
        self.span_lengths = list(range(1, max_block_length))
        # Cumulative weights, accumulated exactly like random.choices does, so draws match the original.
        self.span_cum_weights = list(itertools.accumulate(span_length_weights(average_block_length, max_block_length)))
        self.block_mask_prob = block_mask_prob
        self.context_mask_ratio = context_mask_ratio
        self.context_mask_range = context_mask_range
        self.short_seq_prob = short_seq_prob
        self.single_span_prob = single_span_prob
        self.block_position_encoding = block_position_encoding
        self.encoder_decoder = encoder_decoder
        self.shuffle_blocks = shuffle_blocks
        self.sentinel_token = sentinel_token
        self.task_mask = task_mask
        self.random_position = random_position
        self.masked_lm = masked_lm

        self.compat = compat
        self.drop_unfit_samples = drop_unfit_samples
        self.max_span_redraws = int(max_span_redraws)
        self.legacy_block_mask_rng = legacy_block_mask_rng
        self.seed = seed if seed is not None else config.training.seed
        if not 0 <= data_parallel_rank < data_parallel_world_size:
            raise ValueError(f'data_parallel_rank {data_parallel_rank} is not in [0, {data_parallel_world_size})')
        self.data_parallel_rank = int(data_parallel_rank)
        self.data_parallel_world_size = int(data_parallel_world_size)

        cmd = self._command_id
        self.eod_token = config.data.eod_token
        if self.eod_token is None:
            self.eod_token = cmd('eos')
        self.enc_id, self.mask_id, self.sop_id, self.eop_id = cmd('ENC'), cmd('MASK'), cmd('sop'), cmd('eop')
        self.generation_mask = cmd('gMASK') if task_mask else self.mask_id
        self.gap_sentence_mask = cmd('sMASK') if task_mask else self.mask_id
        needs_dblock = block_mask_prob > 0 or context_mask_ratio > 0
        self.dblock_id = cmd('dBLOCK') if needs_dblock else None
        self._sentence_end_cache: dict[int, bool] = {}

        # Batch counter of the original seeding scheme, and the counters for logging.
        self.count = 0
        self.unfit_samples = 0     # token-mode samples whose first span draw did not fit
        self.span_redraws = 0      # extra span-length draws made for them
        self.reduced_samples = 0   # samples that kept fewer spans after all re-draws failed
        self.dropped_samples = 0   # samples dropped (drop_unfit_samples=True)
        logger.info('BlockLM objective: bert %.2f, sentence %.2f, gpt %.2f (suffix prob %.2f), avg span %s, '
                    'block mask %.2f, short seq %.2f, single span %.2f, task mask %s',
                    bert_prob, gap_sentence_prob, self.gpt_prob, gpt_infill_prob, average_block_length,
                    block_mask_prob, short_seq_prob, single_span_prob, task_mask)

    # ------------------------------------------------------------------------------------------- public

    def __call__(self, samples):
        return self.construct_blocks(samples)

    @property
    def stats(self) -> dict:
        """Counters for logging: unfit/re-drawn/reduced/dropped token-mode samples and batches built."""
        return {'batches': self.count, 'unfit_samples': self.unfit_samples, 'span_redraws': self.span_redraws,
                'reduced_samples': self.reduced_samples, 'dropped_samples': self.dropped_samples}

    def construct_blocks(self, samples: Sequence[dict]) -> dict:
        """Collate `samples` into one GLM batch: a dict of int64 tensors `text`, `target`, `loss_mask`
        `[B, L]`, `position_id` `[B, 2, L]` (`[B, L]` for masked_lm), `attention_mask` `[B]` (the length of
        Part A per sample) and the string `mode` (`bert`, `sentence` or `gpt`)."""
        rng = self._batch_rng(samples)
        samples = _normalise_samples(samples)
        # The draw order below (split?, single span?, mode) is the original's.
        if rng.random() < self.short_seq_prob:
            samples = self.split_samples(samples, rng)
        single_span = rng.random() < self.single_span_prob
        rand = 0.0 if single_span else rng.random()
        if rand < self.bert_prob:
            mode, built = 'bert', self._token_mode(samples, rng, single_span)
        elif rand < self.bert_prob + self.gap_sentence_prob:
            mode, built = 'sentence', [self._sentence_sample(s, rng) for s in samples]
        else:
            mode, built = 'gpt', self._generation_mode(samples, rng)
        if not built:
            raise ValueError('every sample of the batch was dropped (drop_unfit_samples=True and no sample '
                             'could fit its spans)')
        return self._pad_batch(built, mode)

    # ---------------------------------------------------------------------------------------- seeding

    def _batch_rng(self, samples) -> random.Random:
        """One RNG per batch: keyed by the samples' 'iteration' when present, else by the call counter."""
        if len(samples) == 0:
            raise ValueError('construct_blocks needs at least one sample')
        iterations = {int(s['iteration']) for s in samples if 'iteration' in s}
        dp_rank, dp_world = self.data_parallel_rank, self.data_parallel_world_size
        if iterations:
            if len(iterations) > 1 or len(samples) != sum('iteration' in s for s in samples):
                raise ValueError(f'samples of one batch carry different iterations: {sorted(iterations)}')
            seed = derive_batch_seed(self.seed, iterations.pop(), dp_rank)
        else:
            info = torch.utils.data.get_worker_info()
            worker_id, num_workers = (info.id, info.num_workers) if info is not None else (0, 1)
            seed = counter_seed(self.count, worker_id, num_workers, dp_rank, dp_world)
        self.count += 1
        return random.Random(seed)

    # ------------------------------------------------------------------------------------- token mode

    def _token_mode(self, samples, rng, single_span) -> list[_Built]:
        """Token spans per sample; [dBLOCK] draws now (default) or once the batch is complete (compat)."""
        built = []
        for sample in samples:
            item = self._token_sample(sample, rng, single_span)
            if item is None:
                continue
            if not self.compat:
                self._apply_block_mask(item, rng)
            built.append(item)
        if self.compat:
            for item in built:
                self._apply_block_mask(item, rng)
        return built

    def _token_sample(self, sample, rng, single_span) -> Optional[_Built]:
        """Draw span lengths, place them, build the sample; re-draw (or drop) when they do not fit."""
        text = sample['text']
        _require_leading_enc(text, self.enc_id, 'token mode')
        lengths = self._draw_span_lengths(len(text), rng, single_span)
        spans = self._place_blank_spans(text, lengths, rng)
        if len(spans) < len(lengths):
            if self.drop_unfit_samples:
                self.dropped_samples += 1
                return None
            spans = self._redraw_spans(text, rng, single_span, spans)
        if self.masked_lm:
            return self._make_masked_data(sample, spans)
        sep = len(text) - sum(end - start for start, end in spans) + len(spans)
        item = self._make_block_data(sample, spans, rng, task='bert')
        assert item.sep == sep
        return item

    def _redraw_spans(self, text, rng, single_span, spans):
        """Deviation 2: new span lengths for a sample whose spans did not fit; after `max_span_redraws`
        failures keep the spans that were placed in the last try."""
        self.unfit_samples += 1
        for _ in range(self.max_span_redraws):
            self.span_redraws += 1
            lengths = self._draw_span_lengths(len(text), rng, single_span)
            spans = self._place_blank_spans(text, lengths, rng)
            if len(spans) == len(lengths):
                return spans
        self.reduced_samples += 1
        return spans

    def _draw_span_lengths(self, text_length, rng, single_span) -> list[int]:
        """Truncated-Poisson span lengths: one, or as many as needed to cover bert_ratio of the text."""
        if single_span:
            return [self._draw_span_length(rng)]
        lengths, total = [], 0
        while total < int(self.bert_ratio * text_length):
            lengths.append(self._draw_span_length(rng))
            total += lengths[-1]
        return lengths

    def _draw_span_length(self, rng) -> int:
        return rng.choices(self.span_lengths, cum_weights=self.span_cum_weights)[0]

    def _place_blank_spans(self, tokens, lengths, rng) -> list[tuple[int, int]]:
        """Shuffle the span lengths and lay them into the sample's documents (the original's
        generate_blank_data + sample_span_in_document). Returns (start, end) spans, possibly fewer than
        `lengths` when they do not all fit."""
        lengths = list(lengths)
        # The original shuffled twice (in two nested helpers); both draws are kept to stay in step with it.
        rng.shuffle(lengths)
        rng.shuffle(lengths)
        documents = sorted(self._documents(tokens), key=lambda doc: doc[1])  # stable: ties keep their order
        spans, used = [], 0
        for i, (offset, length) in enumerate(documents):
            remaining = lengths[used:]
            if i == len(documents) - 1:
                # The longest document takes every remaining span that fits with a gap after each.
                count = _count_prefix(remaining, lambda total, n: total + n - 1 <= length)
            else:
                # Shorter documents get about bert_ratio of their own length.
                budget = int(length * self.bert_ratio)
                count = _count_prefix(remaining, lambda total, n: total <= budget)
            if count > 0:
                spans += self.sample_spans(remaining[:count], length, rng, offset)
                used += count
        return spans

    def _documents(self, tokens) -> list[tuple[int, int]]:
        """(offset, maskable length) of every document in a packed sample, last document first.

        Documents are delimited by eos; a leading ENC and the eos itself are not maskable, nor is the very
        last token of the sample (so the sample's final token always stays in Part A)."""
        n = len(tokens)
        delimiters = [-1] + np.flatnonzero(tokens == self.eod_token).tolist()
        documents, end = [], n
        for index in reversed(delimiters):
            start = index
            if start + 1 < n and tokens[start + 1] == self.enc_id:
                start += 1
            length = end - start - 1
            if end == n and length > 0:
                length -= 1
            documents.append((start + 1, length))
            end = index
        return documents

    @staticmethod
    def sample_spans(span_lengths, total_length, rng, offset=0) -> list[tuple[int, int]]:
        """Place spans (in the given order) uniformly in `total_length` tokens from `offset`, at least one
        unmasked token apart: #spans sorted uniform integers in [0, free - #spans + 1] are the gaps."""
        free = total_length - sum(span_lengths)
        m = free - len(span_lengths) + 1
        places = sorted(rng.randrange(m + 1) for _ in span_lengths)
        spans = []
        for place, length in zip(places, span_lengths):
            start = offset + place
            spans.append((start, start + length))
            offset += length + 1
        return spans

    # ----------------------------------------------------------------------------------- sentence mode

    def _sentence_sample(self, sample, rng) -> _Built:
        """Mask whole sentences until they cover gap_sentence_ratio of the sample."""
        tokens = sample['text']
        sentences = self._sentence_spans(tokens)
        rng.shuffle(sentences)
        spans, covered = [], 0
        threshold = int(self.gap_sentence_ratio * len(tokens))
        for start, end in sentences:
            spans.append((start, end))
            covered += end - start
            if covered >= threshold:
                break
        return self._make_block_data(sample, spans, rng, task='gap_sentence')

    def _sentence_spans(self, tokens) -> list[tuple[int, int]]:
        """Sentences of a sample: runs ending at a sentence-end token; an eos belongs to no sentence and
        starts a new one; a leading ENC is skipped."""
        is_end = self._sentence_end_mask(tokens)
        spans = []
        last = 1 if len(tokens) and tokens[0] == self.enc_id else 0
        for i, token in enumerate(tokens.tolist()):
            if is_end[i]:
                if last < i + 1:
                    spans.append((last, i + 1))
                last = i + 1
            elif token == self.eod_token:
                last = i + 1
        if last < len(tokens):
            spans.append((last, len(tokens)))
        return spans

    # --------------------------------------------------------------------------------- generation mode

    def _generation_mode(self, samples, rng) -> list[_Built]:
        """One generation length for the batch; per sample either a [gMASK] suffix or a single blank span."""
        lengths = [len(s['text']) for s in samples]
        if min(lengths) < 3:
            raise ValueError(f'generation mode needs samples of at least 3 tokens, got one of {min(lengths)}')
        # The original's lower bound can exceed the upper one for gpt_min_ratio near 1 (it then crashed).
        low = min(int(self.gpt_min_ratio * min(lengths)), max(lengths) - 2)
        max_generation_length = rng.randint(low, max(lengths) - 2)
        built = []
        for sample in samples:
            text = sample['text']
            # At least one token: the original could draw 0 for samples shorter than 1/gpt_min_ratio and
            # then built inconsistent arrays; the clamp leaves every other draw as it was.
            generation_length = max(1, min(max_generation_length, len(text) - 2))
            eos_at = np.flatnonzero(text == self.eod_token)
            multiple_docs = len(eos_at) > 0 and eos_at[0] != len(text) - 1
            # Short-circuit as in the original: no draw for multi-document samples.
            if multiple_docs or rng.random() < self.infill_prob:
                built.append(self._suffix_generation(sample, generation_length))
            else:
                _require_leading_enc(text, self.enc_id, 'generation mode (blank path)')
                spans = self._place_blank_spans(text, [generation_length], rng)
                item = self._make_block_data(sample, spans, rng, task='generation')
                assert item.sep == len(text) - generation_length + 1
                built.append(item)
        return built

    def _suffix_generation(self, sample, generation_length) -> _Built:
        """`source [gMASK] [sop] suffix[:-1]` -> `source [gMASK] suffix`, loss on the suffix only (weighted by
        the sample's own loss mask)."""
        text, loss_mask = sample['text'], sample['loss_mask']
        division = len(text) - generation_length
        source, target = text[:division], text[division:]
        part_a = np.concatenate((source, [self.generation_mask])).astype(np.int64)
        span = (division, np.concatenate(([self.sop_id], target[:-1])), target, loss_mask[division:])
        laid = lay_out(part_a, [span], a_targets=part_a, block_position=self.block_position_encoding)
        return _Built(laid.text, laid.target, laid.loss_mask, laid.position_id, laid.sep)

    # ---------------------------------------------------------------------------------- building blocks

    def _make_block_data(self, sample, spans, rng, task) -> _Built:
        """Part A (text with each span replaced by one mask token) followed by Part B (the spans in target
        order, each `[sop] + span` -> `span + [eop]`), with compressed 2-D positions."""
        tokens = sample['text']
        n = len(tokens)
        # Compressed positions: every token of a span shares the position of the span's first token.
        step = np.ones(n, dtype=np.int64)
        for start, end in spans:
            step[start + 1:end] = 0
        positions = np.cumsum(step) - 1
        if self.random_position and n and positions[-1] < self.max_seq_length - 1:
            positions = positions + rng.randrange(0, self.max_seq_length - positions[-1])
        spans = list(spans)
        if self.shuffle_blocks:
            rng.shuffle(spans)
        else:
            spans.sort()
        # A span's index in target order names its sentinel tokens (MASK{k}/sop{k}) with --sentinel-token.
        ordered = [(start, end, k if self.sentinel_token else 0) for k, (start, end) in enumerate(spans)]

        source_tokens, source_positions, context_segments = [], [], []
        last, source_length = 0, 0
        for start, end, k in sorted(ordered):
            context_segments.append((source_length, source_length + start - last))
            source_tokens += [tokens[last:start], [self._source_mask_id(task, k)]]
            source_positions += [positions[last:start], [positions[start]]]
            source_length += start - last + 1
            last = end
        if last < n:
            context_segments.append((source_length, source_length + n - last))
            source_tokens.append(tokens[last:])
            source_positions.append(positions[last:])
            source_length += n - last

        part_b, candidates = [], []
        offset = source_length
        for start, end, k in ordered:
            span = tokens[start:end]
            sop = self._command_id('sop' if k == 0 else f'sop{k}')
            position = self.max_seq_length if self.sentinel_token else positions[start]
            part_b.append((position, np.concatenate(([sop], span)), np.concatenate((span, [self.eop_id]))))
            width = end - start + 1
            if task == 'bert' and self.block_mask_prob > 0:
                candidates += range(offset + 1, offset + width)
            offset += width

        part_a = np.concatenate(source_tokens).astype(np.int64)
        laid = lay_out(part_a, part_b, a_positions=np.concatenate(source_positions), a_targets=part_a,
                       block_position=self.block_position_encoding)
        all_tokens, targets = laid.text, laid.target
        if len(targets) > source_length and (targets[source_length:] == self.eod_token).any():
            # Spans never cover an eos by construction; one here means a broken sample or a bug.
            raise RuntimeError(f'an eos token ended up in a generation target (sample of {n} tokens)')
        if task == 'bert' and self.context_mask_ratio > 0:
            self._mask_context(all_tokens, context_segments, len(ordered), n, rng)
        return _Built(all_tokens, targets, laid.loss_mask, laid.position_id, laid.sep, candidates)

    def _source_mask_id(self, task, k) -> int:
        if task == 'generation':
            return self.generation_mask
        if task == 'gap_sentence':
            return self.gap_sentence_mask
        return self.mask_id if k == 0 else self._command_id(f'MASK{k}')

    def _mask_context(self, tokens, segments, num_spans, text_length, rng):
        """context_mask_ratio: replace int(ratio * len) Part-A context tokens that lie within
        context_mask_range tokens of a mask token by [dBLOCK]. `segments[k]` is the context in front of
        mask k (sorted order) and `segments[num_spans]`, if present, the context after the last mask. The
        leading ENC is never replaced, and the count is capped at the number of candidates (the original
        raised in that case)."""
        reach, candidates = self.context_mask_range, set()
        for index, (start, end) in enumerate(segments):
            if index > 0:  # right after mask index-1
                candidates.update(range(start, min(end, start + reach)))
            if index < num_spans:  # right before mask index
                candidates.update(range(max(start, end - reach), end))
        candidates.discard(0)
        count = min(int(self.context_mask_ratio * text_length), len(candidates))
        if count > 0:
            tokens[rng.sample(sorted(candidates), count)] = self.dblock_id

    def _apply_block_mask(self, item: _Built, rng):
        """block_mask_prob: each Part-B span token (not sop) independently becomes [dBLOCK]."""
        source = self.legacy_block_mask_rng if self.legacy_block_mask_rng is not None else rng
        for index in item.block_mask_candidates:
            if source.random() < self.block_mask_prob:
                item.tokens[index] = self.dblock_id

    def _make_masked_data(self, sample, spans) -> _Built:
        """masked_lm ablation: BERT-style in-place [MASK] replacement, fully bidirectional, 1-D positions."""
        tokens = sample['text'].copy()
        scored = np.zeros(len(tokens), dtype=np.int64)
        for start, end in spans:
            tokens[start:end] = self.mask_id
            scored[start:end] = 1
        return _Built(tokens, sample['text'].copy(), sample['loss_mask'] * scored,
                      np.arange(len(tokens), dtype=np.int64), len(tokens))

    # ----------------------------------------------------------------------------------- short samples

    def split_samples(self, samples, rng) -> list[dict]:
        """short_seq_prob: cut every sample into (max_seq_length-1)//target_length windows of about
        target_length tokens (random start moved back to a sentence start, end moved back to a sentence
        end unless that loses more than half), each re-prefixed with ENC. The batch grows accordingly."""
        target_length = rng.randrange(32, self.max_seq_length - 1)
        num_splits = (self.max_seq_length - 1) // target_length
        pieces = []
        for sample in samples:
            tokens, loss_mask = sample['text'][1:], sample['loss_mask'][1:]
            boundary = self._sentence_end_mask(tokens) | (tokens == self.eod_token)
            for _ in range(num_splits):
                start, end = self._split_window(tokens, boundary, target_length, rng)
                pieces.append({'text': np.concatenate(([self.enc_id], tokens[start:end])).astype(np.int64),
                               'loss_mask': np.concatenate(([0], loss_mask[start:end])).astype(np.int64)})
        return pieces

    def _split_window(self, tokens, boundary, target_length, rng) -> tuple[int, int]:
        """A window of about target_length tokens; `boundary[i]`: a sentence may start after token i."""
        if target_length >= len(tokens):
            return 0, len(tokens)
        start = rng.randrange(0, len(tokens) - target_length)
        while start > 0 and (tokens[start] == self.eod_token or not boundary[start - 1]):
            start -= 1
        end = start + target_length
        while end > start and not boundary[end - 1]:
            end -= 1
        if end - start < target_length // 2:
            end = start + target_length
        return start, end

    # -------------------------------------------------------------------------------------- utilities

    def _pad_batch(self, built: list[_Built], mode: str) -> dict:
        """Right-pad every field with 0 to the longest sample and stack into int64 tensors."""
        length = max(len(item.tokens) for item in built)

        def pad(array):
            widths = [(0, 0)] * (array.ndim - 1) + [(0, length - array.shape[-1])]
            return np.pad(array, widths)

        return {
            'text': torch.from_numpy(np.stack([pad(b.tokens) for b in built])),
            'target': torch.from_numpy(np.stack([pad(b.targets) for b in built])),
            'loss_mask': torch.from_numpy(np.stack([pad(b.loss_mask) for b in built])),
            'position_id': torch.from_numpy(np.stack([pad(b.position_ids) for b in built])),
            'attention_mask': torch.tensor([b.sep for b in built], dtype=torch.long),
            'mode': mode,
        }

    def _command_id(self, name) -> int:
        return self.tokenizer.get_command(name).Id

    def _sentence_end_mask(self, tokens) -> np.ndarray:
        """Boolean per token: does its string contain a sentence-end mark? (answers cached per id)"""
        cache = self._sentence_end_cache
        flags = []
        for token_id in tokens.tolist():
            flag = cache.get(token_id)
            if flag is None:
                flag = cache[token_id] = self._is_sentence_end(token_id)
            flags.append(flag)
        return np.array(flags, dtype=bool)

    def _is_sentence_end(self, token_id) -> bool:
        token = self.tokenizer.IdToToken(token_id)
        return isinstance(token, str) and any(mark in token for mark in SENTENCE_END_MARKS)


def build_block_strategy(config, tokenizer, **overrides) -> ConstructBlockStrategy:
    """The strategy the original `configure_data.make_data_loader` builds from the flags (spec §6.4).
    bert_ratio (0.15), max_block_length (40) and context_mask_range (3) are not flags and keep their
    defaults; `overrides` (e.g. compat=True, data_parallel_rank=...) are passed through."""
    kwargs = dict(bert_prob=config.objective.bert_prob,
                  gap_sentence_prob=config.objective.gap_sentence_prob,
                  gpt_infill_prob=config.objective.gpt_infill_prob,
                  gpt_min_ratio=config.objective.gpt_min_ratio,
                  gap_sentence_ratio=config.objective.gap_sentence_ratio,
                  average_block_length=config.objective.avg_block_length,
                  block_mask_prob=config.objective.block_mask_prob,
                  context_mask_ratio=config.objective.context_mask_ratio,
                  short_seq_prob=config.objective.short_seq_prob,
                  single_span_prob=config.objective.single_span_prob,
                  shuffle_blocks=not config.objective.no_shuffle_block,
                  block_position_encoding=not config.objective.no_block_position,
                  sentinel_token=config.objective.sentinel_token,
                  encoder_decoder=config.model.encoder_decoder,
                  task_mask=config.objective.task_mask,
                  random_position=config.objective.random_position,
                  masked_lm=config.objective.masked_lm)
    kwargs.update(overrides)
    return ConstructBlockStrategy(config, tokenizer, config.data.seq_length, **kwargs)


# ------------------------------------------------------------------------------------------------ helpers

def _check_probability(name, value):
    if not 0.0 <= value <= 1.0:
        raise ValueError(f'{name} must be in [0, 1], got {value}')


def _count_prefix(lengths, fits) -> int:
    """How many leading `lengths` can be taken while `fits(total_so_far, count)` holds."""
    total = 0
    for count, length in enumerate(lengths, start=1):
        if not fits(total + length, count):
            return count - 1
        total += length
    return len(lengths)


def _normalise_samples(samples) -> list[dict]:
    """Validate the samples and convert their fields to 1-D int64 numpy arrays (lists, arrays and tensors
    are accepted); any other key (such as 'iteration') is not carried further."""
    result = []
    for index, sample in enumerate(samples):
        if 'text' not in sample or 'loss_mask' not in sample:
            raise ValueError(f"sample {index} lacks 'text' or 'loss_mask' (keys: {sorted(sample)})")
        text = _as_int_array(sample['text'], f'sample {index} text')
        loss_mask = _as_int_array(sample['loss_mask'], f'sample {index} loss_mask')
        if len(text) == 0:
            raise ValueError(f'sample {index} is empty')
        if len(loss_mask) != len(text):
            raise ValueError(f'sample {index}: text has {len(text)} tokens but loss_mask {len(loss_mask)}')
        result.append({'text': text, 'loss_mask': loss_mask})
    return result


def _as_int_array(value, what) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    array = np.asarray(value)
    if array.ndim != 1 or not (array.size == 0 or np.issubdtype(array.dtype, np.integer)):
        raise ValueError(f'{what} must be a 1-D integer array, got shape {array.shape} dtype {array.dtype}')
    return array.astype(np.int64, copy=True)


def _require_leading_enc(text, enc_id, where):
    if text[0] != enc_id:
        raise ValueError(f'{where} expects every sample to start with the ENC token ({enc_id}), got {text[0]}')
