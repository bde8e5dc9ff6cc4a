"""The band-level predictor: how loud the missing band above a cutoff should be, frame by frame.

Above a filter's or a codec's cutoff nothing of the original may be left, and what a listener
(and ViSQOL) hears there is mostly the band's *level* in time: noise that follows the original's
1/3-octave energies frame by frame gains as much ViSQOL as the original's exact magnitudes
(docs/results/band-level/README.md). This module predicts those energies from what the input
still holds below the cutoff, with a small network that runs per STFT frame in NumPy:

- **inputs** (per frame of the level guard's STFT, channels summed): the levels of the twelve
  1/3-octave bands under the cutoff (four octaves, ``[fc 2^-(j+1)/3, fc 2^-j/3)``) and of the
  input's first three above it (what a gentle filter left of the original band, telling an
  empty original band from a removed one) relative to the reference (the top octave
  ``[fc/2, fc)``, as the guard's bound), the same fifteen smoothed over the past (``TAU_S``),
  the reference's level and its rise over its smoothed past (an onset), and the cutoff in
  octaves from 11 025 Hz;
- **outputs**: the levels of the 1/3-octave bands ``[fc 2^j/3, fc 2^(j+1)/3)`` above the cutoff
  (``j < ABOVE``; the guard's bands), in dB relative to the reference;
- **network**: two hidden layers (``hidden`` units, ReLU), fed the inputs standardised by the
  training set's mean and deviation; trained on degraded crops of the training split against
  the clean band's levels (``scripts/train_band_level.py``).

The shipped network gives the **0.2 quantile** of each band's level (trained with a pinball
loss in dB): a level the original exceeds four times in five, so that where the input says
little (dark, sparse or noisy music) the level drops. The guard fills a margin under it
(:class:`~upband.enhancement.guard.LevelGuard`, ``fill_db``; docs/models/upband-band-level.md).

The file is a safetensors file (``w0 b0 w1 b1 w2 b2 mean scale``) whose header ``"upband"``
holds JSON (format ``upband-band-level``, the sizes, ``TAU_S``, how it was trained); loading
reads tensors and JSON only, and each shipped file is checked against its SHA-256 (two ship:
:func:`shipped` picks one by the cutoff).
"""

from __future__ import annotations

import importlib.resources
import json
import math
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from scipy.signal import lfilter

from upband.common.hashing import file_sha256
from upband.common.tensorfile import TensorFileError, read_metadata, read_tensors
from upband.errors import ModelError

FORMAT = "upband-band-level"
#: 1/3-octave bands read under the cutoff, predicted above it, and read above it (what a
#: filter's slope left of the original there: little or nothing after a codec or a steep cut).
BELOW = 12
ABOVE = 8
RESIDUAL = 3
#: Time constant of the inputs' smoothing (seconds).
TAU_S = 1.0
#: The input levels' range relative to the reference (dB), and the floor of the targets.
REL_RANGE = (-60.0, 30.0)
TARGET_FLOOR_DB = -80.0
#: The shipped predictors (``upband/pretrained/``) and their SHA-256: for cutoffs from
#: ``LOW_UNTIL_HZ`` up, and under it (trained from 3 kHz up, a wider network). Each was better
#: on its side of 9 kHz through ``upband evaluate --split validation`` (docs/models/
#: upband-band-level.md).
SHIPPED_FILE = "upband-band-level.safetensors"
SHIPPED_SHA256 = "cc2bcf19d46e52d257881bed2ad62676f752b1a36e68af972dd37dc36a53bfdf"
LOW_FILE = "upband-band-level-low.safetensors"
LOW_SHA256 = "6201287c835cb86262bf04a10e1da530ebef1b4653d8f955d1d07faa5ead6d02"
LOW_UNTIL_HZ = 9000.0
N_FEATURES = 2 * (BELOW + RESIDUAL) + 3
_EPS = 1e-20


def below_edges(cutoff_hz: float) -> list[tuple[float, float]]:
    """The input bands under the cutoff, nearest first: ``[fc 2^-(j+1)/3, fc 2^-j/3)``."""
    return [(cutoff_hz * 2 ** (-(j + 1) / 3), cutoff_hz * 2 ** (-j / 3)) for j in range(BELOW)]


def above_edges(cutoff_hz: float, nyquist: float) -> list[tuple[float, float]]:
    """The predicted bands above the cutoff that start under 97 % of Nyquist (the top one cut
    at Nyquist): ``[fc 2^j/3, fc 2^(j+1)/3)``."""
    out = []
    for j in range(ABOVE):
        lo, hi = cutoff_hz * 2 ** (j / 3), cutoff_hz * 2 ** ((j + 1) / 3)
        if lo < 0.97 * nyquist:
            out.append((lo, min(hi, nyquist)))
    return out


def band_levels(power: np.ndarray, freqs: np.ndarray, edges: list[tuple[float, float]]
                ) -> np.ndarray:
    """Mean power (dB) of the bins of each band ``[lo, hi)`` (at least one bin) of ``power``
    (``[..., F]`` over ``freqs``): ``[..., len(edges)]``."""
    out = np.empty((*power.shape[:-1], len(edges)))
    for j, (lo, hi) in enumerate(edges):
        a = int(np.searchsorted(freqs, lo))
        b = max(int(np.searchsorted(freqs, hi)), a + 1)
        out[..., j] = 10 * np.log10(power[..., a:b].mean(axis=-1) + _EPS)
    return out


def residual_levels(power: np.ndarray, freqs: np.ndarray, cutoff_hz: float, nyquist: float
                    ) -> np.ndarray:
    """The levels (dB) of the first ``RESIDUAL`` bands above the cutoff, ``[..., RESIDUAL]``;
    -inf for those past Nyquist."""
    edges = above_edges(cutoff_hz, nyquist)[:RESIDUAL]
    out = np.full((*power.shape[:-1], RESIDUAL), -np.inf)
    out[..., :len(edges)] = band_levels(power, freqs, edges)
    return out


def reference_level(power: np.ndarray, freqs: np.ndarray, cutoff_hz: float) -> np.ndarray:
    """The level (dB) of the top octave under the cutoff, as the guard's reference."""
    kc = int(np.searchsorted(freqs, cutoff_hz))
    return 10 * np.log10(power[..., max(1, kc // 2):max(kc, 2)].mean(axis=-1) + _EPS)


@dataclass
class FeatureState:
    """The smoothing's running values per channel group (None before the first frame)."""

    rel: list[np.ndarray | None] = field(default_factory=list)
    ref: list[np.ndarray | None] = field(default_factory=list)


def _smooth(x: np.ndarray, alpha: float, last: Any) -> tuple[np.ndarray, Any]:
    """Exponential smoothing of ``x`` along axis 0 (``s += alpha (x - s)``), from ``last``
    (the first row when None); returns the smoothed rows and the new last value."""
    start = x[0] if last is None else last
    zi = (1 - alpha) * np.asarray(start, dtype=np.float64)[None]  # [1, features]
    y, _ = lfilter([alpha], [1.0, -(1.0 - alpha)], x, axis=0, zi=zi)
    return y, y[-1].copy()


def features(ref_db: np.ndarray, below_db: np.ndarray, residual_db: np.ndarray,
             cutoff_hz: float, alpha: float, state: FeatureState) -> np.ndarray:
    """The network's inputs ``[G, K, N_FEATURES]`` from the reference ``[G, K]``, the bands
    under the cutoff ``[G, K, BELOW]`` and the first ones above it ``[G, K, RESIDUAL]`` of
    ``K`` frames in order; ``alpha``: the smoothing's step per frame (hop / (``TAU_S`` x
    rate)); ``state`` carries it from call to call."""
    groups, frames = ref_db.shape
    if not state.rel:
        state.rel, state.ref = [None] * groups, [None] * groups
    out = np.empty((groups, frames, N_FEATURES))
    n = BELOW + RESIDUAL
    for g in range(groups):
        rel = np.clip(np.concatenate([below_db[g], residual_db[g]], axis=-1)
                      - ref_db[g][:, None], *REL_RANGE)
        rel_s, state.rel[g] = _smooth(rel, alpha, state.rel[g])
        ref_s, state.ref[g] = _smooth(ref_db[g][:, None], alpha, state.ref[g])
        out[g, :, :n] = rel
        out[g, :, n:2 * n] = rel_s
        out[g, :, -3] = ref_db[g] / 20
        out[g, :, -2] = (ref_db[g] - ref_s[:, 0]) / 10
        out[g, :, -1] = math.log2(cutoff_hz / 11025)
    return out


class BandLevelModel:
    """The predictor: ``predict(features)`` -> levels of the bands above the cutoff (dB
    relative to the reference), ``[..., ABOVE]``."""

    def __init__(self, tensors: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        self.meta = meta
        self.layers = [(tensors[f"w{i}"].astype(np.float64), tensors[f"b{i}"].astype(np.float64))
                       for i in range(3)]
        self.mean = tensors["mean"].astype(np.float64)
        self.scale = tensors["scale"].astype(np.float64)
        if self.mean.shape != (N_FEATURES,) or self.layers[-1][0].shape[0] != ABOVE:
            raise ModelError(f"band-level predictor of the wrong shape: {N_FEATURES} inputs and "
                             f"{ABOVE} outputs expected")

    def predict(self, feats: np.ndarray) -> np.ndarray:
        h = (feats - self.mean) / self.scale
        for i, (w, b) in enumerate(self.layers):
            # einsum, not ``@``: a matrix product calls NumPy's BLAS, whose threads spin
            # against the model's in the other thread (``upband enhance`` was ~15 % slower)
            h = np.einsum("...j,kj->...k", h, w) + b
            if i < len(self.layers) - 1:
                h = np.maximum(h, 0.0)
        return h

    @classmethod
    def load(cls, path: str | os.PathLike[str], sha256: str | None = None) -> BandLevelModel:
        """Read a predictor file (tensors and JSON only); ``sha256``: its expected digest."""
        if sha256 and file_sha256(path).lower() != sha256.lower():
            raise ModelError(f"{path}: SHA-256 mismatch; reinstall upband")
        try:
            meta = json.loads(read_metadata(path).get("upband", "{}"))
            tensors = {k: v.numpy() for k, v in read_tensors(path).items()}
        except (TensorFileError, json.JSONDecodeError) as exc:
            raise ModelError(f"{path}: not a band-level predictor ({exc})") from exc
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise ModelError(f"{path}: not a band-level predictor (format {FORMAT!r} expected)")
        try:
            return cls(tensors, meta)
        except KeyError as exc:
            raise ModelError(f"{path}: band-level predictor lacks tensor {exc}") from None


def shipped_path(name: str = SHIPPED_FILE) -> Path:
    return Path(str(importlib.resources.files("upband") / "pretrained" / name))


def shipped(cutoff_hz: float = 11025.0) -> BandLevelModel:
    """The shipped predictor for ``cutoff_hz``, checked against its SHA-256 (each loaded once
    per process)."""
    return _load(LOW_FILE) if cutoff_hz < LOW_UNTIL_HZ else _load(SHIPPED_FILE)


@lru_cache(maxsize=2)
def _load(name: str) -> BandLevelModel:
    sha = LOW_SHA256 if name == LOW_FILE else SHIPPED_SHA256
    return BandLevelModel.load(shipped_path(name), sha)
