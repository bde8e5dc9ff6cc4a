"""Objective metrics of the bandwidth-extension papers, each under its own name.

Every metric is a pure function of ``reference`` and ``estimate`` shaped ``[..., C, T]`` (a bare
``[T]`` is one channel) that returns one value per leading index: a ``float`` for a single signal
(``[T]`` or ``[C, T]``), an ``ndarray`` shaped like the leading dimensions otherwise. Both inputs
must have the same shape (aligning rates, lengths and codec delay is the caller's job); they are
never modified. Computation is in float64.

Which definition belongs to which paper (docs/readings/metrics.md sets out the three LSDs
and what each paper's table measures):

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

The package is split by domain; every name above is importable from ``upband.metrics`` itself:

* :mod:`upband.metrics.time`: :func:`snr`, :func:`segmental_snr`, :func:`si_sdr`,
  :func:`snr_highband`;
* :mod:`upband.metrics.spectral`: :func:`lsd_kuleshov`, :func:`lsd_ssr`, :func:`lsd_db`,
  :func:`spectral_mse` and their STFT constants;
* :mod:`upband.metrics.perceptual`: :func:`visqol` (optional extra) and :func:`vgg_distance`
  with :func:`load_vggish` (user-supplied weights; torch is imported only there);
* :mod:`upband.metrics.suite`: :func:`compute_all` (every metric of one pair) and :func:`align`;
* :mod:`upband.metrics.pairing`: an estimate matched to its reference (rate, channels, delay,
  length) before scoring, what ``upband metrics`` does to two files.
"""

from __future__ import annotations

from upband.metrics._shapes import MetricValue, PathLike
from upband.metrics.perceptual import (
    VISQOL_SAMPLE_RATE,
    VISQOL_SEGMENT_SECONDS,
    load_vggish,
    vgg_distance,
    visqol,
    visqol_available,
)
from upband.metrics.spectral import (
    EPS_POWER,
    EPS_POWER_KULESHOV,
    KULESHOV_HOP,
    KULESHOV_N_FFT,
    LATTNER_HOP,
    LATTNER_N_FFT,
    SSR_FRAMES_PER_SECOND,
    SSR_N_FFT_AT_44K,
    SSR_REFERENCE_RATE,
    lsd_db,
    lsd_kuleshov,
    lsd_ssr,
    spectral_mse,
    ssr_stft_size,
)
from upband.metrics.suite import SEGMENT_SAMPLES, align, compute_all
from upband.metrics.time import segmental_snr, si_sdr, snr, snr_highband

__all__ = [
    "EPS_POWER",
    "EPS_POWER_KULESHOV",
    "KULESHOV_HOP",
    "KULESHOV_N_FFT",
    "LATTNER_HOP",
    "LATTNER_N_FFT",
    "SEGMENT_SAMPLES",
    "SSR_FRAMES_PER_SECOND",
    "SSR_N_FFT_AT_44K",
    "SSR_REFERENCE_RATE",
    "VISQOL_SAMPLE_RATE",
    "VISQOL_SEGMENT_SECONDS",
    "MetricValue",
    "PathLike",
    "align",
    "compute_all",
    "load_vggish",
    "lsd_db",
    "lsd_kuleshov",
    "lsd_ssr",
    "segmental_snr",
    "si_sdr",
    "snr",
    "snr_highband",
    "spectral_mse",
    "ssr_stft_size",
    "vgg_distance",
    "visqol",
    "visqol_available",
]
