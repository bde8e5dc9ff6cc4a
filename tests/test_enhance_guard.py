"""The level guard: the band a model adds above the cutoff follows the input's own level in
time, stays below the original in silences, never grows, and streams exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage, signal

from upband import audio
from upband.degrade import lowpass
from upband.enhancement import enhance
from upband.enhancement.guard import LevelGuard
from upband.enhancement.spectra import median_line, overlap_add, power
from upband.models.base import WaveModel

SR = 44100
CUTOFF = 8000.0


def _notes(seconds: float = 4.0, floor_db: float = -90.0) -> np.ndarray:
    """Decaying harmonic notes (to 20 kHz) with silent gaps between them and a noise floor."""
    rng = np.random.default_rng(5)
    t = np.arange(int(seconds * SR)) / SR
    x = np.zeros((2, t.size))
    for start in np.arange(0.0, seconds, 1.0):  # a note every second, 0.5 s long
        on = (t >= start) & (t < start + 0.5)
        f0 = 220.0 * 2 ** (rng.integers(0, 12) / 12)
        env = np.exp(-(t - start) * 6.0) * on
        for k in range(1, int(20000 / f0)):
            x += 0.3 / k * env * np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 6.3))
    x += 10 ** (floor_db / 20) * rng.standard_normal(x.shape)
    return x.astype(np.float32)


def _band_db(x: np.ndarray, lo: float, frames: slice | None = None) -> np.ndarray:
    """Level above ``lo`` Hz per 2 048-sample frame (dB)."""
    n = 2048
    k = x.shape[1] // n
    f = np.fft.rfftfreq(n, 1 / SR)
    spec = np.fft.rfft(x[:, :k * n].reshape(2, k, n) * np.hanning(n), axis=2)
    level = 10 * np.log10(np.mean(np.abs(spec[:, :, f > lo]) ** 2, axis=(0, 2)) + 1e-30)
    return level if frames is None else level[frames]


def _gaps(seconds: float = 4.0) -> np.ndarray:
    """Frames well inside the silent halves of every second (after the notes' decay)."""
    n = 2048
    centres = (np.arange(int(seconds * SR) // n) + 0.5) * n / SR
    return (centres % 1.0 > 0.75) & (centres % 1.0 < 0.95)


def test_streaming_equals_one_pass() -> None:
    x = lowpass(_notes(2.0), SR, CUTOFF, "butter:8").astype(np.float32)
    m = x + 0.01 * np.random.default_rng(1).standard_normal(x.shape).astype(np.float32)
    xs, whole = LevelGuard(CUTOFF, SR, 2).push(x, m, last=True)
    assert whole.shape == m.shape and np.array_equal(xs, x)
    guard = LevelGuard(CUTOFF, SR, 2)
    parts_x, parts_m, start = [], [], 0
    for size in np.random.default_rng(2).integers(1, 5000, 100):
        end = min(x.shape[1], start + int(size))
        a, b = guard.push(x[:, start:end], m[:, start:end], last=end == x.shape[1])
        parts_x.append(a)
        parts_m.append(b)
        start = end
        if end == x.shape[1]:
            break
    assert np.array_equal(np.concatenate(parts_x, 1), x)
    np.testing.assert_allclose(np.concatenate(parts_m, 1), whole, atol=1e-6)


@pytest.mark.parametrize("shape", [(1, 200, 513), (2, 130, 40), (1, 0, 20)])
def test_the_tone_line_is_the_running_median_of_its_neighbours(shape: tuple[int, ...]) -> None:
    level = np.random.default_rng(sum(shape)).standard_normal(shape)
    expected = ndimage.median_filter(level, size=(1, 1, 31), mode="nearest")
    assert np.array_equal(median_line(level, 31), expected)


@pytest.mark.parametrize(("frames", "offset"), [(37, 0), (1, 3), (128, 700)])
def test_overlap_add_equals_adding_frame_by_frame(frames: int, offset: int) -> None:
    rng = np.random.default_rng(frames)
    n, hop = 64, 16
    synth = rng.standard_normal((2, frames, n))
    before = rng.standard_normal((2, offset + (frames - 1) * hop + n + 5))
    expected = before.copy()
    for k in range(frames):
        expected[:, offset + k * hop:offset + k * hop + n] += synth[:, k]
    out = before.copy()
    overlap_add(out[:, offset:], synth, hop)  # into a view, as the guard does
    assert np.array_equal(out, expected)  # the same sums in the same order: bit for bit
    strided = np.zeros((2, 3 * n))
    overlap_add(strided[:, ::2], synth[:, :1], hop)  # a strided view gets the sums too
    assert np.array_equal(strided[:, :2 * n:2], synth[:, 0]) and not strided[:, 1::2].any()


def test_bin_power_of_complex_frames() -> None:
    rng = np.random.default_rng(3)
    spec = (rng.standard_normal((2, 5, 40)) + 1j * rng.standard_normal((2, 5, 40)))
    spec = spec.astype(np.complex64)[..., 7:]  # a slice, as the guard passes
    expected = np.abs(spec.astype(np.complex128)) ** 2
    np.testing.assert_allclose(power(spec, False), expected, rtol=1e-6)
    np.testing.assert_allclose(power(spec, True), expected.sum(0, keepdims=True), rtol=1e-6)
    assert power(spec, True).shape == (1, 5, 33) and power(spec, False).dtype == np.float32


@pytest.mark.parametrize("bins", [513, 45, 10])
def test_the_spike_bar_is_the_median_of_blocks_of_neighbours(bins: int) -> None:
    guard = LevelGuard(CUTOFF, SR, 2)
    width = guard.spike_bins
    power = np.random.default_rng(bins).random((1, 3, bins))
    bar = guard._local_medians(power)
    assert bar.shape == power.shape
    blocks = max(1, bins // width)
    for b in range(blocks):  # the last block takes the remainder
        stop = bins if b == blocks - 1 else (b + 1) * width
        expected = np.median(power[..., b * width:stop], axis=-1, keepdims=True)
        np.testing.assert_array_equal(bar[..., b * width:stop],
                                      np.broadcast_to(expected, bar[..., b * width:stop].shape))


def test_a_band_within_its_bound_is_left_alone() -> None:
    x = _notes(2.0)  # full band: the "model's band" is the input's own, at the input's level
    guard = LevelGuard(CUTOFF, SR, 2)
    _, out = guard.push(x, x, last=True)
    assert guard.stats.reduction_db > -1.0  # at most the odd frame touched
    np.testing.assert_allclose(out[:, 4096:-4096], x[:, 4096:-4096], atol=2e-2)


@pytest.mark.parametrize("cutoff", [1500.0, CUTOFF])
def test_never_takes_away_what_the_input_holds(cutoff: float) -> None:
    """An identity model passes unchanged, even when the detected cutoff lies far below the
    music's real content (a dark soundtrack detected at 1.5 kHz lost 8 to 34 dB of SNR to the
    guard's first version, which bounded the whole band instead of what the model adds); a
    model that adds hiss is turned down to the bound, never below the input."""
    x = _notes(2.0)
    guard = LevelGuard(cutoff, SR, 2)
    _, out = guard.push(x, x, last=True)
    assert guard.stats.limited_frames == 0 and guard.stats.reduction_db == pytest.approx(0.0)
    np.testing.assert_allclose(out, x, atol=1e-5)
    hiss = x + 0.05 * np.random.default_rng(3).standard_normal(x.shape).astype(np.float32)
    guard = LevelGuard(cutoff, SR, 2)
    _, out = guard.push(x, hiss, last=True)
    assert guard.stats.reduction_db < -3.0
    residual = _band_db(out - x, 12_000)
    assert np.median(residual) < np.median(_band_db(hiss - x, 12_000)) - 3.0


def test_hiss_follows_the_music_and_stays_below_the_original_in_silences() -> None:
    clean = _notes()
    x = lowpass(clean, SR, CUTOFF, "butter:8").astype(np.float32)
    hiss = 10 ** (-50 / 20) * np.random.default_rng(3).standard_normal(x.shape)
    m = (x + hiss).astype(np.float32)  # a model that adds a constant floor above the cutoff
    guard = LevelGuard(CUTOFF, SR, 2)
    _, out = guard.push(x, m, last=True)
    gaps = _gaps()
    clean_db, model_db, out_db = (_band_db(s, 9000.0)[gaps] for s in (clean, m, out))
    assert np.all(model_db > clean_db + 30)  # the floor the guard has to remove
    assert np.all(out_db < clean_db + 3.0)  # in silences: not above the original's level
    assert guard.stats.reduction_db < -1.0 and 0.3 < guard.stats.limited_fraction <= 1
    # during the notes the band is kept at the music's level: not removed
    notes = ~_gaps() & (np.arange(gaps.size) * 2048 / SR % 1.0 < 0.3)
    assert np.median(_band_db(out, 9000.0)[notes]) > np.median(_band_db(clean, 9000.0)[notes]) - 20


class _Hiss(WaveModel):
    """Adds white noise at -40 dBFS: the failure the guard exists for."""

    name = "test-hiss"

    def __init__(self) -> None:
        super().__init__(channels=2, stride=1)
        self.level = torch.nn.Parameter(torch.tensor(0.01))

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        g = torch.Generator().manual_seed(0)
        return self.level * torch.randn(x.shape, generator=g, dtype=x.dtype)

    def _receptive_field(self) -> int:
        return 1


@pytest.mark.parametrize("guard", [True, False])
def test_enhance_keeps_the_input_below_the_cutoff_with_or_without_the_guard(guard: bool) -> None:
    clean = _notes(3.0)
    x = lowpass(clean, SR, CUTOFF, "butter:8").astype(np.float32)
    y, rate = enhance(x, SR, model=_Hiss().eval(), device="cpu", guard=guard, clip_mode="none")
    assert rate == SR and y.shape == x.shape
    # Welch (Hann segments): a rectangular window over the whole signal would leak the band
    # above the cutoff (raised at the signal's abrupt start by the roll-off compensation)
    f, p_err = signal.welch(y - x, SR, nperseg=16384, axis=-1)
    _, p_x = signal.welch(x, SR, nperseg=16384, axis=-1)
    low = f < 6000
    err = p_err[:, low].sum() / p_x[:, low].sum()
    assert 10 * np.log10(err) < -60  # below the cutoff the output is the input
    gaps = _gaps(3.0)
    gap_db = np.median(_band_db(y, 10000.0)[gaps])
    if guard:
        assert gap_db < np.median(_band_db(clean, 10000.0)[gaps]) + 3.0
    else:
        assert gap_db > -60  # the hiss the guard removes


def sloped_noise(seconds: float, db_per_octave: float) -> np.ndarray:
    """Stationary noise whose spectrum falls ``db_per_octave`` (a music-like trend, no tones)."""
    rng = np.random.default_rng(11)
    n = int(seconds * SR)
    spec = np.fft.rfft(rng.standard_normal((2, n)), axis=1)
    f = np.maximum(np.fft.rfftfreq(n, 1 / SR), 50.0)
    x = np.fft.irfft(spec * 10 ** (db_per_octave * np.log2(f / 1000.0) / 20), n=n, axis=1)
    return (0.1 * x / np.max(np.abs(x))).astype(np.float32)


def band_level(x: np.ndarray, rate: int, lo: float, hi: float) -> float:
    spec = np.mean(np.abs(np.fft.rfft(x, axis=1)) ** 2, axis=0)
    f = np.fft.rfftfreq(x.shape[1], 1 / rate)
    return float(10 * np.log10(np.mean(spec[(f >= lo) & (f < hi)]) + 1e-30))


def test_no_hole_between_the_kept_and_the_restored_band_of_an_upsampled_file() -> None:
    """A 22.05 kHz file: its upsampled content ends at the resampler's pass band (about 10.4
    kHz), so the merge hands over to the model below that instead of at 11 kHz."""
    low_rate = 22050
    x = audio.resample(sloped_noise(3.0, db_per_octave=-3.0), SR, low_rate)
    y, rate = enhance(x, low_rate, model=_Hiss().eval(), device="cpu", guard=False,
                      clip_mode="none")
    assert rate == SR
    kept = band_level(y, rate, 8000, 9500)
    edge = band_level(y, rate, 10300, 11300)  # where the old merge left the input's roll-off
    above = band_level(y, rate, 11300, 13000)
    assert edge > min(kept, above) - 3.0, (kept, edge, above)  # before: a 6 dB hole
