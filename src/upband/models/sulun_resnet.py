"""ResNet of Sulun & Davies, "On filter generalization for music bandwidth extension using deep
neural networks" (IEEE JSTSP 2021), §III-A-2 and Fig. 1b.

Exactly as the released code builds it (docs/readings/sulun-davies.md): head conv 2->512 k7 (no
activation); 15 residual blocks, each conv -> [BN] -> [dropout] -> ReLU -> conv -> [BN] ->
[dropout], scaled by 0.1 and added to the block input; tail conv 512->2 k1; plus the network input.
All convolutions keep the length (padding (k-1)//2). **55 074 306 parameters**; with BN the block
convolutions lose their bias and each gains a BN (net +512 per conv: +15 360). Receptive field 1 +
6 + 15 x 2 x 6 = 187 samples.

Choices: weights N(0, 0.02) as in the released code (the paper says unit variance); the tail
convolution starts at zero so that a fresh model is the identity.
"""

from __future__ import annotations

from torch import Tensor, nn

from upband.models.base import WaveModel, capture_config
from upband.models.layers import ReceptiveField, normal_init_, zero_init_

__all__ = ["SulunResNet"]


class _ResBlock(nn.Module):
    """conv -> [BN] -> [dropout] -> ReLU -> conv -> [BN] -> [dropout]; ``x + scale * body(x)``."""

    def __init__(self, width: int, kernel: int, batchnorm: bool, dropout: float,
                 scale: float) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(2):
            layers.append(nn.Conv1d(width, width, kernel, padding=(kernel - 1) // 2,
                                    bias=not batchnorm))
            if batchnorm:
                layers.append(nn.BatchNorm1d(width))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            if i == 0:
                layers.append(nn.ReLU())
        self.body = nn.Sequential(*layers)
        self.scale = scale

    def forward(self, x: Tensor) -> Tensor:
        return x + self.scale * self.body(x)


class SulunResNet(WaveModel):
    """Sulun & Davies' stereo ResNet; see the module docstring.

    Args:
        channels: audio channels processed jointly (2 = stereo, as published).
        batchnorm: batch norm after every block convolution ("ResNet BN").
        dropout: dropout rate after every block convolution ("ResNet DO": 0.5).
        width, kernel, blocks, res_scale: published 512, 7, 15 and 0.1.
    """

    name = "sulun-resnet"

    @capture_config
    def __init__(
        self,
        channels: int = 2,
        batchnorm: bool = False,
        dropout: float = 0.0,
        width: int = 512,
        kernel: int = 7,
        blocks: int = 15,
        res_scale: float = 0.1,
    ) -> None:
        if kernel % 2 == 0:
            raise ValueError("kernel must be odd")
        super().__init__(channels=channels, stride=1)
        self.kernel, self.blocks = kernel, blocks
        self.head = nn.Conv1d(channels, width, kernel, padding=(kernel - 1) // 2)
        self.body = nn.Sequential(*[_ResBlock(width, kernel, batchnorm, dropout, res_scale)
                                    for _ in range(blocks)])
        self.tail = nn.Conv1d(width, channels, 1)
        normal_init_(self, 0.02)
        zero_init_(self.tail)

    def _forward(self, x: Tensor) -> Tensor:
        return self.tail(self.body(self.head(x)))

    def _receptive_field(self) -> int:
        rf = ReceptiveField().conv(self.kernel)
        for _ in range(2 * self.blocks):
            rf.conv(self.kernel)
        return rf.samples()
