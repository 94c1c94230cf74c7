"""LAMBADA and sliding-window perplexity datasets (spec section 9.5).

Block-LM samples are dicts ``text, target, attention_mask (= sep), loss_mask, position_id [2, L]``
laid out by :func:`tasks.inputs.pack_glm_input`; with ``block_lm`` off (GPT-style models) they are
``text, loss_mask`` and the evaluator shifts by one (``loss_mask[i]`` scores the prediction of
``text[i]`` from the positions before it).
"""

import bisect
import math

import numpy as np
from torch.utils.data import Dataset

from ..inputs import command_id, pack_glm_input
from ..jsonl import TaskDataError, json_lines
from .detokenizer import get_detokenizer




def data_path(config):
    """The single file ``--valid-data`` names (the original reads its first entry)."""
    path = config.data.valid_data
    if isinstance(path, (list, tuple)):
        path = path[0] if path else None
    if not path:
        raise TaskDataError(f"--task {config.task.task} needs --valid-data pointing at the evaluation file")
    return path


def _read_text(path):
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        raise TaskDataError(f"{path}: evaluation file not found") from None


def _mask_id(tokenizer, config):
    return command_id(tokenizer, "gMASK" if config.objective.task_mask else "MASK")


def encode(tokenizer, text):
    return list(tokenizer.EncodeAsIds(text).tokenization)


# ---------------------------------------------------------------------------------------------
# LAMBADA

def split_last_word(text):
    """The strict LAMBADA split: the last whitespace-separated word is the answer."""
    pieces = text.strip().rsplit(None, 1)
    if len(pieces) < 2:
        return None
    return pieces[0].strip(), pieces[1]


class LambadaDataset(Dataset):
    """One sample per LAMBADA passage; the answer (``" " + last word``) is teacher-forced and a
    passage counts as correct when every answer token is the argmax."""

    def __init__(self, config, tokenizer, path):
        self.config, self.tokenizer, self.path = config, tokenizer, path
        self.max_len = config.data.seq_length
        self.block_lm = config.objective.block_lm
        self.unidirectional = config.task.unidirectional
        self.mask_id = _mask_id(tokenizer, config)
        self.context_tokens, self.label_tokens = [], []
        for where, record in json_lines(path):
            if not isinstance(record, dict) or not isinstance(record.get("text"), str):
                raise TaskDataError(f"{where}: expected an object with a string 'text', got {str(record)[:80]!r}")
            split = split_last_word(record["text"])
            if split is None:
                raise TaskDataError(f"{where}: a LAMBADA passage needs at least two words")
            context, word = split
            self.context_tokens.append(encode(tokenizer, context))
            self.label_tokens.append(encode(tokenizer, " " + word))
        if not self.context_tokens:
            raise TaskDataError(f"{path}: no LAMBADA passages in this file")

    def __len__(self):
        return len(self.context_tokens)

    def __getitem__(self, idx):
        context, answer = self.context_tokens[idx], self.label_tokens[idx]
        tok = self.tokenizer
        if not self.block_lm:
            # GPT-style: context + answer left to right, padded with id 0 as the original does.
            tokens = (context + answer)[-self.max_len:]
            loss = [0] * (len(tokens) - len(answer)) + [1] * len(answer)
            pad = self.max_len - len(tokens)
            return {"text": np.array(tokens + [0] * pad, dtype=np.int64),
                    "loss_mask": np.array(loss + [0] * pad, dtype=np.int64)}
        # [ENC] + context + [mask] + [eos] + [sop] + answer[:-1] must fit: cut the context on the left.
        room = self.max_len - 3 - len(answer)
        if room < 1:
            raise TaskDataError(f"{self.path}: sample {idx}: answer of {len(answer)} tokens does not fit "
                                f"--seq-length {self.max_len}")
        context = context[-room:]
        enc, eos, sop = command_id(tok, "ENC"), command_id(tok, "eos"), command_id(tok, "sop")
        if self.unidirectional:
            # Only the first token is bidirectional context; the rest is generated before the answer.
            part_a = [enc] + context[:1] + [self.mask_id, eos]
            sequence = context[1:] + answer
            loss = [0] * (len(context) - 1) + [1] * len(answer)
        else:
            part_a = [enc] + context + [self.mask_id, eos]
            sequence, loss = answer, [1] * len(answer)
        packed = pack_glm_input(part_a, [sop] + sequence[:-1], sequence, loss, mask_position=len(part_a) - 2,
                                max_len=self.max_len, pad_id=eos,
                                block_position=not self.config.objective.no_block_position)
        return packed.sample()


def build_lambada_dataset(tokenizer, config):
    return LambadaDataset(config, tokenizer, data_path(config))


# ---------------------------------------------------------------------------------------------
# Perplexity over sliding windows

class LMDataset(Dataset):
    """Windows of ``max_seq_len = seq_length - 1`` tokens over each document, starting every
    ``--overlapping-eval`` tokens.  The first window of a document scores all its tokens but the
    first; later windows score only the tokens past the previous window (the last ``stride``), with
    the tokens before them as bidirectional context (block LM, unless ``--unidirectional``)."""

    def __init__(self, config, documents, tokenizer, num_original_tokens, num_tokenized_tokens):
        self.config, self.documents, self.tokenizer = config, documents, tokenizer
        self.max_seq_len = config.data.seq_length - 1
        stride = config.evaluation.overlapping_eval if config.evaluation.overlapping_eval is not None else self.max_seq_len
        self.stride = max(1, min(stride, self.max_seq_len))
        self.block_lm = config.objective.block_lm
        self.unidirectional = config.task.unidirectional
        self.mask_id = _mask_id(tokenizer, config)
        self.num_original_tokens = num_original_tokens
        self.num_tokenized_tokens = num_tokenized_tokens
        counts = [math.ceil(max(len(doc) - self.max_seq_len, 0) / self.stride) + 1 for doc in documents]
        self.ends = list(np.cumsum(counts))

    def __len__(self):
        return int(self.ends[-1]) if self.ends else 0

    def window(self, idx):
        """``(document index, window index in it, tokens of the window)``."""
        doc = bisect.bisect_right(self.ends, idx)
        k = idx - (int(self.ends[doc - 1]) if doc else 0)
        start = k * self.stride
        return doc, k, self.documents[doc][start:start + self.max_seq_len]

    def __getitem__(self, idx):
        _, k, tokens = self.window(idx)
        tok = self.tokenizer
        # The first window scores every token but its first; later ones only the tokens past the
        # previous window.  Tokens before ``split`` are bidirectional context.
        context = 1 if k == 0 else self.max_seq_len - self.stride
        scored = len(tokens) - context
        if not self.block_lm:
            loss = [1] * len(tokens) if k == 0 else [0] * context + [1] * scored
            pad = self.max_seq_len - len(tokens)
            return {"text": np.array(tokens + [0] * pad, dtype=np.int64),
                    "loss_mask": np.array(loss + [0] * pad, dtype=np.int64)}
        split = 1 if self.unidirectional else context
        part_a = [command_id(tok, "ENC")] + tokens[:split] + [self.mask_id]
        rest = tokens[split:]
        part_b = ([command_id(tok, "sop")] + rest[:-1]) if rest else []
        loss = [0] * (len(rest) - scored) + [1] * scored
        packed = pack_glm_input(part_a, part_b, rest, loss, mask_position=len(part_a) - 1,
                                max_len=self.max_seq_len + 2, pad_id=command_id(tok, "eos"),
                                block_position=not self.config.objective.no_block_position)
        return packed.sample()


def build_wikitext103_dataset(tokenizer, config):
    """The whole (detokenised) file as one document; ``num_original_tokens`` counts the words of the
    raw file, for the adjusted perplexity."""
    path = data_path(config)
    raw = _read_text(path)
    if not raw.strip():
        raise TaskDataError(f"{path}: the evaluation file is empty")
    num_original_tokens = len(raw.strip().split(" "))
    tokens = encode(tokenizer, get_detokenizer(path)(raw))
    return LMDataset(config, [tokens], tokenizer, num_original_tokens, len(tokens))


def build_lm_dataset(tokenizer, config):
    """One document per non-empty line."""
    path = data_path(config)
    documents, num_original_tokens = [], 0
    for line in _read_text(path).splitlines():
        line = line.strip()
        if not line:
            continue
        documents.append(encode(tokenizer, line))
        num_original_tokens += len(line.split(" "))
    if not documents:
        raise TaskDataError(f"{path}: the evaluation file has no non-empty lines")
    return LMDataset(config, documents, tokenizer, num_original_tokens, sum(len(d) for d in documents))
