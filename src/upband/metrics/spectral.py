"""Spectral metrics: the three log-spectral distances and the spectral MSE.

Three papers' LSDs differ in log base, the axis of the RMS and the STFT (docs/readings/metrics.md
sets them side by side): :func:`lsd_kuleshov` (Kuleshov et al.'s released code), :func:`lsd_ssr`
(ssr_eval, Kuleshov eq. 3 as printed) and :func:`lsd_db` (Lattner & Nistal eq. 5);
:func:`spectral_mse` is Lattner & Nistal eq. 6. Each is computed per channel and then averaged
over channels; ``min_hz`` keeps only the STFT bins at or above that frequency (the high-band
variants).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import scipy.fft
from numpy.typing import NDArray

from upband.errors import SpecError
from upband.metrics._shapes import MetricValue, as_value, check_min_hz, check_pair, check_rate

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

#: STFT frames processed at once by the spectral metrics (bounds memory on long songs).
_BLOCK_FRAMES = 512


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
    return freqs >= check_min_hz(min_hz, sample_rate)


def _frame_rms_mean(reference: Any, estimate: Any, sample_rate: int, min_hz: float | None,
                    n_fft: int, hop: int,
                    log: Callable[[NDArray[np.float64]], NDArray[np.float64]]) -> MetricValue:
    """Mean over frames of the RMS over (kept) bins of ``log(P) - log(P^)``; mean over channels."""
    x, y, lead = check_pair(reference, estimate)
    keep = _bins(n_fft, sample_rate, min_hz)
    total = np.zeros(x.shape[:2])
    for px, py in _power_blocks(x, y, n_fft, hop):
        d = log(px[..., keep]) - log(py[..., keep])
        total += np.sum(np.sqrt(np.mean(d * d, axis=-1)), axis=-1)
    per_channel = total / _n_frames(x.shape[-1], n_fft, hop)
    return as_value(per_channel.mean(axis=-1), lead)


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
    sr = check_rate(sample_rate)
    x, y, lead = check_pair(reference, estimate)
    keep = _bins(KULESHOV_N_FFT, sr, min_hz)
    total = np.zeros((*x.shape[:2], int(keep.sum())))
    for px, py in _power_blocks(x, y, KULESHOV_N_FFT, KULESHOV_HOP):
        d = np.log(px[..., keep] + EPS_POWER_KULESHOV) - np.log(py[..., keep] + EPS_POWER_KULESHOV)
        total += np.sum(d * d, axis=-2)
    frames = _n_frames(x.shape[-1], KULESHOV_N_FFT, KULESHOV_HOP)
    per_channel = np.sqrt(total / frames).mean(axis=-1)
    return as_value(per_channel.mean(axis=-1), lead)


def ssr_stft_size(sample_rate: int) -> tuple[int, int]:
    """(n_fft, hop) of ssr_eval at ``sample_rate`` Hz: ``int(2048 sr / 44100)``, ``sr // 100``."""
    sr = check_rate(sample_rate)
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
    sr = check_rate(sample_rate)
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
    sr = check_rate(sample_rate)
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
    x, y, lead = check_pair(reference, estimate)
    if min_hz is not None:
        if sample_rate is None:
            raise SpecError("spectral_mse: min_hz needs sample_rate")
        keep = _bins(LATTNER_N_FFT, check_rate(sample_rate), min_hz)
    else:
        keep = np.ones(LATTNER_N_FFT // 2 + 1, dtype=bool)
    total = np.zeros(x.shape[:2])
    for px, py in _power_blocks(x, y, LATTNER_N_FFT, LATTNER_HOP):
        d = np.sqrt(px[..., keep]) - np.sqrt(py[..., keep])
        total += np.sum(d * d, axis=(-2, -1))
    frames = _n_frames(x.shape[-1], LATTNER_N_FFT, LATTNER_HOP)
    per_channel = total / (frames * int(keep.sum()))
    return as_value(per_channel.mean(axis=-1), lead)
