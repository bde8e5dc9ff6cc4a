"""Training: recipes, tasks, the loop and what it shares between tasks, losses, curves.

* :mod:`upband.train.config` -- the resolved recipe (TOML ``configs/`` with
  ``section.key=value`` overrides);
* :mod:`upband.train.tasks` -- what one step computes for which networks and optimisers:
  :class:`~upband.train.tasks.base.Task` (the interface), the regression task;
* :mod:`upband.train.loop` -- :func:`train`: step-based, exactly resumable, DDP under torchrun;
* what every task reuses: :mod:`~upband.train.data` (data order), :mod:`~upband.train.resume`
  and :mod:`~upband.train.checkpoint` (atomic safetensors + JSON checkpoints of every named
  module and optimiser), :mod:`~upband.train.distributed` (DDP), :mod:`~upband.train.ema`,
  :mod:`~upband.train.validation` (Sulun & Davies' protocol, best model),
  :mod:`~upband.train.logs` (``metrics.csv``, TensorBoard, progress),
  :mod:`~upband.train.stopping` (signals, time budget), :mod:`~upband.train.runtime`;
* :mod:`upband.train.losses` -- MSE, per-patch RMSE, multi-resolution STFT and wave losses;
* :mod:`upband.train.schedules` -- cosine warm restarts, plateau halving;
* :mod:`upband.train.plot` -- :func:`plot_run`: Sulun & Davies Fig. 3 from ``metrics.csv``.

The command line (``upband train CONFIG [key=value ...]``, ``upband plot RUN_DIR``) calls
:func:`run_training`, :func:`summarize` and :func:`plot_run`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from upband.train.checkpoint import CheckpointError, find_latest, list_checkpoints
from upband.train.config import Config, ConfigError, load_config, parse_override
from upband.train.loop import TrainResult, load_run_config, train
from upband.train.plot import plot_run

__all__ = [
    "CheckpointError",
    "Config",
    "ConfigError",
    "TrainResult",
    "default_run_dir",
    "find_latest",
    "list_checkpoints",
    "load_config",
    "plot_run",
    "resolve_config",
    "run_training",
    "summarize",
    "train",
]

PathLike = str | os.PathLike[str]

#: Where runs go when no run folder is given: ``runs/<recipe name>``.
RUNS_ROOT = Path("runs")


def default_run_dir(config_path: PathLike) -> Path:
    """``runs/<recipe file stem>`` (or the folder itself when ``config_path`` is a run)."""
    path = Path(config_path)
    if path.is_dir():
        return path
    return RUNS_ROOT / path.stem


def resolve_config(config_path: PathLike, overrides: Sequence[str] = ()) -> Config:
    """The config of ``config_path`` -- a TOML recipe, or a run folder (its ``config.json``) --
    with ``key=value`` overrides applied."""
    path = Path(config_path)
    if path.is_dir():
        base = load_run_config(path)
        return base.updated(dict(parse_override(o) for o in overrides)) if overrides else base
    return load_config(path, overrides)


def run_training(config_path: PathLike, overrides: Sequence[str] = (), *,
                 run_dir: PathLike | None = None, resume: bool = False,
                 quiet: bool = False) -> TrainResult:
    """``upband train CONFIG [key=value ...] [--resume] [--run-dir DIR] [-q]``.

    ``CONFIG`` is a recipe (``configs/arunet.toml``) or an existing run folder (continue it:
    ``upband train runs/arunet --resume train.max_minutes=9``). The run folder defaults to
    ``runs/<recipe name>``. Under ``torchrun`` every rank runs this same call.
    """
    config = resolve_config(config_path, overrides)
    folder = Path(run_dir) if run_dir is not None else default_run_dir(config_path)
    return train(config, folder, resume=resume, quiet=quiet)


def summarize(result: TrainResult) -> str:
    """One line about a finished :func:`train` call, for the command line."""
    parts = [f"{result.run_dir}: step {result.step}"]
    if result.start_step:
        parts[0] += f" (resumed at {result.start_step})"
    parts.append({"max_steps": "done", "time_budget": "time budget reached",
                  "cpu_budget": "CPU budget reached",
                  "signal": "interrupted"}.get(result.stop_reason, result.stop_reason))
    if result.train_loss is not None:
        parts.append(f"train loss {result.train_loss:.4g}")
    if result.validations:
        last = result.validations[-1]
        for group in ("seen", "unseen"):
            if f"{group}_output_snr" in last:
                parts.append(f"{group} SNR {last[f'{group}_input_snr']:.2f} -> "
                             f"{last[f'{group}_output_snr']:.2f} dB")
    if result.best is not None:
        parts.append(f"best {result.best['metric']} {result.best['value']:.3f} at step "
                     f"{result.best['step']}")
    parts.append(f"{result.seconds:.0f} s")
    return "; ".join(parts)
