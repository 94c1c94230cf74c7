"""The LAMBADA / perplexity evaluator on a tiny model against direct computations."""

import math

import pytest
import torch
import torch.nn.functional as F

from tasks.language_model.dataset import build_lambada_dataset, build_lm_dataset, build_wikitext103_dataset
from tasks.language_model.evaluate import evaluate_lm
from tasks.scoring import collate
from tests.tasks.helpers_tasks import WordTokenizer, model, rig, task_args, write_jsonl

TEXT = ("the cat sat on the mat and then ran away to the old church . he saw a red dog and she saw a blue "
        "cat , it was big and the house was small . they looked again and said yes")


def direct_window_losses(net, sample):
    """Cross entropy of every scored target of one window, computed without the evaluator."""
    batch = collate([sample])
    if "target" in batch:
        logits = net(batch["text"], batch["position_id"], batch["attention_mask"])[0][0]
        targets, mask = batch["target"][0], batch["loss_mask"][0].bool()
    else:
        text = batch["text"][0]
        logits = net(text[None, :-1], torch.arange(text.numel() - 1)[None], torch.zeros(1, dtype=torch.long))[0][0]
        targets, mask = text[1:], batch["loss_mask"][0, 1:].bool()
    return F.cross_entropy(logits.double(), targets, reduction="none")[mask]


@pytest.mark.parametrize("variant", ["bidirectional", "unidirectional", "no_block_lm"])
def test_perplexity_is_exp_mean_of_direct_window_losses(tmp_path, variant):
    path = tmp_path / "wiki.test.tokens"
    path.write_text(" " + TEXT + " \n")
    argv = ["--overlapping-eval", "5", "--valid-data", str(path)]
    if variant == "unidirectional":
        argv.append("--unidirectional")
    cfg = task_args(*argv, seq_length=12)
    block = variant != "no_block_lm"
    cfg = cfg.updated(block_lm=block)
    tokenizer = WordTokenizer()
    dataset = build_wikitext103_dataset(tokenizer, cfg)
    assert len(dataset) > 3
    net = model(block=block)
    losses = torch.cat([direct_window_losses(net, dataset[i]) for i in range(len(dataset))])
    # every token but the first is predicted exactly once
    assert losses.numel() == dataset.num_tokenized_tokens - 1
    for batch_size in (1, 3):
        metrics = evaluate_lm(net, dataset, batch_size=batch_size)
        assert metrics["scored_tokens"] == losses.numel()
        assert metrics["ppl"] == pytest.approx(math.exp(losses.mean().item()), rel=1e-6)
        ratio = (dataset.num_tokenized_tokens - 1) / (dataset.num_original_tokens - 1)
        assert metrics["adjusted_ppl"] == pytest.approx(math.exp(losses.mean().item() * ratio), rel=1e-6)


def test_lm_lines_perplexity_sums_documents(tmp_path):
    path = tmp_path / "lines.txt"
    path.write_text("the cat sat on the mat .\n\nhe saw a red dog and she saw a blue cat , it was big\n")
    cfg = task_args("--overlapping-eval", "4", "--valid-data", str(path), seq_length=8)
    dataset = build_lm_dataset(WordTokenizer(), cfg)
    assert len(dataset.documents) == 2 and dataset.num_original_tokens == 7 + 15
    net = model()
    losses = torch.cat([direct_window_losses(net, dataset[i]) for i in range(len(dataset))])
    metrics = evaluate_lm(net, dataset, batch_size=2)
    assert metrics["total_nll"] == pytest.approx(losses.sum().item(), rel=1e-6)
    assert metrics["avg_loss"] == pytest.approx(losses.sum().item() / (dataset.num_tokenized_tokens - 1))


PASSAGES = ["he looked at the map again and turned left at the old church",
            "the dog sat on the red mat and then ran to the church"]


@pytest.mark.parametrize("extra", [[], ["--unidirectional"], ["--task-mask"]])
def test_lambada_accuracy_forced_and_impossible(tmp_path, extra):
    path = write_jsonl(tmp_path / "lambada.jsonl", [{"text": t} for t in PASSAGES])
    cfg = task_args("--valid-data", str(path), *extra, seq_length=24)
    tokenizer = WordTokenizer()
    dataset = build_lambada_dataset(tokenizer, cfg)
    church = tokenizer.ids["church"]
    assert dataset.label_tokens == [[church], [church]]
    assert evaluate_lm(rig(model(), church), dataset)["accuracy"] == 100.0
    assert evaluate_lm(rig(model(), tokenizer.ids["dog"]), dataset)["accuracy"] == 0.0


def test_lambada_accuracy_matches_direct_argmax(tmp_path):
    path = write_jsonl(tmp_path / "lambada.jsonl", [{"text": t} for t in PASSAGES * 3])
    cfg = task_args("--valid-data", str(path), seq_length=24)
    dataset = build_lambada_dataset(WordTokenizer(), cfg)
    for seed in range(4):
        net = model(seed=seed)
        correct = 0
        for i in range(len(dataset)):
            batch = collate([dataset[i]])
            logits = net(batch["text"], batch["position_id"], batch["attention_mask"])[0][0]
            mask = batch["loss_mask"][0].bool()
            correct += bool((logits.argmax(-1)[mask] == batch["target"][0][mask]).all())
        assert evaluate_lm(net, dataset, batch_size=4)["accuracy"] == pytest.approx(100.0 * correct / len(dataset))


def test_positions_beyond_the_table_are_refused(tmp_path):
    path = tmp_path / "wiki.test.tokens"
    path.write_text(" " + TEXT + " \n")
    cfg = task_args("--overlapping-eval", "2", "--valid-data", str(path), seq_length=40)
    dataset = build_wikitext103_dataset(WordTokenizer(), cfg)
    with pytest.raises(ValueError, match="position table has 33 rows"):
        evaluate_lm(model(max_seq=32), dataset)
