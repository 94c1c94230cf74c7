"""The seq2seq task table: for every seq2seq ``--task`` one :class:`TaskSpec` row saying how its files
are read, how its text is cleaned, which dataset lays out its samples, how it is decoded and scored.

This module owns the task names of the family; the modules it names (formats, detokenizers, split
stems, re-tokenisations) know none and receive the row.  The dataset, the prediction writer and the
finetuning task (:mod:`tasks.seq2seq.dataset`, :mod:`.outputs`, :mod:`.finetune`) read the row::

    spec = get_task(config.task.task)                       # case-insensitive; unknown names list the known ones
    spec.dataset, spec.format, spec.split_stems, spec.detokenizer
    spec.retokenization_for(config.data.tokenizer_type)     # the ROUGE re-tokenisation the original used
    spec.decoding, spec.scoring

Adding a task is one row here plus, when no existing format reads its files, a format class (see
docs/finetuning.md, "Adding a task").
"""

import dataclasses
from typing import Callable, Mapping, Optional

from .detokenizers import cnndm_detokenize, gigaword_detokenize
from .files import DEV_STEMS, VAL_STEMS, VALID_STEMS
from .retokenize import NO_REWRITE, PTB_RULES, UNK_ONLY
from .squad import CmrcFormat, SquadExtractiveFormat, SquadGenerationFormat, SquadV1ExtractiveFormat
from .summarization import SummaryFormat, XSumFormat

# Which dataset class of tasks.seq2seq.dataset lays out the samples.
GENERATION = "generation"        # Seq2SeqDataset: one target per source, the files read by ``format``
CUSTOMIZATION = "customization"  # CustomizationDataset: your own .source/.target lines, used as they are
EXTRACTION = "extraction"        # ExtractionDataset: sources with [MASK]s, targets "span|span"
BLANK = "blank"                  # BlankLMDataset: Yahoo Answers texts masked at random

# How predictions are produced.
BEAM = "beam"                    # beam search (greedy with one beam) after [sop]
FILL_TEXT = "fill_text"          # every mask filled left to right; the filled text is the prediction
FILL_SPANS = "fill_spans"        # every mask filled left to right; the spans joined by "|"

# How predictions are scored.
ROUGE = "rouge"                  # rouge-1/2/l with the original's post-processing
SQUAD = "squad"                  # official and original SQuAD EM/F1 over the file's questions
SPAN_ACCURACY = "span_accuracy"  # share of sources whose spans all match


class UnknownSeq2SeqTask(ValueError):
    """``--task`` names no row of :data:`TASKS`."""


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """Everything task-specific about one seq2seq task."""
    name: str                                   # the --task value (lower case)
    recipe: Optional[str]                       # its released config, config_tasks/<recipe> (None: none)
    dataset: str = GENERATION                   # which dataset lays out the samples (see above)
    format: Optional[type] = None               # GENERATION only: reads the files, packs the source
    split_stems: Mapping[str, str] = dataclasses.field(default_factory=lambda: VAL_STEMS)  # split -> file stem
    detokenizer: Optional[Callable] = None      # undoes the corpus's escapes (tasks.seq2seq.detokenizers)
    retokenization: str = NO_REWRITE            # ROUGE re-tokenisation for non-BERT vocabularies
    task_mask: bool = True                      # --task-mask turns the mask into [sMASK] (cmrc: never)
    decoding: str = BEAM
    scoring: str = ROUGE
    writes_source: bool = False                 # test runs also write <file>.source (context + answer)

    def retokenization_for(self, tokenizer_type):
        """The re-tokenisation (:data:`tasks.seq2seq.retokenize.RETOKENIZERS`) applied before ROUGE:
        PTB rules for every BERT-vocabulary model (as the original), else the task's own."""
        return PTB_RULES if tokenizer_type == "BertWordPieceTokenizer" else self.retokenization

    @property
    def fills_masks(self):
        """Whether evaluation fills every mask of the source rather than decoding one target."""
        return self.decoding in (FILL_TEXT, FILL_SPANS)


TASKS = {spec.name: spec for spec in (
    TaskSpec("cnn_dm", "seq_cnndm.sh", format=SummaryFormat, detokenizer=cnndm_detokenize),
    # The raw CNN/DM release: punctuation standardised only, nothing re-tokenised for GPT-2 models.
    TaskSpec("cnn_dm_original", "seq_cnndm_org.sh", format=SummaryFormat),
    TaskSpec("gigaword", "seq_gigaword.sh", format=SummaryFormat, detokenizer=gigaword_detokenize,
             retokenization=UNK_ONLY),
    TaskSpec("xsum", "seq_xsum.sh", format=XSumFormat),
    TaskSpec("squad_generation", "seq_squad_generation.sh", format=SquadGenerationFormat, split_stems=DEV_STEMS,
             writes_source=True),
    # Extractive QA as generation; the original sent --task squad to its cloze driver by mistake.
    TaskSpec("squad", "seq_squad.sh", format=SquadExtractiveFormat, scoring=SQUAD),
    TaskSpec("squad_v1", "seq_squad_v1.sh", format=SquadV1ExtractiveFormat, scoring=SQUAD),
    # The released CMRC recipe always used [MASK], with or without --task-mask.
    TaskSpec("cmrc", "seq_cmrc.sh", format=CmrcFormat, split_stems=DEV_STEMS, task_mask=False),
    TaskSpec("customization", "seq_customization.sh", dataset=CUSTOMIZATION),
    TaskSpec("extraction", None, dataset=EXTRACTION, split_stems=VALID_STEMS, decoding=FILL_SPANS,
             scoring=SPAN_ACCURACY),
    TaskSpec("blank", "seq_blank.sh", dataset=BLANK, split_stems=VALID_STEMS, decoding=FILL_TEXT),
)}


def task_names():
    """The accepted seq2seq ``--task`` values (lower case; matching ignores case)."""
    return sorted(TASKS)


def find_task(name):
    """The :class:`TaskSpec` of ``name`` (any case), or ``None``."""
    return TASKS.get(str(name).lower()) if name else None


def get_task(name):
    """The :class:`TaskSpec` of ``name`` (any case), or :class:`UnknownSeq2SeqTask` listing the tasks."""
    spec = find_task(name)
    if spec is None:
        raise UnknownSeq2SeqTask(f"unknown seq2seq task {name!r}; expected one of {', '.join(task_names())}")
    return spec


def detokenizer_for(task):
    """The detokenizer of ``task``'s files, or ``None`` when they are used as they are."""
    return get_task(task).detokenizer


def retokenizer_for(config):
    """The re-tokenisation the original applied before ROUGE for ``config`` (task and tokenizer)."""
    return get_task(config.task.task).retokenization_for(config.data.tokenizer_type)
