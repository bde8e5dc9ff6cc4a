"""Objective metrics of the bandwidth-extension papers, each under its own name.

Every metric is a pure function of ``reference`` and ``estimate`` shaped ``[..., C, T]`` (a bare
``[T]`` is one channel) that returns one value per leading index: a ``float`` for a single signal
(``[T]`` or ``[C, T]``), an ``ndarray`` shaped like the leading dimensions otherwise. Both inputs
must have the same shape (aligning rates, lengths and codec delay is the caller's job); they are
never modified. Computation is in float64.

Which definition belongs to which paper (see REFERENCE.md section 4):

======================  ===========================================  ==========================
function                definition                                   tables that use it
======================  ===========================================  ==========================
:func:`snr`             10 log10(|x|^2 / |x - x^|^2), all channels   Sulun & Davies Table II,
                        and samples as one vector (Sulun eq. 1,      ARUNet Table II,
                        Lattner eq. 7)                               Lattner Table 2
:func:`segmental_snr`   per-patch SNR averaged over patches          Kuleshov Tables 2-3
:func:`si_sdr`          scale-invariant SDR (Le Roux et al. 2019)    (ours)
:func:`lsd_kuleshov`    ln |STFT|^2, RMS over time per bin, mean     Kuleshov Tables 2-3
                        over bins (his released code)
:func:`lsd_ssr`         log10 |STFT|^2, RMS over bins per frame,     NVSR, AudioSR (ssr_eval);
                        mean over frames (Kuleshov eq. 3 as          TD-PR Table 1 has this form
                        printed, TD-PR eq. 5)                        (its STFT is not stated)
:func:`lsd_db`          Lattner eq. 5: as lsd_ssr but in dB          Lattner Table 2
:func:`spectral_mse`    Lattner eq. 6: MSE of sqrt power spectra     Lattner Table 2
:func:`visqol`          ViSQOL v3 audio mode MOS-LQO (1..5)          --
:func:`vgg_distance`    Sulun eq. 2: mean |VGGish(x) - VGGish(x^)|   Sulun & Davies Table II,
                                                                     ARUNet Table II
======================  ===========================================  ==========================

Spectral metrics are computed per channel and then averaged over channels (mean of the
per-channel values); SNR, segmental SNR and SI-SDR treat all channels as one vector, as Sulun &
Davies do; ViSQOL and VGGish see the mono downmix (mean of the channels). Every LSD and the
spectral MSE take ``min_hz`` to keep only the STFT bins at or above that frequency (the high-band
variants); :func:`snr_highband` is the SNR of the content at or above ``min_hz``.
"""

from __future__ import annotations

import functools
import importlib
import os
import pickle
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.fft
from numpy.typing import NDArray

from upband.audio import resample
from upband.errors import MissingDependencyError, ModelError, NonFiniteAudioError, SpecError

if TYPE_CHECKING:  # torch is imported only by the VGG functions, keeping `import` fast
    import torch

    from upband.models.vggish import VGGish

PathLike = str | os.PathLike[str]
#: A metric's value: ``float`` for one signal, ``ndarray`` over the leading (batch) dims.
MetricValue = float | NDArray[np.float64]

#: Floor added to |STFT|^2 before the natural log in :func:`lsd_kuleshov` (Kuleshov's code).
EPS_POWER_KULESHOV = 1e-8
#: Floor added to |STFT|^2 before log10 in :func:`lsd_ssr` and :func:`lsd_db` (ssr_eval's EPS).
EPS_POWER = 1e-12

#: Kuleshov et al.: frames of 2048 samples (librosa default hop n_fft / 4), at any sample rate.
KULESHOV_N_FFT = 2048
KULESHOV_HOP = 512
#: ssr_eval: n_fft = int(2048 * sr / 44100), hop = int(sr / 100).
SSR_N_FFT_AT_44K = 2048
SSR_REFERENCE_RATE = 44_100
SSR_FRAMES_PER_SECOND = 100
#: Lattner & Nistal: STFT window 2048, hop 512 (section 3.3.1), for LSD (eq. 5) and MSE (eq. 6).
LATTNER_N_FFT = 2048
LATTNER_HOP = 512

#: ViSQOL v3 audio mode runs at 48 kHz.
VISQOL_SAMPLE_RATE = 48_000
#: Longer signals are scored by ViSQOL in segments of this many seconds (see :func:`visqol`).
VISQOL_SEGMENT_SECONDS = 30.0
#: Segment length (samples) of :func:`compute_all`'s segmental SNR: Kuleshov's released patch size.
SEGMENT_SAMPLES = 8192

#: STFT frames processed at once by the spectral metrics (bounds memory on long songs).
_BLOCK_FRAMES = 512
#: VGGish examples (0.96 s each) per signal embedded at once (bounds activation memory).
_EMBED_BATCH = 32

_VGGISH_HELP = (
    "get the torchvggish release files vggish-10086976.pth and vggish_pca_params-970ea276.pth "
    "(github.com/harritaylor/torchvggish/releases) or any state dict with the same keys, "
    "ideally converted to .safetensors; upband never downloads weights"
)


# --------------------------------------------------------------------------------------------
# shapes and small helpers
# --------------------------------------------------------------------------------------------


def _pair(reference: Any, estimate: Any) -> tuple[NDArray[np.float64], NDArray[np.float64],
                                                 tuple[int, ...]]:
    """Check and flatten a (reference, estimate) pair to float64 ``[N, C, T]`` + leading shape."""
    x = np.asarray(reference, dtype=np.float64)
    y = np.asarray(estimate, dtype=np.float64)
    if x.shape != y.shape:
        raise SpecError(f"reference and estimate shapes differ: {x.shape} vs {y.shape}")
    if x.ndim == 0:
        raise SpecError("metrics need audio shaped [T] or [..., C, T], got a scalar")
    if x.ndim == 1:
        x, y = x[None], y[None]
    if x.shape[-1] == 0 or x.shape[-2] == 0:
        raise SpecError(f"metrics need at least one channel and one sample, got {x.shape}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise NonFiniteAudioError("reference or estimate holds NaN or infinite samples")
    lead = x.shape[:-2]
    c, t = x.shape[-2:]
    return x.reshape(-1, c, t), y.reshape(-1, c, t), lead


def _finish(values: NDArray[np.float64], lead: tuple[int, ...]) -> MetricValue:
    """One value per flattened item -> float (unbatched) or ndarray shaped ``lead``."""
    if lead == ():
        return float(values[0])
    return values.reshape(lead)


def _ratio_db(signal: NDArray[np.float64], noise: NDArray[np.float64]) -> NDArray[np.float64]:
    """``10 log10(signal / noise)`` of energies with the limits made explicit.

    ``noise == 0`` gives ``+inf`` (a perfect estimate, also when both are silent); otherwise
    ``signal == 0`` gives ``-inf`` (an estimate of pure error). No warnings, never NaN.
    """
    out = np.empty(np.broadcast(signal, noise).shape, dtype=np.float64)
    perfect = noise == 0
    nothing = (signal == 0) & ~perfect
    ok = ~perfect & ~nothing
    out[perfect] = np.inf
    out[nothing] = -np.inf
    out[ok] = 10.0 * np.log10(signal[ok] / noise[ok])
    return out


def _check_rate(sample_rate: int) -> int:
    if isinstance(sample_rate, bool) or int(sample_rate) != sample_rate or sample_rate <= 0:
        raise SpecError(f"sample_rate must be a positive integer in Hz, got {sample_rate!r}")
    return int(sample_rate)


def _check_min_hz(min_hz: float, sample_rate: int) -> float:
    if not 0.0 <= min_hz < sample_rate / 2.0:
        raise SpecError(
            f"min_hz must lie in [0, {sample_rate / 2:g}) Hz at {sample_rate} Hz, got {min_hz:g}"
        )
    return float(min_hz)


# --------------------------------------------------------------------------------------------
# time-domain metrics
# --------------------------------------------------------------------------------------------


def snr(reference: Any, estimate: Any) -> MetricValue:
    """Signal-to-noise ratio in dB, Sulun & Davies eq. 1 (Kuleshov eq. 2 on a whole signal).

    ``10 log10(sum x^2 / sum (x - x^)^2)`` with the sums over all channels and samples, i.e. a
    stereo signal is one vector (Sulun & Davies, "the signals are used in their stereo forms").
    Identical signals give ``+inf``; a silent reference with a non-silent estimate gives
    ``-inf`` (no signal, only error). Used by Sulun & Davies Table II, ARUNet and Lattner Table 2.
    """
    x, y, lead = _pair(reference, estimate)
    signal = np.sum(x * x, axis=(-2, -1))
    noise = np.sum((x - y) ** 2, axis=(-2, -1))
    return _finish(_ratio_db(signal, noise), lead)


def segmental_snr(reference: Any, estimate: Any, segment: int) -> MetricValue:
    """Kuleshov et al.'s SNR in dB: the mean over patches of each patch's :func:`snr`.

    The signal is cut into non-overlapping segments of ``segment`` samples (all channels of a
    segment form one vector); a trailing partial segment is dropped, as Kuleshov's patch
    extraction does. Segments whose reference is digital silence have no defined SNR and are left
    out of the mean (``nan`` when every segment is silent). A segment reproduced exactly
    contributes ``+inf``, so identical signals give ``+inf``. Used by Kuleshov Tables 2-3 (he
    trains and evaluates on 6000-8192-sample patches at 16 kHz).
    """
    if isinstance(segment, bool) or int(segment) != segment or segment <= 0:
        raise SpecError(f"segment must be a positive number of samples, got {segment!r}")
    segment = int(segment)
    x, y, lead = _pair(reference, estimate)
    n, c, t = x.shape
    count = t // segment
    if count == 0:
        raise SpecError(f"signal of {t} samples is shorter than one segment of {segment}")
    xs = x[..., : count * segment].reshape(n, c, count, segment)
    ys = y[..., : count * segment].reshape(n, c, count, segment)
    signal = np.sum(xs * xs, axis=(1, 3))  # [N, count]
    noise = np.sum((xs - ys) ** 2, axis=(1, 3))
    per_segment = _ratio_db(signal, noise)
    voiced = signal > 0
    values = np.full(n, np.nan)
    for i in range(n):
        if voiced[i].any():
            values[i] = np.mean(per_segment[i][voiced[i]])
    return _finish(values, lead)


def si_sdr(reference: Any, estimate: Any) -> MetricValue:
    """Scale-invariant signal-to-distortion ratio in dB (Le Roux et al., ICASSP 2019, eq. 4).

    ``alpha = <x^, x> / |x|^2``, ``10 log10(|alpha x|^2 / |alpha x - x^|^2)`` with all channels
    as one vector (one scale for the whole signal, as :func:`snr`) and no mean removal. Invariant
    to any non-zero gain of the estimate. ``+inf`` for an exact copy (a scaled copy stops at the
    float64 rounding floor, about 150 dB); ``-inf`` for a silent estimate or a silent reference
    with a non-silent estimate; ``+inf`` when both are silent.
    """
    x, y, lead = _pair(reference, estimate)
    energy = np.sum(x * x, axis=(-2, -1))
    dot = np.sum(x * y, axis=(-2, -1))
    alpha = np.divide(dot, energy, out=np.zeros_like(dot), where=energy > 0)
    target = alpha[:, None, None] * x
    target_energy = np.sum(target * target, axis=(-2, -1))
    noise_energy = np.sum((y - target) ** 2, axis=(-2, -1))
    values = _ratio_db(target_energy, noise_energy)
    # a silent estimate of a non-silent reference recovers nothing (alpha = 0 makes it 0 / 0)
    values[(np.sum(y * y, axis=(-2, -1)) == 0) & (energy > 0)] = -np.inf
    return _finish(values, lead)


def _highpass(x: NDArray[np.float64], sample_rate: int, min_hz: float) -> NDArray[np.float64]:
    """Zero every rFFT bin (of the whole signal, along T) below ``min_hz``."""
    t = x.shape[-1]
    spectrum = scipy.fft.rfft(x, axis=-1)
    freqs = np.fft.rfftfreq(t, d=1.0 / sample_rate)
    spectrum[..., freqs < min_hz] = 0.0
    return np.asarray(scipy.fft.irfft(spectrum, n=t, axis=-1), dtype=np.float64)


def snr_highband(reference: Any, estimate: Any, sample_rate: int, min_hz: float) -> MetricValue:
    """SNR in dB (as :func:`snr`) of the content at or above ``min_hz`` Hz.

    Both signals are high-passed ideally, by zeroing the bins below ``min_hz`` of the FFT of the
    whole signal, then compared as in :func:`snr`. Measures how well a model restores the band
    above a cutoff, waveform and phase included; ``-inf`` for an estimate with nothing there.
    """
    sr = _check_rate(sample_rate)
    f0 = _check_min_hz(min_hz, sr)
    x, y, lead = _pair(reference, estimate)
    xh, yh = _highpass(x, sr, f0), _highpass(y, sr, f0)
    signal = np.sum(xh * xh, axis=(-2, -1))
    noise = np.sum((xh - yh) ** 2, axis=(-2, -1))
    return _finish(_ratio_db(signal, noise), lead)


# --------------------------------------------------------------------------------------------
# spectral metrics
# --------------------------------------------------------------------------------------------


def _n_frames(t: int, n_fft: int, hop: int) -> int:
    """Frames of a centred STFT (``n_fft // 2`` zeros padded on both sides)."""
    return 1 + (t + 2 * (n_fft // 2) - n_fft) // hop


def _power_blocks(x: NDArray[np.float64], y: NDArray[np.float64], n_fft: int, hop: int,
                  ) -> Iterator[tuple[NDArray[np.float64], NDArray[np.float64]]]:
    """|STFT|^2 of ``x`` and ``y`` ``[N, C, T]`` in blocks of frames ``[N, C, frames, bins]``.

    Centred frames (``n_fft // 2`` zeros on both sides, librosa >= 0.10's ``center=True``),
    periodic Hann window of ``n_fft`` samples, no normalisation (|S| of a full-scale sine is
    about n_fft / 4). Blocks bound the memory of long songs; reductions sum over the blocks.
    """
    pad = n_fft // 2
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n_fft) / n_fft)
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad)))
    yp = np.pad(y, ((0, 0), (0, 0), (pad, pad)))
    n_frames = _n_frames(x.shape[-1], n_fft, hop)
    xv = np.lib.stride_tricks.sliding_window_view(xp, n_fft, axis=-1)[..., ::hop, :]
    yv = np.lib.stride_tricks.sliding_window_view(yp, n_fft, axis=-1)[..., ::hop, :]
    for start in range(0, n_frames, _BLOCK_FRAMES):
        stop = min(start + _BLOCK_FRAMES, n_frames)
        sx = scipy.fft.rfft(xv[..., start:stop, :] * window, axis=-1)
        sy = scipy.fft.rfft(yv[..., start:stop, :] * window, axis=-1)
        yield sx.real**2 + sx.imag**2, sy.real**2 + sy.imag**2


def _bins(n_fft: int, sample_rate: int, min_hz: float | None) -> NDArray[np.bool_]:
    """Mask of the rFFT bins at or above ``min_hz`` (all bins when ``None``)."""
    freqs = np.arange(n_fft // 2 + 1) * (sample_rate / n_fft)
    if min_hz is None:
        return np.ones(freqs.shape, dtype=bool)
    return freqs >= _check_min_hz(min_hz, sample_rate)


def _frame_rms_mean(reference: Any, estimate: Any, sample_rate: int, min_hz: float | None,
                    n_fft: int, hop: int,
                    log: Callable[[NDArray[np.float64]], NDArray[np.float64]]) -> MetricValue:
    """Mean over frames of the RMS over (kept) bins of ``log(P) - log(P^)``; mean over channels."""
    x, y, lead = _pair(reference, estimate)
    keep = _bins(n_fft, sample_rate, min_hz)
    total = np.zeros(x.shape[:2])
    for px, py in _power_blocks(x, y, n_fft, hop):
        d = log(px[..., keep]) - log(py[..., keep])
        total += np.sum(np.sqrt(np.mean(d * d, axis=-1)), axis=-1)
    per_channel = total / _n_frames(x.shape[-1], n_fft, hop)
    return _finish(per_channel.mean(axis=-1), lead)


def lsd_kuleshov(reference: Any, estimate: Any, sample_rate: int, *,
                 min_hz: float | None = None) -> MetricValue:
    """Log-spectral distance as Kuleshov et al.'s released code computes it (the numbers of
    their Tables 2-3), in natural-log units.

    ``X = ln(|STFT(x)|^2 + 1e-8)`` with n_fft 2048 / hop 512 (librosa defaults) at any sample
    rate; the RMS is taken over **time** for each frequency bin and then averaged over bins:
    ``mean_k sqrt(mean_l (X[l, k] - X^[l, k])^2)``. This is the transpose of eq. 3 as printed
    in the paper (which :func:`lsd_ssr` follows) and uses ln rather than log10. Their code also
    adds 1e-8 inside the square root and caps the result at 10; we do neither, so identical
    signals give exactly 0. Per channel, then mean over channels. ``sample_rate`` (Hz) places
    ``min_hz``: only bins at or above it are kept.
    """
    sr = _check_rate(sample_rate)
    x, y, lead = _pair(reference, estimate)
    keep = _bins(KULESHOV_N_FFT, sr, min_hz)
    total = np.zeros((*x.shape[:2], int(keep.sum())))
    for px, py in _power_blocks(x, y, KULESHOV_N_FFT, KULESHOV_HOP):
        d = np.log(px[..., keep] + EPS_POWER_KULESHOV) - np.log(py[..., keep] + EPS_POWER_KULESHOV)
        total += np.sum(d * d, axis=-2)
    frames = _n_frames(x.shape[-1], KULESHOV_N_FFT, KULESHOV_HOP)
    per_channel = np.sqrt(total / frames).mean(axis=-1)
    return _finish(per_channel.mean(axis=-1), lead)


def ssr_stft_size(sample_rate: int) -> tuple[int, int]:
    """(n_fft, hop) of ssr_eval at ``sample_rate`` Hz: ``int(2048 sr / 44100)``, ``sr // 100``."""
    sr = _check_rate(sample_rate)
    return SSR_N_FFT_AT_44K * sr // SSR_REFERENCE_RATE, sr // SSR_FRAMES_PER_SECOND


def lsd_ssr(reference: Any, estimate: Any, sample_rate: int, *,
            min_hz: float | None = None) -> MetricValue:
    """Log-spectral distance of ssr_eval (Liu et al.), used by the NVSR and AudioSR tables.

    Kuleshov eq. 3 as printed: ``X = log10(|STFT|^2 + 1e-12)``, RMS over frequency bins per
    frame, then mean over frames: ``mean_l sqrt(mean_k (X[l, k] - X^[l, k])^2)``. STFT with
    n_fft = int(2048 sr / 44100) (2048 at 44.1 kHz) and hop = sr / 100 (10 ms). ssr_eval writes
    the log as ``log10(P / (|S^| + 1e-12)^2 + 1e-12)``; flooring both spectra at 1e-12 instead
    gives the same value wherever the spectra are above the floor and exactly 0 for identical
    signals. ssr_eval scores the mono file; we score each channel and average. Only bins at or
    above ``min_hz`` (Hz) are kept when it is given.
    """
    sr = _check_rate(sample_rate)
    n_fft, hop = ssr_stft_size(sr)
    return _frame_rms_mean(reference, estimate, sr, min_hz, n_fft, hop,
                           lambda p: np.log10(p + EPS_POWER))


def lsd_db(reference: Any, estimate: Any, sample_rate: int, *,
           min_hz: float | None = None) -> MetricValue:
    """Log-spectral distance in dB, Lattner & Nistal eq. 5 (their Table 2).

    ``mean_l sqrt(mean_f (10 log10(P[l, f] / P^[l, f]))^2)`` with P the power spectrogram of
    their STFT (window 2048, hop 512); both spectra are floored at 1e-12 (the paper gives no
    epsilon). Equals 10 x :func:`lsd_ssr` when the STFT sizes coincide. Per channel, then mean
    over channels. Only bins at or above ``min_hz`` (Hz) are kept when it is given.
    """
    sr = _check_rate(sample_rate)
    return _frame_rms_mean(reference, estimate, sr, min_hz, LATTNER_N_FFT, LATTNER_HOP,
                           lambda p: 10.0 * np.log10(p + EPS_POWER))


def spectral_mse(reference: Any, estimate: Any, sample_rate: int | None = None, *,
                 min_hz: float | None = None) -> MetricValue:
    """Mean squared error of the square-rooted power spectra, Lattner & Nistal eq. 6.

    ``mean_l mean_f (sqrt(P[l, f]) - sqrt(P^[l, f]))^2``, i.e. the MSE of STFT magnitudes, with
    Lattner's STFT (Hann window 2048, hop 512, centred). The paper does not state the STFT
    scaling; ours is unnormalised (a full-scale sine peaks near |S| = 512), so values are in
    squared STFT-magnitude units and compare with Table 2 only up to that scale. Insensitive to
    the log blow-up of empty bands that inflates the LSD of MP3s (Lattner 3.4.3). Per channel,
    then mean over channels; ``min_hz`` (needs ``sample_rate`` in Hz) keeps the bins at or
    above it.
    """
    x, y, lead = _pair(reference, estimate)
    if min_hz is not None:
        if sample_rate is None:
            raise SpecError("spectral_mse: min_hz needs sample_rate")
        keep = _bins(LATTNER_N_FFT, _check_rate(sample_rate), min_hz)
    else:
        keep = np.ones(LATTNER_N_FFT // 2 + 1, dtype=bool)
    total = np.zeros(x.shape[:2])
    for px, py in _power_blocks(x, y, LATTNER_N_FFT, LATTNER_HOP):
        d = np.sqrt(px[..., keep]) - np.sqrt(py[..., keep])
        total += np.sum(d * d, axis=(-2, -1))
    frames = _n_frames(x.shape[-1], LATTNER_N_FFT, LATTNER_HOP)
    per_channel = total / (frames * int(keep.sum()))
    return _finish(per_channel.mean(axis=-1), lead)


# --------------------------------------------------------------------------------------------
# ViSQOL (optional extra)
# --------------------------------------------------------------------------------------------


def visqol_available() -> bool:
    """Whether the optional ``visqol-python`` package (module ``visqol``) is importable."""
    try:
        return hasattr(importlib.import_module("visqol"), "VisqolApi")
    except ImportError:
        return False


@functools.lru_cache(maxsize=1)
def _visqol_api() -> Any:
    try:
        module = importlib.import_module("visqol")
        api = module.VisqolApi()
    except (ImportError, AttributeError):
        raise MissingDependencyError(
            "ViSQOL needs the optional visqol-python package: pip install 'upband[visqol]'"
        ) from None
    api.create(mode="audio")
    return api


def visqol(reference: Any, estimate: Any, sample_rate: int, *,
           segment_seconds: float | None = VISQOL_SEGMENT_SECONDS) -> MetricValue:
    """ViSQOL v3 in audio mode: MOS-LQO from 1 (bad) to 5 (excellent); identical input ~ 4.73.

    Runs the pure-Python port ``visqol-python`` (optional extra ``upband[visqol]``, with numba
    for its patch search; it scores like Google's C++ v3 release) on the mono downmix (mean of
    the channels, as ViSQOL does for a multichannel file), resampled to 48 kHz with
    :func:`upband.audio.resample` when ``sample_rate`` (Hz) differs. ViSQOL aligns the signals
    itself and compares gammatone patches of about 0.5 s, so give it at least a second or two.

    ViSQOL's patch search grows faster than linearly with length (a 5-minute song took 2 minutes
    and 3.5 GB in one piece), so signals longer than ``segment_seconds`` are scored in
    consecutive segments of that length (a last piece under half a segment joins the one
    before) and the mean is returned; ``segment_seconds=None`` scores the whole signal at once.
    Segment scores are what upband's tables report for whole songs.

    Raises:
        MissingDependencyError: when ``visqol-python`` is not installed.
        SpecError: when ViSQOL refuses the pair (e.g. under about a second of audio).
    """
    sr = _check_rate(sample_rate)
    x, y, lead = _pair(reference, estimate)
    api = _visqol_api()
    xm, ym = x.mean(axis=1), y.mean(axis=1)  # [N, T]
    if sr != VISQOL_SAMPLE_RATE:
        xm = resample(xm, sr, VISQOL_SAMPLE_RATE).astype(np.float64)
        ym = resample(ym, sr, VISQOL_SAMPLE_RATE).astype(np.float64)
    t = xm.shape[-1]
    seg = t if segment_seconds is None else int(segment_seconds * VISQOL_SAMPLE_RATE)
    starts = list(range(0, max(t - seg // 2, 1), max(seg, 1)))
    bounds = [(a, b) for a, b in zip(starts, [*starts[1:], t], strict=True)]
    values = np.empty(x.shape[0])
    for i in range(x.shape[0]):
        scores = []
        for a, b in bounds:
            try:
                result = api.measure_from_arrays(xm[i, a:b], ym[i, a:b], VISQOL_SAMPLE_RATE)
            except ValueError as err:
                raise SpecError(f"ViSQOL cannot score this pair: {err}") from None
            scores.append(float(result.moslqo))
        values[i] = float(np.mean(scores))
    return _finish(values, lead)


# --------------------------------------------------------------------------------------------
# VGG distance (needs user-supplied VGGish weights)
# --------------------------------------------------------------------------------------------

#: Key names other releases use for the PCA parameters -> our state-dict keys.
_PCA_ALIASES = {
    "pca_eigen_vectors": "pproc._pca_matrix",
    "pproc.pca_matrix": "pproc._pca_matrix",
    "pca_means": "pproc._pca_means",
    "pproc.pca_means": "pproc._pca_means",
}


def _read_state(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of one weights file, never executing code from it."""
    import torch

    suffix = path.suffix.lower()
    try:
        if suffix == ".safetensors":
            from safetensors.torch import load_file

            return dict(load_file(str(path), device="cpu"))
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as data:
                return {k: torch.from_numpy(np.array(data[k])) for k in data.files}
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "unsupported global" in str(err).lower():
            raise ModelError(
                f"{path}: holds Python objects that loading would have to execute; save a "
                "plain state dict of tensors (.safetensors preferred)"
            ) from None
        raise ModelError(f"{path}: cannot read VGGish weights: not a torch state dict") from None
    except Exception as err:  # corrupt or truncated file: any reader error
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelError(f"{path}: cannot read VGGish weights: {first}") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise ModelError(f"{path}: is not a state dict of named tensors")
    return dict(state)


def load_vggish(weights: PathLike | Sequence[PathLike], *, final_relu: bool = True,
                device: str | torch.device = "cpu") -> VGGish:
    """Build :class:`~upband.models.vggish.VGGish` from weights files, strictly.

    Args:
        weights: one file or several whose tensors are merged (e.g. torchvggish's network file
            plus its PCA file). ``.safetensors`` (preferred), ``.npz`` (no pickles) or a torch
            ``.pth``/``.pt`` state dict read with ``weights_only=True`` (never full unpickling).
            Keys must be exactly the torchvggish ones (``features.N.*``, ``embeddings.N.*``,
            ``pproc._pca_matrix``, ``pproc._pca_means``); the PCA names of the TF / torchvggish
            PCA files (``pca_eigen_vectors``, ``pca_means``) are accepted too. Floating tensors
            are cast to float32.
        final_relu: see :class:`~upband.models.vggish.VGGish`.
        device: where the returned model (in eval mode) lives.

    Raises:
        ModelError: missing or unreadable file, missing/unexpected keys or wrong shapes.
    """
    import torch

    from upband.models.vggish import VGGish

    paths = [Path(weights)] if isinstance(weights, (str, os.PathLike)) else [
        Path(p) for p in weights
    ]
    if not paths:
        raise ModelError(f"no VGGish weights file given: {_VGGISH_HELP}")
    merged: dict[str, torch.Tensor] = {}
    for path in paths:
        if not path.is_file():
            raise ModelError(f"{path}: VGGish weights file not found ({_VGGISH_HELP})")
        for key, value in _read_state(path).items():
            key = _PCA_ALIASES.get(key, key)
            if key in merged:
                raise ModelError(f"{path}: key {key!r} is given by more than one weights file")
            merged[key] = value
    with torch.device("meta"):  # no point in initialising 72 M weights about to be replaced
        model = VGGish(final_relu=final_relu)
    expected = model.state_dict()
    if "pproc._pca_means" in merged and merged["pproc._pca_means"].dim() == 1:
        merged["pproc._pca_means"] = merged["pproc._pca_means"].reshape(-1, 1)
    missing = sorted(set(expected) - set(merged))
    unexpected = sorted(set(merged) - set(expected))
    if missing or unexpected:
        hint = " (the PCA parameters come in a separate file: pass both)" if any(
            k.startswith("pproc.") for k in missing) else ""
        raise ModelError(
            f"VGGish weights do not match the torchvggish layout: missing {missing[:4]}"
            f"{'...' if len(missing) > 4 else ''}, unexpected {unexpected[:4]}"
            f"{'...' if len(unexpected) > 4 else ''}{hint}"
        )
    for key, ref in expected.items():
        got = merged[key]
        if tuple(got.shape) != tuple(ref.shape):
            raise ModelError(
                f"VGGish weight {key!r} has shape {tuple(got.shape)}, expected {tuple(ref.shape)}"
            )
        if not got.is_floating_point():
            raise ModelError(f"VGGish weight {key!r} is not floating point ({got.dtype})")
        merged[key] = got.to(torch.float32)
    model.load_state_dict(merged, strict=True, assign=True)
    return model.to(device).eval()


def vgg_distance(reference: Any, estimate: Any, sample_rate: int,
                 weights: PathLike | Sequence[PathLike] | VGGish | None = None, *,
                 full_band: bool = False, device: str | torch.device = "cpu") -> MetricValue:
    """VGG distance, Sulun & Davies eq. 2: ``mean_i |y_i - y^_i|`` of post-processed VGGish
    embeddings (integers 0..255), over every example and embedding dimension.

    Both signals are downmixed to mono (mean of the channels, as the reference implementation
    does). With ``full_band=False`` (the published VGGish) they are resampled to 16 kHz and the
    mel bands end at 7.5 kHz, so the distance is **blind above 7.5 kHz** -- it cannot see
    restored highs. ``full_band=True`` is Sulun & Davies' variant: the front end runs at the
    input ``sample_rate`` (they used 44.1 kHz) with the top mel edge at the Nyquist frequency
    (22 050 Hz), on weights trained at 16 kHz. Each signal needs at least 0.975 s.

    Args:
        weights: a model from :func:`load_vggish` (load once when scoring many files) or the
            file(s) to load it from. upband never downloads weights.
        device: where the network runs when ``weights`` are files.

    Raises:
        ModelError: when no weights are given or they cannot be loaded.
    """
    import torch

    from upband.models.vggish import (
        EMBEDDING_SIZE,
        MEL_MAX_HZ,
        VGGISH_SAMPLE_RATE,
        VGGish,
        log_mel_examples,
    )

    sr = _check_rate(sample_rate)
    x, y, lead = _pair(reference, estimate)
    if weights is None:
        raise ModelError(f"VGG distance needs VGGish weights (weights=PATH): {_VGGISH_HELP}")
    model = weights if isinstance(weights, VGGish) else load_vggish(weights, device=device)
    model_device = next(model.parameters()).device
    xm, ym = x.mean(axis=1), y.mean(axis=1)  # [N, T]
    if full_band:
        front_rate, mel_max = sr, sr / 2.0
    else:
        front_rate, mel_max = VGGISH_SAMPLE_RATE, MEL_MAX_HZ
        if sr != VGGISH_SAMPLE_RATE:
            xm = resample(xm, sr, VGGISH_SAMPLE_RATE)
            ym = resample(ym, sr, VGGISH_SAMPLE_RATE)
    values = np.empty(x.shape[0])
    with torch.inference_mode():
        for i in range(x.shape[0]):
            ex = log_mel_examples(torch.from_numpy(np.asarray(xm[i], np.float64)), front_rate,
                                  mel_max_hz=mel_max)
            ey = log_mel_examples(torch.from_numpy(np.asarray(ym[i], np.float64)), front_rate,
                                  mel_max_hz=mel_max)
            total = 0.0
            for start in range(0, ex.shape[0], _EMBED_BATCH):  # bounds activation memory
                stop = start + _EMBED_BATCH
                both = model.embed(torch.cat([ex[start:stop], ey[start:stop]]).to(model_device))
                half = both.shape[0] // 2
                total += float((both[:half] - both[half:]).abs().sum())
            values[i] = total / (ex.shape[0] * EMBEDDING_SIZE)
    return _finish(values, lead)


# --------------------------------------------------------------------------------------------
# everything at once (the `upband metrics` command)
# --------------------------------------------------------------------------------------------


def compute_all(reference: Any, estimate: Any, sample_rate: int,
                cutoff_hz: float | None = None, *, with_visqol: bool = True,
                vggish: VGGish | None = None) -> dict[str, float]:
    """Every metric of one pair of ``[C, T]`` (or ``[T]``) signals, keyed by name.

    Keys: ``snr``, ``segmental_snr`` (segments of :data:`SEGMENT_SAMPLES`, or the whole signal
    when it is shorter), ``si_sdr``, ``lsd_kuleshov``, ``lsd_ssr``, ``lsd_db``,
    ``spectral_mse`` (all at full band); with ``cutoff_hz`` (Hz) also
    ``snr_high``, ``lsd_kuleshov_high``, ``lsd_ssr_high``, ``lsd_db_high`` (bins at or above
    the cutoff); ``visqol`` when ``visqol-python`` is installed and ``with_visqol``;
    ``vgg_distance`` (published 16 kHz front end) when a loaded ``vggish`` model is given.
    Signals must already share rate and length.

    Raises:
        SpecError: mismatched shapes, or batched input (use the single metrics for batches).
    """
    x = np.asarray(reference)
    y = np.asarray(estimate)
    if x.shape != y.shape:
        raise SpecError(f"reference and estimate shapes differ: {x.shape} vs {y.shape}")
    if x.ndim not in (1, 2):
        raise SpecError(f"compute_all takes one signal [C, T] or [T], got shape {x.shape}")
    sr = _check_rate(sample_rate)
    out: dict[str, float] = {
        "snr": float(snr(x, y)),
        "segmental_snr": float(segmental_snr(x, y, min(SEGMENT_SAMPLES, x.shape[-1]))),
        "si_sdr": float(si_sdr(x, y)),
        "lsd_kuleshov": float(lsd_kuleshov(x, y, sr)),
        "lsd_ssr": float(lsd_ssr(x, y, sr)),
        "lsd_db": float(lsd_db(x, y, sr)),
        "spectral_mse": float(spectral_mse(x, y, sr)),
    }
    if cutoff_hz is not None:
        out["snr_high"] = float(snr_highband(x, y, sr, cutoff_hz))
        out["lsd_kuleshov_high"] = float(lsd_kuleshov(x, y, sr, min_hz=cutoff_hz))
        out["lsd_ssr_high"] = float(lsd_ssr(x, y, sr, min_hz=cutoff_hz))
        out["lsd_db_high"] = float(lsd_db(x, y, sr, min_hz=cutoff_hz))
    if with_visqol and visqol_available():
        out["visqol"] = float(visqol(x, y, sr))
    if vggish is not None:
        out["vgg_distance"] = float(vgg_distance(x, y, sr, vggish))
    return out


def align(reference: Any, estimate: Any, sample_rate: int, *, max_lag_s: float = 1.0
          ) -> tuple[NDArray[np.float32], NDArray[np.float32], int]:
    """Line ``estimate`` up with ``reference`` (both ``[C, T]``, lengths may differ).

    The integer lag (estimate relative to reference, in samples, ``|lag| <= max_lag_s``) is the
    peak of the FFT cross-correlation of the mono downmixes; both signals are then cropped to
    their overlap. Use for files whose codec delay was not removed (e.g. an MP3 decoded without
    its gapless header). Returns ``(reference, estimate, lag)``.
    """
    x = np.asarray(reference, dtype=np.float32)
    y = np.asarray(estimate, dtype=np.float32)
    if x.ndim != 2 or y.ndim != 2 or x.shape[0] != y.shape[0]:
        raise SpecError(f"align needs [C, T] signals with equal channels, got {x.shape} and "
                        f"{y.shape}")
    max_lag = int(max_lag_s * _check_rate(sample_rate))
    a, b = x.mean(axis=0).astype(np.float64), y.mean(axis=0).astype(np.float64)
    n = scipy.fft.next_fast_len(len(a) + len(b) - 1)
    corr = scipy.fft.irfft(scipy.fft.rfft(b, n) * np.conj(scipy.fft.rfft(a, n)), n)
    lags = np.concatenate([np.arange(0, max_lag + 1), np.arange(-max_lag, 0)])
    lag = int(lags[np.argmax(np.abs(corr[lags]))])
    if lag >= 0:
        y = y[:, lag:]
    else:
        x = x[:, -lag:]
    t = min(x.shape[1], y.shape[1])
    if t == 0:
        raise SpecError("the signals do not overlap after alignment")
    return x[:, :t], y[:, :t], lag
