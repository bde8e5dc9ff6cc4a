"""The noise floor above the cutoff (``upband.enhancement.floor``, with the guard's fill): an
input low-passed in floating point has lost its floor above the cutoff; the guard brings the
bins fainter than the input's own floor up to it, never above a 16-bit file's rounding noise,
never in digital silence, at no cost in SNR, streaming exactly."""

from __future__ import annotations

import numpy as np
import pytest

from test_band_level import constant_predictor
from test_enhance_fill import push_in_blocks
from test_enhance_guard import band_level
from upband import metrics
from upband.degrade import lowpass
from upband.enhancement import floor
from upband.enhancement.guard import FILL_DB, LevelGuard

SR = 44100
CUTOFF = 8000.0
#: a 16-bit file's rounding noise: white, variance 2^-30 / 12
LSB_STD = 2.0 ** -15 / np.sqrt(12)


def one_shot(floor_std: float, seconds: float = 3.0) -> np.ndarray:
    """A stereo hit decaying by 8.7 dB every 0.1 s (under a 16-bit floor from 1 s on) over a
    white floor of ``floor_std``, its last half second digitally silent (exact zeros)."""
    rng = np.random.default_rng(0)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    hit = 0.3 * rng.standard_normal((2, n)) * np.exp(-t / 0.1)
    x = hit + floor_std * rng.standard_normal((2, n))
    x[:, n - SR // 2:] = 0.0
    return x


def guarded(x: np.ndarray, floor_fill: bool, predicted_db: float = -6.0) -> np.ndarray:
    guard = LevelGuard(CUTOFF, SR, 2, fill_db=FILL_DB, levels=constant_predictor(predicted_db),
                       floor_fill=floor_fill)
    return guard.push(x, x, last=True)[1]  # a model that adds nothing: the guard's own band


def test_the_floor_continues_the_inputs_own_above_the_cutoff() -> None:
    clean = one_shot(LSB_STD)
    x = lowpass(clean, SR, CUTOFF, "butter:6").astype(np.float32)
    on, off = guarded(x, True), guarded(x, False)
    tail = slice(int(1.6 * SR), int(2.3 * SR))  # the hit is 50 dB under the floor
    floor_db = band_level(clean[:, tail], SR, 16000, 20000)
    assert band_level(x[:, tail], SR, 16000, 20000) < floor_db - 40  # the filter took it
    assert band_level(off[:, tail], SR, 16000, 20000) < floor_db - 10  # the fill alone: faint
    # with the floor: the input's own, read under the cutoff, UNDER_DB under its mean
    assert band_level(on[:, tail], SR, 16000, 20000) == pytest.approx(
        floor_db - floor.UNDER_DB, abs=1.5)
    # under the cutoff nothing changes, and the floor costs no SNR at all
    assert band_level(on[:, tail], SR, 1000, 7000) == pytest.approx(
        band_level(off[:, tail], SR, 1000, 7000), abs=0.01)
    snr_on, snr_off = (float(metrics.snr(clean, y)) for y in (on, off))
    assert abs(snr_on - snr_off) < 0.01
    # the log-spectral distance sees the floor
    lsd_on, lsd_off = (float(metrics.lsd_ssr(clean, y, SR)) for y in (on, off))
    assert lsd_on < lsd_off - 0.2  # 1.03 -> 0.77 here


def test_no_floor_in_digital_silence_and_none_louder_than_16_bit() -> None:
    # digital silence stays as it is
    x = lowpass(one_shot(LSB_STD), SR, CUTOFF, "butter:6").astype(np.float32)
    silent = slice(int(2.6 * SR), int(2.9 * SR))
    on, off = guarded(x, True), guarded(x, False)
    assert np.array_equal(on[:, silent], off[:, silent])
    # a hiss 40 dB over a 16-bit floor (and a fill far under it): the floor adds a 16-bit
    # file's floor, no more
    hissy = lowpass(one_shot(100 * LSB_STD), SR, CUTOFF, "butter:6").astype(np.float32)
    tail = slice(int(1.6 * SR), int(2.3 * SR))
    lsb = LSB_STD * np.random.default_rng(1).standard_normal((2, tail.stop - tail.start))
    on, off = (guarded(hissy, f, predicted_db=-80.0)[:, tail] for f in (True, False))

    def power(y: np.ndarray) -> float:
        return 10 ** (band_level(y, SR, 16000, 20000) / 10)

    assert 0.7 * power(lsb) < power(on) - power(off) < 1.1 * power(lsb)


def test_floor_levels_take_the_median_capped_under_the_reference_and_at_16_bit() -> None:
    kept = np.array([[[1e-12, 2e-12, 3e-12, 5e-12, 100e-12]]])  # [G, K, bins], joint power
    ref_db = np.array([[10 * np.log10(kept.mean())]])
    # the median (3e-12), shared by two channels
    assert floor.levels(kept, ref_db, 2)[0, 0] == pytest.approx(1.5e-12)
    # never more than UNDER_DB under the reference octave's mean
    low_ref = np.array([[10 * np.log10(2e-12)]])
    assert floor.levels(kept, low_ref, 1)[0, 0] == pytest.approx(
        2e-12 * 10 ** (-floor.UNDER_DB / 10))
    # never above a 16-bit file's rounding noise (-101 dB per bin)
    loud = kept * 1e6
    assert floor.levels(loud, ref_db + 60, 1)[0, 0] == pytest.approx(10 ** (floor.MAX_DB / 10))
    assert abs(floor.MAX_DB - 10 * np.log10(2.0 ** -30 / 12)) < 0.2


def test_the_floor_streams_exactly() -> None:
    x = lowpass(one_shot(LSB_STD, 2.0), SR, CUTOFF, "butter:6").astype(np.float32)
    whole = guarded(x, True)
    guard = LevelGuard(CUTOFF, SR, 2, fill_db=FILL_DB, levels=constant_predictor(-6.0))
    np.testing.assert_allclose(push_in_blocks(guard, x, seed=3), whole, atol=1e-9)
