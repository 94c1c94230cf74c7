"""fp16 loss scaling with the original's rules (spec 7.2, flags ``--loss-scale``, ``--loss-scale-window``,
``--hysteresis``, ``--min-scale``).

The loss is multiplied by the scale before backward so that small fp16 gradients do not flush to
zero; the gradients are divided by it again before the optimizer step.  A step whose gradients hold
inf/NaN (an *overflow*) is always skipped.  The scale itself changes as follows:

* an overflow spends one unit of the hysteresis budget (``--hysteresis``, default 2); the overflow
  that finds the budget at 1 halves the scale, never below ``--min-scale``;
* after ``--loss-scale-window`` iterations without an overflow the scale doubles and the budget is
  refilled (the budget is refilled only then, as in the original, not after every clean step);
* with a static ``--loss-scale`` nothing changes, and overflowing steps are still skipped.

torch's ``GradScaler`` has neither the hysteresis nor the floor, hence this small class.  Its state
goes into checkpoints (``grad_scaler``) and a resumed run continues it exactly.
"""

import dataclasses


@dataclasses.dataclass
class DynamicLossScaler:
    scale: float = 2.0 ** 32
    window: int = 1000
    hysteresis: int = 2
    min_scale: float = 1.0
    static: bool = False
    factor: float = 2.0
    iteration: int = 0               # updates seen so far
    last_overflow: int = -1          # the update that last overflowed
    budget: int = None               # overflows left before the next halving

    def __post_init__(self):
        if self.budget is None:
            self.budget = self.hysteresis

    @classmethod
    def from_config(cls, config):
        if config.precision.loss_scale is not None:
            return cls(scale=float(config.precision.loss_scale), static=True)
        return cls(window=max(1, int(config.precision.loss_scale_window)),
                   hysteresis=max(1, int(config.precision.hysteresis)),
                   min_scale=float(config.precision.min_scale))

    def update(self, overflow):
        """Account for one optimizer step that did (``overflow``) or did not find inf/NaN gradients."""
        if not self.static:
            if overflow:
                if self.budget <= 1:
                    self.scale = max(self.scale / self.factor, self.min_scale)
                else:
                    self.budget -= 1
                self.last_overflow = self.iteration
            elif (self.iteration - self.last_overflow) % self.window == 0:
                self.scale *= self.factor
                self.budget = self.hysteresis
        self.iteration += 1

    def state_dict(self):
        return dataclasses.asdict(self)

    def load_state_dict(self, state):
        if "scale" in state and "iteration" not in state:
            # A checkpoint of torch's GradScaler (written before this class existed): keep its scale.
            self.scale = float(state["scale"])
            return
        for field in dataclasses.fields(self):
            if field.name in state:
                setattr(self, field.name, state[field.name])
