"""Pair an estimate with its reference for scoring: one rate, one channel layout, one length.

What ``upband metrics REFERENCE ESTIMATE`` does before it scores, as library functions:

1. the estimate is resampled to the reference's rate (libsoxr, :func:`upband.audio.resample`);
2. channels: equal counts are kept; a mono signal is compared with every channel of the other
   (it is duplicated); other mismatches are refused;
3. length: with ``align``, a delay of up to 1 s is found by cross-correlation and removed, both
   signals cropped to their overlap (:func:`upband.metrics.align`, e.g. an MP3 decoded without
   its gapless header); otherwise both are cropped to the shorter length.

Every step taken is recorded as a one-line note. The evaluation protocols do not need this: they
degrade and restore the reference themselves, so rates, channels and lengths already agree.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from upband import audio
from upband.errors import UnsupportedFormatError
from upband.metrics.suite import align as align_signals


@dataclass(frozen=True)
class Pair:
    """A reference and an estimate ready to be scored together.

    Attributes:
        reference: float32 ``[C, T]`` at ``sample_rate``.
        estimate: float32 ``[C, T]``, the same shape as ``reference``.
        sample_rate: the reference's rate, in Hz.
        lag: the delay of the estimate relative to the reference that was removed, in samples
            (0 without ``align``).
        notes: what was done to make them comparable, one line each (empty when nothing was).
    """

    reference: np.ndarray
    estimate: np.ndarray
    sample_rate: int
    lag: int = 0
    notes: tuple[str, ...] = ()

    @property
    def frames(self) -> int:
        """Samples per channel of both signals."""
        return int(self.reference.shape[1])


def pair_signals(reference: np.ndarray, reference_rate: int, estimate: np.ndarray,
                 estimate_rate: int, *, align: bool = False) -> Pair:
    """Make ``estimate`` comparable with ``reference`` (steps in the module docstring).

    Args:
        reference: ``[C, T]`` float audio at ``reference_rate`` Hz.
        reference_rate: its sample rate in Hz; the pair's rate.
        estimate: ``[C', T']`` float audio at ``estimate_rate`` Hz; ``C'`` equals ``C`` or one
            of them is 1.
        estimate_rate: its sample rate in Hz.
        align: remove a delay of up to 1 s (cross-correlation) instead of cropping the end.

    Returns:
        The :class:`Pair`; the inputs are not modified.

    Raises:
        UnsupportedFormatError: channel counts that cannot be compared (e.g. 2 and 6).
        SpecError: with ``align``, signals that do not overlap once the delay is removed.
    """
    ref = np.asarray(reference, dtype=np.float32)
    est = np.asarray(estimate, dtype=np.float32)
    notes = []
    if estimate_rate != reference_rate:
        est = audio.resample(est, estimate_rate, reference_rate)
        notes.append(f"estimate resampled {estimate_rate} -> {reference_rate} Hz")
    if est.shape[0] != ref.shape[0]:
        if 1 not in (est.shape[0], ref.shape[0]):
            raise UnsupportedFormatError(f"cannot compare {ref.shape[0]} reference channels "
                                         f"with {est.shape[0]} estimate channels")
        est = audio.to_channels(est, ref.shape[0])
        ref = audio.to_channels(ref, est.shape[0])
        notes.append("mono compared with every channel")
    lag = 0
    if align:
        ref, est, lag = align_signals(ref, est, reference_rate)
        notes.append(f"estimate delayed by {lag} samples relative to the reference, removed")
    elif ref.shape[1] != est.shape[1]:
        notes.append(f"lengths differ ({ref.shape[1]} vs {est.shape[1]} samples), cropped")
        t = min(ref.shape[1], est.shape[1])
        ref, est = ref[:, :t], est[:, :t]
    return Pair(ref, est, reference_rate, lag, tuple(notes))


def pair_files(reference: str | os.PathLike[str], estimate: str | os.PathLike[str], *,
               align: bool = False) -> Pair:
    """Read two audio files and pair them with :func:`pair_signals`.

    Args:
        reference: path of the reference (the clean original).
        estimate: path of the estimate (a restored or degraded version of it).
        align: remove a delay of up to 1 s instead of cropping the end.

    Returns:
        The :class:`Pair` at the reference's rate.

    Raises:
        UpbandError: a file that cannot be read (missing, corrupt, unsupported) or a pair that
            cannot be compared (see :func:`pair_signals`).
    """
    ref, sr = audio.read(reference)
    est, sr_est = audio.read(estimate)
    return pair_signals(ref, sr, est, sr_est, align=align)
