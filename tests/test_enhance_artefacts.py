"""No fixed-frequency artefacts and no hiss in silences (issue 13's artefact target).

The piece is quiet, acoustic-like and full of silent gaps: 20 plucked notes of random pitch at
-30 dBFS (harmonics below 9 kHz, a short noise "hammer" at each onset) over a room-noise floor
at -80 dBFS, 12 s. Its band above 12 kHz is smooth (no peak 3 dB over its neighbours), so any
peak the restored band shows there is the enhancement's own.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage, signal

from upband import audio
from upband.analysis import detect_bandwidth
from upband.degrade import lowpass
from upband.enhancement import enhance
from upband.enhancement.guard import LevelGuard

SR = 44100
BAND = (12_000.0, 20_000.0)
ONSET_EVERY = (12.0 - 0.9) / 20


def quiet_piece(seconds: float = 12.0, notes: int = 20, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    x = np.zeros(t.size)
    for on in 0.1 + ONSET_EVERY * np.arange(notes):
        f0 = rng.uniform(100, 1000)
        idx = (t >= on) & (t < on + 0.45)
        tt = t[idx] - on
        env = np.exp(-tt * 6) * np.minimum(1, tt / 0.005)
        note = sum(0.7 ** k * np.sin(2 * np.pi * f0 * (k + 1) * tt + rng.uniform(0, 6))
                   for k in range(int(9000 / f0)))
        x[idx] += env * note + rng.standard_normal(idx.sum()) * np.exp(-tt * 40) * 0.3
    x *= 10 ** (-30 / 20) / np.sqrt(np.mean(x[x != 0] ** 2))
    x += 10 ** (-80 / 20) * rng.standard_normal(t.size)
    return np.stack([x, np.roll(x, 50)]).astype(np.float32)


def band_power_db(x: np.ndarray) -> float:
    """The level of ``x``'s first channel in BAND (dB)."""
    f, p = signal.welch(x[0], SR, nperseg=4096)
    return float(10 * np.log10(np.mean(p[(f > BAND[0]) & (f < BAND[1])]) + 1e-30))


def peaks_db(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(frequencies, height in dB over the 41-bin median) of the long-term spectrum in BAND."""
    f, p = signal.welch(x[0], SR, nperseg=4096)
    level = 10 * np.log10(p + 1e-30)
    height = level - ndimage.median_filter(level, size=41)
    band = (f > BAND[0]) & (f < BAND[1])
    return f[band], height[band]


@pytest.fixture(scope="module")
def piece() -> tuple[np.ndarray, np.ndarray]:
    clean = quiet_piece()
    degraded = lowpass(clean, SR, 11025.0, "cheby1:8")
    restored, _ = enhance(degraded, SR, model="upband-default", device="cpu")
    return clean, restored


def test_the_piece_has_a_smooth_high_band(piece: tuple[np.ndarray, np.ndarray]) -> None:
    _, height = peaks_db(piece[0])
    assert height.max() < 3.0


def gap_levels_db(clean: np.ndarray, restored: np.ndarray) -> list[float]:
    """The level of the band above 12 kHz in the piece's silent gaps: original, restored."""
    f, t, z_clean = signal.stft(clean[0], SR, nperseg=2048)
    _, _, z_out = signal.stft(restored[0], SR, nperseg=2048)
    onsets = 0.1 + ONSET_EVERY * np.arange(20)
    gaps = np.ones(t.size, bool)
    for on in onsets:
        gaps &= ~((t > on - 0.05) & (t < on + 0.5))
    assert gaps.sum() > 20
    high = f > BAND[0]
    return [float(10 * np.log10(np.mean(np.abs(z[high][:, gaps]) ** 2)))
            for z in (z_clean, z_out)]


def test_restored_band_stays_below_the_original_in_silences(
        piece: tuple[np.ndarray, np.ndarray]) -> None:
    level = gap_levels_db(*piece)
    assert level[1] < level[0]


def test_a_resampled_piece_is_filled_closer_without_peaks_or_hiss() -> None:
    """The piece through 22.05 kHz and back: a sharp shelf without a codec's holes, where the
    fill comes closer (6 dB under the prediction, quiet frames down to 3). Its restored band
    has no long-term peak over 6 dB (3.4 dB measured) and stays under the original in the
    gaps (-122 dB against -111.5)."""
    clean = quiet_piece()
    x = audio.resample(audio.resample(clean, SR, 22050), 22050, SR)[:, :clean.shape[1]]
    assert detect_bandwidth(x, SR).codec == "brickwall"
    restored, _ = enhance(x, SR, model="upband-default", device="cpu")
    f, height = peaks_db(restored)
    assert height.max() <= 6.0, f"{height.max():.1f} dB at {f[height.argmax()]:.0f} Hz"
    level = gap_levels_db(clean, restored)
    assert level[1] < level[0]
    # the fill is there (-115 dB above 12 kHz, -132 without it), under the original's (-93)
    bare, _ = enhance(x, SR, model="upband-default", device="cpu", fill=False)
    assert band_power_db(bare) + 10 < band_power_db(restored) < band_power_db(clean) - 10


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_no_fixed_frequency_peak_in_the_restored_band(
        seed: int, piece: tuple[np.ndarray, np.ndarray]) -> None:
    """Issue 13's target on four draws of the piece (other notes): upband-default's restored
    band has no long-term peak more than 6 dB over its median (with the fill, on by default,
    quiet frames filled closer: 5.0 / 4.8 / 4.7 / 4.9 dB; 4.9 / 5.6 / 5.7 / 5.0 dB before
    that, 2026-12-07; 6.1 on seed 0 while the fill's noise had Gaussian
    magnitudes; without the fill 5.4 / 5.2 / 5.4 / 5.2; 9.0 on seed 0 before the guard's
    median bar and 21-bin tone line)."""
    if seed == 0:
        restored = piece[1]
    else:
        degraded = lowpass(quiet_piece(seed=seed), SR, 11025.0, "cheby1:8")
        restored, _ = enhance(degraded, SR, model="upband-default", device="cpu")
    f, height = peaks_db(restored)
    assert height.max() <= 6.0, f"{height.max():.1f} dB at {f[height.argmax()]:.0f} Hz"


def test_the_guard_notches_a_persistent_tone_of_the_model() -> None:
    """A model that adds a soft noise band and a fixed 16 kHz tone: the guard takes the tone
    down to the band's level and leaves the band's level within 1.5 dB."""
    clean = quiet_piece()
    x = lowpass(clean, SR, 11025.0, "cheby1:8")
    rng = np.random.default_rng(1)
    t = np.arange(x.shape[1]) / SR
    hiss = lowpass(rng.standard_normal(x.shape) * 1e-4, SR, 20_000.0, "butter:8")
    hiss = hiss - lowpass(hiss, SR, 12_000.0, "butter:8")
    m = (x + hiss + 3e-5 * np.sin(2 * np.pi * 16_000.0 * t)).astype(np.float32)
    guard = LevelGuard(11_400.0, SR, 2)
    xs, guarded = guard.push(x, m, last=True)
    assert xs.shape == guarded.shape == x.shape
    f, before = peaks_db(m - x)
    _, after = peaks_db(guarded - x)
    at = np.argmin(np.abs(f - 16_000.0))
    assert before[at] > 15.0 and after[at] < 6.0
    power = [np.mean(np.square(s)) for s in (m - x, guarded - x)]
    assert abs(10 * np.log10(power[1] / power[0])) < 1.5 + 10 * np.log10(
        1 + (3e-5) ** 2 / 2 / power[0])
