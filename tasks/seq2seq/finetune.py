"""Seq2seq finetuning for ``finetune_glm.py`` (spec section 9.4): the task description
:func:`build_task` hands to :func:`tasks.finetune.finetune`.

* Training: the blank-infilling loss on the target tokens (vocab-parallel cross entropy with
  ``--label-smoothing``), the same forward as pretraining.
* Evaluation: the source is encoded once and the target decoded through the model's memory
  (``glm.generation``: beam search with ``--num-beams``, ``--length-penalty``,
  ``--no-repeat-ngram-size``, ``--min-tgt-length``; greedy with one beam); ``blank`` and
  ``extraction`` fill every mask left to right.  Predictions become text as the original did
  (:mod:`tasks.seq2seq.outputs`) and are scored with ROUGE (``rouge-1``, ``rouge-2``, ``rouge-l``),
  SQuAD EM/F1, or span accuracy for extraction.
* Test predictions: ``runs/<experiment>/test.jsonl.hyps`` / ``.refs`` (``dev.jsonl.*`` with
  ``--eval-valid``).

Owns the seq2seq task description (model, training loss choice, decoding evaluation, prediction
files).  Must not touch: the training steps, epochs and checkpoints (``tasks/finetune.py`` over
``glm.training.core``) or the loss formula (``glm.training.losses.language_model_loss``).
"""

import functools
import os

import torch

from glm.generation import DecodeConfig, fill_blanks
from glm.training.losses import language_model_loss
from glm.training.model_setup import build_task_model

from ..eval_utils import decode_dataset, full_vocabulary_logits, map_in_order, seq2seq_decode_config
from ..finetune import FinetuneError, FinetuneTask
from ..jsonl import MissingSplitError
from . import metrics as seq2seq_metrics
from .dataset import build_dataset
from .outputs import blank_prediction_text, prediction_text, write_prediction_files
from .registry import FILL_TEXT, SPAN_ACCURACY, SQUAD, get_task


def fit_lengths(config):
    """Positions reach ``--src-seq-length`` and block positions ``--tgt-seq-length``: grow the
    position table when it is smaller (as the original did; the pretrained rows are kept and the new
    ones initialised), and check the model against the longest of the two.  Returns the configuration
    with those lengths (the seq2seq family's ``configure`` step in :mod:`tasks.registry`)."""
    missing = [flag for flag, value in (("--src-seq-length", config.task.src_seq_length),
                                        ("--tgt-seq-length", config.task.tgt_seq_length)) if not value or value < 1]
    if missing:
        raise FinetuneError(
            f"seq2seq task {config.task.task} needs {' and '.join(missing)} (the most source and target "
            "tokens, positive numbers); the launchers take them from the task config, e.g. "
            "config_tasks/seq_cnndm_org.sh passes --src-seq-length 608 --tgt-seq-length 160")
    longest = max(config.task.src_seq_length, config.task.tgt_seq_length)
    if config.model.max_position_embeddings < longest:
        print(f"note: --max-position-embeddings raised from {config.model.max_position_embeddings} to {longest} "
              "(the source/target lengths); the pretrained position rows are kept", flush=True)
        config = config.updated(max_position_embeddings=longest)
    return config.updated(seq_length=longest)


def task_scorer(config):
    """``(metric names, score(predictions, examples, dataset) -> {name: value})`` for the task.
    Extractive SQuAD is scored by :func:`~tasks.seq2seq.metrics.squad_report`: the official figures
    over every question of the file (the dataset's ``questions``), the original's over the answered ones."""
    spec = get_task(config.task.task)
    if spec.scoring == SQUAD:
        return (seq2seq_metrics.SQUAD_REPORT_NAMES,
                lambda predictions, examples, dataset: seq2seq_metrics.squad_report(predictions, examples,
                                                                                    dataset.questions))
    metrics = ({"accuracy": span_accuracy} if spec.scoring == SPAN_ACCURACY
               else seq2seq_metrics.rouge_metric_dict(spec.retokenization_for(config.data.tokenizer_type)))
    return tuple(metrics), lambda predictions, examples, dataset: {
        name: float(f(predictions, None, examples)) for name, f in metrics.items()}


def span_accuracy(predictions, labels, examples):
    """Percent of examples whose filled spans (``|``-joined) equal the reference spans, compared
    with whitespace normalised."""
    del labels
    def normal(text):
        return "|".join(" ".join(part.split()) for part in text.split("|"))
    hits = sum(normal(p) == normal(e.meta["ref"]) for p, e in zip(predictions, examples))
    return 100.0 * hits / max(len(examples), 1)


class Seq2SeqEvaluation:
    """Decodes a split and scores it; datasets are read once, on first use."""

    def __init__(self, config, tokenizer, device_of):
        self.config, self.tokenizer, self.device_of = config, tokenizer, device_of
        self.datasets = {}
        self.spec = get_task(config.task.task)
        self.metric_names, self.score = task_scorer(config)

    def dataset(self, split):
        if split not in self.datasets:
            try:
                self.datasets[split] = build_dataset(self.config, split, self.tokenizer)
            except MissingSplitError:
                self.datasets[split] = None   # no such split (e.g. no test set): nothing to evaluate
        return self.datasets[split]

    def __call__(self, model, split):
        dataset = self.dataset(split)
        if dataset is None or len(dataset) == 0:
            return None, None
        device = self.device_of(model)
        batch_size = self.config.evaluation.eval_batch_size or self.config.training.batch_size
        if self.spec.fills_masks:
            predictions = self.fill(model, dataset, device)
        else:
            decode = seq2seq_decode_config(self.config, self.tokenizer)
            generated = decode_dataset(model, dataset, decode, batch_size, device)
            predictions = [prediction_text(self.config, self.tokenizer, ids, example)
                           for ids, example in zip(generated, dataset.example_list)]
        examples = dataset.example_list
        return self.score(predictions, examples, dataset), {"predictions": predictions, "examples": examples}

    @torch.no_grad()
    def fill(self, model, dataset, device):
        """Greedy left-to-right filling of every mask of each source (``blank``, ``extraction``)."""
        decode = DecodeConfig.from_config(self.config, self.tokenizer, max_new_tokens=self.config.task.tgt_seq_length,
                                          top_k=1, num_beams=1)
        sop = self.tokenizer.get_command("sop").Id
        task_mask = getattr(dataset, "mask_id", None) != self.tokenizer.get_command("MASK").Id

        def compute(batch):
            texts = []
            for row in range(batch["text"].size(0)):
                sep = int(batch["attention_mask"][row])
                source = batch["text"][row, :sep].tolist()
                filled = fill_blanks(model, self.tokenizer, source, decode, task_mask=task_mask, device=device)
                if self.spec.decoding == FILL_TEXT:
                    texts.append(blank_prediction_text(self.tokenizer, source + [sop], filled.output_ids,
                                                       dataset.mask_id))
                else:
                    texts.append("|".join(b.generated_text.strip() for b in filled.blanks))
            return texts

        was_training = model.training
        model.eval()
        try:
            with full_vocabulary_logits(model):
                return map_in_order(dataset, compute, 1)
        finally:
            model.train(was_training)


def _device_of(model):
    return next(model.parameters()).device


def build_task(config, tokenizer):
    """The :class:`~tasks.finetune.FinetuneTask` of a seq2seq ``--task``."""
    train = build_dataset(config, "train", tokenizer) if config.training.epochs else None
    evaluation = Seq2SeqEvaluation(config, tokenizer, _device_of)
    valid = evaluation.dataset("dev") if config.training.epochs and config.evaluation.eval_interval else None
    if valid is not None and "target" not in valid[0]:
        valid = None   # evaluation items have no targets: no loss to compute on them

    def write_predictions(output, split, directory):
        os.makedirs(directory, exist_ok=True)
        write_prediction_files(config.task.task, output["predictions"], output["examples"],
                               os.path.join(directory, f"{split}.jsonl"))

    return FinetuneTask(
        name=config.task.task,
        build_model=lambda a, device: build_task_model(a, device, "generation"),
        forward_step=functools.partial(language_model_loss, label_smoothing=config.training.label_smoothing),
        evaluate=evaluation,
        metric_names=evaluation.metric_names,
        train_dataset=train,
        valid_dataset=valid,
        write_predictions=write_predictions,
    )
