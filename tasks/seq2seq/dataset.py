"""Seq2seq finetuning datasets (spec section 9.4): the stable entry points.

``Seq2SeqDataset(config, split, tokenizer)`` serves the summarisation and SQuAD-format tasks
(``cnn_dm``, ``cnn_dm_original``, ``gigaword``, ``xsum``, ``squad_generation``, ``squad``,
``squad_v1``, ``cmrc``); ``CustomizationDataset``, ``ExtractionDataset`` and ``BlankLMDataset`` take
the same arguments.  :func:`build_dataset` picks the class the task's row in
:mod:`tasks.seq2seq.registry` names; every dataset reads its row (``self.spec``) for the files, text
rules and mask of its task.

Every dataset has ``examples`` (``{guid: InputExample}``, in file order), ``example_list``,
``len()`` and items that are the original's dicts (see :mod:`tasks.seq2seq.layout`); ``uid`` of an
item is the ``guid`` of its example, whose ``meta["ref"]`` is the reference text for scoring.
Items are built on access, so a large corpus costs only its text in memory.
"""

import os
import random

from torch.utils.data import Dataset

from ..inputs import command_id
from ..jsonl import TaskDataError
from .detokenizers import blank_detokenize
from .example import InputExample
from .files import check_split, read_lines, read_parallel, split_path
from .layout import (CommandIds, encode_target, eval_sample, find_mask, hide_padding_mask, pad_source, spans_sample,
                     task_mask_name, train_sample)
from .registry import BLANK, CUSTOMIZATION, EXTRACTION, GENERATION, get_task
from .squad import SquadExtractiveFormat


def _lengths(config):
    src, tgt = config.task.src_seq_length, config.task.tgt_seq_length
    if not src or not tgt or src < 1 or tgt < 1:
        raise ValueError(f"seq2seq tasks need positive --src-seq-length and --tgt-seq-length (got {src}, {tgt})")
    return src, tgt


class _Seq2SeqBase(Dataset):
    """What every seq2seq dataset shares: the split check, lengths, command ids, the example tables."""

    def __init__(self, config, split, tokenizer):
        check_split(split)
        self.config, self.split, self.tokenizer = config, split, tokenizer
        self.spec = get_task(config.task.task)
        self.task = self.spec.name
        self.data_dir = config.data.data_dir
        self.max_src_length, self.max_tgt_length = _lengths(config)
        self.dataset_name = split
        self.ids = CommandIds.of(tokenizer)
        self.example_list, self.origins = [], []

    def _set_examples(self, examples, origins):
        self.example_list, self.origins = list(examples), list(origins)
        self.examples = {example.guid: example for example in self.example_list}

    def __len__(self):
        return len(self.example_list)

    def where(self, idx):
        """``file:line`` (or file and question) the ``idx``-th example came from."""
        return self.origins[idx]


class Seq2SeqDataset(_Seq2SeqBase):
    """One target per source: summarisation (CNN/DM, Gigaword, XSum) and the SQuAD-format tasks.

    Items: training ``text, target, attention_mask, loss_mask, position_id, uid`` of length src + tgt;
    dev/test ``text, attention_mask, position_id, uid`` of length src + 1 (source and ``[sop]``).
    The mask is ``[sMASK]`` with ``--task-mask`` (``[MASK]`` for cmrc), ``[MASK]`` otherwise.
    """

    def __init__(self, config, split, tokenizer):
        super().__init__(config, split, tokenizer)
        fmt = self.spec.format
        if self.spec.dataset != GENERATION or fmt is None:
            raise ValueError(f"Seq2SeqDataset does not serve --task {self.task}; its row in "
                             f"tasks/seq2seq/registry.py names the {self.spec.dataset} dataset")
        if issubclass(fmt, SquadExtractiveFormat):
            # Character offsets are only used to map BERT pieces back to the context (squad_decode).
            use_offsets = config.data.tokenizer_type == "BertWordPieceTokenizer"
            self.format = fmt(self.spec, self.data_dir, tokenizer, self.max_src_length, use_offsets)
        else:
            self.format = fmt(self.spec, self.data_dir, tokenizer)
        self.mask_id = command_id(tokenizer, task_mask_name(config.objective.task_mask, self.spec))
        self._set_examples(*self.format.examples(split))
        # Extractive SQuAD: every question of the file, including those without a window.
        self.questions = getattr(self.format, "questions", None)

    def __getitem__(self, idx):
        example, where = self.example_list[idx], self.where(idx)
        source = self.format.source_tokens(example, self.mask_id, self.max_src_length, self.ids)
        source = pad_source(source, self.max_src_length, self.ids.pad, where)
        mask_position = find_mask(source, self.mask_id, where)
        if self.split != "train":
            return eval_sample(source, mask_position, example.guid, self.ids)
        target, loss_mask = encode_target(self.tokenizer, self.format.target_text(example), self.max_tgt_length,
                                          self.ids)
        return train_sample(source, target, loss_mask, mask_position, example.guid, self.ids,
                            block_position=not self.config.objective.no_block_position)


def _line_examples(split, pairs, origins):
    """``InputExample`` s of ``(source, target)`` pairs whose reference is the raw target line."""
    examples = [InputExample(guid=f"{split}-{i}", text_a=source, text_b=target, meta={"ref": target})
                for i, (source, target) in enumerate(pairs)]
    return examples, origins


def _read_stripped_pairs(data_dir, stems, split):
    source_path = split_path(data_dir, stems, split, ".source")
    target_path = split_path(data_dir, stems, split, ".target")
    pairs = read_parallel(source_path, target_path)
    return ([(s.strip(), t.strip()) for s, t in pairs],
            [f"{source_path}:{number}" for number in range(1, len(pairs) + 1)])


class CustomizationDataset(_Seq2SeqBase):
    """Your own data: ``{train,val,test}.source`` / ``.target`` line pairs, used as they are.

    Source ``[ENC] source [mask] [eos]``, the source cut on the *left* (the end of a dialogue or
    document is what matters), padded to ``--src-seq-length``; target ``" " + target + [eop]``.
    With ``--mask-pad-token`` the attention mask is a ``[1, L, L]`` matrix that hides the padding
    (:func:`tasks.seq2seq.layout.hide_padding_mask`); otherwise the scalar ``sep`` as everywhere.
    """

    def __init__(self, config, split, tokenizer):
        super().__init__(config, split, tokenizer)
        self.mask_id = command_id(tokenizer, task_mask_name(config.objective.task_mask, self.spec))
        self._set_examples(*_line_examples(split, *_read_stripped_pairs(self.data_dir, self.spec.split_stems, split)))

    def __getitem__(self, idx):
        example = self.example_list[idx]
        ids, src_length = self.ids, self.max_src_length
        text = self.tokenizer.EncodeAsIds(example.text_a).tokenization
        if len(text) + 3 > src_length:
            text = text[len(text) - max(src_length - 3, 0):]
        source = [ids.enc] + text + [self.mask_id, ids.eos]
        context_length = len(source)
        source = pad_source(source, src_length, ids.pad, self.where(idx))
        mask_position = find_mask(source, self.mask_id, self.where(idx))
        hide = self.config.task.mask_pad_token
        if self.split != "train":
            mask = hide_padding_mask(context_length, src_length) if hide else None
            return eval_sample(source, mask_position, example.guid, ids, attention_mask=mask)
        target, loss_mask = encode_target(self.tokenizer, example.text_b, self.max_tgt_length, ids)
        mask = hide_padding_mask(context_length, src_length, self.max_tgt_length) if hide else None
        return train_sample(source, target, loss_mask, mask_position, example.guid, ids,
                            block_position=not self.config.objective.no_block_position, attention_mask=mask)


class _BlankBase(_Seq2SeqBase):
    """Sources with one or more masks, each filled by its own span in part B (extraction, blank)."""

    def _spans_item(self, idx, source, span_texts, mask_id, max_length):
        """Training item: the source (encoded, padded/cut to src) and one span per mask in it."""
        example, where = self.example_list[idx], self.where(idx)
        source = _pad_or_cut(source, self.max_src_length, self.ids.pad)
        positions = [i for i, token in enumerate(source) if token == mask_id]
        if len(positions) > len(span_texts):
            raise TaskDataError(f"{where}: the source has {len(positions)} masks but the target only "
                                f"{len(span_texts)} span(s)")
        spans = [(position, self.tokenizer.EncodeAsIds(" " + text).tokenization)
                 for position, text in zip(positions, span_texts)]
        return spans_sample(source, spans, max_length, example.guid, self.ids)

    def _eval_item(self, idx, source, mask_id):
        """Evaluation item: the source padded/cut to src, then ``[sop]`` at its first mask."""
        source = _pad_or_cut(source, self.max_src_length, self.ids.pad)
        mask_position = find_mask(source, mask_id, self.where(idx))
        return eval_sample(source, mask_position, self.example_list[idx].guid, self.ids)


def _pad_or_cut(tokens, length, pad_id):
    return list(tokens[:length]) + [pad_id] * (length - len(tokens))


class ExtractionDataset(_BlankBase):
    """``{train,valid,test}.source`` / ``.target``: sources with ``[MASK]`` s, targets listing what
    fills them, separated by ``|``.  Always ``[MASK]`` (the text carries it); no ``[ENC]``; training
    items are src + tgt long (spans cut there)."""

    def __init__(self, config, split, tokenizer):
        super().__init__(config, split, tokenizer)
        self.mask_id = command_id(tokenizer, "MASK")
        self._set_examples(*_line_examples(split, *_read_stripped_pairs(self.data_dir, self.spec.split_stems, split)))

    def __getitem__(self, idx):
        example = self.example_list[idx]
        source = self.tokenizer.EncodeAsIds(example.text_a).tokenization
        if self.split != "train":
            return self._eval_item(idx, source, self.mask_id)
        return self._spans_item(idx, source, example.text_b.split("|"), self.mask_id,
                                self.max_src_length + self.max_tgt_length)


class BlankLMDataset(_BlankBase):
    """Blank infilling on Yahoo Answers: ``{train,valid,test}.txt`` (one text per line) and, for test,
    ``blank/test.maskratio{r:.1f}.blank`` (the same texts with ``[MASK]`` / ``<blank>`` spans).

    Train and dev texts are masked on access: ``int(words * --blank-maskratio)`` random words
    (``random.Random(--seed)``, one generator per dataset, drawn in access order as in the original),
    runs of masked words merged into one mask.  The mask is ``[gMASK]`` with ``--task-mask`` (the
    ``[MASK]`` ids of the text are replaced), ``[MASK]`` otherwise.  Items are src + int(src * ratio)
    long.
    """

    def __init__(self, config, split, tokenizer):
        super().__init__(config, split, tokenizer)
        self.mask_name = "gMASK" if config.objective.task_mask else "MASK"
        self.mask_id = command_id(tokenizer, self.mask_name)
        self.ratio = float(config.generation.blank_maskratio)
        text_path = split_path(self.data_dir, self.spec.split_stems, split, ".txt")
        targets = [blank_detokenize(line.strip()) for line in read_lines(text_path)]
        origins = [f"{text_path}:{n}" for n in range(1, len(targets) + 1)]
        sources = targets
        if split == "test":
            blank_path = os.path.join(self.data_dir, "blank", f"test.maskratio{self.ratio:.1f}.blank")
            sources = [blank_detokenize(line.strip()) for line in read_lines(blank_path, "masked test file")]
            if len(sources) != len(targets):
                raise TaskDataError(f"{blank_path}: {len(sources)} lines but {text_path} has {len(targets)}")
            origins = [f"{blank_path}:{n}" for n in range(1, len(sources) + 1)]
        self._set_examples(*_line_examples(split, list(zip(sources, targets)), origins))
        self.random = random.Random(config.training.seed)

    def mask_text(self, text):
        """``(masked text, [span texts])``: random words replaced by ``[MASK]``, adjacent ones merged.
        Each span text starts with a space; the masked text too."""
        words = text.split()
        chosen = sorted(self.random.sample(range(len(words)), int(len(words) * self.ratio)))
        spans = []
        for k, index in enumerate(chosen):
            if k == 0 or index != chosen[k - 1] + 1:
                spans.append("")
            spans[-1] += " " + words[index]
            words[index] = "[MASK]"
        kept = [w for i, w in enumerate(words) if not (i > 0 and w == "[MASK]" and words[i - 1] == "[MASK]")]
        return "".join(" " + w for w in kept), spans

    def _encode_source(self, text):
        tokens = self.tokenizer.EncodeAsIds(" " + text).tokenization
        if self.mask_name != "MASK":   # the text spells masks as [MASK]; the model expects the task mask
            plain = command_id(self.tokenizer, "MASK")
            tokens = [self.mask_id if token == plain else token for token in tokens]
        return tokens

    def __getitem__(self, idx):
        example = self.example_list[idx]
        if self.split == "test":
            return self._eval_item(idx, self._encode_source(example.text_a), self.mask_id)
        masked, spans = self.mask_text(example.text_a)
        max_length = self.max_src_length + int(self.max_src_length * self.ratio)
        return self._spans_item(idx, self._encode_source(masked), spans, self.mask_id, max_length)


# The dataset class of each kind a task's row may name (``TaskSpec.dataset``).
DATASETS = {GENERATION: Seq2SeqDataset, CUSTOMIZATION: CustomizationDataset, EXTRACTION: ExtractionDataset,
            BLANK: BlankLMDataset}


def dataset_class(task):
    """The dataset class that lays out ``task``'s samples (any case; unknown names list the tasks)."""
    return DATASETS[get_task(task).dataset]


def build_dataset(config, split, tokenizer):
    """The dataset of ``config.task.task`` for ``split`` (``train``, ``dev`` or ``test``)."""
    return dataset_class(config.task.task)(config, split, tokenizer)
