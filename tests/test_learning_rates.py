"""Tests of glm.learning_rates against the original's recorded schedules (glm_reference/lr).

Compat mode must reproduce every recorded LR; the default (fixed) mode must agree wherever the
original's bugs do not apply, and the fixes themselves are checked separately.
"""

import json
import math
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.helpers import parse_config
from glm.learning_rates import DECAY_STYLES, AnnealingLR, get_learning_rate_scheduler

SHARED = Path(os.environ.get("GLM_SHARED_DIR") or Path(__file__).resolve().parents[2] / "shared")
LR_FILE = SHARED / "glm_reference" / "lr" / "lr_schedules.json"


def _load_reference():
    if not LR_FILE.exists():
        return None
    with open(LR_FILE, encoding="utf-8") as handle:
        return json.load(handle)


REFERENCE = _load_reference()
CASES = REFERENCE["cases"] if REFERENCE else []
needs_reference = pytest.mark.skipif(REFERENCE is None, reason=f"reference vectors not found at {LR_FILE}")


class FakeOptimizer:
    """Just what the scheduler touches: param groups with an 'lr' entry (two, to check all are set)."""

    def __init__(self, groups=2):
        self.param_groups = [{"lr": None} for _ in range(groups)]

    @property
    def lr(self):
        values = {group["lr"] for group in self.param_groups}
        assert len(values) == 1, values
        return values.pop()


@pytest.fixture(autouse=True)
def _single_process_env(monkeypatch):
    # get_args reads launcher variables; keep the host's environment out of these tests.
    for key in list(os.environ):
        if key in ("RANK", "WORLD_SIZE", "LOCAL_RANK") or key.startswith(("OMPI_COMM_WORLD_", "SLURM_")):
            monkeypatch.delenv(key)


def _close(actual, expected, scale):
    """1e-12 relative, with an absolute floor of 1e-12 * start_lr for values that cross zero."""
    return math.isclose(actual, expected, rel_tol=1e-12, abs_tol=1e-12 * abs(scale))


def _run(case, compat, n_steps):
    cfg = parse_config(case["argv"] + (["--lr-schedule-compat"] if compat else []))
    optimizer = FakeOptimizer()
    scheduler = get_learning_rate_scheduler(optimizer, cfg)
    lrs = [optimizer.lr]
    for _ in range(n_steps):
        scheduler.step()
        lrs.append(optimizer.lr)
    return cfg, scheduler, lrs


def _ids(cases):
    return [case["name"] for case in cases]


# ---------------------------------------------------------------------------------------------------
# Compat mode: the original, bit for bit (up to 1e-12)
# ---------------------------------------------------------------------------------------------------


@needs_reference
@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_compat_reproduces_reference(case):
    cfg, scheduler, lrs = _run(case, compat=True, n_steps=REFERENCE["n_steps"])
    start_lr = case["derived"]["start_lr"]
    assert len(lrs) == len(case["lr"])
    mismatches = [(k, got, want) for k, (got, want) in enumerate(zip(lrs, case["lr"]))
                  if not _close(got, want, start_lr)]
    assert not mismatches, mismatches[:5]
    assert scheduler.state_dict() == case["state_dict_after"]

    # A fresh scheduler built from the same flags, then load_state_dict.
    optimizer = FakeOptimizer()
    fresh = get_learning_rate_scheduler(optimizer, cfg)
    fresh.load_state_dict(case["state_dict_after"])
    assert _close(optimizer.lr, case["lr_after_load_state_dict"], start_lr)


@needs_reference
@pytest.mark.parametrize("compat", [True, False], ids=["compat", "fixed"])
@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_derived_construction_values(case, compat):
    """The flags -> constructor derivation (num_iters, warmup, finetune // accumulation, ratio)."""
    cfg = parse_config(case["argv"] + (["--lr-schedule-compat"] if compat else []))
    scheduler = get_learning_rate_scheduler(FakeOptimizer(), cfg)
    derived = case["derived"]
    assert scheduler.start_lr == derived["start_lr"]
    assert scheduler.warmup_iter == derived["warmup_iter"]
    assert scheduler.end_iter == derived["end_iter"]
    assert scheduler.decay_style == derived["decay_style"]
    assert scheduler.decay_ratio == derived["decay_ratio_internal"]
    assert scheduler.num_iters == derived["initial_num_iters"]
    assert scheduler.compat is compat


def _switch_linear_run(compat):
    record = REFERENCE["switch_linear"]
    cfg = parse_config(record["argv"] + (["--lr-schedule-compat"] if compat else []))
    optimizer = FakeOptimizer()
    scheduler = get_learning_rate_scheduler(optimizer, cfg)
    lrs = [optimizer.lr]
    for index in range(REFERENCE["n_steps"]):
        if index == record["switch_before_step_index"]:
            scheduler.switch_linear(cfg)
        scheduler.step()
        lrs.append(optimizer.lr)
    return cfg, lrs


@needs_reference
@pytest.mark.parametrize("compat", [True, False], ids=["compat", "fixed"])
def test_switch_linear(compat):
    # The restarted linear decay (re-warmup of 5 steps + 30 decay steps) does not reach its end
    # within the recorded 50 steps, so the fixed mode must match too.
    cfg, lrs = _switch_linear_run(compat)
    expected = REFERENCE["switch_linear"]["lr"]
    mismatches = [(k, got, want) for k, (got, want) in enumerate(zip(lrs, expected))
                  if not _close(got, want, cfg.training.lr)]
    assert not mismatches, mismatches[:5]


# ---------------------------------------------------------------------------------------------------
# Fixed (default) mode: identical wherever the bugs do not apply
# ---------------------------------------------------------------------------------------------------


@needs_reference
@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_fixed_matches_reference_before_the_end(case):
    cfg, scheduler, lrs = _run(case, compat=False, n_steps=REFERENCE["n_steps"])
    derived = case["derived"]
    start_lr, warmup, end = derived["start_lr"], derived["warmup_iter"], derived["end_iter"]
    floor = start_lr / derived["decay_ratio_internal"]
    for step, (got, want) in enumerate(zip(lrs, case["lr"])):
        in_warmup = warmup > 0 and step <= warmup
        if derived["decay_style"] == "exponential" and not in_warmup:
            continue  # fix 2 changes every post-warmup value; tested below
        if step <= warmup + end or derived["decay_style"] in ("constant", "cosine"):
            assert _close(got, want, start_lr), (step, got, want)
        else:  # linear past the end: the fixed schedule holds the floor, the original fell below it
            assert _close(got, floor, start_lr), (step, got, floor)
            assert want <= floor * (1 + 1e-12)

    # State dict: the original keys with the original values, plus start_lr.
    state = scheduler.state_dict()
    assert {k: state[k] for k in case["state_dict_after"]} == case["state_dict_after"]
    assert state["start_lr"] == start_lr


def test_linear_is_clamped_at_the_floor():
    optimizer = FakeOptimizer()
    scheduler = AnnealingLR(optimizer, start_lr=1.0, warmup_iter=2, num_iters=8, decay_style="linear",
                            decay_ratio=0.25)
    lrs = [optimizer.lr]
    for _ in range(30):
        scheduler.step()
        lrs.append(optimizer.lr)
    assert lrs[10] == pytest.approx(0.25)  # end of the decay: warmup 2 + 8 steps
    assert all(lr == pytest.approx(0.25) for lr in lrs[10:])
    assert min(lrs[2:]) >= 0.25 - 1e-15
    # Compat keeps the original's runaway decay.
    compat = AnnealingLR(FakeOptimizer(), 1.0, 2, 8, "linear", decay_ratio=0.25, compat=True)
    compat.step(30)
    assert compat.get_lr() == pytest.approx(1.0 - 0.75 * 28 / 8) and compat.get_lr() < 0


def test_exponential_decays_monotonically_to_the_floor():
    start_lr, ratio, warmup, end = 3e-3, 0.1, 3, 27
    optimizer = FakeOptimizer()
    scheduler = AnnealingLR(optimizer, start_lr, warmup, end, "exponential", decay_ratio=ratio)
    lrs = [optimizer.lr]
    for _ in range(50):
        scheduler.step()
        lrs.append(optimizer.lr)
    assert lrs[warmup] == pytest.approx(start_lr)
    decay = lrs[warmup:warmup + end + 1]
    assert all(a > b for a, b in zip(decay, decay[1:])), "strictly decreasing during the decay phase"
    # Geometric interpolation: lr(t) = start * ratio**t.
    for step in (4, 10, 16, 29):
        t = (step - warmup) / end
        assert lrs[step] == pytest.approx(start_lr * ratio ** t, rel=1e-12)
    assert all(lr == pytest.approx(start_lr * ratio, rel=1e-12) for lr in lrs[warmup + end:])
    # Compat: the original's no-op.
    compat = AnnealingLR(FakeOptimizer(), start_lr, warmup, end, "exponential", decay_ratio=ratio, compat=True)
    compat.step(20)
    assert compat.get_lr() == start_lr


def test_cosine_floor_and_midpoint():
    scheduler = AnnealingLR(FakeOptimizer(), 2.0, 0, 10, "cosine", decay_ratio=0.1)
    scheduler.step(5)
    assert scheduler.get_lr() == pytest.approx(2.0 * (0.1 + 0.9 * 0.5))
    scheduler.step(100)
    assert scheduler.get_lr() == pytest.approx(0.2)


def test_load_state_dict_restores_everything():
    source = AnnealingLR(FakeOptimizer(), 1e-3, 4, 36, "cosine", decay_ratio=0.05)
    for _ in range(17):
        source.step()
    state = source.state_dict()

    optimizer = FakeOptimizer()
    target = AnnealingLR(optimizer, 5e-4, 1, 99, "linear", decay_ratio=0.5)
    target.load_state_dict(state)
    assert (target.decay_style, target.end_iter, target.decay_ratio, target.start_lr) == ("cosine", 36, 20.0, 1e-3)
    assert optimizer.lr == source.get_lr()
    for _ in range(40):
        source.step()
        target.step()
        assert target.get_lr() == source.get_lr()


def test_load_state_dict_compat_ignores_style_end_and_ratio():
    source = AnnealingLR(FakeOptimizer(), 1e-3, 4, 36, "cosine", decay_ratio=0.05, compat=True)
    source.step(17)
    state = source.state_dict()
    assert set(state) == {"warmup_iter", "num_iters", "decay_style", "end_iter", "decay_ratio"}
    target = AnnealingLR(FakeOptimizer(), 5e-4, 1, 99, "linear", decay_ratio=0.5, compat=True)
    target.load_state_dict(state)
    assert (target.num_iters, target.warmup_iter) == (17, 4)
    assert (target.decay_style, target.end_iter, target.decay_ratio, target.start_lr) == ("linear", 99, 2.0, 5e-4)


def test_load_original_state_dict_keeps_own_start_lr():
    # States written by the original (or by compat mode) have no start_lr.
    original_state = {"warmup_iter": 2.0, "num_iters": 10, "decay_style": "linear", "end_iter": 18.0,
                      "decay_ratio": 10.0}
    optimizer = FakeOptimizer()
    scheduler = AnnealingLR(optimizer, 1.0, 0, 5, "cosine", decay_ratio=0.5)
    scheduler.load_state_dict(original_state)
    assert scheduler.start_lr == 1.0
    assert optimizer.lr == pytest.approx(1.0 - 0.9 * 8 / 18)


def test_switch_linear_survives_resume_in_fixed_mode():
    cfg = parse_config(train_iters=50)
    source = AnnealingLR(FakeOptimizer(), 1e-3, 5, 45, "cosine", decay_ratio=0.1)
    source.step(20)
    source.switch_linear(cfg)
    source.step(12)
    target = AnnealingLR(FakeOptimizer(), 1e-3, 5, 45, "cosine", decay_ratio=0.1)
    target.load_state_dict(source.state_dict())
    assert target.get_lr() == source.get_lr()


def test_decay_styles_and_unknown_style():
    assert DECAY_STYLES == ["linear", "cosine", "exponential", "constant", "None"]
    assert AnnealingLR.DECAY_STYLES is DECAY_STYLES
    for style in (None, "None", "constant", "CONSTANT"):
        scheduler = AnnealingLR(FakeOptimizer(), 0.5, 0, 10, style)
        scheduler.step(7)
        assert scheduler.get_lr() == 0.5
    with pytest.raises(ValueError, match="cosin"):
        AnnealingLR(FakeOptimizer(), 0.5, 0, 10, "cosin")
    # The original treated unknown styles as constant; compat keeps that.
    assert AnnealingLR(FakeOptimizer(), 0.5, 0, 10, "cosin", compat=True).get_lr() == 0.5


def test_warmup_only_schedule_has_no_zero_division():
    # --warmup 1.0 leaves an empty decay phase: the original divided by zero after warmup.
    cfg = parse_config(lr_decay_iters=None, train_iters=10, finetune=False, gradient_accumulation_steps=1,
                           warmup=1.0, lr=1.0, lr_decay_style="cosine", lr_decay_ratio=0.1)
    optimizer = FakeOptimizer()
    scheduler = get_learning_rate_scheduler(optimizer, cfg)
    scheduler.step(10)
    assert optimizer.lr == 1.0
    scheduler.step(11)
    assert optimizer.lr == pytest.approx(0.1)


def test_scheduler_derivation_edge_cases():
    base = dict(lr_decay_iters=None, train_iters=0, finetune=False, gradient_accumulation_steps=1, warmup=0.0,
                lr=1.0, lr_decay_style="linear", lr_decay_ratio=0.1)
    # train_iters 0 (epoch-based finetuning before train_iters is known) -> at least 1 step.
    assert get_learning_rate_scheduler(FakeOptimizer(), parse_config(**base)).end_iter == 1
    # --lr-decay-iters wins over --train-iters; --finetune divides by the accumulation steps (floor).
    cfg = parse_config(**{**base, "lr_decay_iters": 41, "train_iters": 100, "finetune": True,
                              "gradient_accumulation_steps": 4, "warmup": 0.1})
    scheduler = get_learning_rate_scheduler(FakeOptimizer(), cfg)
    assert (scheduler.warmup_iter, scheduler.end_iter) == (pytest.approx(1.0), pytest.approx(9.0))
    assert scheduler.compat is False  # cfg without the new flag: fixed mode


def test_with_a_torch_optimizer():
    torch = pytest.importorskip("torch")
    params = [torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(3))]
    optimizer = torch.optim.SGD([{"params": params[:1]}, {"params": params[1:]}], lr=123.0)
    scheduler = AnnealingLR(optimizer, 0.1, 4, 16, "cosine", decay_ratio=0.1)
    assert [g["lr"] for g in optimizer.param_groups] == [0.0, 0.0]
    scheduler.step()
    assert scheduler.get_last_lr() == [pytest.approx(0.025)] * 2
