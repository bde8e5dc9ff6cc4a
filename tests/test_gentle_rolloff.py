"""A roll-off that may be music's own is not taken for a cutoff (issue 13's do-no-harm).

Unfiltered dark music (the corpus's soundtrack excerpts) fits a Butterworth-4 low-pass at
1.4-3 kHz; restoring "the band above" replaced real content and cost up to 32 dB of SNR. Such an
input is passed through by default (``Bandwidth.gentle``, ``choose_route``), a steep filter or a
codec still gets enhanced, and ``--enhance-gentle`` / ``pass_gentle=False`` restores the old
behaviour. Two steeper roll-offs are an instrument's own as well (``Bandwidth.own_rolloff``):
one after a trend rising steeply into it (a tambourine's jingles), and one under 2 kHz (a kick
drum); drum samples of the corpus lose 1-33 dB of SNR when they are restored.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from upband import audio
from upband.analysis import detect_bandwidth
from upband.cli import main
from upband.degrade import lowpass, mp3
from upband.enhancement import UNITTEST_MODEL, Settings, choose_route, enhance, load_enhancer
from upband.enhancement.merge import MERGE_TRANSITION

SR = 44100
DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def music() -> np.ndarray:
    x, sr = audio.read(DATA / "loop_compus_3s.flac")
    assert sr == SR
    return x


@pytest.mark.parametrize("spec", ["butter:4", "bessel:6"])
def test_gentle_shapes_are_called_gentle(music: np.ndarray, spec: str) -> None:
    found = detect_bandwidth(lowpass(music, SR, 3000.0, spec), SR)
    assert not found.full_band and found.gentle
    assert "may be the music's own" in found.summary()


@pytest.mark.parametrize("spec", ["butter:8", "cheby1:6", "ellip:6", "stft"])
def test_steep_filters_and_codecs_are_not(music: np.ndarray, spec: str) -> None:
    found = detect_bandwidth(lowpass(music, SR, 8000.0, spec), SR)
    assert not found.full_band and not found.gentle and not found.own_rolloff
    coded = detect_bandwidth(mp3(music, SR, 64), SR)
    assert not coded.full_band and not coded.gentle and not coded.own_rolloff
    assert not detect_bandwidth(music, SR).gentle  # full band is never "gentle"


def test_a_gentle_roll_off_is_passed_through(music: np.ndarray) -> None:
    dark = lowpass(music, SR, 2500.0, "butter:4")
    y, rate = enhance(dark, SR, model=UNITTEST_MODEL, device="cpu")
    assert rate == SR and np.array_equal(y, dark)
    # asked to, the model restores above the fitted cutoff as before
    y, _ = enhance(dark, SR, model=UNITTEST_MODEL, device="cpu", pass_gentle=False)
    assert y.shape == dark.shape and not np.array_equal(y, dark)


def test_route_of_a_gentle_roll_off() -> None:
    model = load_enhancer(UNITTEST_MODEL, device="cpu")
    found = detect_bandwidth(lowpass(np.random.default_rng(0).standard_normal((2, SR * 3)),
                                     SR, 2500.0, "butter:4").astype(np.float32), SR)
    assert found.gentle
    route = choose_route(found, SR, 2, model, Settings())
    assert route.passthrough and route.own_rolloff and route.copies_input
    status, message = route.describe()
    assert status == "passthrough" and "music's own timbre" in message
    # told otherwise, the fitted cutoff is where the merge hands over
    route = choose_route(found, SR, 2, model, Settings(pass_gentle=False))
    assert not route.passthrough and not route.own_rolloff
    assert route.merge_cutoff_hz == pytest.approx(found.cutoff_hz)
    # a low-rate input: the band above its Nyquist is gone whatever its timbre; the merge
    # hands over at the resampler's pass band, not at the gentle "cutoff" inside it
    low = detect_bandwidth(lowpass(np.random.default_rng(1).standard_normal((2, 22050 * 3)),
                                   22050, 2000.0, "butter:4").astype(np.float32), 22050)
    assert low.gentle and low.cutoff_hz < 3000
    route = choose_route(low, 22050, 2, model, Settings())
    assert not route.passthrough and route.own_rolloff and route.output_rate == SR
    assert route.merge_cutoff_hz == pytest.approx(
        audio.PASSBAND * 22050 / 2 / (1 + MERGE_TRANSITION))
    status, message = route.describe()
    assert status == "enhanced" and "extended above 11.03 kHz only" in message


def test_cli_reports_it_and_enhance_gentle_overrides(tmp_path: Path, music: np.ndarray,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "dark.wav"
    audio.write(src, lowpass(music, SR, 2500.0, "butter:4"), SR, subtype="PCM_24")
    for extra, status in (([], "passthrough"), (["--enhance-gentle"], "enhanced")):
        out, report = tmp_path / f"out{len(extra)}.wav", tmp_path / f"r{len(extra)}.json"
        assert main(["enhance", str(src), "-o", str(out), "--model", UNITTEST_MODEL,
                     "--device", "cpu", "--report", str(report), *extra]) == 0
        (row,) = json.loads(report.read_text())
        assert row["status"] == status and row["bandwidth"]["template"] == "butter:4"
        assert ("music's own timbre" in row["message"]) == (status == "passthrough")
    assert "1 passed through (not enhanced)" in capsys.readouterr().out


def shaped_noise(slope_db: float, peak_hz: float | None = None, fall_db: float = 0.0,
                 seconds: float = 3.0) -> np.ndarray:
    """Stereo noise whose spectrum rises ``slope_db`` per octave, then (from ``peak_hz``) falls
    ``fall_db`` per octave: a resonance like a tambourine's, 16-bit."""
    n = int(SR * seconds)
    spec = np.fft.rfft(np.random.default_rng(0).standard_normal((2, n)), axis=-1)
    f = np.maximum(np.fft.rfftfreq(n, 1 / SR), 20.0)
    gain = 10 ** (slope_db * np.log2(f / 1000.0) / 20)
    if peak_hz is not None:
        gain /= np.sqrt(1 + (f / peak_hz) ** ((slope_db + fall_db) / 3.01))
    y = np.fft.irfft(spec * gain, n, axis=-1)
    return (np.round(3277 * y / np.abs(y).max()) / 32768).astype(np.float32)


def test_a_resonance_rising_into_its_roll_off_is_the_instruments_own() -> None:
    # +24 dB/octave to 6 kHz, falling 30 dB/octave after it, through a Butterworth 6 at 9 kHz:
    # fitted as a steep filter at ~6.6 kHz over a steeply rising trend
    tambourine = lowpass(shaped_noise(24.0, 6000.0, 30.0), SR, 9000.0, "butter:6")
    found = detect_bandwidth(tambourine, SR)
    assert found.rolloff is not None and found.rolloff.slope_db > 16
    assert not found.gentle and found.own_rolloff and 6000 < found.cutoff_hz < 7500
    assert "may be the instrument's own" in found.summary()
    y, rate = enhance(tambourine, SR, model=UNITTEST_MODEL, device="cpu")
    assert rate == SR and np.array_equal(y, tambourine)
    # a trend rising gently (hi-hats: up to +14 dB/octave) is a filter's roll-off as before
    hats = lowpass(shaped_noise(8.0), SR, 9000.0, "butter:6")
    found = detect_bandwidth(hats, SR)
    assert found.rolloff is not None and 6 < found.rolloff.slope_db < 10
    assert not found.own_rolloff and found.cutoff_hz == pytest.approx(9000, rel=0.03)
    y, _ = enhance(hats, SR, model=UNITTEST_MODEL, device="cpu")
    assert not np.array_equal(y, hats)


def test_a_resonance_a_codecs_shelf_ends_is_the_instruments_own_too() -> None:
    # the same resonance through LAME at 32 kbit/s: the encoder's shelf (with its holes)
    # lands on the resonance's fall, over the same steeply rising trend
    coded = mp3(shaped_noise(24.0, 6000.0, 30.0), SR, 32)
    found = detect_bandwidth(coded, SR)
    assert found.codec == "lossy" and found.rolloff is not None and found.rolloff.slope_db > 16
    assert found.own_rolloff and "may be the instrument's own" in found.summary()
    y, rate = enhance(coded, SR, model=UNITTEST_MODEL, device="cpu")
    assert rate == SR and np.array_equal(y, coded)
    # music with a level or gently rising top through the same codec is restored
    for slope in (0.0, 8.0):
        coded = mp3(shaped_noise(slope), SR, 32)
        found = detect_bandwidth(coded, SR)
        assert found.codec == "lossy" and not found.own_rolloff
        assert "looks like a lossy codec" in found.summary()
        y, _ = enhance(coded, SR, model=UNITTEST_MODEL, device="cpu")
        assert not np.array_equal(y, coded)


def test_a_roll_off_under_2_khz_is_the_instruments_own(music: np.ndarray) -> None:
    kick = lowpass(shaped_noise(0.0), SR, 1200.0, "butter:12")
    found = detect_bandwidth(kick, SR)
    assert found.template == "butter:12" and found.cutoff_hz == pytest.approx(1200, rel=0.03)
    assert not found.gentle and found.own_rolloff
    y, _ = enhance(kick, SR, model=UNITTEST_MODEL, device="cpu")
    assert np.array_equal(y, kick)
    y, _ = enhance(kick, SR, model=UNITTEST_MODEL, device="cpu", pass_gentle=False)
    assert not np.array_equal(y, kick)
    # from 2 kHz up a steep cut is a filter's
    found = detect_bandwidth(lowpass(music, SR, 3000.0, "butter:12"), SR)
    assert not found.full_band and not found.own_rolloff
