"""Training losses of the papers, each ``loss(estimate, target) -> scalar Tensor``.

``estimate`` and ``target`` are ``Tensor[B, C, T]`` float waveforms at the model's rate; every
loss is computed in float32 (inputs in bf16 are upcast) and is exactly 0 for identical inputs.
Channels are treated as independent signals where a transform is involved (STFT, decimation).

=========================  =====================================================  ===========
name                       definition                                             paper
=========================  =====================================================  ===========
:func:`mse_loss`           mean (y - y^)^2 over batch, channels and samples       Sulun eq. 1
                                                                                  context,
                                                                                  ARUNet eq. 5
:func:`rmse_loss`          sqrt(mean (y - y^)^2) per patch, mean over patches     Kuleshov
                                                                                  eq. 1 (code)
:func:`log_mse_loss`       10 log10(1 + error / floor) per patch, the floor       upband
                           60 dB below the patch: 60 dB minus its SNR; mean       (ΔSNR)
:class:`EnvelopeLoss`      mean |dB difference| of band energies (1/6 octave,     upband
                           every 512 samples): the level of a band in time        (issue 13)
:class:`MultiResolution    mean over resolutions of spectral convergence +        TD-PR eq. 2
STFTLoss`                  mean |log |Y| - log |Y^||                              (auraloss)
:class:`MultiResolution    mean over rates 1/f of mean |D_f y - D_f y^|           TD-PR eqs.
WaveLoss`                                                                         3-4
:class:`TimeDomainLoss`    per frame: L1 of mean energy, of mean, of sample       TFGAN
                           differences, over 4 frame lengths                      (time loss)
:func:`profile_loss`       ‖z_i − z_j‖ / distance of two draws' frequency or      Lattner &
                           rhythm profiles (the GAN task's, not a regression      Nistal
                           term)                                                  eq. 3
=========================  =====================================================  ===========

:func:`build_loss` turns a :class:`~upband.train.config.LossConfig` into a
:class:`TrainingLoss`, the weighted sum of these terms.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from upband.models.signed_sqrt import magnitude
from upband.train.config import LossConfig

__all__ = [
    "EnvelopeLoss",
    "MultiResolutionSTFTLoss",
    "MultiResolutionWaveLoss",
    "TimeDomainLoss",
    "TrainingLoss",
    "build_loss",
    "envelope_distance",
    "log_mse_loss",
    "mse_loss",
    "octave_bands",
    "profile_loss",
    "rmse_loss",
]

#: Floor on |STFT|^2 before the square root and the log (auraloss's value): magnitudes below
#: 1e-4 (about -80 dB below a full-scale sine in a 2048-point Hann frame) count as equal.
STFT_POWER_FLOOR = 1e-8
#: Half-length of the anti-aliasing FIR of the wave loss, in output samples (taps = 16 f + 1).
WAVE_FIR_HALF_WIDTH = 8
#: :func:`log_mse_loss`'s floor, relative to each patch's energy: errors 60 dB below the
#: target count as none, so a silent or already perfect patch cannot dominate the mean.
LOG_MSE_FLOOR = 1e-6


def _check(estimate: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    if estimate.shape != target.shape:
        raise ValueError(f"estimate {tuple(estimate.shape)} and target {tuple(target.shape)} "
                         "must have the same shape")
    if estimate.dim() != 3:
        raise ValueError(f"expected [batch, channels, time] tensors, got {tuple(estimate.shape)}")
    return estimate.float(), target.float()


def mse_loss(estimate: Tensor, target: Tensor) -> Tensor:
    """Mean squared error over batch, channels and samples (Sulun & Davies, ARUNet eq. 5)."""
    estimate, target = _check(estimate, target)
    return F.mse_loss(estimate, target)


def rmse_loss(estimate: Tensor, target: Tensor) -> Tensor:
    """Kuleshov et al.'s objective: root mean squared error of each patch (over channels and
    samples), then the mean over the batch. A patch with zero error contributes exactly 0 and
    a zero gradient (no NaN from the square root at 0)."""
    estimate, target = _check(estimate, target)
    mse = (estimate - target).pow(2).mean(dim=(1, 2))
    positive = mse > 0
    rmse = torch.sqrt(torch.where(positive, mse, torch.ones_like(mse))) * positive
    return rmse.mean()


def log_mse_loss(estimate: Tensor, target: Tensor) -> Tensor:
    """Mean over patches of ``10 log10(1 + mse / floor)``, where ``mse`` is the patch's mean
    squared error and ``floor`` is :data:`LOG_MSE_FLOOR` x its mean square target (plus 1e-12
    for silence): the error in dB over a floor 60 dB below the patch, i.e. 60 dB minus the
    patch's SNR wherever that is well below 60. A degraded input's own error is a constant of
    the patch, so lowering this by 1 raises the mean SNR gain by 1 dB -- the metric the product
    is held to, file by file -- and a quiet patch weighs as much as a loud one (plain MSE is
    ruled by the loud)."""
    estimate, target = _check(estimate, target)
    mse = (estimate - target).pow(2).mean(dim=(1, 2))
    floor = LOG_MSE_FLOOR * target.pow(2).mean(dim=(1, 2)) + 1e-12
    return (10.0 * torch.log10(1.0 + mse / floor)).mean()


class EnvelopeLoss(nn.Module):
    """The band's level in time, not its fine structure: with ``E`` the power of the bins of a
    ``n_fft`` STFT (hop ``n_fft / 4``) summed in bands ``per_octave`` to the octave (from bin
    ``first_bin`` to Nyquist; the lowest bands get at least one bin each), the mean over
    signals, bands and frames of ``|10 log10(E^ + f) - 10 log10(E + f)|``, where the floor
    ``f`` lies ``floor_db`` under the signal's mean band energy (a band that is silent in the
    target and the estimate costs nothing).

    What it is for: a listener (and ViSQOL) hears the energy of a restored band frame by frame
    far more than its phase, and MSE rewards that energy only where it can also predict the
    waveform -- elsewhere its optimum is silence. Below a model's cutoff the estimate is the
    input, so only the band it restores is steered. Beside :func:`log_mse_loss`, which charges
    every added uncorrelated watt against the patch's own error, the two settle per patch: a
    band at its level where the input is already noisy (a codec), restraint where it is clean.
    """

    def __init__(self, n_fft: int = 2048, per_octave: int = 6, first_bin: int = 16,
                 floor_db: float = 60.0) -> None:
        super().__init__()
        self.n_fft, self.floor_db = n_fft, floor_db
        self.bands: Tensor
        self.window: Tensor
        self.register_buffer("bands", octave_bands(n_fft // 2 + 1, per_octave, first_bin),
                             persistent=False)
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    def energies(self, x: Tensor) -> Tensor:
        """Band energies ``[B * C, bands, frames]`` of ``x`` ``[B, C, T]``."""
        flat = x.reshape(-1, x.shape[-1])
        pad_mode = "reflect" if flat.shape[-1] > self.n_fft // 2 else "constant"
        spec = torch.stft(flat, self.n_fft, hop_length=self.n_fft // 4, window=self.window,
                          center=True, pad_mode=pad_mode, return_complex=True)
        return torch.einsum("kf,nft->nkt", self.bands, spec.real.square() + spec.imag.square())

    def forward(self, estimate: Tensor, target: Tensor) -> Tensor:
        estimate, target = _check(estimate, target)
        return envelope_distance(self.energies(estimate), self.energies(target), self.floor_db)


def octave_bands(bins: int, per_octave: int = 6, first_bin: int = 16) -> Tensor:
    """``[bands, bins]`` 0/1 matrix summing STFT bins ``first_bin`` .. ``bins - 1`` into bands
    ``per_octave`` to the octave (the lowest get at least one bin each)."""
    octaves = math.log2((bins - 1) / first_bin)
    edges = first_bin * 2 ** (torch.arange(round(octaves * per_octave) + 1) / per_octave)
    edges = torch.unique(edges.round().long().clamp(max=bins))
    bands = torch.zeros(len(edges) - 1, bins)
    for i, (lo, hi) in enumerate(zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True)):
        bands[i, lo:hi] = 1.0
    return bands


def envelope_distance(estimate: Tensor, target: Tensor, floor_db: float = 60.0) -> Tensor:
    """:class:`EnvelopeLoss` on band energies ``[N, bands, frames]``: the mean of ``|10
    log10(E^ + f) - 10 log10(E + f)|`` with ``f`` ``floor_db`` under each signal's mean band
    energy in the target (plus 1e-12)."""
    floor = 10 ** (-floor_db / 10) * target.mean(dim=(1, 2), keepdim=True) + 1e-12
    return (10.0 * (torch.log10(estimate + floor) - torch.log10(target + floor))).abs().mean()


class MultiResolutionSTFTLoss(nn.Module):
    """Multi-resolution STFT loss (TD-PR eq. 2, after Yamamoto et al. / auraloss).

    For each resolution ``m`` (FFT size, hop, Hann window length), with ``|Y|`` the STFT
    magnitude of all ``B x C`` signals floored at ``sqrt(STFT_POWER_FLOOR)``::

        L_m = || |Y| - |Y^| ||_F / || |Y| ||_F  +  mean |log |Y| - log |Y^||

    (spectral convergence over the whole batch, plus the L1 distance of log magnitudes), and
    the loss is the mean of ``L_m`` over resolutions. For ``y^ = a y`` (a > 0) it equals
    ``|1 - a| + |ln a|`` up to the floor.
    """

    def __init__(self, ffts: Sequence[int] = (512, 1024, 2048),
                 hops: Sequence[int] = (256, 512, 1024),
                 windows: Sequence[int] = (512, 1024, 2048)) -> None:
        super().__init__()
        if not len(ffts) == len(hops) == len(windows) > 0:
            raise ValueError("ffts, hops and windows must be non-empty and of equal length")
        self.resolutions = tuple(zip(map(int, ffts), map(int, hops), map(int, windows),
                                     strict=True))
        for i, (_, _, win) in enumerate(self.resolutions):
            self.register_buffer(f"window{i}", torch.hann_window(win), persistent=False)

    def _magnitude(self, x: Tensor, i: int) -> Tensor:
        n_fft, hop, win = self.resolutions[i]
        window: Tensor = getattr(self, f"window{i}")
        pad_mode = "reflect" if x.shape[-1] > n_fft // 2 else "constant"
        spec = torch.stft(x, n_fft, hop_length=hop, win_length=win, window=window,
                          center=True, pad_mode=pad_mode, return_complex=True)
        power = spec.real.square() + spec.imag.square()
        return power.clamp_min(STFT_POWER_FLOOR).sqrt()

    def forward(self, estimate: Tensor, target: Tensor) -> Tensor:
        estimate, target = _check(estimate, target)
        x = estimate.reshape(-1, estimate.shape[-1])
        y = target.reshape(-1, target.shape[-1])
        total = x.new_zeros(())
        for i in range(len(self.resolutions)):
            mx, my = self._magnitude(x, i), self._magnitude(y, i)
            convergence = torch.linalg.vector_norm(my - mx) / torch.linalg.vector_norm(my)
            log_distance = (my.log() - mx.log()).abs().mean()
            total = total + convergence + log_distance
        return total / len(self.resolutions)


def _lowpass_taps(factor: int) -> Tensor:
    """Hann-windowed sinc low-pass at the Nyquist frequency of ``rate / factor``, unit DC gain,
    ``16 factor + 1`` taps: flat to 0.01 dB up to 0.8 x the new Nyquist frequency, -6 dB at it,
    below -44 dB from 1.25 x and below -62 dB from 1.5 x (measured for factors 2 and 4)."""
    half = WAVE_FIR_HALF_WIDTH * factor
    n = torch.arange(-half, half + 1, dtype=torch.float64)
    cutoff = 0.5 / factor  # cycles per input sample
    taps = 2 * cutoff * torch.sinc(2 * cutoff * n)
    taps = taps * (0.5 + 0.5 * torch.cos(math.pi * n / (half + 1)))
    return (taps / taps.sum()).float()


class MultiResolutionWaveLoss(nn.Module):
    """Multi-resolution wave loss (TD-PR eqs. 3-4): the mean over ``factors`` of the mean
    absolute error between ``y`` and ``y^`` both decimated by ``f`` (f = 1: the signals).

    TD-PR does not say how it decimates. ``decimation="fir"`` (default) low-passes with a
    Hann-windowed sinc at the new Nyquist frequency (unit DC gain, edges padded by repetition)
    and keeps every ``f``-th sample, so the ``1/f`` terms see only the band below
    ``rate / 2f``; ``"avgpool"`` averages blocks of ``f`` samples (cheaper; its -13 dB
    sidelobes fold high-band errors into the low-rate terms). Both give ``|c|`` for a
    constant offset ``y^ = y + c``.
    """

    def __init__(self, factors: Sequence[int] = (1, 2, 4), decimation: str = "fir") -> None:
        super().__init__()
        if not factors or any(int(f) < 1 for f in factors):
            raise ValueError(f"factors must be integers >= 1, got {list(factors)}")
        if decimation not in ("fir", "avgpool"):
            raise ValueError(f"decimation must be 'fir' or 'avgpool', got {decimation!r}")
        self.factors = tuple(int(f) for f in factors)
        self.decimation = decimation
        for f in self.factors:
            if f > 1 and decimation == "fir":
                self.register_buffer(f"taps{f}", _lowpass_taps(f).view(1, 1, -1),
                                     persistent=False)

    def decimate(self, x: Tensor, factor: int) -> Tensor:
        """``x: [N, 1, T]`` decimated by ``factor``."""
        if factor == 1:
            return x
        if self.decimation == "avgpool":
            return F.avg_pool1d(x, factor, factor)
        taps: Tensor = getattr(self, f"taps{factor}")
        half = (taps.shape[-1] - 1) // 2
        return F.conv1d(F.pad(x, (half, half), mode="replicate"), taps, stride=factor)

    def forward(self, estimate: Tensor, target: Tensor) -> Tensor:
        estimate, target = _check(estimate, target)
        x = estimate.reshape(-1, 1, estimate.shape[-1])
        y = target.reshape(-1, 1, target.shape[-1])
        total = x.new_zeros(())
        for f in self.factors:
            total = total + (self.decimate(x, f) - self.decimate(y, f)).abs().mean()
        return total / len(self.factors)


class _Function(nn.Module):
    def __init__(self, fn: str) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, estimate: Tensor, target: Tensor) -> Tensor:
        return {"mse": mse_loss, "rmse": rmse_loss, "logmse": log_mse_loss}[self.fn](
            estimate, target)


class TrainingLoss(nn.Module):
    """Weighted sum of named loss terms: ``forward(estimate, target) -> (total, parts)`` where
    ``parts`` maps each term's name to its unweighted value (detached)."""

    def __init__(self, terms: Mapping[str, tuple[float, nn.Module]]) -> None:
        super().__init__()
        if not terms:
            raise ValueError("a training loss needs at least one term")
        self.weights = {name: float(w) for name, (w, _) in terms.items()}
        self.terms = nn.ModuleDict({name: module for name, (_, module) in terms.items()})

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.weights)

    def forward(self, estimate: Tensor, target: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        total = estimate.new_zeros((), dtype=torch.float32)
        parts = {}
        for name, term in self.terms.items():
            value = term(estimate, target)
            parts[name] = value.detach()
            total = total + self.weights[name] * value
        return total, parts

    def extra_repr(self) -> str:
        return " + ".join(f"{w:g} x {n}" for n, w in self.weights.items())


def build_loss(config: LossConfig) -> TrainingLoss:
    """The weighted sum of the terms of ``config`` that have a positive weight."""
    terms: dict[str, tuple[float, nn.Module]] = {}
    if config.mse > 0:
        terms["mse"] = (config.mse, _Function("mse"))
    if config.rmse > 0:
        terms["rmse"] = (config.rmse, _Function("rmse"))
    if config.logmse > 0:
        terms["logmse"] = (config.logmse, _Function("logmse"))
    if config.envelope > 0:
        terms["envelope"] = (config.envelope, EnvelopeLoss())
    if config.mrstft > 0:
        terms["mrstft"] = (config.mrstft, MultiResolutionSTFTLoss(
            config.stft_ffts, config.stft_hops, config.stft_windows))
    if config.mrwave > 0:
        terms["mrwave"] = (config.mrwave, MultiResolutionWaveLoss(
            config.wave_factors, config.wave_decimation))
    if config.time > 0:
        terms["time"] = (config.time, TimeDomainLoss(config.time_windows, config.time_hops))
    return TrainingLoss(terms)


class TimeDomainLoss(nn.Module):
    """TFGAN's time-domain loss: for each frame length ``w`` / hop ``h`` (``(1, 240, 480,
    960)`` / ``(1, 120, 240, 480)`` by default), the L1 distance between the frames' mean
    energy, between their means, and between the first differences of the samples inside each
    frame (for ``w = 1``: between consecutive samples), summed over the terms and resolutions.
    It is what keeps a vocoder's output aligned with its target sample by sample."""

    def __init__(self, windows: Sequence[int] = (1, 240, 480, 960),
                 hops: Sequence[int] = (1, 120, 240, 480)) -> None:
        super().__init__()
        if len(windows) != len(hops) or not windows:
            raise ValueError("windows and hops must be non-empty and of equal length")
        self.resolutions = tuple(zip(map(int, windows), map(int, hops), strict=True))

    def forward(self, estimate: Tensor, target: Tensor) -> Tensor:
        estimate, target = _check(estimate, target)
        x = estimate.reshape(-1, estimate.shape[-1])
        y = target.reshape(-1, target.shape[-1])
        total = x.new_zeros(())
        for window, hop in self.resolutions:
            if window == 1:
                total = total + F.l1_loss(x.square(), y.square()) + F.l1_loss(x, y) + \
                    F.l1_loss(x.diff(dim=-1), y.diff(dim=-1))
                continue
            fx, fy = x.unfold(-1, window, hop), y.unfold(-1, window, hop)
            total = total + F.l1_loss(fx.square().mean(-1), fy.square().mean(-1)) + \
                F.l1_loss(fx.mean(-1), fy.mean(-1)) + F.l1_loss(fx.diff(dim=-1), fy.diff(dim=-1))
        return total


def profile_loss(first: Tensor, second: Tensor, z_first: Tensor, z_second: Tensor, *,
                 p: float, axis: str, weight: float = 1.0, eps: float = 1.0) -> Tensor:
    """Lattner & Nistal's profile loss (eq. 3) against mode collapse, one of its two terms.

    For one MP3 input and two noise draws, ``weight · ‖z_i − z_j‖₂ / (‖d·P̂_i^∘½ −
    d·P̂_j^∘½‖_p^p + eps)``, mean over the batch: ``P̂^∘½`` is the magnitude ``|h|`` of each
    output (the root of its power spectrum; :func:`upband.models.signed_sqrt.magnitude`), ``d``
    sums it over time (``axis="freq"``: the frequency profile, the paper's p = 1.3) or over
    frequency (``axis="rhythm"``: the rhythm profile, p = 1.6). It falls as the two outputs'
    profiles move apart and is blind to everything the profile sums away (phase, and where in
    time / frequency the energy lies). ``eps`` (not in the paper) keeps it finite when the
    outputs are equal, as a fresh residual generator's are.

    Args:
        first, second: the generator's outputs for ``z_first`` and ``z_second``, signed-root
            spectrograms ``[B, 2, bins, frames]``.
        z_first, z_second: the noise, ``[B, noise]``.
    """
    dims = {"freq": -1, "rhythm": -2}
    if axis not in dims:
        raise ValueError(f"axis must be 'freq' or 'rhythm', got {axis!r}")
    a = magnitude(first.float()).sum(dims[axis])
    b = magnitude(second.float()).sum(dims[axis])
    distance = (a - b).abs().pow(p).sum(-1)
    spread = (z_first.float() - z_second.float()).flatten(1).norm(dim=1)
    return (weight * spread / (distance + eps)).mean()
