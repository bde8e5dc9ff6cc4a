"""U-Net of Sulun & Davies, "On filter generalization for music bandwidth extension using deep
neural networks" (IEEE JSTSP 2021), §III-A-1 and Fig. 1a: Kuleshov's AudioUNet made stereo.

Exactly as the released code builds it (docs/readings/sulun-davies.md): down blocks conv 2->128
k65, 128->256 k33, 256->512 k17, 512->512 k9, stride 2, padding (k-1)//2, each conv -> [BN] ->
ReLU; bottleneck conv 512->512 k9 stride 2 -> [dropout] -> ReLU; up convs 512->1024 k9, 1024->1024
k17, 1024->512 k33, 512->256 k65, each -> [dropout] -> ReLU -> sub-pixel x2 -> concatenated with
the mirrored down output; last conv 256->4 k9 -> [dropout] -> sub-pixel x2 (no activation); output
= input + net. Total stride 32; **56 424 324 parameters**, BN adds 2 816 (conv biases are kept),
dropout 0.5.

Choices: ReLU everywhere (the released code); sub-pixel in TensorFlow ``batch_to_space`` order as
in that code; weights N(0, 0.02) (``weights_init_normal`` of the code; the paper says unit
variance); the last convolution starts at zero so that a fresh model is the identity. The ``-do``
variant applies dropout after the last convolution too, as the released code does.
"""

from __future__ import annotations

from collections.abc import Sequence

from upband.models.audiounet import AudioUNet
from upband.models.base import capture_config

__all__ = ["SulunUNet"]


class SulunUNet(AudioUNet):
    """Sulun & Davies' stereo U-Net; see the module docstring and :class:`AudioUNet`.

    Args:
        channels: audio channels processed jointly (2 = stereo, as published).
        batchnorm: batch norm after every down convolution ("U-Net BN").
        dropout: dropout rate after the bottleneck and every up convolution ("U-Net DO": 0.5).
        widths, kernels: down-block filters and kernel lengths (published values by default).
    """

    name = "sulun-unet"

    @capture_config
    def __init__(
        self,
        channels: int = 2,
        batchnorm: bool = False,
        dropout: float = 0.0,
        widths: Sequence[int] = (128, 256, 512, 512),
        kernels: Sequence[int] = (65, 33, 17, 9),
    ) -> None:
        super().__init__(
            channels=channels,
            widths=widths,
            kernels=kernels,
            bottleneck_kernel=9,
            final_kernel=9,
            dropout=dropout,
            final_dropout=True,
            batchnorm=batchnorm,
            negative_slope=0.0,
            up_negative_slope=0.0,
            init="normal",
        )
