"""The do-no-harm band merge: the input below its cutoff, the model above it.

``y = m + h * (x - m)`` where ``x`` is the input and ``m`` the model's output, both at the output
rate, and ``h`` a linear-phase (Kaiser FIR) low-pass whose pass band ends at the detected cutoff
and whose stop band starts ``MERGE_TRANSITION`` above it: below the cutoff the output is the
input itself (to -90 dB), above the transition it is the model's.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import fft as sp_fft
from scipy import signal

#: Crossover of the merge: pass band to the cutoff, stop band ``MERGE_TRANSITION`` x cutoff above.
MERGE_TRANSITION = 0.08
#: Attenuation of the merge FIR's stop band and ripple of its pass band (dB).
MERGE_ATTENUATION_DB = 90.0


def merge_filter(cutoff_hz: float, sample_rate: int) -> np.ndarray:
    """Linear-phase Kaiser low-pass: pass band to ``cutoff_hz``, stop band from
    ``(1 + MERGE_TRANSITION) * cutoff_hz``, ``MERGE_ATTENUATION_DB`` down; odd length."""
    nyq = sample_rate / 2
    width = MERGE_TRANSITION * cutoff_hz
    numtaps, beta = signal.kaiserord(MERGE_ATTENUATION_DB, width / nyq)
    numtaps |= 1
    return signal.firwin(numtaps, cutoff_hz + width / 2, window=("kaiser", beta),
                         fs=sample_rate).astype(np.float64)


class OverlapSave:
    """Fixed FIRs of one odd length, applied by overlap-save FFTs of at least four filter
    lengths (the compensation's three FIRs in half the time of scipy's ``oaconvolve``, the same
    values to rounding). :meth:`spectra` transforms a signal once for any number of them, in
    the signal's own precision."""

    def __init__(self, firs: Sequence[np.ndarray]) -> None:
        self.taps = len(firs[0])
        self.nfft = 1 << (4 * self.taps - 1).bit_length()
        self.step = self.nfft - self.taps + 1  # outputs per segment
        self.firs = [sp_fft.rfft(np.asarray(h, np.float64), self.nfft) for h in firs]

    def spectra(self, a: np.ndarray, n: int) -> np.ndarray:
        """Spectra of the segments of ``a`` (``[C, n + taps - 1]``) behind ``n`` outputs."""
        spans = -(-n // self.step)
        pad = np.zeros((a.shape[0], spans * self.step + self.taps - 1 - a.shape[1]), a.dtype)
        segments = np.lib.stride_tricks.sliding_window_view(
            np.concatenate([a, pad], axis=1), self.nfft, axis=1)[:, ::self.step][:, :spans]
        return sp_fft.rfft(segments, axis=-1)

    def back(self, spectrum: np.ndarray, n: int) -> np.ndarray:
        """The ``n`` valid outputs (``[C, n]``) of segment spectra times filter spectra."""
        y = sp_fft.irfft(spectrum, self.nfft, axis=-1)[..., self.taps - 1:]
        return y.reshape(y.shape[0], -1)[:, :n]


class BandMerge:
    """Streams ``y = m + h * (x − m)``: the input ``x`` below the cutoff, the model ``m`` above.

    ``push(x, m, last)`` takes equal-length aligned blocks and returns the final samples. In
    single precision: the merge is the last stage, and its rounding (the output moves by less
    than -130 dB of its energy) costs less time than double's. (The roll-off compensation,
    whose output the guard reads down to the silence before a note, stays in double.)
    """

    def __init__(self, cutoff_hz: float, sample_rate: int, channels: int) -> None:
        self.h = merge_filter(cutoff_hz, sample_rate)
        self._fir = OverlapSave([self.h])
        self._h = self._fir.firs[0].astype(np.complex64)
        self.delay = (len(self.h) - 1) // 2
        self._d = np.zeros((channels, self.delay), np.float32)  # x - m, zero before the start
        self._m = np.zeros((channels, 0), np.float32)

    def push(self, x: np.ndarray, m: np.ndarray, last: bool = False) -> np.ndarray:
        """Feed aligned input ``x`` and model ``m`` blocks (``[C, n]``); return the merged
        samples that are final (float32 ``[C, k]``; all of them once ``last``)."""
        m = m.astype(np.float32)
        self._d = np.concatenate([self._d, x.astype(np.float32) - m], axis=1)
        self._m = np.concatenate([self._m, m], axis=1)
        if last:
            pad = np.zeros((self._d.shape[0], self.delay), np.float32)
            self._d = np.concatenate([self._d, pad], axis=1)
        n = min(self._m.shape[1], self._d.shape[1] - 2 * self.delay)
        if n <= 0:
            return np.zeros((self._m.shape[0], 0), np.float32)
        fir = self._fir
        low = fir.back(fir.spectra(self._d[:, :n + 2 * self.delay], n) * self._h, n)
        out = self._m[:, :n] + low
        self._d, self._m = self._d[:, n:], self._m[:, n:]
        return out.astype(np.float32)
