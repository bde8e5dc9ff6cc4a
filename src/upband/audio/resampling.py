"""Resampling with libsoxr: :func:`resample` (whole arrays), :class:`StreamResampler` (block by
block, same result) and the exact output length both use.

libsoxr (``python-soxr``) with its "VHQ" recipe. We chose it over julius because it handles any
pair of rates (44 100 -> 48 000 is not a small integer ratio), keeps a linear-phase pass band to
about 91 % of the lower Nyquist rate with a stop band below -170 dB, streams block by block with
exactly the same result as one pass, runs in optimised C without torch on the path, and is the
resampler that audio engineers already trust (SoX). julius is a windowed-sinc resampler in torch
whose cost grows with the reduced ratio and whose stop band is far shallower.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import soxr

#: Upsampled content ends below the input's Nyquist: the fraction of it where libsoxr's VHQ
#: response is down 0.1 dB (measured on white noise: 0.951 at 22 050 -> 44 100 Hz, 0.954 at
#: 16 000, 0.945 at 32 000; the smallest is kept).
PASSBAND = 0.945


def resampled_length(frames: int, sr_in: int, sr_out: int) -> int:
    """The exact output length upband uses for ``frames`` input frames: round(frames * ratio)."""
    return (frames * sr_out + sr_in // 2) // sr_in


def resample(audio: np.ndarray, sr_in: int, sr_out: int, *, quality: str = "VHQ") -> np.ndarray:
    """Resample along the last axis (any leading shape) with libsoxr.

    The output has exactly ``resampled_length(T, sr_in, sr_out)`` samples and is time-aligned
    with the input (linear phase, delay compensated). Returns float32; never modifies ``audio``.
    """
    x = np.asarray(audio, dtype=np.float32)
    if sr_in == sr_out:
        return x.copy()
    if sr_in <= 0 or sr_out <= 0:
        raise ValueError(f"sample rates must be positive, got {sr_in} -> {sr_out}")
    lead, t = x.shape[:-1], x.shape[-1]
    n_out = resampled_length(t, sr_in, sr_out)
    if t == 0:
        return np.zeros((*lead, 0), np.float32)
    flat = x.reshape(-1, t)
    y = soxr.resample(np.ascontiguousarray(flat.T), sr_in, sr_out, quality=quality)
    y = np.asarray(y, dtype=np.float32).T
    y = fit_length(y, n_out)
    return np.ascontiguousarray(y).reshape(*lead, n_out)


def fit_length(y: np.ndarray, n: int) -> np.ndarray:
    """Crop or zero-pad the last axis of ``y`` to exactly ``n`` samples."""
    if y.shape[-1] >= n:
        return y[..., :n]
    pad = np.zeros((*y.shape[:-1], n - y.shape[-1]), y.dtype)
    return np.concatenate([y, pad], axis=-1)


class StreamResampler:
    """Resample ``[C, n]`` blocks one after another; the concatenation equals ``resample``.

    Call ``process(block)`` for each block and ``process(last_block, last=True)`` (or
    ``flush()``) at the end; the total output is exactly ``resampled_length(total_in, ...)``.
    """

    def __init__(self, sr_in: int, sr_out: int, channels: int, *, quality: str = "VHQ") -> None:
        self.sr_in, self.sr_out, self.channels = int(sr_in), int(sr_out), int(channels)
        self._identity = self.sr_in == self.sr_out
        self._stream: Any = None if self._identity else soxr.ResampleStream(
            self.sr_in, self.sr_out, self.channels, dtype="float32", quality=quality)
        self.frames_in = 0
        self.frames_out = 0

    def process(self, block: np.ndarray, last: bool = False) -> np.ndarray:
        a = np.asarray(block, dtype=np.float32)
        if a.ndim != 2 or a.shape[0] != self.channels:
            raise ValueError(f"expected a [{self.channels}, n] block, got shape {a.shape}")
        self.frames_in += a.shape[1]
        if self._identity:
            self.frames_out += a.shape[1]
            return a.copy()
        y = self._stream.resample_chunk(np.ascontiguousarray(a.T), last=last)
        y = np.asarray(y, dtype=np.float32).T
        if last:
            y = fit_length(y, resampled_length(self.frames_in, self.sr_in, self.sr_out)
                            - self.frames_out)
        else:  # never emit more than the exact total can hold
            room = resampled_length(self.frames_in, self.sr_in, self.sr_out) - self.frames_out
            y = y[:, :max(room, 0)]
        self.frames_out += y.shape[1]
        return np.ascontiguousarray(y)

    def flush(self) -> np.ndarray:
        return self.process(np.zeros((self.channels, 0), np.float32), last=True)
