"""Learning-rate schedule of GLM: linear warmup, then a decay to a floor (spec section 7.3).

:class:`AnnealingLR` keeps the original constructor, attribute names and state-dict keys, so
schedulers saved by the original load here and the other way round.  Terms used below:

* ``s``           -- the scheduler's step counter (``num_iters``; 0 right after construction);
* ``warmup_iter`` -- warmup length in steps (may be fractional: ``--warmup * num_iters``);
* ``end_iter``    -- length of the decay phase after warmup (the constructor's ``num_iters``);
* ``r``           -- final LR as a fraction of ``start_lr`` (``--lr-decay-ratio``).  Internally, as in
  the original, ``decay_ratio`` stores ``1 / r``, and that is what the state dict holds;
* ``t = (s - warmup_iter) / end_iter`` -- progress through the decay phase.

Schedule:

* warmup (when ``warmup_iter > 0`` and ``s <= warmup_iter``): ``lr = start_lr * s / warmup_iter``;
* ``linear``:      ``lr = start_lr * (1 - (1 - r) * t)``;
* ``cosine``:      ``lr = start_lr * (r + (1 - r) * (1 + cos(pi * t)) / 2)``;
* ``exponential``: ``lr = start_lr * r ** t`` (geometric interpolation from ``start_lr`` to the floor);
* ``constant`` / ``None``: ``lr = start_lr``.

In every decaying style ``t`` is capped at 1, so the LR stays at the floor ``r * start_lr`` once the
schedule is over.

Bugs of the original fixed here, each reachable again with ``compat=True`` (flag
``--lr-schedule-compat``) to reproduce old runs exactly:

1. linear decay was not clamped: past ``end_iter`` the LR kept falling and went negative;
2. ``exponential`` was a no-op (the LR stayed at ``start_lr`` after warmup);
3. ``load_state_dict`` restored only ``warmup_iter`` and ``num_iters``, silently keeping this
   scheduler's own ``end_iter``, style and ratio.  The fixed version restores every saved field, and
   additionally saves/restores ``start_lr`` (so a schedule restarted by ``--switch-linear`` survives a
   resume); use ``--no-load-lr-scheduler`` to start a new schedule from the flags instead.

With ``compat=True`` the arithmetic is carried out in the original's order of operations so the LRs
match the original bit for bit (checked against ``glm_reference/lr/lr_schedules.json``).
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Optional

__all__ = ["AnnealingLR", "DECAY_STYLES", "get_learning_rate_scheduler"]

#: Recognised values of ``decay_style`` (anything else means "constant" in the original).
DECAY_STYLES = ["linear", "cosine", "exponential", "constant", "None"]


class AnnealingLR:
    """Warmup + decay LR schedule that writes the LR into every param group of ``optimizer``.

    Args:
        optimizer: anything with ``param_groups`` (a list of dicts with an ``'lr'`` key).
        start_lr: peak LR, reached at the end of warmup.
        warmup_iter: warmup length in steps (0 = no warmup).
        num_iters: length of the decay phase *after* warmup (stored as ``end_iter``), as in the
            original; :func:`get_learning_rate_scheduler` passes ``total - warmup_iter``.
        decay_style: one of :data:`DECAY_STYLES` (case-insensitive) or ``None`` (constant).
        last_iter: index of the last completed step; the counter starts at ``last_iter + 1``.
        decay_ratio: final LR as a fraction of ``start_lr``; stored inverted (``1 / decay_ratio``).
        compat: reproduce the original exactly, bugs included (see the module docstring).

    Construction immediately sets the optimizer's LR for step ``last_iter + 1``; call :meth:`step`
    once per optimizer step (the original skips it when an fp16 step overflowed).
    """

    DECAY_STYLES = DECAY_STYLES

    def __init__(self, optimizer: Any, start_lr: float, warmup_iter: float, num_iters: float,
                 decay_style: Optional[str] = None, last_iter: int = -1, decay_ratio: float = 0.5,
                 compat: bool = False) -> None:
        self.optimizer = optimizer
        self.compat = bool(compat)
        self.start_lr = start_lr
        self.warmup_iter = warmup_iter
        self.num_iters = last_iter + 1  # the step counter, named as in the original
        self.end_iter = num_iters
        self.decay_style = decay_style.lower() if isinstance(decay_style, str) else None
        if not self.compat and self.decay_style not in (None, *(s.lower() for s in DECAY_STYLES)):
            # The original silently treated a typo as "constant"; fail loudly instead.
            raise ValueError(f"unknown decay_style {decay_style!r}; expected one of {DECAY_STYLES}")
        self.decay_ratio = 1 / decay_ratio  # inverted, as the original stores it
        self.step(self.num_iters)

    # -- schedule -------------------------------------------------------------------------------

    def _decay_progress(self) -> float:
        """``t``, uncapped.  A zero-length decay phase counts as finished (the original divided by 0)."""
        if self.end_iter <= 0:
            return 1.0
        return (self.num_iters - self.warmup_iter) / self.end_iter

    def get_lr(self) -> float:
        """LR for the current step counter (does not touch the optimizer)."""
        if self.warmup_iter > 0 and self.num_iters <= self.warmup_iter:
            return float(self.start_lr) * self.num_iters / self.warmup_iter
        style = self.decay_style
        if style == "linear":
            progress = self._decay_progress()
            if not self.compat:
                progress = min(1.0, progress)  # fix 1: hold the floor past the end
            # start - start * (1 - r) * t, with r = 1 / decay_ratio (order kept for bit-exactness)
            return self.start_lr - self.start_lr * (1 - 1 / self.decay_ratio) * progress
        if style == "cosine":
            progress = min(1.0, self._decay_progress())
            # start / R * ((cos(pi t) + 1) * (R - 1) / 2 + 1), R = 1 / r: equals
            # start * (r + (1 - r) * (1 + cos(pi t)) / 2)
            return self.start_lr / self.decay_ratio * (
                (math.cos(math.pi * progress) + 1) * (self.decay_ratio - 1) / 2 + 1)
        if style == "exponential" and not self.compat:
            # fix 2: geometric decay start -> start * r over the decay phase, floor afterwards
            progress = min(1.0, self._decay_progress())
            return self.start_lr * (1 / self.decay_ratio) ** progress
        return self.start_lr  # constant, None, and (compat) exponential

    def step(self, step_num: Optional[int] = None) -> None:
        """Advance the counter by one (or set it to ``step_num``) and write the LR to the optimizer."""
        if step_num is None:
            step_num = self.num_iters + 1
        self.num_iters = step_num
        new_lr = self.get_lr()
        for group in self.optimizer.param_groups:
            group["lr"] = new_lr

    def get_last_lr(self) -> List[float]:
        """LRs of the param groups, like ``torch.optim.lr_scheduler.LRScheduler.get_last_lr``."""
        return [group["lr"] for group in self.optimizer.param_groups]

    def switch_linear(self, config: Any) -> None:
        """Restart as a linear decay from the current LR over the remaining ``config.training.train_iters``.

        Used by ``--switch-linear`` after loading a checkpoint.  As in the original the step
        counter restarts at 0 and ``warmup_iter`` is kept, so the new schedule warms up again from 0
        to the current LR before decaying linearly to ``r`` times it.  The optimizer's LR is
        updated by the next :meth:`step`.
        """
        current_lr = self.get_lr()
        self.start_lr = current_lr
        self.end_iter = config.training.train_iters - self.num_iters
        self.num_iters = 0
        self.decay_style = "linear"

    # -- checkpointing --------------------------------------------------------------------------

    def state_dict(self) -> Dict[str, Any]:
        """The original's keys (``warmup_iter``, ``num_iters``, ``decay_style``, ``end_iter``,
        ``decay_ratio`` -- inverted); outside compat mode also ``start_lr``."""
        state = {
            "warmup_iter": self.warmup_iter,
            "num_iters": self.num_iters,
            "decay_style": self.decay_style,
            "end_iter": self.end_iter,
            "decay_ratio": self.decay_ratio,
        }
        if not self.compat:
            state["start_lr"] = self.start_lr
        return state

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Restore a saved schedule and set the optimizer's LR for the restored step.

        Compat mode restores only ``warmup_iter`` and ``num_iters`` (the original's behaviour, bug 3);
        otherwise every field present in ``state`` is restored, so states saved by the original
        (which lack ``start_lr``) keep this scheduler's ``start_lr``.
        """
        self.warmup_iter = state["warmup_iter"]
        self.num_iters = state["num_iters"]
        if not self.compat:
            if "end_iter" in state:
                self.end_iter = state["end_iter"]
            if "decay_style" in state:
                style = state["decay_style"]
                self.decay_style = style.lower() if isinstance(style, str) else None
            if "decay_ratio" in state:
                self.decay_ratio = state["decay_ratio"]
            if "start_lr" in state:
                self.start_lr = state["start_lr"]
        self.step(self.num_iters)


def get_learning_rate_scheduler(optimizer: Any, config: Any, train_iters: Optional[int] = None) -> AnnealingLR:
    """Build the scheduler the flags describe, as the original ``train_utils`` did.

    ``num_iters = --lr-decay-iters or --train-iters``; with ``--finetune`` it is divided (floor) by
    ``--gradient-accumulation-steps`` because finetuning counts iterations in micro-batches while the
    scheduler steps once per optimizer step; at least 1.  ``warmup_iter = --warmup * num_iters``;
    the decay phase is the rest.  ``--lr-schedule-compat`` selects the original's exact behaviour.
    ``train_iters`` replaces ``--train-iters`` when the caller derives it (finetuning: epochs x
    micro-batches per epoch).
    """
    num_iters = config.training.lr_decay_iters or (config.training.train_iters if train_iters is None else train_iters)
    if config.checkpoint.finetune:
        num_iters = num_iters // config.training.gradient_accumulation_steps
    num_iters = max(1, num_iters)
    warmup_iter = config.training.warmup * num_iters
    return AnnealingLR(
        optimizer,
        start_lr=config.training.lr,
        warmup_iter=warmup_iter,
        num_iters=num_iters - warmup_iter,
        decay_style=config.training.lr_decay_style,
        last_iter=-1,
        decay_ratio=config.training.lr_decay_ratio,
        compat=config.training.lr_schedule_compat,
    )
