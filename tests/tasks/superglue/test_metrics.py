"""Metrics on hand-computed cases, and the submission files."""

import json

import pytest

from tasks.superglue import metrics
from tasks.superglue.examples import InputExample
from tasks.superglue.registry import get_task, write_predictions


def test_accuracy_is_a_percentage():
    assert metrics.accuracy([1, 0, 1, 1], [1, 1, 1, 0], None) == 50.0
    assert metrics.accuracy([], [], None) == 0.0
    with pytest.raises(ValueError):
        metrics.accuracy([1], [1, 0], None)


def test_binary_and_macro_f1():
    # tp = 2, fp = 1, fn = 1 -> 2*2 / (2*2 + 1 + 1)
    assert metrics.f1([1, 1, 0, 0, 1], [1, 0, 0, 1, 1], None) == pytest.approx(4 / 6)
    assert metrics.f1([0, 0], [0, 0], None) == 0.0  # no positive anywhere: sklearn's zero_division
    # per class: 0 -> 1, 1 -> tp 1 fn 1 -> 2/3, 2 -> tp 1 fp 1 -> 2/3
    assert metrics.f1_macro([0, 1, 2, 2], [0, 1, 1, 2], None) == pytest.approx((1 + 2 / 3 + 2 / 3) / 3)
    # a class only predicted (never a label) still counts
    assert metrics.f1_macro([0, 2], [0, 0], None) == pytest.approx((2 / 3 + 0) / 2)


def multirc_example(passage, question, answer, label):
    return InputExample(guid=f"dev-p{passage}-q{question}-a{answer}", text_a="p", text_b="q", label=label,
                        idx=[passage, question, answer],
                        meta={"passage_idx": passage, "question_idx": question, "answer_idx": answer, "answer": "a"})


def test_multirc_em_groups_answers_by_question():
    examples = [multirc_example(0, 0, 0, 1), multirc_example(0, 0, 1, 0),   # question (0, 0): both right
                multirc_example(0, 1, 2, 1), multirc_example(0, 1, 3, 1),   # question (0, 1): one wrong
                multirc_example(1, 0, 4, 0)]                                # question (1, 0): right
    labels = [e.label for e in examples]
    predictions = [1, 0, 1, 0, 0]
    assert metrics.multirc_em(predictions, labels, examples) == pytest.approx(2 / 3)
    assert metrics.f1(predictions, labels, examples) == pytest.approx(2 * 2 / (2 * 2 + 0 + 1))
    assert metrics.accuracy(predictions, labels, examples) == 80.0


def record_example(candidates, answers):
    return InputExample(guid="dev-p0-q0", text_a="", text_b="", label="1", idx=0,
                        meta={"candidates": candidates, "answers": answers}, num_choices=len(candidates))


def test_record_em_and_f1_take_the_best_gold_answer():
    obama = record_example(["Barack Obama", "Obama", "Paris"], ["Barack Obama", "President Obama"])
    house = record_example(["The White House", "Paris"], ["White House"])
    # "Obama" vs either gold answer: precision 1, recall 1/2 -> F1 2/3; not an exact match.
    # "The White House" normalises to "white house" (article and case dropped): exact.
    examples = [obama, house]
    assert metrics.record_exact_match([1, 0], None, examples) == pytest.approx(50.0)
    assert metrics.record_f1([1, 0], None, examples) == pytest.approx(100 * (2 / 3 + 1) / 2)
    assert metrics.record_exact_match([0, 1], None, examples) == pytest.approx(50.0)
    assert metrics.record_f1([2, 1], None, examples) == 0.0
    assert metrics.record_f1([0], None, [record_example(["x"], [])]) == 0.0  # no gold answer scores 0


def test_normalize_answer_is_squad_style():
    assert metrics.normalize_answer("  The  U.S.  Army, an army!") == "us army army"


def test_default_metrics_follow_the_original():
    assert list(get_task("CB").metric_dict) == ["accuracy", "f1-macro"]
    assert list(get_task("MultiRC").metric_dict) == ["f1a", "em", "acc"]
    assert list(get_task("ReCoRD").metric_dict) == ["EM", "F1"]
    for name in ("copa", "rte", "boolq", "wic", "wsc", "afqmc", "tnews", "cluewsc"):
        assert get_task(name).default_metric == "accuracy"


def read_lines(path):
    return [json.loads(line) for line in open(path, encoding="utf-8")]


def test_prediction_files(tmp_path):
    examples = [multirc_example(0, 0, 0, 1), multirc_example(0, 0, 1, 0), multirc_example(0, 1, 2, 1),
                multirc_example(3, 5, 7, 0)]
    path = write_predictions("MultiRC", [1, 1, 0, 0], examples, tmp_path, "test")
    assert path.endswith("multirc-test.jsonl")
    assert read_lines(path) == [
        {"idx": 0, "passage": {"questions": [{"idx": 0, "answers": [{"idx": 0, "label": 1}, {"idx": 1, "label": 1}]},
                                             {"idx": 1, "answers": [{"idx": 2, "label": 0}]}]}},
        {"idx": 3, "passage": {"questions": [{"idx": 5, "answers": [{"idx": 7, "label": 0}]}]}}]

    record = [record_example(["Paris", "Queen Elizabeth"], ["Paris"])]
    assert read_lines(write_predictions("record", [1], record, tmp_path, "dev")) == [
        {"idx": 0, "label": "Queen Elizabeth"}]

    wsc = get_task("wsc")
    wsc_examples = [InputExample(guid="test-0", text_a="t", idx=0), InputExample(guid="test-1", text_a="t", idx=1)]
    predictions = [wsc.choice_to_label(choice) for choice in (0, 2)]  # choice 0 = the referent = "True"
    assert read_lines(write_predictions("wsc", predictions, wsc_examples, tmp_path, "test")) == [
        {"idx": 0, "label": "True"}, {"idx": 1, "label": "False"}]

    clue = [InputExample(guid=f"test-{i}", text_a="t", idx=i) for i in (2, 0, 1)]
    assert read_lines(write_predictions("AFQMC", [1, 0, 1], clue, tmp_path, "test")) == [
        {"idx": 0, "label": "0"}, {"idx": 1, "label": "1"}, {"idx": 2, "label": "1"}]
