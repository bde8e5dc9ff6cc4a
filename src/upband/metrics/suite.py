"""Every metric of one pair at once (the ``upband metrics`` command), and lining a pair up."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.fft
from numpy.typing import NDArray

from upband.errors import SpecError
from upband.metrics import perceptual
from upband.metrics._shapes import check_rate
from upband.metrics.perceptual import vgg_distance, visqol
from upband.metrics.spectral import lsd_db, lsd_kuleshov, lsd_ssr, spectral_mse
from upband.metrics.time import segmental_snr, si_sdr, snr, snr_highband

if TYPE_CHECKING:  # models.vggish imports torch, which `import upband.metrics` avoids
    from upband.models.vggish import VGGish

#: Segment length (samples) of :func:`compute_all`'s segmental SNR: Kuleshov's released patch size.
SEGMENT_SAMPLES = 8192


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
    sr = check_rate(sample_rate)
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
    if with_visqol and perceptual.visqol_available():  # looked up here: tests stub it
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
    max_lag = int(max_lag_s * check_rate(sample_rate))
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
