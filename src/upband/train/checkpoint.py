"""Training checkpoints: safetensors + JSON, written atomically, never pickled.

A run folder holds::

    RUN_DIR/
      config.json                  the resolved config of the run
      metrics.csv                  training and validation log (see upband.train.logs)
      best.safetensors             the model with the best validation metric (load_model-able)
      checkpoints/
        step-00002500/
          <module>.safetensors     one per named network of the task; an upband model
                                   (:class:`~upband.models.base.WaveModel`) is written with its
                                   header (config, step, metrics) and loads with load_model
          <optimizer>.safetensors  every tensor of a named optimiser ("state.<param>.<name>")
          <optimizer>.json         the rest of it (param groups, non-tensor entries)
          state.json               step, names of the modules and optimisers, config, best
                                   metric, the task's own state, RNG states, ...
        step-00005000/ ...

The regression task names its networks ``model`` and ``ema`` (when ``train.ema_decay > 0``) and
its optimiser ``optimizer``; a GAN task names its generator, critic and their optimisers.
Loading is strict: the checkpoint must hold exactly the named modules and optimisers of the
run, each with exactly the run's tensors.

**Format versions** (``state.json`` ``format_version``): 1 (upband before the pluggable tasks)
stored no names -- it is read as ``model`` (+ ``ema`` when its ``"ema"`` flag is set) and
``optimizer``, so old single-network run folders still load and resume; 2 lists them under
``"modules"``, ``"optimizers"`` and ``"task"``.

A checkpoint is written into a hidden temporary folder (``checkpoints/.tmp-...``) whose files
are flushed to disk, then renamed to ``step-NNNNNNNN`` in one ``os.replace``: a crash (even
SIGKILL) at any moment leaves either the complete new checkpoint or none, and
:func:`find_latest` only ever sees complete ones. Only the ``keep_last`` most recent step
folders are kept; the best model lives on in ``best.safetensors``.

Loading never executes code: tensors come from ``safetensors``, everything else is JSON.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save as safetensors_save
from torch import nn

from upband.common.tensorfile import TensorFileError, load_strict, read_tensors
from upband.errors import UpbandError
from upband.fsutil import atomic_write_bytes, atomic_write_json
from upband.models.base import WaveModel
from upband.states import load_model, save_model
from upband.train.serialize import (
    get_rng_state,
    optimizer_blobs,
    optimizer_state,
    set_rng_state,
)

__all__ = [
    "STATE_FORMAT",
    "STATE_VERSION",
    "CheckpointError",
    "find_latest",
    "get_rng_state",
    "list_checkpoints",
    "load_checkpoint",
    "prune_checkpoints",
    "read_state",
    "remove_stale",
    "save_best",
    "save_checkpoint",
    "set_rng_state",
]

PathLike = str | os.PathLike[str]

STATE_FORMAT = "upband-train-state"
STATE_VERSION = 2
CHECKPOINTS = "checkpoints"
_STEP_DIR = re.compile(r"^step-(\d{8,})$")
#: What a module or optimiser may be called: it names its files in the checkpoint folder.
_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")


class CheckpointError(UpbandError):
    """A training checkpoint or run folder is missing, incomplete or does not fit the run."""


# --------------------------------------------------------------------------------------------
# atomic files
# --------------------------------------------------------------------------------------------


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every filesystem lets a folder be fsynced
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{path} is missing: incomplete checkpoint") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: unreadable ({exc})") from exc


# --------------------------------------------------------------------------------------------
# named modules and optimisers
# --------------------------------------------------------------------------------------------


Modules = Mapping[str, nn.Module]
Optimizers = Mapping[str, torch.optim.Optimizer]


def _named(modules: Modules | None, optimizers: Optimizers | None, model: nn.Module | None,
           optimizer: torch.optim.Optimizer | None,
           ema: nn.Module | None) -> tuple[dict[str, nn.Module], dict[str, Any]]:
    """``modules`` / ``optimizers``, or the one-network shorthand (``model``, ``ema``,
    ``optimizer``), with their names checked."""
    if modules is not None or optimizers is not None:
        if model is not None or optimizer is not None or ema is not None:
            raise ValueError("pass modules/optimizers or model/optimizer/ema, not both")
        mods, opts = dict(modules or {}), dict(optimizers or {})
    else:
        mods = {"model": model} if model is not None else {}
        if ema is not None:
            mods["ema"] = ema
        opts = {"optimizer": optimizer} if optimizer is not None else {}
    for name in [*mods, *opts]:
        if not _NAME.match(name) or name == "state":
            raise ValueError(f"invalid checkpoint entry name {name!r}")
    if set(mods) & set(opts):
        raise ValueError(f"a module and an optimiser share a name: {sorted(set(mods) & set(opts))}")
    return mods, opts


def _save_module(path: Path, module: nn.Module, *, sample_rate: int,
                 metadata: dict[str, Any]) -> None:
    if isinstance(module, WaveModel):
        save_model(module, path, sample_rate=sample_rate, metadata=metadata)
        return
    tensors = {k: v.detach().to("cpu").contiguous().clone()
               for k, v in module.state_dict().items()}
    atomic_write_bytes(path, safetensors_save(tensors))


def _load_module(path: Path, module: nn.Module) -> None:
    if isinstance(module, WaveModel):
        stored = load_model(path)
        if stored.name != module.name or stored.config != module.config:
            raise CheckpointError(f"{path.parent}: checkpoint holds {stored.name!r} with other "
                                  "arguments than the run's model")
        module.load_state_dict(stored.state_dict(), strict=True)
        return
    try:
        load_strict(module, path)
    except TensorFileError as exc:
        raise CheckpointError(f"{path}: cannot load ({exc})") from exc


def _save_optimizer(folder: Path, name: str, optimizer: torch.optim.Optimizer) -> None:
    blob, meta = optimizer_blobs(optimizer)
    atomic_write_bytes(folder / f"{name}.safetensors", blob)
    atomic_write_json(folder / f"{name}.json", meta)


def _load_optimizer(folder: Path, name: str, optimizer: torch.optim.Optimizer) -> None:
    meta = _read_json(folder / f"{name}.json")
    if meta.get("class") != type(optimizer).__name__:
        raise CheckpointError(f"{folder}: optimiser state {name!r} is for {meta.get('class')}, "
                              f"the run uses {type(optimizer).__name__}")
    try:
        tensors = read_tensors(folder / f"{name}.safetensors")
    except TensorFileError as exc:
        raise CheckpointError(f"{folder}: unreadable optimiser tensors ({exc})") from exc
    try:
        optimizer.load_state_dict(optimizer_state(meta, tensors))
    except (ValueError, KeyError, RuntimeError) as exc:
        raise CheckpointError(f"{folder}: optimiser state {name!r} does not fit the model "
                              f"({exc})") from exc


def saved_names(state: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """The module and optimiser names a checkpoint's ``state.json`` holds (format 1 stored
    none: ``model``, ``ema`` when flagged, ``optimizer``)."""
    if "modules" in state:
        return list(state["modules"]), list(state.get("optimizers", []))
    return ["model", *(["ema"] if state.get("ema") else [])], ["optimizer"]


# --------------------------------------------------------------------------------------------
# checkpoints
# --------------------------------------------------------------------------------------------


def _step_dir(run_dir: Path, step: int) -> Path:
    return run_dir / CHECKPOINTS / f"step-{step:08d}"


def list_checkpoints(run_dir: PathLike) -> list[Path]:
    """Complete checkpoint folders of ``run_dir``, oldest first."""
    root = Path(run_dir) / CHECKPOINTS
    if not root.is_dir():
        return []
    found = []
    for child in root.iterdir():
        match = _STEP_DIR.match(child.name)
        if match and child.is_dir() and (child / "state.json").is_file():
            found.append((int(match.group(1)), child))
    return [path for _, path in sorted(found)]


def find_latest(run_dir: PathLike) -> Path | None:
    """The most recent complete checkpoint folder of ``run_dir``, or ``None``."""
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def remove_stale(run_dir: PathLike) -> None:
    """Delete temporary folders left by a checkpoint write that was killed."""
    root = Path(run_dir) / CHECKPOINTS
    if root.is_dir():
        for child in root.iterdir():
            if child.name.startswith(".tmp-") or child.name.startswith(".old-"):
                shutil.rmtree(child, ignore_errors=True)


def prune_checkpoints(run_dir: PathLike, keep_last: int) -> list[Path]:
    """Delete all but the ``keep_last`` most recent checkpoints; returns the deleted folders."""
    if keep_last < 1:
        raise ValueError(f"keep_last must be >= 1, got {keep_last}")
    doomed = list_checkpoints(run_dir)[:-keep_last]
    for path in doomed:
        # rename first so that a crash mid-delete never leaves a half checkpoint that looks whole
        trash = path.with_name(f".old-{path.name}")
        os.replace(path, trash)
        shutil.rmtree(trash, ignore_errors=True)
    return doomed


def _write_entries(folder: Path, step: int, mods: dict[str, nn.Module],
                   opts: dict[str, Any], *, sample_rate: int,
                   metadata: dict[str, Any] | None) -> None:
    for name, module in mods.items():
        _save_module(folder / f"{name}.safetensors", module, sample_rate=sample_rate,
                     metadata={"step": step, **(metadata or {})})
    for name, optimizer in opts.items():
        _save_optimizer(folder, name, optimizer)


def _commit(tmp: Path, final: Path) -> None:
    """Move the complete temporary folder ``tmp`` to ``final`` (replacing one of that step)."""
    if final.exists():  # the same step written again (a resumed run that ends there)
        old = final.with_name(f".old-{final.name}")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)


def save_checkpoint(run_dir: PathLike, step: int, *, state: dict[str, Any], sample_rate: int,
                    modules: Modules | None = None, optimizers: Optimizers | None = None,
                    model: nn.Module | None = None,
                    optimizer: torch.optim.Optimizer | None = None,
                    ema: nn.Module | None = None, keep_last: int | None = None,
                    metadata: dict[str, Any] | None = None) -> Path:
    """Write the checkpoint of ``step`` atomically and return its folder.

    Args:
        run_dir: the run folder; the checkpoint goes to ``checkpoints/step-NNNNNNNN``.
        step: iterations done.
        state: JSON-ready training state (config, schedule, best metric, ...); the step, the
            entry names and the RNG states are added here.
        sample_rate: written into the header of every upband model among the modules.
        modules, optimizers: the named networks and optimisers (all are saved); or, for one
            network, ``model`` / ``ema`` / ``optimizer`` (named so).
        keep_last: delete older checkpoints beyond that many afterwards.
        metadata: JSON for the header of every upband model among the modules.
    """
    mods, opts = _named(modules, optimizers, model, optimizer, ema)
    run_dir = Path(run_dir)
    root = run_dir / CHECKPOINTS
    root.mkdir(parents=True, exist_ok=True)
    final = _step_dir(run_dir, step)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-", dir=root))
    try:
        _write_entries(tmp, step, mods, opts, sample_rate=sample_rate, metadata=metadata)
        full = {"format": STATE_FORMAT, "format_version": STATE_VERSION, **state,
                "step": step, "rng": get_rng_state(), "modules": list(mods),
                "optimizers": list(opts)}
        atomic_write_json(tmp / "state.json", full)  # last: marks the folder complete
        _fsync_dir(tmp)
        _commit(tmp, final)
        _fsync_dir(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if keep_last is not None:
        prune_checkpoints(run_dir, keep_last)
    return final


def read_state(folder: PathLike) -> dict[str, Any]:
    """The ``state.json`` of a checkpoint folder, checked."""
    folder = Path(folder)
    state = _read_json(folder / "state.json")
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise CheckpointError(f"{folder}: not an upband training checkpoint")
    if int(state.get("format_version", 0)) > STATE_VERSION:
        raise CheckpointError(f"{folder}: checkpoint format is newer than this upband")
    return state


def load_checkpoint(folder: PathLike, *, modules: Modules | None = None,
                    optimizers: Optimizers | None = None, model: nn.Module | None = None,
                    optimizer: torch.optim.Optimizer | None = None,
                    ema: nn.Module | None = None, restore_rng: bool = True) -> dict[str, Any]:
    """Load a checkpoint folder into the named ``modules`` / ``optimizers`` (or ``model`` /
    ``ema`` / ``optimizer``), in place and strictly, and return its training state.

    The checkpoint must hold exactly these names; RNG states are restored unless
    ``restore_rng=False``.
    """
    folder = Path(folder)
    mods, opts = _named(modules, optimizers, model, optimizer, ema)
    state = read_state(folder)
    saved_mods, saved_opts = saved_names(state)
    if sorted(saved_mods) != sorted(mods) or sorted(saved_opts) != sorted(opts):
        raise CheckpointError(
            f"{folder}: the checkpoint holds networks {saved_mods} and optimisers {saved_opts}, "
            f"the run has {list(mods)} and {list(opts)} (train.ema_decay or the task differ)")
    for name, module in mods.items():
        _load_module(folder / f"{name}.safetensors", module)
    for name, opt in opts.items():
        _load_optimizer(folder, name, opt)
    if restore_rng:
        set_rng_state(state["rng"])
    return state


def save_best(run_dir: PathLike, model: WaveModel, *, sample_rate: int,
              metadata: dict[str, Any]) -> Path:
    """Write ``RUN_DIR/best.safetensors`` (atomically, a :func:`upband.states.load_model` file)."""
    path = Path(run_dir) / "best.safetensors"
    save_model(model, path, sample_rate=sample_rate, metadata=metadata)
    return path
