"""Summarisation sources: CNN/DailyMail, Gigaword and XSum (spec section 9.4).

A *format* (named by a task's row in :mod:`tasks.seq2seq.registry`, which it receives as ``spec``)
turns the files of one task into :class:`InputExample` s and packs one example's source
into part-A token ids; :class:`tasks.seq2seq.dataset.Seq2SeqDataset` does the rest.  The source is
``[ENC] [MASK] " Content:" " " + article``, the article cut to fit ``--src-seq-length``; the target is
the summary.  The reference kept for scoring is the summary as the tokenizer decodes it (lower-cased
by BERT), because predictions come out of the same decoder.
"""

import os

from ..jsonl import TaskDataError
from .detokenizers import clean_summary_line
from .example import InputExample
from .files import XSUM_SPLIT_FILE, XSUM_SPLIT_KEYS, check_split, read_json, read_lines, read_parallel, split_path


def decoded_reference(tokenizer, text):
    """``text`` as it comes back from the tokenizer (what a perfect prediction would decode to)."""
    return tokenizer.DecodeIds(tokenizer.EncodeAsIds(text).tokenization)


def summary_examples(pairs, split, tokenizer):
    """One example per ``(source, target, origin)``; guid ``<split>-<index>``."""
    examples, origins = [], []
    for index, (source, target, origin) in enumerate(pairs):
        meta = {"ref": decoded_reference(tokenizer, target)}
        examples.append(InputExample(guid=f"{split}-{index}", text_a=source, text_b=target, meta=meta))
        origins.append(origin)
    return examples, origins


def summary_source_tokens(tokenizer, article, mask_id, max_length, enc_id):
    """``[ENC, mask] + " Content:" + " " + article``, the article cut so the whole fits ``max_length``."""
    prompt = [enc_id, mask_id] + tokenizer.EncodeAsIds(" Content:").tokenization
    article_tokens = tokenizer.EncodeAsIds(" " + article).tokenization
    return prompt + article_tokens[:max(max_length - len(prompt), 0)]


class SummaryFormat:
    """``cnn_dm``, ``cnn_dm_original``, ``gigaword`` (and ``xsum`` given as plain files):
    ``{train,val,test}.source`` / ``.target``, one example per line pair.  Lines are stripped,
    punctuation-standardised and detokenized as :func:`clean_summary_line` says, with the task's
    ``TaskSpec.detokenizer``; the split files are named by its ``split_stems``."""

    def __init__(self, spec, data_dir, tokenizer):
        self.spec, self.data_dir, self.tokenizer = spec, data_dir, tokenizer

    def examples(self, split):
        source_path = split_path(self.data_dir, self.spec.split_stems, split, ".source")
        target_path = split_path(self.data_dir, self.spec.split_stems, split, ".target")
        detokenize = self.spec.detokenizer
        pairs = [(clean_summary_line(source, detokenize, is_target=False),
                  clean_summary_line(target, detokenize, is_target=True), f"{source_path}:{number}")
                 for number, (source, target) in enumerate(read_parallel(source_path, target_path), 1)]
        return summary_examples(pairs, split, self.tokenizer)

    def source_tokens(self, example, mask_id, max_length, ids):
        return summary_source_tokens(self.tokenizer, example.text_a, mask_id, max_length, ids.enc)

    @staticmethod
    def target_text(example):
        return example.text_b


class XSumFormat(SummaryFormat):
    """XSum as released: ``XSum-TRAINING-DEV-TEST-SPLIT-90-5-5.json`` (ids under ``train``,
    ``validation``, ``test``) and one ``<id>.summary`` file per article, in which ``[SN]NAME[SN]``
    lines open sections; the source is the ``RESTBODY`` section, the target the ``FIRST-SENTENCE``
    one, each the section's non-blank lines stripped and joined with spaces.  Without the split file
    the folder is read as plain ``.source``/``.target`` files (no detokenization for XSum)."""

    def examples(self, split):
        check_split(split)
        split_file = os.path.join(self.data_dir or "", XSUM_SPLIT_FILE)
        if not os.path.exists(split_file):
            return super().examples(split)
        ids = read_json(split_file, "XSum split file")
        key = XSUM_SPLIT_KEYS[split]
        if not isinstance(ids, dict) or key not in ids:
            raise TaskDataError(f"{split_file}: no {key!r} list of article ids")
        pairs = []
        for article_id in ids[key]:
            path = os.path.join(self.data_dir, f"{article_id}.summary")
            sections = read_xsum_sections(path)
            missing = [name for name in ("RESTBODY", "FIRST-SENTENCE") if name not in sections]
            if missing:
                raise TaskDataError(f"{path}: no [SN]{missing[0]}[SN] section")
            pairs.append((sections["RESTBODY"], sections["FIRST-SENTENCE"], path))
        return summary_examples(pairs, split, self.tokenizer)


def read_xsum_sections(path):
    """``{section name: its non-blank lines, stripped, joined with spaces}`` of one ``.summary`` file.
    A later section of the same name replaces an earlier one, as in the original reader."""
    sections, name, lines = {}, None, []
    for line in read_lines(path, "XSum article"):
        line = line.strip()
        if line.startswith("[SN]"):
            if name is not None:
                sections[name] = " ".join(lines)
            name, lines = line[4:-4], []
        elif line:
            lines.append(line)
    if name is not None:
        sections[name] = " ".join(lines)
    return sections
