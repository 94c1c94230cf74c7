"""Evaluation helpers shared by the finetuned tasks: data-parallel sharding with results gathered in
dataset order, choice scoring for cloze and classification heads, and decoding of seq2seq inputs.

Every function returns the same result on every rank.  Data-parallel ranks split the samples (every
``world``-th one); the ranks of one model-parallel group see the same samples and compute together.
"""

import contextlib

import torch

from glm.generation import DecodeConfig, generate
from glm.mpu import data_parallel_rank_and_size

from .batching import batch_to_device, collate_choices
from .scoring import gather_in_order

# Evaluation scores at most this many choices per model call (the original's ``segment_length``
# chunking of ReCoRD's many entities), so memory stays bounded whatever the number of candidates.
CHOICE_CHUNK = 10


def map_in_order(dataset, compute, batch_size, collate_fn=collate_choices):
    """``compute(batch) -> list of per-sample results`` over this rank's share of ``dataset``; returns
    every rank's results in dataset order."""
    rank, world = data_parallel_rank_and_size()
    mine = list(range(rank, len(dataset), world))
    local = []
    for start in range(0, len(mine), batch_size):
        indices = mine[start:start + batch_size]
        results = compute(collate_fn([dataset[i] for i in indices]))
        local += list(zip(indices, results))
    return gather_in_order(local, rank, world)


@contextlib.contextmanager
def full_vocabulary_logits(model):
    """Have the GLM inside ``model`` return logits over the whole vocabulary (gathered over
    model-parallel ranks) for the duration: decoding and scoring need them, training does not."""
    glm = getattr(model, "model", model)
    previous = getattr(glm, "parallel_output", None)
    if previous is not None:
        glm.parallel_output = False
    try:
        yield model
    finally:
        if previous is not None:
            glm.parallel_output = previous


def head_scores(model, batch):
    """Scores ``[B, C]`` of a collated cloze / classification batch (on the model's device): the
    multi-token cloze log-probabilities, the single-token verbalizer logits, or the classification
    head's outputs.  Which head runs is told by the batch's fields."""
    text, position, sep = batch["text"], batch["position"], batch["mask"]
    if "dec_text" in batch:
        return model(text, position, sep, batch["dec_text"], batch["dec_position"], batch["dec_mask"],
                     batch["dec_target"], batch["dec_logit_mask"])[0]
    if "target" in batch:
        prompt_pos = batch.get("prompt_pos")
        if prompt_pos is not None and prompt_pos.numel() == 0:
            prompt_pos = None   # every sample carries the field; it is empty without --continuous-prompt
        return model(text, position, sep, batch["target"], batch["logit_mask"], prompt_pos=prompt_pos)[0]
    return model(text, position, sep)[0]


def chunked_head_scores(model, batch):
    """:func:`head_scores`, calling the model on at most :data:`CHOICE_CHUNK` choices at a time."""
    choices = batch["text"].size(1) if batch["text"].dim() == 3 else 0
    if choices <= CHOICE_CHUNK or "dec_text" in batch:
        return head_scores(model, batch)
    per_choice = {k for k, v in batch.items() if torch.is_tensor(v) and v.dim() >= 2 and v.size(1) == choices
                  and k not in ("loss_mask",)}
    parts = []
    for start in range(0, choices, CHOICE_CHUNK):
        part = {k: (v[:, start:start + CHOICE_CHUNK] if k in per_choice else v) for k, v in batch.items()}
        parts.append(head_scores(model, part))
    return torch.cat(parts, dim=1)


def _head_scores_and_mask(model, batch):
    return chunked_head_scores(model, batch), batch.get("loss_mask")


@torch.no_grad()
def predict_choices(model, dataset, batch_size, device, collate_fn=collate_choices, scores_fn=None):
    """``(predictions, scores, labels)`` for every sample of ``dataset``: the argmax over the sample's
    own choices (padding choices never win), the list of its choice scores, and its ``label``.
    ``scores_fn(model, batch) -> (scores [B, C], choice mask [B, C] or None)`` defaults to the head's
    scores (:func:`chunked_head_scores`) with the batch's ``loss_mask``."""
    scores_fn = scores_fn or _head_scores_and_mask

    def compute(batch):
        batch = batch_to_device(batch, device)
        scores, mask = scores_fn(model, batch)
        scores = scores.float().cpu()
        counts = mask.sum(-1).tolist() if mask is not None else [scores.size(1)] * len(scores)
        labels = batch["label"].tolist() if "label" in batch else [None] * len(scores)
        # Padding choices repeat choice 0 at the end of the row, so a sample's own are the first ``count``.
        return [(row[:int(n)].tolist(), label) for row, n, label in zip(scores, counts, labels)]

    was_training = model.training
    model.eval()
    try:
        with full_vocabulary_logits(model):
            results = map_in_order(dataset, compute, batch_size, collate_fn)
    finally:
        model.train(was_training)
    scores = [s for s, _ in results]
    predictions = [max(range(len(s)), key=s.__getitem__) for s in scores]
    return predictions, scores, [label for _, label in results]


def seq2seq_decode_config(config, tokenizer):
    """The decoding of a seq2seq evaluation, with the rules of the original's seq2seq evaluator:

    * beam search with ``--num-beams``; one beam is greedy unless sampling is asked for with
      ``--top-k``/``--top-p`` (the original's beam scorer with one beam and top-k candidates picks
      the arg-max, and ends on the same token);
    * at most ``--tgt-seq-length`` new tokens (``--out-seq-length`` is not read, as in the original);
    * a hypothesis ends on ``eop`` only: ``pad`` (id 0, which is also ``eos`` for BERT vocabularies)
      is an ordinary token during the search, dropped from the text afterwards
      (:func:`tasks.seq2seq.outputs.strip_special`);
    * the length penalty divides by ``max(n, 1) ** length_penalty``, ``n`` generated tokens
      (``length_offset=0``: the original's generated tensor starts empty, without ``sop``).

    ``tests/generation/test_beam_search_reference.py`` replays the original evaluator's recorded
    cases through this configuration."""
    overrides = dict(end_ids=(tokenizer.get_command("eop").Id,), length_offset=0)
    if config.generation.num_beams == 1 and not config.generation.top_k and not config.generation.top_p:
        overrides["top_k"] = 1
    return DecodeConfig.from_config(config, tokenizer, max_new_tokens=config.task.tgt_seq_length, **overrides)


@torch.no_grad()
def decode_dataset(model, dataset, config, batch_size, device, collate_fn=collate_choices, generator=None):
    """Generated ids (end tokens dropped) for every sample of ``dataset``: samples hold the source
    followed by ``sop`` (``text``, ``position_id`` ``[2, L]``, ``attention_mask``), as the seq2seq
    evaluation splits are built."""
    def compute(batch):
        batch = batch_to_device(batch, device)
        ids, _ = generate(model, batch["text"], batch["position_id"], batch["attention_mask"], config,
                          generator=generator)
        return ids

    was_training = model.training
    model.eval()
    try:
        with full_vocabulary_logits(model):
            return map_in_order(dataset, compute, batch_size, collate_fn)
    finally:
        model.train(was_training)
