"""Decimation and interpolation: the super-resolution input pipeline of Kuleshov et al. (2017).

Kuleshov, Enam & Ermon, "Audio Super Resolution using Neural Networks" (ICLR workshop 2017),
§4 "Datasets": the low-resolution input is made by "applying an order 8 Chebyshev type I
low-pass filter before subsampling the signal by the desired scaling ratio" r ∈ {2, 4, 6}
(at 16 kHz), and, "to ensure source/target series are of the same length, the source input is
pre-processed with cubic upsampling" — the cubic B-spline that is also their baseline.

:func:`downsample` is exactly ``scipy.signal.decimate(x, r, ftype='iir', zero_phase=True)``
(Chebyshev-I order 8, rp 0.05 dB, edge at 0.8 / r of Nyquist, forward-backward, keep every
r-th sample); written with second-order sections, which stay well conditioned at r = 6 where
(b, a) form loses accuracy. Low-rate sample k sits at full-rate index k·r.
"""

from __future__ import annotations

import numpy as np
from scipy import interpolate

from upband.audio import resample
from upband.degrade.filters import FilterSpec, design, sos_filter
from upband.errors import SpecError

METHODS = ("spline", "sinc", "zoh")
MAX_FACTOR = 32
#: The anti-alias filter of ``scipy.signal.decimate`` and of Kuleshov's pipeline.
ANTI_ALIAS = FilterSpec("cheby1", 8, rp=0.05)
#: Its passband edge as a fraction of the low rate's Nyquist frequency.
ANTI_ALIAS_EDGE = 0.8


def check_factor(r: int) -> int:
    """Return ``r`` as int; ``SpecError`` unless it is an integer from 2 to ``MAX_FACTOR``."""
    if isinstance(r, bool) or not isinstance(r, (int, np.integer)) or not 2 <= r <= MAX_FACTOR:
        raise SpecError(f"decimation factor must be an integer from 2 to {MAX_FACTOR}, got {r!r}")
    return int(r)


def downsample(x: np.ndarray, r: int) -> np.ndarray:
    """Anti-alias (zero-phase Chebyshev-I 8, rp 0.05 dB, edge 0.8 / r) and keep every r-th sample.

    ``x``: ``[..., T]`` float; returns float32 ``[..., ceil(T / r)]``; ``x`` is not modified.
    """
    r = check_factor(r)
    sos = design(ANTI_ALIAS, ANTI_ALIAS_EDGE / r, 2.0)  # fs = 2: frequencies relative to Nyquist
    return sos_filter(sos, x)[..., ::r].astype(np.float32)


def upsample(x: np.ndarray, r: int, method: str = "spline", length: int | None = None
             ) -> np.ndarray:
    """Interpolate ``x`` (``[..., T_low]``) by ``r`` along the last axis to ``length`` samples.

    Methods:
        * ``spline``: interpolating cubic spline (not-a-knot ends) through the low-rate samples
          placed at indices k·r — the same curve as Kuleshov's ``splrep``/``splev``; degree
          drops to T_low − 1 for fewer than 4 samples; samples past the last knot extrapolate.
        * ``sinc``: band-limited interpolation with libsoxr (``upband.audio.resample``).
        * ``zoh``: zero-order hold (each sample repeated r times; a (r − 1) / 2 sample lag).

    ``length`` defaults to ``T_low · r``; longer outputs repeat the last value for ``sinc`` and
    ``zoh``. Returns float32; ``x`` is not modified.
    """
    r = check_factor(r)
    if method not in METHODS:
        raise SpecError(f"unknown upsampling method {method!r}; choose one of {', '.join(METHODS)}")
    a = np.asarray(x, dtype=np.float64)
    t_low = a.shape[-1]
    n = t_low * r if length is None else length
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise SpecError(f"length must be a non-negative integer, got {length!r}")
    if t_low == 0:
        return np.zeros((*a.shape[:-1], n), np.float32)
    if method == "spline":
        knots = np.arange(t_low) * r
        y = interpolate.make_interp_spline(knots, a, k=min(3, t_low - 1), axis=-1)(np.arange(n))
    else:
        y = resample(a, 1, r) if method == "sinc" else np.repeat(a, r, axis=-1)
        y = y[..., :n]
        if y.shape[-1] < n:
            y = np.pad(y, [(0, 0)] * (y.ndim - 1) + [(0, n - y.shape[-1])], mode="edge")
    return np.asarray(y, dtype=np.float32)


def band_limit_by_decimation(x: np.ndarray, r: int, method: str = "spline") -> np.ndarray:
    """Kuleshov's network input: :func:`downsample` by r, then :func:`upsample` back to ``T``.

    ``x``: ``[..., T]``; returns float32 ``[..., T]``; ``x`` is not modified.
    """
    a = np.asarray(x)
    return upsample(downsample(a, r), r, method, length=a.shape[-1])

