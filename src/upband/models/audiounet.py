"""AudioUNet: the sub-pixel U-Net of Kuleshov, Enam & Ermon, "Audio super-resolution using neural
networks" (ICLR workshop 2017), §3.2 and Fig. 1.

The layer list below is that of the released code (docs/readings/kuleshov.md), which the
paper's text gets wrong in places (it prints ``max``/``min`` the other way round):

* ``B = 4`` down blocks ``b = 1..4``: conv with ``min(2^(6+b), 512)`` filters (128, 256, 512, 512)
  of length ``max(2^(7-b) + 1, 9)`` (65, 33, 17, 9), stride 2 -> [BN] -> LeakyReLU(0.2);
* bottleneck: conv 512 -> 512, length 9, stride 2 -> dropout(0.5) -> LeakyReLU(0.2);
* up blocks mirrored: conv to twice the mirrored down block's width, with its kernel
  (9, 17, 33, 65 going up) -> dropout(0.5) -> ReLU -> sub-pixel x2 -> concatenate with the
  mirrored down block's output (the "stacking" skip connection);
* final conv 256 -> 2 x channels, length 9 -> sub-pixel x2 -> added to the input.

Choices (the released code is TensorFlow; this is our own PyTorch code):

* the released code uses *ReLU* after the up convolutions and LeakyReLU(0.2) elsewhere; we follow
  the code (``up_negative_slope=0``); the paper's text says ReLU everywhere;
* batch norm is commented out in the released code and the published parameter count
  (56 411 394 for mono) has none, so ``batchnorm=False``;
* sub-pixel order: TensorFlow ``batch_to_space`` (see :func:`upband.models.layers.subpixel`);
* init: Keras ``Orthogonal`` for the convolutions as in the released code (``init="orthogonal"``);
  the last convolution is zero (released code: N(0, 1e-3)) so that a fresh model is exactly the
  identity;
* padding ``(k - 1) // 2`` zeros on both sides ("same"); input lengths are padded to a multiple
  of the total stride 32 and cropped back.

The input is the cubic-spline upsampled low-rate signal (the task is super-resolution with
``r = 2, 4, 6`` at 16 kHz in the paper); the network itself does not resample. ``channels = 1``
(mono); stereo audio is processed channel by channel (see :class:`WaveModel`).

The same class with ReLU everywhere, stereo input and optional BN / dropout is Sulun & Davies'
U-Net (:mod:`upband.models.sulun_unet`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from upband.models.base import WaveModel, capture_config
from upband.models.layers import ReceptiveField, Subpixel1d, normal_init_, zero_init_

__all__ = ["AudioUNet"]

_INITS = ("normal", "orthogonal", "default")


def _act(slope: float) -> nn.Module:
    return nn.ReLU() if slope == 0 else nn.LeakyReLU(slope)


class AudioUNet(WaveModel):
    """Sub-pixel U-Net (Kuleshov et al. 2017, Fig. 1); see the module docstring.

    Args:
        channels: audio channels processed jointly (1 = mono).
        widths: filters of the down blocks (the up blocks mirror them).
        kernels: kernel lengths of the down blocks (odd).
        bottleneck_kernel: kernel length of the bottleneck convolution.
        final_kernel: kernel length of the last convolution.
        dropout: dropout rate after the bottleneck and every up convolution (0 = none).
        final_dropout: also apply dropout after the last convolution (Sulun's code does).
        batchnorm: batch norm after every down convolution.
        negative_slope: LeakyReLU slope in the down blocks and the bottleneck (0 = ReLU).
        up_negative_slope: slope after the up convolutions (0 = ReLU).
        init: ``"orthogonal"`` (Kuleshov's code), ``"normal"`` (N(0, 0.02), Sulun's code) or
            ``"default"`` (PyTorch's); the last convolution always starts at zero.
    """

    name = "audiounet"

    @capture_config
    def __init__(
        self,
        channels: int = 1,
        widths: Sequence[int] = (128, 256, 512, 512),
        kernels: Sequence[int] = (65, 33, 17, 9),
        bottleneck_kernel: int = 9,
        final_kernel: int = 9,
        dropout: float = 0.5,
        final_dropout: bool = False,
        batchnorm: bool = False,
        negative_slope: float = 0.2,
        up_negative_slope: float = 0.0,
        init: str = "orthogonal",
    ) -> None:
        widths, kernels = tuple(widths), tuple(kernels)
        if len(widths) != len(kernels) or not widths:
            raise ValueError("widths and kernels must be non-empty and of equal length")
        if any(k % 2 == 0 for k in (*kernels, bottleneck_kernel, final_kernel)):
            raise ValueError("kernel lengths must be odd")
        if init not in _INITS:
            raise ValueError(f"init must be one of {_INITS}, got {init!r}")
        super().__init__(channels=channels, stride=2 ** (len(widths) + 1))
        self.widths, self.kernels = widths, kernels
        self.bottleneck_kernel, self.final_kernel = bottleneck_kernel, final_kernel

        self.down = nn.ModuleList()
        prev = channels
        for width, kernel in zip(widths, kernels, strict=True):
            layers: list[nn.Module] = [nn.Conv1d(prev, width, kernel, stride=2,
                                                 padding=(kernel - 1) // 2)]
            if batchnorm:
                layers.append(nn.BatchNorm1d(width))
            layers.append(_act(negative_slope))
            self.down.append(nn.Sequential(*layers))
            prev = width

        bottleneck: list[nn.Module] = [nn.Conv1d(prev, prev, bottleneck_kernel, stride=2,
                                                 padding=(bottleneck_kernel - 1) // 2)]
        if dropout > 0:
            bottleneck.append(nn.Dropout(dropout))
        bottleneck.append(_act(negative_slope))
        self.bottleneck = nn.Sequential(*bottleneck)

        # Up blocks from the deepest level: conv to 2 x (mirrored width), shuffle, concatenate.
        self.up = nn.ModuleList()
        for width, kernel in zip(reversed(widths), reversed(kernels), strict=True):
            layers = [nn.Conv1d(prev, 2 * width, kernel, padding=(kernel - 1) // 2)]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            layers += [_act(up_negative_slope), Subpixel1d(2)]
            self.up.append(nn.Sequential(*layers))
            prev = 2 * width  # shuffled (width) + skip (width)

        self.final = nn.Conv1d(prev, 2 * channels, final_kernel, padding=(final_kernel - 1) // 2)
        self.final_dropout = nn.Dropout(dropout) if (final_dropout and dropout > 0) else None
        self.shuffle = Subpixel1d(2)

        if init == "normal":
            normal_init_(self, 0.02)
        elif init == "orthogonal":
            for m in self.modules():
                if isinstance(m, nn.Conv1d):
                    nn.init.orthogonal_(m.weight)
        zero_init_(self.final)

    def _forward(self, x: Tensor) -> Tensor:
        skips = []
        y = x
        for block in self.down:
            y = block(y)
            skips.append(y)
        y = self.bottleneck(y)
        for block, skip in zip(self.up, reversed(skips), strict=True):
            y = torch.cat([block(y), skip], dim=1)
        y = self.final(y)
        if self.final_dropout is not None:
            y = self.final_dropout(y)
        return self.shuffle(y)

    def _receptive_field(self) -> int:
        rf = ReceptiveField()
        for kernel in self.kernels:
            rf.conv(kernel, stride=2)
        rf.conv(self.bottleneck_kernel, stride=2)
        for kernel in reversed(self.kernels):
            rf.conv(kernel).shuffle(2)
        return rf.conv(self.final_kernel).shuffle(2).samples()
