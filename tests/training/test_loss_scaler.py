"""fp16 dynamic loss scaling as the original did it: hysteresis, growth after a clean window, the
floor, a static scale, skipped steps, and the state resumed exactly."""

import copy

import pytest
import torch

from glm.training.loss_scaler import DynamicLossScaler
from glm.training.losses import language_model_loss
from tests.training.synthetic import SyntheticLoader, tiny_config
from tests.training.test_plain_engine import make_engine


def _run(scaler, overflows):
    """Scales after each update of the overflow pattern ``overflows`` (a string of 'x' and '.')."""
    out = []
    for mark in overflows:
        scaler.update(overflow=mark == "x")
        out.append(scaler.scale)
    return out


def test_hysteresis_delays_the_halving():
    scaler = DynamicLossScaler(scale=1024.0, window=1000, hysteresis=2)
    # The first overflow only spends the budget; the second halves; later ones halve until a growth.
    assert _run(scaler, "xxx") == [1024.0, 512.0, 256.0]
    assert scaler.budget == 1


def test_budget_is_refilled_only_by_a_growth():
    scaler = DynamicLossScaler(scale=1024.0, window=4, hysteresis=2)
    # x . . x : the clean steps in between do not refill the budget (the original's rule), so the
    # second overflow halves; four clean updates after it double the scale and refill the budget.
    assert _run(scaler, "x..x") == [1024.0, 1024.0, 1024.0, 512.0]
    assert _run(scaler, "...") == [512.0, 512.0, 512.0]
    assert _run(scaler, ".") == [1024.0]
    assert scaler.budget == 2
    assert _run(scaler, "x") == [1024.0]  # the refilled budget absorbs one overflow again


def test_growth_after_each_clean_window_and_the_floor():
    scaler = DynamicLossScaler(scale=4.0, window=3, hysteresis=1, min_scale=2.0)
    # From the start (no overflow yet) the scale doubles after every `window` clean updates.
    assert _run(scaler, "......") == [4.0, 4.0, 8.0, 8.0, 8.0, 16.0]
    assert _run(scaler, "xxxxx") == [8.0, 4.0, 2.0, 2.0, 2.0]  # hysteresis 1: halve at once, down to the floor


def test_static_scale_never_changes():
    scaler = DynamicLossScaler.from_config(tiny_config("--fp16", "--loss-scale", "128"))
    assert _run(scaler, "x..x....") == [128.0] * 8


def test_state_resumes_exactly():
    pattern = "..x.x...........x...x..xx........"
    scaler = DynamicLossScaler(scale=2.0 ** 16, window=5, hysteresis=2, min_scale=1.0)
    full = _run(copy.deepcopy(scaler), pattern)
    first = _run(scaler, pattern[:13])
    resumed = DynamicLossScaler(scale=2.0 ** 32)  # built from other flags, then loaded
    resumed.load_state_dict(scaler.state_dict())
    assert first + _run(resumed, pattern[13:]) == full


def test_flags_reach_the_scaler():
    scaler = DynamicLossScaler.from_config(tiny_config("--fp16", "--hysteresis", "3", "--min-scale", "4",
                                                   "--loss-scale-window", "50"))
    assert (scaler.scale, scaler.window, scaler.hysteresis, scaler.min_scale, scaler.static) == \
        (2.0 ** 32, 50, 3, 4.0, False)


def test_engine_skips_overflowing_steps_and_follows_the_scaler():
    """An fp16 step whose scaled gradients overflow is skipped (weights, optimizer and LR schedule
    untouched); with --hysteresis 2 the first overflow keeps the scale, the second halves it."""
    cfg = tiny_config("--fp16", "--hysteresis", "2")
    engine = make_engine(cfg)
    batches = iter(SyntheticLoader(cfg.training.batch_size))

    def huge(model, batch):  # a finite loss whose scaled gradients overflow
        loss, extra = language_model_loss(model, batch)
        return loss * 1e30, extra

    weights = copy.deepcopy(engine.module.state_dict())
    lr_step = engine.lr_scheduler.num_iters
    first = engine.train_batch([next(batches)], huge)
    assert first.skipped and not first.nonfinite and first.loss_scale == 2.0 ** 32
    assert all(torch.equal(v, engine.module.state_dict()[k]) for k, v in weights.items())
    assert engine.lr_scheduler.num_iters == lr_step and not engine.optimizer.state
    second = engine.train_batch([next(batches)], huge)
    assert second.skipped and second.loss_scale == 2.0 ** 31
    # An ordinary loss still overflows at 2^31 in fp16 (the run would halve its way down, as the
    # original); from a scale that fits, the step is applied and the schedule advances.
    engine.scaler.scale = 1024.0
    clean = engine.train_batch([next(batches)], language_model_loss)
    assert not clean.skipped and engine.lr_scheduler.num_iters == lr_step + 1
    assert not all(torch.equal(v, engine.module.state_dict()[k]) for k, v in weights.items())
    assert engine.state_dict()["grad_scaler"]["scale"] == 1024.0


@pytest.mark.parametrize("old_state", [{"scale": 65536.0, "growth_factor": 2.0, "_growth_tracker": 3}])
def test_checkpoints_of_torch_gradscaler_keep_their_scale(old_state):
    scaler = DynamicLossScaler()
    scaler.load_state_dict(old_state)
    assert scaler.scale == 65536.0
