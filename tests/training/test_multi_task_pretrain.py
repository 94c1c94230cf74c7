"""pretrain_glm.py with --multi-task-data (spec section 7.5) on a tiny corpus and two tiny tasks
(SST-2, single-token; RACE, multi-token): which iterations take multi-task batches, that a resumed
run makes the same choices and gets the same losses, the Multi loss, and bad input."""

import json
import random
import subprocess
import sys

import pytest

import glm.training.pretraining as pretraining
from glm.training.pretraining import count_multi_task_iterations, uses_multi_task
from tests.tasks.superglue.multitask_fixtures import write_task_files
from tests.training.test_pretrain_e2e import ROOT, corpus, env, flags, losses, main_exit  # noqa: F401 (fixture)


@pytest.fixture(scope="module")
def task_data(tmp_path_factory):
    return write_task_files(tmp_path_factory.mktemp("tasks"))


def multi_flags(corpus, tmp_path, task_data, ratio, *extra):
    return flags(corpus, tmp_path / "cache", "--multi-task-data", "sst2", "race", "--data-dir", str(task_data),
                 "--multi-task-ratio", str(ratio), "--multi-seq-length", "48", "--multi-batch-size", "3",
                 "--train-iters", "6", "--lr-decay-iters", "6", "--save-interval", "3", *extra)


@pytest.fixture
def modes(monkeypatch):
    """Every batch the loop fetches, as ``(mode, text shape)``, in order."""
    seen = []
    real = pretraining.get_batch

    def recording(iterator, device):
        batch = real(iterator, device)
        seen.append((batch.get("mode"), tuple(batch["text"].shape)))
        return batch

    monkeypatch.setattr(pretraining, "get_batch", recording)
    return seen


def test_choice_is_seeded_by_iteration_and_rank():
    assert [uses_multi_task(i, 0.5) for i in range(6)] == [random.Random(i).random() < 0.5 for i in range(6)]
    assert [uses_multi_task(i, 0.5) for i in range(6)] == [False, True, False, True, True, False]
    # rank r of w draws from the stream of iteration * w + r
    assert uses_multi_task(2, 0.5, dp_rank=1, dp_world=2) == (random.Random(5).random() < 0.5)
    assert not any(uses_multi_task(i, 0.0) for i in range(50)) and all(uses_multi_task(i, 1.0) for i in range(50))
    assert count_multi_task_iterations(6, 0.5) == 3 and count_multi_task_iterations(6, 0.0) == 0


def test_ratio_one_uses_only_multi_task_batches(corpus, tmp_path, task_data, modes, capsys):
    argv = multi_flags(corpus, tmp_path, task_data, 1.0, "--train-iters", "3")
    code, output = main_exit(argv, capsys)
    assert code == 0, output[-3000:]
    assert modes[:3] == [("multi-task", (3, 48))] * 3
    final = next(line for line in output.splitlines() if line.startswith("final validation"))
    assert "Multi loss" in final and "| loss " in final  # the corpus' loss and the tasks' loss


def test_mixed_run_and_resume_make_the_same_choices(corpus, tmp_path, task_data, modes, capsys):
    """Ratio 0.5, seed streams 0..5 choose multi-task batches at iterations 1, 3 and 4 (counted from
    0).  A run stopped after 3 iterations and resumed makes the same choices and, both loaders
    restarting where that rank left them, gets bit-identical losses."""
    code, output = main_exit(multi_flags(corpus, tmp_path, task_data, 0.5, "--save", str(tmp_path / "full")), capsys)
    assert code == 0, output[-3000:]
    expected = [uses_multi_task(i, 0.5) for i in range(6)]
    full = [mode == "multi-task" for mode, _ in modes[:6]]
    assert full == expected == [False, True, False, True, True, False]
    reference = losses(tmp_path / "full")

    modes.clear()
    first = multi_flags(corpus, tmp_path, task_data, 0.5, "--save", str(tmp_path / "part"), "--train-iters", "3")
    assert main_exit(first, capsys)[0] == 0
    (run_dir,) = (tmp_path / "part").glob("run-*")
    modes.clear()
    code, output = main_exit(multi_flags(corpus, tmp_path, task_data, 0.5, "--save", str(tmp_path / "part"),
                                         "--load", str(run_dir)), capsys)
    assert code == 0, output[-3000:]
    assert "at iteration 3" in output
    assert [mode == "multi-task" for mode, _ in modes[:3]] == expected[3:]
    resumed = losses(tmp_path / "part")
    for iteration in range(4, 7):
        assert resumed[iteration] == reference[iteration], f"iteration {iteration}"


def test_ratio_zero_only_evaluates_the_tasks(corpus, tmp_path, task_data, modes, capsys):
    code, output = main_exit(multi_flags(corpus, tmp_path, task_data, 0.0, "--train-iters", "2"), capsys)
    assert code == 0, output[-3000:]
    assert "the tasks are evaluated (Multi loss), not trained on" in output
    assert all(mode != "multi-task" for mode, _ in modes[:2])
    final = next(line for line in output.splitlines() if line.startswith("final validation"))
    assert "Multi loss" in final


@pytest.mark.parametrize("extra, message", [
    (("--multi-task-data", "sst2", "rte"), "unknown multi-task task 'rte'; --multi-task-data accepts mnli, cola"),
    (("--data-dir", "<empty>", "--multi-task-data", "qqp"), "multi-task data for 'qqp' not found: expected the "
                                                              "directory <empty>/QQP"),
    (("--multi-task-data",), "--multi-task-ratio needs --multi-task-data"),
])
def test_bad_multi_task_input_stops_cleanly(corpus, tmp_path, task_data, capsys, extra, message):
    empty = tmp_path / "empty"
    empty.mkdir()
    extra = [a.replace("<empty>", str(empty)) for a in extra]
    message = message.replace("<empty>", str(empty))
    argv = multi_flags(corpus, tmp_path, task_data, 0.5, "--save", str(tmp_path / "save"), *extra)
    code, output = main_exit(argv, capsys)
    assert code == 2 and message in output
    assert "Traceback" not in output
    assert not (tmp_path / "save").exists() or not any((tmp_path / "save").rglob("*"))


def test_plain_pretraining_does_not_import_tasks():
    """Without --multi-task-data nothing under tasks/ is loaded (checked in a fresh interpreter)."""
    code = ("import json, sys, pretrain_glm\n"
            "from glm.arguments import get_args\n"
            "from glm.config import build_config\n"
            "assert pretrain_glm.check_multi_task_flags(build_config(get_args(['--block-lm']))) is None\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'tasks')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env(),
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


@pytest.mark.slow
@pytest.mark.parametrize("layout", [("--batch-size", "1"), ("--model-parallel-size", "2")], ids=["dp2", "mp2"])
def test_two_ranks(corpus, tmp_path, task_data, layout):
    """Two CPU ranks under torchrun: data parallel (each rank draws its own choices) and model
    parallel (rank 1 reads nothing and receives the multi-task batches by broadcast; before the
    corpus-cache check was confined to the reading ranks, any model-parallel pretraining hung there)."""
    argv = multi_flags(corpus, tmp_path, task_data, 0.5, "--save", str(tmp_path / "s"), "--train-iters", "4",
                       "--eval-interval", "2", *layout)
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                             str(ROOT / "pretrain_glm.py"), *argv],
                            cwd=ROOT, env=env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    validation = [line for line in result.stdout.splitlines() if line.startswith("validation at iteration")]
    assert len(validation) == 2 and all("Multi loss" in line for line in validation)
    assert max(losses(tmp_path / "s")) == 4
