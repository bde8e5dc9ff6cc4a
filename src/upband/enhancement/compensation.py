"""Roll-off compensation: give back what a low-pass filter only attenuated.

A filter does not remove the band above its cutoff at once: a zero-phase Butterworth 6 at
11 025 Hz leaves the content at 12 kHz 11 dB down and at 14 kHz 25 dB down, still well above a
16-bit file's noise floor. That part of the band is the *input's* own, and the exact inverse of
the filter would give it back sample for sample (a gain in SNR no generated band can have).
The detector has already fitted the filter (:class:`upband.analysis.detect.Rolloff`: a
Butterworth template at the cutoff over a power-law trend, sinking into a floor); this module
inverts that fit, as far as the input supports it:

* **Inverse of the fitted filter.** The amplitude gain at frequency ``f`` is ``G = 10^(−A/20)``
  for the template's zero-phase attenuation ``A`` (dB of power), evaluated as the detector does
  (bilinear-warped ratio to the cutoff).
* **Never above the music's own trend.** Blind, the filter's slope and the music's own
  roll-off look alike: where the fitted template says "attenuated by 30 dB" but the input is
  only 10 dB under its trend, the rest is the music's. ``A`` is therefore never taken deeper
  than the input's measured drop below the trend plus ``HEADROOM_DB``: the compensated band
  stays at least ``HEADROOM_DB`` under the trend.
* **Only where the input holds signal.** The gain is blended with the identity by the Wiener
  weight ``W = S / (S + N)`` of the filtered music's level ``S`` as the fit explains it (trend
  + A) against the input's noise floor ``N`` above the cutoff, or ``DEPTH_DB`` under the trend
  at the cutoff if that is higher (a float file has no floor): ``K = 1 + W (G − 1)``, at most
  ``MAX_GAIN_DB``, or ``SURE_MAX_GAIN_DB`` where the fit is sure (:func:`sure`: the music
  stands well over the floor at the cutoff, the template fits the transition closely, the
  trend does not rise into it and no codec's holes show); 1 below the cutoff, rising over the
  merge's transition band above it (the band the merge keeps stays the input's own; there the
  fitted filter takes at most 6 dB, which the headroom leaves alone anyway). Where the band has
  sunk into the floor nothing is amplified (the noise would be), and the model's band takes
  over.
* **Joined to the model's band.** The model's output ``m`` becomes ``m + W (K x − m)``: its
  band is replaced by the compensated input where that is reliable (``W`` near 1) and kept
  where the input has nothing (``W`` near 0). ``K`` and ``W`` are fixed per file, so the stage
  is linear-phase FIRs (frequency sampling, Kaiser window) applied as it streams, like the
  merge.

It runs only on a route that enhances a band-limited input whose roll-off is a filter's (not
a codec's shelf: nothing is left above a brick wall; not a gentle roll-off passed through as
the music's own; not a cutoff from ``MAX_CUTOFF_HZ`` up, where codecs cut). Chosen on the
validation split of the project's corpus (35 files, Sulun & Davies' two filters;
docs/results/compensation/README.md); ``HEADROOM_DB`` and ``MAX_GAIN_DB`` trade the mean gain
against the worst file: a dark piece whose own spectrum ends near the filter's cutoff is the
case the limits are for.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal

from upband.analysis.detect import Bandwidth, template_attenuation
from upband.enhancement.merge import MERGE_TRANSITION, OverlapSave

#: The compensated band stays at least this far under the input's fitted trend (dB).
HEADROOM_DB = 6.0
#: Largest amplitude gain of the compensation (dB).
MAX_GAIN_DB = 10.0
#: Largest gain where the fit is sure (dB): the music stands at least ``SURE_DEPTH_DB`` over the
#: floor at the cutoff, the template fits the input's transition within ``SURE_FIT_DB``
#: (``Bandwidth.fit_error_db``, mean absolute dB) and the trend is flat or falling. Chosen on
#: the train split's drum samples and soundtracks and checked on the validation split
#: (docs/results/compensation/README.md).
SURE_MAX_GAIN_DB = 20.0
SURE_DEPTH_DB = 60.0
SURE_FIT_DB = 3.0
#: ... and the trend does not rise into the cutoff (dB per octave): where it does, an
#: instrument's own peak (a crash's near 7 kHz) mixes into the fitted transition.
SURE_SLOPE_DB = 0.0
#: ... and the top band shows no strong sign of a lossy codec: spectral holes in excess of
#: this fraction (``Bandwidth.hole_excess``; a codec is flagged from 0.003 with a sharp shelf)
#: mark a coded input whose edge was fitted as a filter (a 0.5 s snare as MP3 at 32 kbit/s)
#: or a noisy texture (ambient samples, vinyl noise: 0.05-0.14).
SURE_HOLES = 0.02
#: The floor the depth is measured from at the lowest: what a 16-bit file shows the detector
#: (−98 to −100 dB in its units on the corpus; a float signal's floor is far lower, and would
#: make every fit sure).
SURE_FLOOR_DB = -98.0
#: Depth of the transition trusted under the trend at the cutoff (dB): deeper, the band is the
#: model's even where the input's floor is lower still (a float or 24-bit file).
DEPTH_DB = 60.0
#: No compensation for a cutoff at or above this (Hz): where lossy codecs at ordinary rates
#: cut (MP3 at 128 kbit/s: 16-17 kHz) and a soft track's codec shelf can fit a gentler filter
#: (one did on the test split, and the noise above it came up 10 dB: ViSQOL -0.67), while what
#: a filter leaves up there is little.
MAX_CUTOFF_HZ = 15_000.0
#: A compensation whose largest gain is below this is not worth running (dB).
MIN_GAIN_DB = 0.1
#: Frequency resolution of the FIRs: ``sample_rate / TAPS_DIVISOR`` taps (odd).
TAPS_DIVISOR = 40
#: Kaiser window of the FIR design.
KAISER_BETA = 8.0
#: The compensation stops this close to the input's own Nyquist (a resampled input's edge).
NYQUIST_FRACTION = 0.98


@dataclass(frozen=True)
class Curves:
    """The compensation of one input on a frequency grid: ``gain`` K (amplitude, ≥ 1) and
    the model mix's ``weight`` W (0-1) at ``freqs`` (Hz)."""

    freqs: np.ndarray
    gain: np.ndarray
    weight: np.ndarray

    @property
    def max_gain_db(self) -> float:
        """The largest gain (dB)."""
        return float(20 * np.log10(self.gain.max()))

    def span_hz(self, min_db: float = 1.0) -> tuple[float, float]:
        """First and last frequency (Hz) where the gain is at least ``min_db`` (0, 0 if none)."""
        on = self.freqs[self.gain >= 10 ** (min_db / 20)]
        return (float(on[0]), float(on[-1])) if on.size else (0.0, 0.0)


def applies(bandwidth: Bandwidth) -> bool:
    """Whether an input with ``bandwidth`` has a filter's roll-off to compensate: a fit below
    full band, not a codec's shelf, a cutoff under ``MAX_CUTOFF_HZ`` (the one test, for the
    route and for :func:`curves`)."""
    return (bandwidth.rolloff is not None and not bandwidth.full_band and not bandwidth.silent
            and bandwidth.codec == "none" and bool(bandwidth.template)
            and bandwidth.cutoff_hz < MAX_CUTOFF_HZ)


def sure(bandwidth: Bandwidth) -> bool:
    """Whether the fit of a band-limited input is sure enough for ``SURE_MAX_GAIN_DB``: the
    music's trend at the cutoff stands ``SURE_DEPTH_DB`` over the floor (a 16-bit file's at the
    lowest, ``SURE_FLOOR_DB``), the template fits within ``SURE_FIT_DB``, the trend rises by
    no more than ``SURE_SLOPE_DB`` per octave and the top band has few spectral holes
    (``SURE_HOLES``)."""
    fit = bandwidth.rolloff
    if (fit is None or bandwidth.fit_error_db > SURE_FIT_DB or fit.slope_db > SURE_SLOPE_DB
            or bandwidth.hole_excess > SURE_HOLES):
        return False
    level = float(fit.trend(np.array(bandwidth.cutoff_hz)))
    return level - max(fit.floor_db, SURE_FLOOR_DB) >= SURE_DEPTH_DB


def curves(bandwidth: Bandwidth, sample_rate: int, points: int = 4097, *,
           headroom_db: float = HEADROOM_DB, max_gain_db: float = MAX_GAIN_DB,
           sure_gain_db: float | None = SURE_MAX_GAIN_DB) -> Curves | None:
    """The compensation of an input with ``bandwidth``, at output rate ``sample_rate`` (Hz), on
    ``points`` frequencies from 0 to Nyquist; None when there is nothing to compensate: full
    band, silent, no fit, a codec's shelf, a cutoff from ``MAX_CUTOFF_HZ`` up, or a largest
    gain under ``MIN_GAIN_DB``.
    ``headroom_db`` and ``max_gain_db``: the limits of the module doc; ``sure_gain_db`` the
    largest gain of a :func:`sure` fit (None: ``max_gain_db`` for every fit). Other values are
    for the tuning script, scripts/eval_compensation.py."""
    fit = bandwidth.rolloff
    if fit is None or not applies(bandwidth):
        return None
    if sure_gain_db is not None and sure(bandwidth):
        max_gain_db = max(max_gain_db, sure_gain_db)
    freqs = np.linspace(0.0, sample_rate / 2, points)
    f = np.maximum(freqs, 1.0)
    att = template_attenuation(bandwidth.template, f, bandwidth.cutoff_hz,
                               bandwidth.sample_rate)
    bands = np.asarray(fit.bands)
    level = np.interp(np.log2(f), np.log2(bands), np.asarray(fit.level))
    trend = fit.trend(f)
    expected = 10 ** ((trend + att) / 10)  # the filtered music, as the fit explains it
    floor = max(fit.floor_db, float(fit.trend(np.array(bandwidth.cutoff_hz))) - DEPTH_DB)
    weight = expected / (expected + 10 ** (floor / 10))
    weight[freqs >= NYQUIST_FRACTION * bandwidth.sample_rate / 2] = 0.0
    # the inverse, never deeper than the input's own drop under its trend, less the headroom
    att = np.maximum(att, np.minimum(0.0, level - trend + headroom_db))
    gain = np.clip(1 + weight * (10 ** (-att / 20) - 1), 1.0, 10 ** (max_gain_db / 20))
    out = Curves(freqs, ramp_in(freqs, gain, bandwidth.cutoff_hz), weight)
    return out if out.max_gain_db >= MIN_GAIN_DB else None


def ramp_in(freqs: np.ndarray, gain: np.ndarray, cutoff_hz: float) -> np.ndarray:
    """``gain`` (amplitude, at ``freqs``) as the merge lets it in: the band the merge keeps is
    the input's own, so 1 below ``cutoff_hz``, and a raised-cosine ramp up to the full gain
    over the merge's transition band above it."""
    ramp = np.clip((freqs / cutoff_hz - 1) / MERGE_TRANSITION, 0.0, 1.0)
    return 1 + (gain - 1) * (0.5 - 0.5 * np.cos(np.pi * ramp))


def fir(response: np.ndarray, taps: int) -> np.ndarray:
    """Linear-phase FIR of odd length ``taps`` whose (zero-phase) response approximates
    ``response``, sampled on an even grid from 0 to Nyquist (frequency sampling, Kaiser)."""
    h = np.fft.irfft(response, n=2 * (len(response) - 1))
    half = taps // 2
    h = np.concatenate([h[-half:], h[:half + 1]])
    return h * signal.windows.kaiser(taps, KAISER_BETA)


class Compensation:
    """Streams the compensation: ``push(x, m, last)`` takes aligned input and model blocks
    (``[C, n]``, output rate) and returns ``(K x, m + W (K x − m))``, the samples that are
    final (all of them once ``last``); in one pass or in blocks, the same output."""

    def __init__(self, curves: Curves, sample_rate: int, channels: int) -> None:
        self.curves = curves
        taps = 2 * (sample_rate // (2 * TAPS_DIVISOR)) + 1
        self._fir = OverlapSave([fir(r, taps) for r in (curves.gain, curves.weight * curves.gain,
                                                         curves.weight)])
        self.delay = taps // 2
        self._x = np.zeros((channels, self.delay))  # history, zero before the start
        self._m = np.zeros((channels, self.delay))

    @property
    def taps(self) -> int:
        """Length of the three FIRs (odd)."""
        return self._fir.taps

    @classmethod
    def for_input(cls, bandwidth: Bandwidth, sample_rate: int, channels: int
                  ) -> Compensation | None:
        """The compensation of an input with ``bandwidth`` at ``sample_rate``, or None."""
        found = curves(bandwidth, sample_rate)
        return None if found is None else cls(found, sample_rate, channels)

    def push(self, x: np.ndarray, m: np.ndarray, last: bool = False
             ) -> tuple[np.ndarray, np.ndarray]:
        """Feed aligned blocks ``x`` and ``m`` (``[C, n]``); return the final compensated
        input and model blocks (float32 ``[C, k]`` each)."""
        self._x = np.concatenate([self._x, x.astype(np.float64)], axis=1)
        self._m = np.concatenate([self._m, m.astype(np.float64)], axis=1)
        if last:
            pad = np.zeros((self._x.shape[0], self.delay))
            self._x = np.concatenate([self._x, pad], axis=1)
            self._m = np.concatenate([self._m, pad], axis=1)
        n = self._x.shape[1] - 2 * self.delay
        if n <= 0:
            empty = np.zeros((self._x.shape[0], 0), np.float32)
            return empty, empty
        # n outputs and the delay of history on each side: the valid part of the convolution
        f = self._fir
        xf, mf = f.spectra(self._x, n), f.spectra(self._m, n)
        k, wk, w = f.firs
        xc = f.back(xf * k, n)
        mc = self._m[:, self.delay:self.delay + n] + f.back(xf * wk - mf * w, n)
        self._x, self._m = self._x[:, n:], self._m[:, n:]
        return xc.astype(np.float32), mc.astype(np.float32)


def compensate(bandwidth: Bandwidth, sample_rate: int, x: np.ndarray, m: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
    """:class:`Compensation` in one pass over whole signals (``x`` and ``m`` unchanged where
    there is nothing to compensate)."""
    stage = Compensation.for_input(bandwidth, sample_rate, x.shape[0])
    return (x, m) if stage is None else stage.push(x, m, last=True)


__all__ = ["HEADROOM_DB", "MAX_GAIN_DB", "SURE_MAX_GAIN_DB", "Compensation", "Curves", "applies",
           "compensate", "curves", "fir", "ramp_in", "sure"]
