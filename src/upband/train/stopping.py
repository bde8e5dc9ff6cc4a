"""When a run stops before ``train.max_steps``: a signal, the wall-clock or the CPU budget.

SIGTERM and the first Ctrl-C request a clean stop (with a checkpoint, so ``--resume``
continues from there); a second Ctrl-C aborts. ``train.max_minutes`` stops the run when the
next iteration plus a checkpoint (plus a validation, when one is due) would exceed it;
``train.max_cpu_minutes`` stops it once the run's CPU time (resumes included) reaches it. In a
multi-process run the ranks agree on stopping every :data:`STOP_CHECK_EVERY` iterations
(:func:`~upband.train.distributed.any_rank`), so that they all stop at the same step.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

import numpy as np

from upband.train.config import Config
from upband.train.distributed import DistInfo, any_rank

__all__ = ["STOP_CHECK_EVERY", "StopRule", "StopSignals"]

#: In a multi-process run the ranks agree on stopping every this many iterations.
STOP_CHECK_EVERY = 10
#: Iteration times kept for the budget estimate (their median).
_TIMES_KEPT = 50


class StopSignals:
    """SIGTERM and the first SIGINT request a clean stop; a second SIGINT aborts."""

    def __init__(self) -> None:
        self.requested = False
        self._old: dict[int, Any] = {}

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._old[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


class StopRule:
    """Decides after every iteration whether to stop: ``"signal"``, ``"time_budget"``,
    ``"cpu_budget"`` or ``None``. ``save_seconds`` / ``validation_seconds`` are the last
    checkpoint's and validation's durations, which the wall-clock budget keeps in reserve."""

    def __init__(self, config: Config, info: DistInfo) -> None:
        self.config, self.info = config, info
        self.step_times: list[float] = []
        self.save_seconds = 0.0
        self.validation_seconds = 0.0

    def record(self, seconds: float) -> None:
        """One iteration took ``seconds``."""
        self.step_times.append(seconds)
        del self.step_times[:-_TIMES_KEPT]

    def _local(self, requested: bool, step: int, elapsed: float, cpu: float) -> str | None:
        c = self.config
        if requested:
            return "signal"
        if c.train.max_cpu_minutes > 0 and cpu >= 60.0 * c.train.max_cpu_minutes:
            return "cpu_budget"
        if c.train.max_minutes > 0:
            typical = float(np.median(self.step_times)) if self.step_times else 0.0
            next_val = c.validation.every and (step + 1) % c.validation.every == 0
            margin = 2 * typical + self.save_seconds + (self.validation_seconds if next_val
                                                        else 0.0)
            if elapsed + margin >= 60.0 * c.train.max_minutes:
                return "time_budget"
        return None

    def check(self, requested: bool, step: int, elapsed: float, cpu: float = 0.0) -> str | None:
        """Whether to stop after ``step`` iterations, ``elapsed`` seconds into this invocation
        and ``cpu`` CPU seconds into the run, with a stop ``requested`` by a signal (on this
        rank)."""
        if step >= self.config.train.max_steps:
            return None
        reason = self._local(requested, step, elapsed, cpu)
        if not self.info.distributed:
            return reason
        if step % STOP_CHECK_EVERY:
            return None
        if any_rank(reason == "signal", self.info):
            return "signal"
        for budget in ("time_budget", "cpu_budget"):
            if any_rank(reason == budget, self.info):
                return budget
        return None
