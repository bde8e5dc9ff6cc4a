"""The look-ahead limiter (the default clip mode): only the frames around an over change, never
a sample above the ceiling, streamed == one pass; through enhance_file in one pass, reported."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy.ndimage import maximum_filter1d

from upband import audio
from upband.cli import main
from upband.enhancement import CLIP_MODES, UNITTEST_MODEL, ClipPolicy, enhance, enhance_file
from upband.enhancement import files as files_module
from upband.enhancement.limiter import CEILING, PeakLimiter
from upband.enhancement.pipeline import Pipeline

SR = 44100


def music(seconds: float, sr: int = SR, channels: int = 2, peak: float = 0.5) -> np.ndarray:
    """Harmonic tones plus noise, float32 ``[C, T]`` with the given peak."""
    rng = np.random.default_rng(7)
    t = np.arange(int(seconds * sr)) / sr
    x = 0.3 * rng.standard_normal((channels, t.size))
    for f0 in (131.0, 220.0, 329.6):
        for k in range(1, 12):
            x += rng.uniform(0.2, 1.0, (channels, 1)) / k * np.sin(2 * np.pi * f0 * k * t)
    return (peak * x / np.max(np.abs(x))).astype(np.float32)


def near(mask: np.ndarray, reach: int) -> np.ndarray:
    """Frames at most ``reach`` frames from a frame of ``mask``."""
    return maximum_filter1d(mask.astype(np.uint8), 2 * reach + 1, mode="constant") > 0


def square_wav(path: Path, burst: tuple[float, float] | None = None) -> Path:
    """A full-scale 441 Hz square at 22.05 kHz, 16-bit: its 44.1 kHz enhancement overshoots
    full scale at every edge. With ``burst`` (seconds), the square lasts only that span, in
    quiet music."""
    t = np.arange(22050 * 2) / 22050
    square = np.sign(np.sin(2 * np.pi * 441 * t))[None].repeat(2, 0).astype(np.float32)
    if burst is not None:
        inside = (t >= burst[0]) & (t < burst[1])
        square = np.where(inside, square, music(2.0, 22050, peak=0.2))
    audio.write(path, square, 22050, subtype="PCM_16")
    return path


def test_few_overs_are_limited_and_every_other_frame_is_the_input() -> None:
    x = music(3.0)
    overs = [30000, 30002, 70000, 110000]
    x[0, [30000, 70000]] = 1.3
    x[1, [30002, 110000]] = -1.3
    lim = PeakLimiter(2, SR)
    y = lim.push(x, last=True)
    assert y.shape == x.shape and y.dtype == np.float32
    assert (lim.lookahead, lim.hold, lim.release) == (66, 220, 1323)  # 1.5, 5 and 30 ms
    assert np.max(np.abs(y)) <= CEILING
    # the overs come down to the ceiling, not further
    np.testing.assert_allclose(np.abs(y[[0, 1, 0, 1], overs]), CEILING, rtol=1e-6)
    far = ~near(np.isin(np.arange(x.shape[1]), overs), lim.reach)
    assert np.array_equal(y[:, far], x[:, far])
    # a lone over changes exactly the frames from the look-ahead before it to the hold and
    # release after it, both channels by one gain between 1 and what the over needs
    changed = np.flatnonzero(np.any(y != x, axis=0))
    assert changed.min() >= 30000 - lim.lookahead and changed.max() <= 110000 + lim.hold + \
        lim.release
    spans = [(30000, 30002), (70000, 70000), (110000, 110000)]
    assert lim.stats.limited == sum(b - a + lim.lookahead + lim.hold + lim.release + 1
                                    for a, b in spans)
    assert lim.stats.overs == 4
    assert lim.stats.reduction_db == pytest.approx(20 * np.log10(CEILING / 1.3), abs=1e-5)
    loud = np.abs(x) > 0.05
    gain = np.where(loud, y / np.where(loud, x, 1), np.nan)
    both = loud.all(axis=0)
    np.testing.assert_allclose(gain[0, both], gain[1, both], rtol=1e-6)
    assert np.nanmin(gain) >= CEILING / 1.3 - 1e-6 and np.nanmax(gain) <= 1.0


def test_gain_around_a_lone_over() -> None:
    x = np.full((1, SR // 2), 0.5, np.float32)
    k = 10000
    x[0, k] = 1.3
    lim = PeakLimiter(1, SR)
    look, hold, rel = lim.lookahead, lim.hold, lim.release
    reduction = 1 - lim.push(x, last=True)[0] / x[0]
    need = 1 - CEILING / 1.3
    expected = np.zeros(x.shape[1])
    expected[k - look:k + 1] = need * np.arange(1, look + 2) / (look + 1)  # linear ramp down
    expected[k:k + hold + 1] = need  # the hold
    expected[k + hold:k + hold + rel + 1] = need * np.arange(rel + 1, 0, -1) / (rel + 1)
    np.testing.assert_allclose(reduction, expected, rtol=0, atol=1e-6)
    assert np.count_nonzero(reduction) == look + hold + rel + 1 == lim.stats.limited


def test_streamed_in_odd_blocks_equals_one_pass() -> None:
    x = music(2.0)
    x[:, 20000:20400:37] = 1.2
    x[1, 50000] = -2.0
    x[0, 88199] = 1.1  # the last frame
    one = PeakLimiter(2, SR)
    y = one.push(x, last=True)
    lim, outs, pushed = PeakLimiter(2, SR), [], 0
    for size in [1, 7, 333, 1322, 1, 4999, 1, 12345, 2, 30011, 3]:
        outs.append(lim.push(x[:, pushed:pushed + size]))
        pushed += size
        assert sum(o.shape[1] for o in outs) == max(0, pushed - lim.delay)  # a fixed delay
    outs.append(lim.push(x[:, pushed:], last=True))
    assert np.array_equal(np.concatenate(outs, axis=1), y)
    assert lim.stats == one.stats and np.max(np.abs(y)) <= CEILING


def test_no_over_passes_unchanged() -> None:
    x = music(1.0)
    x[0, 100] = CEILING  # at the ceiling is not over it
    lim = PeakLimiter(2, SR)
    y = lim.push(x[:, :1000]), lim.push(x[:, 1000:], last=True)
    assert np.array_equal(np.concatenate(y, axis=1), x)
    assert (lim.stats.overs, lim.stats.limited, lim.stats.reduction_db) == (0, 0, 0.0)


def test_full_scale_squares_are_limited_below_the_ceiling() -> None:
    t = np.arange(SR) / SR
    naive = np.sign(np.sin(2 * np.pi * 441 * t + 0.1))[None].astype(np.float32)
    lim = PeakLimiter(1, SR)
    y = lim.push(naive, last=True)
    assert np.max(np.abs(y)) <= CEILING
    # every frame is over: all held at the ceiling
    np.testing.assert_allclose(np.abs(y[0]), CEILING, rtol=1e-6)
    # band-limited (Gibbs overshoot at every edge) and stereo: one steady gain, no pumping
    band = sum(np.sin(2 * np.pi * 441 * k * t) / k for k in range(1, 50, 2))
    square = np.stack([band, -band]).astype(np.float32)
    square /= 0.9 * np.max(np.abs(square))  # the edges peak at 1 / 0.9 of full scale
    lim = PeakLimiter(2, SR)
    y = lim.push(square, last=True)
    assert np.max(np.abs(y)) <= CEILING
    assert lim.stats.reduction_db == pytest.approx(20 * np.log10(CEILING * 0.9), abs=0.01)
    steady = slice(SR // 4, SR - lim.reach)
    gain = np.abs(y[0, steady]) / np.maximum(np.abs(square[0, steady]), 1e-9)
    assert np.ptp(gain[np.abs(square[0, steady]) > 0.1]) < 1e-6
    assert np.array_equal(y[0], -y[1])  # linked: the image does not move


def test_clip_policy_limit_is_the_default() -> None:
    assert CLIP_MODES[0] == "limit" and ClipPolicy().mode == "limit"
    assert isinstance(ClipPolicy().limiter(2, SR), PeakLimiter)
    assert all(ClipPolicy(mode).limiter(2, SR) is None for mode in CLIP_MODES[1:])


# ---------------------------------------------------------------------------------------------
# through enhance_file and the command
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> list[Pipeline]:
    """Every pipeline :func:`enhance_file` builds (one per pass over the file)."""
    made: list[Pipeline] = []
    real = Pipeline.build

    def counting(*args: Any) -> Pipeline:
        made.append(real(*args))
        return made[-1]

    monkeypatch.setattr(Pipeline, "build", staticmethod(counting))
    return made


def test_enhance_file_limits_in_one_pass_and_reports_it(tmp_path: Path,
                                                        builds: list[Pipeline]) -> None:
    src = square_wav(tmp_path / "burst.wav", burst=(0.8, 1.1))
    kw: dict[str, Any] = {"model": UNITTEST_MODEL, "device": "cpu", "bit_depth": "32f"}
    report = enhance_file(src, tmp_path / "limit.wav", **kw)
    assert len(builds) == 1 and report.status == "enhanced" and report.clip_gain == 1.0
    y, rate = audio.read(tmp_path / "limit.wav")
    enhance_file(src, tmp_path / "none.wav", clip_mode="none", **kw)
    z, _ = audio.read(tmp_path / "none.wav")
    over = np.max(np.abs(z), axis=0) > CEILING
    reach = PeakLimiter(2, rate).reach
    assert np.max(np.abs(z)) > 1.0 and np.max(np.abs(y)) <= CEILING
    assert report.limit_overs == np.count_nonzero(over)
    changed = np.count_nonzero(np.any(y != z, axis=0))  # a gain below 1 can round to 1 x
    assert 0.99 * report.limited_samples <= changed <= report.limited_samples
    assert report.limit_reduction_db == pytest.approx(
        20 * np.log10(CEILING / np.max(np.abs(z))), abs=2e-3)
    # outside the burst (and its reach) the output is the unlimited output, bit for bit
    far = ~near(over, reach)
    assert np.mean(far) > 0.7 and np.array_equal(y[:, far], z[:, far])
    assert report.to_dict()["limited_samples"] == report.limited_samples


def test_limit_through_small_read_blocks_equals_the_array_path(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(files_module, "READ_SECONDS", 0.137)
    src = square_wav(tmp_path / "square.wav")
    enhance_file(src, tmp_path / "out.wav", UNITTEST_MODEL, device="cpu", bit_depth="32f")
    y, _ = audio.read(tmp_path / "out.wav")
    x, _ = audio.read(src)
    z, _ = enhance(x, 22050, model=UNITTEST_MODEL, device="cpu")
    np.testing.assert_allclose(y, z, atol=1e-6)
    assert np.max(np.abs(y)) <= CEILING


def test_rescale_still_rescales_in_two_passes(tmp_path: Path, builds: list[Pipeline]) -> None:
    src = square_wav(tmp_path / "square.wav")
    report = enhance_file(src, tmp_path / "out.wav", UNITTEST_MODEL, device="cpu",
                          clip_mode="rescale", bit_depth="32f")
    y, _ = audio.read(tmp_path / "out.wav")
    assert len(builds) == 2 and report.clip_gain < 1.0
    assert report.limited_samples == report.limit_overs == 0
    assert np.max(np.abs(y)) == pytest.approx(1.0, abs=1e-6)


def test_command_says_what_the_limiter_did(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    src = square_wav(tmp_path / "burst.wav", burst=(0.5, 0.6))
    code = main(["enhance", "--model", UNITTEST_MODEL, "-d", "cpu", str(src), "-o",
                 str(tmp_path / "out.wav"), "--report", str(tmp_path / "r.json")])
    out = capsys.readouterr().out
    record = json.loads((tmp_path / "r.json").read_text())[0]
    assert code == 0 and record["limited_samples"] > 0 and record["limit_reduction_db"] < 0
    assert (f"; limited {record['limited_samples']} samples around {record['limit_overs']} "
            f"overs (at most {record['limit_reduction_db']:.2f} dB)") in out
    assert "scaled by" not in out
    y, _ = audio.read(tmp_path / "out.wav")
    assert np.max(np.abs(y)) < 1.0  # 16-bit: dithered, never clipped
