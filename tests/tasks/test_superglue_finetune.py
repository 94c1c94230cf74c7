"""SuperGLUE finetuning end to end on CPU through ``finetune_glm.py``: a tiny GLM learns a single-token
task (RTE) and a multi-token task (COPA) from SuperGLUE JSON lines, is evaluated, and writes test
predictions in the submission format; 2 gloo processes (data or tensor parallel) evaluate exactly as
one; every head / loss variant of the released configs runs."""

import json
import os
import math
import shutil

import pytest
import torch

import finetune_glm
from glm import mpu
from tasks.superglue.registry import get_task
from tests.distributed.launcher import run_distributed
from tests.tasks.conftest import TINY_BERT_GLM
from tests.tasks.helpers_tasks import write_jsonl

MODEL = TINY_BERT_GLM
FIT = ["--lr", "1e-2", "--warmup", "0.05", "--hidden-dropout", "0", "--attention-dropout", "0", "--seed", "5"]

RTE = [("The cat sleeps on the red mat.", "A cat sleeps.", "entailment"),
       ("The dog runs in the green park.", "A cat flies.", "not_entailment"),
       ("Rain fell all day in the city.", "It rained.", "entailment"),
       ("The shop closed at noon.", "The shop opened at night.", "not_entailment")]
COPA = [("The man was hungry.", "He ate bread.", "He ate stones.", "effect", 0),
        ("The road was icy.", "The car slid off.", "The car flew up.", "effect", 0),
        ("The glass broke.", "It fell on a pillow.", "It fell on the floor.", "cause", 1),
        ("The baby cried.", "She was sleeping well.", "She was hungry.", "cause", 1)]


def write_rte(folder):
    records = [{"premise": p, "hypothesis": h, "label": label, "idx": i} for i, (p, h, label) in enumerate(RTE)]
    write_jsonl(folder / "train.jsonl", records)
    write_jsonl(folder / "val.jsonl", records)
    write_jsonl(folder / "test.jsonl", [{k: v for k, v in r.items() if k != "label"} for r in records])
    return folder


def write_copa(folder):
    records = [{"premise": p, "choice1": a, "choice2": b, "question": q, "label": label, "idx": i}
               for i, (p, a, b, q, label) in enumerate(COPA)]
    write_jsonl(folder / "train.jsonl", records)
    write_jsonl(folder / "val.jsonl", records)
    write_jsonl(folder / "test.jsonl", [{k: v for k, v in r.items() if k != "label"} for r in records])
    return folder


@pytest.fixture(scope="module")
def pretrained(tiny_pretrained):
    return tiny_pretrained


def finetune(task, data_dir, out, weights, *extra, seq_length=64):
    argv = MODEL + ["--finetune", "--cloze-eval", "--task", task, "--data-dir", str(data_dir), "--seq-length",
                    str(seq_length), "--load-pretrained", str(weights), "--summary-dir", str(out),
                    "--experiment-name", task, "--overwrite", "--log-interval", "1000", *extra]
    return finetune_glm.main(argv), out / "runs" / task


@pytest.fixture(scope="module")
def trained(pretrained, tmp_path_factory):
    """RTE and COPA finetuned until they fit their (tiny) training sets; the best models saved."""
    root = tmp_path_factory.mktemp("superglue")
    runs = {}
    for task, writer in (("rte", write_rte), ("copa", write_copa)):
        folder = root / "data" / task
        folder.mkdir(parents=True)
        results, run_dir = finetune(task, writer(folder), root / "out", pretrained, "--epochs", "30",
                                    "--batch-size", "2", "--eval-epoch", "10", "--save", str(root / "save"),
                                    "--eval-valid", *FIT)
        runs[task] = (results, run_dir, folder, root / "save" / task / "best")
    return runs


@pytest.mark.slow
@pytest.mark.parametrize("task,labels", [("rte", ["entailment", "not_entailment"]), ("copa", [0, 1])])
def test_single_and_multi_token_tasks_learn_and_write_submissions(trained, task, labels):
    results, run_dir, _, best = trained[task]
    assert results["test"] == {}   # the test file (the training examples, unlabelled): predictions only
    assert json.loads((run_dir / "results.json").read_text())["accuracy"] == 100.0
    assert results["dev"]["accuracy"] == 100.0
    records = [json.loads(line) for line in (run_dir / f"{task}-test.jsonl").read_text().splitlines()]
    expected = [r[2] for r in RTE] if task == "rte" else [r[4] for r in COPA]
    assert records == [{"idx": i, "label": label} for i, label in enumerate(expected)]
    assert all(r["label"] in labels for r in records)
    assert (best / "mp_rank_00_model_states.pt").exists()


def _evaluate_worker(rank, world, model_parallel, argv, expected):
    # get_args caps --model-parallel-size at the launcher's WORLD_SIZE: say what run_distributed started.
    os.environ.update(WORLD_SIZE=str(world), RANK=str(rank), LOCAL_RANK=str(rank))
    results = finetune_glm.main(argv + ["--model-parallel-size", str(model_parallel)])
    assert mpu.get_model_parallel_world_size() == model_parallel
    assert results == expected


@pytest.mark.slow
@pytest.mark.parametrize("model_parallel", [1, 2], ids=["data_parallel", "tensor_parallel"])
def test_two_processes_evaluate_as_one(trained, tmp_path, model_parallel):
    for task in ("rte", "copa"):
        _, _, folder, best = trained[task]
        weights = tmp_path / task / "weights"
        shutil.copytree(best, weights)
        argv = MODEL + ["--finetune", "--cloze-eval", "--task", task, "--data-dir", str(folder), "--seq-length", "64",
                        "--epochs", "0", "--load-pretrained", str(weights), "--experiment-name", task,
                        "--overwrite", "--eval-valid", "--eval-batch-size", "3"]
        one = finetune_glm.main(argv + ["--summary-dir", str(tmp_path / "one")])
        run_distributed(_evaluate_worker, 2, model_parallel, argv + ["--summary-dir", str(tmp_path / "two")], one)
        files = [(tmp_path / d / "runs" / task / f"{task}-test.jsonl").read_text() for d in ("one", "two")]
        assert files[0] == files[1]


VARIANTS = {
    "rte_p_tuning": ("rte", "RTE", ["--continuous-prompt", "--num-prompt-tokens", "3", "--prompt-init"]),
    "rte_p_tuning_frozen_mlp": ("rte", "RTE", ["--continuous-prompt", "--num-prompt-tokens", "2", "--prompt-func",
                                               "mlp", "--freeze-transformer"]),
    "rte_adapet": ("rte", "RTE", ["--adapet"]),
    "rte_hinge": ("rte", "RTE", ["--loss-func", "hinge"]),
    "rte_classification_head": ("rte", "RTE", ["--no-cloze", "--pool-token", "start"]),
    "copa_fast_decode": ("copa", "COPA", ["--fast-decode"]),
    "copa_multiple_choice_head": ("copa", "COPA", ["--no-cloze"]),
    "copa_pattern_1_generative": ("copa", "COPA", ["--pattern-id", "1", "--loss-func", "generative"]),
    "copa_segments": ("copa", "COPA", ["--segment-length", "2"]),
    "wsc_negative_mix": ("wsc", "WSC", ["--wsc-negative", "--loss-func", "mix", "--length-penalty", "1",
                                        "--pattern-id", "2"]),
    "wsc_generative": ("wsc", "WSC", ["--pattern-id", "2"]),
    "record": ("record", "ReCoRD", ["--seq-length", "128"]),
    "multirc": ("multirc", "MultiRC", ["--seq-length", "128"]),
    "boolq": ("boolq", "BoolQ", ["--pattern-id", "4"]),
    "cb": ("cb", "CB", ["--pattern-id", "3"]),
    "wic": ("wic", "WiC", ["--pattern-id", "1"]),
}


@pytest.mark.slow
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_released_variant_trains_and_evaluates(variant, pretrained, task_data_dir, tmp_path):
    task, folder, extra = VARIANTS[variant]
    seq = ["--seq-length", "64"] if "--seq-length" not in extra else []
    if "--no-cloze" in extra:
        extra = [e for e in extra if e != "--no-cloze"]
    argv = MODEL + ["--finetune", "--task", task, "--data-dir", str(task_data_dir / "superglue" / folder),
                    "--load-pretrained", str(pretrained), "--summary-dir", str(tmp_path), "--experiment-name", variant,
                    "--epochs", "1", "--batch-size", "1", "--eval-valid", "--log-interval", "1", *seq, *extra]
    if "--no-cloze" not in VARIANTS[variant][2]:
        argv.append("--cloze-eval")
    results = finetune_glm.main(argv)
    metrics = results["dev"]
    spec = get_task(task)
    assert list(metrics) == list(spec.metric_dict)  # the task's own metrics, in its order
    assert all(math.isfinite(v) and 0.0 <= v <= 100.0 for v in metrics.values()), metrics
    written = json.loads((tmp_path / "runs" / variant / "test_results.json").read_text())
    assert written["dev"] == metrics
    records = [json.loads(line) for line in open(tmp_path / "runs" / variant / f"{task}-dev.jsonl")]
    examples = spec.processor().get_dev_examples(str(task_data_dir / "superglue" / folder))
    if "accuracy" in metrics and task not in ("wsc", "multirc", "record"):
        # One submission record per dev example, and the logged accuracy is theirs.
        assert [r["idx"] for r in records] == [e.idx for e in examples]
        right = sum(str(r["label"]) == str(e.label) for r, e in zip(records, examples))
        assert metrics["accuracy"] == pytest.approx(100.0 * right / len(examples))
    else:
        assert records


@pytest.mark.slow
def test_an_interrupted_run_resumes_exactly(pretrained, tmp_path):
    """A 4-epoch run stopped after epoch 2 and resumed with ``--load`` logs the losses of an
    uninterrupted run (bit for bit)."""
    folder = tmp_path / "data"
    folder.mkdir()
    write_rte(folder)
    common = ["--batch-size", "2", "--log-interval", "1", "--hidden-dropout", "0.1", "--lr", "1e-3",
              "--save-epoch", "1"]

    def log(save):
        return [json.loads(line) for line in (save / "rte" / "train_log.jsonl").read_text().splitlines()]

    finetune("rte", folder, tmp_path / "full", pretrained, "--epochs", "4", "--save", str(tmp_path / "s1"), *common)
    # Stop after epoch 2 of a 4-epoch run: keep only its checkpoint of iteration 4 (2 epochs x 2 batches).
    partial = tmp_path / "s3" / "rte"
    finetune("rte", folder, tmp_path / "cut", pretrained, "--epochs", "4", "--save", str(tmp_path / "s3"), *common)
    for tag in ("6", "8"):
        shutil.rmtree(partial / tag)
    (partial / "latest_checkpointed_iteration.txt").write_text("4")
    (partial / "latest").write_text("4")
    (partial / "train_log.jsonl").unlink()
    finetune("rte", folder, tmp_path / "resumed", pretrained, "--epochs", "4", "--save", str(tmp_path / "s3"),
             "--load", str(partial), *common)
    full = {r["iteration"]: r["loss"] for r in log(tmp_path / "s1")}
    resumed = {r["iteration"]: r["loss"] for r in log(tmp_path / "s3")}
    assert sorted(resumed) == [5, 6, 7, 8] and all(resumed[i] == full[i] for i in resumed)


@pytest.mark.slow
def test_sigterm_stops_mid_epoch_saves_and_resumes_exactly(pretrained, tmp_path, monkeypatch, capsys):
    """SIGTERM during epoch 2 of a 4-epoch run: the run stops after that step with 143, saves it, names
    the checkpoint, and a resume from it logs the uninterrupted run's losses."""
    import signal

    import tasks.finetune as finetune_module
    folder = tmp_path / "data"
    folder.mkdir()
    write_rte(folder)
    common = ["--batch-size", "2", "--log-interval", "1", "--hidden-dropout", "0.1", "--lr", "1e-3", "--epochs", "4"]

    def argv(out, save, *extra):
        return MODEL + ["--finetune", "--cloze-eval", "--task", "rte", "--data-dir", str(folder), "--seq-length", "64",
                        "--load-pretrained", str(pretrained), "--summary-dir", str(out), "--experiment-name", "rte",
                        "--save", str(save), *common, *extra]

    assert finetune_glm.run(argv(tmp_path / "full", tmp_path / "s1")) == 0
    real = finetune_module.batch_to_device
    calls = []

    def signalled(batch, device):
        calls.append(1)
        if len(calls) == 3:  # the first micro-batch of epoch 2 (2 a epoch): as if the scheduler sent SIGTERM now
            os.kill(os.getpid(), signal.SIGTERM)
        return real(batch, device)
    monkeypatch.setattr(finetune_module, "batch_to_device", signalled)
    capsys.readouterr()
    assert finetune_glm.run(argv(tmp_path / "cut", tmp_path / "s2")) == 143
    monkeypatch.undo()
    err = capsys.readouterr().err
    run_dir = tmp_path / "s2" / "rte"
    assert f"stopped by SIGTERM after iteration 3 (epoch 1); the last complete checkpoint is {run_dir}/3: resume " \
           f"with --load {run_dir}" in err
    assert finetune_glm.run(argv(tmp_path / "resumed", tmp_path / "s2", "--load", str(run_dir), "--overwrite")) == 0
    full = {r["iteration"]: r["loss"] for r in _log(tmp_path / "s1")}
    resumed = {r["iteration"]: r["loss"] for r in _log(tmp_path / "s2")}
    assert sorted(resumed) == list(range(1, 9)), resumed
    assert [resumed[i] for i in range(4, 9)] == [full[i] for i in range(4, 9)], (resumed, full)


def _log(save, task="rte"):
    return [json.loads(line) for line in (save / task / "train_log.jsonl").read_text().splitlines()]


#: ZeRO-3 with the optimizer (DeepSpeed's CPU Adam) and the parameters offloaded to the CPU (issue 16).
ZERO3_OFFLOAD = {"stage": 3, "offload_optimizer": {"device": "cpu"}, "offload_param": {"device": "cpu"}}


@pytest.mark.slow
@pytest.mark.parametrize("zero", [{"stage": 1}, ZERO3_OFFLOAD], ids=["zero1", "zero3-offload"])
def test_deepspeed_engine_finetunes_like_the_plain_engine(pretrained, tmp_path, zero):
    """The same finetuning run on the DeepSpeed engine (ZeRO-1, and ZeRO-3 with CPU offload; one
    process) logs the plain engine's losses (1e-4: the same maths, other kernels and reduction order)
    and saves the same best model."""
    pytest.importorskip("deepspeed")
    folder, config, common = _rte_on_deepspeed(tmp_path, zero, batch_size=2)
    finetune("rte", folder, tmp_path / "plain", pretrained, "--save", str(tmp_path / "plain_save"), *common)
    results, _ = finetune("rte", folder, tmp_path / "ds", pretrained, "--save", str(tmp_path / "ds_save"),
                          "--deepspeed", "--deepspeed_config", str(config), *common)
    plain, deepspeed = _log(tmp_path / "plain_save"), _log(tmp_path / "ds_save")
    assert [r["iteration"] for r in deepspeed] == [r["iteration"] for r in plain] == [1, 2, 3, 4, 5, 6]
    assert all(abs(a["loss"] - b["loss"]) < 1e-4 for a, b in zip(plain, deepspeed))
    assert "test" in results
    _assert_same_best_model(tmp_path)


def _rte_on_deepspeed(tmp_path, zero, batch_size):
    """RTE data, a DeepSpeed JSON with ``zero_optimization`` ``zero``, and the flags both engines share."""
    folder = tmp_path / "data"
    folder.mkdir()
    write_rte(folder)
    config = tmp_path / "ds.json"
    config.write_text(json.dumps({"train_micro_batch_size_per_gpu": batch_size, "gradient_accumulation_steps": 1,
                                  "zero_optimization": zero, "zero_allow_untested_optimizer": True,
                                  "gradient_clipping": 1.0, "steps_per_print": 10 ** 9}))
    common = ["--epochs", "3", "--batch-size", str(batch_size), "--log-interval", "1", "--hidden-dropout", "0",
              "--attention-dropout", "0", "--lr", "1e-3"]
    return folder, config, common


def _assert_same_best_model(tmp_path):
    """The DeepSpeed run's best model holds the plain run's whole weights (under ZeRO-3 each rank's
    parameters are partitions until gathered)."""
    from glm.checkpoint.io import load_checkpoint_file
    best = {name: load_checkpoint_file(str(tmp_path / name / "rte" / "best" / "mp_rank_00_model_states.pt"))["module"]
            for name in ("plain_save", "ds_save")}
    assert best["ds_save"].keys() == best["plain_save"].keys()
    for key, value in best["plain_save"].items():
        assert best["ds_save"][key].shape == value.shape, key
        torch.testing.assert_close(best["ds_save"][key].float(), value.float(), rtol=0, atol=1e-4, msg=key)


def test_non_finite_losses_stop_the_run(pretrained, tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    write_rte(folder)
    from glm.training.core import TrainingDiverged
    with pytest.raises(TrainingDiverged, match="NaN/inf for 2 consecutive steps"):
        finetune("rte", folder, tmp_path / "out", pretrained, "--epochs", "2", "--batch-size", "2", "--lr", "1e30",
                 "--warmup", "0", "--max-nan-steps", "2", "--clip-grad", "0")


def _two_rank_finetune_worker(rank, world, runs):
    os.environ.update(WORLD_SIZE=str(world), RANK=str(rank), LOCAL_RANK=str(rank))
    for argv in runs:
        finetune_glm.main(argv)


@pytest.mark.slow
def test_zero3_offload_finetunes_on_two_ranks_like_the_plain_engine(pretrained, tmp_path):
    """ZeRO-3 with CPU offload on two data-parallel ranks (each holding half of every parameter and of the
    optimizer state) logs the two-rank plain engine's losses and saves the same whole best model."""
    pytest.importorskip("deepspeed")
    folder, config, common = _rte_on_deepspeed(tmp_path, ZERO3_OFFLOAD, batch_size=1)

    def argv(name, *extra):
        return MODEL + ["--finetune", "--cloze-eval", "--task", "rte", "--data-dir", str(folder), "--seq-length", "64",
                        "--load-pretrained", str(pretrained), "--summary-dir", str(tmp_path / name),
                        "--experiment-name", "rte", "--overwrite", "--save", str(tmp_path / f"{name}_save"),
                        *common, *extra]

    run_distributed(_two_rank_finetune_worker, 2,
                    [argv("plain"), argv("ds", "--deepspeed", "--deepspeed_config", str(config))])
    plain, deepspeed = _log(tmp_path / "plain_save"), _log(tmp_path / "ds_save")
    assert [r["iteration"] for r in deepspeed] == [r["iteration"] for r in plain] and len(plain) >= 6
    difference = max(abs(a["loss"] - b["loss"]) for a, b in zip(plain, deepspeed))
    print(f"ZeRO-3 offload finetuning on two ranks vs the plain engine: {len(plain)} updates, max {difference:.2e}")
    assert difference < 1e-4
    _assert_same_best_model(tmp_path)
