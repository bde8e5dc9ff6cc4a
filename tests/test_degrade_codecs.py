"""Codec round trips: alignment, length, quality, achieved bitrate, purity and errors."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from upband.audio import encode_bytes
from upband.degrade import codecs
from upband.degrade.codecs import mp3, opus, opus_level, vorbis
from upband.errors import SpecError, UnsupportedFormatError


def music(sr: int, n: int, channels: int, seed: int = 0, top_hz: float = 3000.0) -> np.ndarray:
    """Harmonic tones plus noise below ``top_hz`` (kept by every stream rate LAME picks)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / sr
    noise = signal.sosfilt(signal.butter(8, top_hz, fs=sr, output="sos"),
                           rng.standard_normal((channels, n)))
    noise /= noise.std()
    tone = sum(np.sin(2 * np.pi * f * t + k) / (k + 1) for k, f in enumerate([220, 330, 440]))
    return (0.15 * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t)) * (0.5 * noise + tone)).astype(
        np.float32)


def lag(x: np.ndarray, y: np.ndarray) -> int:
    """Samples by which ``y`` trails ``x`` (cross-correlation peak of the channel sums)."""
    a, b = x.reshape(-1, x.shape[-1]).sum(0), y.reshape(-1, y.shape[-1]).sum(0)
    cc = signal.correlate(b.astype(np.float64), a.astype(np.float64), method="fft")
    lags = signal.correlation_lags(len(b), len(a))
    near = np.abs(lags) < 3000
    return int(lags[near][np.argmax(cc[near])])


def snr_db(x: np.ndarray, y: np.ndarray) -> float:
    x64 = x.astype(np.float64)
    return float(10 * np.log10(np.sum(x64**2) / np.sum((x64 - y) ** 2)))


# --------------------------------------------------------------------------------------------
# MP3
# --------------------------------------------------------------------------------------------


def test_mp3_128_is_aligned_and_clean() -> None:
    x = music(44100, 44100, 2)
    before = x.copy()
    y = mp3(x, 44100, 128)
    assert y.shape == x.shape and y.dtype == np.float32
    np.testing.assert_array_equal(x, before)
    assert lag(x, y) == 0
    assert snr_db(x, y) > 15  # measured 25.1 dB (LAME's 0.95 input scale caps it near 26)


@pytest.mark.parametrize(("sr", "channels", "kbps", "min_snr"), [
    (44100, 1, 8, 5), (44100, 2, 32, 9), (44100, 1, 32, 14),   # 8 / 16 / 22.05 kHz streams
    (48000, 2, 64, 15), (48000, 1, 16, 9), (22050, 2, 24, 5), (22050, 1, 320, 20),
])
def test_mp3_low_bitrates_and_other_rates_come_back_aligned(sr: int, channels: int, kbps: int,
                                                            min_snr: float) -> None:
    x = music(sr, sr + 7, channels)  # odd length
    y = mp3(x, sr, kbps)
    assert y.shape == x.shape
    assert lag(x, y) == 0
    assert snr_db(x, y) > min_snr


def test_mp3_low_bitrate_streams_lose_the_high_band() -> None:
    """44.1 kHz stereo at 32 kbit/s: LAME picks a 16 kHz stream, nothing above 8 kHz returns."""
    x = music(44100, 44100, 2, top_hz=20000)
    y = mp3(x, 44100, 32)
    f, p = signal.welch(y.astype(np.float64), 44100, nperseg=4096)
    _, px = signal.welch(x.astype(np.float64), 44100, nperseg=4096)
    assert 10 * np.log10(p[:, f > 8500].sum() / px[:, f > 8500].sum()) < -60


@pytest.mark.parametrize(("kbps", "gain"), [(128, -0.446), (320, 0.0)])
def test_mp3_keeps_lames_input_scale(kbps: int, gain: float) -> None:
    t = np.arange(44100) / 44100
    x = (0.3 * np.sin(2 * np.pi * 500 * t)).astype(np.float32)
    y = mp3(x, 44100, kbps)[5000:-5000].astype(np.float64)
    measured = 20 * np.log10(np.dot(y, x[5000:-5000]) / np.dot(x[5000:-5000], x[5000:-5000]))
    assert measured == pytest.approx(gain, abs=0.02)


def test_mp3_shapes_batches_and_channel_modes() -> None:
    x = music(44100, 8001, 2)
    batch = np.stack([x, x[::-1].copy()])
    yb = mp3(batch, 44100, 64)
    assert yb.shape == batch.shape
    np.testing.assert_array_equal(yb[1], mp3(batch[1], 44100, 64))  # deterministic encoder
    mono_each = mp3(x, 44100, 32, per_channel=True)
    np.testing.assert_array_equal(mono_each[1], mp3(x[1], 44100, 32))
    four = np.concatenate([x, x])
    assert mp3(four, 44100, 64).shape == (4, 8001)  # > 2 channels: one mono stream each
    assert mp3(x[0], 44100, 64).shape == (8001,)
    assert mp3(np.zeros((2, 0), np.float32), 44100, 64).shape == (2, 0)


@pytest.mark.parametrize(("sr", "kbps", "quality", "message"), [
    (44100, 100, 2, r"MP3 bitrate must be one of 8, 16, .*, 320 kbit/s, got 100"),
    (44100, 400, 2, r"MP3 bitrate must be one of"),
    (44100, 128, 10, r"LAME quality must be an integer from 0"),
    (4000, 128, 2, r"sample rate must be an integer from 8000"),
])
def test_mp3_errors(sr: int, kbps: int, quality: int, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        mp3(np.zeros((1, 1000), np.float32), sr, kbps, quality=quality)


# --------------------------------------------------------------------------------------------
# Opus and Vorbis
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("kbps", [16, 32, 64, 128])
def test_opus_achieved_bitrate_within_25_percent(channels: int, kbps: int) -> None:
    seconds = 4
    x = music(48000, 48000 * seconds, channels, top_hz=16000)
    data = encode_bytes(x, 48000, format="OGG", subtype="OPUS",
                        compression_level=opus_level(kbps, channels))
    achieved = len(data) * 8 / seconds / 1000  # measured 18.2 / 34.3 / 66.6 / 131.2 kbit/s
    assert achieved == pytest.approx(kbps, rel=0.25)


@pytest.mark.parametrize(("sr", "channels"), [(48000, 2), (44100, 2), (22050, 1), (16000, 2)])
def test_opus_round_trip_aligned(sr: int, channels: int) -> None:
    x = music(sr, sr + 3, channels)
    before = x.copy()
    y = opus(x, sr, 64 * channels)
    assert y.shape == x.shape and y.dtype == np.float32
    np.testing.assert_array_equal(x, before)
    assert lag(x, y) == 0
    assert snr_db(x, y) > 12  # measured 15.7-22.9 dB


def test_opus_low_bitrate_lags_at_most_two_samples() -> None:
    """Below 64 kbit/s Opus runs SILK/hybrid and comes back 1-2 samples early at 48 kHz."""
    x = music(48000, 48000, 1)
    assert -2 <= lag(x, opus(x, 48000, 16)) <= 0


@pytest.mark.parametrize(("sr", "channels"), [(44100, 2), (22050, 1)])
def test_vorbis_round_trip_aligned(sr: int, channels: int) -> None:
    x = music(sr, sr + 5, channels)
    y = vorbis(x, sr, 5)
    assert y.shape == x.shape and lag(x, y) == 0
    assert snr_db(x, y) > 10  # measured 10.9-19.4 dB


def test_ogg_codecs_split_more_than_two_channels() -> None:
    x = np.concatenate([music(48000, 9000, 2), music(48000, 9000, 2, seed=1),
                        music(48000, 9000, 2, seed=2)])
    y = opus(x, 48000, 64)
    assert y.shape == (6, 9000)
    # channel 6 would be the LFE of an Ogg 5.1 stream (low-passed); mono streams keep it whole
    assert snr_db(x[5], y[5]) > 10


@pytest.mark.parametrize(("call", "message"), [
    (lambda x: opus(x, 48000, 600), r"Opus bitrate must be 6 to 256 kbit/s per channel"),
    (lambda x: opus(x, 48000, 4), r"Opus bitrate must be 6 to 256 kbit/s per channel"),
    (lambda x: vorbis(x, 44100, 11), r"Vorbis quality must be a number from 0 to 10"),
])
def test_ogg_errors(call: object, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        call(np.zeros((1, 1000), np.float32))  # type: ignore[operator]


def test_missing_opus_support_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_opus(*args: object, **kwargs: object) -> bytes:
        raise UnsupportedFormatError("cannot encode OGG/OPUS at 48000 Hz: unsupported")

    monkeypatch.setattr(codecs, "encode_bytes", no_opus)
    with pytest.raises(UnsupportedFormatError, match=r"Opus needs libsndfile >= 1.0.29"):
        opus(np.zeros((1, 1000), np.float32), 48000, 64)
