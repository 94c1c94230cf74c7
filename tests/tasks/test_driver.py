"""finetune_glm.py: task dispatch, model loading and results on a tiny BERT-vocabulary model."""

import json

import pytest
import torch

import finetune_glm
from tests.helpers import parse_config
from glm.checkpoint import save_model_checkpoint
from glm.training.model_setup import build_model
from tasks.language_model.dataset import build_wikitext103_dataset
from tasks.finetune import FinetuneError
from tasks.language_model.evaluate import evaluate_lm
from data_utils.tokenizers import configure_tokenizer

MODEL = ["--block-lm", "--tokenizer-type", "BertWordPieceTokenizer", "--tokenizer-model-type", "bert-base-uncased",
         "--num-layers", "2", "--hidden-size", "32", "--num-attention-heads", "4", "--max-position-embeddings", "64",
         "--hidden-dropout", "0", "--attention-dropout", "0"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    cfg = parse_config(MODEL + ["--seq-length", "48"])
    _, cfg = configure_tokenizer(cfg)
    torch.manual_seed(0)
    model = build_model(cfg)
    directory = tmp_path_factory.mktemp("ckpt")
    save_model_checkpoint(str(directory), "1", {"module": model.state_dict()})
    return directory


def test_wikitext_driver_matches_direct_evaluation(task_data_dir, checkpoint, tmp_path):
    argv = MODEL + ["--finetune", "--task", "wikitext", "--valid-data", str(task_data_dir / "lm/wiki.test.tokens"),
                    "--seq-length", "48", "--overlapping-eval", "16", "--load-pretrained", str(checkpoint),
                    "--summary-dir", str(tmp_path), "--experiment-name", "zs", "--eval-batch-size", "2"]
    metrics = finetune_glm.main(argv)
    written = json.loads((tmp_path / "runs" / "zs" / "test_results.json").read_text())
    assert written["ppl"] == metrics["ppl"]

    cfg = parse_config(argv)
    tokenizer, cfg = configure_tokenizer(cfg)
    model = build_model(cfg)
    model.parallel_output = False
    state = torch.load(checkpoint / "1" / "mp_rank_00_model_states.pt", weights_only=True)["module"]
    model.load_state_dict(state)
    direct = evaluate_lm(model.eval(), build_wikitext103_dataset(tokenizer, cfg))
    assert metrics["adjusted_ppl"] == pytest.approx(direct["adjusted_ppl"], rel=1e-6)
    with pytest.raises(FinetuneError, match="--overwrite"):
        finetune_glm.main(argv)
    assert finetune_glm.main(argv + ["--overwrite"])["ppl"] == pytest.approx(metrics["ppl"], rel=1e-6)


@pytest.mark.parametrize("task,message", [("nonsense", "unknown --task 'nonsense'; available: .*copa.*lambada"),
                                          ("", "--task is required")])
def test_unavailable_tasks_are_named(task, message):
    argv = MODEL + ["--finetune"] + (["--task", task] if task else [])
    with pytest.raises(finetune_glm.TaskError, match=message):
        finetune_glm.main(argv)


def test_training_and_missing_weights_refused(task_data_dir, tmp_path):
    base = MODEL + ["--finetune", "--task", "lambada", "--valid-data", str(task_data_dir / "lm/lambada.jsonl"),
                    "--summary-dir", str(tmp_path)]
    with pytest.raises(finetune_glm.TaskError, match="--epochs 0"):
        finetune_glm.main(base + ["--epochs", "3"])
    with pytest.raises(finetune_glm.TaskError, match="--load-pretrained"):
        finetune_glm.main(base)


@pytest.mark.parametrize("extra", [[], ["--unidirectional"]])
def test_multichoice_driver(checkpoint, tmp_path, extra):
    from tests.tasks.helpers_tasks import write_jsonl

    write_jsonl(tmp_path / "mc1.jsonl", [
        {"inputs_pretokenized": "The capital of France is [MASK].", "choices_pretokenized": ["Paris", "a cat"],
         "label": 0}])
    write_jsonl(tmp_path / "mc2.jsonl", [
        {"inputs_pretokenized": "Is the sky blue?", "choices_pretokenized": ["yes", "no", "maybe"], "label": 0}])
    argv = MODEL + ["--finetune", "--task", "multichoice", "--test-data", str(tmp_path / "mc*.jsonl"),
                    "--seq-length", "32", "--epochs", "0", "--load-pretrained", str(checkpoint),
                    "--summary-dir", str(tmp_path), "--experiment-name", "mc", *extra]
    metrics = finetune_glm.main(argv)
    assert metrics["examples"] == 2 and len(metrics["predictions"]) == 2
    assert metrics["predictions"][0]["uid"].endswith("mc1.jsonl:1")


@pytest.mark.parametrize("task,family", [("squad", "seq2seq"), ("SQuAD_v1", "seq2seq"), ("cnn_dm", "seq2seq"),
                                         ("COPA", "superglue"), ("lambada", "zero-shot"), ("multichoice", "zero-shot")])
def test_task_families(task, family):
    """``--task squad`` is extractive QA as generation (the original sent it to the cloze driver)."""
    assert finetune_glm.task_family(parse_config(MODEL + ["--finetune", "--task", task])) == family
