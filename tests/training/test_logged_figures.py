"""The figures of the training log are right when steps are skipped (issue 20, case 5) and when the
engine does not expose a gradient norm (case 9): loss averaged over the steps it sums, executed
FLOPs only, no MFU above the device's peak, no ``grad norm nan`` filler."""

import glob
import io
import json
import math
import sys

import pytest
import torch

from glm.training import metrics
from glm.training.engines import StepResult
from glm.training.metrics import TrainingLogger
from tests.training.synthetic import tiny_config
from tests.training.test_pretrain_e2e import corpus, flags, main_exit  # noqa: F401 -- corpus is a fixture

CONFIG = {"num_layers": 2, "hidden_size": 32, "vocab_size": 128}


def logger_with(results):
    cfg = tiny_config()
    log = TrainingLogger(CONFIG, 1, 1e12, "test", train_iters=cfg.training.train_iters)
    for result in results:
        log.record(result, tokens=96, seq_length=24)
    return log


def test_loss_is_the_mean_of_the_steps_it_sums(capsys):
    overflow = [StepResult(loss=10.0 + i, skipped=True, nonfinite=False, grad_norm=float("inf")) for i in range(3)]
    nan = StepResult(loss=float("nan"), skipped=True, nonfinite=True)
    applied = StepResult(loss=9.0, skipped=False, nonfinite=False, grad_norm=1.5)
    log = logger_with(overflow + [nan, applied])
    log.report(5, 1e-3)
    line = capsys.readouterr().out.splitlines()[0]
    # (10 + 11 + 12 + 9) / 4: the overflow steps' forward losses are real; the NaN step is in neither sum nor count
    assert "loss 10.5000" in line and "skipped 4" in line and "grad norm 1.500" in line


def test_nan_steps_count_their_forward_flops_only():
    full = logger_with([StepResult(loss=1.0, skipped=False, nonfinite=False)]).flops
    forward = logger_with([StepResult(loss=float("nan"), skipped=True, nonfinite=True)]).flops
    overflow = logger_with([StepResult(loss=1.0, skipped=True, nonfinite=False)]).flops
    assert forward == pytest.approx(full / 3) and overflow == full


def test_all_steps_nonfinite_logs_nan_not_a_sum(capsys):
    log = logger_with([StepResult(loss=float("inf"), skipped=True, nonfinite=True)] * 2)
    log.report(2, 1e-3)
    assert "loss nan" in capsys.readouterr().out


def test_grad_norm_omitted_when_the_engine_gives_none(capsys):
    log = logger_with([StepResult(loss=2.0, skipped=False, nonfinite=False, grad_norm=None)])
    log.report(1, 1e-3)
    assert "grad norm" not in capsys.readouterr().out


def test_memory_report_sets_the_plan_beside_the_measured_peak():
    assert "planned peak" not in metrics.memory_report()
    assert metrics.memory_report(planned_peak=300 * 2 ** 20).endswith("| planned peak 300")


def test_cpu_peak_is_the_faster_of_fp32_and_the_autocast_dtype(monkeypatch):
    speeds = {torch.float16: 10e9, torch.float32: 100e9}   # a CPU without half-precision units
    monkeypatch.setattr(metrics, "_measured_matmul_peak", lambda device, dtype: (speeds[dtype], str(dtype)))
    peak, label = metrics.device_peak_flops(torch.device("cpu"), torch.float16)
    assert peak == 100e9 and "float32" in label


@pytest.mark.slow
def test_fp16_run_with_skipped_steps_logs_a_true_loss(corpus, tmp_path, capsys):  # noqa: F811
    """The issue's run: fp16 starts at loss scale 2^32, so the first steps overflow and are skipped."""
    argv = flags(corpus, tmp_path / "cache", "--save", str(tmp_path / "s"), "--fp16", "--train-iters", "20",
                 "--log-interval", "10", "--save-interval", "1000", "--seq-length", "32", "--eval-interval", "10")
    code, output = main_exit(argv, capsys)
    assert code == 0, output[-3000:]
    # Friction of the same run: a short configuration summary, and why the two validations differ.
    assert "configuration (summary):" in output and "resolved configuration" not in output
    assert "validation at iteration 20" in output and "'final validation' reads its first 1" in output
    # The memory plan before the first step, and beside the measured peak of the first report.
    assert "memory plan: peak" in output and output.index("memory plan: peak") < output.index("iteration ")
    assert "peak resident set" in output and "| planned peak" in output
    records = [json.loads(line) for path in glob.glob(f"{tmp_path}/s/*/train_log.jsonl") for line in open(path)]
    first = records[0]
    assert first["skipped"] > 0, first           # the situation of the issue is reproduced
    assert 5.0 < first["loss"] < 12.0, first     # ln(30592) = 10.3 at initialisation, not 10x that
    assert all(r["mfu"] < 100.0 for r in records)
    assert all(r["grad_norm"] is None or not math.isnan(r["grad_norm"]) or r["skipped"] for r in records)


class Terminal(io.StringIO):
    """stdout and stderr of one terminal: both streams land in the same text."""

    def isatty(self):
        return True


def test_progress_bar_and_log_lines_never_share_a_line(monkeypatch):
    from glm.training.core import LoopSettings
    from glm.training.losses import language_model_loss
    from glm.training.pretraining import train
    from tests.training.synthetic import SyntheticLoader
    from tests.training.test_plain_engine import DEVICE, make_engine

    terminal = Terminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    monkeypatch.setattr(sys, "stderr", terminal)
    cfg = tiny_config("--log-interval", "2", "--eval-interval", "4", "--eval-iters", "1")
    engine = make_engine(cfg)
    log = TrainingLogger(engine.module.config, 1, 1e11, "test", train_iters=cfg.training.train_iters)
    train(LoopSettings.from_config(cfg), engine, iter(SyntheticLoader(4)), language_model_loss, 0, DEVICE, log,
          valid_iterator=iter(SyntheticLoader(4, start=10_000)))
    # What the terminal shows of each line is the text after its last carriage return.
    shown = [line.rsplit("\r", 1)[-1] for line in terminal.getvalue().split("\n")]
    logged = [line for line in shown if "iteration" in line]
    assert len(logged) == 4 + 2
    assert all(line.startswith(("iteration", "validation")) for line in logged), logged
