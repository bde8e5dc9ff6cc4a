"""The metrics a protocol can ask for, by name, and how their limits are reported.

Each entry of :data:`METRICS` wraps one function of :mod:`upband.metrics` with its direction
(higher or lower is better), unit and display precision.

Limits: an estimate equal to its reference has SNR ``+inf`` and LSD / MSE exactly 0. upband
reports the SNR limit as it is, never as a capped number: ``inf`` in ``results.csv`` and in the
Markdown tables, the string ``"inf"`` in ``summary.json`` (JSON has no infinity), the convention
of ``upband metrics --json``. A mean over files that contains ``+inf`` is ``+inf``; a Δ between
two equal values (``inf`` and ``inf`` included) is exactly 0. A value that is undefined (a
segmental SNR of a signal whose every segment is silent) is ``nan``: left out of the mean,
written ``nan`` in the CSV, ``null`` in the JSON and ``n/a`` in the tables. Files whose
reference is digital silence are refused (no metric is defined there).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from upband import metrics
from upband.errors import SpecError


@dataclass(frozen=True)
class MetricSpec:
    """``fn(reference, estimate, sample_rate, cutoff_hz, context) -> float``."""

    name: str
    label: str
    higher_is_better: bool
    fn: Callable[[np.ndarray, np.ndarray, int, float | None, dict[str, Any]], float]
    decimals: int = 2
    unit: str = ""

    @property
    def arrow(self) -> str:
        return "↑" if self.higher_is_better else "↓"


def _high(cutoff_hz: float | None, sr: int) -> float:
    """The lower edge of the high band: the cutoff, kept inside (0, Nyquist)."""
    if cutoff_hz is None or not math.isfinite(cutoff_hz):
        return sr / 2 * 0.999
    return min(max(cutoff_hz, 1.0), sr / 2 * 0.999)


def _visqol(x: np.ndarray, y: np.ndarray, sr: int) -> float:
    """ViSQOL, or ``nan`` (undefined: left out of the mean) for a clip too short for its
    patches (under about a second, e.g. a drum hit) -- the file's other metrics still count."""
    try:
        return float(metrics.visqol(x, y, sr))
    except SpecError:
        return math.nan


METRICS: dict[str, MetricSpec] = {m.name: m for m in (
    MetricSpec("snr", "SNR", True, lambda x, y, sr, c, k: float(metrics.snr(x, y)),
               unit="dB"),
    MetricSpec("segmental_snr", "segmental SNR", True,
               lambda x, y, sr, c, k: float(metrics.segmental_snr(
                   x, y, min(metrics.SEGMENT_SAMPLES, x.shape[-1]))), unit="dB"),
    MetricSpec("lsd_kuleshov", "LSD (Kuleshov)", False,
               lambda x, y, sr, c, k: float(metrics.lsd_kuleshov(x, y, sr))),
    MetricSpec("lsd_ssr", "LSD (ssr_eval)", False,
               lambda x, y, sr, c, k: float(metrics.lsd_ssr(x, y, sr)), decimals=3),
    MetricSpec("lsd_ssr_high", "high-band LSD", False,
               lambda x, y, sr, c, k: float(metrics.lsd_ssr(x, y, sr, min_hz=_high(c, sr))),
               decimals=3),
    MetricSpec("lsd_db", "LSD", False,
               lambda x, y, sr, c, k: float(metrics.lsd_db(x, y, sr)), unit="dB"),
    MetricSpec("spectral_mse", "MSE", False,
               lambda x, y, sr, c, k: float(metrics.spectral_mse(x, y, sr)), decimals=4),
    MetricSpec("visqol", "ViSQOL", True, lambda x, y, sr, c, k: _visqol(x, y, sr),
               decimals=3, unit="MOS-LQO"),
    MetricSpec("vgg_distance", "VGG", False,
               lambda x, y, sr, c, k: float(metrics.vgg_distance(x, y, sr, k["vggish"]))),
)}


def score(reference: np.ndarray, estimate: np.ndarray, sample_rate: int,
          cutoff_hz: float | None, names: Sequence[str],
          context: dict[str, Any] | None = None) -> dict[str, float]:
    """Every metric in ``names`` of one ``[C, T]`` pair, in that order."""
    ctx = context or {}
    return {n: METRICS[n].fn(reference, estimate, sample_rate, cutoff_hz, ctx) for n in names}


def better(name: str, a: float, b: float) -> bool:
    """Whether value ``a`` of metric ``name`` is better than ``b`` (``nan`` never is)."""
    if math.isnan(a):
        return False
    if math.isnan(b):
        return True
    return a > b if METRICS[name].higher_is_better else a < b


def mean(values: Sequence[float]) -> tuple[float, int]:
    """Mean of the defined values (``nan`` left out) and how many there were."""
    kept = [v for v in values if not math.isnan(v)]
    if not kept:
        return math.nan, 0
    if any(math.isinf(v) for v in kept):  # avoid inf - inf inside a summation
        pos = any(v == math.inf for v in kept)
        neg = any(v == -math.inf for v in kept)
        return (math.nan if pos and neg else math.inf if pos else -math.inf), len(kept)
    return math.fsum(kept) / len(kept), len(kept)


def delta(value: float, reference: float) -> float:
    """``value - reference``; exactly 0 for equal values (also both ``inf``)."""
    if value == reference:
        return 0.0
    return value - reference


def format_value(name: str, value: float, *, signed: bool = False) -> str:
    """A table cell: ``inf`` for the limit, ``n/a`` when undefined, else fixed decimals."""
    if math.isnan(value):
        return "n/a"
    if math.isinf(value):
        return ("+inf" if signed else "inf") if value > 0 else "-inf"
    spec = METRICS.get(name)
    digits = spec.decimals if spec is not None else 3
    text = f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"
    if text.startswith("-") and float(text) == 0:  # no "-0.00"
        text = ("+" if signed else "") + text[1:]
    return text
