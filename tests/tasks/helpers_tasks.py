"""A word-level stand-in tokenizer and a tiny GLM for task tests (vocabulary of 64)."""

import json
from types import SimpleNamespace

import torch

from tests.helpers import parse_config
from tests.helpers import tiny_glm

COMMANDS = {"pad": 0, "eos": 0, "ENC": 1, "MASK": 2, "gMASK": 3, "sMASK": 4, "sop": 5, "eop": 6, "sep": 7,
            "unk": 8}
VOCAB = 64
FIRST_WORD_ID = 10


class WordTokenizer:
    """Whitespace words -> ids 10..63 (in order of first sight; a fixed table makes it deterministic)."""

    WORDS = ("the a cat dog sat on mat and then ran away to house red blue green big small it was is "
             "he she they saw old church map left turn looked again said had yes no maybe one two three "
             "four five six seven eight nine ten . , =").split()

    def __init__(self):
        self.ids = {w: FIRST_WORD_ID + i for i, w in enumerate(self.WORDS)}
        assert max(self.ids.values()) < VOCAB

    def get_command(self, name):
        return SimpleNamespace(Id=COMMANDS[name])

    def EncodeAsIds(self, text):
        return SimpleNamespace(tokenization=[self.ids.get(w, COMMANDS["unk"]) for w in text.split()])


def task_args(*argv, seq_length=16, **overrides):
    return parse_config(["--block-lm", "--seq-length", str(seq_length), *argv], **overrides)


def model(seed=0, layers=2, max_seq=64, block=True):
    torch.manual_seed(seed)
    return tiny_glm(vocab=VOCAB, max_seq=max_seq, layers=layers, parallel_output=False, block=block).eval()


def rig(model, token):
    """Make ``token`` the argmax everywhere: a constant final hidden state aligned with its embedding."""
    with torch.no_grad():
        norm = model.transformer.final_layernorm
        direction = torch.randn(norm.weight.shape, generator=torch.Generator().manual_seed(1))
        norm.weight.zero_()
        norm.bias.copy_(direction)
        model.word_embeddings.weight[token] = direction * 100
    return model


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path
