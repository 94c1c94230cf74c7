"""Zero-shot multiple choice: samples, accuracy against direct per-choice scoring, bad input."""

import pytest
import torch

from tasks.language_model.dataset import TaskDataError
from tasks.multichoice.dataset import build_multichoice_dataset
from tasks.multichoice.evaluate import evaluate_multichoice
from tasks.scoring import collate
from tests.tasks.helpers_tasks import COMMANDS, WordTokenizer, model, task_args, write_jsonl

RECORDS = [
    {"inputs_pretokenized": "the cat sat on the [MASK] .", "choices_pretokenized": ["mat", "red dog", "house"],
     "label": 0},
    {"inputs_pretokenized": "he saw a big", "choices_pretokenized": ["dog", "church"], "label": 1},
    {"inputs_pretokenized": "one two three four five six seven eight nine ten one two",
     "choices_pretokenized": ["three", "four five six"], "label": 0},
    {"inputs_pretokenized": "is it green ? [MASK]", "choices_pretokenized": ["yes", "no", "maybe"], "label": 2},
]


def _dataset(tmp_path, *extra, seq_length=12, records=RECORDS):
    write_jsonl(tmp_path / "a.jsonl", records[:2])
    write_jsonl(tmp_path / "b.jsonl", records[2:])
    cfg = task_args("--test-data", str(tmp_path / "*.jsonl"), *extra, seq_length=seq_length)
    return build_multichoice_dataset(WordTokenizer(), cfg)


def test_bidirectional_layout(tmp_path):
    dataset = _dataset(tmp_path)
    tok = WordTokenizer()
    item = dataset[1]   # "he saw a big" gets a [MASK] appended
    sample = item["samples"][1]
    ids = [tok.ids[w] for w in "he saw a big".split()]
    church = tok.ids["church"]
    assert sample["text"].tolist() == [COMMANDS["ENC"], *ids, COMMANDS["MASK"], COMMANDS["eos"], COMMANDS["sop"]]
    assert sample["target"].tolist()[-1] == church and sample["loss_mask"].tolist() == [0] * 7 + [1]
    assert sample["attention_mask"] == 7
    assert sample["position_id"].tolist() == [[0, 1, 2, 3, 4, 5, 6, 5], [0] * 7 + [1]]
    # a long input is cut on the left so the longest choice (3 tokens) fits: 12 = [ENC] + 6 words + [MASK] + [eos] + 3
    long = dataset[2]["samples"][1]
    assert len(long["text"]) == 12 and long["text"][7] == COMMANDS["MASK"]


def test_unidirectional_layout(tmp_path):
    dataset = _dataset(tmp_path, "--unidirectional")
    tok = WordTokenizer()
    sample = dataset[1]["samples"][0]
    ids = [tok.ids[w] for w in "he saw a big".split()]
    assert sample["text"].tolist() == [COMMANDS["ENC"], COMMANDS["gMASK"], COMMANDS["sop"], *ids]
    assert sample["target"].tolist() == [0, 0, *ids, tok.ids["dog"]]
    assert sample["loss_mask"].tolist() == [0, 0] + [0] * len(ids) + [1]
    assert sample["position_id"].tolist() == [[0, 1] + [1] * 5, [0, 0, 1, 2, 3, 4, 5]]


def direct_predictions(net, dataset):
    predictions = []
    for i in range(len(dataset)):
        scores = []
        for sample in dataset[i]["samples"]:
            batch = collate([sample])
            logits = net(batch["text"], batch["position_id"], batch["attention_mask"])[0][0]
            log_probs = torch.log_softmax(logits.double(), -1)
            mask = batch["loss_mask"][0].bool()
            scores.append(log_probs[mask].gather(-1, batch["target"][0][mask, None]).sum().item())
        predictions.append(max(range(len(scores)), key=scores.__getitem__))
    return predictions


@pytest.mark.parametrize("extra", [[], ["--unidirectional"]])
def test_accuracy_matches_direct_scoring(tmp_path, extra):
    dataset = _dataset(tmp_path, *extra)
    labels = [r["label"] for r in RECORDS]
    for seed in range(3):
        net = model(seed=seed)
        expected = direct_predictions(net, dataset)
        for batch_size in (1, 4):
            result = evaluate_multichoice(net, dataset, batch_size=batch_size)
            assert [p["prediction"] for p in result["predictions"]] == expected
            assert result["accuracy"] == pytest.approx(100.0 * sum(p == l for p, l in zip(expected, labels)) / 4)


def test_missing_keys_name_file_and_line(tmp_path):
    bad = dict(RECORDS[0])
    del bad["choices_pretokenized"]
    write_jsonl(tmp_path / "bad.jsonl", [RECORDS[1], bad])
    cfg = task_args("--test-data", str(tmp_path / "bad.jsonl"))
    with pytest.raises(TaskDataError, match=r"bad\.jsonl:2: missing key\(s\) choices_pretokenized"):
        build_multichoice_dataset(WordTokenizer(), cfg)


def test_label_outside_choices(tmp_path):
    write_jsonl(tmp_path / "bad.jsonl", [dict(RECORDS[1], label=2)])
    cfg = task_args("--test-data", str(tmp_path / "bad.jsonl"))
    with pytest.raises(TaskDataError, match=r"bad\.jsonl:1: label 2 is not an index into the 2 choices"):
        build_multichoice_dataset(WordTokenizer(), cfg)


def test_empty_file_and_no_match(tmp_path):
    (tmp_path / "empty.jsonl").write_text("\n")
    cfg = task_args("--test-data", str(tmp_path / "empty.jsonl"))
    with pytest.raises(TaskDataError, match=r"empty\.jsonl: no examples"):
        build_multichoice_dataset(WordTokenizer(), cfg)
    cfg = task_args("--test-data", str(tmp_path / "nothing*.jsonl"))
    with pytest.raises(TaskDataError, match="no file matches"):
        build_multichoice_dataset(WordTokenizer(), cfg)
