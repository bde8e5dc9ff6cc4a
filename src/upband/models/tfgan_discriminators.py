"""TFGAN's two discriminators: MelGAN's multi-scale waveform critic and a frequency critic.

Both map a batch of mono waveforms ``[B, 1, T]`` to a list of ``(features, score)`` pairs:
the intermediate activations (for feature matching) and a score map (least-squares GAN: 1 for
real, 0 for generated; :mod:`upband.train.tasks.vocoder`).

* :class:`MultiScaleDiscriminator` (time domain, MelGAN): ``scales`` identical critics on the
  waveform, on it average-pooled once (kernel 4, stride 2), twice, ...; each a 15-tap
  convolution to ``ndf`` maps, ``layers`` grouped strided convolutions (kernel
  ``10 * stride + 1``, width x ``stride`` up to ``max_channels``, groups = input maps / 4), a
  5-tap convolution and a 3-tap convolution to one score per position. TFGAN's setting: 3
  scales, ``ndf`` 16, 3 layers, stride 4, at most 512 maps.
* :class:`FrequencyDiscriminator` (frequency domain, TFGAN): the real and the imaginary part of
  an STFT (``n_fft``, ``hop``, Hann), frames as time steps and bins as channels, each through
  the same small 1-D residual network (a strided 7-tap input convolution, a plain block and
  three residual down-sampling blocks doubling the width from ``width``). Deviation: the
  public code scores the last 512-map activation directly; here a 1x1 convolution turns it
  into one score per frame, as the waveform critics do.

All convolutions are weight-normalised. Discriminators never reach inference: they are
trained and checkpointed by the vocoder task only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import weight_norm

__all__ = ["Critique", "FrequencyDiscriminator", "MultiScaleDiscriminator"]

#: One critic's answer: its intermediate activations and its score map.
Critique = tuple[list[Tensor], Tensor]


def _wn(conv: nn.Module) -> nn.Module:
    return weight_norm(conv)


class _WaveCritic(nn.Module):
    def __init__(self, ndf: int, layers: int, stride: int, max_channels: int) -> None:
        super().__init__()
        blocks: list[nn.Module] = [_wn(nn.Conv1d(1, ndf, 15, padding=7, padding_mode="reflect"))]
        width = ndf
        for _ in range(layers):
            wider = min(width * stride, max_channels)
            blocks.append(_wn(nn.Conv1d(width, wider, 10 * stride + 1, stride=stride,
                                        padding=5 * stride, groups=max(1, width // 4))))
            width = wider
        blocks.append(_wn(nn.Conv1d(width, min(width * 2, max_channels), 5, padding=2)))
        self.blocks = nn.ModuleList(blocks)
        self.score = _wn(nn.Conv1d(min(width * 2, max_channels), 1, 3, padding=1))

    def forward(self, x: Tensor) -> Critique:
        features = []
        for block in self.blocks:
            x = F.leaky_relu(block(x), 0.2)
            features.append(x)
        return features, self.score(x)


class MultiScaleDiscriminator(nn.Module):
    """MelGAN's multi-scale waveform critics; see the module docstring."""

    def __init__(self, scales: int = 3, ndf: int = 16, layers: int = 3, stride: int = 4,
                 max_channels: int = 512) -> None:
        super().__init__()
        self.critics = nn.ModuleList(_WaveCritic(ndf, layers, stride, max_channels)
                                     for _ in range(scales))

    def forward(self, x: Tensor) -> list[Critique]:
        out = []
        for i, critic in enumerate(self.critics):
            if i:
                x = F.avg_pool1d(x, 4, stride=2, padding=1, count_include_pad=False)
            out.append(critic(x))
        return out


class _Block(nn.Module):
    """Two 3-tap convolutions (the first strided by 2) with a 1x1 strided shortcut, then two
    more 3-tap convolutions with a 1x1 shortcut (the public code's residual block)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.a1 = _wn(nn.Conv1d(cin, cout, 3, stride=2, padding=1))
        self.a2 = _wn(nn.Conv1d(cout, cout, 3, padding=1))
        self.short_a = _wn(nn.Conv1d(cin, cout, 1, stride=2))
        self.b1 = _wn(nn.Conv1d(cout, cout, 3, padding=1))
        self.b2 = _wn(nn.Conv1d(cout, cout, 3, padding=1))
        self.short_b = _wn(nn.Conv1d(cout, cout, 1))

    def forward(self, x: Tensor) -> Tensor:
        h = self.a2(F.leaky_relu(self.a1(x), 0.2)) + self.short_a(x)
        out: Tensor = self.b2(F.leaky_relu(self.b1(h), 0.2)) + self.short_b(h)
        return out


class _SpectrumCritic(nn.Module):
    def __init__(self, bins: int, width: int) -> None:
        super().__init__()
        self.inlet = _wn(nn.Conv1d(bins, width, 7, stride=2, padding=1))
        self.plain = nn.ModuleList(_wn(nn.Conv1d(width, width, 3, stride=s, padding=1))
                                   for s in (2, 1, 1, 1))
        self.blocks = nn.ModuleList(_Block(width * 2 ** i, width * 2 ** (i + 1))
                                    for i in range(3))
        self.score = _wn(nn.Conv1d(width * 8, 1, 1))

    def forward(self, x: Tensor) -> Critique:
        features = [F.leaky_relu(self.inlet(x), 0.2)]
        h = features[0]
        for i, conv in enumerate(self.plain):
            h = conv(h)
            if i < len(self.plain) - 1:
                h = F.leaky_relu(h, 0.2)
        features.append(h)
        for block in self.blocks:
            h = block(h)
            features.append(h)
        return features, self.score(F.leaky_relu(h, 0.2))


class FrequencyDiscriminator(nn.Module):
    """TFGAN's critic of the STFT's real and imaginary parts; see the module docstring."""

    window: Tensor

    def __init__(self, n_fft: int = 1024, hop: int = 256, width: int = 64) -> None:
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        self.critic = _SpectrumCritic(n_fft // 2 + 1, width)

    def forward(self, x: Tensor) -> list[Critique]:
        spec = torch.stft(x.reshape(-1, x.shape[-1]).float(), self.n_fft, self.hop,
                          window=self.window, center=True, return_complex=True)
        return [self.critic(spec.real), self.critic(spec.imag)]
