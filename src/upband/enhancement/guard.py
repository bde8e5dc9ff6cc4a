"""The level guard: the band the model adds above the cutoff is never louder than the input
itself makes plausible, frame by frame.

A model that adds a band at a level it never checks is heard as hiss on quiet music and in the
silences between notes. The guard bounds it by what the input still shows: in every STFT frame
(Hann, ``N_FFT`` = 2 048 at 44.1 kHz and scaled with the rate, hop N/4), the level of the top
octave of the kept band ``[fc/2, fc)`` is the reference, and each 1/3-octave band of the model's
output above the cutoff may not exceed

    reference − slope · (octaves from the reference band's centre) + ``MARGIN_DB``,

where ``slope`` (dB per octave) is how fast the input's own spectrum falls between its two top
octaves ``[fc/4, fc/2)`` and ``[fc/2, fc)``, smoothed over ``SLOPE_SECONDS`` of non-silent
frames and kept within ``SLOPE_RANGE``. Where a band is above its bound, what the model *adds*
to the input there (its output minus the input, taken as uncorrelated with the input) is scaled
down until the band meets the bound -- or to nothing, where the input alone already reaches it:
the guard never makes a band louder, and never takes away what the input itself holds above the
cutoff (an identity model passes the guard unchanged, whatever the detected cutoff). So the
added band follows the music in time (it falls with the input in a fade or a silence) and in
level (a soft piece with a steep roll-off gets a soft band).

**Persistent tones.** A network can leave tones of its own at fixed frequencies (``arunet-s``'s
PQMF band edges, k x 2 756 Hz at 44.1 kHz), heard as whistles over quiet music. The guard
keeps a long-term power spectrum of what the model adds above the cutoff (exponential, time
constant ``TONE_SECONDS``; a running mean over the first frames) and, every ``TONE_EVERY``
frames (every frame while it is still a running mean: a tone in a file's first seconds is
heard too), brings each bin whose long-term level stands above the median of its ``TONE_BINS``
neighbours (by more than ``TONE_DB``, 0 dB) down to that line: only what persists is notched
(a note's harmonics come and go with the music, a fixed tone does not). In every frame, too,
no bin of the added band may exceed the median power of its block of ``SPIKE_BINS`` (15)
neighbouring bins by more than ``PEAK`` (10.7 dB, 9 dB over the mean of white noise): a median,
so that a strong line (a copied harmonic of one note) does not raise its own bar, as it did when
the bar was its 1/3-octave band's mean; of a few hundred hertz, so that the band's own slope
does not lower it.

On a quiet 12 s piece low-passed by Chebyshev-I 8 at 11 025 Hz (``tests/
test_enhance_artefacts.py``), the highest long-term peak of the restored band above 12 kHz
(4 096-point Welch, against a 41-bin median) of ``upband-default`` fell from 25.9 dB (guard
off) to 13.3, to 9.0 once the notch was renewed in every frame of the first seconds, and to
**5.4** with that median bar for single frames (the 9.0 dB peak was one note's copied
harmonic) and a 21-bin tone line (31 before): on four seeds 5.4 / 5.2 / 5.4 / 5.2 dB.

**The fill** (``fill_db``; on by default, ``upband enhance --no-fill`` turns it off). Where
the guarded band is fainter than ``fill_db`` under the level the band-level predictor
(:mod:`upband.enhancement.bandlevel`, a small network reading the input's 1/3-octave levels
around the cutoff) gives each 1/3-octave band above it, noise brings the band up to that
level, frame by frame: a soft band that follows the music in time and level, with no lines of
its own (the same noise in every channel). The predictor gives a low quantile of the band's
level (the original lies above it four times in five), capped at the reference octave's own
level; the pipeline fills ``FILL_DB`` under it, ``FILL_LOSSY_DB`` after a lossy codec,
``FILL_BRICKWALL_DB`` after another sharp shelf (below). A band of the right level, even as
noise, is what ViSQOL rewards above a cutoff; its error costs SNR (docs/results/band-level/
README.md). The first fill continued the top octave's own slope instead; on the validation
split that level erred by 13.1 dB on average (25 % of band-frames more than 12 dB too
loud), the first predictor's by 9.3 (4.7 %), and the shipped one's,
trained on three times the crops, by 8.9 (3.3 % on the rebuilt corpus's validation split,
where the first one errs by 9.3, 4.3 %). Under 9 kHz a second predictor, trained from 3 kHz
up, takes over (:func:`~upband.enhancement.bandlevel.shipped`): 10.6 dB (5.6 %) from 3 to
5 kHz, where the other, which never saw such cutoffs, errs by 18.3 (18.7 %); hence the fill
from ``FILL_MIN_CUTOFF_HZ`` = 3 kHz. The noise has the band's magnitude in every bin and a
random phase (``_fill``).

**The noise floor.** With the fill, bins fainter than the input's own noise floor (read under
the cutoff, at most a 16-bit file's) are brought up to it: :mod:`upband.enhancement.floor`.

**Quiet frames are filled closer.** What the fill costs in SNR is the energy of its error, and
a frame well under the music's recent loud ones holds little of a file's energy; its band, when
too faint, is missed all the same (by ViSQOL, frame by frame, and by the ear in a cymbal's
tail). So a frame whose reference band lies ``d`` dB under its running peak (the loudest recent
reference level, falling ``QUIET_DECAY_DB`` dB a second) is filled ``QUIET_SLOPE`` x ``d`` dB
closer to the prediction, but never closer than ``QUIET_FILL_DB`` under it; a fill after a
codec, already closer than that, is left as it is. Chosen on the validation split
(docs/results/band-level/README.md, "Quiet frames"): with the peak falling 1, 6 or 12 dB a
second, the mean ViSQOL gain rose by 0.04-0.09 in every filter row under 16 kHz for at most
0.06 dB of mean SNR; the slower peaks also filled a dark bass sample's decay too loud (ViSQOL
-0.19 and -0.11 at an 8 kHz cutoff; -0.04 with 12 dB a second, -0.02 before). On the test split
the mean ViSQOL gain rose in every row the fill reaches (Sulun's unseen filter +0.178 ->
+0.206; a 16 kHz cutoff and MP3 at 128 kbit/s unchanged), the mean SNR gain fell <= 0.022 dB.

**After a sharp shelf without holes** (``codec == "brickwall"``) the fill is ``FILL_BRICKWALL_DB``
under the prediction, and quiet frames come closer down to ``FILL_LOSSY_DB``. Most such shelves
are a codec's whose holes the detector missed: on the validation split 11 of 37 files after
MP3 at 32 kbit/s, 7 at 64 and 4 at 128 (the rest ``lossy`` or not a shelf). Chosen there
(docs/results/band-level/README.md, "After a sharp shelf"): at 64 kbit/s the mean ViSQOL gain
rose +0.209 -> +0.233 for 0.018 dB of mean SNR (-0.078 -> -0.096 dB); filling as after a
codec (3 dB) gained as much for twice the SNR (-0.110 dB, under the -0.1 the rows must keep).

Only the model's bins above the cutoff change; the do-no-harm merge that follows keeps the
input below the cutoff anyway. :class:`LevelGuard` streams: block boundaries do not change the
output (the frames and the slope's smoothing advance sample by sample, the same in one pass).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import fft as sp_fft

from upband.enhancement import bandlevel, floor, spectra

#: STFT size at 44.1 kHz (scaled with the rate to a power of two), hop = N / ``OVERLAP``.
N_FFT_44K = 2048
OVERLAP = 4
#: Headroom of the bound over the input's extrapolated level (dB).
MARGIN_DB = 3.0
#: Time constant of the slope's smoothing (seconds of non-silent frames).
SLOPE_SECONDS = 3.0
#: The slope is kept within this range (dB per octave); before the first non-silent frame the
#: steepest is used.
SLOPE_RANGE = (0.0, 30.0)
#: A frame whose reference band is below this level (dB; 0 = white noise of unit variance)
#: counts as silent.
SILENT_DB = -100.0
#: Bands per octave of the bound.
BANDS_PER_OCTAVE = 3
#: Time constant of the added band's long-term spectrum (seconds), the height over the median
#: of its neighbours (dB) above which a bin counts as a persistent tone, the width of that
#: median (bins at 44.1 kHz, scaled with the FFT), and how often the notches are renewed
#: (frames).
TONE_SECONDS = 8.0
TONE_DB = 0.0
TONE_BINS = 21
TONE_EVERY = 16
#: Frames analysed at a time (bounds the temporary arrays of a long block).
STEP_FRAMES = 128
#: In every frame no bin of the added band may exceed the median power of its block of
#: ``SPIKE_BINS`` neighbouring bins (at 44.1 kHz, scaled with the FFT) by more than ``PEAK``
#: (10.7 dB, 9 dB over the mean of white noise: its bins do so 0.03 % of the time).
PEAK = 10 ** 1.07
SPIKE_BINS = 15
#: The fill's level: dB under the band-level predictor's (module doc).
FILL_DB = 12.0
#: The same after a lossy codec (the detector's ``codec == "lossy"``).
FILL_LOSSY_DB = 3.0
#: The same after any other sharp shelf (``codec == "brickwall"``: a codec whose holes the
#: detector missed, or a resampler); there quiet frames come closer down to ``FILL_LOSSY_DB``.
FILL_BRICKWALL_DB = 6.0
#: The fill runs only from this cutoff up (Hz), the lowest its predictors were trained for.
FILL_MIN_CUTOFF_HZ = 3000.0
#: Quiet frames are filled closer (module doc): ``QUIET_SLOPE`` dB closer to the prediction per
#: dB that the reference band lies under its running peak, which falls ``QUIET_DECAY_DB`` per
#: second, but never closer than ``QUIET_FILL_DB`` under it (a fill after a codec, already
#: closer, is left as it is).
QUIET_SLOPE = 0.5
QUIET_FILL_DB = 6.0
QUIET_DECAY_DB = 12.0
_EPS = 1e-20


@dataclass
class GuardStats:
    """What the guard did to one signal: ``reduction_db`` is the level of the guarded band
    relative to the model's (0 = untouched, -6 = half the amplitude), energy-weighted over the
    whole signal; ``limited_fraction`` the share of frames in which it lowered the added band
    (by its level bound, a spike cap or a tone notch)."""

    frames: int = 0
    limited_frames: int = 0
    energy_in: float = 0.0
    energy_out: float = 0.0
    #: energy of the fill's noise (same units; 0 without the fill)
    energy_fill: float = 0.0

    @property
    def reduction_db(self) -> float:
        if self.energy_in <= 0:
            return 0.0
        return 10 * math.log10(max(self.energy_out, _EPS) / self.energy_in)

    @property
    def fill_ratio(self) -> float:
        """The fill's energy over the guarded band's (before the fill)."""
        return self.energy_fill / self.energy_out if self.energy_out > 0 else 0.0

    @property
    def limited_fraction(self) -> float:
        return self.limited_frames / self.frames if self.frames else 0.0


def fft_size(sample_rate: int) -> int:
    """``N_FFT_44K`` scaled to ``sample_rate`` (a power of two)."""
    return 1 << max(8, round(math.log2(N_FFT_44K * sample_rate / 44100)))


class LevelGuard:
    """Streams the guard: ``push(x, m, last)`` takes aligned blocks of the input ``x`` and the
    model's output ``m`` (float ``[C, n]`` at ``sample_rate``) and returns ``(x, m')``, equal
    lengths, the guarded model output ``m'`` and the input samples it lines up with (a delay of
    ``n_fft`` samples while streaming; all samples once ``last``).

    ``joint``: the channels share one bound and one gain per band (a stereo pair keeps its
    image); otherwise each channel is guarded on its own (channels enhanced one by one).
    ``fill_db``: the fill (module doc): noise brings every band of the guarded output up to
    ``fill_db`` dB under the band-level predictor's level; None: no fill. ``levels``: that
    predictor (the shipped one by default). ``quiet_fill_db``: how close quiet frames may
    come (``QUIET_FILL_DB`` by default; never closer than ``fill_db`` when that is closer).
    ``floor_fill``: with the fill, the input's own noise floor too (:mod:`~.floor`).
    """

    def __init__(self, cutoff_hz: float, sample_rate: int, channels: int, *,
                 joint: bool = True, fill_db: float | None = None,
                 levels: bandlevel.BandLevelModel | None = None,
                 quiet_fill_db: float = QUIET_FILL_DB, floor_fill: bool = True) -> None:
        self.n = fft_size(sample_rate)
        self.hop = self.n // OVERLAP
        self.window = np.hanning(self.n + 1)[:-1].astype(np.float32)
        energy = float(np.sum(self.window ** 2))
        self.norm = energy / self.hop  # overlap-add sum of analysis x synthesis windows
        self.pnorm = energy  # power per bin of unit-variance white noise is then 1
        freqs = np.fft.rfftfreq(self.n, 1 / sample_rate)
        kc = int(np.searchsorted(freqs, cutoff_hz))
        self.kc = kc
        self.ref = slice(max(1, kc // 2), kc)
        self.low = slice(max(1, kc // 4), max(2, kc // 2))
        self.bands, self.offsets = _bands(freqs, kc, cutoff_hz)
        alpha = self.hop / (SLOPE_SECONDS * sample_rate)
        self.alpha = min(1.0, alpha)
        groups = 1 if joint else channels
        self.joint = joint
        #: per channel group: the input's slope (dB/octave), from its first non-silent frame on
        self.slope: list[float | None] = [None] * groups
        self.stats = GuardStats()
        pad = self.n - self.hop  # the first frame ends one hop into the signal
        self._x = np.zeros((channels, pad), np.float32)  # the STFTs run in single precision
        self._m = np.zeros((channels, pad), np.float32)
        self._ola = np.zeros((channels, pad))  # overlap-add tail of the frames so far
        self._skip = pad  # output samples that belong to the zero padding
        self._queue = np.zeros((channels, 0), np.float32)  # input waiting for its output
        self.starts = np.array([a for a, _ in self.bands], dtype=np.intp) - kc
        self.counts = np.array([b - a for a, b in self.bands], dtype=np.intp)
        self.offsets_arr = np.asarray(self.offsets, dtype=np.float64)
        self.tone_alpha = min(1.0, self.hop / (TONE_SECONDS * sample_rate))
        self.tone_bins = max(3, TONE_BINS * self.n // N_FFT_44K) | 1
        self.spike_bins = max(3, SPIKE_BINS * self.n // N_FFT_44K) | 1
        self._tone_frames = 0
        self._longterm: np.ndarray | None = None  # [G, bins above the cutoff]
        self._notch = np.ones((groups, len(freqs) - kc))
        self.fill = fill_db
        self.quiet_fill = quiet_fill_db
        self.read_from = self.low.start  # the first bin whose power is computed
        if fill_db is not None:  # the predictor reads four octaves under the cutoff
            self.levels = levels if levels is not None else bandlevel.shipped(cutoff_hz)
            self.read_from = max(1, min(kc // 16, self.low.start))
            self.below_edges = bandlevel.below_edges(cutoff_hz)
            self.level_state = bandlevel.FeatureState()
            self.level_alpha = min(1.0, self.hop / (bandlevel.TAU_S * sample_rate))
        self.cutoff_hz = cutoff_hz
        self.freqs = freqs
        self._rng = np.random.default_rng(0)  # the fill's noise, frame after frame
        self.floor_fill, self._floor_rng = floor_fill, np.random.default_rng(1)  # and its noise
        self._group, self._share = (np.zeros(channels, np.intp), channels) if joint else \
            (np.arange(channels), 1)  # each channel's group; channels in a group's power
        #: per channel group: the reference band's running peak (dB; None before a frame)
        self.peak: list[float | None] = [None] * groups
        self.peak_decay = QUIET_DECAY_DB * self.hop / sample_rate

    def push(self, x: np.ndarray, m: np.ndarray, last: bool = False
             ) -> tuple[np.ndarray, np.ndarray]:
        """Feed aligned ``[C, n]`` blocks; return ``(x_out, m_out)`` float32, equal lengths."""
        self._queue = np.concatenate([self._queue, x.astype(np.float32)], axis=1)
        self._x = np.concatenate([self._x, x.astype(np.float32)], axis=1)
        self._m = np.concatenate([self._m, m.astype(np.float32)], axis=1)
        if last:
            zeros = np.zeros((x.shape[0], self.n), np.float32)
            self._x = np.concatenate([self._x, zeros], axis=1)
            self._m = np.concatenate([self._m, zeros], axis=1)
        frames = (self._x.shape[1] - self.n) // self.hop + 1 if self._x.shape[1] >= self.n else 0
        y = np.zeros((x.shape[0], 0))
        if frames:
            view = np.lib.stride_tricks.sliding_window_view
            fx = view(self._x, self.n, axis=1)[:, ::self.hop][:, :frames]  # [C, K, n]
            fm = view(self._m, self.n, axis=1)[:, ::self.hop][:, :frames]
            ola = np.zeros((x.shape[0], (frames - 1) * self.hop + self.n))
            ola[:, :self._ola.shape[1]] += self._ola
            for start in range(0, frames, STEP_FRAMES):  # bounded temporaries, same result
                synth = self._frames(fx[:, start:start + STEP_FRAMES],
                                     fm[:, start:start + STEP_FRAMES])
                spectra.overlap_add(ola[:, start * self.hop:], synth, self.hop)
            y, self._ola = ola[:, :frames * self.hop], ola[:, frames * self.hop:]
            self._x = self._x[:, frames * self.hop:]
            self._m = self._m[:, frames * self.hop:]
        drop = min(self._skip, y.shape[1])
        y, self._skip = y[:, drop:], self._skip - drop
        if last:
            y = y[:, :self._queue.shape[1]]
        k = y.shape[1]
        xs, self._queue = self._queue[:, :k], self._queue[:, k:]
        return xs, y.astype(np.float32)

    def _frames(self, fx: np.ndarray, fm: np.ndarray) -> np.ndarray:
        """``[C, K, n]`` frames of input and model -> the model's frames with the bands above
        the cutoff bounded, windowed for overlap-add. Below the cutoff the model's bins pass
        as they are; only the bins the bound reads or changes are computed."""
        w, kc, lo = self.window, self.kc, self.read_from
        spec_x = sp_fft.rfft(fx * w, axis=-1, workers=-1)
        out = sp_fft.rfft(fm * w, axis=-1, workers=-1)
        px = spectra.power(spec_x[..., lo:], self.joint) / self.pnorm  # the lower octave up
        ref_db = 10 * np.log10(px[..., self.ref.start - lo:kc - lo].mean(axis=-1) + _EPS)
        low_db = 10 * np.log10(px[..., self.low.start - lo:self.low.stop - lo].mean(axis=-1)
                               + _EPS)  # [G, K]
        slopes = self._slopes(ref_db, low_db - ref_db)
        spec_m = out[..., kc:]
        added = spec_m - spec_x[..., kc:]
        pd = spectra.power(added, self.joint) / self.pnorm  # [G, K, bins above]

        def bands(p: np.ndarray) -> np.ndarray:
            return np.add.reduceat(p, self.starts, axis=-1) / self.counts

        bound_db = ref_db[..., None] - slopes[..., None] * self.offsets_arr + MARGIN_DB
        room = np.maximum(10 ** (bound_db / 10) - bands(px[..., kc - lo:]), 0.0)  # [G, K, B]
        added_power = bands(pd)
        band_gain = np.where(added_power > _EPS,
                             np.minimum(1.0, np.sqrt(room / (added_power + _EPS))), 1.0)
        level_gain = np.repeat(band_gain, self.counts, axis=-1)
        guarded = pd * level_gain ** 2
        # each bin's bar: the median of its neighbours (a strong line does not raise its own
        # bar, as it raises a mean; a band's slope does not lower it, as it lowers a wide median)
        bar = self._local_medians(guarded)
        spike = np.minimum(1.0, np.sqrt(PEAK * bar / (guarded + _EPS)))
        gains = level_gain * spike * self._notches(guarded * spike ** 2)
        self.stats.energy_in += float(np.sum(spectra.power(spec_m, False)) / self.pnorm)
        out[..., kc:] = spec_x[..., kc:] + gains * added
        self.stats.frames += fx.shape[1]
        kept = (pd * gains ** 2).sum(axis=(0, 2))  # what it lowered: the bound, spikes, tones
        self.stats.limited_frames += int(np.sum(kept < pd.sum(axis=(0, 2)) * (1 - 1e-6)))
        p_out = spectra.power(out[..., kc:], False)  # [C, K, bins above]
        self.stats.energy_out += float(np.sum(p_out) / self.pnorm)
        if self.fill is not None:
            have = bands((p_out.sum(axis=0, keepdims=True) if self.joint else p_out)
                         / self.pnorm)
            filled = self._fill(out[..., kc:], 10 ** (self._fill_level(px, ref_db) / 10) - have)
            if self.floor_fill:  # the input's own floor where the band is fainter (floor.py)
                level = floor.levels(px[..., self.ref.start - lo:kc - lo], ref_db, self._share)
                self.stats.energy_fill += OVERLAP * floor.add(
                    out[..., kc:], p_out / self.pnorm + filled[self._group],
                    level[self._group], OVERLAP * self.pnorm, self._floor_rng)
        return sp_fft.irfft(out, n=self.n, axis=-1, workers=-1) * w / self.norm

    def _fill_level(self, px: np.ndarray, ref_db: np.ndarray) -> np.ndarray:
        """The fill's level (dB, ``[G, K, B]``): the predicted level of each band above the
        cutoff (at most the reference's), ``self.fill`` dB under (closer in quiet frames, down
        to ``self.quiet_fill``); no fill (-inf) past the predictor's bands."""
        assert self.fill is not None  # only called when filling
        freqs = self.freqs[self.read_from:]
        below = bandlevel.band_levels(px, freqs, self.below_edges)
        residual = bandlevel.residual_levels(px, freqs, self.cutoff_hz, self.freqs[-1])
        feats = bandlevel.features(ref_db, below, residual, self.cutoff_hz, self.level_alpha,
                                   self.level_state)
        # [G, K, ABOVE] relative to the reference, never above it
        pred = np.minimum(self.levels.predict(feats), 0.0)
        level = np.full((*ref_db.shape, len(self.bands)), -np.inf)
        n = min(len(self.bands), bandlevel.ABOVE)
        under = self.fill - QUIET_SLOPE * self._under_peak(ref_db)  # [G, K]
        under = np.maximum(under, min(self.fill, self.quiet_fill))
        level[..., :n] = ref_db[..., None] + pred[..., :n] - under[..., None]
        return level

    def _under_peak(self, ref_db: np.ndarray) -> np.ndarray:
        """How far (dB, ``[G, K]``) each frame's reference band lies under its running peak
        (frames in order; the peak falls by ``peak_decay`` dB a frame)."""
        out = np.empty(ref_db.shape)
        for g in range(ref_db.shape[0]):
            peak = self.peak[g]
            for k in range(ref_db.shape[1]):
                level = float(ref_db[g, k])
                peak = level if peak is None else max(level, peak - self.peak_decay)
                out[g, k] = peak - level
            self.peak[g] = peak
        return out

    def _fill(self, band: np.ndarray, lacking: np.ndarray) -> np.ndarray:
        """Add to ``band`` (``[C, K, bins above]``, in place) noise of the power each of its
        1/3-octave bands lacks (``lacking``, ``[G, K, B]`` in the units of the bound; nothing
        where it is not positive); return the power added to each bin of each channel once
        overlap-added (``[G, K, bins]``). The noise is the same in every channel (a centred
        band, like most music's top); each frame's draw follows the last one's."""
        channels, frames, bins = band.shape
        missing = np.repeat(np.maximum(lacking, 0.0), self.counts, axis=-1)
        if self.joint:
            missing = missing / channels  # the bound's power is the channels' sum
        # every bin of a frame gets the band's magnitude, only the phase is random: a few loud
        # frames (a piece's onsets) carry most of a soft piece's fill, and Gaussian magnitudes
        # would leave their chance peaks in its long-term spectrum
        noise = spectra.phasors(self._rng, (frames, bins))
        # noise of power p per bin, overlap-added and analysed again in these frames, has
        # power p / OVERLAP: the amplitude makes up for it
        power = (missing * (OVERLAP * self.pnorm)).astype(np.float32)
        band += np.sqrt(power) * noise[None]
        # every channel of a group gets the noise
        self.stats.energy_fill += float(np.sum(power) * channels / len(power) / self.pnorm)
        return missing

    def _local_medians(self, power: np.ndarray) -> np.ndarray:
        """The median power of ``power`` (``[G, K, bins above]``) in blocks of ``spike_bins``
        (odd) neighbouring bins (the last block takes the remainder), per bin."""
        width, bins = self.spike_bins, power.shape[-1]
        if bins < 2 * width:  # one block
            return np.broadcast_to(np.median(power, axis=-1, keepdims=True), power.shape)
        full = bins // width * width
        head = power[..., :full].reshape(*power.shape[:-1], -1, width)
        half = width // 2
        out = np.repeat(np.partition(head, half, axis=-1)[..., half], width, axis=-1)
        if bins > full:  # the remainder joins the last block
            last = np.median(power[..., full - width:], axis=-1, keepdims=True)
            out[..., full - width:] = last
            out = np.concatenate([out, np.broadcast_to(last, (*power.shape[:-1], bins - full))],
                                 axis=-1)
        return out

    def _notches(self, power: np.ndarray) -> np.ndarray:
        """Per frame, the gain of every bin above the cutoff that takes the persistent tones of
        the added band (``power``, ``[G, K, bins]``, after the level bound) down to the line
        ``TONE_DB`` over their neighbours' median (module doc); frames in order."""
        frames = power.shape[1]
        longterm = np.empty(power.shape)
        renew = np.zeros(frames, bool)
        for k in range(frames):
            a = max(self.tone_alpha, 1.0 / (self._tone_frames + 1))
            now = power[:, k]
            self._longterm = now.copy() if self._longterm is None else \
                self._longterm + a * (now - self._longterm)
            longterm[:, k] = self._longterm
            # every frame while the long-term spectrum is still a running mean (it moves
            # fast then), every TONE_EVERY frames after
            renew[k] = a > self.tone_alpha or self._tone_frames % TONE_EVERY == 0
            self._tone_frames += 1
        # the lines of all renewed frames in one call (each row on its own: the same values)
        level = 10 * np.log10(longterm[:, renew] + _EPS)
        line = spectra.median_line(level, self.tone_bins)
        notches = 10 ** (-np.maximum(level - line - TONE_DB, 0.0) / 20)
        out = np.empty(power.shape)
        j = 0
        for k in range(frames):
            if renew[k]:
                self._notch, j = notches[:, j], j + 1
            out[:, k] = self._notch
        return out

    def _slopes(self, ref_db: np.ndarray, per_octave: np.ndarray) -> np.ndarray:
        """A slope of the input (dB/octave, ``per_octave`` in each frame) per channel group
        and frame: smoothed over the non-silent frames in order (``ref_db`` above
        ``SILENT_DB``), the steepest before the first one."""
        state = self.slope
        out = np.empty(ref_db.shape)
        for g in range(ref_db.shape[0]):
            slope = state[g]
            for k in range(ref_db.shape[1]):
                if ref_db[g, k] > SILENT_DB:
                    now = min(max(per_octave[g, k], SLOPE_RANGE[0]), SLOPE_RANGE[1])
                    slope = now if slope is None else slope + self.alpha * (now - slope)
                out[g, k] = slope if slope is not None else SLOPE_RANGE[1]
            state[g] = slope
        return out


def _bands(freqs: np.ndarray, kc: int, cutoff_hz: float
           ) -> tuple[list[tuple[int, int]], list[float]]:
    """1/3-octave bin ranges from the cutoff bin to Nyquist, and each band's distance in
    octaves from the reference band's centre (fc / sqrt 2)."""
    bands, offsets = [], []
    nyq_bin = len(freqs)
    lo = kc
    f_lo = max(cutoff_hz, freqs[min(kc, nyq_bin - 1)])
    while lo < nyq_bin:
        f_hi = f_lo * 2 ** (1 / BANDS_PER_OCTAVE)
        hi = max(lo + 1, int(np.searchsorted(freqs, f_hi)))
        hi = min(hi, nyq_bin)
        centre = math.sqrt(f_lo * f_hi)
        bands.append((lo, hi))
        offsets.append(math.log2(centre / (cutoff_hz / math.sqrt(2))))
        lo, f_lo = hi, f_hi
    return bands, offsets
