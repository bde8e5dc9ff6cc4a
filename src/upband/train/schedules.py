"""Learning-rate schedules, stepped once per iteration; their state is plain JSON.

The loop asks ``schedule.lr(step)`` for the rate of iteration ``step`` (0-based) before the
optimiser step and reports the iteration's training loss with ``schedule.observe(loss)``
afterwards. ``state_dict()`` / ``load_state_dict()`` carry everything that is not a function of
the step (the plateau rule's loss averages), so a resumed run follows the same schedule.

* :class:`ConstantLR` -- the base rate.
* :class:`CosineRestarts` -- SGDR (Loshchilov & Hutter 2017), as in ARUNet §II-D: within a
  period of ``T`` iterations ``lr = min + (base - min) (1 + cos(pi t / T)) / 2``, then restart;
  each period is ``mult`` times longer than the previous one.
* :class:`PlateauHalving` -- Sulun & Davies §III-E: "the learning rate is halved when the
  training loss reaches a plateau. We record the average training loss every 2500 iterations,
  and consider a plateau to correspond to no decrease in loss for 5 such consecutive
  measurements." A measurement *decreases* when it is below the best (lowest) average so far;
  after ``patience`` consecutive measurements without a decrease the rate is multiplied by
  ``factor`` and the count starts again. (Their released code feeds the loss to PyTorch's
  ``ReduceLROnPlateau`` with ``mode='max'``, which fires every 5 measurements whatever the loss
  does; that bug is not reproduced -- docs/readings/sulun-davies.md.)

All of them accept a linear warm-up over ``warmup_steps`` iterations (a factor ``(s + 1) / W``).
"""

from __future__ import annotations

import math
from typing import Any

from torch import Tensor

from upband.train.config import ConfigError, OptimConfig, ScheduleConfig

__all__ = ["ConstantLR", "CosineRestarts", "PlateauHalving", "Schedule", "build_schedule"]


class Schedule:
    """Base: a constant rate with optional warm-up. Subclasses override :meth:`_rate`."""

    def __init__(self, base_lr: float, warmup_steps: int = 0) -> None:
        if base_lr <= 0:
            raise ValueError(f"base_lr must be > 0, got {base_lr}")
        if warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {warmup_steps}")
        self.base_lr = float(base_lr)
        self.warmup_steps = int(warmup_steps)

    def lr(self, step: int) -> float:
        """Learning rate of iteration ``step`` (0-based)."""
        rate = self._rate(step)
        if step < self.warmup_steps:
            rate *= (step + 1) / self.warmup_steps
        return rate

    def _rate(self, step: int) -> float:
        return self.base_lr

    def observe(self, loss: float | Tensor) -> None:
        """Report one iteration's training loss (only :class:`PlateauHalving` uses it).

        A tensor is accumulated as a tensor, so that a CUDA run synchronises only once per
        measurement window. Under DDP, report the loss averaged over the ranks, so that every
        rank takes the same decisions."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`; unknown or missing keys are an error."""
        if state:
            raise ValueError(f"{type(self).__name__} has no state, got keys {sorted(state)}")


class ConstantLR(Schedule):
    """``base_lr`` throughout (after the warm-up)."""


class CosineRestarts(Schedule):
    """Cosine annealing with warm restarts (SGDR), step-based; a pure function of the step."""

    def __init__(self, base_lr: float, period: int, min_lr: float = 0.0, mult: int = 1,
                 warmup_steps: int = 0) -> None:
        super().__init__(base_lr, warmup_steps)
        if period < 1 or mult < 1:
            raise ValueError(f"period and mult must be >= 1, got {period}, {mult}")
        if not 0 <= min_lr <= base_lr:
            raise ValueError(f"min_lr must lie in [0, base_lr], got {min_lr}")
        self.period, self.mult, self.min_lr = int(period), int(mult), float(min_lr)

    def position(self, step: int) -> tuple[int, int]:
        """``(t, T)``: iteration ``step`` is the ``t``-th of a period of ``T`` iterations."""
        period, t = self.period, step
        while t >= period:
            t -= period
            period *= self.mult
        return t, period

    def _rate(self, step: int) -> float:
        t, period = self.position(step)
        return self.min_lr + (self.base_lr - self.min_lr) * 0.5 * (1 + math.cos(math.pi * t
                                                                                 / period))


class PlateauHalving(Schedule):
    """Multiply the rate by ``factor`` after ``patience`` consecutive ``window``-iteration
    training-loss averages without a decrease below the best average (Sulun & Davies)."""

    def __init__(self, base_lr: float, window: int = 2500, patience: int = 5,
                 factor: float = 0.5, min_lr: float = 0.0, warmup_steps: int = 0) -> None:
        super().__init__(base_lr, warmup_steps)
        if window < 1 or patience < 1 or not 0 < factor < 1:
            raise ValueError("window and patience must be >= 1 and factor in (0, 1)")
        self.window, self.patience, self.factor = int(window), int(patience), float(factor)
        self.min_lr = float(min_lr)
        self.scale = 1.0
        self.best = math.inf
        self.bad = 0
        self.loss_sum: float | Tensor = 0.0
        self.loss_count = 0
        self.history: list[float] = []

    def _rate(self, step: int) -> float:
        return max(self.base_lr * self.scale, self.min_lr)

    def observe(self, loss: float | Tensor) -> None:
        value = loss.detach().double() if isinstance(loss, Tensor) else float(loss)
        self.loss_sum = self.loss_sum + value
        self.loss_count += 1
        if self.loss_count == self.window:
            self.measure(float(self.loss_sum) / self.loss_count)
            self.loss_sum, self.loss_count = 0.0, 0

    def measure(self, average: float) -> None:
        """Apply the plateau rule to one window average of the training loss."""
        self.history.append(average)
        if average < self.best:
            self.best, self.bad = average, 0
            return
        self.bad += 1
        if self.bad >= self.patience:
            self.scale *= self.factor
            self.bad = 0

    def state_dict(self) -> dict[str, Any]:
        return {"scale": self.scale, "best": None if math.isinf(self.best) else self.best,
                "bad": self.bad, "loss_sum": float(self.loss_sum), "loss_count": self.loss_count,
                "history": list(self.history)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        expected = {"scale", "best", "bad", "loss_sum", "loss_count", "history"}
        if set(state) != expected:
            raise ValueError(f"plateau state must have keys {sorted(expected)}, "
                             f"got {sorted(state)}")
        self.scale = float(state["scale"])
        self.best = math.inf if state["best"] is None else float(state["best"])
        self.bad = int(state["bad"])
        self.loss_sum = float(state["loss_sum"])
        self.loss_count = int(state["loss_count"])
        self.history = [float(v) for v in state["history"]]


def build_schedule(config: ScheduleConfig, optim: OptimConfig) -> Schedule:
    """The schedule of ``config`` starting from ``optim.lr``."""
    if config.min_lr > optim.lr and config.name != "constant":
        raise ConfigError(f"schedule.min_lr ({config.min_lr:g}) exceeds optim.lr "
                          f"({optim.lr:g})")
    if config.name == "cosine-restarts":
        return CosineRestarts(optim.lr, config.period, config.min_lr, config.period_mult,
                              config.warmup_steps)
    if config.name == "plateau":
        return PlateauHalving(optim.lr, config.plateau_window, config.plateau_patience,
                              config.plateau_factor, config.min_lr, config.warmup_steps)
    return ConstantLR(optim.lr, config.warmup_steps)
