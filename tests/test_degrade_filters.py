"""Low-pass filters and Kuleshov decimation: measured responses against their designs."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from upband.degrade import filters
from upband.degrade.filters import FilterSpec, design, lowpass
from upband.degrade.resampling import band_limit_by_decimation, downsample, upsample
from upband.errors import SpecError

SR = 44100
FC = 4000.0  # one octave above (8 kHz) is still below Nyquist


def sine(freq: float, n: int = SR, sr: int = SR, phase: float = 0.0) -> np.ndarray:
    return np.cos(2 * np.pi * freq * np.arange(n) / sr + phase).astype(np.float32)


def fit(y: np.ndarray, freq: float, sr: float = SR) -> complex:
    """Complex amplitude of ``freq`` in the middle half of ``y`` (least squares, no edges)."""
    n = y.shape[-1]
    t = np.arange(n // 4, 3 * n // 4)
    basis = np.stack([np.cos(2 * np.pi * freq * t / sr), np.sin(2 * np.pi * freq * t / sr)], 1)
    (c, s), *_ = np.linalg.lstsq(basis, y[t].astype(np.float64), rcond=None)
    return complex(c, -s)


def gain_db(y: np.ndarray, freq: float, sr: float = SR) -> float:
    return float(20 * np.log10(abs(fit(y, freq, sr))))


def noise(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(shape) * 0.1).astype(np.float32)


# --------------------------------------------------------------------------------------------
# measured responses
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["butter:6", "cheby1:6", "cheby2:6", "ellip:6", "bessel:6",
                                  "ellip:12,rp=0.05,rs=20", "cheby1:6,causal", "ellip:6,causal"])
@pytest.mark.parametrize("freq", [FC, 2 * FC])
def test_iir_gain_matches_design(text: str, freq: float) -> None:
    spec = FilterSpec.parse(text)
    _, h = signal.sosfreqz(design(spec, FC, SR), worN=[freq], fs=SR)
    # zero-phase runs the filter twice: |H|^2, twice the dB
    expected = (2 if spec.zero_phase else 1) * 20 * np.log10(abs(h[0]))
    # 4 s: Sulun's ellip 12 / rs 20 has a pole at radius 0.99991 that rings for 11 000 samples
    measured = gain_db(lowpass(sine(freq, n=4 * SR), SR, FC, spec), freq)
    assert measured == pytest.approx(expected, abs=0.5)


@pytest.mark.parametrize("family", ["subsample", "stft"])
def test_brickwall_families_against_ideal_lowpass(family: str) -> None:
    """Reference: the ideal brick wall, 0 dB below the cutoff and nothing an octave above."""
    passband = lowpass(sine(0.5 * FC), SR, FC, family)
    assert gain_db(passband, 0.5 * FC) == pytest.approx(0.0, abs=0.05)
    stop = lowpass(sine(2 * FC), SR, FC, family)
    # all output energy (aliases included) in the middle half, relative to the input sine
    mid = stop[SR // 4: 3 * SR // 4]
    assert 10 * np.log10(np.mean(mid.astype(np.float64) ** 2) / 0.5) < -60


def test_cheby1_6_minus_3db_point_is_11604_hz() -> None:
    """Zero-phase Chebyshev-I 6 at 11 025 Hz is −3 dB near 11.6 kHz, not 11 025
    (docs/readings/degradations.md)."""
    spec = FilterSpec.parse("cheby1:6")
    freqs = np.arange(11000.0, 12500.0, 1.0)
    _, h = signal.sosfreqz(design(spec, 11025, SR), worN=freqs, fs=SR)
    f3 = freqs[np.argmax(40 * np.log10(np.abs(h)) < -3.0)]
    assert f3 == pytest.approx(11604, abs=2)
    for freq, gain in ((11604.0, -3.0), (11025.0, -0.1)):
        assert gain_db(lowpass(sine(freq), SR, 11025, spec), freq) == pytest.approx(gain, abs=0.05)


@pytest.mark.parametrize("family", ["butter", "cheby1", "cheby2", "ellip", "bessel"])
def test_zero_phase_keeps_passband_phase(family: str) -> None:
    x = sine(1000.0, phase=0.7)
    zero = fit(lowpass(x, SR, FC, f"{family}:8"), 1000.0)
    assert abs(np.angle(zero) - 0.7) < 1e-3
    causal = fit(lowpass(x, SR, FC, f"{family}:8,causal"), 1000.0)
    assert abs(np.angle(causal) - 0.7) > 0.1  # the causal filter does shift it


def test_stft_cut_stopband_below_minus_80_db() -> None:
    """White noise through the STFT cut: PSD above the stopband edge vs the passband PSD.

    The stopband starts 4 STFT bins (4 · sr / n_fft ≈ 86 Hz at 44.1 kHz) above the cutoff: the
    cut is exact per frame, but overlap-add multiplies each frame by the Hann synthesis window,
    whose main lobe smears the edge over ±2 bins; the measuring Welch window (Blackman-Harris,
    16384) adds ±11 Hz of its own. Measured: −101 dB at 100 Hz, −83 dB at 50 Hz.
    """
    x = noise((4 * SR,)) * 10
    y = lowpass(x, SR, FC, "stft")
    f, pxx = signal.welch(x.astype(np.float64), SR, window="blackmanharris", nperseg=16384)
    _, pyy = signal.welch(y.astype(np.float64), SR, window="blackmanharris", nperseg=16384)
    edge = FC + 4 * SR / filters.stft_size(SR)
    stop = 10 * np.log10(pyy[f > edge].mean() / pxx[f < FC].mean())
    assert stop < -80
    assert 10 * np.log10(pyy[f < 0.9 * FC].mean() / pxx[f < 0.9 * FC].mean()) > -0.1


def test_subsample_uses_rational_rate() -> None:
    # 2 * 3333.3 / 44100 has no small exact ratio: the rational approximation still cuts there
    y = lowpass(sine(2500.0) + sine(5000.0), SR, 3333.3, "subsample")
    assert gain_db(y, 2500.0) == pytest.approx(0.0, abs=0.05)
    assert gain_db(y, 5000.0) < -60


# --------------------------------------------------------------------------------------------
# shapes, purity, errors
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", ["butter:5", "ellip:12,rp=0.05,rs=20", "cheby1:6,causal",
                                  "subsample", "stft"])
@pytest.mark.parametrize("shape", [(1001,), (2, 999), (2, 3, 777), (2, 10), (1, 1)])
def test_shape_dtype_purity_and_batching(spec: str, shape: tuple[int, ...]) -> None:
    x = noise(shape)
    before = x.copy()
    y = lowpass(x, SR, FC, spec)
    assert y.shape == x.shape and y.dtype == np.float32
    np.testing.assert_array_equal(x, before)
    flat = x.reshape(-1, shape[-1])
    one_by_one = np.stack([lowpass(row, SR, FC, spec) for row in flat]).reshape(shape)
    np.testing.assert_allclose(y, one_by_one, atol=1e-6)


def test_float64_input_untouched_and_empty_input() -> None:
    x = noise((2, 500)).astype(np.float64)
    before = x.copy()
    lowpass(x, SR, FC, "cheby1:6")
    np.testing.assert_array_equal(x, before)
    assert lowpass(np.zeros((2, 0), np.float32), SR, FC, "stft").shape == (2, 0)


@pytest.mark.parametrize("text", ["cheby1:6", "ellip:8,rp=0.1,rs=60", "butter:6,causal", "stft",
                                  "subsample", "cheby2:4,rs=40", "bessel:12,causal"])
def test_spec_string_round_trip(text: str) -> None:
    spec = FilterSpec.parse(text)
    assert FilterSpec.parse(str(spec)) == spec


def test_spec_defaults_are_filled() -> None:
    assert FilterSpec.parse("cheby1:6") == FilterSpec("cheby1", 6, rp=0.05)
    assert str(FilterSpec.parse("ellip:12")) == "ellip:12,rp=0.05,rs=60"
    assert FilterSpec.parse(" Cheby2:8 , RS=40 ").rs == 40.0


@pytest.mark.parametrize(("text", "message"), [
    ("foo:6", r"unknown filter family 'foo'; choose one of butter, cheby1"),
    ("butter", r"butter needs an order"),
    ("butter:0", r"order must be an integer from 1 to 24"),
    ("butter:25", r"order must be an integer from 1 to 24"),
    ("butter:six", r"order must be a positive integer"),
    ("butter:-2", r"order must be a positive integer"),
    ("stft:6", r"stft takes no order"),
    ("butter:6,rp=1", r"butter takes no rp"),
    ("cheby1:6,rp=abc", r"rp must be a number"),
    ("cheby1:6,rp=nan", r"rp must be finite"),
    ("cheby1:6,rp=0", r"rp \(passband ripple\) must be a number of dB from"),
    ("cheby1:6,gain=3", r"unknown option 'gain=3'"),
    ("ellip:6,rp=5,rs=5", r"rs \(stopband attenuation\)"),
    ("subsample,causal", r"subsample is always zero-phase"),
])
def test_bad_specs_raise_spec_error(text: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        FilterSpec.parse(text)


@pytest.mark.parametrize("cutoff", [0.0, -100.0, SR / 2, 30000.0])
def test_cutoff_must_be_below_nyquist(cutoff: float) -> None:
    with pytest.raises(SpecError, match=r"cutoff must be a frequency in Hz between 0 and the "
                                        r"Nyquist frequency \(22050 Hz"):
        lowpass(noise((100,)), SR, cutoff, "butter:4")


# --------------------------------------------------------------------------------------------
# Kuleshov decimation
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("r", [2, 4, 6])
def test_downsample_equals_scipy_decimate(r: int) -> None:
    x = noise((2, 16001))
    y = downsample(x, r)
    ref = signal.decimate(x.astype(np.float64), r, ftype="iir", zero_phase=True)
    assert y.shape == (2, -(-16001 // r)) and y.dtype == np.float32
    np.testing.assert_allclose(y, ref, atol=1e-6)


def test_downsample_anti_alias_at_r6() -> None:
    """Order 8 at r = 6 is well conditioned in sections: passband flat, the alias band gone."""
    sr = 16000
    low = downsample(sine(500.0, sr=sr), 6)
    alias = downsample(sine(2000.0, sr=sr), 6)  # above the new Nyquist (1333 Hz): would alias
    assert gain_db(low, 500.0, sr / 6) == pytest.approx(0.0, abs=0.1)  # rp 0.05 dB, twice
    assert 10 * np.log10(np.mean(alias[len(alias) // 4: -len(alias) // 4] ** 2) / 0.5) < -80


@pytest.mark.parametrize("method", ["spline", "sinc", "zoh"])
@pytest.mark.parametrize("r", [2, 6])
def test_upsample_lengths_and_accuracy(method: str, r: int) -> None:
    sr = 16000
    x = sine(200.0, n=4001, sr=sr)  # far below the low-rate Nyquist
    low = x[::r]
    for length in (None, 4001, len(low) * r + 5):
        y = upsample(low, r, method, length=length)
        assert y.shape == (len(low) * r if length is None else length,)
    y = upsample(low, r, method, length=4001)
    mid = slice(500, 3500)
    err = np.max(np.abs(y[mid] - x[mid]))
    if method == "zoh":  # a hold: error up to the signal's change over r samples
        assert err < 2 * np.pi * 200 / sr * r
    else:
        assert err < 2e-3


def test_spline_matches_kuleshov_splrep() -> None:
    from scipy import interpolate

    low = noise((300,))
    r = 4
    knots = np.arange(300) * r
    ref = interpolate.splev(np.arange(300 * r), interpolate.splrep(knots, low))
    np.testing.assert_allclose(upsample(low, r, "spline"), ref, atol=1e-5)
    assert upsample(low[:2], r).shape == (8,)  # fewer than 4 samples: lower degree


@pytest.mark.parametrize("shape", [(16001,), (2, 9999), (2, 2, 1001)])
def test_band_limit_by_decimation_shape_purity(shape: tuple[int, ...]) -> None:
    x = noise(shape)
    before = x.copy()
    for method in ("spline", "sinc", "zoh"):
        y = band_limit_by_decimation(x, 4, method)
        assert y.shape == x.shape and y.dtype == np.float32
    np.testing.assert_array_equal(x, before)


def test_band_limit_by_decimation_removes_high_band() -> None:
    sr = 16000
    x = sine(500.0, n=sr, sr=sr) + sine(3000.0, n=sr, sr=sr)
    y = band_limit_by_decimation(x, 4, "sinc")  # new Nyquist 2 kHz
    assert abs(gain_db(y, 500.0, sr)) < 0.1
    assert gain_db(y, 3000.0, sr) < -60


@pytest.mark.parametrize(("call", "message"), [
    (lambda: downsample(noise((100,)), 1), r"decimation factor must be an integer from 2 to 32"),
    (lambda: downsample(noise((100,)), 2.5), r"decimation factor"),  # type: ignore[arg-type]
    (lambda: upsample(noise((100,)), 2, "cubic"), r"unknown upsampling method 'cubic'; choose"),
    (lambda: upsample(noise((100,)), 2, length=-1), r"length must be a non-negative integer"),
])
def test_resampling_errors(call: object, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        call()  # type: ignore[operator]
