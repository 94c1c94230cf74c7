"""Pattern-verbalizer pairs (PVPs, from PET): how an example becomes a cloze question for GLM.

A PVP subclass says *what* the question looks like (:meth:`PVP.get_parts`) and which words answer
it (:meth:`PVP.verbalize` per label, or :meth:`PVP.get_answers` per example for free-text answers).
This base class does the rest, always through the shared builder in ``tasks.inputs``:

* single-token tasks (the label's verbalizer is one token): one sequence ``[CLS] pattern [eos]
  [sop]``; ``target`` lists the verbalizer id of every label, the model scores them at ``[sop]``;
* multi-token tasks: one sequence per answer, ``[CLS] pattern [eos] [sop] answer`` (answer ends
  with ``eop``), scored by the summed log-probability of the answer;
* ``--fast-decode`` (multi-token): the pattern once, plus one short decoder row per answer
  (``dec_*`` fields, answers capped at 16 tokens);
* ``--segment-length n``: long answers are scored in chunks of n tokens (``segment_id`` tells which
  answer a row belongs to);
* ``--continuous-prompt``: prompt placeholder tokens at the pattern's slots, reported in
  ``prompt_pos`` and replaced by id 0 (the model substitutes learned embeddings there).
"""

import copy

import numpy as np

from ...inputs import build_decoder_input, build_input_from_ids
from ..errors import TaskConfigError, TaskDataError
from ..samples import add_decoder_fields, make_sample
from .parts import encode_parts, flatten, place_prompts, truncate

MAX_DECODER_LENGTH = 16  # answers are cut to this many tokens with --fast-decode


class PVP:
    """Base class; subclasses set the class attributes below and implement :meth:`get_parts` and
    :meth:`verbalize` (or :meth:`get_answers`)."""

    PATTERN_IDS = (0,)          # the pattern ids this task accepts
    AVAILABLE_PATTERNS = None   # what the original's available_patterns() reported (default: PATTERN_IDS)
    ALWAYS_MULTI_TOKEN = False  # answers are free text (COPA, WSC, ReCoRD): never single-token
    COUNTS_PROMPTS = False      # whether the pattern has prompt slots (spell_length counts them)

    def __init__(self, config, tokenizer, label_list, max_seq_length, pattern_id=0, is_multi_token=False,
                 max_segment_length=0, fast_decode=False, split="train", num_prompt_tokens=0):
        if pattern_id not in self.PATTERN_IDS:
            raise TaskConfigError(f"{type(self).__name__}: no pattern {pattern_id}; this task's pattern ids are "
                                  f"{list(self.PATTERN_IDS)}")
        self.config, self.tokenizer = config, tokenizer
        self.label_list, self.max_seq_length, self.pattern_id = list(label_list), max_seq_length, pattern_id
        self.split, self.fast_decode = split, fast_decode
        self.max_segment_length = max_segment_length or 0
        self.num_prompt_tokens = num_prompt_tokens or 0
        self.continuous_prompt = bool(config.adaptation.continuous_prompt)
        self.prefix_prompt = config.adaptation.prefix_prompt or 0
        self._is_multi_token = is_multi_token
        self.num_truncated = 0  # how many encodings had to cut text to fit
        # Checked once, here, so a verbalizer that is not one token fails before any training.
        self.verbalizer_ids = None
        if tokenizer is not None and not self.is_multi_token:
            self.verbalizer_ids = [self.verbalization_id(label) for label in self.label_list]

    # ------------------------------------------------------------------ what the task defines
    @classmethod
    def available_patterns(cls):
        """The pattern ids the original advertised for pattern ensembles."""
        return list(cls.AVAILABLE_PATTERNS if cls.AVAILABLE_PATTERNS is not None else cls.PATTERN_IDS)

    def get_parts(self, example):
        """``(parts_a, parts_b)`` of the pattern for ``example`` (see ``pvp.parts``)."""
        raise NotImplementedError

    def verbalize(self, label):
        """The words for ``label`` (the first one is used)."""
        raise NotImplementedError

    def get_answers(self, example):
        """The candidate answers of a multi-token example (default: each label's verbalizer)."""
        return [self.verbalize(label)[0] for label in self.label_list]

    # ------------------------------------------------------------------ derived properties
    @property
    def is_multi_token(self):
        """Multi-token scoring: forced for free-text answers, else the ``--multi-token`` flag."""
        return self.ALWAYS_MULTI_TOKEN or bool(self._is_multi_token)

    @property
    def spell_length(self):
        """How many continuous-prompt embeddings the model needs (``PromptSpell`` length)."""
        return self.num_prompt_tokens + self.prefix_prompt if self.COUNTS_PROMPTS else 0

    @property
    def mask_id(self):
        """The blank every pattern uses is ``[MASK]`` (never ``[sMASK]``/``[gMASK]``)."""
        return self.tokenizer.get_command("MASK").Id

    @property
    def prompt_id(self):
        # An id no text produces; replaced by 0 once its positions are recorded.
        return self.tokenizer.num_tokens

    def verbalization_id(self, label):
        """The single token id of ``label``'s verbalizer, or a :class:`TaskConfigError`."""
        try:
            word = self.verbalize(label)[0]
        except (KeyError, IndexError, TypeError):
            raise TaskConfigError(f"{type(self).__name__} pattern {self.pattern_id}: no verbalizer for label "
                                  f"{label!r}") from None
        ids = self.tokenizer.EncodeAsIds(word).tokenization
        if len(ids) != 1:
            pieces = [self.tokenizer.IdToToken(i) for i in ids]
            raise TaskConfigError(f"{type(self).__name__} pattern {self.pattern_id}: the verbalizer {word!r} of "
                                  f"label {label!r} is {len(ids)} tokens {pieces}, a single-token task needs "
                                  "exactly one (use a multi-token setup or another pattern)")
        if ids[0] in self.tokenizer.command_id_map:
            raise TaskConfigError(f"verbalizer {word!r} of label {label!r} is the special token "
                                  f"{self.tokenizer.IdToToken(ids[0])}")
        return ids[0]

    def label_index(self, example):
        """Index of the example's label in the label list (0 for unlabelled examples)."""
        if example.label is None:
            return 0
        if example.label not in self.label_list:
            raise TaskDataError(f"{example.guid}: label {example.label!r} is not one of {self.label_list}")
        return self.label_list.index(example.label)

    def answer_ids(self, answer):
        """An answer's ids followed by ``eop`` (the model learns to close the blank)."""
        return self.tokenizer.EncodeAsIds(answer).tokenization + [self.tokenizer.get_command("eop").Id]

    # ------------------------------------------------------------------ encoding
    def encoded_parts(self, example):
        """The pattern as ``(ids, shortenable)`` lists, prompts placed and ``--prefix-prompt`` added."""
        parts_a, parts_b = self.get_parts(example)
        parts_a, parts_b, slots = place_prompts(parts_a, parts_b, self.num_prompt_tokens, self.continuous_prompt)
        # A task whose prompt encoder expects tokens must have somewhere to put them.
        if self.continuous_prompt and self.COUNTS_PROMPTS and self.num_prompt_tokens > 0 and not slots:
            raise TaskConfigError(f"{type(self).__name__} pattern {self.pattern_id} has no continuous-prompt "
                                  "slots; choose a pattern with slots for --continuous-prompt")
        parts_a = encode_parts(parts_a, self.tokenizer, self.mask_id, self.prompt_id)
        if self.prefix_prompt > 0:
            parts_a = [([self.prompt_id] * self.prefix_prompt, False)] + parts_a
        parts_b = encode_parts(parts_b, self.tokenizer, self.mask_id, self.prompt_id) if parts_b else None
        return parts_a, parts_b

    def fitted_tokens(self, parts_a, parts_b, answer):
        """Copies of the parts truncated for ``answer``, flattened to ``(tokens_a, tokens_b)``."""
        parts_a, parts_b = copy.deepcopy(parts_a), copy.deepcopy(parts_b)
        self.num_truncated += truncate(parts_a, parts_b, answer, self.max_seq_length)
        return flatten(parts_a), flatten(parts_b) if parts_b else None

    def build(self, tokens_a, tokens_b, answer, add_piece=True):
        """The shared GLM builder with this task's mask, length and flags."""
        return build_input_from_ids(tokens_a, tokens_b, answer, self.max_seq_length, self.tokenizer, self.config,
                                    add_cls=True, add_sep=False, add_piece=add_piece, mask_id=self.mask_id)

    def take_prompt_positions(self, ids):
        """``(ids with placeholders set to 0, their positions)``."""
        ids = np.asarray(ids)
        placeholders = ids == self.prompt_id
        return np.where(placeholders, 0, ids), np.flatnonzero(placeholders).tolist()

    def encode(self, example):
        """The sample dict of ``example`` (see the module docstring for the layouts)."""
        parts_a, parts_b = self.encoded_parts(example)
        if not self.is_multi_token:
            return self.encode_single_token(example, parts_a, parts_b)
        if self.fast_decode:
            return self.encode_fast_decode(example, parts_a, parts_b)
        return self.encode_choices(example, parts_a, parts_b)

    def encode_single_token(self, example, parts_a, parts_b):
        """One sequence ending in ``[sop]``; ``target`` = the verbalizer id of each label."""
        tokens_a, tokens_b = self.fitted_tokens(parts_a, parts_b, [])
        ids, _, _, position, sep, _, loss_mask = self.build(tokens_a, tokens_b, None)
        ids, prompt_pos = self.take_prompt_positions(ids)
        return make_sample(ids, self.label_index(example), example.guid, position=position, mask=sep,
                           target=self.verbalizer_ids, logit_mask=loss_mask, prompt_pos=prompt_pos)

    def encode_choices(self, example, parts_a, parts_b):
        """One row per answer (per answer segment with ``--segment-length``)."""
        rows, segment_ids = [], []
        for choice, answer in enumerate(self.get_answers(example)):
            answer_ids = self.answer_ids(answer)
            tokens_a, tokens_b = self.fitted_tokens(parts_a, parts_b, answer_ids)
            segments = [answer_ids]
            if self.max_segment_length > 0:
                size = self.max_segment_length
                segments = [answer_ids[i:i + size] for i in range(0, len(answer_ids), size)]
                segment_ids += [choice] * len(segments)
            for segment in segments:
                ids, _, _, position, sep, target, loss_mask = self.build(tokens_a, tokens_b, segment)
                ids, prompt_pos = self.take_prompt_positions(ids)
                rows.append((ids, position, sep, target, loss_mask, prompt_pos))
                # The next segment is predicted with this one already written before the blank.
                if self.mask_id in tokens_a:
                    at = tokens_a.index(self.mask_id)
                    tokens_a = tokens_a[:at] + segment + tokens_a[at:]
                else:
                    at = tokens_b.index(self.mask_id)
                    tokens_b = tokens_b[:at] + segment + tokens_b[at:]
        columns = list(zip(*rows))
        return make_sample(columns[0], self.label_index(example), example.guid, position=columns[1],
                           mask=columns[2], target=columns[3], logit_mask=columns[4],
                           segment_id=segment_ids or None, prompt_pos=columns[5])

    def encode_fast_decode(self, example, parts_a, parts_b):
        """The pattern once (no answer) plus one decoder row per answer at the blank's position."""
        tokens_a, tokens_b = self.fitted_tokens(parts_a, parts_b, None)
        ids, _, _, position, sep, _, _ = self.build(tokens_a, tokens_b, None, add_piece=False)
        sample = make_sample(ids, self.label_index(example), example.guid, position=position, mask=sep)
        rows = []
        for answer in self.get_answers(example):
            answer_ids = self.answer_ids(answer)[:MAX_DECODER_LENGTH]
            dec_ids, _, _, dec_position, _, dec_target, dec_loss_mask = build_decoder_input(
                ids, answer_ids, self.max_seq_length, MAX_DECODER_LENGTH, self.tokenizer)
            rows.append((dec_ids, dec_position, sep, dec_target, dec_loss_mask))
        return add_decoder_fields(sample, *zip(*rows))
