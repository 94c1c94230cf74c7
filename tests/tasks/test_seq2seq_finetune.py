"""Seq2seq finetuning end to end on CPU: train a tiny GLM through ``finetune_glm.py`` on each dataset's
own file format, decode, write hyps/refs, score; data and tensor parallel decoding equal one process."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import finetune_glm
from glm import mpu
from tests.distributed.launcher import run_distributed
from tests.tasks.conftest import TINY_BERT_GLM
from tasks.seq2seq.metrics import SQUAD_REPORT_NAMES
from tests.tasks.seq2seq.conftest import squad_document, write_json, write_lines

ROOT = Path(__file__).resolve().parents[2]
MODEL = TINY_BERT_GLM


@pytest.fixture(scope="module")
def pretrained(tiny_pretrained):
    return tiny_pretrained


def run(task, data_dir, out, pretrained, *extra, src=48, tgt=12):
    argv = MODEL + ["--finetune", "--task", task, "--data-dir", str(data_dir), "--src-seq-length", str(src),
                    "--tgt-seq-length", str(tgt), "--load-pretrained", str(pretrained), "--summary-dir", str(out),
                    "--experiment-name", task, "--overwrite", "--log-interval", "1000", *extra]
    results = finetune_glm.main(argv)
    return results, out / "runs" / task


def _squad_files(folder, names):
    document = squad_document([("q1", "What comes after sixteen?", ["seventeen"]),
                               ("q2", "What comes after two?", ["three"])])
    for name in names:
        write_json(folder / name, document)


def _xsum_files(folder):
    write_json(folder / "XSum-TRAINING-DEV-TEST-SPLIT-90-5-5.json",
               {"train": ["1", "2"], "validation": ["1"], "test": ["2"]})
    for article, summary in (("1", "A cat sat."), ("2", "A dog ran.")):
        write_lines(folder / f"{article}.summary", ["[SN]URL[SN]", "http://x", "[SN]FIRST-SENTENCE[SN]", summary,
                                                    "[SN]RESTBODY[SN]", f"Today {summary.lower()} It was late."])


def data_folder(task, task_data_dir, tmp_path):
    """A folder in the task's own file format (the reference set's handmade files where it has them)."""
    recorded = task_data_dir / "seq2seq" / task
    if recorded.is_dir():
        return recorded
    folder = tmp_path / task
    folder.mkdir()
    if task == "xsum":
        _xsum_files(folder)
    elif task in ("squad_generation", "cmrc"):
        _squad_files(folder, ["train.json", "dev.json", "test.json"])
    elif task == "squad":
        _squad_files(folder, ["train-v2.0.json", "dev-v2.0.json"])
    elif task == "squad_v1":
        _squad_files(folder, ["train-v1.1.json", "dev-v1.1.json"])
    return folder


TASKS = ["cnn_dm", "cnn_dm_original", "gigaword", "xsum", "squad_generation", "squad", "squad_v1", "cmrc", "blank",
         "customization", "extraction"]


@pytest.mark.slow
@pytest.mark.parametrize("task", TASKS)
def test_each_format_trains_decodes_and_scores(task, task_data_dir, pretrained, tmp_path):
    folder = data_folder(task, task_data_dir, tmp_path)
    results, run_dir = run(task, folder, tmp_path / "out", pretrained, "--epochs", "1", "--batch-size", "1",
                           "--num-beams", "2", "--no-repeat-ngram-size", "2")
    written = json.loads((run_dir / "test_results.json").read_text())
    assert written["task"] == task and set(written["test"]) == set(results["test"])
    test = results["test"]
    if task in ("squad", "squad_v1"):   # percent, as the original; plus the count of windowless questions
        assert set(test) == set(SQUAD_REPORT_NAMES)
        assert all(0.0 <= test[name] <= 100.0 for name in ("EM", "F1", "EM_original", "F1_original"))
        assert test["questions_without_window"] == 0
    elif task == "extraction":   # percent of examples
        assert set(test) == {"accuracy"} and 0.0 <= test["accuracy"] <= 100.0
    else:   # ROUGE F-measures are fractions in [0, 1], as the original reported them
        assert set(test) == {"rouge-1", "rouge-2", "rouge-l"}
        assert all(0.0 <= value <= 1.0 for value in test.values())
    if task in ("squad", "squad_v1"):
        answers = json.loads((run_dir / "test.jsonl").read_text())
        assert set(answers) == {"q1", "q2"}
        assert len((run_dir / "test.jsonl.refs").read_text().splitlines()) >= 2
    else:
        hyps = (run_dir / "test.jsonl.hyps").read_text().splitlines()
        refs = (run_dir / "test.jsonl.refs").read_text().splitlines()
        assert len(hyps) == len(refs) > 0
    assert (run_dir / "results.json").exists()   # the dev metrics of the (only) epoch


def test_bf16_finetuning_trains_evaluates_and_decodes_on_cpu(task_data_dir, pretrained, tmp_path, capsys):
    """``--bf16`` end to end on CPU (issue 18): autocast training, bf16 evaluation where the CPU has bf16
    instructions, beam-search decoding, finite losses and scores."""
    results, run_dir = run("gigaword", task_data_dir / "seq2seq" / "gigaword", tmp_path / "out", pretrained,
                           "--epochs", "2", "--batch-size", "2", "--bf16", "--num-beams", "2", "--log-interval", "1")
    log = capsys.readouterr().out
    losses = [float(line.split("| loss ")[1].split()[0]) for line in log.splitlines() if "| loss " in line]
    assert losses and all(0.0 < loss < 50.0 for loss in losses)
    assert set(results["test"]) == {"rouge-1", "rouge-2", "rouge-l"}
    assert all(0.0 <= value <= 1.0 for value in results["test"].values())
    assert (run_dir / "test.jsonl.hyps").read_text().strip()


@pytest.fixture(scope="module")
def memorised(task_data_dir, pretrained, tmp_path_factory):
    """A tiny GLM trained until it reproduces the two Gigaword headlines of the reference files."""
    out = tmp_path_factory.mktemp("memorised")
    results, run_dir = run("gigaword", task_data_dir / "seq2seq" / "gigaword", out, pretrained, "--epochs", "40",
                           "--batch-size", "2", "--lr", "1e-2", "--warmup", "0.05", "--hidden-dropout", "0",
                           "--attention-dropout", "0", "--eval-epoch", "10", "--num-beams", "2",
                           "--length-penalty", "0.6", "--save", str(out / "save"), "--save-epoch", "20", "--seed", "3")
    return results, run_dir, out / "save" / "gigaword"


@pytest.mark.slow
def test_a_memorised_headline_scores_full_rouge(memorised, task_data_dir):
    results, run_dir, _ = memorised
    assert results["test"] == {"rouge-1": 1.0, "rouge-2": 1.0, "rouge-l": 1.0}
    targets = (task_data_dir / "seq2seq" / "gigaword" / "test.target").read_text().lower().splitlines()
    hyps = (run_dir / "test.jsonl.hyps").read_text().splitlines()
    assert [h.replace(" .", ".") for h in hyps] == targets
    # The script scores the written files the same way.
    out = subprocess.run(["bash", str(ROOT / "scripts" / "evaluate_seq2seq.sh"), str(run_dir / "test.jsonl.hyps"),
                          str(run_dir / "test.jsonl.refs")], env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable},
                         capture_output=True, text=True, check=True)
    assert json.loads(out.stdout)["rouge1"] == 100.0
    best = json.loads((run_dir / "results.json").read_text())
    assert best["rouge-1"] == 1.0 and best["metric"] == "rouge-1"


def _decode_worker(rank, world, model_parallel, argv, expected):
    # get_args caps --model-parallel-size at the launcher's WORLD_SIZE: say what run_distributed started.
    os.environ.update(WORLD_SIZE=str(world), RANK=str(rank), LOCAL_RANK=str(rank))
    results = finetune_glm.main(argv + ["--model-parallel-size", str(model_parallel)])
    assert mpu.get_model_parallel_world_size() == model_parallel
    assert results["test"] == pytest.approx(expected)


@pytest.mark.slow
@pytest.mark.parametrize("model_parallel", [1, 2], ids=["data_parallel", "tensor_parallel"])
def test_two_processes_decode_as_one(memorised, task_data_dir, tmp_path, model_parallel):
    """Decode the test sources of another task (so the outputs are not the memorised headlines) with
    beam search from an intermediate checkpoint: 2 processes write the same hypotheses as 1."""
    _, _, save = memorised
    checkpoint = tmp_path / "ckpt"
    shutil.copytree(save / "20", checkpoint / "20")
    (checkpoint / "latest_checkpointed_iteration.txt").write_text("20")
    argv = MODEL + ["--finetune", "--task", "cnn_dm", "--data-dir", str(task_data_dir / "seq2seq" / "cnn_dm"),
                    "--src-seq-length", "48", "--tgt-seq-length", "10", "--epochs", "0", "--num-beams", "3",
                    "--load-pretrained", str(checkpoint), "--overwrite", "--experiment-name", "decode"]
    one = finetune_glm.main(argv + ["--summary-dir", str(tmp_path / "one")])
    run_distributed(_decode_worker, 2, model_parallel, argv + ["--summary-dir", str(tmp_path / "two")], one["test"])
    hyps = [(tmp_path / d / "runs" / "decode" / "test.jsonl.hyps").read_text() for d in ("one", "two")]
    assert hyps[0] == hyps[1] and hyps[0].strip()
