"""Systems that are not networks: the input itself, spline and sinc interpolation, a DSP
spectral-band-replication (SBR) baseline, and an oracle.

Every baseline maps an :class:`Observation` (what a system may see of one degraded file) to a
``[C, T]`` float32 estimate at the protocol's rate. Definitions:

* ``input``: the degraded signal itself (for a decimation condition: the decimated signal
  interpolated back the condition's way -- cubic spline for Kuleshov's presets).
* ``spline``: Kuleshov's cubic-spline baseline: the decimated signal interpolated by an
  interpolating cubic spline (:func:`upband.degrade.upsample`). A low-pass or codec condition
  keeps the full rate, and a spline through every sample reproduces it, so there it **equals
  the input**.
* ``sinc``: band-limited (libsoxr VHQ) interpolation of the decimated signal. For low-pass and
  codec conditions no honest resampling definition exists (the signal is already at the full
  rate; resampling down to the cutoff and back would only remove the transition band), so it
  **equals the input** there too.
* ``sbr``: :func:`sbr` at the condition's known band edge (a decimation condition: the
  anti-alias filter's edge 0.8 x low-rate Nyquist; a low-pass: its cutoff), or at the cutoff
  that :func:`upband.analysis.detect_bandwidth` measures on the degraded file (codecs). For a
  decimation condition it starts from the ``sinc`` interpolation.
* ``oracle``: the clean reference (reaches every metric's limit; a check of the pipeline).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import signal

from upband.audio import fit_length
from upband.degrade.filters import stft_size
from upband.degrade.presets import Params
from upband.degrade.resampling import upsample
from upband.errors import SpecError

#: No SBR above this fraction of Nyquist (nothing left to extend).
SBR_MAX_FRACTION = 0.95
#: The envelope slope is fitted on the source octave up to this fraction of the cutoff (the
#: last few per cent lie in the filter's transition band).
SBR_FIT_TOP = 0.9
#: Floor of the long-term power spectrum, relative to its maximum, before the log.
SBR_FLOOR = 1e-12


@dataclass(frozen=True)
class Observation:
    """What a system sees of one degraded file.

    ``degraded``: float32 ``[C, T]`` at ``sample_rate`` (the network input). ``low_rate``: the
    decimated signal ``[C, ceil(T / r)]`` of a decimation condition (else None).
    ``cutoff_hz``: the band edge (known or measured). ``reference`` is the clean signal and is
    read only by the ``oracle``.
    """

    degraded: np.ndarray
    sample_rate: int
    params: Params
    cutoff_hz: float
    low_rate: np.ndarray | None = None
    r: int | None = None
    reference: np.ndarray | None = None


def _input(obs: Observation) -> np.ndarray:
    return obs.degraded


def _interpolated(method: str) -> Callable[[Observation], np.ndarray]:
    def run(obs: Observation) -> np.ndarray:
        if obs.low_rate is None or obs.r is None:
            return obs.degraded  # already at the full rate: see the module docstring
        return upsample(obs.low_rate, obs.r, method, length=obs.degraded.shape[-1])

    return run


def _sbr(obs: Observation) -> np.ndarray:
    base = _interpolated("sinc")(obs)
    return sbr(base, obs.sample_rate, obs.cutoff_hz)


def _oracle(obs: Observation) -> np.ndarray:
    if obs.reference is None:
        raise SpecError("the oracle needs the reference")
    return obs.reference


BASELINES: dict[str, Callable[[Observation], np.ndarray]] = {
    "input": _input,
    "spline": _interpolated("spline"),
    "sinc": _interpolated("sinc"),
    "sbr": _sbr,
    "oracle": _oracle,
}
DEFAULT_BASELINES = ("input", "spline", "sinc", "sbr")

#: One line per baseline for the report.
DESCRIPTIONS = {
    "input": "the degraded signal itself",
    "spline": "cubic spline interpolation of the decimated signal (Kuleshov's baseline); "
              "equals the input for low-pass and codec conditions",
    "sinc": "libsoxr (VHQ, band-limited) interpolation of the decimated signal; equals the "
            "input for low-pass and codec conditions",
    "sbr": "DSP spectral band replication: the top octave below the cutoff translated upward "
           "in the STFT domain, shaped by a power-law envelope fitted to that octave, filling "
           "only the energy the input lacks; the input is kept below the cutoff",
    "oracle": "the clean reference (metric limits)",
}


def sbr(x: np.ndarray, sample_rate: int, cutoff_hz: float, *, n_fft: int | None = None
        ) -> np.ndarray:
    """Spectral band replication of ``x`` (``[..., T]`` float at ``sample_rate``) above
    ``cutoff_hz``. Pure: returns float32 of ``x``'s shape.

    1. STFT (Hann, ``n_fft`` = :func:`upband.degrade.filters.stft_size`, 2048 at 44.1 kHz,
       hop n_fft / 4); ``k_c`` is the first bin at or above the cutoff and the source band is
       the octave below it, bins ``[k_c / 2, k_c)``.
    2. Every bin ``k >= k_c`` receives the complex value of source bin
       ``k_c / 2 + (k - k_c) mod (k_c - k_c / 2)`` (the octave translated upward, repeated up to
       Nyquist), frame by frame.
    3. Envelope: the long-term power of the source octave (all frames and channels) is fitted by
       least squares as ``log P = a + b log f`` (``b`` clamped at 0: never rising); each copied
       bin is scaled by ``(f_target / f_source) ** (b / 2)``, so the copy continues the fitted
       trend of its own frame's level.
    4. Only the missing energy is added: a copied bin of power ``P_d`` over an input bin of
       power ``P_x`` is scaled by ``sqrt(max(0, 1 - P_x / P_d))`` (nothing where the input's
       transition band is already as loud as the envelope).
    5. The inverse STFT of the added bins (zero below ``k_c``) is added to ``x``, so the input
       itself is kept unchanged below the cutoff (up to the window's leakage of the added band).

    A cutoff at or above ``SBR_MAX_FRACTION`` of Nyquist returns ``x`` unchanged.
    """
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 0:
        raise SpecError("audio must have a time axis, got a scalar")
    t = a.shape[-1]
    if not 0 < cutoff_hz < SBR_MAX_FRACTION * sample_rate / 2 or t == 0:
        return a.astype(np.float32)
    n = n_fft or stft_size(sample_rate)
    hop = n // 4
    kw = {"fs": sample_rate, "window": "hann", "nperseg": n, "noverlap": n - hop}
    padded = fit_length(a, max(t, n))
    freqs, _, spec = signal.stft(padded, axis=-1, **kw)  # [..., F, L]
    kc = int(np.ceil(cutoff_hz * n / sample_rate))
    ks = kc // 2
    n_bins = freqs.shape[0]
    if ks < 2 or kc >= n_bins:
        return a.astype(np.float32)
    width = kc - ks
    targets = np.arange(kc, n_bins)
    sources = ks + (targets - kc) % width
    power = np.abs(spec) ** 2
    long_term = power.reshape(-1, n_bins, power.shape[-1]).mean(axis=(0, 2))
    top = max(ks + 2, int(SBR_FIT_TOP * kc))
    fit_bins = np.arange(ks, top)
    floor = max(float(long_term.max()), 1e-300) * SBR_FLOOR
    slope = float(np.polyfit(np.log(freqs[fit_bins]), np.log(long_term[fit_bins] + floor),
                             1)[0])
    slope = min(slope, 0.0)
    gain = (freqs[targets] / freqs[sources]) ** (slope / 2.0)
    copy = spec[..., sources, :] * gain[:, None]
    wanted = np.abs(copy) ** 2
    have = power[..., targets, :]
    fill = np.sqrt(np.clip(1.0 - np.divide(have, wanted, out=np.ones_like(have),
                                           where=wanted > 0), 0.0, 1.0))
    added = np.zeros_like(spec)
    added[..., targets, :] = copy * fill
    _, extra = signal.istft(added, **kw)
    return (a + fit_length(extra, t)).astype(np.float32)
