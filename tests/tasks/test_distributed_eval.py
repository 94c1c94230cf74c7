"""Evaluation on 2 gloo processes (data parallel, and model parallel with a resharded checkpoint)
gives the numbers of one process."""

import pytest

from glm import mpu
from glm.checkpoint import load_model_state, save_model_checkpoint
from tasks.language_model.dataset import build_lambada_dataset, build_wikitext103_dataset
from tasks.language_model.evaluate import evaluate_lm
from tasks.multichoice.dataset import build_multichoice_dataset
from tasks.multichoice.evaluate import evaluate_multichoice
from tests.distributed.launcher import run_distributed
from tests.tasks.helpers_tasks import WordTokenizer, model, task_args, write_jsonl
from tests.tasks.test_lm_evaluate import PASSAGES, TEXT
from tests.tasks.test_multichoice import RECORDS


def _datasets(root):
    tokenizer = WordTokenizer()
    wiki = build_wikitext103_dataset(tokenizer, task_args("--valid-data", str(root / "wiki.test.tokens"),
                                                          "--overlapping-eval", "5", seq_length=12))
    lambada = build_lambada_dataset(tokenizer, task_args("--valid-data", str(root / "lambada.jsonl"), seq_length=24))
    mc = build_multichoice_dataset(tokenizer, task_args("--test-data", str(root / "mc.jsonl"), seq_length=12))
    return wiki, lambada, mc


def _evaluate(net, root):
    wiki, lambada, mc = _datasets(root)
    return (evaluate_lm(net, wiki, batch_size=2), evaluate_lm(net, lambada, batch_size=2),
            evaluate_multichoice(net, mc, batch_size=2))


def _worker(rank, world, model_parallel, root, expected):
    mpu.initialize_model_parallel(model_parallel)
    try:
        net = model(seed=123)     # different weights: the checkpoint must replace them
        load_model_state(net, str(root / "ckpt"))
        wiki, lambada, mc = _evaluate(net.eval(), root)
        assert wiki["total_nll"] == pytest.approx(expected[0]["total_nll"], rel=1e-5)
        assert wiki["scored_tokens"] == expected[0]["scored_tokens"]
        assert lambada["correct"] == expected[1]["correct"]
        assert [p["prediction"] for p in mc["predictions"]] == [p["prediction"] for p in expected[2]["predictions"]]
        for got, want in zip(mc["predictions"], expected[2]["predictions"]):
            assert got["scores"] == pytest.approx(want["scores"], rel=1e-5)
    finally:
        mpu.destroy_model_parallel()


@pytest.mark.slow
@pytest.mark.parametrize("model_parallel", [1, 2], ids=["data_parallel", "model_parallel"])
def test_two_processes_match_one(tmp_path, model_parallel):
    (tmp_path / "wiki.test.tokens").write_text(" " + TEXT + " \n")
    write_jsonl(tmp_path / "lambada.jsonl", [{"text": t} for t in PASSAGES * 2 + ["the cat sat on the mat"]])
    write_jsonl(tmp_path / "mc.jsonl", RECORDS)
    net = model(seed=0)
    save_model_checkpoint(str(tmp_path / "ckpt"), "1", {"module": net.state_dict()})
    expected = _evaluate(net, tmp_path)
    run_distributed(_worker, 2, model_parallel, tmp_path, expected)
