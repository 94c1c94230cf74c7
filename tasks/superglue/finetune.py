"""SuperGLUE / CLUE finetuning for ``finetune_glm.py`` (spec sections 9.1 and 9.3): the task
description :func:`build_task` hands to :func:`tasks.finetune.finetune`.

* Model (the original's ``get_model``): with ``--cloze-eval`` the multi-token cloze head (the fast
  variant with ``--fast-decode``) for free-text answers and the single-token head for verbalizers;
  without it the sequence-classification head (one output per choice for COPA and ReCoRD).
  ``--continuous-prompt`` adds the P-tuning prompt encoder sized by the pattern.
* Loss: ``--loss-func`` (cross entropy, hinge, generative, mix) or ``--adapet`` over the choice
  scores, padding choices masked; ``--segment-length`` sums the scores of an answer's segments.
  The generative WSC setup (``task_wsc_generative.sh``) trains the language-model loss on the
  referent instead.
* Evaluation: the argmax over each example's choices (WSC: choice 0, the referent, means True),
  data parallel with the results gathered, scored with the task's metrics; test predictions are
  written in the benchmark's submission format (``<task>-<split>.jsonl``).

Owns the SuperGLUE/CLUE task description (model choice, per-batch loss, evaluation, prediction files).
Must not touch: the training steps, epochs and checkpoints (``tasks/finetune.py`` over
``glm.training.core``) or the loss formulas (``glm.training.losses``).
"""

import functools

import torch

from glm.training.losses import choice_loss, language_model_loss
from glm.training.model_setup import build_task_model

from ..batching import batch_to_device, collate_choices
from ..eval_utils import chunked_head_scores, full_vocabulary_logits, head_scores, map_in_order, predict_choices
from ..finetune import FinetuneTask
from ..jsonl import MissingSplitError
from ..scoring import score_batch
from .dataset import SuperGlueDataset
from .registry import generative_wsc, get_task, write_predictions


def combine_segments(scores, segment_id, row_mask=None):
    """Scores of answer segments ``[B, R]`` summed into one score per choice ``[B, C]``
    (``segment_id`` ``[B, R]`` names each row's choice); padding rows (``row_mask`` 0) add nothing.
    Returns ``(scores, choice_mask or None)``."""
    choices = int(segment_id.max()) + 1
    if row_mask is not None:
        scores = scores * row_mask.to(scores.dtype)
    combined = scores.new_zeros(scores.size(0), choices).scatter_add_(1, segment_id, scores)
    choice_mask = None
    if row_mask is not None:
        counts = row_mask.new_zeros(scores.size(0), choices).scatter_add_(1, segment_id, row_mask)
        choice_mask = (counts > 0).long()
    return combined, choice_mask


def choice_scores(model, batch, chunked=False):
    """``(scores [B, C], choice mask [B, C] or None)`` of a collated batch on the model's device."""
    scores = (chunked_head_scores if chunked else head_scores)(model, batch)
    mask = batch.get("loss_mask")
    if "segment_id" in batch:
        scores, mask = combine_segments(scores, batch["segment_id"], mask)
    return scores, mask


def cloze_forward(model, batch, loss_func="cross_entropy", adapet=False):
    """The finetuning loss of one batch (the original's ``finetune_forward_step``)."""
    scores, mask = choice_scores(model, batch)
    return choice_loss(scores, batch["label"], loss_func, mask, adapet), {}


class ClozeEvaluation:
    """Predicts every example of a split and scores it with the task's metrics; datasets are read
    once, on first use (a missing test split means no final test evaluation)."""

    def __init__(self, config, tokenizer, spec, device_of, generative=False):
        self.config, self.tokenizer, self.spec = config, tokenizer, spec
        self.device_of, self.generative = device_of, generative
        self.datasets = {}

    def dataset(self, split):
        if split not in self.datasets:
            try:
                self.datasets[split] = SuperGlueDataset(self.config, split, self.tokenizer)
            except MissingSplitError:
                if split != "test":
                    raise
                self.datasets[split] = None
        return self.datasets[split]

    def _predict(self, model, dataset, device):
        """``(predictions, labels)`` in dataset order: label indices (WSC's choice 0 means True)."""
        batch_size = self.config.evaluation.eval_batch_size or self.config.training.batch_size
        collate = functools.partial(collate_choices, choice_mask=dataset.variable_num_choices)
        if not self.generative:
            choices, _, labels = predict_choices(model, dataset, batch_size, device, collate,
                                                 scores_fn=functools.partial(choice_scores, chunked=True))
            return [self.spec.choice_to_label(c) for c in choices], labels

        def compute(batch):   # generative WSC: True when the referent is reproduced greedily at the blank
            batch = batch_to_device(batch, device)
            _, _, all_correct = score_batch(model, batch)
            return list(zip(all_correct.long().tolist(), batch["label"].tolist()))

        was_training = model.training
        model.eval()
        try:
            with torch.no_grad(), full_vocabulary_logits(model):
                pairs = map_in_order(dataset, compute, batch_size, collate)
        finally:
            model.train(was_training)
        return [p for p, _ in pairs], [label for _, label in pairs]

    def __call__(self, model, split):
        dataset = self.dataset(split)
        if dataset is None or len(dataset) == 0:
            return None, None
        predictions, labels = self._predict(model, dataset, self.device_of(model))
        metrics = {}
        # Test files of the benchmarks carry no labels: predictions only (the original scored them
        # against placeholder labels, which gave meaningless numbers).
        if all(example.label is not None for example in dataset.examples):
            metrics = {name: float(f(predictions, labels, dataset.examples))
                       for name, f in self.spec.metric_dict.items()}
        return metrics, {"predictions": predictions, "examples": dataset.examples}


def model_kind(config, spec):
    """The original's model choice: ``(model_type, multi_token, num_labels, spell_length)``."""
    multi_token = spec.is_multi_token(config)
    spell_length = spec.spell_length(config) if config.adaptation.continuous_prompt and config.task.cloze_eval else None
    if config.task.cloze_eval or spec.multi_choice:
        return "multiple_choice", multi_token, len(spec.labels), spell_length or None
    return "classification", multi_token, len(spec.labels), None


def _device_of(model):
    return next(model.parameters()).device


def build_task(config, tokenizer):
    """The :class:`~tasks.finetune.FinetuneTask` of a SuperGLUE/CLUE ``--task``."""
    spec = get_task(config.task.task)
    generative = generative_wsc(config)
    train = SuperGlueDataset(config, "train", tokenizer) if config.training.epochs else None
    evaluation = ClozeEvaluation(config, tokenizer, spec, _device_of, generative=generative)
    if config.training.epochs and not config.task.no_validation:
        evaluation.dataset("dev")   # read now: a missing dev file stops the run before training
    if generative:
        model_type, multi_token, num_labels, spell_length = "generation", True, 2, None
        forward = language_model_loss
    else:
        model_type, multi_token, num_labels, spell_length = model_kind(config, spec)
        forward = functools.partial(cloze_forward, loss_func=config.task.loss_func, adapet=config.task.adapet)
    variable = spec.make_processor(config).variable_num_choices   # WSC negatives, ReCoRD entities
    prompt_ids = None
    if config.adaptation.prompt_init and train is not None and train.pvp is not None:
        prompt_ids = sorted({int(i) for i in (train.pvp.verbalizer_ids or [])}) or None

    def build_model(a, device):
        return build_task_model(a, device, model_type, multi_token, num_labels, spell_length)

    def write(output, split, directory):
        path = write_predictions(spec.name, output["predictions"], output["examples"], directory, split)
        print(f"predictions written to {path}", flush=True)

    return FinetuneTask(
        name=spec.name,
        build_model=build_model,
        forward_step=forward,
        evaluate=evaluation,
        metric_names=tuple(spec.metric_dict),
        train_dataset=train,
        collate_fn=functools.partial(collate_choices, choice_mask=variable),
        write_predictions=write,
        prompt_token_ids=prompt_ids,
    )


