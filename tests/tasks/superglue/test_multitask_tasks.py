"""Readers and patterns of the tasks multi-task pretraining uses (GLUE, PET's classification sets,
RACE, cloze SQuAD) on tiny files in each public format: what the readers make of the files, and the
exact layout of every pattern's encoding (part A with the blank, the answer in part B, targets, loss
mask, 2D positions)."""

import json

import numpy as np
import pytest

from tasks.jsonl import MissingSplitError
from tasks.superglue.dataset import SuperGlueDataset
from tasks.superglue.errors import TaskDataError
from tasks.superglue.pvp.parts import MASK
from tasks.superglue.registry import get_task, pretraining_task, task_names

from .conftest import bert_args
from .multitask_fixtures import write_task_files

SEQ = 64


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_task_files(tmp_path_factory.mktemp("multitask"))


def dataset(tok, task, data, directory, split="train", pattern=0):
    cfg = bert_args(task, data / directory, "--pattern-id", str(pattern), seq_length=SEQ)
    return SuperGlueDataset(cfg, split, tok)


def body_ids(tok, parts):
    """The ids of pattern parts concatenated (strings tokenized one by one, MASK the [MASK] id)."""
    ids = []
    for part in parts:
        ids += [tok.get_command("MASK").Id] if part is MASK else tok.EncodeAsIds(part).tokenization
    return ids


def check_single_token(sample, tok, parts, verbalizers, label):
    """``[CLS] parts [eos] [sop] pad...``: the [sop] reads the blank's position, block position 1, the
    only scored position; ``target`` is each label's verbalizer id."""
    body = body_ids(tok, parts)
    sep = int(sample["mask"])
    assert sep == len(body) + 2
    text = sample["text"].tolist()
    assert text[0] == tok.get_command("ENC").Id and text[1:sep - 1] == body
    assert text[sep - 1] == tok.get_command("eos").Id and text[sep] == tok.get_command("sop").Id
    mask_at = text.index(tok.get_command("MASK").Id)
    assert sample["position"][0][:sep].tolist() == list(range(sep)) and sample["position"][0][sep] == mask_at
    assert sample["position"][1][:sep].tolist() == [0] * sep and sample["position"][1][sep] == 1
    assert sample["logit_mask"].tolist() == [0] * sep + [1] + [0] * (SEQ - sep - 1)
    assert sample["target"].tolist() == [tok.EncodeAsIds(word).tokenization[0] for word in verbalizers]
    assert sample["label"] == label


SINGLE_TOKEN_CASES = [
    # task, directory, pattern, example index in the train file, expected parts, verbalizers, label
    ("mnli", "MNLI", 0, 0, ['"', "The cat sat on the mat", '" ?', MASK, ', "', "A cat is sitting.", '"'],
     [" Wrong", " Right", " Maybe"], 1),
    ("mnli", "MNLI", 3, 1, ["The sky is green", "?", MASK, ",", "The sky is blue."], [" No", " Yes", " Maybe"], 0),
    ("cola", "CoLA", 0, 0, ['"', "Our friends won't buy this analysis.", '"', " This is", MASK, "."],
     [" incorrect", " correct"], 1),
    ("sst2", "SST-2", 1, 0, ["a gorgeous , witty film ", " It was", MASK, "."], [" bad", " good"], 1),
    ("mrpc", "MRPC", 0, 0, ['He said "yes" to the offer.', MASK, ", ", "he accepted the offer."], [" No", " Yes"], 1),
    ("mrpc", "MRPC", 1, 1, ["The stock rose.", " Does it mean that", "rain is expected today", "?", MASK],
     [" No", " Yes"], 0),
    ("qqp", "QQP", 0, 0,
     ["How do I learn Python?", " Do you mean ", "what is the best way to learn Python?", MASK, "."], [" No", " Yes"],
     1),
    ("qnli", "QNLI", 2, 0, ["Based on the following passage, do you know the answer", " What is the capital of France",
                            "?", MASK, ".", " Paris is the capital of France."], [" Yes", " No"], 0),
    ("agnews", "Agnews", 2, 0, ["Wall St. Bears Claw Back", "(", MASK, ")", "Short-sellers are seeing green again."],
     [" World", " Sports", " Business", " Tech"], 2),
    ("yahoo", "Yahoo", 1, 0, [MASK, " Question:", "Why is my computer slow? It crashes all the time.",
                              "Buy more memory."],
     [" Society", " Science", " Health", " Education", " Computer", " Sports", " Business", " Entertainment",
      " Relationship", " Politics"], 4),
    ("yelp-polarity", "yelp_review_polarity_csv", 2, 0, ["Just", MASK, "!", "The food was cold. Never again."],
     [" bad", " good"], 0),
    ("yelp-full", "yelp_review_full_csv", 3, 0, ["Amazing place!", " In summary, the restaurant is", MASK, "."],
     [" terrible", " bad", " okay", " good", " great"], 4),
]


@pytest.mark.parametrize("task, directory, pattern, index, parts, verbalizers, label", SINGLE_TOKEN_CASES)
def test_single_token_pattern_layout(bert, data, task, directory, pattern, index, parts, verbalizers, label):
    sample = dataset(bert, task, data, directory, pattern=pattern)[index]
    check_single_token(sample, bert, parts, verbalizers, label)


def check_choice_rows(sample, tok, parts_a, parts_b, answers, label):
    """One row per answer: ``[CLS] A B [eos]`` then ``[sop] answer`` at the blank, the answer
    (+ ``eop``) as targets, block positions 1..n, loss on part B only."""
    body = body_ids(tok, parts_a) + body_ids(tok, parts_b)
    assert sample["text"].shape == (len(answers), SEQ) and sample["label"] == label
    for row, answer in enumerate(answers):
        answer_ids = tok.EncodeAsIds(answer).tokenization + [tok.get_command("eop").Id]
        sep = int(sample["mask"][row])
        text = sample["text"][row].tolist()
        assert sep == len(body) + 2 and text[1:sep - 1] == body
        n = len(answer_ids)
        assert text[sep:sep + n] == [tok.get_command("sop").Id] + answer_ids[:-1]
        assert sample["target"][row][sep:sep + n].tolist() == answer_ids
        assert sample["logit_mask"][row].tolist() == [0] * sep + [1] * n + [0] * (SEQ - sep - n)
        mask_at = text.index(tok.get_command("MASK").Id)
        assert sample["position"][row][0][sep:sep + n].tolist() == [mask_at] * n
        assert sample["position"][row][1][sep:sep + n].tolist() == list(range(1, n + 1))


def test_race_patterns(bert, data):
    tok = bert
    ds = dataset(tok, "race", data, "RACE", pattern=0)
    # middle before high; the article's layout is cleaned ("is  brown ." -> "is brown.")
    assert [e.guid for e in ds.examples] == ["train-pmiddle1.txt-q0", "train-pmiddle1.txt-q1", "train-phigh2.txt-q0"]
    article = "Tom has a dog. The dog is brown. It likes to run ."
    assert ds.examples[0].text_a == article
    choices = [" black", " brown", " white", " red"]
    check_choice_rows(ds[0], tok, [article], [" Question:", " What color is the dog?", " Answer:", MASK], choices, 1)
    # a question with a gap puts the blank in it
    check_choice_rows(ds[1], tok, [article], [" Tom's dog likes to", MASK, " ."],
                      [" sleep", " eat", " run", " swim"], 2)
    ds1 = dataset(tok, "race", data, "RACE", pattern=1)
    check_choice_rows(ds1[1], tok, [article], [" Based on the previous passage,", " tom's dog likes to", MASK, " ."],
                      [" sleep", " eat", " run", " swim"], 2)
    check_choice_rows(ds1[0], tok, [article], [" Based on the previous passage,", " What color is the dog?", MASK],
                      choices, 1)
    assert get_task("race").is_multi_token(ds.config) and ds.variable_num_choices


def test_cloze_squad(bert, data):
    tok = bert
    spec = pretraining_task("squad")
    cfg = bert_args("rte", data / "SQuAD", seq_length=SEQ)
    examples = spec.make_processor(cfg).get_examples("train", str(data / "SQuAD"))
    assert [e.meta["answer"]["text"] for e in examples] == ["Paris", "the Seine"]  # unanswerable left out
    pvp = spec.pvp(cfg, tok, spec.labels, SEQ)
    context = "Paris is the capital of France. It lies on the Seine."
    check_choice_rows(pvp.encode(examples[1]), tok, [context, " Which river flows through Paris?", MASK, "."], [],
                      [" the Seine"], 0)
    with pytest.raises(MissingSplitError, match="no test split"):
        spec.make_processor(cfg).get_examples("test", str(data / "SQuAD"))


def test_cloze_squad_is_not_a_finetuning_task():
    """``--task squad`` stays seq2seq QA: the cloze reader is reachable from multi-task pretraining only."""
    assert "squad" not in task_names()
    assert pretraining_task("SQuAD").name == "squad" and pretraining_task("mnli") is get_task("mnli")
    from finetune_glm import task_family
    from tests.helpers import parse_config
    assert task_family(parse_config(["--task", "squad"])) == "seq2seq"
    assert task_family(parse_config(["--task", "mnli"])) == "superglue"


def test_readers(data):
    cfg = bert_args("mnli", data / "MNLI")
    mnli = get_task("mnli").make_processor(cfg)
    dev = mnli.get_examples("dev", str(data / "MNLI"))
    assert [e.label for e in dev] == ["entailment", "contradiction", "neutral"]
    assert (dev[1].guid, dev[1].idx, dev[1].text_b) == ("dev-1", 1, "The sky is blue.")
    assert [e.label for e in mnli.get_examples("test", str(data / "MNLI"))] == [None]  # no label column
    assert get_task("mnli-mm").make_processor(cfg).split_file("dev") == "dev_mismatched.tsv"
    cola = get_task("cola").make_processor(cfg)
    assert [e.label for e in cola.get_examples("train", str(data / "CoLA"))] == ["1", "0"]
    assert cola.get_examples("test", str(data / "CoLA"))[0].text_a == "Bill whistled past the house."
    mrpc = get_task("mrpc").make_processor(cfg).get_examples("train", str(data / "MRPC"))
    assert mrpc[0].text_a == 'He said "yes" to the offer.' and mrpc[0].label == "1"  # BOM and quotes kept apart
    yahoo = get_task("yahoo").make_processor(cfg).get_examples("dev", str(data / "Yahoo"))
    assert (yahoo[0].text_a, yahoo[0].text_b, yahoo[0].label) == \
        ("Why is my computer slow? It crashes all the time.", "Buy more memory.", "5")
    agnews = get_task("agnews").make_processor(cfg)
    assert agnews.get_examples("train", str(data / "Agnews"))[1].text_b == "The home team won the final  on Sunday."
    with pytest.raises(MissingSplitError, match="test.csv is the dev split"):
        agnews.get_examples("test", str(data / "Agnews"))


@pytest.mark.parametrize("task, name, content, message", [
    ("sst2", "train.tsv", "sentence\tlabel\nfine film\t1\textra\n", "expected 2 tab-separated fields"),
    ("sst2", "train.tsv", "sentence\tlabel\nfine film\t7\n", "label '7' is not one of"),
    ("qnli", "train.tsv", "index\tquestion\tlabel\n0\tWho?\tentailment\n", "no column 'sentence'"),
    ("agnews", "train.csv", '"1","only a title"\n', "expected 3 comma-separated fields"),
    ("race", "train/high/x.txt", '{"article": "a", "questions": ["q"], "options": [], "answers": ["A"]}',
     "1 questions, 0 option lists"),
])
def test_bad_files_name_the_line(tmp_path, task, name, content, message):
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    processor = get_task(task).make_processor(bert_args(task, tmp_path))
    with pytest.raises(TaskDataError, match=message) as error:
        processor.get_examples("train", str(tmp_path))
    assert str(path) in str(error.value)


def test_race_classification_encoding(bert, data):
    """Without --cloze-eval RACE is a multiple choice: one ``[CLS] article [SEP] question option`` row
    per option."""
    cfg = bert_args("race", data / "RACE", seq_length=SEQ, cloze_eval=False)
    sample = SuperGlueDataset(cfg, "dev", bert)[0]
    assert sample["text"].shape == (4, SEQ) and sample["label"] == 1
    assert np.asarray(sample["mask"]).shape == (4,)


@pytest.mark.parametrize("task, directory", [("sst2", "SST-2"), ("agnews", "Agnews"), ("race", "RACE")])
def test_finetuning_driver_runs_the_new_tasks(tiny_pretrained, data, tmp_path, task, directory):
    """One epoch through finetune_glm.py: single-token (SST-2), a task without a test split (AG News),
    multi-token multiple choice (RACE)."""
    import finetune_glm
    from tests.tasks.conftest import TINY_BERT_GLM

    argv = TINY_BERT_GLM + ["--finetune", "--cloze-eval", "--task", task, "--data-dir", str(data / directory),
                            "--seq-length", str(SEQ), "--load-pretrained", str(tiny_pretrained), "--summary-dir",
                            str(tmp_path), "--experiment-name", task, "--epochs", "1", "--batch-size", "2",
                            "--log-interval", "1000"]
    finetune_glm.main(argv)
    best = json.loads((tmp_path / "runs" / task / "results.json").read_text())
    assert 0.0 <= best["accuracy"] <= 100.0
