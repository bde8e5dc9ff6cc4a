"""The training loop: step-based, exactly resumable, rank-aware; validation with Sulun's protocol.

**Exact resume.** A run resumed from the checkpoint of step ``k`` ends with the same weights,
bit for bit, as an uninterrupted run on the same CPU with the same number of torch threads
(float reductions depend on the thread count; GPUs add non-deterministic kernels unless
``runtime.deterministic``).

**Data order is a pure function of the step.** Iteration ``s`` (0-based) of rank ``r`` in a
world of ``W`` processes trains on dataset indices ``s·B·W + r·B + [0, B)``, and
:class:`~upband.data.dataset.CropDataset` example ``i`` depends only on ``(seed, i)``. Dropout
and any other torch randomness is re-seeded at every iteration from ``(seed, rank, step)``.
So a run resumed from the checkpoint of step ``k`` sees exactly what an uninterrupted run sees
after step ``k``, whatever the number of DataLoader workers, and every rank sees other data.

**One iteration**: set the rate from the schedule, forward (bf16 autocast on CUDA when
enabled), loss in float32, backward (DDP averages the gradients over the ranks), optional
gradient clipping, optimiser step, EMA update; the loss averaged over ranks goes to the
schedule (plateau rule) and to the log.

**Validation** (rank 0, every ``validation.every`` iterations and before the first): the model
in eval mode (the EMA weights when ``train.ema_decay > 0``) enhances each 8 s excerpt degraded
by the seen filter(s) and by the unseen filter; SNR (:func:`upband.metrics.snr`, the stereo
signal as one vector) and LSD (:func:`upband.metrics.lsd_ssr`) of the input and of the output
against the clean excerpt, averaged over excerpts (Sulun & Davies §III-D3), plus the training
loss on the seen excerpts (``seen_loss``).

**Outputs** (rank 0 only): ``config.json``, ``metrics.csv`` (one row per log interval and per
validation; columns :data:`CSV_BASE` + ``train_<term>`` + the validation metrics), TensorBoard
events in ``tensorboard/``, checkpoints (:mod:`upband.train.checkpoint`) and
``best.safetensors``.

**Stopping**: at ``train.max_steps``, when ``train.max_minutes`` of wall-clock time would be
exceeded by the next iteration plus a checkpoint, or on SIGTERM / the first Ctrl-C -- always
with a checkpoint, so the next ``--resume`` continues from there (a second Ctrl-C aborts).
"""

from __future__ import annotations

import contextlib
import copy
import csv
import io
import json
import math
import os
import random
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Sampler

from upband import __version__, metrics
from upband.errors import UpbandError
from upband.fsutil import atomic_write_bytes, atomic_write_json
from upband.models import build_model
from upband.models.base import WaveModel
from upband.train.checkpoint import (
    CheckpointError,
    find_latest,
    load_checkpoint,
    read_state,
    remove_stale,
    save_best,
    save_checkpoint,
)
from upband.train.config import (
    VALIDATION_METRICS,
    Config,
    ConfigError,
    config_diff,
    config_from_dict,
    config_to_dict,
)
from upband.train.distributed import (
    DistInfo,
    all_reduce_mean,
    barrier,
    init_distributed,
    shutdown_distributed,
)
from upband.train.losses import TrainingLoss, build_loss
from upband.train.schedules import Schedule, build_schedule

__all__ = [
    "CSV_BASE",
    "RESUMABLE_CHANGES",
    "DivergenceError",
    "ModelEMA",
    "StepBatchSampler",
    "StepInfo",
    "TrainData",
    "TrainResult",
    "build_data",
    "load_run_config",
    "open_source",
    "train",
    "validate",
]

PathLike = str | os.PathLike[str]

#: First columns of ``metrics.csv``; then ``train_<term>`` per loss term, then the validation
#: metrics of :data:`upband.train.config.VALIDATION_METRICS`.
CSV_BASE = ("step", "time_s", "lr", "train_loss")
#: Config keys that may differ when a run is resumed: they change when or how the run
#: executes, never what it learns.
RESUMABLE_CHANGES = ("description", "train.max_steps", "train.max_minutes", "train.log_every",
                     "data.workers", "checkpoint.every", "checkpoint.keep_last",
                     "validation.every", "validation.chunk_seconds", "runtime.")
#: In a multi-process run the ranks agree on stopping every this many iterations.
STOP_CHECK_EVERY = 10


class DivergenceError(UpbandError, FloatingPointError):
    """The training loss became NaN or infinite."""


# --------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------


@dataclass
class TrainData:
    """What the loop trains and validates on.

    ``dataset[i]`` -> ``{"input": Tensor[C, T], "target": Tensor[C, T], ...}``, deterministic
    per index; ``validation`` maps ``"seen"`` / ``"unseen"`` to lists of items with ``name``,
    ``clean`` and ``degraded`` float ``[C, T]`` arrays (:class:`upband.data.ValItem`), or is
    ``None`` (no validation).
    """

    dataset: Dataset[dict[str, Any]]
    validation: dict[str, list[Any]] | None = None


def open_source(config: Config) -> Any:
    """The audio source of ``data.corpus``: a corpus folder, or the synthetic test source."""
    from upband.data import Corpus, synthetic_source

    data = config.data
    if data.corpus == "synthetic":
        kwargs: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v
                                  for k, v in data.synthetic.items()}
        try:
            return synthetic_source(sample_rate=data.sample_rate, seed=config.train.seed,
                                    channels=data.channels, **kwargs)
        except TypeError as exc:
            raise ConfigError(f"data.synthetic: {exc}") from exc
    source = Corpus.open(data.corpus)
    if int(source.sample_rate) != data.sample_rate:
        raise ConfigError(
            f"corpus {data.corpus} is at {source.sample_rate} Hz but data.sample_rate is "
            f"{data.sample_rate}; build a corpus at that rate (upband corpus build ... "
            f"--sample-rate {data.sample_rate}) or set data.sample_rate={source.sample_rate}")
    return source


def build_data(config: Config, *, world_size: int = 1, validation: bool = True) -> TrainData:
    """The training dataset and (with ``validation``) the seen / unseen validation items.

    The dataset is long enough for ``train.max_steps`` iterations of ``world_size`` ranks.
    """
    from upband.data import CropDataset, build_validation

    source = open_source(config)
    d, t, v = config.data, config.train, config.validation
    length = max(1, t.max_steps * t.batch_size * world_size)
    dataset = CropDataset(source, "train", crop_samples=d.crop_samples, preset=d.preset,
                          channels=d.channels, seed=t.seed, gain_db=d.gain_db,
                          context_samples=d.context_samples, length=length)
    items = None
    if validation and (v.every > 0 or v.at_start):
        common: dict[str, Any] = {"seconds": v.seconds, "offset_seconds": v.offset_seconds,
                                  "max_files": v.max_files, "channels": d.channels,
                                  "context_samples": d.context_samples, "seed": t.seed}
        items = {"seen": build_validation(source, v.split, preset=config.seen_preset, **common)}
        if v.unseen_preset:
            items["unseen"] = build_validation(source, v.split, preset=v.unseen_preset, **common)
    return TrainData(dataset, items)


class StepBatchSampler(Sampler[list[int]]):
    """Batches of dataset indices for iterations ``start .. stop - 1``: iteration ``s`` of rank
    ``r`` gets ``s·B·W + r·B + [0, B)`` (a pure function of the step)."""

    def __init__(self, start: int, stop: int, batch_size: int, rank: int = 0,
                 world_size: int = 1) -> None:
        self.start, self.stop = int(start), int(stop)
        self.batch_size, self.rank, self.world_size = int(batch_size), int(rank), int(world_size)

    @staticmethod
    def indices(step: int, batch_size: int, rank: int = 0, world_size: int = 1) -> list[int]:
        first = step * batch_size * world_size + rank * batch_size
        return list(range(first, first + batch_size))

    def __iter__(self) -> Iterator[list[int]]:
        for step in range(self.start, self.stop):
            yield self.indices(step, self.batch_size, self.rank, self.world_size)

    def __len__(self) -> int:
        return max(0, self.stop - self.start)


def _collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"input": torch.stack([it["input"] for it in items]),
            "target": torch.stack([it["target"] for it in items])}


# --------------------------------------------------------------------------------------------
# EMA, validation
# --------------------------------------------------------------------------------------------


class ModelEMA(nn.Module):
    """Exponential moving average of a model's weights (buffers are copied).

    Update ``n`` (0-based) uses ``min(decay, (1 + n) / (10 + n))``, so early averages are not
    dominated by the random initial weights; the decay is a function of the step, so a resumed
    run averages exactly like an uninterrupted one. ``module`` is a full model in eval mode.
    """

    def __init__(self, model: WaveModel, decay: float) -> None:
        super().__init__()
        self.decay = float(decay)
        self.module: WaveModel = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        d = min(self.decay, (1 + step) / (10 + step))
        for avg, p in zip(self.module.parameters(), model.parameters(), strict=True):
            avg.lerp_(p.detach(), 1.0 - d)
        for avg_b, b in zip(self.module.buffers(), model.buffers(), strict=True):
            avg_b.copy_(b)

    def state_dict(self, *args: Any, **kwargs: Any) -> Any:
        return self.module.state_dict(*args, **kwargs)

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True,
                        assign: bool = False) -> Any:
        return self.module.load_state_dict(state_dict, strict=strict, assign=assign)


@torch.no_grad()
def _enhance(model: WaveModel, wav: np.ndarray, chunk: int, device: torch.device) -> np.ndarray:
    if chunk > 0 and wav.shape[-1] > chunk:
        from upband.inference import run_chunked

        return run_chunked(model, wav, chunk=chunk)
    x = torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32))[None].to(device)
    out: np.ndarray = model(x)[0].float().cpu().numpy()
    return out


def validate(model: WaveModel, items: Mapping[str, Sequence[Any]], sample_rate: int, *,
             loss: TrainingLoss | None = None, chunk: int = 0,
             inputs: dict[str, float] | None = None) -> dict[str, float]:
    """Sulun & Davies' validation: per filter group, mean over items of the input and output
    SNR and LSD (``lsd_ssr``), plus ``seen_loss`` (``loss`` on the seen items).

    ``inputs``: the input metrics of a previous call on the same items (they do not change
    during training), to skip recomputing them. The model is left in eval mode.
    """
    model.eval()
    device = next(model.parameters()).device
    out: dict[str, float] = {}
    for group, group_items in items.items():
        if not group_items:
            continue
        snr_out, lsd_out, snr_in, lsd_in, losses = [], [], [], [], []
        for item in group_items:
            clean = np.asarray(item.clean, np.float32)
            degraded = np.asarray(item.degraded, np.float32)
            estimate = _enhance(model, degraded, chunk, device)
            snr_out.append(float(metrics.snr(clean, estimate)))
            lsd_out.append(float(metrics.lsd_ssr(clean, estimate, sample_rate)))
            if inputs is None:
                snr_in.append(float(metrics.snr(clean, degraded)))
                lsd_in.append(float(metrics.lsd_ssr(clean, degraded, sample_rate)))
            if loss is not None and group == "seen":
                total, _ = loss(torch.from_numpy(estimate)[None].to(device),
                                torch.from_numpy(clean)[None].to(device))
                losses.append(float(total))
        out[f"{group}_output_snr"] = float(np.mean(snr_out))
        out[f"{group}_output_lsd"] = float(np.mean(lsd_out))
        if inputs is None:
            out[f"{group}_input_snr"] = float(np.mean(snr_in))
            out[f"{group}_input_lsd"] = float(np.mean(lsd_in))
        else:
            for key in (f"{group}_input_snr", f"{group}_input_lsd"):
                if key in inputs:
                    out[key] = inputs[key]
        if losses:
            out["seen_loss"] = float(np.mean(losses))
    return out


# --------------------------------------------------------------------------------------------
# results, logging
# --------------------------------------------------------------------------------------------


@dataclass
class StepInfo:
    """Passed to ``train(on_step=...)`` after every iteration (``step`` = iterations done)."""

    step: int
    lr: float
    loss: Tensor  # the iteration's loss averaged over ranks (0-dim, on the device)
    indices: list[int]  # the dataset indices this rank trained on
    model: WaveModel  # the (unwrapped) model being trained
    rank: int = 0


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train` did in this invocation."""

    run_dir: Path
    start_step: int  # iterations done before this invocation (0 for a fresh run)
    step: int  # iterations done at the end
    stop_reason: str  # "max_steps", "time_budget" or "signal"
    seconds: float  # wall-clock time of this invocation
    train_loss: float | None  # mean training loss of the last log interval
    validations: list[dict[str, float]] = field(default_factory=list)  # this invocation's
    best: dict[str, Any] | None = None  # {"metric", "mode", "value", "step"}
    checkpoint: Path | None = None  # the last checkpoint written (rank 0)
    rank: int = 0  # this process's rank (print summaries on rank 0 only)


class _MetricsLog:
    """``metrics.csv`` (append, one row per event) and TensorBoard, rank 0 only."""

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
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                warnings.warn("tensorboard is not installed: no TensorBoard events are written "
                              "(pip install 'upband[train]')", RuntimeWarning, stacklevel=3)
            else:
                events = run_dir / "tensorboard"
                purge = (0 if events.exists() else None) if resume_step is None \
                    else resume_step + 1
                self.writer = SummaryWriter(str(events), purge_step=purge)

    def _truncate(self, step: int) -> None:
        """Drop rows logged after ``step`` (by a run that was killed after its last checkpoint)
        and bring the file to this run's columns."""
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


class _Reporter:
    """Progress bar (rank 0, terminal only) and one-line messages on stderr."""

    def __init__(self, *, enabled: bool, bar: bool, total: int, initial: int) -> None:
        self.enabled = enabled
        self.bar: Any = None
        if enabled and bar and sys.stderr.isatty():
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=initial, unit="it", dynamic_ncols=True,
                            smoothing=0.05, desc="train")

    def update(self, n: int = 1) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def postfix(self, **values: str) -> None:
        if self.bar is not None:
            self.bar.set_postfix(values, refresh=False)

    def write(self, message: str) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.write(message, file=sys.stderr)
        else:
            print(message, file=sys.stderr, flush=True)

    @property
    def interactive(self) -> bool:
        return self.bar is not None

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class _StopSignals:
    """SIGTERM and the first SIGINT request a clean stop; a second SIGINT aborts."""

    def __init__(self) -> None:
        self.requested = False
        self._old: dict[int, Any] = {}

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> _StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._old[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


def _describe_validation(values: Mapping[str, float]) -> str:
    parts = []
    for group in ("seen", "unseen"):
        if f"{group}_output_snr" in values:
            parts.append(f"{group} SNR {values[f'{group}_input_snr']:.2f} -> "
                         f"{values[f'{group}_output_snr']:.2f} dB, LSD "
                         f"{values[f'{group}_input_lsd']:.3f} -> "
                         f"{values[f'{group}_output_lsd']:.3f}")
    return "; ".join(parts)


def _step_seed(seed: int, rank: int, step: int) -> int:
    state = np.random.SeedSequence([seed, rank, step]).generate_state(2, dtype=np.uint32)
    return int(state[0]) << 32 | int(state[1])


def _format_eta(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


# --------------------------------------------------------------------------------------------
# the run
# --------------------------------------------------------------------------------------------


def load_run_config(run_dir: PathLike) -> Config:
    """The resolved config saved in ``RUN_DIR/config.json``."""
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise CheckpointError(f"{run_dir} holds no training run (no config.json)")
    return config_from_dict(json.loads(path.read_text()))


def _check_resume(config: Config, saved: Config, folder: Path) -> None:
    changed = [k for k in config_diff(saved, config)
               if not any(k == p or (p.endswith(".") and k.startswith(p))
                          for p in RESUMABLE_CHANGES)]
    if changed:
        raise CheckpointError(
            f"cannot resume from {folder}: the config differs from the run's in "
            f"{', '.join(changed)} (only {', '.join(RESUMABLE_CHANGES)}* may change); resume "
            "with the run's config.json or start a new run folder")


def _workers(config: Config, info: DistInfo) -> int:
    """``data.workers``, with -1 resolved: 0 on the CPU, up to 8 per GPU process on CUDA."""
    if config.data.workers >= 0:
        return config.data.workers
    if info.device.type != "cuda":
        return 0
    per_process = (os.cpu_count() or 1) // max(1, torch.cuda.device_count())
    return max(0, min(8, per_process - 1))


def _use_amp(config: Config, device: torch.device) -> bool:
    if config.runtime.amp == "off":
        return False
    if device.type != "cuda":
        if config.runtime.amp == "bf16":
            warnings.warn("runtime.amp=bf16 is only used on CUDA; training in float32",
                          RuntimeWarning, stacklevel=3)
        return False
    return bool(torch.cuda.is_bf16_supported())


def _use_compile(config: Config, device: torch.device) -> bool:
    if config.runtime.compile == "auto":
        return device.type == "cuda"
    return config.runtime.compile == "on"


def train(config: Config, run_dir: PathLike, *, resume: bool = False, quiet: bool = False,
          data: TrainData | None = None,
          on_step: Callable[[StepInfo], None] | None = None) -> TrainResult:
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

    Launched by ``torchrun``, every rank calls this with the same arguments; rank 0 alone
    writes into ``run_dir``. Returns a :class:`TrainResult` (on every rank).
    """
    threads = torch.get_num_threads()
    info = init_distributed(config.runtime.device)
    try:
        runner = _Run(config, Path(run_dir), info, quiet=quiet, on_step=on_step)
        return runner.run(resume=resume, data=data)
    finally:
        shutdown_distributed(info)
        torch.set_num_threads(threads)  # runtime.threads applies to this run only


class _Run:
    def __init__(self, config: Config, run_dir: Path, info: DistInfo, *, quiet: bool,
                 on_step: Callable[[StepInfo], None] | None) -> None:
        self.config, self.run_dir, self.info = config, run_dir, info
        self.quiet, self.on_step = quiet, on_step
        self.main = info.is_main
        self.t0 = time.monotonic()

    # ---------------------------------------------------------------- setup

    def _prepare_dir(self, resume: bool) -> Path | None:
        latest = find_latest(self.run_dir)
        if not resume and (latest is not None or (self.run_dir / "metrics.csv").exists()):
            raise CheckpointError(
                f"{self.run_dir} already holds a training run; pass --resume to continue it "
                "or choose another run folder")
        if latest is not None:
            saved = read_state(latest)
            _check_resume(self.config, config_from_dict(saved["config"]), latest)
        if self.main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            remove_stale(self.run_dir)
            atomic_write_json(self.run_dir / "config.json", config_to_dict(self.config))
        return latest

    def _build(self) -> None:
        c, device = self.config, self.info.device
        if c.runtime.threads:
            torch.set_num_threads(c.runtime.threads)
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = not c.runtime.deterministic
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        if c.runtime.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
        random.seed(c.train.seed)
        np.random.seed(c.train.seed % 2**32)
        torch.manual_seed(c.train.seed)  # the same initial weights on every rank
        model = build_model(c.model.name, **c.model.kwargs)
        model.sample_rate = c.data.sample_rate
        self.model = model.to(device)
        self.ema = ModelEMA(self.model, c.train.ema_decay) if c.train.ema_decay > 0 else None
        o = c.optim
        cls = torch.optim.AdamW if o.name == "adamw" else torch.optim.Adam
        self.optimizer = cls(self.model.parameters(), lr=o.lr, betas=o.betas, eps=o.eps,
                             weight_decay=o.weight_decay)
        self.schedule: Schedule = build_schedule(c.schedule, o)
        self.loss = build_loss(c.loss).to(device)
        self.amp = _use_amp(c, device)
        forward: nn.Module = self.model
        if self.info.distributed:
            from torch.nn.parallel import DistributedDataParallel

            ids = [device.index] if device.type == "cuda" else None
            forward = DistributedDataParallel(self.model, device_ids=ids)
        if _use_compile(c, device):
            forward = torch.compile(forward)  # type: ignore[assignment]
        self.forward = forward

    def _restore(self, folder: Path) -> dict[str, Any]:
        state = load_checkpoint(folder, model=self.model, optimizer=self.optimizer,
                                ema=self.ema)
        self.schedule.load_state_dict(state["schedule"])
        return state

    # ---------------------------------------------------------------- run

    def run(self, *, resume: bool, data: TrainData | None) -> TrainResult:
        c, info = self.config, self.info
        latest = self._prepare_dir(resume)
        barrier(info)
        self._build()
        state: dict[str, Any] = {}
        if latest is not None:
            state = self._restore(latest)
        start = int(state.get("step", 0))
        self.best: dict[str, Any] | None = state.get("best")
        self.input_metrics: dict[str, float] | None = state.get("input_metrics")
        elapsed_before = float(state.get("elapsed_seconds", 0.0))
        if data is None:
            data = build_data(c, world_size=info.world_size, validation=self.main)
        self.val_items = data.validation if self.main else None

        columns = [*CSV_BASE, *(f"train_{n}" for n in self.loss.names), *VALIDATION_METRICS]
        log = _MetricsLog(self.run_dir, columns, enabled=self.main,
                          tensorboard=c.runtime.tensorboard,
                          resume_step=start if latest is not None else None)
        report = _Reporter(enabled=self.main and not self.quiet,
                           bar=c.runtime.progress, total=c.train.max_steps, initial=start)
        if latest is not None:
            report.write(f"resuming {self.run_dir} from step {start}")
        validations: list[dict[str, float]] = []
        checkpoint: Path | None = None
        stop_reason = "max_steps"
        last_loss: float | None = None
        step = start
        last_saved = start if latest is not None else -1
        if latest is not None and int(state.get("world_size", info.world_size)) != \
                info.world_size:
            report.write(f"the run was trained on {state['world_size']} processes and now runs "
                         f"on {info.world_size}: the data order changes from here on")

        loader = DataLoader(
            data.dataset,
            batch_sampler=StepBatchSampler(start, c.train.max_steps, c.train.batch_size,
                                           info.rank, info.world_size),
            num_workers=_workers(c, info), collate_fn=_collate,
            pin_memory=info.device.type == "cuda",
            generator=torch.Generator().manual_seed(c.train.seed),  # keeps the global RNG
            persistent_workers=False)

        log_state: dict[str, Any] = {"sum": state.get("log_sum"),
                                     "count": int(state.get("log_count", 0))}

        def elapsed() -> float:
            return time.monotonic() - self.t0

        def save(step: int) -> Path | None:
            t = time.monotonic()
            folder = None
            if self.main:
                folder = self._save(step, elapsed_before + elapsed(), log_state)
            barrier(info)
            self.save_seconds = time.monotonic() - t
            return folder

        def run_validation(step: int) -> None:
            if not self.main or not self.val_items:
                barrier(info)
                return
            t = time.monotonic()
            values = self._validate()
            values_row = {"time_s": elapsed_before + elapsed(), **values}
            log.log(step, values_row)
            validations.append({"step": float(step), **values})
            self._update_best(step, values)
            self.validation_seconds = time.monotonic() - t
            report.write(f"step {step}: " + _describe_validation(values)
                         + f" ({self.validation_seconds:.1f} s)")
            barrier(info)

        self.save_seconds = 0.0
        self.validation_seconds = 0.0
        n_terms = 1 + len(self.loss.names)
        acc = torch.zeros(n_terms, dtype=torch.float64, device=info.device)
        if log_state["sum"] is not None:
            acc += torch.tensor(log_state["sum"], dtype=torch.float64, device=info.device)
        count = log_state["count"]
        step_times: list[float] = []
        t_interval = time.monotonic()

        try:
            with _StopSignals() as signals:
                if start == 0 and c.validation.at_start and start < c.train.max_steps:
                    run_validation(0)
                self.model.train()
                batches = iter(loader)
                while step < c.train.max_steps:
                    t_step = time.monotonic()
                    batch = next(batches)
                    loss_vec = self._iteration(step, batch)
                    step += 1
                    acc += loss_vec
                    count += 1
                    log_state["sum"], log_state["count"] = acc, count
                    if self.on_step is not None:
                        self.on_step(StepInfo(
                            step=step, lr=self.optimizer.param_groups[0]["lr"],
                            loss=loss_vec[0].detach(), model=self.model, rank=info.rank,
                            indices=StepBatchSampler.indices(step - 1, c.train.batch_size,
                                                             info.rank, info.world_size)))
                    report.update()
                    step_times.append(time.monotonic() - t_step)
                    del step_times[:-50]

                    if step % c.train.log_every == 0:
                        means = (acc / max(count, 1)).tolist()
                        if not all(math.isfinite(v) for v in means):
                            raise DivergenceError(
                                f"training diverged: the loss is {means[0]} at step {step} "
                                "(lower optim.lr or set optim.grad_clip)")
                        last_loss = means[0]
                        lr = self.optimizer.param_groups[0]["lr"]
                        row = {"time_s": elapsed_before + elapsed(), "lr": lr,
                               "train_loss": means[0],
                               **{f"train_{n}": v for n, v in
                                  zip(self.loss.names, means[1:], strict=True)}}
                        log.log(step, row)
                        rate = c.train.log_every / max(time.monotonic() - t_interval, 1e-9)
                        t_interval = time.monotonic()
                        report.postfix(loss=f"{means[0]:.4g}", lr=f"{lr:.2e}")
                        if not report.interactive:
                            eta = (c.train.max_steps - step) / rate
                            report.write(f"step {step}/{c.train.max_steps}  loss {means[0]:.4g}"
                                         f"  lr {lr:.2e}  {rate:.2f} it/s  ETA {_format_eta(eta)}")
                        acc.zero_()
                        count = 0
                        log_state["sum"], log_state["count"] = acc, count

                    if c.validation.every and step % c.validation.every == 0:
                        run_validation(step)
                        self.model.train()
                    if step % c.checkpoint.every == 0 and step < c.train.max_steps:
                        checkpoint = save(step) or checkpoint
                        last_saved = step

                    stop = self._should_stop(signals.requested, step, step_times, elapsed())
                    if stop is not None:
                        stop_reason = stop
                        break
            if step != last_saved:
                checkpoint = save(step) or checkpoint
        finally:
            log.close()
            report.close()
        if stop_reason != "max_steps":
            report.write(f"stopped at step {step} ({stop_reason}); continue with --resume")
        return TrainResult(run_dir=self.run_dir, start_step=start, step=step,
                           stop_reason=stop_reason, seconds=elapsed(), train_loss=last_loss,
                           validations=validations, best=self.best,
                           checkpoint=checkpoint if self.main else None, rank=info.rank)

    def _should_stop(self, requested: bool, step: int, step_times: list[float],
                     elapsed: float) -> str | None:
        c, info = self.config, self.info
        if step >= c.train.max_steps:
            return None
        reason = None
        if requested:
            reason = "signal"
        elif c.train.max_minutes > 0:
            typical = float(np.median(step_times)) if step_times else 0.0
            next_val = c.validation.every and (step + 1) % c.validation.every == 0
            margin = 2 * typical + self.save_seconds + (self.validation_seconds if next_val
                                                        else 0.0)
            if elapsed + margin >= 60.0 * c.train.max_minutes:
                reason = "time_budget"
        if info.distributed:
            if step % STOP_CHECK_EVERY:
                return None
            flags = torch.tensor([reason == "signal", reason == "time_budget"],
                                 dtype=torch.float32, device=info.device)
            import torch.distributed as dist

            dist.all_reduce(flags, op=dist.ReduceOp.MAX)
            if flags[0] > 0:
                return "signal"
            return "time_budget" if flags[1] > 0 else None
        return reason

    def _iteration(self, step: int, batch: dict[str, Tensor]) -> Tensor:
        c, info = self.config, self.info
        device = info.device
        x = batch["input"].to(device, non_blocking=True)
        y = batch["target"].to(device, non_blocking=True)
        lr = self.schedule.lr(step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        torch.manual_seed(_step_seed(c.train.seed, info.rank, step))
        autocast = torch.autocast("cuda", dtype=torch.bfloat16) if self.amp \
            else contextlib.nullcontext()
        with autocast:
            estimate = self.forward(x)
        total, parts = self.loss(estimate.float(), y)
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        if c.optim.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), c.optim.grad_clip)
        self.optimizer.step()
        if self.ema is not None:
            self.ema.update(self.model, step)
        vec = torch.stack([total.detach(), *parts.values()]).double()
        vec = all_reduce_mean(vec, info)
        self.schedule.observe(vec[0])
        return vec

    def _validated_model(self) -> WaveModel:
        return self.ema.module if self.ema is not None else self.model

    def _validate(self) -> dict[str, float]:
        assert self.val_items is not None
        c = self.config
        chunk = round(c.validation.chunk_seconds * c.data.sample_rate)
        model = self._validated_model()
        values = validate(model, self.val_items, c.data.sample_rate, loss=self.loss,
                          chunk=chunk, inputs=self.input_metrics)
        if self.input_metrics is None:
            self.input_metrics = {k: v for k, v in values.items() if "_input_" in k}
        return values

    def _update_best(self, step: int, values: Mapping[str, float]) -> None:
        c = self.config.checkpoint
        value = values.get(c.best_metric)
        if value is None or not math.isfinite(value):
            return
        if self.best is not None and self.best.get("metric") == c.best_metric:
            old = float(self.best["value"])
            better = value > old if c.best_mode == "max" else value < old
            if not better:
                return
        self.best = {"metric": c.best_metric, "mode": c.best_mode, "value": value, "step": step}
        save_best(self.run_dir, self._validated_model(), sample_rate=self.config.data.sample_rate,
                  metadata={"config": config_to_dict(self.config), "step": step,
                            "validation": dict(values), "best": self.best})

    def _save(self, step: int, elapsed_total: float, log_state: dict[str, Any]) -> Path:
        acc = log_state["sum"]
        state = {
            "config": config_to_dict(self.config),
            "schedule": self.schedule.state_dict(),
            "best": self.best,
            "input_metrics": self.input_metrics,
            "elapsed_seconds": elapsed_total,
            "world_size": self.info.world_size,
            "log_sum": None if acc is None else [float(v) for v in acc],
            "log_count": int(log_state["count"]),
            "upband_version": __version__,
        }
        folder = save_checkpoint(
            self.run_dir, step, model=self.model, optimizer=self.optimizer, state=state,
            sample_rate=self.config.data.sample_rate, ema=self.ema,
            keep_last=self.config.checkpoint.keep_last,
            metadata={"config": config_to_dict(self.config), "best": self.best})
        return folder

