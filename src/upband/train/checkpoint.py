"""Training checkpoints: safetensors + JSON, written atomically, never pickled.

A run folder holds::

    RUN_DIR/
      config.json                  the resolved config of the run
      metrics.csv                  training and validation log (see upband.train.loop)
      best.safetensors             the model with the best validation metric (load_model-able)
      checkpoints/
        step-00002500/
          model.safetensors        weights + upband header (config, step, metrics): load_model
          ema.safetensors          EMA weights, when train.ema_decay > 0
          optimizer.safetensors    every tensor of the optimiser state ("state.<param>.<name>")
          optimizer.json           the rest of it (param groups, non-tensor entries)
          state.json               step, config, best metric, schedule state, RNG states, ...
        step-00005000/ ...

A checkpoint is written into a hidden temporary folder (``checkpoints/.tmp-...``) whose files
are flushed to disk, then renamed to ``step-NNNNNNNN`` in one ``os.replace``: a crash (even
SIGKILL) at any moment leaves either the complete new checkpoint or none, and
:func:`find_latest` only ever sees complete ones. Only the ``keep_last`` most recent step
folders are kept; the best model lives on in ``best.safetensors``.

Loading never executes code: tensors come from ``safetensors``, everything else is JSON.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import random
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as safetensors_save
from torch import nn

from upband.errors import UpbandError
from upband.fsutil import atomic_write_bytes, atomic_write_json
from upband.models.base import WaveModel
from upband.states import load_model, save_model

__all__ = [
    "STATE_FORMAT",
    "CheckpointError",
    "find_latest",
    "get_rng_state",
    "list_checkpoints",
    "load_checkpoint",
    "prune_checkpoints",
    "read_state",
    "save_best",
    "save_checkpoint",
    "set_rng_state",
]

PathLike = str | os.PathLike[str]

STATE_FORMAT = "upband-train-state"
STATE_VERSION = 1
CHECKPOINTS = "checkpoints"
_STEP_DIR = re.compile(r"^step-(\d{8,})$")


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
# RNG states as JSON
# --------------------------------------------------------------------------------------------


def _b64(t: torch.Tensor) -> str:
    return base64.b64encode(t.cpu().numpy().tobytes()).decode("ascii")


def _from_b64(text: str) -> torch.Tensor:
    return torch.frombuffer(bytearray(base64.b64decode(text)), dtype=torch.uint8).clone()


def get_rng_state() -> dict[str, Any]:
    """Python, NumPy (legacy global), torch CPU and every CUDA device's RNG state as JSON."""
    version, keys, gauss = random.getstate()
    name, np_keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    state: dict[str, Any] = {
        "python": [version, list(keys), gauss],
        "numpy": [name, np.asarray(np_keys).tolist(), int(pos), int(has_gauss), float(cached)],
        "torch": _b64(torch.get_rng_state()),
        "cuda": [],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = [_b64(s) for s in torch.cuda.get_rng_state_all()]
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore :func:`get_rng_state` (CUDA states only if the device count matches)."""
    version, keys, gauss = state["python"]
    random.setstate((int(version), tuple(int(k) for k in keys), gauss))
    name, np_keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(np_keys, dtype=np.uint32), int(pos), int(has_gauss),
                         float(cached)))
    torch.set_rng_state(_from_b64(state["torch"]))
    cuda = state.get("cuda") or []
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([_from_b64(s) for s in cuda])


# --------------------------------------------------------------------------------------------
# optimiser state as safetensors + JSON
# --------------------------------------------------------------------------------------------


def _optimizer_files(optimizer: torch.optim.Optimizer) -> tuple[bytes, dict[str, Any]]:
    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    other: dict[str, dict[str, Any]] = {}
    for pid, entries in sd["state"].items():
        for key, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{pid}.{key}"] = value.detach().to("cpu").contiguous().clone()
            else:
                other.setdefault(str(pid), {})[key] = value
    groups = [{k: list(v) if isinstance(v, tuple) else v for k, v in g.items()}
              for g in sd["param_groups"]]
    meta = {"format": "upband-optimizer", "class": type(optimizer).__name__,
            "param_groups": groups, "state": other}
    return safetensors_save(tensors), meta


def _load_optimizer(optimizer: torch.optim.Optimizer, folder: Path) -> None:
    meta = _read_json(folder / "optimizer.json")
    if meta.get("class") != type(optimizer).__name__:
        raise CheckpointError(f"{folder}: optimiser state is for {meta.get('class')}, the run "
                              f"uses {type(optimizer).__name__}")
    state: dict[int, dict[str, Any]] = {}
    for pid, entries in meta["state"].items():
        state.setdefault(int(pid), {}).update(entries)
    try:
        with safe_open(str(folder / "optimizer.safetensors"), framework="pt") as fh:
            for name in fh.keys():  # noqa: SIM118
                _, pid, key = name.split(".", 2)
                state.setdefault(int(pid), {})[key] = fh.get_tensor(name)
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{folder}: unreadable optimiser tensors ({exc})") from exc
    groups = [{k: tuple(v) if k == "betas" else v for k, v in g.items()}
              for g in meta["param_groups"]]
    try:
        optimizer.load_state_dict({"state": state, "param_groups": groups})
    except (ValueError, KeyError, RuntimeError) as exc:
        raise CheckpointError(f"{folder}: optimiser state does not fit the model ({exc})") \
            from exc


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


def _save_tensors(path: Path, module: nn.Module) -> None:
    tensors = {k: v.detach().to("cpu").contiguous().clone()
               for k, v in module.state_dict().items()}
    atomic_write_bytes(path, safetensors_save(tensors))


def save_checkpoint(run_dir: PathLike, step: int, *, model: WaveModel,
                    optimizer: torch.optim.Optimizer, state: dict[str, Any], sample_rate: int,
                    ema: nn.Module | None = None, keep_last: int | None = None,
                    metadata: dict[str, Any] | None = None) -> Path:
    """Write the checkpoint of ``step`` atomically and return its folder.

    ``state``: JSON-ready training state (config, schedule, best metric, ...); the step and the
    RNG states are added here. ``metadata`` goes into the model's header. With ``keep_last``,
    older checkpoints beyond that many are deleted afterwards.
    """
    run_dir = Path(run_dir)
    root = run_dir / CHECKPOINTS
    root.mkdir(parents=True, exist_ok=True)
    final = _step_dir(run_dir, step)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-", dir=root))
    try:
        save_model(model, tmp / "model.safetensors", sample_rate=sample_rate,
                   metadata={"step": step, **(metadata or {})})
        if ema is not None:
            _save_tensors(tmp / "ema.safetensors", ema)
        blob, meta = _optimizer_files(optimizer)
        atomic_write_bytes(tmp / "optimizer.safetensors", blob)
        atomic_write_json(tmp / "optimizer.json", meta)
        full = {"format": STATE_FORMAT, "format_version": STATE_VERSION, **state,
                "step": step, "rng": get_rng_state(), "ema": ema is not None}
        atomic_write_json(tmp / "state.json", full)  # last: marks the folder complete
        _fsync_dir(tmp)
        if final.exists():  # the same step written again (a resumed run that ends there)
            old = final.with_name(f".old-{final.name}")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
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


def _load_tensors(module: nn.Module, path: Path) -> None:
    try:
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118
        module.load_state_dict(tensors, strict=True)
    except (SafetensorError, OSError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: cannot load ({exc})") from exc


def load_checkpoint(folder: PathLike, *, model: WaveModel, optimizer: torch.optim.Optimizer,
                    ema: nn.Module | None = None, restore_rng: bool = True) -> dict[str, Any]:
    """Load a checkpoint folder into ``model`` / ``optimizer`` / ``ema`` (in place, strictly)
    and return its training state; RNG states are restored unless ``restore_rng=False``."""
    folder = Path(folder)
    state = read_state(folder)
    stored = load_model(folder / "model.safetensors")
    if stored.name != model.name or stored.config != model.config:
        raise CheckpointError(f"{folder}: checkpoint holds {stored.name!r} with other "
                              "arguments than the run's model")
    model.load_state_dict(stored.state_dict(), strict=True)
    if ema is not None:
        if not state.get("ema"):
            raise CheckpointError(f"{folder}: checkpoint has no EMA weights but the run uses "
                                  "train.ema_decay > 0")
        _load_tensors(ema, folder / "ema.safetensors")
    _load_optimizer(optimizer, folder)
    if restore_rng:
        set_rng_state(state["rng"])
    return state


def save_best(run_dir: PathLike, model: WaveModel, *, sample_rate: int,
              metadata: dict[str, Any]) -> Path:
    """Write ``RUN_DIR/best.safetensors`` (atomically, a :func:`upband.states.load_model` file)."""
    path = Path(run_dir) / "best.safetensors"
    save_model(model, path, sample_rate=sample_rate, metadata=metadata)
    return path
