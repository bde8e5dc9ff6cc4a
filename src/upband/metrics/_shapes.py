"""Shape checks and the small helpers every metric shares (private to :mod:`upband.metrics`)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from numpy.typing import NDArray

from upband.errors import NonFiniteAudioError, SpecError

PathLike = str | os.PathLike[str]
#: A metric's value: ``float`` for one signal, ``ndarray`` over the leading (batch) dims.
MetricValue = float | NDArray[np.float64]


def check_pair(reference: Any, estimate: Any
               ) -> tuple[NDArray[np.float64], NDArray[np.float64], tuple[int, ...]]:
    """Check and flatten a (reference, estimate) pair to float64 ``[N, C, T]`` + leading shape."""
    x = np.asarray(reference, dtype=np.float64)
    y = np.asarray(estimate, dtype=np.float64)
    if x.shape != y.shape:
        raise SpecError(f"reference and estimate shapes differ: {x.shape} vs {y.shape}")
    if x.ndim == 0:
        raise SpecError("metrics need audio shaped [T] or [..., C, T], got a scalar")
    if x.ndim == 1:
        x, y = x[None], y[None]
    if x.shape[-1] == 0 or x.shape[-2] == 0:
        raise SpecError(f"metrics need at least one channel and one sample, got {x.shape}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise NonFiniteAudioError("reference or estimate holds NaN or infinite samples")
    lead = x.shape[:-2]
    c, t = x.shape[-2:]
    return x.reshape(-1, c, t), y.reshape(-1, c, t), lead


def as_value(values: NDArray[np.float64], lead: tuple[int, ...]) -> MetricValue:
    """One value per flattened item -> float (unbatched) or ndarray shaped ``lead``."""
    if lead == ():
        return float(values[0])
    return values.reshape(lead)


def ratio_db(signal: NDArray[np.float64], noise: NDArray[np.float64]) -> NDArray[np.float64]:
    """``10 log10(signal / noise)`` of energies with the limits made explicit.

    ``noise == 0`` gives ``+inf`` (a perfect estimate, also when both are silent); otherwise
    ``signal == 0`` gives ``-inf`` (an estimate of pure error). No warnings, never NaN.
    """
    out = np.empty(np.broadcast(signal, noise).shape, dtype=np.float64)
    perfect = noise == 0
    nothing = (signal == 0) & ~perfect
    ok = ~perfect & ~nothing
    out[perfect] = np.inf
    out[nothing] = -np.inf
    out[ok] = 10.0 * np.log10(signal[ok] / noise[ok])
    return out


def check_rate(sample_rate: int) -> int:
    """``sample_rate`` as an ``int`` of Hz; ``SpecError`` unless it is a positive integer."""
    if isinstance(sample_rate, bool) or int(sample_rate) != sample_rate or sample_rate <= 0:
        raise SpecError(f"sample_rate must be a positive integer in Hz, got {sample_rate!r}")
    return int(sample_rate)


def check_min_hz(min_hz: float, sample_rate: int) -> float:
    """``min_hz`` as a float; ``SpecError`` unless it lies in [0, Nyquist) at ``sample_rate``."""
    if not 0.0 <= min_hz < sample_rate / 2.0:
        raise SpecError(
            f"min_hz must lie in [0, {sample_rate / 2:g}) Hz at {sample_rate} Hz, got {min_hz:g}"
        )
    return float(min_hz)
