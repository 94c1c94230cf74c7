"""Zero-shot multiple-choice data: JSONL lines ``{"inputs_pretokenized": str,
"choices_pretokenized": [str, ...], "label": int}`` from the files ``--test-data`` globs name."""

import glob

from ..inputs import command_id, pack_glm_input
from ..jsonl import TaskDataError, json_lines
from ..language_model.dataset import encode

REQUIRED = ("inputs_pretokenized", "choices_pretokenized", "label")
MASK_TEXT = "[MASK]"


def expand_paths(patterns):
    patterns = [patterns] if isinstance(patterns, str) else list(patterns or [])
    if not patterns:
        raise TaskDataError("--task multichoice needs --test-data (JSONL files or glob patterns)")
    paths = []
    for pattern in patterns:
        found = sorted(glob.glob(pattern))
        if not found:
            raise TaskDataError(f"--test-data {pattern}: no file matches")
        paths += found
    return paths


def read_examples(path):
    """The checked records of one file, with ``uid = path:line``."""
    examples = []
    for where, record in json_lines(path):
        missing = [k for k in REQUIRED if not isinstance(record, dict) or k not in record]
        if missing:
            raise TaskDataError(f"{where}: missing key(s) {', '.join(missing)} (need {', '.join(REQUIRED)})")
        choices, label = record["choices_pretokenized"], record["label"]
        if not isinstance(record["inputs_pretokenized"], str) or not isinstance(choices, list) \
                or not choices or not all(isinstance(c, str) for c in choices):
            raise TaskDataError(f"{where}: 'inputs_pretokenized' must be a string and "
                                "'choices_pretokenized' a non-empty list of strings")
        if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < len(choices):
            raise TaskDataError(f"{where}: label {label!r} is not an index into the "
                                f"{len(choices)} choices")
        examples.append({"uid": where, **{k: record[k] for k in REQUIRED}})
    if not examples:
        raise TaskDataError(f"{path}: no examples in this file")
    return examples


class MultiChoiceDataset:
    """Item ``i`` = ``{"samples": [one GLM sample per choice], "label": int, "uid": str}``.

    Bidirectional: ``[ENC] input [eos] | [sop] choice[:-1]`` at the input's (last) ``[MASK]``,
    which is appended when the input has none.  ``--unidirectional``: ``[ENC] [gMASK] | [sop] input
    choice[:-1]`` (``[MASK]`` when the tokenizer has no ``[gMASK]``) with loss on the choice only.  The input is cut on the left so that the longest
    choice fits ``--seq-length``.  A choice is scored by the summed log-probability of its tokens.
    """

    def __init__(self, config, tokenizer, paths):
        self.config, self.tokenizer = config, tokenizer
        self.max_len = config.data.seq_length
        self.unidirectional = config.task.unidirectional
        self.examples = [e for path in paths for e in read_examples(path)]
        self.block_position = not config.objective.no_block_position

    def __len__(self):
        return len(self.examples)

    def __getitem__(self, idx):
        example = self.examples[idx]
        samples = choice_samples(self.tokenizer, example["inputs_pretokenized"], example["choices_pretokenized"],
                                 self.max_len, self.unidirectional, self.block_position, where=example["uid"])
        return {"samples": samples, "label": example["label"], "uid": example["uid"]}


def _encode_input(tokenizer, text, mask_id):
    """Ids of ``text`` with every literal ``[MASK]`` as ``mask_id`` (the pieces between are encoded apart)."""
    pieces = text.split(MASK_TEXT)
    ids = []
    for i, piece in enumerate(pieces):
        if i:
            ids.append(mask_id)
        if piece:
            ids += encode(tokenizer, piece)
    return ids


def choice_samples(tokenizer, text, choices, max_len, unidirectional=False, block_position=True, where="input"):
    """One GLM sample per choice (see :class:`MultiChoiceDataset`); a choice is scored by the summed
    log-probability of its tokens.  Also what the lm-evaluation-harness backend scores a
    ``(context, continuation)`` pair with (``choices = [continuation]``)."""
    tok = tokenizer
    choices = [encode(tok, c) for c in choices]
    if not all(choices):
        raise TaskDataError(f"{where}: a choice encodes to no tokens")
    room = max_len - max(len(c) for c in choices) - 2
    if room < 1:
        raise TaskDataError(f"{where}: the longest choice does not fit --seq-length {max_len}")
    enc, sop = command_id(tok, "ENC"), command_id(tok, "sop")
    samples = []
    if unidirectional:
        try:
            mask_id = command_id(tok, "gMASK")
        except KeyError:   # a tokenizer built without --task-mask has only [MASK]
            mask_id = command_id(tok, "MASK")
        text = _encode_input(tok, text, command_id(tok, "MASK"))[-room:]
        for choice in choices:
            sequence = text + choice
            samples.append(pack_glm_input(
                [enc, mask_id], [sop] + sequence[:-1], sequence, [0] * len(text) + [1] * len(choice),
                mask_position=1, block_position=block_position).sample())
    else:
        mask_id = command_id(tok, "MASK")
        text = _encode_input(tok, text, mask_id)
        if mask_id not in text:
            text.append(mask_id)
        text = text[-room:]
        if mask_id not in text:      # the mask fell off the left: keep it as the last token
            text = text[1:] + [mask_id]
        part_a = [enc] + text + [command_id(tok, "eos")]
        position = len(part_a) - 1 - part_a[::-1].index(mask_id)
        for choice in choices:
            samples.append(pack_glm_input(part_a, [sop] + choice[:-1], choice, mask_position=position,
                                          block_position=block_position).sample())
    return samples


def build_multichoice_dataset(tokenizer, config):
    return MultiChoiceDataset(config, tokenizer, expand_paths(config.data.test_data))
