"""The do-no-harm band merge: the input below its cutoff, the model above it.

``y = m + h * (x - m)`` where ``x`` is the input and ``m`` the model's output, both at the output
rate, and ``h`` a linear-phase (Kaiser FIR) low-pass whose pass band ends at the detected cutoff
and whose stop band starts ``MERGE_TRANSITION`` above it: below the cutoff the output is the
input itself (to -90 dB), above the transition it is the model's.
"""

from __future__ import annotations

import numpy as np
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


class BandMerge:
    """Streams ``y = m + h * (x − m)``: the input ``x`` below the cutoff, the model ``m`` above.

    ``push(x, m, last)`` takes equal-length aligned blocks and returns the final samples.
    """

    def __init__(self, cutoff_hz: float, sample_rate: int, channels: int) -> None:
        self.h = merge_filter(cutoff_hz, sample_rate)
        self.delay = (len(self.h) - 1) // 2
        self._d = np.zeros((channels, self.delay))  # x - m history, zero before the start
        self._m = np.zeros((channels, 0))

    def push(self, x: np.ndarray, m: np.ndarray, last: bool = False) -> np.ndarray:
        """Feed aligned input ``x`` and model ``m`` blocks (``[C, n]``); return the merged
        samples that are final (float32 ``[C, k]``; all of them once ``last``)."""
        self._d = np.concatenate([self._d, x.astype(np.float64) - m], axis=1)
        self._m = np.concatenate([self._m, m.astype(np.float64)], axis=1)
        if last:
            self._d = np.concatenate([self._d, np.zeros((self._d.shape[0], self.delay))], axis=1)
        n = min(self._m.shape[1], self._d.shape[1] - 2 * self.delay)
        if n <= 0:
            return np.zeros((self._m.shape[0], 0), np.float32)
        low = signal.oaconvolve(self._d[:, :n + 2 * self.delay], self.h[None], mode="valid",
                                axes=1)
        out = self._m[:, :n] + low
        self._d, self._m = self._d[:, n:], self._m[:, n:]
        return out.astype(np.float32)
