"""Validation during training: Sulun & Davies' protocol, and when and what the loop validates.

**The protocol** (:func:`validate`, the regression task's): the model in eval mode enhances
each excerpt degraded by the seen filter(s) and by the unseen filter; SNR
(:func:`upband.metrics.snr`, the stereo signal as one vector) and LSD
(:func:`upband.metrics.lsd_ssr`) of the input and of the output against the clean excerpt,
averaged over excerpts (Sulun & Davies §III-D3), plus the training loss on the seen excerpts
(``seen_loss``).

**The schedule** (:class:`Validator`, every task's): rank 0 validates every
``validation.every`` iterations and before the first (``validation.at_start``); the values go
to ``metrics.csv`` / TensorBoard, and when ``checkpoint.best_metric`` improves the task's best
model is written to ``best.safetensors``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from upband import metrics
from upband.enhance.chunking import run_chunked
from upband.models.base import WaveModel
from upband.train.checkpoint import save_best
from upband.train.config import Config, config_to_dict
from upband.train.distributed import DistInfo, barrier
from upband.train.logs import MetricsLog, Reporter
from upband.train.losses import TrainingLoss

if TYPE_CHECKING:  # the regression task imports this module: a cycle at run time
    from upband.train.tasks.base import Task

__all__ = ["Validator", "describe_validation", "validate"]


@torch.no_grad()
def _apply(model: WaveModel, wav: np.ndarray, chunk: int, device: torch.device) -> np.ndarray:
    """The model's output for one excerpt ``[C, T]`` (chunked when longer than ``chunk``)."""
    if chunk > 0 and wav.shape[-1] > chunk:
        return run_chunked(model, wav, chunk=chunk)
    x = torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32))[None].to(device)
    out: np.ndarray = model(x)[0].float().cpu().numpy()
    return out


def _group(model: WaveModel, group: str, items: Sequence[Any], sample_rate: int,
           loss: TrainingLoss | None, chunk: int,
           inputs: dict[str, float] | None) -> dict[str, float]:
    device = next(model.parameters()).device
    snr_out, lsd_out, snr_in, lsd_in, losses = [], [], [], [], []
    for item in items:
        clean = np.asarray(item.clean, np.float32)
        degraded = np.asarray(item.degraded, np.float32)
        estimate = _apply(model, degraded, chunk, device)
        snr_out.append(float(metrics.snr(clean, estimate)))
        lsd_out.append(float(metrics.lsd_ssr(clean, estimate, sample_rate)))
        if inputs is None:
            snr_in.append(float(metrics.snr(clean, degraded)))
            lsd_in.append(float(metrics.lsd_ssr(clean, degraded, sample_rate)))
        if loss is not None and group == "seen":
            total, _ = loss(torch.from_numpy(estimate)[None].to(device),
                            torch.from_numpy(clean)[None].to(device))
            losses.append(float(total))
    out = {f"{group}_output_snr": float(np.mean(snr_out)),
           f"{group}_output_lsd": float(np.mean(lsd_out))}
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


def validate(model: WaveModel, items: Mapping[str, Sequence[Any]], sample_rate: int, *,
             loss: TrainingLoss | None = None, chunk: int = 0,
             inputs: dict[str, float] | None = None) -> dict[str, float]:
    """Sulun & Davies' validation: per filter group, mean over items of the input and output
    SNR and LSD (``lsd_ssr``), plus ``seen_loss`` (``loss`` on the seen items).

    Args:
        model: the network; left in eval mode.
        items: group name (``"seen"`` / ``"unseen"``) -> items with ``clean`` and
            ``degraded`` float ``[C, T]`` arrays at ``sample_rate``.
        sample_rate: Hz.
        loss: the training loss, for ``seen_loss``.
        chunk: enhance excerpts longer than this many samples in chunks (0: whole).
        inputs: the input metrics of a previous call on the same items (they do not change
            during training), to skip recomputing them.

    Returns:
        ``{group}_{input,output}_{snr,lsd}`` (SNR in dB) and ``seen_loss``.
    """
    model.eval()
    out: dict[str, float] = {}
    for group, group_items in items.items():
        if group_items:
            out.update(_group(model, group, group_items, sample_rate, loss, chunk, inputs))
    return out


def describe_validation(values: Mapping[str, float]) -> str:
    """``seen SNR a -> b dB, LSD c -> d; unseen ...`` for one line of the run's output."""
    parts = []
    for group in ("seen", "unseen"):
        if f"{group}_output_snr" in values:
            parts.append(f"{group} SNR {values[f'{group}_input_snr']:.2f} -> "
                         f"{values[f'{group}_output_snr']:.2f} dB, LSD "
                         f"{values[f'{group}_input_lsd']:.3f} -> "
                         f"{values[f'{group}_output_lsd']:.3f}")
    return "; ".join(parts)


class Validator:
    """Runs the task's validation on rank 0, logs it, and keeps ``best.safetensors``.

    ``best``: ``{"metric", "mode", "value", "step"}`` of the best validation so far (restored
    from a checkpoint), or ``None``.
    """

    def __init__(self, task: Task, items: Mapping[str, Sequence[Any]] | None, *,
                 config: Config, run_dir: Path, info: DistInfo, log: MetricsLog,
                 report: Reporter, best: dict[str, Any] | None) -> None:
        self.task, self.items, self.config, self.run_dir = task, items, config, run_dir
        self.info, self.log, self.report = info, log, report
        self.best = best
        self.history: list[dict[str, float]] = []
        self.seconds = 0.0  # how long the last validation took

    def due(self, step: int) -> bool:
        """Whether iteration ``step`` (done) is followed by a validation."""
        every = self.config.validation.every
        return bool(every) and step % every == 0

    def __call__(self, step: int, time_s: float) -> None:
        """Validate after ``step`` iterations, ``time_s`` seconds into the run (every rank
        calls this; the others wait)."""
        if not self.info.is_main or not self.items:
            barrier(self.info)
            return
        t = time.monotonic()
        values = self.task.validate(self.items)
        self.log.log(step, {"time_s": time_s, **values})
        self.history.append({"step": float(step), **values})
        self._update_best(step, values)
        self.seconds = time.monotonic() - t
        self.report.write(f"step {step}: " + self.task.describe(values)
                          + f" ({self.seconds:.1f} s)")
        barrier(self.info)

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
        model = self.task.best_model()
        if model is not None:
            save_best(self.run_dir, model, sample_rate=self.config.data.sample_rate,
                      metadata={"config": config_to_dict(self.config), "step": step,
                                "validation": dict(values), "best": self.best})
