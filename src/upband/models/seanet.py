"""SEANet generator: Tagliasacchi, Li, Misiunas & Roblek, "SEANet: a multi-modal speech
enhancement network" (Interspeech 2020), as used for bandwidth extension by Li et al. (ICASSP
2021) and as a TD-CNN baseline by TD-PR (Zhang, Kolkman & Watanabe 2024, Table 1: "11M").

A wave-to-wave U-Net without pooling (C = 32, strides 2, 2, 8, 8, ELU activations)::

    Conv(C, k7)
    EncBlock(2C, s2) -> EncBlock(4C, s2) -> EncBlock(8C, s8) -> EncBlock(16C, s8)
    Conv(latent, k7) -> Conv(16C, k7)                                  (bottleneck)
    DecBlock(8C, s8) -> DecBlock(4C, s8) -> DecBlock(2C, s2) -> DecBlock(C, s2)
    Conv(channels, k7);  output = input + net

    EncBlock(N, s) = ResUnit(N/2, d=1, 3, 9) -> Conv(N, k=2s, stride s)
    DecBlock(N, s) = ConvTranspose(N, k=2s, stride s) -> ResUnit(N, d=1, 3, 9)
    ResUnit(N, d)  = x + Conv(N, k1)(ELU(Conv(N, k7, dilation d)(ELU(x))))

Skip connections add each encoder block's output to the input of the mirrored decoder block
(and the first conv's output to the input of the last conv), as in SEANet's Fig. 1.

Parameter count (mono, ``latent=128``): **10 428 545**. TD-PR report "11M" for their own,
unpublished implementation. Our count follows the SEANet paper's layer list; the 0.6 M difference
is within what an unstated detail moves (e.g. a 512-wide bottleneck instead of the 128-wide
embedding gives 11.35 M: ``latent=512``; weight normalisation, which we leave out, adds only
8 353 scale parameters).

Choices: plain convolutions (no weight norm: it is a training-time reparametrisation and the
papers do not state it for the generator); zero "same" padding (``k // 2`` on both sides for the
odd kernels, ``s / 2`` for the strided ones) so every length that is a multiple of 256 is
reproduced exactly; no output tanh (the input is added to the correction instead, which starts
at zero so that a fresh model is the identity); mono (``channels = 1``) as published: stereo is
processed channel by channel.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from upband.models.base import WaveModel, capture_config
from upband.models.layers import ReceptiveField, zero_init_

__all__ = ["SEANet"]

_DILATIONS = (1, 3, 9)


class _ResUnit(nn.Module):
    def __init__(self, width: int, kernel: int, dilation: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ELU(),
            nn.Conv1d(width, width, kernel, dilation=dilation,
                      padding=dilation * (kernel - 1) // 2),
            nn.ELU(),
            nn.Conv1d(width, width, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class _EncBlock(nn.Sequential):
    def __init__(self, cin: int, cout: int, stride: int, kernel: int) -> None:
        super().__init__(
            *[_ResUnit(cin, kernel, d) for d in _DILATIONS],
            nn.ELU(),
            nn.Conv1d(cin, cout, 2 * stride, stride=stride, padding=stride // 2),
        )


class _DecBlock(nn.Sequential):
    def __init__(self, cin: int, cout: int, stride: int, kernel: int) -> None:
        super().__init__(
            nn.ELU(),
            nn.ConvTranspose1d(cin, cout, 2 * stride, stride=stride, padding=stride // 2),
            *[_ResUnit(cout, kernel, d) for d in _DILATIONS],
        )


class SEANet(WaveModel):
    """SEANet generator; see the module docstring.

    Args:
        channels: audio channels processed jointly (1 = mono, as published).
        width: channels after the first convolution (C = 32); block ``i`` has ``C * 2^i``.
        strides: strides of the encoder blocks (even); the decoder mirrors them.
        latent: channels of the bottleneck embedding.
        kernel: kernel of the first, last, bottleneck and residual convolutions (odd).
    """

    name = "seanet"

    @capture_config
    def __init__(
        self,
        channels: int = 1,
        width: int = 32,
        strides: Sequence[int] = (2, 2, 8, 8),
        latent: int = 128,
        kernel: int = 7,
    ) -> None:
        strides = tuple(strides)
        if kernel % 2 == 0 or any(s % 2 for s in strides):
            raise ValueError("kernel must be odd and strides even")
        total = 1
        for s in strides:
            total *= s
        super().__init__(channels=channels, stride=total)
        self.strides, self.kernel = strides, kernel
        widths = [width * 2**i for i in range(len(strides) + 1)]
        pad = (kernel - 1) // 2
        self.first = nn.Conv1d(channels, width, kernel, padding=pad)
        self.encoder = nn.ModuleList(
            _EncBlock(widths[i], widths[i + 1], s, kernel) for i, s in enumerate(strides))
        self.bottleneck = nn.Sequential(
            nn.ELU(), nn.Conv1d(widths[-1], latent, kernel, padding=pad),
            nn.ELU(), nn.Conv1d(latent, widths[-1], kernel, padding=pad),
        )
        self.decoder = nn.ModuleList(
            _DecBlock(widths[i + 1], widths[i], s, kernel)
            for i, s in reversed(list(enumerate(strides))))
        self.last = nn.Sequential(nn.ELU(), nn.Conv1d(width, channels, kernel, padding=pad))
        zero_init_(self.last[1])

    def _forward(self, x: Tensor) -> Tensor:
        y = self.first(x)
        skips = [y]
        for block in self.encoder:
            y = block(y)
            skips.append(y)
        y = self.bottleneck(y)
        for block, skip in zip(self.decoder, reversed(skips[1:]), strict=True):
            y = block(y + skip)
        return self.last(y + skips[0])

    def _receptive_field(self) -> int:
        rf = ReceptiveField().conv(self.kernel)
        for s in self.strides:
            for d in _DILATIONS:
                rf.conv(self.kernel, dilation=d)
            rf.conv(2 * s, stride=s)
        rf.conv(self.kernel).conv(self.kernel)
        for s in reversed(self.strides):
            rf.transposed(2 * s, s)
            for d in _DILATIONS:
                rf.conv(self.kernel, dilation=d)
        return rf.conv(self.kernel).samples()
