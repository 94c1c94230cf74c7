"""Every example line of docs/task_formats.md parses through its task's reader (issue 20: the field
names of the task files appeared nowhere in the docs)."""

import re
from collections import defaultdict
from pathlib import Path

import pytest

from tests.tasks.conftest import TINY_BERT_GLM

DOC = Path(__file__).resolve().parents[2] / "docs" / "task_formats.md"
EXAMPLE = re.compile(r"<!-- example: (\S+) (\S+) -->\n```\w*\n(.*?)```", re.S)
SEQ2SEQ = {"cnn_dm", "customization", "extraction", "blank", "squad_generation"}
CHINESE = {"afqmc", "tnews", "cluewsc"}   # their patterns need the Chinese vocabulary: read, not encoded


def documented_examples():
    """``{task: {relative file name: content}}`` from the document."""
    examples = defaultdict(dict)
    for task, name, content in EXAMPLE.findall(DOC.read_text(encoding="utf-8")):
        examples[task][name] = content
    return examples


EXAMPLES = documented_examples()


def test_the_document_covers_every_json_lines_task():
    from tasks.superglue.registry import task_names
    jsonl_tasks = {"copa", "wsc", "rte", "cb", "ax-b", "ax-g", "boolq", "wic", "multirc", "record", "afqmc",
                   "tnews", "cluewsc"}
    assert jsonl_tasks <= set(task_names())
    assert jsonl_tasks | SEQ2SEQ <= set(EXAMPLES)


@pytest.fixture(scope="module")
def tokenizer():
    from data_utils import prepare_tokenizer
    from tests.helpers import parse_config
    return prepare_tokenizer(parse_config(TINY_BERT_GLM))


def _args(task, data_dir, *extra):
    from tests.helpers import parse_config
    return parse_config(TINY_BERT_GLM + ["--task", task, "--data-dir", str(data_dir), "--seq-length", "64",
                                     "--cloze-eval", *extra])


def _write(folder, files):
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")


@pytest.mark.parametrize("task", sorted(set(EXAMPLES) - SEQ2SEQ))
def test_classification_example_parses_and_encodes(task, tmp_path, tokenizer):
    from tasks.superglue.dataset import SuperGlueDataset
    from tasks.superglue.registry import get_task
    _write(tmp_path, EXAMPLES[task])
    if task in CHINESE:
        examples = get_task(task).make_processor(_args(task, tmp_path)).get_examples("train", str(tmp_path))
    else:
        examples = SuperGlueDataset(_args(task, tmp_path), "train", tokenizer).examples  # encodes the first
    assert len(examples) >= 1
    assert all(example.label is not None for example in examples)


@pytest.mark.parametrize("task", sorted(SEQ2SEQ))
def test_seq2seq_example_parses_and_encodes(task, tmp_path, tokenizer):
    from tasks.seq2seq.dataset import build_dataset
    _write(tmp_path, EXAMPLES[task])
    cfg = _args(task, tmp_path, "--src-seq-length", "48", "--tgt-seq-length", "16")
    dataset = build_dataset(cfg, "train", tokenizer)
    assert len(dataset) >= 1
    assert dataset[0]["text"] is not None
