"""Effective-bandwidth detector: where a recording's real content ends, and whether a lossy codec
put the end there.

Method (upband's own; no paper gives one):

1. **Long-term spectrum.** Hann-windowed frames (``n_fft`` ≈ sr / 10, so bins are ≈ 10 Hz wide at
   any rate, hop n_fft / 2), power summed over channels. Frames are pooled by frame energy in
   5 dB buckets, so blocks can be fed one at a time (a one-hour file needs no per-frame storage);
   frames more than ``ACTIVE_RANGE_DB`` below the loudest bucket (silence, fades) are left out.
   The mean power is regrouped into 1/48-octave bands from 50 Hz to Nyquist.
2. **Template fit.** The log spectrum ``L(f)`` is modelled as a power-law trend ``a + b·log2 f``
   times a low-pass response, plus a floor: ``10·log10(10^((a + b·log2 f + A(f)) / 10) +
   10^(F / 10))``. ``A`` is the zero-phase (squared) response of a Butterworth of order 4–64 or
   a Bessel of order 4–10, evaluated at the bilinear-warped ratio tan(πf/sr) / tan(πf_c/sr),
   which is exact for every bilinear IIR design; the high Butterworth orders fit brick walls
   (codecs, resamplers, STFT cuts). "Content end" is the highest band within ``CONTENT_DB`` of
   the loudest bands; candidates f_c (1/96-octave grid) run from a sixth of it to just above it
   and are all scored on the same bands (above content end / ``EVAL_SPAN``). Per candidate and
   template the trend is fitted by least squares on the bands above f_c / ``TREND_SPAN`` where
   ``A > −3 dB``; the floor ``F`` is the 5th percentile of the spectrum above f_c but at least
   ``RANGE_DB`` below the trend, and the score is the mean absolute dB difference with both sides
   clamped at ``F`` (only the top ``RANGE_DB`` of a transition counts, not the stopband's shape).
   A Bessel shape is gentle enough to mimic music's own roll-off, so it wins only when it fits
   far better than every Butterworth (``BESSEL_ADVANTAGE``): on clean signals, not on music.
3. **Cutoff** = the f_c of the best fit: the classical −3 dB point of the (single-pass) filter,
   i.e. where the content has fallen 6 dB below its own trend after zero-phase filtering. This
   is scipy's cutoff for Butterworth and Bessel (``norm='mag'``); it lies a few per cent above
   scipy's parameter for Chebyshev-I / elliptic (whose parameter is the ripple edge: 11 604 Hz for
   Chebyshev-I 6 at 11 025 Hz) and well below it for Chebyshev-II (whose parameter is the
   stop-band edge: 8.3 kHz for Chebyshev-II 8 at 11 025 Hz).
4. **Gentle roll-off.** A best fit of the gentlest shapes (Butterworth 4, 24 dB per octave, or
   any Bessel) is a transition music's own timbre makes too: three dark soundtrack excerpts of
   the corpus, unfiltered, fit Butterworth 4 at 1.4-3.0 kHz over 8 s (30 s of the same files
   reach 16.6-18.5 kHz). ``Bandwidth.gentle`` says so, and enhancement passes such an input through
   by default (:func:`upband.enhancement.pipeline.choose_route`): restoring a band the music
   never had is how a model makes a file worse. Two steeper roll-offs are an instrument's own
   too, and ``Bandwidth.own_rolloff`` (what enhancement asks) counts them with the gentle
   ones: one after a trend rising faster than ``OWN_SLOPE_DB`` per octave into the cutoff (a
   resonance: tambourines' jingles peak near 6 kHz and fall, fitted as Butterworth 6-12 there
   over a +19 to +29 dB/octave trend; hi-hats rise at most +14 and are filtered like any
   music; the same resonance behind a codec's shelf, which lands on its fall, counts too),
   and one under ``OWN_MIN_CUTOFF_HZ`` (kick drums and basses end there; a filter
   that low leaves no music to restore). Restored, such drum samples of the corpus's train
   split lose 1-5 dB of SNR (tambourines, a clave) and 25-33 dB (a drum loop ending at
   1.2 kHz): docs/results/own-rolloff/README.md.
5. **Full band** when the cutoff is at least ``FULL_BAND_FRACTION`` of Nyquist or at least
   ``FULL_BAND_HZ`` (19 kHz): :func:`reaches_full_band`, the one definition. ``Bandwidth.full_band``
   says it for the recording's own rate; :meth:`Bandwidth.full_band_at` for another rate (what
   enhancement asks: a 22.05 kHz file full band to its own Nyquist of 11 kHz is not full band
   for a 44.1 kHz output). **Silent** when no frame rises above ``SILENCE_DBFS``.
6. **Codec signature.** A *sharp shelf* is a fitted Butterworth order ≥ ``SHELF_ORDER`` (MP3,
   AAC and resamplers cut like a brick wall; analogue-style filters do not). *Spectral holes* are
   time–frequency cells of the top band (0.6–0.95 × cutoff) more than ``HOLE_DB`` below that
   bin's median, in excess of the same count one band lower: MP3 encoders switch whole
   scale-factor bands off frame by frame near their low-pass. ``codec = "lossy"`` when both are
   present, ``"brickwall"`` for a sharp shelf without holes (resampled or hard-filtered), else
   ``"none"``. A heuristic: on 5 CC0 loops it flagged LAME at 32/64/96/128 kbit/s in 19 of 20
   cases, and of the low-pass filters only the STFT hard cut (which leaves holes of its own);
   LAME at 192 kbit/s was flagged once in 5 and 320 kbit/s reads as full band. Opus fills its
   high band with folded noise and usually looks full band.

Measured on 2026-11-21 against the −6 dB (zero-phase) point of each filter's response (taken from
white noise through the filter), cutoffs 3 / 6 / 8 / 11.025 / 16 kHz at 44.1 kHz: on white noise
every family, Bessel included, within ±2.7 %. On seven CC0 music loops of sonic-pi-samples the
steep families (Butterworth 6 and 10, Chebyshev I 6, Chebyshev II 8, elliptic 6, subsample, STFT)
within ±5 % in 207 of 238 cases (median error 1.6 %, worst 19 %; loop_compus 35 of 35,
loop_electric, whose own spectrum falls steeply from 8 kHz, 20 of 35). A Bessel transition
(≈ 10 dB per octave at its cutoff) is as gentle as music's own roll-off, so on music its cutoff
cannot be told from the timbre (median error 25 %). The test suite checks noise and a 3 s excerpt
of loop_compus (tests/data).
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy import signal

from upband.analysis.bandwidth import (  # noqa: F401 (re-exported: the detector's result)
    FULL_BAND_FRACTION,
    FULL_BAND_HZ,
    GENTLE_ORDER,
    OWN_MIN_CUTOFF_HZ,
    OWN_SLOPE_DB,
    Bandwidth,
    Rolloff,
    reaches_full_band,
)
from upband.audio import AudioReader

#: Frames this far below the loudest ones are left out of the long-term spectrum (dB).
ACTIVE_RANGE_DB = 60.0
#: A signal whose loudest frame is below this level (dBFS, mean power) counts as silent.
SILENCE_DBFS = -90.0
#: Only the top ``RANGE_DB`` of a transition is fitted; anything deeper counts as floor (dB).
RANGE_DB = 40.0
#: Width of the band energy buckets used to pool frames (dB).
BUCKET_DB = 5.0
#: Fitted Butterworth order from which a transition counts as a brick-wall shelf.
SHELF_ORDER = 24
#: Frames of the hole analysis more than this far below the loudest are left out (dB).
HOLE_ACTIVE_DB = 30.0
#: A cell this far below its bin's median (dB) is a spectral hole.
HOLE_DB = 30.0
#: Excess hole fraction of the top band over the band below that flags a lossy codec.
HOLE_EXCESS = 0.003
#: Lowest cutoff searched (Hz).
MIN_CUTOFF_HZ = 500.0
BANDS_PER_OCTAVE = 48
GRID_PER_OCTAVE = 96
#: Candidates are fitted and compared on the bands above (content end) / ``EVAL_SPAN``.
EVAL_SPAN = 4.0
#: The trend under a candidate cutoff f_c is fitted on the bands above f_c / ``TREND_SPAN``.
TREND_SPAN = 3.0
#: A Bessel template wins only if its error is below this fraction of the best Butterworth's.
BESSEL_ADVANTAGE = 0.5
#: Content ends where the spectrum is this far below its loudest bands (95th percentile, dB).
CONTENT_DB = 60.0
#: Seconds of a file :func:`detect_file` decodes (as excerpts spread over a longer file).
DETECT_SECONDS = 30.0
#: Frames of the hole analysis kept for long signals (reservoir, fixed seed).
HOLE_FRAMES = 1500
_EPS_POWER = 1e-30


def fft_size(sample_rate: int) -> int:
    """FFT size of the long-term spectrum: the power of two giving bins of ≈ 10 Hz or less."""
    return 1 << max(8, math.ceil(math.log2(sample_rate / 10.0)))


class BandwidthAnalyzer:
    """Streaming detector: ``update`` with consecutive ``[C, n]`` blocks, then ``result()``."""

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = int(sample_rate)
        self.n_fft = fft_size(self.sample_rate)
        self.hop = self.n_fft // 2
        self._window = signal.windows.hann(self.n_fft, sym=False).astype(np.float64)
        self._norm = float(np.sum(self._window ** 2))
        self._pending = np.zeros(0)
        self._buckets: dict[int, np.ndarray] = {}
        self._counts: dict[int, int] = {}
        self._hole_n = 1152
        self._hole_window = signal.windows.hann(self._hole_n, sym=False)
        self._hole_pending = np.zeros(0)
        self._hole_frames: list[np.ndarray] = []
        self._hole_seen = 0
        self._rng = np.random.default_rng(0)

    def update(self, block: np.ndarray) -> None:
        """Add ``block`` (float ``[C, n]`` or ``[n]``) to the statistics."""
        a = np.asarray(block, dtype=np.float64)
        if a.shape[-1] == 0:
            return
        channels = a.reshape(-1, a.shape[-1])
        self._update_ltas(channels)
        self._update_holes(channels.mean(axis=0))

    @staticmethod
    def _frames(pending: np.ndarray, x: np.ndarray, n: int, hop: int
                ) -> tuple[np.ndarray, np.ndarray]:
        """Cut ``pending + x`` (``[..., t]``) into frames ``[..., count, n]``; return the rest."""
        buf = np.concatenate([pending, x], axis=-1)
        if buf.shape[-1] < n:
            return np.zeros((*buf.shape[:-1], 0, n)), buf
        count = 1 + (buf.shape[-1] - n) // hop
        frames = np.lib.stride_tricks.sliding_window_view(buf, n, axis=-1)[..., ::hop, :]
        return frames[..., :count, :], buf[..., count * hop:].copy()

    def _update_ltas(self, x: np.ndarray) -> None:
        if self._pending.ndim == 1:
            self._pending = np.zeros((x.shape[0], 0))
        frames, self._pending = self._frames(self._pending, x, self.n_fft, self.hop)
        if frames.shape[-2] == 0:
            return
        spec = np.abs(np.fft.rfft(frames * self._window, axis=-1)) ** 2 / self._norm
        power = spec.sum(axis=0)  # [frames, bins], channels summed
        level = 10 * np.log10(power.mean(axis=-1) / x.shape[0] + _EPS_POWER)
        keys = np.floor(level / BUCKET_DB).astype(int)
        for key in np.unique(keys):
            rows = power[keys == key]
            k = int(key)
            self._buckets[k] = self._buckets.get(k, 0.0) + rows.sum(axis=0)
            self._counts[k] = self._counts.get(k, 0) + len(rows)

    def _update_holes(self, x: np.ndarray) -> None:
        frames, self._hole_pending = self._frames(self._hole_pending, x, self._hole_n,
                                                  self._hole_n // 2)
        # which frames the reservoir keeps, in order, then their spectra in one call
        slots: list[tuple[int, int]] = []  # (frame, slot)
        for k in range(len(frames)):
            self._hole_seen += 1
            if len(self._hole_frames) + len(slots) < HOLE_FRAMES:
                slots.append((k, len(self._hole_frames) + len(slots)))
            else:  # reservoir sampling keeps a uniform, deterministic subset
                j = int(self._rng.integers(self._hole_seen))
                if j < HOLE_FRAMES:
                    slots.append((k, j))
        if not slots:
            return
        spectra = self._hole_spectra(frames[[k for k, _ in slots]])
        for (_, slot), spectrum in zip(slots, spectra, strict=True):
            if slot == len(self._hole_frames):
                self._hole_frames.append(spectrum)
            else:
                self._hole_frames[slot] = spectrum

    def _hole_spectra(self, frames: np.ndarray) -> np.ndarray:
        return (np.abs(np.fft.rfft(frames * self._hole_window, axis=-1)) ** 2
                ).astype(np.float32)

    def result(self) -> Bandwidth:
        """The detector's verdict on everything fed so far."""
        sr, nyq = self.sample_rate, self.sample_rate / 2
        if not self._buckets or max(self._buckets) * BUCKET_DB < SILENCE_DBFS:
            return Bandwidth(sr, nyq, True, True, "", 0.0, 0.0, "none")
        top = max(self._buckets)
        keep = [k for k in self._buckets if (top - k) * BUCKET_DB <= ACTIVE_RANGE_DB]
        mean_power = np.sum([self._buckets[k] for k in keep], axis=0) / sum(
            self._counts[k] for k in keep)
        freqs = np.fft.rfftfreq(self.n_fft, 1 / sr)
        bands, level = _octave_bands(freqs, mean_power, nyq)
        cutoff, template, error = _fit_cutoff(bands, level, sr)
        full = reaches_full_band(cutoff, sr)
        excess = 0.0 if full else self._hole_excess(cutoff)
        shelf = template.startswith("butter") and int(template.split(":")[1]) >= SHELF_ORDER
        codec = "none" if full or not shelf else ("lossy" if excess >= HOLE_EXCESS else
                                                  "brickwall")
        rolloff = None if full or not template else _rolloff(bands, level, sr, cutoff, template)
        return Bandwidth(sr, float(nyq if full else cutoff), bool(full), False, template,
                         float(error), float(excess), codec, rolloff)

    def _hole_excess(self, cutoff: float) -> float:
        if len(self._hole_frames) < 8:
            return 0.0
        p = np.stack(self._hole_frames, axis=1)  # [bins, frames]
        energy = p.sum(axis=0)
        p = p[:, energy > energy.max() * 10 ** (-HOLE_ACTIVE_DB / 10)]
        f = np.fft.rfftfreq(self._hole_n, 1 / self.sample_rate)

        def hole_fraction(lo: float, hi: float) -> float:
            band = p[(f > lo * cutoff) & (f < hi * cutoff)]
            if band.size == 0:
                return 0.0
            med = np.median(band, axis=1, keepdims=True)
            return float(np.mean(band < med * 10 ** (-HOLE_DB / 10)))

        return hole_fraction(0.6, 0.95) - hole_fraction(0.3, 0.6)


def detect_bandwidth(audio: np.ndarray, sample_rate: int) -> Bandwidth:
    """Detect the effective bandwidth of ``audio`` (float ``[C, T]`` or ``[T]``)."""
    analyzer = BandwidthAnalyzer(sample_rate)
    analyzer.update(audio)
    return analyzer.result()


def detect_file(path: str | Path, *, max_seconds: float = DETECT_SECONDS, excerpts: int = 12
                ) -> Bandwidth:
    """Detect a file's bandwidth from at most ``max_seconds`` of audio.

    Short files are read whole; longer ones as ``excerpts`` equal excerpts spread evenly over the
    file, so ``upband info`` and ``upband enhance`` (the same call, the same answer) decode
    30 s of an hour of audio.
    """
    with AudioReader(path) as reader:
        sr, frames = reader.info.sample_rate, reader.info.frames
        analyzer = BandwidthAnalyzer(sr)
        budget = int(max_seconds * sr)
        if frames <= budget:
            for block in reader.blocks(sr * 10):
                analyzer.update(block)
        else:
            length = budget // excerpts
            for start in np.linspace(0, frames - length, excerpts).astype(int):
                reader.seek(int(start))
                block = reader.read(length)
                if block.shape[1] == 0:  # past what decodes (a truncated file's header lies)
                    break
                analyzer.update(block)
        return analyzer.result()


# --------------------------------------------------------------------------------------------
# the fit
# --------------------------------------------------------------------------------------------


def _octave_bands(freqs: np.ndarray, power: np.ndarray, nyq: float
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Mean power in 1/48-octave bands from 50 Hz to Nyquist: (centre Hz, level dB)."""
    edges = 50.0 * 2 ** (np.arange(0, math.log2(nyq / 50.0) * BANDS_PER_OCTAVE + 1)
                         / BANDS_PER_OCTAVE)
    edges = np.append(edges[edges < nyq], nyq)
    cum = np.concatenate([[0.0], np.cumsum(power)])
    idx = np.searchsorted(freqs, edges)
    hi = np.minimum(np.maximum(idx[1:], idx[:-1] + 1), len(power))
    lo = np.minimum(idx[:-1], hi - 1)
    centres = np.sqrt(edges[:-1] * edges[1:])
    return centres, 10 * np.log10((cum[hi] - cum[lo]) / (hi - lo) + _EPS_POWER)


@lru_cache(maxsize=1)
def _templates() -> tuple[tuple[str, np.ndarray, np.ndarray], ...]:
    """(name, log2 ratio grid, zero-phase attenuation dB) of every low-pass shape tried."""
    ratio = 2 ** np.linspace(-4, 7, 2201)
    shapes = [(f"butter:{n}", -20 * np.log10(1 + ratio ** (2 * n)))
              for n in (4, 6, 8, 12, 16, 24, 32, 48, 64)]
    for n in (4, 6, 8, 10):
        z, p, k = signal.bessel(n, 1.0, analog=True, norm="mag", output="zpk")
        _, h = signal.freqs_zpk(z, p, k, worN=ratio)
        shapes.append((f"bessel:{n}", 40 * np.log10(np.abs(h) + 1e-15)))
    log_ratio = np.log2(ratio)
    return tuple((name, log_ratio, np.maximum(att, -300.0)) for name, att in shapes)


def _template(name: str) -> tuple[np.ndarray, np.ndarray]:
    """(log2 ratio grid, zero-phase attenuation dB) of the template called ``name``."""
    return next((g, a) for n, g, a in _templates() if n == name)


def template_attenuation(template: str, freqs: np.ndarray, cutoff_hz: float, sample_rate: int
                         ) -> np.ndarray:
    """Zero-phase attenuation (dB of power, ≤ 0) of the fitted ``template`` with cutoff
    ``cutoff_hz`` at ``freqs`` (Hz), evaluated as the fit does (bilinear-warped ratio)."""
    grid, att_grid = _template(template)
    tan_f = np.tan(np.pi * np.minimum(np.asarray(freqs, np.float64), 0.4999 * sample_rate)
                   / sample_rate)
    ratio = np.maximum(tan_f, 1e-12) / math.tan(math.pi * cutoff_hz / sample_rate)
    return np.interp(np.log2(ratio), grid, att_grid)


def _fit_cutoff(freqs: np.ndarray, level: np.ndarray, sr: int) -> tuple[float, str, float]:
    """Best (cutoff Hz, template name, mean abs error dB): a 1/96-octave search over every
    template, then a 1/384-octave refinement of the winner."""
    nyq = sr / 2
    ref = np.percentile(level[freqs > 100], 95)
    content = np.nonzero(level >= ref - CONTENT_DB)[0]
    f_end = freqs[content[-1]] if content.size else nyq
    lo = max(MIN_CUTOFF_HZ, f_end / EVAL_SPAN * 1.5)
    hi = min(0.999 * nyq, f_end * 1.05)
    if hi <= lo:
        return nyq, "", 0.0
    fit = _Fit(freqs, level, sr, eval_from=f_end / EVAL_SPAN)
    cands = 2 ** np.arange(math.log2(lo), math.log2(hi), 1 / GRID_PER_OCTAVE)
    floors = fit.floors(cands)
    best: dict[str, tuple[float, float, str, np.ndarray, np.ndarray]] = {}
    for name, grid, att_grid in _templates():
        err = fit.errors(cands, grid, att_grid, floors)
        k = int(np.argmin(err))
        family = name.split(":")[0]
        if err[k] < best.get(family, (np.inf,))[0]:
            best[family] = (float(err[k]), float(cands[k]), name, grid, att_grid)
    if not best:
        return nyq, "", 0.0
    # A Bessel shape is gentle enough to mimic music's own roll-off: accept it only where it
    # explains the spectrum far better than any Butterworth (clean signals, not music).
    butter, bessel = best.get("butter"), best.get("bessel")
    choice = bessel if butter is None or (
        bessel is not None and bessel[0] < BESSEL_ADVANTAGE * butter[0]) else butter
    assert choice is not None
    err0, cutoff, name, grid, att_grid = choice
    if not math.isfinite(err0):
        return nyq, "", 0.0
    fine = cutoff * 2 ** (np.arange(-4, 5) / (4 * GRID_PER_OCTAVE))
    fine = fine[(fine > lo / 2) & (fine < 0.999 * nyq)]
    err = fit.errors(fine, grid, att_grid, fit.floors(fine))
    k = int(np.argmin(err))
    return float(fine[k]), name, float(err[k])


def _rolloff(bands: np.ndarray, level: np.ndarray, sr: int, cutoff: float, template: str
             ) -> Rolloff | None:
    """The trend of ``template`` at ``cutoff`` as :class:`_Fit` fitted it, and the floor: the
    5th percentile of the spectrum above the cutoff."""
    fit = _Fit(bands, level, sr, eval_from=0.0)
    grid, att_grid = _template(template)
    cands = np.array([cutoff])
    floor = fit.floors(cands)
    ok, a, b = fit.trend(cands, grid, att_grid, floor)[:3]
    if not ok[0] or not np.isfinite(floor[0]):
        return None
    # the trend is a + b·log2(f): re-centred at 1 kHz
    return Rolloff(tuple(map(float, bands)), tuple(map(float, level)),
                   float(a[0] + b[0] * math.log2(1000.0)), float(b[0]), float(floor[0]))


class _Fit:
    """Scores candidate cutoffs for one template on a fixed band spectrum (see module doc)."""

    def __init__(self, freqs: np.ndarray, level: np.ndarray, sr: int, eval_from: float) -> None:
        self.freqs, self.level, self.sr = freqs, level, sr
        self.g = np.log2(freqs)[None, :]  # [1, B]
        self.tan_f = np.tan(np.pi * np.minimum(freqs, 0.4999 * sr) / sr)
        # every candidate is judged on the same bands, so the errors compare
        self.sel = freqs >= eval_from

    def floors(self, cands: np.ndarray) -> np.ndarray:
        """5th percentile of the spectrum above each candidate cutoff (dB; -inf: nothing)."""
        return np.array([np.percentile(self.level[self.freqs > c], 5)
                         if (self.freqs > c).any() else -np.inf for c in cands])

    def trend(self, cands: np.ndarray, grid: np.ndarray, att_grid: np.ndarray,
              floor_data: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per candidate cutoff in ``cands`` ``[K]``: whether a trend could be fitted, its
        ``a``, ``b`` (``a + b·log2 f``, dB), the floor ``[K, 1]`` and the template's
        attenuation ``[K, B]`` on the bands (``floor_data`` from :meth:`floors`)."""
        freqs, level, g = self.freqs, self.level, self.g
        log_ratio = np.log2(self.tan_f[None, :] / np.tan(np.pi * cands / self.sr)[:, None])
        att = np.interp(log_ratio, grid, att_grid)  # [K, B]
        trend_band = freqs[None, :] >= cands[:, None] / TREND_SPAN
        w = (trend_band & (att > -3.0)).astype(np.float64)
        s0, s1, s2 = w.sum(1), (w * g).sum(1), (w * g * g).sum(1)
        y = level[None, :] - att
        sy, sgy = (w * y).sum(1), (w * g * y).sum(1)
        den = s0 * s2 - s1 ** 2
        ok = (s0 >= 6) & (np.abs(den) > 1e-9)
        b = np.where(ok, (s0 * sgy - s1 * sy) / np.where(ok, den, 1.0), 0.0)
        a = np.where(ok, (sy - b * s1) / np.maximum(s0, 1.0), 0.0)
        floor = np.maximum(a + b * np.log2(cands) - RANGE_DB, floor_data)[:, None]
        return ok, a, b, floor, att

    def errors(self, cands: np.ndarray, grid: np.ndarray, att_grid: np.ndarray,
               floor_data: np.ndarray) -> np.ndarray:
        """Mean absolute dB error of each candidate cutoff in ``cands`` ``[K]`` (``floor_data``
        from :meth:`floors`)."""
        ok, a, b, floor, att = self.trend(cands, grid, att_grid, floor_data)
        level = self.level
        model = _db_sum(a[:, None] + b[:, None] * self.g + att, floor)
        data = _db_sum(np.broadcast_to(level[None, :], model.shape), floor)
        err = np.abs(data - model)[:, self.sel].mean(1)
        return np.where(ok, err, np.inf)


def _db_sum(a_db: np.ndarray, b_db: np.ndarray) -> np.ndarray:
    """Level of the power sum of two levels in dB, without overflow."""
    m = np.maximum(a_db, b_db)
    return m + 10 * np.log10(10 ** ((a_db - m) / 10) + 10 ** ((b_db - m) / 10))
