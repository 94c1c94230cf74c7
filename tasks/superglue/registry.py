"""The task table: for every ``--task`` name its reader, pattern, metrics and output conventions.

The training/evaluation driver needs only this module and :mod:`tasks.superglue.dataset`::

    spec = get_task(config.task.task)                  # case-insensitive; unknown names list the known ones
    spec.labels, spec.metrics, spec.default_metric
    spec.is_multi_token(config)                   # GLMForMultiTokenCloze vs GLMForSingleTokenCloze
    spec.choice_to_label(choice)                # WSC: choice 0 (the referent) means "True"
    write_predictions(config.task.task, predictions, examples, log_dir, "test")
    pretraining_task("squad")                   # multi-task pretraining: also the cloze-only tasks
"""

import dataclasses
from collections import OrderedDict
from typing import Callable, Optional, Tuple

from . import metrics
from .errors import TaskConfigError
from .predictions import prediction_filename, write_records
from .processors import (AfqmcProcessor, AgnewsProcessor, AxBProcessor, AxGProcessor, BoolQProcessor, CbProcessor,
                         ClueWscProcessor, ColaProcessor, CopaProcessor, MnliMismatchedProcessor, MnliProcessor,
                         MrpcProcessor, MultiRcProcessor, QnliProcessor, QqpProcessor, RaceProcessor,
                         RecordProcessor, RteProcessor, SquadClozeProcessor, Sst2Processor, TnewsProcessor,
                         WicProcessor, Wsc1Processor, WscProcessor, YahooAnswersProcessor, YelpFullProcessor,
                         YelpPolarityProcessor)
from .pvp import (AfqmcPVP, AgnewsPVP, BoolQPVP, CbPVP, ClueWscPVP, ColaPVP, CopaPVP, MnliPVP, MrpcPVP, MultiRcPVP,
                  QnliPVP, QqpPVP, RacePVP, RecordPVP, RtePVP, SquadClozePVP, Sst2PVP, TnewsPVP, WicPVP, WscPVP,
                  YahooPVP, YelpFullPVP, YelpPolarityPVP)

ACCURACY = (("accuracy", metrics.accuracy),)
ACCURACY_F1 = ACCURACY + (("f1", metrics.f1),)  # GLUE reports both for the paraphrase tasks


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """Everything task-specific the dataset, the driver and the evaluation need."""
    name: str
    processor: type
    pvp: Optional[type]                      # None: no cloze pattern (classification head only)
    metrics: Tuple[Tuple[str, Callable], ...] = ACCURACY
    multi_choice: bool = False               # without --cloze-eval: one classification row per choice
    flip_prediction: bool = False            # WSC: the referent is choice 0 but label 1 ("True")

    @property
    def labels(self):
        """The label list (a prediction is an index into it)."""
        return self.processor().get_labels()

    @property
    def metric_dict(self):
        """``OrderedDict`` name -> ``metric(predictions, labels, examples)``."""
        return OrderedDict(self.metrics)

    @property
    def default_metric(self):
        """The metric that selects the best checkpoint unless ``--validation-metric`` says otherwise."""
        return self.metrics[0][0]

    def make_processor(self, config):
        return self.processor(config)

    def make_pvp(self, config, tokenizer, split="train"):
        """The pattern for ``config.task.pattern_id`` (``tokenizer`` may be ``None`` to ask for
        ``spell_length`` only)."""
        if self.pvp is None:
            raise TaskConfigError(f"task {self.name!r} has no cloze pattern; run it without --cloze-eval")
        return self.pvp(config, tokenizer, self.labels, config.data.seq_length, pattern_id=config.task.pattern_id,
                        is_multi_token=config.task.multi_token,
                        max_segment_length=config.task.segment_length,
                        fast_decode=config.task.fast_decode, split=split,
                        num_prompt_tokens=config.adaptation.num_prompt_tokens)

    def is_multi_token(self, config):
        """Whether samples hold one row per answer (scored as sequences) rather than one row with
        the verbalizer ids in ``target``.  Cloze: free-text tasks always, the others with
        ``--multi-token``; classification head: COPA and ReCoRD."""
        if config.task.cloze_eval and self.pvp is not None:
            return bool(self.pvp.ALWAYS_MULTI_TOKEN or config.task.multi_token)
        return self.multi_choice

    def spell_length(self, config):
        """Continuous-prompt length the model's ``PromptSpell`` needs (0 without prompts)."""
        return self.make_pvp(config, None).spell_length if self.pvp is not None else 0

    def choice_to_label(self, choice):
        """The label index a predicted choice stands for."""
        return (1 if choice == 0 else 0) if self.flip_prediction else choice

    def format_predictions(self, predictions, examples):
        """Submission records (see :mod:`tasks.superglue.predictions`)."""
        return self.processor().format_predictions(predictions, examples)


TASKS = {spec.name: spec for spec in (
    TaskSpec("copa", CopaProcessor, CopaPVP, multi_choice=True),
    TaskSpec("wsc", WscProcessor, WscPVP, flip_prediction=True),
    TaskSpec("wsc1", Wsc1Processor, None),
    TaskSpec("rte", RteProcessor, RtePVP),
    TaskSpec("ax-b", AxBProcessor, RtePVP),
    TaskSpec("ax-g", AxGProcessor, RtePVP),
    TaskSpec("boolq", BoolQProcessor, BoolQPVP),
    TaskSpec("cb", CbProcessor, CbPVP, metrics=ACCURACY + (("f1-macro", metrics.f1_macro),)),
    TaskSpec("wic", WicProcessor, WicPVP),
    TaskSpec("multirc", MultiRcProcessor, MultiRcPVP,
             metrics=(("f1a", metrics.f1), ("em", metrics.multirc_em), ("acc", metrics.accuracy))),
    TaskSpec("record", RecordProcessor, RecordPVP, multi_choice=True,
             metrics=(("EM", metrics.record_exact_match), ("F1", metrics.record_f1))),
    TaskSpec("afqmc", AfqmcProcessor, AfqmcPVP),
    TaskSpec("tnews", TnewsProcessor, TnewsPVP),
    TaskSpec("cluewsc", ClueWscProcessor, ClueWscPVP),
    # GLUE and PET's classification sets, and RACE: the tasks of multi-task pretraining (spec 7.5),
    # finetunable too.
    TaskSpec("mnli", MnliProcessor, MnliPVP),
    TaskSpec("mnli-mm", MnliMismatchedProcessor, MnliPVP),
    TaskSpec("cola", ColaProcessor, ColaPVP),
    TaskSpec("sst2", Sst2Processor, Sst2PVP),
    TaskSpec("mrpc", MrpcProcessor, MrpcPVP, metrics=ACCURACY_F1),
    TaskSpec("qqp", QqpProcessor, QqpPVP, metrics=ACCURACY_F1),
    TaskSpec("qnli", QnliProcessor, QnliPVP),
    TaskSpec("agnews", AgnewsProcessor, AgnewsPVP),
    TaskSpec("yahoo", YahooAnswersProcessor, YahooPVP),
    TaskSpec("yelp-polarity", YelpPolarityProcessor, YelpPolarityPVP),
    TaskSpec("yelp-full", YelpFullProcessor, YelpFullPVP),
    TaskSpec("race", RaceProcessor, RacePVP, multi_choice=True),
)}

# Tasks only multi-task pretraining reads.  Cloze SQuAD (the gold answer generated into a blank) has
# one answer per question, so there is nothing to finetune a choice over; and ``--task squad`` on
# finetune_glm.py is extractive QA as generation (tasks/seq2seq).  Kept out of TASKS and task_names().
PRETRAINING_ONLY_TASKS = {spec.name: spec for spec in (
    TaskSpec("squad", SquadClozeProcessor, SquadClozePVP),
)}


def task_names():
    """The accepted ``--task`` values (lower case; matching ignores case)."""
    return sorted(TASKS)


def get_task(name):
    """The :class:`TaskSpec` of ``name`` (any case), or a :class:`TaskConfigError` listing the tasks."""
    spec = TASKS.get(str(name).lower()) if name is not None else None
    if spec is None:
        raise TaskConfigError(f"unknown SuperGLUE/CLUE task {name!r}; known tasks: {', '.join(task_names())}")
    return spec


def pretraining_task(name):
    """The :class:`TaskSpec` multi-task pretraining uses for ``name``: a pretraining-only task (cloze
    SQuAD) or any ``--task`` name; unknown names raise a :class:`TaskConfigError` listing both."""
    key = str(name).lower()
    spec = PRETRAINING_ONLY_TASKS.get(key) or TASKS.get(key)
    if spec is None:
        known = ", ".join(sorted(set(TASKS) | set(PRETRAINING_ONLY_TASKS)))
        raise TaskConfigError(f"unknown task {name!r}; known tasks: {known}")
    return spec


def write_predictions(task_name, predictions, examples, output_dir, split):
    """Write ``<output_dir>/<task>-<split>.jsonl`` in the submission format; returns its path.

    ``predictions`` are label indices (after :meth:`TaskSpec.choice_to_label`) in the order of
    ``examples``."""
    spec = get_task(task_name)
    records = spec.format_predictions(predictions, examples)
    return write_records(records, f"{output_dir}/{prediction_filename(spec.name, split)}")


def generative_wsc(config):
    """The released ``task_wsc_generative`` setup: WSC in cloze mode without negatives is trained
    and evaluated as a language model over the referent (the original switched its forward step)."""
    return (str(config.task.task).lower() == "wsc" and config.task.cloze_eval
            and not config.task.wsc_negative)
