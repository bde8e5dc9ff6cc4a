"""TFGAN's generator as a magnitude-only vocoder (Tian et al. 2020), the vocoder of TD-PR.

TD-PR (docs/readings/tdpr.md) re-synthesises a waveform "from only the magnitude" of a
model's output and keeps that waveform's phase. Here the vocoder is a
:class:`~upband.models.base.WaveModel` whose forward pass *cannot* see the input's phase:

1. **features**: ``log(max(mel @ |STFT(x)|, 1e-5))`` -- a Hann STFT (``n_fft``, ``hop``,
   centred), magnitudes only, through a triangular mel filter bank (HTK mel scale,
   ``mels`` bands from 0 Hz to ``fmax`` = Nyquist by default, each band normalised to unit
   area) -- then TFGAN's normalisation ``(f + 5) / 5``. TFGAN is a mel vocoder and TD-PR used it
   with its original settings, so "the magnitude" is read as the mel spectrum of the STFT
   magnitude (a linear 513-bin magnitude would be a different vocoder than the paper's);
2. **generator** (TFGAN = MelGAN's generator with sine-activated dual upsampling): a 7-tap
   convolution to ``2 * mult`` maps; per ratio ``r`` an upsampling block
   (``x + sin(x)``, then the sum of a nearest-neighbour x ``r`` + 7-tap convolution branch
   and a transposed-convolution branch of kernel ``2r``, both halving the width) followed by
   ``res_layers`` residual layers (3-tap convolution of dilation ``3**j``, LeakyReLU(0.2),
   1x1 convolution, plus a 1x1 shortcut); LeakyReLU, a 7-tap convolution to one channel,
   ``tanh``; with ``bands > 1`` that convolution gives ``bands`` sub-band signals that a PQMF
   bank joins (TFGAN's ``out_band``, after multi-band MelGAN: the last stages then run at a
   ``bands``-th of the rate). Every convolution is weight-normalised, weights drawn from
   N(0, 0.02²) (MelGAN's init). The product of ``ratios`` times ``bands`` must equal ``hop``;
3. **alignment**: frame ``k`` of a centred STFT describes the audio around sample
   ``k * hop``, while the generator writes frame ``k`` to samples ``[k hop, (k+1) hop)``. The
   first ``hop / 2`` generated samples are dropped, so each frame's samples are centred on the
   frame; the output is then cut to the input's length (which :meth:`valid_length` makes a
   multiple of ``hop``). Training against the clean waveform sample by sample (the time-domain
   loss) fixes any remaining delay, and :func:`upband.enhancement.phase.vocoder_delay`
   measures it.

The output is the vocoder's waveform (``forward`` returns ``x + (vocoder(x) - x)``); TD-PR
takes only its phase (:mod:`upband.enhancement.phase`). ``tfgan`` (registry) is TFGAN's
setting at 16 kHz (80 mels, ratios 8/8/4, hop 256, width 256, 4.5 M parameters), the paper's
vocoder; ``tfgan-s`` the product's 44.1 kHz vocoder (n_fft 2048, hop 512, 128 mels, ratios
8/4/4 into 4 PQMF bands, width 64, 3 residual layers per stage), sized for a laptop CPU.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import weight_norm

from upband.models.base import WaveModel, capture_config
from upband.models.layers import PQMF

__all__ = ["TFGANVocoder", "mel_filterbank"]

LOG_FLOOR = 1e-5


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + hz / 700.0)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


def mel_filterbank(sample_rate: int, n_fft: int, mels: int, fmin: float = 0.0,
                   fmax: float | None = None) -> np.ndarray:
    """``[mels, n_fft // 2 + 1]`` triangular filters equally spaced on the HTK mel scale
    between ``fmin`` and ``fmax`` (default Nyquist), each normalised to unit area in Hz (so a
    flat spectrum gives equal band values whatever the band's width)."""
    fmax = sample_rate / 2 if fmax is None else fmax
    if not 0 <= fmin < fmax <= sample_rate / 2:
        raise ValueError(f"mel range {fmin}..{fmax} Hz is not inside 0..{sample_rate / 2} Hz")
    freqs = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(np.array(fmin)), _hz_to_mel(np.array(fmax)),
                                   mels + 2))
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (freqs[None] - lower) / (centre - lower)
    falling = (upper - freqs[None]) / (upper - centre)
    bank = np.maximum(0.0, np.minimum(rising, falling))
    bank *= 2.0 / (upper - lower)  # unit area (Slaney's normalisation)
    return bank.astype(np.float32)


def _pad(x: Tensor, n: int) -> Tensor:
    """Reflection padding by ``n`` on both sides (MelGAN's), replicate where ``x`` is too short
    to reflect."""
    return F.pad(x, (n, n), mode="reflect" if x.shape[-1] > n else "replicate")


def _conv(cin: int, cout: int, kernel: int, dilation: int = 1) -> nn.Module:
    conv = nn.Conv1d(cin, cout, kernel, dilation=dilation)
    nn.init.normal_(conv.weight, 0.0, 0.02)
    return weight_norm(conv)


class _Residual(nn.Module):
    """MelGAN's residual layer: LeakyReLU, dilated 3-tap conv, LeakyReLU, 1x1 conv, + 1x1
    shortcut (reflection padding keeps the length)."""

    def __init__(self, channels: int, dilation: int) -> None:
        super().__init__()
        self.dilation = dilation
        self.conv = _conv(channels, channels, 3, dilation)
        self.mix = _conv(channels, channels, 1)
        self.shortcut = _conv(channels, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        h = _pad(F.leaky_relu(x, 0.2), self.dilation)
        h = self.mix(F.leaky_relu(self.conv(h), 0.2))
        out: Tensor = self.shortcut(x) + h
        return out


class _Upsample(nn.Module):
    """TFGAN's upsampling block: ``x + sin(x)``, then nearest x ``r`` + 7-tap conv plus a
    transposed conv (kernel ``2r``, stride ``r``); ``2c`` maps in, ``c`` out."""

    def __init__(self, channels: int, ratio: int) -> None:
        super().__init__()
        self.ratio = ratio
        self.conv = _conv(2 * channels, channels, 7)
        trans = nn.ConvTranspose1d(2 * channels, channels, 2 * ratio, stride=ratio,
                                   padding=ratio // 2 + ratio % 2, output_padding=ratio % 2)
        nn.init.normal_(trans.weight, 0.0, 0.02)
        self.trans = weight_norm(trans)

    def forward(self, x: Tensor) -> Tensor:
        x = x + torch.sin(x)
        near = F.interpolate(F.leaky_relu(x, 0.2), scale_factor=self.ratio, mode="nearest")
        out: Tensor = self.conv(_pad(near, 3)) + \
            self.trans(F.leaky_relu(x, 0.2))
        return out


class TFGANVocoder(WaveModel):
    """Waveform -> log-mel of its STFT magnitude -> TFGAN generator -> waveform (mono; more
    channels go through one by one). See the module docstring."""

    window: Tensor
    mel_bank: Tensor

    @capture_config
    def __init__(self, sample_rate_hz: int = 16_000, n_fft: int = 1024, hop: int = 256,
                 mels: int = 80, fmax: float | None = None,
                 ratios: Sequence[int] = (8, 8, 4), mult: int = 256,
                 res_layers: int = 4, bands: int = 1) -> None:
        if math.prod(ratios) * bands != hop:
            raise ValueError(f"the ratios {list(ratios)} times {bands} band(s) make "
                             f"{math.prod(ratios) * bands}, not the hop {hop}")
        if hop % 2 or mult % 2 ** len(ratios):
            raise ValueError("hop must be even and mult divisible by 2 ** len(ratios)")
        super().__init__(channels=1, stride=hop)
        self.sample_rate = sample_rate_hz
        self.n_fft, self.hop, self.ratios, self.res_layers = n_fft, hop, tuple(ratios), res_layers
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        bank = mel_filterbank(sample_rate_hz, n_fft, mels, fmax=fmax)
        self.register_buffer("mel_bank", torch.from_numpy(bank), persistent=False)
        layers: list[nn.Module] = [_conv(mels, 2 * mult, 7)]
        width = mult
        for ratio in ratios:
            layers.append(_Upsample(width, ratio))
            layers += [_Residual(width, 3 ** j) for j in range(res_layers)]
            width //= 2
        self.body = nn.ModuleList(layers)
        self.head = _conv(2 * width, bands, 7)
        self.pqmf = PQMF(bands) if bands > 1 else None
        self.bands = bands

    def features(self, x: Tensor) -> Tensor:
        """``[N, T] -> [N, mels, T / hop + 1]``: normalised log-mel of the STFT magnitude."""
        mode = "reflect" if x.shape[-1] > self.n_fft // 2 else "constant"
        spec = torch.stft(x.float(), self.n_fft, self.hop, window=self.window, center=True,
                          pad_mode=mode, return_complex=True)
        return self.magnitude_features(spec.abs())

    def magnitude_features(self, magnitude: Tensor) -> Tensor:
        """The features of an STFT magnitude ``[N, n_fft/2 + 1, F]`` of this vocoder's Hann
        STFT (``n_fft``, ``hop``, centred): what :meth:`features` computes after its STFT."""
        mel = torch.matmul(self.mel_bank, magnitude)
        return (mel.clamp_min(LOG_FLOOR).log() + 5.0) / 5.0

    def synthesize(self, features: Tensor, length: int) -> Tensor:
        """``[N, mels, F] -> [N, length]``: the generator's output aligned as :meth:`forward`
        aligns it (the first ``hop / 2`` samples dropped, cut to ``length``)."""
        start = self.hop // 2
        return self.generate(features)[:, 0, start:start + length]

    def generate(self, features: Tensor) -> Tensor:
        """``[N, mels, F] -> [N, 1, F * hop]``: the generator alone."""
        h = self.body[0](_pad(features, 3))
        for layer in self.body[1:]:
            h = layer(h)
        h = torch.tanh(self.head(_pad(F.leaky_relu(h, 0.2), 3)))
        return h if self.pqmf is None else self.pqmf.synthesis(h)

    def _forward(self, x: Tensor) -> Tensor:
        batch, _, length = x.shape
        wav = self.synthesize(self.features(x.reshape(batch, length)), length)
        return wav[:, None].to(x.dtype) - x

    def _receptive_field(self) -> int:
        """Upper bound: the generator's reach in frames (each 7-tap conv +-3 at its rate,
        each residual layer +-dilation, each transposed conv +-1 frame of its input), turned
        into samples, plus one STFT window."""
        reach = 3.0  # the first conv, in frames
        rate = 1  # samples of the current stage per frame
        for ratio in self.ratios:
            rate *= ratio
            reach += 1.0 + 3.0 / rate + sum(3 ** j for j in range(self.res_layers)) / rate
        reach += 3.0 / rate
        if self.pqmf is not None:  # the synthesis filters' half length, in sub-band samples
            reach += (self.pqmf.taps // (2 * self.bands) + 1) / rate
        return 2 * math.ceil(reach * self.hop) + self.n_fft + self.hop

    def extra_repr(self) -> str:
        return (f"{super().extra_repr()}, n_fft={self.n_fft}, hop={self.hop}, "
                f"ratios={list(self.ratios)}")
