"""Fixtures of the SuperGLUE tests: reference files read once, tokenizers built once per argv, and
cfg from a recorded argv."""

import json

import pytest

from tests.tasks.conftest import recorded_args

# The classification references mark their argv with this token: the flags were parsed (with
# --cloze-eval from the model config) and cloze_eval was then switched off.
NO_CLOZE_MARK = "(cloze_eval=False)"


@pytest.fixture(scope="session")
def load_reference(reference_dir):
    """``load_reference(name)`` -> the parsed ``tasks/<name>.json`` (each file read once)."""
    cache = {}

    def load(name):
        if name not in cache:
            cache[name] = json.loads((reference_dir / "tasks" / f"{name}.json").read_text())
        return cache[name]

    return load


@pytest.fixture(scope="session")
def tokenizer_for():
    """``tokenizer_for(cfg)`` -> the tokenizer of ``cfg`` (built once per tokenizer setup)."""
    from data_utils import prepare_tokenizer

    cache = {}

    def get(cfg):
        key = (cfg.data.tokenizer_type, cfg.data.tokenizer_model_type, cfg.objective.block_lm, cfg.objective.task_mask)
        if key not in cache:
            cache[key] = prepare_tokenizer(cfg)
        return cache[key]

    return get


def task_args(argv, data_dir, **overrides):
    """``get_args`` on a recorded argv (data prefix replaced, the no-cloze mark applied), then
    ``overrides``."""
    if NO_CLOZE_MARK in argv:
        argv = [a for a in argv if a != NO_CLOZE_MARK]
        overrides = {"cloze_eval": False, **overrides}
    return recorded_args(argv, data_dir, overrides)


BERT_ARGV = ("--block-lm", "--cloze-eval", "--tokenizer-type", "BertWordPieceTokenizer",
             "--tokenizer-model-type", "bert-large-uncased", "--max-position-embeddings", "512")


def bert_args(task, data_dir, *argv, seq_length=64, **overrides):
    """GLM-Large-style cfg (BERT vocabulary, shipped with the project) for ``task`` on ``data_dir``."""
    from tests.helpers import parse_config

    return parse_config([*BERT_ARGV, "--task", task, "--data-dir", str(data_dir), "--seq-length", str(seq_length),
                         *argv], **overrides)


@pytest.fixture(scope="session")
def bert():
    """The BERT tokenizer of GLM-Large (built once)."""
    from data_utils import prepare_tokenizer
    from tests.helpers import parse_config

    return prepare_tokenizer(parse_config(list(BERT_ARGV)))


def write_split(directory, name, records):
    """Write ``records`` as JSON lines to ``directory/name``; returns the directory."""
    import pathlib

    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records),
                                  encoding="utf-8")
    return directory
