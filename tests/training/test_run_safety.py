"""Nothing lost, nothing silent when pretraining is stopped, crashed, pointed at a bad folder or
resumed carelessly.

* run folders cannot collide: unique names, and a lock that a live run holds and a dead one drops;
* temporary files of a save killed mid-way are removed on the next start;
* an unusable ``--save`` (a file, no permission, read-only) and a failed save (disk full) stop the
  run with the path and the cause, and the previous checkpoint still resumes;
* SIGTERM and Ctrl-C stop after a step on every rank, save, name the checkpoint, and the resumed run
  reproduces the uninterrupted run's losses exactly;
* resuming with nothing left to train, without ``--save``, from a finetuning checkpoint or with a
  changed schedule is refused or said.
"""

import errno
import glob
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from glm.checkpoint import save_model_checkpoint
from glm.training.run_directory import RunDirectoryError, RunLock, prepare_run_directory
from tests.training.test_pretrain_e2e import ROOT, corpus, env, flags, losses, main_exit  # noqa: F401

TRAIN_ITERS = 12


def _run_dir(save):
    (path,) = glob.glob(f"{save}/run-*")
    return path


def _complete_log_lines(path):
    """Records of ``train_log.jsonl`` that are completely written (a writer may be mid-line)."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.split("\n")[:-1] if line]


def _wait_for_iteration(save, iteration, procs, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        logs = glob.glob(f"{save}/run-*/train_log.jsonl")
        if logs and any(r["iteration"] >= iteration for r in _complete_log_lines(logs[0])):
            return
        assert all(p.poll() is None for p in procs), "the run ended before it was signalled"
        time.sleep(0.05)
    raise AssertionError(f"iteration {iteration} not reached in {timeout} s")


@pytest.fixture(scope="module")
def reference_losses(corpus, tmp_path_factory):  # noqa: F811
    save = tmp_path_factory.mktemp("reference")
    code = subprocess.run([sys.executable, str(ROOT / "pretrain_glm.py"),
                           *flags(corpus, save / "cache", "--save", str(save))],
                          cwd=ROOT, env=env(), capture_output=True, text=True, timeout=300)
    assert code.returncode == 0, code.stderr[-3000:]
    return losses(save)


# -- run folders ------------------------------------------------------------------------------------


def test_two_runs_started_together_get_their_own_folders(tmp_path):
    first, lock1 = prepare_run_directory(str(tmp_path), "exp", log=lambda *a: None)
    second, lock2 = prepare_run_directory(str(tmp_path), "exp", log=lambda *a: None)
    assert first != second and os.path.isdir(first) and os.path.isdir(second)
    lock1.release()
    lock2.release()


def test_a_live_run_holds_its_folder_and_a_killed_one_does_not(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from glm.training.run_directory import RunLock; RunLock(sys.argv[1]); "
        "print('locked', flush=True); time.sleep(120)"), str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunDirectoryError, match=f"another run is writing to .*pid {holder.pid}"):
            RunLock(str(tmp_path))
        with pytest.raises(RunDirectoryError, match="another run is writing"):
            prepare_run_directory(str(tmp_path.parent), tmp_path.name, resume_into=True)
    finally:
        holder.kill()
        holder.wait()
    RunLock(str(tmp_path)).release()  # SIGKILL left no stale lock


def test_resuming_into_a_folder_another_run_writes_is_refused(corpus, tmp_path, capsys):  # noqa: F811
    code, _ = main_exit(flags(corpus, tmp_path / "cache", "--save", str(tmp_path), "--train-iters", "2"), capsys)
    assert code == 0
    run_dir = _run_dir(tmp_path)
    lock = RunLock(run_dir)  # stands for a run still writing there
    try:
        code, output = main_exit(flags(corpus, tmp_path / "cache", "--save", str(tmp_path), "--load", run_dir,
                                       "--train-iters", "4"), capsys)
    finally:
        lock.release()
    assert code == 2 and "another run is writing to" in output and "Traceback" not in output
    assert sorted(os.listdir(run_dir)) == sorted([".lock", "2", "config.json", "latest",
                                                  "latest_checkpointed_iteration.txt", "train_log.jsonl"])


def test_leftovers_of_a_killed_save_are_removed_on_the_next_start(corpus, tmp_path, capsys):  # noqa: F811
    code, _ = main_exit(flags(corpus, tmp_path / "cache", "--save", str(tmp_path), "--train-iters", "4"), capsys)
    assert code == 0
    run_dir = Path(_run_dir(tmp_path))
    leftover = run_dir / "4" / ".tmp-mp_rank_00_model_states.pt-x1y2"
    leftover.write_bytes(b"\0" * 4096)  # what SIGKILL during torch.save leaves
    code, output = main_exit(flags(corpus, tmp_path / "cache", "--save", str(tmp_path), "--load", str(run_dir),
                                   "--train-iters", "6"), capsys)
    assert code == 0, output
    assert "removed 1 temporary file(s) left by an interrupted save: 4/.tmp-mp_rank_00" in output
    assert not leftover.exists()


# -- unusable folders and failed saves --------------------------------------------------------------


@pytest.mark.parametrize("case", ["a file", "no permission", "read-only"])
def test_unusable_save_folder_stops_with_its_path_and_cause(case, corpus, tmp_path, capsys, monkeypatch):  # noqa: F811
    if case == "a file":
        save = tmp_path / "save"
        save.write_text("not a folder")
        cause = "a file"
    elif case == "no permission":
        # Root ignores file modes; sysfs refuses new folders to everyone.
        save, cause = Path("/sys/glm-test-save"), "permission denied"
    else:
        save, cause = tmp_path / "ro", "the file system is read-only"

        real_makedirs = os.makedirs

        def read_only(path, *args, **kwargs):
            if str(path).startswith(str(save)):
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), path)
            return real_makedirs(path, *args, **kwargs)
        monkeypatch.setattr(os, "makedirs", read_only)
    code, output = main_exit(flags(corpus, tmp_path / "cache", "--save", str(save), "--train-iters", "2"), capsys)
    assert code == 2
    assert f"cannot use {save} as the run's save folder: {cause}" in output
    assert "Pass a writable folder to --save" in output and "Traceback" not in output


def test_disk_full_during_a_save_keeps_the_previous_checkpoint(corpus, tmp_path, capsys, monkeypatch,  # noqa: F811
                                                                reference_losses):
    import glm.checkpoint.io as checkpoint_io
    real_save = torch.save

    def full_disk(obj, f, *args, **kwargs):
        if obj.get("iteration") == 8:
            f.write(b"\0" * 1000)
            raise RuntimeError("[enforce fail at inline_container.cc:626] . unexpected pos 1000 vs 872")
        return real_save(obj, f, *args, **kwargs)
    monkeypatch.setattr(checkpoint_io.torch, "save", full_disk)
    code, output = main_exit(flags(corpus, tmp_path / "cache", "--save", str(tmp_path)), capsys)
    monkeypatch.undo()
    run_dir = _run_dir(tmp_path)
    assert code == 2 and "Traceback" not in output
    assert f"could not write checkpoint {run_dir}/8: RuntimeError" in output and "unexpected pos" in output
    assert "MiB free on that file system" in output
    assert f"The previous complete checkpoint {run_dir}/4 is untouched" in output
    assert Path(run_dir, "latest_checkpointed_iteration.txt").read_text() == "4"
    assert not os.path.exists(f"{run_dir}/8") and not glob.glob(f"{run_dir}/**/.tmp-*", recursive=True)
    code, output = main_exit(flags(corpus, tmp_path / "cache", "--save", str(tmp_path), "--load", run_dir), capsys)
    assert code == 0 and f"resumed from {run_dir}/4 at iteration 4" in output
    after = losses(tmp_path)
    assert [after[i] for i in range(5, TRAIN_ITERS + 1)] == [reference_losses[i] for i in range(5, TRAIN_ITERS + 1)]


@pytest.mark.parametrize("first_file", ["config.json", "mp_rank"])
def test_permission_denied_while_writing_is_named(first_file, corpus, tmp_path, capsys, monkeypatch):  # noqa: F811
    import glm.checkpoint.io as checkpoint_io
    real_mkstemp = checkpoint_io.tempfile.mkstemp

    def denied(*args, prefix="", dir=None, **kwargs):
        if first_file in prefix:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), dir)
        return real_mkstemp(*args, prefix=prefix, dir=dir, **kwargs)
    monkeypatch.setattr(checkpoint_io.tempfile, "mkstemp", denied)
    code, output = main_exit(flags(corpus, tmp_path / "cache", "--save", str(tmp_path), "--train-iters", "4"),
                             capsys)
    run_dir = _run_dir(tmp_path)
    assert code == 2 and "Traceback" not in output
    if first_file == "config.json":
        assert f"cannot use {run_dir} as the run's save folder: permission denied" in output
    else:
        assert f"could not write checkpoint {run_dir}/4: PermissionError" in output and "Permission denied" in output
        assert "No earlier checkpoint of this run exists" in output


# -- signals ----------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_cleanly_saves_and_resumes_exactly(signum, corpus, tmp_path, reference_losses):  # noqa: F811
    argv = [sys.executable, str(ROOT / "pretrain_glm.py"), *flags(corpus, tmp_path / "cache", "--save", str(tmp_path))]
    proc = subprocess.Popen(argv, cwd=ROOT, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for_iteration(tmp_path, 5, [proc])
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signum, err[-3000:]
    assert "Traceback" not in err
    run_dir = _run_dir(tmp_path)
    stopped = int(Path(run_dir, "latest_checkpointed_iteration.txt").read_text())
    assert 5 <= stopped < TRAIN_ITERS
    name = "SIGTERM" if signum == signal.SIGTERM else "Ctrl-C (SIGINT)"
    assert f"stopped by {name} after iteration {stopped}; the last complete checkpoint is {run_dir}/{stopped}: " \
           f"resume with --load {run_dir}" in err
    resumed = subprocess.run(argv + ["--load", run_dir], cwd=ROOT, env=env(), capture_output=True, text=True,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    after = losses(tmp_path)
    assert [after[i] for i in range(1, TRAIN_ITERS + 1)] == [reference_losses[i] for i in range(1, TRAIN_ITERS + 1)]


@pytest.mark.slow
def test_sigterm_to_one_rank_stops_every_rank_after_the_same_step(corpus, tmp_path):  # noqa: F811
    from tests.distributed.launcher import free_port
    base = env()
    shared = dict(base, WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()))
    argv = [sys.executable, str(ROOT / "pretrain_glm.py"),
            *flags(corpus, tmp_path / "cache", "--save", str(tmp_path), "--batch-size", "1", "--train-iters", "400",
                   "--save-interval", "1000")]
    procs = [subprocess.Popen(argv, cwd=ROOT, env=dict(shared, RANK=str(r), LOCAL_RANK=str(r)),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in range(2)]
    try:
        _wait_for_iteration(tmp_path, 3, procs)
        procs[1].send_signal(signal.SIGTERM)  # as if the scheduler reached one node first
        outputs = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            p.kill()
    assert [p.returncode for p in procs] == [143, 143], [o[1][-2000:] for o in outputs]
    run_dir = _run_dir(tmp_path)
    stopped = int(Path(run_dir, "latest_checkpointed_iteration.txt").read_text())
    assert 3 <= stopped < 400
    assert f"stopped by SIGTERM after iteration {stopped}" in outputs[0][1]
    assert os.listdir(f"{run_dir}/{stopped}") == ["mp_rank_00_model_states.pt"]


# -- careless resumes -------------------------------------------------------------------------------


def test_careless_resumes_are_refused_or_said(corpus, tmp_path, capsys):  # noqa: F811
    code, _ = main_exit(flags(corpus, tmp_path / "cache", "--save", str(tmp_path), "--train-iters", "4"), capsys)
    assert code == 0
    run_dir = _run_dir(tmp_path)
    before = sorted(os.listdir(run_dir))

    code, output = main_exit(flags(corpus, tmp_path / "cache", "--save", str(tmp_path), "--load", run_dir,
                                   "--train-iters", "4"), capsys)
    assert code == 2 and f"the checkpoint in {run_dir} is at iteration 4 and --train-iters is 4: nothing is left" \
        in output
    assert sorted(os.listdir(run_dir)) == before  # nothing re-saved

    code, output = main_exit(flags(corpus, tmp_path / "cache", "--load", run_dir, "--train-iters", "5"), capsys)
    assert code == 0
    assert f"note: no --save: this resumed run saves nothing. To keep its checkpoints in the same folder pass " \
           f"--save {tmp_path}" in output
    assert "note: the checkpoint's LR schedule (warmup 0.04 + decay 3.96 iterations) differs from the flags' " \
           "(warmup 0.05 + decay 4.95" in output

    # A finetuning run's checkpoint: same tensors, but its data state names an epoch.
    finetuned = tmp_path / "copa"
    state = torch.load(f"{run_dir}/4/mp_rank_00_model_states.pt", weights_only=True)
    state["data_state"] = {"epoch": 2, "best_score": 0.7}
    save_model_checkpoint(str(finetuned), "30", dict(state, iteration=30))
    code, output = main_exit(flags(corpus, tmp_path / "cache", "--load", str(finetuned)), capsys)
    assert code == 2 and f"{finetuned} was written by finetuning (epoch 2); pretraining cannot resume" in output


def test_damaged_latest_checkpoint_names_the_file_and_the_earlier_one(corpus, tmp_path, capsys):  # noqa: F811
    code, _ = main_exit(flags(corpus, tmp_path / "cache", "--save", str(tmp_path), "--train-iters", "8"), capsys)
    assert code == 0
    run_dir = _run_dir(tmp_path)
    shard = Path(run_dir, "8", "mp_rank_00_model_states.pt")
    shard.write_bytes(shard.read_bytes()[:5000])  # truncated, as by a disk that filled up outside our writes
    code, output = main_exit(flags(corpus, tmp_path / "cache", "--save", str(tmp_path), "--load", run_dir), capsys)
    assert code == 2 and "Traceback" not in output
    assert f"checkpoint file {shard} (5000 bytes) looks damaged" in output
    tracker = Path(run_dir, "latest_checkpointed_iteration.txt")
    assert f"Earlier checkpoints of this run: 4; to resume from the newest, name it in the tracker (echo 4 > " \
           f"{tracker}) and run again" in output
    tracker.write_text("4")
    code, output = main_exit(flags(corpus, tmp_path / "cache", "--save", str(tmp_path), "--load", run_dir), capsys)
    assert code == 0 and f"resumed from {run_dir}/4 at iteration 4" in output
