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
  decimation condition it starts from the ``sinc`` interpolation. ``sbr-6`` / ``-12`` / ``-18``:
  the same with its added band 6 / 12 / 18 dB quieter.
* ``oracle``: the clean reference (reaches every metric's limit; a check of the pipeline).
* ``oracle-band``: the input below the band edge, the clean reference above it
  (:func:`oracle_band`): what restoring the band perfectly is worth, apart from a codec's noise
  in the kept band.
* ``oracle-envelope`` and ``oracle-envelope-6`` / ``-12`` / ``-18``: the input plus noise
  above the band edge whose energy follows the reference's in sixth-octave bands, frame by
  frame, at its level or 6 / 12 / 18 dB under it (:func:`oracle_envelope`): a band of the
  right level and timing but no fine structure, which is the most a generated band can know
  of the missing one; it says what a band at a given level brings in ViSQOL and LSD and costs
  in SNR.
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
#: Levels (dB under the reference's, or sbr's own) of the ``oracle-envelope-N`` and ``sbr-N``
#: baselines.
ENVELOPE_ORACLE_DB = (6, 12, 18)
#: Bands of the envelope oracle per octave.
ENVELOPE_BANDS_PER_OCTAVE = 6


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


def _sbr(level_db: float = 0.0) -> Callable[[Observation], np.ndarray]:
    def run(obs: Observation) -> np.ndarray:
        base = _interpolated("sinc")(obs)
        return sbr(base, obs.sample_rate, obs.cutoff_hz, level_db=level_db)

    return run


def _oracle(obs: Observation) -> np.ndarray:
    if obs.reference is None:
        raise SpecError("the oracle needs the reference")
    return obs.reference


def _oracle_band(obs: Observation) -> np.ndarray:
    return oracle_band(obs.degraded, _oracle(obs), obs.sample_rate, obs.cutoff_hz)


def _oracle_envelope(level_db: float) -> Callable[[Observation], np.ndarray]:
    def run(obs: Observation) -> np.ndarray:
        return oracle_envelope(obs.degraded, _oracle(obs), obs.sample_rate, obs.cutoff_hz,
                               level_db=level_db)

    return run


BASELINES: dict[str, Callable[[Observation], np.ndarray]] = {
    "input": _input,
    "spline": _interpolated("spline"),
    "sinc": _interpolated("sinc"),
    "sbr": _sbr(),
    **{f"sbr-{d}": _sbr(-float(d)) for d in ENVELOPE_ORACLE_DB},
    "oracle": _oracle,
    "oracle-band": _oracle_band,
    "oracle-envelope": _oracle_envelope(0.0),
    **{f"oracle-envelope-{d}": _oracle_envelope(-float(d)) for d in ENVELOPE_ORACLE_DB},
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
    **{f"sbr-{d}": f"sbr with its added band {d} dB quieter" for d in ENVELOPE_ORACLE_DB},
    "oracle": "the clean reference (metric limits)",
    "oracle-band": "the input below the band edge and the clean reference above it (a perfect "
                   "band, the codec's noise below the edge kept)",
    "oracle-envelope": "the input plus noise above the band edge whose energy follows the "
                       "reference's in sixth-octave bands, frame by frame (the right level and "
                       "timing, no fine structure)",
    **{f"oracle-envelope-{d}": f"oracle-envelope {d} dB under the reference's level"
       for d in ENVELOPE_ORACLE_DB},
}


def sbr(x: np.ndarray, sample_rate: int, cutoff_hz: float, *, n_fft: int | None = None,
        level_db: float = 0.0) -> np.ndarray:
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
    5. The inverse STFT of the added bins (zero below ``k_c``), scaled by ``level_db`` (0: as
       computed), is added to ``x``, so the input itself is kept unchanged below the cutoff
       (up to the window's leakage of the added band).

    A cutoff at or above ``SBR_MAX_FRACTION`` of Nyquist returns ``x`` unchanged.
    """
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 0:
        raise SpecError("audio must have a time axis, got a scalar")
    t = a.shape[-1]
    if not 0 < cutoff_hz < SBR_MAX_FRACTION * sample_rate / 2 or t == 0:
        return a.astype(np.float32)
    kw = _stft_kw(sample_rate, n_fft)
    n = kw["nperseg"]
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
    return (a + 10.0 ** (level_db / 20.0) * fit_length(extra, t)).astype(np.float32)


def _stft_kw(sample_rate: int, n_fft: int | None = None) -> dict:
    """The sbr frames: Hann, ``n_fft`` (default :func:`~upband.degrade.filters.stft_size`),
    hop a quarter of it."""
    n = n_fft or stft_size(sample_rate)
    return {"fs": sample_rate, "window": "hann", "nperseg": n, "noverlap": n - n // 4}


def _spectra(x: np.ndarray, y: np.ndarray, sample_rate: int
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    a = np.asarray(x, dtype=np.float64)
    b = np.asarray(y, dtype=np.float64)
    if a.shape != b.shape or a.ndim == 0:
        raise SpecError(f"input {a.shape} and reference {b.shape} must have one shape")
    kw = _stft_kw(sample_rate)
    n = max(a.shape[-1], kw["nperseg"])
    freqs, _, sx = signal.stft(fit_length(a, n), axis=-1, **kw)
    _, _, sy = signal.stft(fit_length(b, n), axis=-1, **kw)
    return freqs, sx, sy, kw


def oracle_band(x: np.ndarray, reference: np.ndarray, sample_rate: int, cutoff_hz: float
                ) -> np.ndarray:
    """``x`` below ``cutoff_hz`` and ``reference`` above it, joined in the STFT domain (the
    sbr frames; the bins at or above the cutoff's bin come from ``reference``). float32 of
    ``x``'s shape; ``x`` itself where the cutoff is at or above Nyquist."""
    t = np.shape(x)[-1]
    if not 0 < cutoff_hz < sample_rate / 2 or t == 0:
        return np.asarray(x, np.float32)
    freqs, sx, sy, kw = _spectra(x, reference, sample_rate)
    high = freqs >= cutoff_hz
    sx[..., high, :] = sy[..., high, :]
    _, out = signal.istft(sx, **kw)
    return fit_length(out, t).astype(np.float32)


def oracle_envelope(x: np.ndarray, reference: np.ndarray, sample_rate: int, cutoff_hz: float,
                    *, level_db: float = 0.0, seed: int = 0) -> np.ndarray:
    """``x`` plus noise above ``cutoff_hz`` whose energy follows ``reference``'s.

    On the sbr frames (Hann, :func:`upband.degrade.filters.stft_size`, hop a quarter), from the
    cutoff's bin up, bins are grouped in bands of 1/:data:`ENVELOPE_BANDS_PER_OCTAVE` octave
    (at least one bin). In every band, frame and channel the target is the reference's mean
    bin power times ``10 ** (level_db / 10)``; what ``x`` lacks of it (never less than
    nothing) is added as complex Gaussian noise (seeded by ``seed``) of that mean power, so
    what ``x`` still holds above the cutoff is kept. float32 of ``x``'s shape.
    """
    t = np.shape(x)[-1]
    if not 0 < cutoff_hz < sample_rate / 2 or t == 0:
        return np.asarray(x, np.float32)
    freqs, sx, sy, kw = _spectra(x, reference, sample_rate)
    k0 = int(np.searchsorted(freqs, cutoff_hz))
    if k0 >= freqs.size:
        return np.asarray(x, np.float32)
    rng = np.random.default_rng(seed)
    added = np.zeros_like(sx)
    scale = 10.0 ** (level_db / 10.0)
    # independent noise in overlapping frames loses power in the inverse STFT (to 1 / the
    # frames' overlap factor, measured again in the same frames): made up for here
    redundancy = kw["nperseg"] / (kw["nperseg"] - kw["noverlap"])
    lo = k0
    while lo < freqs.size:
        hi_f = max(freqs[lo], freqs[1]) * 2.0 ** (1.0 / ENVELOPE_BANDS_PER_OCTAVE)
        hi = max(lo + 1, int(np.searchsorted(freqs, hi_f)))
        want = scale * np.mean(np.abs(sy[..., lo:hi, :]) ** 2, axis=-2, keepdims=True)
        have = np.mean(np.abs(sx[..., lo:hi, :]) ** 2, axis=-2, keepdims=True)
        shape = sx[..., lo:hi, :].shape
        noise = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) / np.sqrt(2.0)
        added[..., lo:hi, :] = noise * np.sqrt(redundancy * np.maximum(want - have, 0.0))
        lo = hi
    _, extra = signal.istft(added, **kw)
    return (np.asarray(x, np.float64) + fit_length(extra, t)).astype(np.float32)
