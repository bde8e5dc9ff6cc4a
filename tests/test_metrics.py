"""upband.metrics on synthetic signals, checked against closed forms and hand computations."""

from __future__ import annotations

import inspect
import math
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from upband import metrics
from upband.errors import MissingDependencyError, ModelError, NonFiniteAudioError, SpecError

SR = 44_100


def _noise(shape: int | tuple[int, ...], seed: int = 0, scale: float = 0.1) -> np.ndarray:
    return scale * np.random.default_rng(seed).standard_normal(shape)


def _enveloped_sine(freq: float, n: int, sr: int = SR, amp: float = 1.0) -> np.ndarray:
    """A sine under a sin^2 envelope over the whole signal: starts and ends smoothly, so its STFT
    and FFT stay confined near ``freq`` (no broadband onset at the signal edges)."""
    t = np.arange(n) / sr
    return amp * np.sin(2 * np.pi * freq * t) * np.sin(np.pi * np.arange(n) / n) ** 2


def _highpass(x: np.ndarray, sr: int, min_hz: float) -> np.ndarray:
    spec = np.fft.rfft(x, axis=-1)
    spec[..., np.fft.rfftfreq(x.shape[-1], 1 / sr) < min_hz] = 0
    return np.fft.irfft(spec, n=x.shape[-1], axis=-1)


def _hand_power(x: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """|STFT|^2 ``[frames, bins]`` of a 1-D signal, written out frame by frame: centred frames
    (n_fft // 2 zeros each side), periodic Hann window, unnormalised DFT."""
    pad = n_fft // 2
    xp = np.concatenate([np.zeros(pad), x, np.zeros(pad)])
    window = np.hanning(n_fft + 1)[:-1]  # periodic Hann
    frames = [xp[s:s + n_fft] for s in range(0, len(xp) - n_fft + 1, hop)]
    return np.array([np.abs(np.fft.rfft(f * window)) ** 2 for f in frames])


LSDS: dict[str, Callable[..., Any]] = {
    "kuleshov": metrics.lsd_kuleshov,
    "ssr": metrics.lsd_ssr,
    "db": metrics.lsd_db,
}


# ---------------------------------------------------------------------------------------------
# identical signals
# ---------------------------------------------------------------------------------------------


def test_identical_signals_are_exact() -> None:
    x = _noise((2, 20_000))
    with np.errstate(all="raise"):  # no divide-by-zero or invalid warnings on the way
        assert metrics.snr(x, x) == math.inf
        assert metrics.segmental_snr(x, x, 4096) == math.inf
        assert metrics.si_sdr(x, x) == math.inf
        assert metrics.snr_highband(x, x, SR, 8000.0) == math.inf
        for name, lsd in LSDS.items():
            assert lsd(x, x, SR) == 0.0, name
            assert lsd(x, x, SR, min_hz=11_025.0) == 0.0, name
        assert metrics.spectral_mse(x, x) == 0.0


def test_identical_silence() -> None:
    z = np.zeros((2, 8192))
    assert metrics.snr(z, z) == math.inf
    assert metrics.si_sdr(z, z) == math.inf
    for lsd in LSDS.values():
        assert lsd(z, z, SR) == 0.0
    assert metrics.spectral_mse(z, z) == 0.0


# ---------------------------------------------------------------------------------------------
# SNR, segmental SNR, SI-SDR
# ---------------------------------------------------------------------------------------------


def test_snr_of_known_perturbation_matches_closed_form() -> None:
    x = _noise((1, 10_000), seed=1)
    e = _noise((1, 10_000), seed=2)
    for ratio_db in (0.0, 13.0, 40.0):
        # scale e so that |x|^2 / |e|^2 = 10^(ratio_db / 10) exactly
        scaled = e * np.sqrt(np.sum(x**2) / np.sum(e**2) / 10 ** (ratio_db / 10))
        assert metrics.snr(x, x + scaled) == pytest.approx(ratio_db, abs=1e-9)


def test_snr_treats_stereo_as_one_vector() -> None:
    n = 4096
    t = np.arange(n) / SR
    left = np.sin(2 * np.pi * 440 * t)
    right = 0.1 * np.sin(2 * np.pi * 660 * t)
    x = np.stack([left, right])
    err = 0.05 * np.cos(2 * np.pi * 1000 * t)
    y = np.stack([left, right + err])  # error only in the quiet right channel
    hand = 10 * np.log10((np.sum(left**2) + np.sum(right**2)) / np.sum(err**2))
    assert metrics.snr(x, y) == pytest.approx(hand, abs=1e-9)
    # the right channel alone is much worse: averaging per-channel SNRs would differ
    assert metrics.snr(right, right + err) < hand - 15


def test_snr_silent_reference_is_minus_inf() -> None:
    z = np.zeros(1000)
    assert metrics.snr(z, _noise((1000,))) == -math.inf
    assert metrics.si_sdr(z, _noise((1000,))) == -math.inf
    assert metrics.si_sdr(_noise((1000,)), z) == -math.inf  # silent estimate recovers nothing


def test_segmental_snr_matches_hand_computation() -> None:
    segment = 4
    x = np.ones(3 * segment + 2)
    err = np.concatenate([np.full(4, 0.1), np.full(4, 0.2), np.full(4, 0.5), [100.0, 100.0]])
    # per segment: 10 log10(4 / (4 e^2)) = -20 log10(e); the partial tail is dropped
    hand = np.mean([-20 * np.log10(0.1), -20 * np.log10(0.2), -20 * np.log10(0.5)])
    assert metrics.segmental_snr(x, x + err, segment) == pytest.approx(hand, abs=1e-12)
    # one vector per segment across channels, like snr
    x2 = np.stack([x, 2 * x])
    e2 = np.stack([err, np.zeros_like(err)])
    hand2 = np.mean([10 * np.log10(20 / (4 * e**2)) for e in (0.1, 0.2, 0.5)])
    assert metrics.segmental_snr(x2, x2 + e2, segment) == pytest.approx(hand2, abs=1e-12)


def test_segmental_snr_skips_silent_reference_segments() -> None:
    x = np.concatenate([np.zeros(4), np.ones(4)])
    y = x + 0.1  # the first segment has pure error over a silent reference
    assert metrics.segmental_snr(x, y, 4) == pytest.approx(20.0, abs=1e-12)
    assert math.isnan(metrics.segmental_snr(np.zeros(8), np.ones(8), 4))
    with pytest.raises(SpecError):
        metrics.segmental_snr(x, y, 9)
    with pytest.raises(SpecError):
        metrics.segmental_snr(x, y, 0)


def test_si_sdr_closed_form_and_scale_invariance() -> None:
    x = _noise((2, 5000), seed=3)
    n = _noise((2, 5000), seed=4, scale=0.03)
    n -= np.sum(n * x) / np.sum(x * x) * x  # orthogonal to x: alpha = 1, noise = n
    hand = 10 * np.log10(np.sum(x**2) / np.sum(n**2))
    assert metrics.si_sdr(x, x + n) == pytest.approx(hand, abs=1e-9)
    for gain in (0.01, 0.5, -3.0, 100.0):
        assert metrics.si_sdr(x, gain * (x + n)) == pytest.approx(hand, abs=1e-9)
    # plain SNR is not scale invariant
    assert metrics.snr(x, 0.5 * (x + n)) < hand - 3


# ---------------------------------------------------------------------------------------------
# log-spectral distances and spectral MSE
# ---------------------------------------------------------------------------------------------


def test_lsd_of_doubled_signal_is_known_constant() -> None:
    # |S|^2 scales by 4 in every bin: Kuleshov ln 4, ssr_eval log10 4, Lattner 10 log10 4 dB
    x = _noise((2, 30_000), seed=5)
    assert metrics.lsd_kuleshov(x, 2 * x, SR) == pytest.approx(math.log(4), rel=1e-7)
    assert metrics.lsd_ssr(x, 2 * x, SR) == pytest.approx(math.log10(4), rel=1e-7)
    assert metrics.lsd_db(x, 2 * x, SR) == pytest.approx(10 * math.log10(4), rel=1e-7)
    # the same constants restricted to the high band, and at another rate (ssr's STFT scales)
    assert metrics.lsd_ssr(x, 2 * x, 48_000, min_hz=12_000.0) == pytest.approx(
        math.log10(4), rel=1e-7)
    assert metrics.lsd_kuleshov(x, 2 * x, SR, min_hz=8000.0) == pytest.approx(
        math.log(4), rel=1e-7)


def test_lsd_definitions_match_hand_computation() -> None:
    x = _noise(6000, seed=6)
    # est: x with a frequency-dependent gain and a time-varying gain, so the axis order matters
    spec = np.fft.rfft(x)
    spec *= np.linspace(1.0, 0.1, spec.size)
    y = np.fft.irfft(spec, n=x.size) * np.linspace(0.5, 1.5, x.size)

    def diffs(n_fft: int, hop: int, log: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        return log(_hand_power(x, n_fft, hop)) - log(_hand_power(y, n_fft, hop))  # [frames, bins]

    d = diffs(2048, 512, lambda p: np.log(p + 1e-8))
    kuleshov = np.mean(np.sqrt(np.mean(d**2, axis=0)))  # RMS over time per bin, mean over bins
    assert metrics.lsd_kuleshov(x, y, SR) == pytest.approx(kuleshov, rel=1e-10)
    d = diffs(2048, 441, lambda p: np.log10(p + 1e-12))  # ssr_eval at 44.1 kHz: 2048 / 441
    ssr = np.mean(np.sqrt(np.mean(d**2, axis=1)))  # RMS over bins per frame, mean over frames
    assert metrics.lsd_ssr(x, y, SR) == pytest.approx(ssr, rel=1e-10)
    d = diffs(2048, 512, lambda p: 10 * np.log10(p + 1e-12))
    assert metrics.lsd_db(x, y, SR) == pytest.approx(np.mean(np.sqrt(np.mean(d**2, axis=1))),
                                                     rel=1e-10)
    # the transposed definitions really differ on this pair
    as_db = math.log(10) * float(metrics.lsd_db(x, y, SR)) / 10
    assert abs(float(metrics.lsd_kuleshov(x, y, SR)) - as_db) > 0.01
    # ssr_eval's STFT at 16 kHz: n_fft int(2048 * 16000 / 44100) = 743, hop 160
    assert metrics.ssr_stft_size(16_000) == (743, 160)
    assert metrics.ssr_stft_size(48_000) == (2229, 480)


def test_lsd_stereo_is_mean_of_channels() -> None:
    x = _noise((2, 8000), seed=7)
    y = x * np.array([[2.0], [1.0]])  # only the left channel changes
    for name, lsd in LSDS.items():
        assert lsd(x, y, SR) == pytest.approx(lsd(x[0], y[0], SR) / 2, rel=1e-12), name


def test_highband_lsd_ignores_differences_below_min_hz() -> None:
    n = 40_000
    x = _noise((2, n), seed=8)
    y = x + _enveloped_sine(500.0, n, amp=1.0)  # a loud change, all of it near 500 Hz
    # the sine's Hann-window leakage above 8 kHz lies about 160 dB below its peak: that is the
    # only trace of it left in the high band
    for name, lsd in LSDS.items():
        assert lsd(x, y, SR) > 0.02, name
        assert lsd(x, y, SR, min_hz=8000.0) < 1e-5, name
    assert metrics.spectral_mse(x, y) > 1.0
    assert metrics.spectral_mse(x, y, SR, min_hz=8000.0) < 1e-9
    # and it does see differences above min_hz
    z = x + _highpass(_noise((2, n), seed=9), SR, 6000.0)
    assert metrics.lsd_db(x, z, SR, min_hz=4000.0) > 0.5


def test_spectral_mse_matches_hand_computation() -> None:
    x = _noise(5000, seed=10)
    y = _noise(5000, seed=11)
    hand = np.mean((np.sqrt(_hand_power(x, 2048, 512)) - np.sqrt(_hand_power(y, 2048, 512))) ** 2)
    assert metrics.spectral_mse(x, y) == pytest.approx(hand, rel=1e-10)
    # doubling: sqrt(4P) - sqrt(P) = |S|, so the MSE is the mean power of the reference
    assert metrics.spectral_mse(x, 2 * x) == pytest.approx(
        np.mean(_hand_power(x, 2048, 512)), rel=1e-10)


def test_snr_highband() -> None:
    n = 30_000
    x = _noise((2, n), seed=12)
    h = _highpass(_noise((2, n), seed=13, scale=0.02), SR, 8000.0)  # error only above 8 kHz
    hand = 10 * np.log10(np.sum(_highpass(x, SR, 8000.0) ** 2) / np.sum(h**2))
    assert metrics.snr_highband(x, x + h, SR, 8000.0) == pytest.approx(hand, abs=1e-9)
    # a large error below the band does not count
    y = x + _enveloped_sine(300.0, n)
    assert metrics.snr(x, y) < 10
    assert metrics.snr_highband(x, y, SR, 4000.0) > 80
    # an estimate with nothing above the cutoff
    lowpassed = x - _highpass(x, SR, 8000.0)
    assert metrics.snr_highband(x, lowpassed, SR, 8000.0) == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(SpecError):
        metrics.snr_highband(x, x, SR, SR / 2)


# ---------------------------------------------------------------------------------------------
# batching and errors
# ---------------------------------------------------------------------------------------------

BATCHED: dict[str, Callable[[np.ndarray, np.ndarray], Any]] = {
    "snr": metrics.snr,
    "segmental_snr": lambda a, b: metrics.segmental_snr(a, b, 2048),
    "si_sdr": metrics.si_sdr,
    "snr_highband": lambda a, b: metrics.snr_highband(a, b, SR, 5000.0),
    "lsd_kuleshov": lambda a, b: metrics.lsd_kuleshov(a, b, SR),
    "lsd_ssr": lambda a, b: metrics.lsd_ssr(a, b, SR, min_hz=3000.0),
    "lsd_db": lambda a, b: metrics.lsd_db(a, b, SR),
    "spectral_mse": metrics.spectral_mse,
}


@pytest.mark.parametrize("name", sorted(BATCHED))
def test_batch_equals_loop(name: str) -> None:
    fn = BATCHED[name]
    x = _noise((2, 3, 2, 9000), seed=14)
    y = x + _noise((2, 3, 2, 9000), seed=15, scale=0.05) * np.arange(1, 7).reshape(2, 3, 1, 1)
    batch = fn(x, y)
    assert isinstance(batch, np.ndarray) and batch.shape == (2, 3)
    loop = np.array([[fn(x[i, j], y[i, j]) for j in range(3)] for i in range(2)])
    assert all(isinstance(v, float) for v in loop.ravel())
    np.testing.assert_allclose(batch, loop, rtol=1e-12)
    assert len(set(np.round(batch.ravel(), 9))) == 6  # the values really differ per item
    # [T] is one channel
    assert fn(x[0, 0, 0], y[0, 0, 0]) == pytest.approx(fn(x[0, 0, :1], y[0, 0, :1]), rel=1e-12)


@pytest.mark.parametrize("name", sorted(BATCHED))
def test_shape_mismatch_raises(name: str) -> None:
    with pytest.raises(SpecError, match="shapes differ"):
        BATCHED[name](np.zeros((2, 9000)), np.zeros((1, 9000)))
    with pytest.raises(SpecError, match="shapes differ"):
        BATCHED[name](np.zeros((2, 9000)), np.zeros((2, 8999)))


def test_other_input_errors() -> None:
    x = np.zeros((2, 100))
    with pytest.raises(NonFiniteAudioError):
        metrics.snr(x, np.full((2, 100), np.nan))
    with pytest.raises(SpecError):
        metrics.snr(np.zeros((2, 0)), np.zeros((2, 0)))
    with pytest.raises(SpecError):
        metrics.lsd_ssr(x, x, 0)
    with pytest.raises(SpecError):
        metrics.lsd_db(x, x, SR, min_hz=-1.0)
    with pytest.raises(SpecError):
        metrics.spectral_mse(x, x, min_hz=1000.0)  # min_hz needs a sample rate
    with pytest.raises(SpecError, match="shapes differ"):
        metrics.compute_all(x, np.zeros((1, 100)), SR)
    with pytest.raises(SpecError):
        metrics.compute_all(np.zeros((3, 2, 100)), np.zeros((3, 2, 100)), SR)


def test_inputs_are_not_modified() -> None:
    x = _noise((2, 5000)).astype(np.float32)
    y = (x + 0.01).astype(np.float32)
    x0, y0 = x.copy(), y.copy()
    metrics.compute_all(x, y, SR, 5000.0, with_visqol=False)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(y, y0)


def test_compute_all_keys_and_values() -> None:
    x = _noise((2, 20_000), seed=16)
    y = 0.9 * x + _noise((2, 20_000), seed=17, scale=0.01)
    out = metrics.compute_all(x, y, SR, with_visqol=False)
    assert set(out) == {"snr", "segmental_snr", "si_sdr", "lsd_kuleshov", "lsd_ssr", "lsd_db",
                        "spectral_mse"}
    assert all(isinstance(v, float) for v in out.values())
    assert out["snr"] == metrics.snr(x, y)
    assert out["segmental_snr"] == metrics.segmental_snr(x, y, metrics.SEGMENT_SAMPLES)
    assert out["lsd_db"] == metrics.lsd_db(x, y, SR)
    high = metrics.compute_all(x, y, SR, cutoff_hz=11_025.0, with_visqol=False)
    assert set(high) - set(out) == {"snr_high", "lsd_kuleshov_high", "lsd_ssr_high", "lsd_db_high"}
    assert high["lsd_ssr_high"] == metrics.lsd_ssr(x, y, SR, min_hz=11_025.0)
    assert high["snr_high"] == metrics.snr_highband(x, y, SR, 11_025.0)


def test_compute_all_without_visqol_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics.perceptual, "visqol_available", lambda: False)
    out = metrics.compute_all(_noise(5000), _noise(5000, seed=1), SR)
    assert "visqol" not in out


# ---------------------------------------------------------------------------------------------
# optional / model-backed metrics
# ---------------------------------------------------------------------------------------------


def test_vgg_distance_without_weights_raises_model_error(tmp_path: Any) -> None:
    x = _noise((2, SR))
    with pytest.raises(ModelError, match="never downloads"):
        metrics.vgg_distance(x, x, SR)
    with pytest.raises(ModelError, match="not found"):
        metrics.vgg_distance(x, x, SR, weights=tmp_path / "vggish.safetensors")


def test_vgg_distance_corrupt_safetensors_raises_model_error(tmp_path: Any) -> None:
    bad = tmp_path / "vggish.safetensors"
    bad.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00not json")
    with pytest.raises(ModelError, match=r"vggish\.safetensors: cannot read VGGish weights"):
        metrics.load_vggish(bad)


def test_every_domain_name_is_reachable_from_the_package() -> None:
    for module in (metrics.time, metrics.spectral, metrics.perceptual, metrics.suite):
        functions = [n for n, v in vars(module).items() if inspect.isfunction(v)
                     and v.__module__ == module.__name__ and not n.startswith("_")]
        constants = [n for n in vars(module)
                     if n.isupper() and n[0] != "_" and n != "TYPE_CHECKING"]
        assert functions
        for name in functions + constants:
            assert getattr(metrics, name) is getattr(module, name), name
            assert name in metrics.__all__, name


def test_import_keeps_torch_out() -> None:
    """torch is loaded only by the VGG functions (it takes seconds to import)."""
    code = ("import sys, upband; a = 'torch' in sys.modules; import upband.metrics; "
            "print(a, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    before, after = out.stdout.split()
    if before == "True":
        pytest.skip("the upband package itself imports torch")
    assert after == "False"


def test_visqol_missing_dependency(monkeypatch: pytest.MonkeyPatch) -> None:
    metrics.perceptual._visqol_api.cache_clear()
    monkeypatch.setitem(sys.modules, "visqol", None)  # makes `import visqol` fail
    try:
        with pytest.raises(MissingDependencyError, match=r"pip install 'upband\[visqol\]'"):
            metrics.visqol(_noise(48_000), _noise(48_000), 48_000)
    finally:
        metrics.perceptual._visqol_api.cache_clear()


def test_visqol_scores() -> None:
    pytest.importorskip("visqol")
    sr = 48_000
    n = 2 * sr
    t = np.arange(n) / sr
    rng = np.random.default_rng(18)
    music = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 3300 * t)
             + 0.05 * rng.standard_normal(n)) * (0.6 + 0.4 * np.sin(2 * np.pi * 2 * t))
    x = np.stack([music, 0.8 * music])
    # identical signals: every patch similarity is 1, which the v3 audio SVR maps to 4.732
    # (the C++ reference prints 4.73); the score is deterministic, so a tight tolerance holds
    assert metrics.visqol(x, x, sr) == pytest.approx(4.732, abs=5e-3)
    lowpassed = x - _highpass(x, sr, 4000.0)
    degraded = metrics.visqol(x, lowpassed, sr)
    assert 1.0 <= degraded < 4.732 - 0.5
    # compute_all scores the same pair; numba's reductions may differ in the last bits
    assert metrics.compute_all(x, lowpassed, sr)["visqol"] == pytest.approx(degraded, rel=1e-9)
    # any rate is resampled to 48 kHz first
    x44 = x[..., : 2 * SR]
    assert metrics.visqol(x44, x44, SR) == pytest.approx(4.732, abs=5e-3)


def test_visqol_scores_long_signals_in_segments() -> None:
    pytest.importorskip("visqol")
    sr = 48_000
    rng = np.random.default_rng(3)
    x = 0.1 * rng.standard_normal((1, 5 * sr))
    y = x - _highpass(x, sr, 6000.0)
    # 5 s in 2 s segments: [0, 2) and [2, 5) (the last 1 s joins the segment before)
    whole = metrics.visqol(x, y, sr, segment_seconds=2.0)
    parts = [metrics.visqol(x[:, a:b], y[:, a:b], sr, segment_seconds=None)
             for a, b in ((0, 2 * sr), (2 * sr, 5 * sr))]
    assert whole == pytest.approx(np.mean(parts), abs=1e-9)
    assert metrics.visqol(x, y, sr, segment_seconds=None) != whole
