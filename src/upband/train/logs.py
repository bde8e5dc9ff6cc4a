"""What a run reports: ``metrics.csv``, TensorBoard events, the progress bar and messages.

``metrics.csv`` has one row per log interval and per validation; its columns are
:data:`CSV_BASE`, then ``train_<term>`` for every term the task logs, then the task's
validation metrics. TensorBoard gets the same values: ``seen_*`` / ``unseen_*`` as
``seen/*`` / ``unseen/*``, everything else as ``train/*``. Only rank 0 writes.
"""

from __future__ import annotations

import csv
import io
import math
import sys
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from upband.common.clock import format_clock
from upband.common.progress import NullBar, step_bar
from upband.fsutil import atomic_write_bytes

__all__ = ["CSV_BASE", "MetricsLog", "Reporter", "format_eta"]

#: First columns of ``metrics.csv``; then ``train_<term>`` per logged term, then the task's
#: validation metrics (:data:`upband.train.config.VALIDATION_METRICS` for regression).
CSV_BASE = ("step", "time_s", "lr", "train_loss")


def _tensorboard_writer(events: Path, purge_step: int | None) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter  # optional: the [train] extra
    except ImportError:
        warnings.warn("tensorboard is not installed: no TensorBoard events are written "
                      "(pip install 'upband[train]')", RuntimeWarning, stacklevel=4)
        return None
    return SummaryWriter(str(events), purge_step=purge_step)


class MetricsLog:
    """``metrics.csv`` (append, one row per event) and TensorBoard, rank 0 only.

    ``resume_step``: the step a resumed run continues from -- rows logged after it (by a run
    killed after its last checkpoint) are dropped and TensorBoard events after it purged;
    ``None`` for a fresh run, which starts a new file.
    """

    def __init__(self, run_dir: Path, columns: Sequence[str], *, enabled: bool,
                 tensorboard: bool, resume_step: int | None) -> None:
        self.enabled = enabled
        self.columns = list(columns)
        self.path = run_dir / "metrics.csv"
        self.writer: Any = None
        if not enabled:
            return
        existed = self.path.exists()
        if resume_step is not None and existed:
            self._truncate(resume_step)
        else:  # a fresh run (also --resume in a folder killed before its first checkpoint)
            atomic_write_bytes(self.path, (",".join(self.columns) + "\r\n").encode())
        if tensorboard:
            events = run_dir / "tensorboard"
            purge = (0 if events.exists() else None) if resume_step is None \
                else resume_step + 1
            self.writer = _tensorboard_writer(events, purge)

    def _truncate(self, step: int) -> None:
        """Drop rows logged after ``step`` and bring the file to this run's columns."""
        with self.path.open(newline="") as fh:
            rows = list(csv.DictReader(fh))
        kept = [r for r in rows if r.get("step") and int(float(r["step"])) <= step]
        sink = io.StringIO()
        writer = csv.DictWriter(sink, self.columns, extrasaction="ignore", lineterminator="\r\n")
        writer.writeheader()
        for row in kept:
            writer.writerow({k: row.get(k) or "" for k in self.columns})
        atomic_write_bytes(self.path, sink.getvalue().encode())

    def log(self, step: int, values: Mapping[str, float]) -> None:
        """Append one row (columns missing from ``values`` stay empty) and its events."""
        if not self.enabled:
            return
        row = {"step": step, **values}
        with self.path.open("a", newline="") as fh:
            csv.writer(fh).writerow([_fmt(row.get(c)) for c in self.columns])
        if self.writer is not None:
            for key, value in values.items():
                if key in ("time_s",):
                    continue
                tag = key.replace("_", "/", 1) if key.startswith(("seen_", "unseen_")) \
                    else f"train/{key.removeprefix('train_')}"
                self.writer.add_scalar(tag, value, step)
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.7g}"
    return str(value)


def format_eta(seconds: float) -> str:
    """A remaining time as ``m:ss`` / ``h:mm:ss``, ``?`` when unknown."""
    return format_clock(seconds, decimals=0) if math.isfinite(seconds) else "?"


class Reporter:
    """Progress bar (rank 0, terminal only) and one-line messages on stderr."""

    def __init__(self, *, enabled: bool, bar: bool, total: int, initial: int) -> None:
        self.enabled = enabled
        self.bar: Any = step_bar(total, initial, "train", enabled=enabled and bar)

    def update(self, n: int = 1) -> None:
        self.bar.update(n)

    def postfix(self, **values: str) -> None:
        self.bar.set_postfix_str(", ".join(f"{k}={v}" for k, v in values.items()))

    def write(self, message: str) -> None:
        if not self.enabled:
            return
        if self.interactive:
            self.bar.write(message, file=sys.stderr)
        else:
            print(message, file=sys.stderr, flush=True)

    @property
    def interactive(self) -> bool:
        """Whether a bar is shown (then per-interval lines are left out)."""
        return not isinstance(self.bar, NullBar)

    def close(self) -> None:
        self.bar.close()
