"""The effective-bandwidth detector finds every filter family's cutoff, on noise and on music.

"The cutoff" of a filter is its classical −3 dB point, i.e. where zero-phase filtering has taken
the content 6 dB down; it is measured here from white noise through the very same filter (for
Butterworth and Bessel it is the nominal cutoff; see upband/analysis/detect.py).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pytest
from scipy import signal

from upband import audio
from upband.analysis import (
    FULL_BAND_HZ,
    BandwidthAnalyzer,
    detect_bandwidth,
    detect_file,
    reaches_full_band,
)
from upband.analysis.detect import HOLE_FRAMES
from upband.degrade import lowpass, mp3

DATA = Path(__file__).parent / "data"
SR = 44100
STEEP = ("butter:6", "butter:10", "cheby1:6", "cheby2:8", "ellip:6", "subsample", "stft")


@cache
def true_cutoff(cutoff: float, spec: str, sr: int = SR) -> float:
    """The −6 dB (zero-phase) frequency of ``spec`` at ``cutoff``, from 30 s of white noise."""
    noise = np.random.default_rng(123).standard_normal(sr * 30)
    f, p_in = signal.welch(noise, sr, nperseg=16384)
    _, p_out = signal.welch(lowpass(noise, sr, cutoff, spec), sr, nperseg=16384)
    gain = 10 * np.log10(p_out / p_in)
    return float(f[np.nonzero(gain >= -6.0)[0][-1]])


@pytest.fixture(scope="module")
def music() -> np.ndarray:
    x, sr = audio.read(DATA / "loop_compus_3s.flac")
    assert sr == SR
    return x


@pytest.fixture(scope="module")
def noise() -> np.ndarray:
    return (0.1 * np.random.default_rng(0).standard_normal((2, SR * 5))).astype(np.float32)


@pytest.mark.parametrize("cutoff", [4000.0, 11025.0])
@pytest.mark.parametrize("spec", [*STEEP, "bessel:6"])
def test_every_family_on_noise(noise: np.ndarray, spec: str, cutoff: float) -> None:
    found = detect_bandwidth(lowpass(noise, SR, cutoff, spec), SR)
    assert not found.full_band
    assert found.cutoff_hz == pytest.approx(true_cutoff(cutoff, spec), rel=0.05)


@pytest.mark.parametrize("cutoff", [4000.0, 8000.0, 11025.0, 16000.0])
@pytest.mark.parametrize("spec", STEEP)
def test_steep_families_on_music(music: np.ndarray, spec: str, cutoff: float) -> None:
    found = detect_bandwidth(lowpass(music, SR, cutoff, spec), SR)
    assert found.cutoff_hz == pytest.approx(true_cutoff(cutoff, spec), rel=0.05)


def test_nominal_cutoff_is_the_minus_3_db_point_for_butterworth_and_bessel() -> None:
    for spec in ("butter:6", "bessel:6"):
        assert true_cutoff(8000.0, spec) == pytest.approx(8000.0, rel=0.005)


@pytest.mark.parametrize("sr", [16000, 22050, 48000, 96000, 192000])
def test_other_sample_rates(sr: int) -> None:
    x = (0.1 * np.random.default_rng(1).standard_normal((1, sr * 3))).astype(np.float32)
    cutoff = min(0.35 * sr / 2, 12000.0)
    assert detect_bandwidth(lowpass(x, sr, cutoff, "butter:8"), sr).cutoff_hz == pytest.approx(
        cutoff, rel=0.05)
    assert detect_bandwidth(x, sr).full_band


def test_content_to_20_khz_is_full_band_at_high_rates() -> None:
    # a 96 kHz master made from a 44.1 kHz source, or a 48 kHz Opus file: nothing to restore
    x = (0.1 * np.random.default_rng(2).standard_normal((2, 96000 * 2))).astype(np.float32)
    found = detect_bandwidth(lowpass(x, 96000, 21000.0, "ellip:10"), 96000)
    assert found.full_band and found.cutoff_hz == 48000
    found = detect_bandwidth(lowpass(x, 96000, 16000.0, "ellip:10"), 96000)
    assert not found.full_band and found.cutoff_hz == pytest.approx(16300, rel=0.05)


def test_full_band_for_its_own_rate_and_for_an_output_rate() -> None:
    # 22.05 kHz noise fills its own band (to 11 kHz) but not a 44.1 kHz output's (to 22 kHz)
    x = (0.1 * np.random.default_rng(4).standard_normal((1, 22050 * 3))).astype(np.float32)
    found = detect_bandwidth(x, 22050)
    assert found.full_band and found.full_band_at(22050) and not found.full_band_at(44100)
    assert reaches_full_band(found.cutoff_hz, 22050) and not reaches_full_band(11025, 44100)
    # from 19 kHz up a cutoff is full band at any rate; silence is full band at every rate
    assert reaches_full_band(FULL_BAND_HZ, 96000) and not reaches_full_band(18000, 96000)
    silent = detect_bandwidth(np.zeros((2, 22050), np.float32), 22050)
    assert silent.full_band_at(192000)


def test_full_band_inputs(music: np.ndarray, noise: np.ndarray) -> None:
    for x in (music, noise):
        found = detect_bandwidth(x, SR)
        assert found.full_band and not found.silent and found.codec == "none"
        assert found.cutoff_hz == SR / 2


@pytest.mark.parametrize("level", [0.0, 1e-7])
def test_silence(level: float) -> None:
    x = np.full((2, SR), level, np.float32)
    found = detect_bandwidth(x, SR)
    assert found.silent and found.full_band and found.summary() == "silent"


def test_robust_to_a_noise_floor(music: np.ndarray) -> None:
    y = lowpass(music, SR, 8000.0, "cheby1:6")
    rms = float(np.sqrt(np.mean(y ** 2)))
    hiss = np.random.default_rng(5).standard_normal(y.shape).astype(np.float32) * rms * 1e-3
    found = detect_bandwidth(y + hiss, SR)  # hiss 60 dB below the music, full band
    assert found.cutoff_hz == pytest.approx(true_cutoff(8000.0, "cheby1:6"), rel=0.05)


def test_ignores_silent_stretches(music: np.ndarray) -> None:
    y = lowpass(music, SR, 6000.0, "ellip:6")
    padded = np.concatenate([np.zeros((2, SR * 5), np.float32), y,
                             np.zeros((2, SR * 5), np.float32)], axis=1)
    assert detect_bandwidth(padded, SR).cutoff_hz == pytest.approx(
        detect_bandwidth(y, SR).cutoff_hz, rel=0.01)


@pytest.mark.parametrize("kbps, lo, hi", [(64, 10_000, 11_500), (128, 15_500, 17_500)])
def test_mp3_looks_like_a_lossy_codec(music: np.ndarray, kbps: int, lo: float, hi: float) -> None:
    found = detect_bandwidth(mp3(music, SR, kbps), SR)
    assert lo < found.cutoff_hz < hi  # LAME's own low-pass for this bitrate
    assert found.codec == "lossy"
    assert "lossy codec" in found.summary()


@pytest.mark.parametrize("spec", ["cheby1:8", "butter:6", "bessel:6"])
def test_analogue_style_filters_are_not_called_codecs(music: np.ndarray, spec: str) -> None:
    assert detect_bandwidth(lowpass(music, SR, 9000.0, spec), SR).codec == "none"


def test_streaming_equals_one_shot(music: np.ndarray) -> None:
    y = lowpass(music, SR, 7000.0, "butter:8")
    analyzer = BandwidthAnalyzer(SR)
    start = 0
    for size in (1, 5000, 123, 40000, 8191):
        analyzer.update(y[:, start:start + size])
        start += size
    analyzer.update(y[:, start:])
    assert analyzer.result() == detect_bandwidth(y, SR)


def test_detect_file_reads_a_bounded_excerpt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             music: np.ndarray) -> None:
    y = np.tile(lowpass(music, SR, 5000.0, "cheby1:6"), 20)  # 60 s
    path = tmp_path / "long.flac"
    audio.write(path, y, SR, subtype="PCM_24")
    decoded = []
    real_read = audio.AudioReader.read

    def counting_read(self: audio.AudioReader, frames: int = -1) -> np.ndarray:
        block = real_read(self, frames)
        decoded.append(block.shape[1])
        return block

    monkeypatch.setattr(audio.AudioReader, "read", counting_read)
    found = detect_file(path, max_seconds=12.0, excerpts=6)
    assert sum(decoded) <= 12 * SR
    assert found.cutoff_hz == pytest.approx(true_cutoff(5000.0, "cheby1:6"), rel=0.05)


def test_the_hole_reservoir_keeps_what_a_frame_by_frame_draw_keeps() -> None:
    """The hole analysis keeps a uniform sample of ``HOLE_FRAMES`` frame spectra (reservoir
    sampling, fixed seed), its spectra computed in one call per block: the same frames, the
    same spectra as drawing frame by frame, whatever the blocks."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 40 * 44100)).astype(np.float32)  # about 3 000 hole frames
    mono = x.astype(np.float64).mean(axis=0)
    n, hop = 1152, 576
    window = signal.windows.hann(n, sym=False)
    draws = np.random.default_rng(0)
    kept: list[np.ndarray] = []
    for seen, start in enumerate(range(0, mono.size - n + 1, hop), start=1):
        spectrum = (np.abs(np.fft.rfft(mono[start:start + n] * window)) ** 2).astype(np.float32)
        if len(kept) < HOLE_FRAMES:
            kept.append(spectrum)
        elif (j := int(draws.integers(seen))) < HOLE_FRAMES:
            kept[j] = spectrum
    assert len(kept) == HOLE_FRAMES
    for block in (x.shape[1], 44100, 7000):
        analyzer = BandwidthAnalyzer(44100)
        for i in range(0, x.shape[1], block):
            analyzer.update(x[:, i:i + block])
        assert len(analyzer._hole_frames) == HOLE_FRAMES
        assert all(np.array_equal(a, b) for a, b in zip(analyzer._hole_frames, kept, strict=True))
