"""The guard's fill (on by default, ``--no-fill``): soft noise up to FILL_DB under the
band-level predictor's level where the model's band is fainter, never more, never in silence,
streaming exactly; from a cutoff of FILL_MIN_CUTOFF_HZ (3 kHz) up."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from test_band_level import constant_predictor
from test_enhance_guard import band_level, sloped_noise
from upband import audio, metrics
from upband.analysis import detect_bandwidth
from upband.cli import main
from upband.degrade import lowpass
from upband.enhancement import Settings, enhance
from upband.enhancement.guard import (
    FILL_BRICKWALL_DB,
    FILL_DB,
    FILL_LOSSY_DB,
    FILL_MIN_CUTOFF_HZ,
    QUIET_DECAY_DB,
    QUIET_FILL_DB,
    QUIET_SLOPE,
    LevelGuard,
)
from upband.enhancement.pipeline import choose_route
from upband.states import load_pretrained

SR = 44100
CUTOFF = 8000.0


def band_db(x: np.ndarray, lo: float, hi: float) -> float:
    return band_level(x, SR, lo, hi)


def snr(ref: np.ndarray, est: np.ndarray) -> float:
    return float(metrics.snr(ref.astype(np.float64), est))


def test_fill_brings_an_empty_band_to_its_level_under_the_prediction() -> None:
    clean = sloped_noise(4.0, -3.0)
    x = lowpass(clean, SR, CUTOFF, "stft").astype(np.float32)  # nothing left above 8 kHz
    # a predictor that puts every band 6 dB under the reference octave [4, 8) kHz
    guard = LevelGuard(CUTOFF, SR, 2, fill_db=FILL_DB, levels=constant_predictor(-6.0))
    _, out = guard.push(x, x, last=True)  # a model that adds nothing
    ref = band_db(x, CUTOFF / 2, CUTOFF)
    for lo, hi in ((8500, 10000), (12000, 15000), (16000, 20000)):
        assert band_db(out, lo, hi) - ref == pytest.approx(-6.0 - FILL_DB, abs=1.0)
    assert band_db(out, 1000, 7000) == pytest.approx(band_db(x, 1000, 7000), abs=0.01)
    assert guard.stats.fill_ratio > 10  # the band was empty: nearly all of it is the fill
    # the ratio counts the noise in every channel: a dual-mono input reads as its mono channel
    ratios = []
    for y in (x[:1], np.repeat(x[:1], 2, axis=0)):
        mono = LevelGuard(CUTOFF, SR, len(y), fill_db=FILL_DB, levels=constant_predictor(-6.0))
        mono.push(y, y * 1.01, last=True)  # the model's band: the input's remnant, 1 % up
        ratios.append(mono.stats.fill_ratio)
    assert ratios[0] > 1 and ratios[1] == pytest.approx(ratios[0], rel=0.02)
    assert guard.stats.reduction_db == pytest.approx(0.0)
    # uncorrelated and well under the missing band, it costs a trace of SNR
    assert -0.3 < snr(clean, out) - snr(clean, x) < 0.0
    # the shipped predictor: of two filtered inputs with the same top octave, the darker one
    # gets the quieter band
    levels, top = [], band_db(x, CUTOFF / 2, CUTOFF)
    for slope in (-3.0, -12.0):
        # (without the filter's first and last frames, louder than the rest at -12 dB/octave:
        # the frames after them would be filled closer, as quiet ones)
        x = lowpass(sloped_noise(4.5, slope), SR, CUTOFF, "butter:8")[:, SR // 4:-SR // 4]
        x = (x * 10 ** ((top - band_db(x, CUTOFF / 2, CUTOFF)) / 20)).astype(np.float32)
        _, out = LevelGuard(CUTOFF, SR, 2, fill_db=FILL_DB).push(x, x, last=True)
        levels.append(band_db(out - x, 9000, 16000) - top)  # what the fill added
    assert levels[0] > levels[1] + 4


def test_fill_adds_nothing_to_a_band_already_at_its_level() -> None:
    x = sloped_noise(2.0, -3.0)  # full band: the "model's band" is the input's own
    guard = LevelGuard(CUTOFF, SR, 2, fill_db=FILL_DB)
    _, out = guard.push(x, x, last=True)
    # (the last frames fade into the padding, and a quiet frame is filled closer: a trace)
    assert guard.stats.energy_fill < 1e-6 * guard.stats.energy_out
    np.testing.assert_allclose(out, x, atol=1e-5)


def test_fill_is_silent_in_silence_and_follows_the_music() -> None:
    clean = sloped_noise(4.0, -3.0)
    gate = np.ones(clean.shape[1], np.float32)
    gate[SR:2 * SR] = 0.0  # a second of digital silence
    x = lowpass(clean * gate, SR, CUTOFF, "stft").astype(np.float32)
    _, out = LevelGuard(CUTOFF, SR, 2, fill_db=FILL_DB).push(x, x, last=True)
    inner = slice(SR + 4096, 2 * SR - 4096)
    assert np.abs(out[:, inner]).max() < 1e-6
    loud = slice(3 * SR, 4 * SR - 4096)
    assert band_db(out[:, loud], 12000, 20000) > band_db(x[:, loud], 12000, 20000) + 10


def test_quiet_frames_are_filled_closer_but_never_closer_than_quiet_fill_db() -> None:
    # 1.5 s at full level, then the same music 30 dB down: the fill follows the prediction
    # QUIET_SLOPE dB closer per dB under the reference's running peak (falling QUIET_DECAY_DB a
    # second), never closer than QUIET_FILL_DB under it (FILL_LOSSY_DB after a sharp shelf, from
    # FILL_BRICKWALL_DB); after a codec (FILL_LOSSY_DB, already that close) nothing changes
    clean = sloped_noise(4.5, -3.0)
    drop = int(1.5 * SR)
    x = clean.copy()
    x[:, drop:] *= 10 ** (-30 / 20)
    x = lowpass(x, SR, CUTOFF, "stft").astype(np.float32)

    def offset(fill: float, floor: float, after: np.ndarray) -> np.ndarray:  # dB under it
        under = np.maximum(0.0, 30.0 - QUIET_DECAY_DB * after)
        return np.maximum(min(fill, floor), fill - QUIET_SLOPE * under)

    spans = [(0.5, 1.4), (0.1, 0.4), (1.5, 2.5)]  # seconds: before the drop, after it
    cases = [(FILL_DB, QUIET_FILL_DB), (FILL_LOSSY_DB, QUIET_FILL_DB),
             (FILL_BRICKWALL_DB, FILL_LOSSY_DB)]
    for fill, floor in cases:
        guard = LevelGuard(CUTOFF, SR, 2, fill_db=fill, levels=constant_predictor(-6.0),
                           quiet_fill_db=floor)
        _, out = guard.push(x, x, last=True)
        for k, (a, b) in enumerate(spans):
            t = slice(int(a * SR) + (0 if k == 0 else drop), int(b * SR) + (0 if k == 0 else drop))
            got = band_db(x[:, t], CUTOFF / 2, CUTOFF) - band_db(out[:, t], 12000, 15000)
            after = np.linspace(a, b, 50)
            want = fill if k == 0 else -10 * np.log10(
                np.mean(10 ** (-offset(fill, floor, after) / 10)))
            assert got == pytest.approx(6.0 + want, abs=1.0), (fill, k)
    # right after the drop: 6 dB under the prediction; 3 after a sharp shelf
    assert offset(FILL_DB, QUIET_FILL_DB, np.array([0.1]))[0] == QUIET_FILL_DB < FILL_DB
    assert offset(FILL_BRICKWALL_DB, FILL_LOSSY_DB, np.array([0.1]))[0] == FILL_LOSSY_DB
    assert QUIET_FILL_DB > FILL_LOSSY_DB


def test_fill_streams_exactly() -> None:
    x = lowpass(sloped_noise(2.0, -6.0), SR, CUTOFF, "butter:8").astype(np.float32)
    x[:, SR // 2:] *= 0.1  # the running peak carries over the blocks too
    _, whole = LevelGuard(CUTOFF, SR, 2, fill_db=FILL_DB).push(x, x, last=True)
    streamed = push_in_blocks(LevelGuard(CUTOFF, SR, 2, fill_db=FILL_DB), x, seed=2)
    np.testing.assert_allclose(streamed, whole, atol=1e-6)


def push_in_blocks(guard: LevelGuard, x: np.ndarray, seed: int) -> np.ndarray:
    """The guard's output for ``x`` (as model and input) pushed in random blocks of 1-9 000."""
    parts, start = [], 0
    for size in np.random.default_rng(seed).integers(1, 9000, 10_000):
        end = min(x.shape[1], start + int(size))
        parts.append(guard.push(x[:, start:end], x[:, start:end], last=end == x.shape[1])[1])
        start = end
        if end == x.shape[1]:
            break
    return np.concatenate(parts, 1)


def test_route_fills_from_its_lowest_cutoff_up() -> None:
    x = lowpass(sloped_noise(2.0, -3.0), SR, 11025.0, "butter:8").astype(np.float32)
    found = detect_bandwidth(x, SR)
    assert found.codec == "none" and not found.full_band
    model = load_pretrained("upband-default")
    assert choose_route(found, SR, 2, model, Settings()).fill_db == FILL_DB  # on by default
    assert choose_route(found, SR, 2, model, Settings(fill=False)).fill_db is None
    assert choose_route(found, SR, 2, model, Settings(guard=False)).fill_db is None
    lossy = dataclasses.replace(found, codec="lossy")  # after a codec: closer
    assert choose_route(lossy, SR, 2, model, Settings()).fill_db == FILL_LOSSY_DB
    assert FILL_LOSSY_DB < FILL_BRICKWALL_DB < FILL_DB
    shelf = choose_route(dataclasses.replace(found, codec="brickwall"), SR, 2, model, Settings())
    assert (shelf.fill_db, shelf.quiet_fill_db) == (FILL_BRICKWALL_DB, FILL_LOSSY_DB)
    assert choose_route(found, SR, 2, model, Settings()).quiet_fill_db == QUIET_FILL_DB
    assert choose_route(lossy, SR, 2, model, Settings()).quiet_fill_db == QUIET_FILL_DB
    low = dataclasses.replace(found, cutoff_hz=FILL_MIN_CUTOFF_HZ - 100)
    assert choose_route(low, SR, 2, model, Settings()).fill_db is None
    assert FILL_MIN_CUTOFF_HZ <= 4000.0  # the predictor under 9 kHz covers a 4 kHz cutoff


def test_the_command_line_help_gives_the_fill_constants(
        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["enhance", "--help"])
    said = " ".join(capsys.readouterr().out.split())
    assert (f"fainter than {FILL_DB:g} dB ({FILL_LOSSY_DB:g} after a lossy codec, "
            f"{FILL_BRICKWALL_DB:g} after another sharp cutoff; in quiet passages down to "
            f"{QUIET_FILL_DB:g}, or {FILL_LOSSY_DB:g} after a sharp cutoff)" in said
            and f"from a cutoff of {FILL_MIN_CUTOFF_HZ / 1000:g} kHz up" in said)


def test_a_4_khz_cutoff_is_filled_softly() -> None:
    clean = sloped_noise(3.0, -3.0)
    x = lowpass(clean, SR, 4000.0, "cheby1:8").astype(np.float32)
    on, _ = enhance(x, SR, device="cpu", clip_mode="none")
    off, _ = enhance(x, SR, device="cpu", clip_mode="none", fill=False)
    assert band_db(on, 5000, 8000) > band_db(off, 5000, 8000) + 6
    for lo, hi in ((5000, 8000), (8000, 12000), (12000, 20000)):
        assert band_db(off, lo, hi) <= band_db(on, lo, hi) < band_db(clean, lo, hi) - 12
    assert abs(band_db(on, 500, 3000) - band_db(off, 500, 3000)) < 0.01


def test_enhance_and_the_command_line_fill_by_default(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clean = sloped_noise(3.0, -3.0)
    x = lowpass(clean, SR, 11025.0, "cheby1:8").astype(np.float32)
    on, _ = enhance(x, SR, device="cpu", clip_mode="none")
    off, _ = enhance(x, SR, device="cpu", clip_mode="none", fill=False)
    assert band_db(on, 15000, 20000) > band_db(off, 15000, 20000) + 6
    assert band_db(on, 15000, 20000) < band_db(clean, 15000, 20000) - 12
    assert abs(band_db(on, 1000, 9000) - band_db(off, 1000, 9000)) < 0.01
    src = tmp_path / "low.wav"
    audio.write(src, x, SR, subtype="PCM_16")
    ratios = []
    for i, flag in enumerate(([], ["--no-fill"], ["--fill"])):  # --fill: the old name, kept
        report = tmp_path / f"r{i}.json"
        assert main(["enhance", str(src), "-o", str(tmp_path / f"o{i}.wav"),
                     "--device", "cpu", "--report", str(report), "-v", *flag]) == 0
        said = capsys.readouterr()
        assert ("noise fill" in said.out + said.err) == (flag != ["--no-fill"])
        (record,) = json.loads(report.read_text())
        ratios.append(record["guard_fill_ratio"])
        # no shelf (a Chebyshev-I 8 is not one): the filter's margin
        assert record["bandwidth"]["codec"] == "none"
        assert record["guard_fill_db"] == (None if flag == ["--no-fill"] else FILL_DB)
        assert (f"{FILL_DB:g} dB under the predicted level" in said.out + said.err) == (
            flag != ["--no-fill"])
    assert ratios[0] > 0.1 and ratios[1] is None and ratios[2] == ratios[0]
