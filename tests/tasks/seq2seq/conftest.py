"""Tokenizers and small data folders in each seq2seq file format."""

import json

import pytest

from data_utils import prepare_tokenizer
from tests.helpers import parse_config

BERT = ["--block-lm", "--tokenizer-type", "BertWordPieceTokenizer", "--tokenizer-model-type", "bert-large-uncased"]
GPT2 = ["--block-lm", "--task-mask", "--tokenizer-type", "GPT2BPETokenizer"]

NUMBER_WORDS = ("one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
                "sixteen seventeen eighteen nineteen twenty").split()


def seq2seq_args(base, task, data_dir, src=24, tgt=8, *extra):
    """Parsed flags for a seq2seq task over ``data_dir``."""
    return parse_config([*base, "--task", task, "--data-dir", str(data_dir), "--src-seq-length", str(src),
                     "--tgt-seq-length", str(tgt), *extra])


@pytest.fixture(scope="session")
def bert_tokenizer():
    return prepare_tokenizer(parse_config(BERT))


@pytest.fixture(scope="session")
def gpt2_tokenizer():
    return prepare_tokenizer(parse_config(GPT2))


def squad_document(questions, context=" ".join(NUMBER_WORDS)):
    """A one-paragraph SQuAD file; ``questions``: ``(id, question, [answer texts])``."""
    qas = [{"id": qid, "question": question,
            "answers": [{"text": a, "answer_start": max(context.find(a), 0)} for a in answers]}
           for qid, question, answers in questions]
    return {"version": "test", "data": [{"title": "t", "paragraphs": [{"context": context, "qas": qas}]}]}


def write_json(path, document):
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    return path


def write_lines(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path
