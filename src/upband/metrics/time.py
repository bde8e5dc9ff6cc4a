"""Time-domain metrics: SNR (whole signal, segmental, high band) and SI-SDR, in dB.

SNR, segmental SNR and SI-SDR treat all channels of a signal as one vector, as Sulun & Davies do.
Definitions and which paper's table uses which: docs/readings/metrics.md.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.fft
from numpy.typing import NDArray

from upband.errors import SpecError
from upband.metrics._shapes import (
    MetricValue,
    as_value,
    check_min_hz,
    check_pair,
    check_rate,
    ratio_db,
)


def snr(reference: Any, estimate: Any) -> MetricValue:
    """Signal-to-noise ratio in dB, Sulun & Davies eq. 1 (Kuleshov eq. 2 on a whole signal).

    ``10 log10(sum x^2 / sum (x - x^)^2)`` with the sums over all channels and samples, i.e. a
    stereo signal is one vector (Sulun & Davies, "the signals are used in their stereo forms").
    Identical signals give ``+inf``; a silent reference with a non-silent estimate gives
    ``-inf`` (no signal, only error). Used by Sulun & Davies Table II, ARUNet and Lattner Table 2.
    """
    x, y, lead = check_pair(reference, estimate)
    signal = np.sum(x * x, axis=(-2, -1))
    noise = np.sum((x - y) ** 2, axis=(-2, -1))
    return as_value(ratio_db(signal, noise), lead)


def segmental_snr(reference: Any, estimate: Any, segment: int) -> MetricValue:
    """Kuleshov et al.'s SNR in dB: the mean over patches of each patch's :func:`snr`.

    The signal is cut into non-overlapping segments of ``segment`` samples (all channels of a
    segment form one vector); a trailing partial segment is dropped, as Kuleshov's patch
    extraction does. Segments whose reference is digital silence have no defined SNR and are left
    out of the mean (``nan`` when every segment is silent). A segment reproduced exactly
    contributes ``+inf``, so identical signals give ``+inf``. Used by Kuleshov Tables 2-3 (he
    trains and evaluates on 6000-8192-sample patches at 16 kHz).
    """
    if isinstance(segment, bool) or int(segment) != segment or segment <= 0:
        raise SpecError(f"segment must be a positive number of samples, got {segment!r}")
    segment = int(segment)
    x, y, lead = check_pair(reference, estimate)
    n, c, t = x.shape
    count = t // segment
    if count == 0:
        raise SpecError(f"signal of {t} samples is shorter than one segment of {segment}")
    xs = x[..., : count * segment].reshape(n, c, count, segment)
    ys = y[..., : count * segment].reshape(n, c, count, segment)
    signal = np.sum(xs * xs, axis=(1, 3))  # [N, count]
    noise = np.sum((xs - ys) ** 2, axis=(1, 3))
    per_segment = ratio_db(signal, noise)
    voiced = signal > 0
    values = np.full(n, np.nan)
    for i in range(n):
        if voiced[i].any():
            values[i] = np.mean(per_segment[i][voiced[i]])
    return as_value(values, lead)


def si_sdr(reference: Any, estimate: Any) -> MetricValue:
    """Scale-invariant signal-to-distortion ratio in dB (Le Roux et al., ICASSP 2019, eq. 4).

    ``alpha = <x^, x> / |x|^2``, ``10 log10(|alpha x|^2 / |alpha x - x^|^2)`` with all channels
    as one vector (one scale for the whole signal, as :func:`snr`) and no mean removal. Invariant
    to any non-zero gain of the estimate. ``+inf`` for an exact copy (a scaled copy stops at the
    float64 rounding floor, about 150 dB); ``-inf`` for a silent estimate or a silent reference
    with a non-silent estimate; ``+inf`` when both are silent.
    """
    x, y, lead = check_pair(reference, estimate)
    energy = np.sum(x * x, axis=(-2, -1))
    dot = np.sum(x * y, axis=(-2, -1))
    alpha = np.divide(dot, energy, out=np.zeros_like(dot), where=energy > 0)
    target = alpha[:, None, None] * x
    target_energy = np.sum(target * target, axis=(-2, -1))
    noise_energy = np.sum((y - target) ** 2, axis=(-2, -1))
    values = ratio_db(target_energy, noise_energy)
    # a silent estimate of a non-silent reference recovers nothing (alpha = 0 makes it 0 / 0)
    values[(np.sum(y * y, axis=(-2, -1)) == 0) & (energy > 0)] = -np.inf
    return as_value(values, lead)


def _highpass(x: NDArray[np.float64], sample_rate: int, min_hz: float) -> NDArray[np.float64]:
    """Zero every rFFT bin (of the whole signal, along T) below ``min_hz``."""
    t = x.shape[-1]
    spectrum = scipy.fft.rfft(x, axis=-1)
    freqs = np.fft.rfftfreq(t, d=1.0 / sample_rate)
    spectrum[..., freqs < min_hz] = 0.0
    return np.asarray(scipy.fft.irfft(spectrum, n=t, axis=-1), dtype=np.float64)


def snr_highband(reference: Any, estimate: Any, sample_rate: int, min_hz: float) -> MetricValue:
    """SNR in dB (as :func:`snr`) of the content at or above ``min_hz`` Hz.

    Both signals are high-passed ideally, by zeroing the bins below ``min_hz`` of the FFT of the
    whole signal, then compared as in :func:`snr`. Measures how well a model restores the band
    above a cutoff, waveform and phase included; ``-inf`` for an estimate with nothing there.
    """
    sr = check_rate(sample_rate)
    f0 = check_min_hz(min_hz, sr)
    x, y, lead = check_pair(reference, estimate)
    xh, yh = _highpass(x, sr, f0), _highpass(y, sr, f0)
    signal = np.sum(xh * xh, axis=(-2, -1))
    noise = np.sum((xh - yh) ** 2, axis=(-2, -1))
    return as_value(ratio_db(signal, noise), lead)
