"""Run folders across invocations: refusing to overwrite a run, checking that a resumed run is
the same run, and the training state a checkpoint carries besides the tensors.

**Exact resume.** A run resumed from the checkpoint of step ``k`` ends with the same weights,
bit for bit, as an uninterrupted run on the same CPU with the same number of torch threads
(float reductions depend on the thread count; GPUs add non-deterministic kernels unless
``runtime.deterministic``): the checkpoint holds every named module and optimiser of the task,
the task's JSON state (schedules), the RNG states, the partial log interval and the best
validation so far, and the data order and per-step seeds are functions of the step.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from upband.common.version import __version__
from upband.fsutil import atomic_write_json
from upband.train.checkpoint import (
    CheckpointError,
    find_latest,
    load_checkpoint,
    read_state,
    remove_stale,
    save_checkpoint,
)
from upband.train.config import Config, config_diff, config_from_dict, config_to_dict
from upband.train.tasks.base import Task

__all__ = ["RESUMABLE_CHANGES", "check_resume", "load_run_config", "prepare_run_dir",
           "restore_run", "save_run"]

PathLike = str | os.PathLike[str]

#: Config keys that may differ when a run is resumed: they change when or how the run
#: executes, never what it learns (``model.init`` only seeds a fresh run's weights), except
#: ``data.corpus``: a corpus moved elsewhere, or a share of it carried to a GPU machine for a
#: slot (scripts/gpu_slot.py).
RESUMABLE_CHANGES = ("description", "model.init", "train.max_steps", "train.max_minutes",
                     "train.max_cpu_minutes", "data.corpus",
                     "train.log_every", "data.workers", "checkpoint.every",
                     "checkpoint.keep_last", "validation.every", "validation.at_start",
                     "validation.visqol",
                     "validation.chunk_seconds",
                     "runtime.")
#: Top-level keys of ``state.json`` that the loop and the checkpoint own (a task's JSON state
#: takes the others).
RESERVED_KEYS = frozenset({
    "format", "format_version", "step", "rng", "modules", "optimizers", "task", "config",
    "best", "elapsed_seconds", "cpu_seconds", "world_size", "log_sum", "log_count",
    "upband_version"})
#: The task of checkpoints written before tasks were recorded (state format 1).
DEFAULT_TASK = "regression"


def load_run_config(run_dir: PathLike) -> Config:
    """The resolved config saved in ``RUN_DIR/config.json``."""
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise CheckpointError(f"{run_dir} holds no training run (no config.json)")
    return config_from_dict(json.loads(path.read_text()))


def check_resume(config: Config, saved: Config, folder: Path,
                 allowed: Sequence[str] = RESUMABLE_CHANGES) -> None:
    """Refuse to resume ``folder`` (a checkpoint of ``saved``) with a ``config`` that differs
    in another key than ``allowed`` (a key, or a prefix ending in a dot)."""
    changed = [k for k in config_diff(saved, config)
               if not any(k == p or (p.endswith(".") and k.startswith(p)) for p in allowed)]
    if changed:
        raise CheckpointError(
            f"cannot resume from {folder}: the config differs from the run's in "
            f"{', '.join(changed)} (only {', '.join(allowed)}* may change); resume "
            "with the run's config.json or start a new run folder")


def prepare_run_dir(config: Config, run_dir: Path, *, resume: bool, main: bool) -> Path | None:
    """Check ``run_dir`` for this invocation and return the checkpoint to resume from (or
    ``None``: a fresh run). Rank 0 (``main``) creates the folder, removes the leftovers of a
    killed checkpoint write and writes ``config.json``."""
    latest = find_latest(run_dir)
    if not resume and (latest is not None or (run_dir / "metrics.csv").exists()):
        raise CheckpointError(
            f"{run_dir} already holds a training run; pass --resume to continue it "
            "or choose another run folder")
    if latest is not None:
        saved = read_state(latest)
        check_resume(config, config_from_dict(saved["config"]), latest)
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        remove_stale(run_dir)
        atomic_write_json(run_dir / "config.json", config_to_dict(config))
    return latest


def save_run(run_dir: Path, step: int, task: Task, config: Config,
             loop_state: dict[str, Any]) -> Path:
    """Write the checkpoint of ``step``: every module and optimiser of ``task``, its JSON state
    and ``loop_state`` (best, elapsed time, world size, partial log interval)."""
    own = task.state_dict()
    clash = sorted(RESERVED_KEYS & set(own))
    if clash:
        raise ValueError(f"task state keys {clash} are reserved by the checkpoint")
    as_dict = config_to_dict(config)
    state = {"config": as_dict, "task": task.name, **own, **loop_state,
             "upband_version": __version__}
    return save_checkpoint(run_dir, step, modules=task.modules, optimizers=task.optimizers,
                           state=state, sample_rate=config.data.sample_rate,
                           keep_last=config.checkpoint.keep_last,
                           metadata={"config": as_dict, "best": loop_state.get("best")})


def restore_run(folder: Path, task: Task) -> dict[str, Any]:
    """Load the checkpoint ``folder`` into ``task`` (strictly; RNG states too) and return its
    ``state.json``."""
    saved_task = read_state(folder).get("task", DEFAULT_TASK)
    if saved_task != task.name:
        raise CheckpointError(f"{folder}: the checkpoint was trained by the {saved_task!r} "
                              f"task, the run uses {task.name!r}")
    state = load_checkpoint(folder, modules=task.modules, optimizers=task.optimizers)
    task.load_state_dict(state)
    return state
