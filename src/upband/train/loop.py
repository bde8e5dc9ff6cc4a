"""The training loop: step-based, exactly resumable, rank-aware, for any training task.

The loop drives a :class:`~upband.train.tasks.base.Task` (default: the regression task, one
network and one loss; a GAN task has a generator, a critic and two optimisers) and owns what
every task shares:

* **data order** (:mod:`upband.train.data`): iteration ``s`` of rank ``r`` trains on a batch
  that is a pure function of ``(s, r)``; torch is re-seeded at every iteration from
  ``(seed, rank, step)`` (:func:`~upband.train.runtime.step_seed`);
* **one iteration**: the schedules set the rates, the task's ``step`` trains, its values are
  averaged over the ranks and go to the task's schedules and to the log;
* **resume** (:mod:`upband.train.resume`, :mod:`upband.train.checkpoint`): a run resumed from
  the checkpoint of step ``k`` ends bit for bit like an uninterrupted one;
* **DDP** (:mod:`upband.train.distributed`): under ``torchrun`` every rank runs this loop;
* **logging** (:mod:`upband.train.logs`): ``metrics.csv``, TensorBoard, the progress bar;
* **validation** (:mod:`upband.train.validation`): rank 0, every ``validation.every``
  iterations and before the first, with ``best.safetensors``;
* **stopping** (:mod:`upband.train.stopping`): at ``train.max_steps``, on the time budget
  ``train.max_minutes``, or on SIGTERM / the first Ctrl-C -- always with a checkpoint, so the
  next ``--resume`` continues from there.

**Outputs** (rank 0 only): ``config.json``, ``metrics.csv``, ``tensorboard/``, checkpoints and
``best.safetensors`` in the run folder.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from upband.errors import UpbandError
from upband.train.config import Config, ConfigError
from upband.train.data import StepBatchSampler, TrainData, build_data
from upband.train.distributed import (
    DistInfo,
    all_reduce_mean,
    barrier,
    init_distributed,
    shutdown_distributed,
)
from upband.train.logs import CSV_BASE, MetricsLog, Reporter, format_eta
from upband.train.resume import (
    RESUMABLE_CHANGES,
    load_run_config,
    prepare_run_dir,
    restore_run,
    save_run,
)
from upband.train.runtime import prepare_runtime, step_seed, use_amp, use_compile, workers
from upband.train.stopping import StopRule, StopSignals
from upband.train.tasks import TASKS, Task, TaskContext, TaskFactory
from upband.train.validation import Validator

__all__ = ["CSV_BASE", "RESUMABLE_CHANGES", "DivergenceError", "StepInfo", "TrainResult",
           "load_run_config", "train"]

PathLike = str | os.PathLike[str]


class DivergenceError(UpbandError, FloatingPointError):
    """The training loss became NaN or infinite."""


@dataclass
class StepInfo:
    """Passed to ``train(on_step=...)`` after every iteration (``step`` = iterations done)."""

    step: int
    lr: float
    loss: Tensor  # the iteration's loss averaged over ranks (0-dim, on the device)
    indices: list[int]  # the dataset indices this rank trained on
    model: nn.Module  # the task's (unwrapped) network being trained: a WaveModel for regression
    rank: int = 0
    task: Task | None = None  # the task itself (every network and optimiser)


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train` did in this invocation."""

    run_dir: Path
    start_step: int  # iterations done before this invocation (0 for a fresh run)
    step: int  # iterations done at the end
    stop_reason: str  # "max_steps", "time_budget", "cpu_budget" or "signal"
    seconds: float  # wall-clock time of this invocation
    train_loss: float | None  # mean training loss of the last log interval
    validations: list[dict[str, float]] = field(default_factory=list)  # this invocation's
    best: dict[str, Any] | None = None  # {"metric", "mode", "value", "step"}
    checkpoint: Path | None = None  # the last checkpoint written (rank 0)
    rank: int = 0  # this process's rank (print summaries on rank 0 only)


def train(config: Config, run_dir: PathLike, *, resume: bool = False, quiet: bool = False,
          data: TrainData | None = None, on_step: Callable[[StepInfo], None] | None = None,
          task: TaskFactory | None = None) -> TrainResult:
    """Train ``config`` into ``run_dir``; see the module docstring.

    Args:
        config: the resolved recipe (:func:`upband.train.config.load_config`).
        run_dir: the run folder (created). A fresh run refuses a folder that holds one.
        resume: continue from the latest complete checkpoint of ``run_dir`` (a fresh start if
            there is none, so the same command can be repeated run after run). Only the keys of
            :data:`RESUMABLE_CHANGES` may differ from the run's saved config.
        quiet: no progress bar and no messages.
        data: training / validation data; built from ``config.data`` when ``None``.
        on_step: called after every iteration with a :class:`StepInfo` (tests, notebooks).
        task: builds the training task from a :class:`~upband.train.tasks.base.TaskContext`
            (a :class:`~upband.train.tasks.base.Task` subclass); default: the task that
            ``config.train.task`` names in :data:`~upband.train.tasks.TASKS`.

    Launched by ``torchrun``, every rank calls this with the same arguments; rank 0 alone
    writes into ``run_dir``. Returns a :class:`TrainResult` (on every rank).
    """
    if task is None:
        if config.train.task not in TASKS:
            raise ConfigError(f"train.task {config.train.task!r} is not a training task; "
                              f"choose one of {', '.join(TASKS)}")
        task = TASKS[config.train.task]
    threads = torch.get_num_threads()
    info = init_distributed(config.runtime.device)
    try:
        runner = _Run(config, Path(run_dir), info, quiet=quiet, on_step=on_step, task=task)
        return runner.run(resume=resume, data=data)
    finally:
        shutdown_distributed(info)
        torch.set_num_threads(threads)  # runtime.threads applies to this run only


class _LogInterval:
    """Sums of the step values (``loss`` then the task's terms) since the last log row."""

    def __init__(self, size: int, device: torch.device, state: dict[str, Any]) -> None:
        self.sum = torch.zeros(size, dtype=torch.float64, device=device)
        if state.get("log_sum") is not None:
            self.sum += torch.tensor(state["log_sum"], dtype=torch.float64, device=device)
        self.count = int(state.get("log_count", 0))

    def add(self, values: Tensor) -> None:
        self.sum += values
        self.count += 1

    def take(self) -> list[float]:
        """The means since the last call, then start a new interval."""
        means = (self.sum / max(self.count, 1)).tolist()
        self.sum.zero_()
        self.count = 0
        return means

    def state(self) -> dict[str, Any]:
        return {"log_sum": [float(v) for v in self.sum], "log_count": self.count}


class _Run:
    """One invocation of :func:`train` on one rank."""

    def __init__(self, config: Config, run_dir: Path, info: DistInfo, *, quiet: bool,
                 on_step: Callable[[StepInfo], None] | None, task: TaskFactory) -> None:
        self.config, self.run_dir, self.info = config, run_dir, info
        self.quiet, self.on_step, self.task_factory = quiet, on_step, task
        self.main = info.is_main
        self.t0 = time.monotonic()
        self.cpu0 = time.process_time()

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def cpu_seconds(self) -> float:
        """CPU time of this process (every thread) over the whole run, resumes included: the
        compute a run has had, which wall time overstates on a shared machine."""
        return self.cpu_before + time.process_time() - self.cpu0

    # ---------------------------------------------------------------- setup

    def _build(self, resuming: bool) -> Task:
        c, device = self.config, self.info.device
        prepare_runtime(c, device)  # the same seeds, so the same initial weights, on every rank
        context = TaskContext(config=c, info=self.info, amp=use_amp(c, device),
                              compile=use_compile(c, device), resuming=resuming)
        return self.task_factory(context)

    def _setup(self, resume: bool, data: TrainData | None) -> Iterator[dict[str, Tensor]]:
        """Build the task, restore the checkpoint, open the log; the batches to train on."""
        c, info = self.config, self.info
        latest = prepare_run_dir(c, self.run_dir, resume=resume, main=self.main)
        barrier(info)
        self.task = task = self._build(resuming=latest is not None)
        state = restore_run(latest, task) if latest is not None else {}
        self.start = self.step = int(state.get("step", 0))
        self.last_saved = self.start if latest is not None else -1
        self.elapsed_before = float(state.get("elapsed_seconds", 0.0))
        self.cpu_before = float(state.get("cpu_seconds", 0.0))
        if data is None:
            data = build_data(c, world_size=info.world_size, validation=self.main)
        self.names = ("loss", *task.log_names)
        self.interval = _LogInterval(len(self.names), info.device, state)
        columns = [*CSV_BASE, *(f"train_{n}" for n in task.log_names), *task.validation_metrics]
        self.log = MetricsLog(self.run_dir, columns, enabled=self.main,
                              tensorboard=c.runtime.tensorboard,
                              resume_step=self.start if latest is not None else None)
        self.report = Reporter(enabled=self.main and not self.quiet, bar=c.runtime.progress,
                               total=c.train.max_steps, initial=self.start)
        self.validator = Validator(task, data.validation if self.main else None, config=c,
                                   run_dir=self.run_dir, info=info, log=self.log,
                                   report=self.report, best=state.get("best"))
        self.stop = StopRule(c, info)
        if latest is not None:
            self.report.write(f"resuming {self.run_dir} from step {self.start}")
            if int(state.get("world_size", info.world_size)) != info.world_size:
                self.report.write(f"the run was trained on {state['world_size']} processes and "
                                  f"now runs on {info.world_size}: the data order changes from "
                                  "here on")
        loader = DataLoader(
            data.dataset,
            batch_sampler=StepBatchSampler(self.start, c.train.max_steps, c.train.batch_size,
                                           info.rank, info.world_size),
            num_workers=workers(c, info), collate_fn=task.collate,
            pin_memory=info.device.type == "cuda",
            generator=torch.Generator().manual_seed(c.train.seed),  # keeps the global RNG
            persistent_workers=False)
        return iter(loader)

    # ---------------------------------------------------------------- run

    def run(self, *, resume: bool, data: TrainData | None) -> TrainResult:
        c = self.config
        batches = self._setup(resume, data)
        self.checkpoint: Path | None = None
        self.last_loss: float | None = None
        self.t_interval = time.monotonic()
        stop_reason = "max_steps"
        try:
            with StopSignals() as signals:
                if self.start == 0 and c.validation.at_start and self.start < c.train.max_steps:
                    self._validate()
                self.task.train()
                while self.step < c.train.max_steps:
                    t_step = time.monotonic()
                    self._iteration(next(batches))
                    self.stop.record(time.monotonic() - t_step)
                    self._after_step()
                    stop = self.stop.check(signals.requested, self.step, self.elapsed(),
                                           self.cpu_seconds())
                    if stop is not None:
                        stop_reason = stop
                        break  # saved below, so the checkpoint counts the CPU time it stopped at
                    if self.step % c.checkpoint.every == 0 and self.step < c.train.max_steps:
                        self._save()
            if self.step != self.last_saved:
                self._save()
        finally:
            self.log.close()
            self.report.close()
        if stop_reason != "max_steps":
            self.report.write(f"stopped at step {self.step} ({stop_reason}); continue with "
                              "--resume")
        return TrainResult(run_dir=self.run_dir, start_step=self.start, step=self.step,
                           stop_reason=stop_reason, seconds=self.elapsed(),
                           train_loss=self.last_loss, validations=self.validator.history,
                           best=self.validator.best,
                           checkpoint=self.checkpoint if self.main else None,
                           rank=self.info.rank)

    def _iteration(self, batch: dict[str, Tensor]) -> None:
        """Iteration ``self.step``: rates, seed, the task's step, values averaged over ranks."""
        c, info, task, step = self.config, self.info, self.task, self.step
        task.set_rates(step)
        torch.manual_seed(step_seed(c.train.seed, info.rank, step))
        logs = task.step(batch, step)
        vec = torch.stack([logs[n].detach() for n in self.names]).double()
        vec = all_reduce_mean(vec, info)
        task.observe(dict(zip(self.names, vec, strict=True)))
        self.step += 1
        self.interval.add(vec)
        if self.on_step is not None:
            self.on_step(StepInfo(
                step=self.step, lr=task.lr, loss=vec[0].detach(), model=task.model,
                rank=info.rank, task=task,
                indices=StepBatchSampler.indices(step, c.train.batch_size, info.rank,
                                                 info.world_size)))
        self.report.update()

    def _after_step(self) -> None:
        """Log and validate when due after iteration ``self.step`` (the loop checkpoints)."""
        c, step = self.config, self.step
        if step % c.train.log_every == 0:
            self._log_interval()
        if self.validator.due(step):
            self._validate()
            self.task.train()

    def _log_interval(self) -> None:
        c, step = self.config, self.step
        means = self.interval.take()
        if not all(math.isfinite(v) for v in means):
            raise DivergenceError(f"training diverged: the loss is {means[0]} at step {step} "
                                  "(lower optim.lr or set optim.grad_clip)")
        self.last_loss = means[0]
        lr = self.task.lr
        row = {"time_s": self.elapsed_before + self.elapsed(), "lr": lr, "train_loss": means[0],
               **{f"train_{n}": v for n, v in zip(self.names[1:], means[1:], strict=True)}}
        self.log.log(step, row)
        rate = c.train.log_every / max(time.monotonic() - self.t_interval, 1e-9)
        self.t_interval = time.monotonic()
        self.report.postfix(loss=f"{means[0]:.4g}", lr=f"{lr:.2e}")
        if not self.report.interactive:
            eta = (c.train.max_steps - step) / rate
            self.report.write(f"step {step}/{c.train.max_steps}  loss {means[0]:.4g}"
                              f"  lr {lr:.2e}  {rate:.2f} it/s  ETA {format_eta(eta)}")

    def _validate(self) -> None:
        self.validator(self.step, self.elapsed_before + self.elapsed())
        self.stop.validation_seconds = self.validator.seconds

    def _save(self) -> None:
        """Checkpoint ``self.step`` (rank 0 writes, every rank waits)."""
        t = time.monotonic()
        if self.main:
            loop_state = {"best": self.validator.best,
                          "elapsed_seconds": self.elapsed_before + self.elapsed(),
                          "cpu_seconds": self.cpu_seconds(),
                          "world_size": self.info.world_size, **self.interval.state()}
            self.checkpoint = save_run(self.run_dir, self.step, self.task, self.config,
                                       loop_state)
        barrier(self.info)
        self.stop.save_seconds = time.monotonic() - t
        self.last_saved = self.step
