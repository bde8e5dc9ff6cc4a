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
from upband.analysis import Bandwidth, detect_bandwidth
from upband.enhancement.chunking import run_chunked
from upband.enhancement.pipeline import Route, choose_route, route_output
from upband.enhancement.settings import Settings
from upband.errors import SpecError
from upband.models.base import WaveModel
from upband.train.checkpoint import save_best
from upband.train.config import Config, config_to_dict
from upband.train.distributed import DistInfo, barrier
from upband.train.logs import MetricsLog, Reporter
from upband.train.losses import TrainingLoss

if TYPE_CHECKING:  # the regression task imports this module: a cycle at run time
    from upband.train.tasks.base import Task

__all__ = ["Validator", "describe_validation", "model_output", "shipped", "shipped_output",
           "validate", "visqol_or_nan"]


def _route(model: WaveModel, wav: np.ndarray, sample_rate: int,
           bandwidth: Bandwidth | None) -> Route:
    """The route ``upband enhance`` takes for ``wav`` at its own rate (detecting the
    bandwidth unless given)."""
    found = bandwidth if bandwidth is not None else detect_bandwidth(wav, sample_rate)
    return choose_route(found, sample_rate, wav.shape[0], model,
                        Settings(output_rate=sample_rate))


@torch.no_grad()
def model_output(model: WaveModel, wav: np.ndarray, chunk: int, device: torch.device,
                 sample_rate: int, bandwidth: Bandwidth | None = None) -> np.ndarray:
    """The model's output for one excerpt ``[C, T]`` (chunked when longer than ``chunk``); a
    model that takes the cutoff is told the detected one (``bandwidth``, detected here when
    not given), as ``upband enhance`` tells it."""
    cutoff = None
    if model.takes_cutoff:
        cutoff = _route(model, wav, sample_rate, bandwidth).merge_cutoff_hz
    if chunk > 0 and wav.shape[-1] > chunk:
        return run_chunked(model, wav, chunk=chunk, cutoff_hz=cutoff)
    x = torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32))[None].to(device)
    out: np.ndarray = model(x, cutoff)[0].float().cpu().numpy()
    return out


def shipped_output(model: WaveModel, degraded: np.ndarray, estimate: np.ndarray,
                   sample_rate: int, bandwidth: Bandwidth | None = None
                   ) -> tuple[np.ndarray, float]:
    """What ``upband enhance`` makes of the model's ``estimate`` for ``degraded`` (both float32
    ``[C, T]`` at ``sample_rate``): the detected cutoff (``bandwidth``, detected here when not
    given), then pass-through or the do-no-harm merge
    (:func:`upband.enhancement.pipeline.route_output`). Returns ``(output, cutoff_hz)``."""
    route = _route(model, degraded, sample_rate, bandwidth)
    return route_output(route, degraded, estimate), route.bandwidth.cutoff_hz


def shipped(model: WaveModel, degraded: np.ndarray, sample_rate: int, *, chunk: int = 0,
            device: torch.device | None = None) -> tuple[np.ndarray, np.ndarray, float]:
    """``(estimate, output, cutoff_hz)``: :func:`model_output` and :func:`shipped_output` of
    one excerpt with one bandwidth detection."""
    found = detect_bandwidth(degraded, sample_rate)
    device = device or next(model.parameters()).device
    estimate = model_output(model, degraded, chunk, device, sample_rate, found)
    output, cutoff = shipped_output(model, degraded, estimate, sample_rate, found)
    return estimate, output, cutoff


def _scores(clean: np.ndarray, estimate: np.ndarray, sample_rate: int, signal: str,
            cutoff_hz: float | None = None) -> dict[str, float]:
    """``{signal}_snr``, ``{signal}_lsd`` and, with a cutoff, ``{signal}_lsd_high`` (the
    LSD of the bins above it; NaN, left out of the mean, for an excerpt detected full band)."""
    out = {f"{signal}_snr": float(metrics.snr(clean, estimate)),
           f"{signal}_lsd": float(metrics.lsd_ssr(clean, estimate, sample_rate))}
    if cutoff_hz is not None:  # NaN for an excerpt detected full band: nothing lies above
        out[f"{signal}_lsd_high"] = float(metrics.lsd_ssr(
            clean, estimate, sample_rate, min_hz=cutoff_hz)) if cutoff_hz < sample_rate / 2 \
            else float("nan")
    return out


def visqol_or_nan(clean: np.ndarray, estimate: np.ndarray, sample_rate: int) -> float:
    """ViSQOL, NaN where it refuses the pair (an excerpt of near silence)."""
    try:
        return float(metrics.visqol(clean, estimate, sample_rate))
    except SpecError:
        return float("nan")


def _group(model: WaveModel, group: str, items: Sequence[Any], sample_rate: int,
           loss: TrainingLoss | None, chunk: int, inputs: dict[str, float] | None,
           merged: bool, visqol: bool) -> dict[str, float]:
    device = next(model.parameters()).device
    rows: list[dict[str, float]] = []
    for item in items:
        clean = np.asarray(item.clean, np.float32)
        degraded = np.asarray(item.degraded, np.float32)
        cutoff = None
        if merged:
            estimate, output, cutoff = shipped(model, degraded, sample_rate, chunk=chunk,
                                               device=device)
        else:
            estimate = model_output(model, degraded, chunk, device, sample_rate)
        row = _scores(clean, estimate, sample_rate, "output")
        if merged:
            row.update(_scores(clean, output, sample_rate, "merged", cutoff))
            if visqol:
                row["merged_visqol"] = visqol_or_nan(clean, output, sample_rate)
        if inputs is None:
            row.update(_scores(clean, degraded, sample_rate, "input", cutoff))
            if merged and visqol:
                row["input_visqol"] = visqol_or_nan(clean, degraded, sample_rate)
        if loss is not None and group == "seen":
            total, _ = loss(torch.from_numpy(estimate)[None].to(device),
                            torch.from_numpy(clean)[None].to(device))
            row["loss"] = float(total)
        rows.append(row)
    out = {f"{group}_{k}": _mean([r[k] for r in rows]) for k in rows[0] if k != "loss"}
    if inputs is not None:
        out.update((k, v) for k, v in inputs.items() if k.startswith(f"{group}_input_"))
    if "loss" in rows[0]:
        out["seen_loss"] = float(np.mean([r["loss"] for r in rows]))
    return out


def _mean(values: Sequence[float]) -> float:
    """Mean of the values that are not NaN (NaN when all are): ViSQOL leaves out what it
    refuses, an excerpt detected full band has no high-band LSD; an infinite SNR stays."""
    kept = [v for v in values if not np.isnan(v)]
    return float(np.mean(kept)) if kept else float("nan")


def validate(model: WaveModel, items: Mapping[str, Sequence[Any]], sample_rate: int, *,
             loss: TrainingLoss | None = None, chunk: int = 0,
             inputs: dict[str, float] | None = None, merged: bool = False,
             visqol: bool = False) -> dict[str, float]:
    """Sulun & Davies' validation: per filter group, mean over items of the input and output
    SNR and LSD (``lsd_ssr``), plus ``seen_loss`` (``loss`` on the seen items); with
    ``merged``, also of what ships (:func:`shipped_output`: the raw output after detection and
    the do-no-harm merge) and the LSD above the detected cutoff.

    Args:
        model: the network; left in eval mode.
        items: group name (``"seen"`` / ``"unseen"``) -> items with ``clean`` and
            ``degraded`` float ``[C, T]`` arrays at ``sample_rate``.
        sample_rate: Hz.
        loss: the training loss, for ``seen_loss``.
        chunk: enhance excerpts longer than this many samples in chunks (0: whole).
        inputs: the input metrics of a previous call on the same items (they do not change
            during training), to skip recomputing them.

        merged: add ``{group}_merged_{snr,lsd,lsd_high}`` and ``{group}_input_lsd_high``.
        visqol: with ``merged``, add ``{group}_merged_visqol`` and ``{group}_input_visqol``
            (means over the excerpts ViSQOL scores).

    Returns:
        ``{group}_{input,output}_{snr,lsd}`` (SNR in dB), the merged values, ``seen_loss``.
    """
    model.eval()
    out: dict[str, float] = {}
    for group, group_items in items.items():
        if group_items:
            out.update(_group(model, group, group_items, sample_rate, loss, chunk, inputs,
                              merged, visqol))
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
        if f"{group}_merged_snr" in values:
            parts[-1] += (f" (merged: SNR {values[f'{group}_merged_snr']:.2f} dB, LSD "
                          f"{values[f'{group}_merged_lsd']:.3f}, above the cutoff "
                          f"{values[f'{group}_input_lsd_high']:.3f} -> "
                          f"{values[f'{group}_merged_lsd_high']:.3f})")
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
