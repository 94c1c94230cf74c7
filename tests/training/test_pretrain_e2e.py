"""pretrain_glm.py end to end on a tiny corpus: exact resume after SIGKILL, resume at another
data-parallel size, and bad input that stops with a clear message and no partial state."""

import glob
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WORDS = ("the light of day and night water fire stone river field house king people land city word son "
         "father mother spoke went came saw made gave said unto them upon earth heaven").split()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    rng = random.Random(0)
    path = tmp_path_factory.mktemp("corpus") / "toy.jsonl"
    with open(path, "w") as f:
        for _ in range(80):
            sentences = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 12))).capitalize() + "."
                         for _ in range(rng.randint(3, 8))]
            f.write(json.dumps({"text": " ".join(sentences)}) + "\n")
    return path


def flags(corpus, cache, *extra):
    return ["--block-lm", "--task-mask", "--bert-prob", "0.5", "--gap-sentence-prob", "0.3",
            "--train-data", str(corpus), "--cache-dir", str(cache), "--split", "949,50,1",
            "--tokenizer-type", "BertWordPieceTokenizer", "--tokenizer-model-type", "bert-base-uncased",
            "--num-layers", "2", "--hidden-size", "32", "--num-attention-heads", "4", "--seq-length", "64",
            "--max-position-embeddings", "64", "--batch-size", "2", "--train-iters", "12", "--lr", "1e-3",
            "--log-interval", "1", "--save-interval", "4", "--eval-interval", "1000", "--eval-iters", "1",
            "--num-workers", "0", "--resume-dataloader", "--experiment-name", "run", "--seed", "7", *extra]


def env():
    """The test process's environment without launcher variables (a subprocess must start alone)."""
    clean = {k: v for k, v in os.environ.items()
             if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_SIZE", "MASTER_ADDR", "MASTER_PORT")}
    return dict(clean, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")


def run(argv, **kw):
    return subprocess.run([sys.executable, str(ROOT / "pretrain_glm.py"), *argv], cwd=ROOT, env=env(),
                          capture_output=True, text=True, timeout=300, **kw)


def losses(save):
    """iteration -> loss from every train_log.jsonl under ``save`` (later lines win); a last line still
    being written (no newline yet) is left out."""
    out = {}
    for path in glob.glob(f"{save}/*/train_log.jsonl"):
        for line in Path(path).read_text().split("\n")[:-1]:
            record = json.loads(line)
            out[record["iteration"]] = record["loss"]
    return out


def _tracker(save):
    """The iteration the run's tracker names (0 before the first checkpoint)."""
    found = glob.glob(f"{save}/*/latest_checkpointed_iteration.txt")
    text = Path(found[0]).read_text().strip() if found else ""
    return int(text) if text.isdigit() else 0


@pytest.mark.slow
def test_sigkill_then_resume_gives_identical_losses(corpus, tmp_path):
    full = run(flags(corpus, tmp_path / "cache", "--save", str(tmp_path / "full")))
    assert full.returncode == 0, full.stderr[-3000:]
    reference = losses(tmp_path / "full")
    assert sorted(reference) == list(range(1, 13))
    assert "final validation" in full.stdout

    # Kill right after a checkpoint event this test observes (the tracker naming it), at a checkpoint
    # drawn from a seeded generator: the same run every time, and never a log read mid-write.
    kill_at = random.Random(20).choice([4, 8])
    save = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, str(ROOT / "pretrain_glm.py"),
                             *flags(corpus, tmp_path / "cache", "--save", str(save))],
                            cwd=ROOT, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and _tracker(save) < kill_at:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the run ended before the kill"
    (run_dir,) = glob.glob(f"{save}/run-*")
    resumed_from = int(Path(run_dir, "latest_checkpointed_iteration.txt").read_text())
    assert resumed_from == kill_at

    resumed = run(flags(corpus, tmp_path / "cache", "--save", str(save), "--load", run_dir))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resumed from {run_dir}/{resumed_from} at iteration {resumed_from}" in resumed.stdout
    after = losses(save)
    for iteration in range(resumed_from + 1, 13):
        assert after[iteration] == reference[iteration], f"iteration {iteration} after resume from {resumed_from}"


@pytest.mark.slow
def test_resume_at_another_data_parallel_size(corpus, tmp_path):
    first = run(flags(corpus, tmp_path / "cache", "--save", str(tmp_path / "s"), "--train-iters", "4"))
    assert first.returncode == 0, first.stderr[-3000:]
    (run_dir,) = glob.glob(f"{tmp_path}/s/run-*")
    # Two data-parallel ranks with half the per-rank batch: the same global batch.
    second = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         str(ROOT / "pretrain_glm.py"), *flags(corpus, tmp_path / "cache", "--save", str(tmp_path / "s"),
                                                "--load", run_dir, "--batch-size", "1", "--train-iters", "8")],
        cwd=ROOT, env=env(), capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "resumed from" in second.stdout and "at iteration 4" in second.stdout
    assert max(losses(tmp_path / "s")) == 8


def main_exit(argv, capsys):
    """Run pretrain_glm.main in-process; return (exit code or message, captured output)."""
    import pretrain_glm
    try:
        code = pretrain_glm.main(argv)
    except SystemExit as exit_:
        code = exit_.code
    out = capsys.readouterr()
    return code, out.out + out.err


@pytest.mark.parametrize("case", ["missing data", "sequence too long", "unknown flag", "missing vocabulary",
                                  "bad deepspeed json", "missing deepspeed json", "global batch"])
def test_bad_input_stops_cleanly(case, corpus, tmp_path, capsys):
    save = tmp_path / "save"
    base = flags(corpus, tmp_path / "cache", "--save", str(save))
    if case == "missing data":
        argv, expect = base + ["--train-data", str(tmp_path / "nope.jsonl")], "nope.jsonl"
    elif case == "sequence too long":
        argv, expect = base + ["--seq-length", "128"], "--seq-length 128 is larger than the position table"
    elif case == "unknown flag":
        argv, expect = base + ["--no-such-flag"], "unrecognized arguments: --no-such-flag"
    elif case == "missing vocabulary":
        argv = base + ["--tokenizer-type", "SentencePieceTokenizer", "--tokenizer-path", str(tmp_path / "sp.model")]
        expect = "sp.model"
    elif case == "bad deepspeed json":
        bad = tmp_path / "ds.json"
        bad.write_text('{"train_micro_batch_size_per_gpu": 2,\n "x": }')
        argv, expect = base + ["--deepspeed", "--deepspeed_config", str(bad)], "not valid JSON"
    elif case == "missing deepspeed json":
        argv, expect = base + ["--deepspeed", "--deepspeed_config", str(tmp_path / "none.json")], "not found"
    else:
        config = tmp_path / "ds.json"
        config.write_text(json.dumps({"train_micro_batch_size_per_gpu": 2, "train_batch_size": 3}))
        argv, expect = base + ["--deepspeed", "--deepspeed_config", str(config)], "train_batch_size 3 is not"
    code, output = main_exit(argv, capsys)
    assert code not in (0, None)
    assert expect in str(code) + output
    assert "Traceback" not in output
    # No partial state: nothing was written under the save directory.
    assert not save.exists() or not any(save.rglob("*"))


@pytest.mark.slow
def test_deepspeed_launcher_two_ranks_zero1(corpus, tmp_path):
    """The `deepspeed` launcher (2 CPU ranks, gloo) runs pretrain_glm.py with the DeepSpeed engine."""
    pytest.importorskip("deepspeed")
    import shutil
    launcher = shutil.which("deepspeed") or str(Path(sys.executable).parent / "deepspeed")
    if not os.path.exists(launcher):
        pytest.skip("the deepspeed launcher script is not installed")
    config = tmp_path / "ds.json"
    config.write_text(json.dumps({"train_micro_batch_size_per_gpu": 2, "gradient_accumulation_steps": 1,
                                  "zero_optimization": {"stage": 1}, "zero_allow_untested_optimizer": True,
                                  "gradient_clipping": 1.0, "steps_per_print": 1000}))
    from tests.distributed.launcher import free_port
    result = subprocess.run(
        [launcher, "--num_gpus", "2", "--master_port", str(free_port()), str(ROOT / "pretrain_glm.py"),
         *flags(corpus, tmp_path / "cache", "--save", str(tmp_path / "ds"), "--train-iters", "4",
                "--deepspeed", "--deepspeed_config", str(config))],
        cwd=ROOT, env=dict(env(), DS_ACCELERATOR="cpu"), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert "engine: deepspeed" in result.stdout
    assert max(losses(tmp_path / "ds")) == 4
    assert glob.glob(f"{tmp_path}/ds/run-*/4/mp_rank_00_model_states.pt")
