"""The band oracles of ``upband evaluate``: ``oracle-band`` and ``oracle-envelope[-N]``."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from upband import metrics
from upband.degrade.filters import FilterSpec
from upband.degrade.presets import Lowpass
from upband.errors import SpecError
from upband.evaluate.baselines import (
    BASELINES,
    DESCRIPTIONS,
    Observation,
    oracle_band,
    oracle_envelope,
    sbr,
)

SR = 44100
CUT = 8000.0
PARAMS = Lowpass(CUT, FilterSpec.parse("butter:8"))


def band_db(a: np.ndarray, lo: float, hi: float) -> float:
    f, p = signal.welch(a, SR, nperseg=2048, axis=-1)
    sel = (f >= lo) & (f < hi)
    return float(10 * np.log10(np.mean(p[..., sel]) + 1e-30))


def snr(ref: np.ndarray, est: np.ndarray) -> float:
    return float(metrics.snr(ref, np.asarray(est, np.float64)))


@pytest.fixture(scope="module")
def pair() -> tuple[np.ndarray, np.ndarray]:
    """A stereo reference whose level falls with frequency and swells in time, and its
    Butterworth-8 low-pass at 8 kHz (the degraded input)."""
    rng = np.random.default_rng(3)
    t = np.arange(4 * SR) / SR
    ref = signal.lfilter(*signal.butter(1, 3000, fs=SR), rng.standard_normal((2, t.size)))
    ref = 0.2 * ref * (0.1 + np.abs(np.sin(2 * np.pi * 0.5 * t)))
    low = signal.sosfiltfilt(signal.butter(8, CUT, fs=SR, output="sos"), ref, axis=-1)
    return ref, low


@pytest.mark.parametrize("level", [0.0, -6.0, -12.0])
def test_envelope_oracle_puts_the_band_at_the_reference_level_plus_offset(
        pair: tuple[np.ndarray, np.ndarray], level: float) -> None:
    ref, low = pair
    out = oracle_envelope(low, ref, SR, CUT, level_db=level)
    assert out.shape == low.shape and out.dtype == np.float32
    for lo, hi in ((9000, 11000), (11000, 14000)):
        assert band_db(out, lo, hi) - band_db(ref, lo, hi) == pytest.approx(level, abs=1.0)
    # the kept band is the input's (up to the added band's window leakage)
    np.testing.assert_allclose(band_db(out, 500, 6000), band_db(low, 500, 6000), atol=0.01)
    # and the band follows the reference in time: 0.25 s energies above 10 kHz correlate
    hp = signal.butter(8, 10000, "high", fs=SR, output="sos")
    frames = [signal.sosfilt(hp, a, axis=-1)[..., : 16 * SR // 4].reshape(2, 16, -1)
              for a in (out, ref)]
    e_out, e_ref = (np.log10((f ** 2).mean(axis=(0, 2))) for f in frames)
    assert np.corrcoef(e_out, e_ref)[0, 1] > 0.95


def test_envelope_oracle_costs_snr_as_its_level_says(
        pair: tuple[np.ndarray, np.ndarray]) -> None:
    ref, low = pair
    base = snr(ref, low)
    deltas = [snr(ref, oracle_envelope(low, ref, SR, CUT, level_db=d)) - base
              for d in (0.0, -6.0, -12.0, -18.0)]
    # uncorrelated noise at the missing band's level doubles that band's error
    assert deltas[0] < -2.0
    assert deltas == sorted(deltas) and deltas[-1] > -0.1 and deltas[-1] < 0.0


def test_envelope_oracle_is_seeded_and_keeps_what_the_input_holds(
        pair: tuple[np.ndarray, np.ndarray]) -> None:
    ref, _ = pair
    a = oracle_envelope(ref, ref, SR, CUT)
    np.testing.assert_allclose(a, ref.astype(np.float32), atol=1e-6)  # nothing is missing
    low = signal.sosfiltfilt(signal.butter(8, CUT, fs=SR, output="sos"), ref, axis=-1)
    one, two = (oracle_envelope(low, ref, SR, CUT, seed=s) for s in (0, 0))
    np.testing.assert_array_equal(one, two)
    assert not np.array_equal(one, oracle_envelope(low, ref, SR, CUT, seed=1))
    # at Nyquist nothing is missing
    np.testing.assert_array_equal(oracle_envelope(low, ref, SR, SR / 2), low.astype(np.float32))


def test_band_oracle_joins_input_and_reference(pair: tuple[np.ndarray, np.ndarray]) -> None:
    ref, low = pair
    noisy = low + 1e-3 * np.random.default_rng(0).standard_normal(low.shape)  # "codec" noise
    out = oracle_band(noisy, ref, SR, CUT)
    assert band_db(out, 9000, 20000) == pytest.approx(band_db(ref, 9000, 20000), abs=0.05)
    np.testing.assert_allclose(band_db(out, 500, 6000), band_db(noisy, 500, 6000), atol=0.01)
    # a low-pass lacked the band and its transition below the cutoff: most error is gone
    assert snr(ref, oracle_band(low, ref, SR, CUT)) > snr(ref, low) + 10
    with pytest.raises(SpecError, match="one shape"):
        oracle_band(low[:1], ref, SR, CUT)


def test_oracles_are_baselines_of_evaluate(pair: tuple[np.ndarray, np.ndarray]) -> None:
    ref, low = pair
    obs = Observation(low.astype(np.float32), SR, PARAMS, CUT,
                      reference=ref)
    names = ["oracle-band", "oracle-envelope", "oracle-envelope-6", "oracle-envelope-12",
             "oracle-envelope-18"]
    assert all(n in BASELINES and n in DESCRIPTIONS for n in names)
    levels = [band_db(BASELINES[n](obs), 9000, 14000) - band_db(ref, 9000, 14000)
              for n in names]
    assert levels == pytest.approx([0, 0, -6, -12, -18], abs=1.0)
    with pytest.raises(SpecError, match="reference"):
        BASELINES["oracle-envelope"](Observation(low, SR, PARAMS, CUT))


def test_quieter_sbr_scales_only_its_added_band(pair: tuple[np.ndarray, np.ndarray]) -> None:
    _, low = pair
    full, quiet = (sbr(low, SR, CUT, level_db=d) - low for d in (0.0, -12.0))
    assert np.sum(full ** 2) > 0
    np.testing.assert_allclose(quiet, full * 10 ** (-12 / 20), atol=1e-6)
    obs = Observation(low.astype(np.float32), SR, PARAMS, CUT)
    np.testing.assert_allclose(BASELINES["sbr-12"](obs) - low, quiet, atol=1e-6)
    assert "sbr-6" in DESCRIPTIONS and "sbr-18" in BASELINES
