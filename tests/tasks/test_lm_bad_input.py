"""Clear errors for unusable LAMBADA / perplexity files."""

import pytest

from tasks.language_model.dataset import (TaskDataError, build_lambada_dataset, build_lm_dataset,
                                          build_wikitext103_dataset)
from tests.tasks.helpers_tasks import WordTokenizer, task_args, write_jsonl


def test_lambada_line_without_text(tmp_path):
    path = write_jsonl(tmp_path / "lambada.jsonl", [{"text": "the cat sat"}, {"passage": "the dog"}])
    with pytest.raises(TaskDataError, match=r"lambada\.jsonl:2: expected an object with a string 'text'"):
        build_lambada_dataset(WordTokenizer(), task_args("--valid-data", str(path)))


def test_lambada_not_json(tmp_path):
    path = tmp_path / "lambada.jsonl"
    path.write_text('{"text": "the cat sat"}\nthe dog\n')
    with pytest.raises(TaskDataError, match=r"lambada\.jsonl:2: not a JSON line"):
        build_lambada_dataset(WordTokenizer(), task_args("--valid-data", str(path)))


@pytest.mark.parametrize("builder", [build_lambada_dataset, build_lm_dataset, build_wikitext103_dataset])
def test_empty_file(tmp_path, builder):
    path = tmp_path / "wiki.test.tokens"
    path.write_text("\n \n")
    with pytest.raises(TaskDataError, match=r"wiki\.test\.tokens"):
        builder(WordTokenizer(), task_args("--valid-data", str(path)))


def test_missing_valid_data_and_file():
    with pytest.raises(TaskDataError, match="--valid-data"):
        build_lm_dataset(WordTokenizer(), task_args())
    with pytest.raises(TaskDataError, match="not found"):
        build_lm_dataset(WordTokenizer(), task_args("--valid-data", "/nonexistent/lines.txt"))
