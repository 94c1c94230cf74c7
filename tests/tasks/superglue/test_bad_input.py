"""Bad data and bad flags fail at once with a message that says what and where."""

import pytest

from tasks.jsonl import TaskDataError
from tasks.superglue.dataset import SuperGlueDataset
from tasks.superglue.errors import TaskConfigError
from tasks.superglue.pvp import RtePVP
from tasks.superglue.registry import get_task

from .conftest import bert_args, write_split

RTE = {"premise": "A dog runs.", "hypothesis": "An animal moves.", "label": "entailment", "idx": 0}


def test_missing_split_file_names_file_and_directory(bert, tmp_path):
    with pytest.raises(TaskDataError) as error:
        SuperGlueDataset(bert_args("rte", tmp_path), "train", bert)
    assert "train.jsonl" in str(error.value) and str(tmp_path) in str(error.value)
    with pytest.raises(TaskDataError, match="dev32.jsonl"):
        SuperGlueDataset(bert_args("rte", tmp_path, "--few-superglue"), "dev", bert)
    with pytest.raises(TaskDataError, match="--data-dir"):
        SuperGlueDataset(bert_args("rte", tmp_path).updated(data_dir=None), "dev", bert)
    with pytest.raises(ValueError, match="split"):
        SuperGlueDataset(bert_args("rte", tmp_path), "validation", bert)


def test_malformed_lines_name_file_and_line(bert, tmp_path):
    (tmp_path / "val.jsonl").write_text('{"premise": "a", "hypothesis": "b", "label": "entailment", "idx": 0}\n'
                                        '\n{"premise": "a", oops}\n')
    with pytest.raises(TaskDataError, match=r"val.jsonl:3: not a JSON line"):
        SuperGlueDataset(bert_args("rte", tmp_path), "dev", bert)
    write_split(tmp_path, "val.jsonl", [{"hypothesis": "b", "idx": 0}])
    with pytest.raises(TaskDataError, match=r"val.jsonl:1: missing key 'premise'"):
        SuperGlueDataset(bert_args("rte", tmp_path), "dev", bert)
    write_split(tmp_path, "val.jsonl", [[1, 2]])
    with pytest.raises(TaskDataError, match=r"val.jsonl:1: expected a JSON object"):
        SuperGlueDataset(bert_args("rte", tmp_path), "dev", bert)


def test_label_outside_the_task(bert, tmp_path):
    write_split(tmp_path, "val.jsonl", [RTE, dict(RTE, idx=1, label="maybe")])
    with pytest.raises(TaskDataError, match=r"val.jsonl:2: label 'maybe' is not one of .*'not_entailment'"):
        SuperGlueDataset(bert_args("rte", tmp_path), "dev", bert)
    copa = {"premise": "p", "choice1": "a", "choice2": "b", "question": "effect", "idx": 0, "label": 2}
    write_split(tmp_path, "val.jsonl", [copa])
    with pytest.raises(TaskDataError, match="label 2"):
        SuperGlueDataset(bert_args("copa", tmp_path), "dev", bert)
    write_split(tmp_path, "val.jsonl", [dict(copa, label=0, question="why")])
    with pytest.raises(TaskDataError, match="cause.*effect"):
        SuperGlueDataset(bert_args("copa", tmp_path), "dev", bert)


def test_unknown_pattern_lists_the_task_patterns(bert, tmp_path):
    write_split(tmp_path, "val.jsonl", [RTE])
    with pytest.raises(TaskConfigError, match=r"no pattern 7.*\[0, 1, 2, 3, 4\]"):
        SuperGlueDataset(bert_args("rte", tmp_path, "--pattern-id", "7"), "dev", bert)
    with pytest.raises(TaskConfigError, match=r"\[0\]"):
        get_task("record").make_pvp(bert_args("record", tmp_path, "--pattern-id", "1"), bert)


def test_unknown_task_lists_the_tasks(bert, tmp_path):
    with pytest.raises(TaskConfigError, match="unknown SuperGLUE/CLUE task 'rtee'.*boolq.*copa.*wsc"):
        SuperGlueDataset(bert_args("rtee", tmp_path), "dev", bert)
    assert get_task("BoolQ").name == "boolq" and get_task("ReCoRD").name == "record"


class LongVerbalizerPVP(RtePVP):
    VERBALIZER = {"entailment": [" Yes indeed"], "not_entailment": [" No"]}


def test_single_token_task_needs_one_token_verbalizers(bert, tmp_path):
    cfg = bert_args("rte", tmp_path)
    with pytest.raises(TaskConfigError, match=r"' Yes indeed' of label 'entailment' is 2 tokens"):
        LongVerbalizerPVP(cfg, bert, ["entailment", "not_entailment"], 64)
    # the same verbalizer is fine when answers are scored as sequences
    LongVerbalizerPVP(cfg, bert, ["entailment", "not_entailment"], 64, is_multi_token=True)
    with pytest.raises(TaskConfigError, match="no verbalizer for label 'other'"):
        RtePVP(cfg, bert, ["entailment", "other"], 64)


def test_unfillable_patterns(bert, tmp_path):
    record = {"idx": 0, "passage": {"text": "Paris is big.", "entities": [{"start": 0, "end": 4}]},
              "qas": [{"query": "It is big.", "idx": 0, "answers": [{"text": "Paris"}]}]}
    write_split(tmp_path, "val.jsonl", [record])
    # The first example is encoded when the dataset is built (in the main process, not a DataLoader worker).
    with pytest.raises(TaskDataError, match="@placeholder"):
        SuperGlueDataset(bert_args("record", tmp_path), "dev", bert)
    write_split(tmp_path, "val.jsonl", [RTE])
    with pytest.raises(TaskConfigError, match=r"rte-dev: .*does not fit --seq-length.*\(--seq-length 4\)"):
        SuperGlueDataset(bert_args("rte", tmp_path, seq_length=4), "dev", bert)


UNLABELLED = {
    "rte": RTE,
    "wic": {"sentence1": "He sat on the bank.", "sentence2": "The bank was closed.", "word": "bank", "idx": 0,
            "label": True},
    "boolq": {"passage": "Paris is in France.", "question": "is paris in france", "idx": 0, "label": True},
    "copa": {"premise": "p", "choice1": "a", "choice2": "b", "question": "effect", "idx": 0, "label": 0},
    "afqmc": {"sentence1": "a", "sentence2": "b", "label": "1"},
}


@pytest.mark.parametrize("task", list(UNLABELLED))
def test_unlabelled_training_line_names_file_and_line(task, bert, tmp_path):
    """Issue 20, case 6: a training line without "label" trained as the first label."""
    labelled = UNLABELLED[task]
    unlabelled = {k: v for k, v in labelled.items() if k != "label"}
    name = "train.json" if task == "afqmc" else "train.jsonl"
    write_split(tmp_path, name, [labelled, unlabelled])
    with pytest.raises(TaskDataError, match=rf"{name}:2: this training line has no label"):
        get_task(task).make_processor(bert_args(task, tmp_path)).get_examples("train", str(tmp_path))
    # Unlabelled test lines are what test files are.
    test_name = "test.json" if task == "afqmc" else "test.jsonl"
    write_split(tmp_path, test_name, [unlabelled])
    examples = get_task(task).make_processor(bert_args(task, tmp_path)).get_examples("test", str(tmp_path))
    assert [e.label for e in examples] == [None]
