"""Roll-off compensation (issue 13): what a filter only attenuated is given back, within the
input's noise floor, streamed exactly, on a filter's roll-off and never on a codec's shelf."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from upband import audio
from upband.analysis import detect_bandwidth
from upband.analysis.detect import template_attenuation
from upband.cli import main
from upband.degrade import lowpass, mp3
from upband.enhancement import UNITTEST_MODEL, Settings, choose_route, enhance, load_enhancer
from upband.enhancement.compensation import (
    DEPTH_DB,
    MAX_GAIN_DB,
    SURE_MAX_GAIN_DB,
    Compensation,
    compensate,
    curves,
    fir,
    sure,
)
from upband.enhancement.pipeline import route_output
from upband.models.base import WaveModel

SR = 44100
CUTOFF = 11025.0


def _pink(seconds: float = 6.0, seed: int = 0) -> np.ndarray:
    """Stereo noise falling 3 dB per octave to 22 kHz, 16-bit quantised (a music-like trend
    with a real noise floor)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    spec = rng.standard_normal((2, n // 2 + 1)) + 1j * rng.standard_normal((2, n // 2 + 1))
    f = np.fft.rfftfreq(n, 1 / SR)
    spec *= 1 / np.sqrt(np.maximum(f, 20.0))
    x = np.fft.irfft(spec, n=n)
    x *= 0.1 / x.std()
    return _pcm16(x)


def _pcm16(x: np.ndarray) -> np.ndarray:
    return (np.round(np.asarray(x, np.float64) * 32768) / 32768).astype(np.float32)


class _Same(WaveModel):
    """A model that adds nothing (its output is its input)."""

    name = "test-same"

    def __init__(self) -> None:
        super().__init__(channels=2, stride=1)
        self.scale = torch.nn.Parameter(torch.tensor(0.0))

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * x

    def _receptive_field(self) -> int:
        return 1


def _snr(ref: np.ndarray, y: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(ref ** 2) / np.sum((ref - y) ** 2)))


def _filtered(spec: str = "butter:6", seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    clean = _pink(seed=seed)
    low = lowpass(clean, SR, CUTOFF, spec).astype(np.float32)
    return clean, _pcm16(low)


@pytest.mark.parametrize("spec", ["butter:6", "cheby1:6", "butter:8"])
def test_gives_back_what_a_filter_attenuated(spec: str) -> None:
    clean, low = _filtered(spec)
    found = detect_bandwidth(low, SR)
    assert found.codec == "none" and not found.gentle and found.rolloff is not None
    c = curves(found, SR)
    assert c is not None
    assert np.all(c.gain >= 1.0) and c.max_gain_db <= SURE_MAX_GAIN_DB + 1e-9
    assert np.all((c.weight >= 0) & (c.weight <= 1))
    assert c.max_gain_db > 3.0
    lo, hi = c.span_hz()
    assert 0.95 * CUTOFF < lo < 1.15 * CUTOFF < hi < 1.7 * CUTOFF
    xc, _ = compensate(found, SR, low, low)
    gain = _snr(clean, xc) - _snr(clean, low)
    assert gain > 0.08, gain
    # the band between the cutoff and 14 kHz comes back towards the original's level
    f = np.fft.rfftfreq(low.shape[1], 1 / SR)
    band = (f > CUTOFF * 1.05) & (f < 14000)

    def level(x: np.ndarray) -> float:
        return float(10 * np.log10(np.mean(np.abs(np.fft.rfft(x)[:, band]) ** 2)))

    assert level(clean) - level(xc) < level(clean) - level(low) - 0.5
    # and never above the trend less the headroom: not louder than the original there
    assert level(xc) < level(clean) + 0.5


def test_the_models_band_is_replaced_only_where_the_input_holds_it() -> None:
    _, low = _filtered()
    found = detect_bandwidth(low, SR)
    c = curves(found, SR)
    assert c is not None
    # well above the cutoff the input has sunk into its floor: the weight is (almost) zero
    assert c.weight[c.freqs > 1.8 * CUTOFF].max() < 0.05
    assert c.weight[c.freqs < 0.5 * CUTOFF].min() > 0.99
    # a "model" that adds a loud band: kept where the weight is zero, replaced where it is one
    rng = np.random.default_rng(3)
    m = low + lowpass(0.05 * rng.standard_normal(low.shape), SR, 19000.0, "butter:8"
                      ).astype(np.float32)
    _, mc = compensate(found, SR, low, m)
    inner = slice(SR // 10, -SR // 10)  # away from the signal's edges
    f = np.fft.rfftfreq(low[:, inner].shape[1], 1 / SR)
    top = (f > 1.6 * CUTOFF) & (f < 19000)

    def band(x: np.ndarray, sel: np.ndarray) -> float:
        return float(np.mean(np.abs(np.fft.rfft(x[:, inner])[:, sel]) ** 2))

    assert band(mc - m, top) < 1e-4 * band(m - low, top)
    # where the weight is one (below the cutoff), the output is the compensated input
    below = f < 0.5 * CUTOFF
    assert band(mc - low, below) < 1e-4 * band(m - low, below)


def test_streaming_equals_one_pass() -> None:
    _, low = _filtered(seed=1)
    low = low[:, :SR * 3]
    found = detect_bandwidth(low, SR)
    m = low + 0.01 * np.random.default_rng(4).standard_normal(low.shape).astype(np.float32)
    whole = Compensation.for_input(found, SR, 2)
    assert whole is not None
    xw, mw = whole.push(low, m, last=True)
    assert xw.shape == low.shape and mw.shape == m.shape
    stream = Compensation.for_input(found, SR, 2)
    assert stream is not None
    xs, ms, start = [], [], 0
    for size in np.random.default_rng(5).integers(1, 9000, 100):
        end = min(low.shape[1], start + int(size))
        a, b = stream.push(low[:, start:end], m[:, start:end], last=end == low.shape[1])
        xs.append(a)
        ms.append(b)
        start = end
        if end == low.shape[1]:
            break
    assert np.abs(np.concatenate(xs, axis=1) - xw).max() < 1e-6
    assert np.abs(np.concatenate(ms, axis=1) - mw).max() < 1e-6


def test_the_streamed_firs_are_the_designed_convolutions() -> None:
    """The overlap-save FFTs give the linear-phase FIRs' plain convolutions: ``K x`` and
    ``m + W (K x - m)``, each centred on its input sample."""
    _, low = _filtered(seed=2)
    low = low[:, :SR * 2]
    found = detect_bandwidth(low, SR)
    c = curves(found, SR)
    assert c is not None
    m = low + 0.01 * np.random.default_rng(6).standard_normal(low.shape).astype(np.float32)
    stage = Compensation(c, SR, 2)
    k, wk, w = (fir(r, stage.taps) for r in (c.gain, c.weight * c.gain, c.weight))

    def centred(a: np.ndarray, h: np.ndarray) -> np.ndarray:
        return np.stack([np.convolve(ch.astype(np.float64), h)[stage.delay:stage.delay
                                                                  + a.shape[1]] for ch in a])

    xc, mc = stage.push(low, m, last=True)
    np.testing.assert_allclose(xc, centred(low, k), atol=2e-6)
    np.testing.assert_allclose(mc, m + centred(low, wk) - centred(m, w), atol=2e-6)
    assert np.abs(xc - low).max() > 1e-3  # the gain did something


def test_no_compensation_for_a_codec_shelf_full_band_or_gentle_input() -> None:
    clean = _pink(4.0, seed=2)
    coded = mp3(clean, SR, 64)
    found = detect_bandwidth(coded, SR)
    assert found.codec != "none" and curves(found, SR) is None
    full = detect_bandwidth(clean, SR)
    assert full.full_band and full.rolloff is None and curves(full, SR) is None
    model = load_enhancer(UNITTEST_MODEL, device="cpu")
    gentle = detect_bandwidth(lowpass(clean, SR, 3000.0, "butter:4").astype(np.float32), SR)
    assert gentle.gentle
    assert not choose_route(gentle, SR, 2, model, Settings()).compensate
    assert not choose_route(found, SR, 2, model, Settings()).compensate
    high = detect_bandwidth(_pcm16(lowpass(clean, SR, 16000.0, "butter:6")), SR)
    assert high.codec == "none" and high.rolloff is not None and high.cutoff_hz > 15000
    assert curves(high, SR) is None  # where codecs cut: left alone
    _, low = _filtered()
    steep = detect_bandwidth(low, SR)
    assert choose_route(steep, SR, 2, model, Settings()).compensate
    assert not choose_route(steep, SR, 2, model, Settings(compensate=False)).compensate
    assert not choose_route(steep, SR, 2, model, Settings(merge=False)).compensate


def test_enhance_streams_what_route_output_computes_and_can_be_turned_off() -> None:
    clean, low = _filtered()
    model = load_enhancer(UNITTEST_MODEL, device="cpu")
    y, _ = enhance(low, SR, model=model, device="cpu", clip_mode="none",
                   chunk_seconds=1.5, guard=False)
    off, _ = enhance(low, SR, model=model, device="cpu", clip_mode="none",
                     chunk_seconds=1.5, guard=False, compensate=False)
    found = detect_bandwidth(low, SR)
    route = choose_route(found, SR, 2, model, Settings(guard=False))
    m, _ = enhance(low, SR, model=model, device="cpu", clip_mode="none", chunk_seconds=1.5,
                   merge=False)
    assert np.abs(route_output(route, low, np.asarray(m)) - y).max() < 1e-4
    assert np.abs(y - off).max() > 1e-3
    # with a model that adds nothing (and no noise fill), the output is the compensated input:
    # nearer the original
    same, _ = enhance(low, SR, model=_Same().eval(), device="cpu", clip_mode="none", fill=False)
    plain, _ = enhance(low, SR, model=_Same().eval(), device="cpu", clip_mode="none",
                       compensate=False, fill=False)
    assert np.abs(plain - low).max() < 1e-5
    assert _snr(clean, same) > _snr(clean, plain) + 0.08


def test_report_and_command_line(tmp_path: Path) -> None:
    _, low = _filtered()
    src = tmp_path / "low.wav"
    audio.write(src, low, SR, subtype="PCM_16")
    for flag, name in (([], "on"), (["--no-compensate"], "off")):
        report = tmp_path / f"{name}.json"
        assert main(["enhance", str(src), "-o", str(tmp_path / f"{name}.wav"), "--model",
                     UNITTEST_MODEL, "--device", "cpu", "--report", str(report), "-q",
                     *flag]) == 0
        (record,) = json.loads(report.read_text())
        if name == "on":
            assert 3.0 < record["compensation_gain_db"] <= SURE_MAX_GAIN_DB
            lo, hi = record["compensation_band_hz"]
            assert lo < 1.15 * CUTOFF < hi
        else:
            assert record["compensation_gain_db"] is None


def test_a_float_file_without_a_floor_keeps_the_models_band_where_the_fit_runs_deep() -> None:
    clean = _pink(seed=4)
    low = lowpass(clean, SR, CUTOFF, "butter:6").astype(np.float32)  # float: no 16-bit floor
    found = detect_bandwidth(low, SR)
    assert found.rolloff is not None and found.rolloff.floor_db < found.rolloff.trend(
        np.array(CUTOFF)) - DEPTH_DB - 20  # the data's own floor is far below the depth
    c = curves(found, SR)
    assert c is not None
    # the weight still falls to zero where the fitted filter has taken DEPTH_DB and more
    att = template_attenuation(found.template, c.freqs, found.cutoff_hz, SR)
    assert c.weight[att < -(DEPTH_DB + 20)].max() < 0.02
    assert c.weight[(att > -10) & (c.freqs < CUTOFF)].min() > 0.99


@pytest.mark.parametrize("spec", ["butter:6", "cheby1:6"])
def test_a_sure_fit_may_gain_more_and_a_quiet_one_may_not(spec: str) -> None:
    # loud at the cutoff (75 dB over the 16-bit floor) and a close fit: up to 20 dB, and
    # more of the band comes back than with the 10 dB of an unsure fit
    clean, low = _filtered(spec)
    found = detect_bandwidth(low, SR)
    assert sure(found) and found.fit_error_db < 1.0
    # the same fit with a lossy codec's spectral holes in its top band is not sure
    assert not sure(dataclasses.replace(found, hole_excess=0.05))
    c, capped = curves(found, SR), curves(found, SR, sure_gain_db=None)
    assert c is not None and capped is not None
    assert c.max_gain_db == pytest.approx(SURE_MAX_GAIN_DB)
    assert capped.max_gain_db == pytest.approx(MAX_GAIN_DB)
    base = _snr(clean, low)
    more = _snr(clean, Compensation(c, SR, 2).push(low, low, last=True)[0]) - base
    less = _snr(clean, Compensation(capped, SR, 2).push(low, low, last=True)[0]) - base
    assert more > less + 0.1 > 0.15, (more, less)
    # 40 dB quieter the same music is not sure, whether 16-bit (its floor is near) or float
    # (no floor: the depth is measured from a 16-bit file's)
    quiet = lowpass(clean * 0.01, SR, CUTOFF, spec).astype(np.float32)
    for x in (quiet, _pcm16(quiet)):
        found = detect_bandwidth(x, SR)
        assert found.rolloff is not None and not sure(found)
        c = curves(found, SR)
        assert c is None or c.max_gain_db <= MAX_GAIN_DB + 1e-9
    # nor is a spectrum rising into the cutoff (a cymbal's peak mixes into the transition)
    n = 6 * SR
    f = np.maximum(np.fft.rfftfreq(n, 1 / SR), 20.0)
    rising = np.fft.irfft(np.fft.rfft(np.random.default_rng(1).standard_normal((2, n)))
                          * 10 ** (6.0 * np.log2(f / 1000.0) / 20), n=n)
    bright = _pcm16(lowpass(0.1 * rising / rising.std(), SR, CUTOFF, spec))
    found = detect_bandwidth(bright, SR)
    assert found.rolloff is not None and found.rolloff.slope_db > 3 and not sure(found)
    level = float(found.rolloff.trend(np.array(found.cutoff_hz)))
    # loud at the cutoff and a close fit: only the rising trend says no
    assert level - max(found.rolloff.floor_db, -98.0) > 60 and found.fit_error_db < 3.0
