"""The training core on its own (pretraining and finetuning run through it end to end elsewhere):
how it counts iterations in either unit, when it logs, saves and validates, and how a stop request
ends a run."""

from glm.training.core import LoopSettings, TrainingCore
from glm.training.losses import language_model_loss
from glm.training.metrics import TrainingLogger
from tests.training.synthetic import SyntheticLoader, tiny_config
from tests.training.test_plain_engine import DEVICE, make_engine


class StopAtCall:
    """A stop request that says yes from its ``n``-th question on (as if a signal arrived then)."""

    def __init__(self, n):
        self.calls, self.n = 0, n

    def requested(self):
        self.calls += 1
        return self.calls >= self.n


def step_batches(micro_batches_per_step, steps):
    batches = iter(SyntheticLoader(4))
    return ([next(batches) for _ in range(micro_batches_per_step)] for _ in range(steps))


def make_core(cfg, settings, **kwargs):
    engine = make_engine(cfg)
    log = TrainingLogger(engine.module.config, 1, 1e12, "test", train_iters=settings.train_iters)
    return TrainingCore(engine, language_model_loss, DEVICE, settings, log, **kwargs)


def test_counting_micro_batches_logs_by_steps_and_saves_where_a_stop_ends_the_run(capsys):
    """Finetuning's unit: a step of 2 micro-batches moves the iteration by 2; --log-interval counts
    steps; the step a stop request ended the run after is saved."""
    cfg = tiny_config("--gradient-accumulation-steps", "2", "--log-interval", "2")
    settings = LoopSettings.from_config(cfg, train_iters=100, count_micro_batches=True, save_interval=0)
    saved = []
    core = make_core(cfg, settings, save=saved.append, stop_request=StopAtCall(3))
    assert core.run(step_batches(2, 10)) is True
    assert core.iteration == 6 and saved == [6]
    logged = [line for line in capsys.readouterr().out.splitlines() if line.startswith("iteration")]
    assert [line.split("|")[0].split()[1] for line in logged] == ["4/"]


def test_periodic_saves_validation_and_no_save_on_interrupt(capsys):
    """Pretraining's unit: saves every --save-interval steps, validates every --eval-interval, and
    with --no-save-on-interrupt a stopped run is not saved again."""
    cfg = tiny_config("--save-interval", "2", "--eval-interval", "3", "--no-save-on-interrupt", "--log-interval", "100")
    settings = LoopSettings.from_config(cfg, train_iters=100)
    saved = []
    core = make_core(cfg, settings, save=saved.append, stop_request=StopAtCall(5),
                     validate=lambda: {"loss": 1.5})
    assert core.run(step_batches(1, 10)) is True
    assert core.iteration == 5 and saved == [2, 4]
    assert "validation at iteration 3 | loss 1.5000" in capsys.readouterr().out


def test_a_run_ends_at_train_iters_or_when_its_batches_end():
    cfg = tiny_config()
    core = make_core(cfg, LoopSettings.from_config(cfg, train_iters=3))
    assert core.run(step_batches(1, 10)) is False and core.iteration == 3
    core = make_core(cfg, LoopSettings.from_config(cfg, train_iters=100))
    assert core.run(step_batches(1, 2)) is False and core.iteration == 2
