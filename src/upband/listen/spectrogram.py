"""Spectrograms for the page: magnitudes in dB on a fixed scale, packed as bytes.

The page draws them itself (a canvas), so the server sends numbers, not pictures: a version's
mono downmix, Hann-windowed frames of :func:`upband.degrade.filters.stft_size` samples (2048
at 44.1 kHz), at most :data:`MAX_FRAMES` frames over the whole signal, the power of the bins
averaged into :data:`ROWS` equal frequency bands from 0 Hz to Nyquist, in dB relative to a
full-scale sine (0 dB) and quantised to bytes from :data:`DB_FLOOR` to 0 dB. One absolute scale
for every version makes the versions of an item directly comparable.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np

from upband.degrade.filters import stft_size

MAX_FRAMES = 1000
ROWS = 256
DB_FLOOR = -120.0


def spectrogram(audio: np.ndarray, sample_rate: int) -> dict[str, Any]:
    """The spectrogram of ``audio`` (float ``[C, T]`` or ``[T]``) as the page reads it.

    Returns a JSON-able dict: ``frames``, ``rows``, ``duration_s``, ``sample_rate``,
    ``db_floor`` and ``data``, the base64 of ``rows × frames`` bytes, lowest band first, each
    row in time order; byte ``b`` means ``db_floor · (1 − b / 255)`` dB.
    """
    x = np.asarray(audio, dtype=np.float64)
    mono = x.mean(axis=0) if x.ndim == 2 else x
    n = stft_size(sample_rate)
    t = mono.shape[-1]
    if t < n:
        mono = np.pad(mono, (0, n - t))
    count = min(MAX_FRAMES, max(1, (len(mono) - n) // max(1, n // 4) + 1))
    starts = np.linspace(0, len(mono) - n, count).astype(np.int64)
    window = np.hanning(n)
    frames = mono[starts[:, None] + np.arange(n)[None, :]] * window
    power = np.abs(np.fft.rfft(frames, axis=-1)) ** 2 * (2 / window.sum()) ** 2
    edges = np.linspace(0, power.shape[-1], ROWS + 1).astype(np.int64)
    edges[-1] = power.shape[-1]
    bands = np.add.reduceat(power, edges[:-1], axis=-1) / np.maximum(np.diff(edges), 1)
    with np.errstate(divide="ignore"):
        db = 10 * np.log10(np.maximum(bands, 1e-30))
    scaled = np.clip(255 * (1 - db / DB_FLOOR), 0, 255).round().astype(np.uint8)
    return {"frames": int(count), "rows": ROWS, "duration_s": t / sample_rate,
            "sample_rate": int(sample_rate), "db_floor": DB_FLOOR,
            "data": base64.b64encode(np.ascontiguousarray(scaled.T).tobytes()).decode("ascii")}
