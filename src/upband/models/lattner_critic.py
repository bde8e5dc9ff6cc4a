"""The critic of Lattner & Nistal's MP3 restorer (Electronics 2021, §3.1.1, Table 1 [D]).

D(x, y) scores a spectrogram ``x`` (the original, or G's restoration) given the MP3 ``y`` it
restores, both signed-root spectrograms ``[N, 2, bins, T]``
(:mod:`upband.models.signed_sqrt`). Two convolutional groups, i.e. two independent critics,
see two views and are joined only in the output layer:

* the **complex view**: ``x`` and ``y`` as four maps (signed roots of real and imaginary
  parts);
* the **magnitude view**: ``√|x|`` and ``√|y|`` as two maps (the square root of the magnitude
  spectrum, which the authors found steadier than the log magnitude).

Each group is the generator's trunk (:class:`~upband.models.lattner.FrontConvs`: Conv1-4,
Reshape1, ReMap, Conv5; then the self-gated Conv6-14) *with* time padding, so the ``T`` frames
are kept throughout, plus skip connections in Conv6-14 (``x + gated(x)``; Conv6 changes the
number of maps, 256 -> 128, so its output is taken as it is), then Conv15 (3×3, 128 -> 256,
PReLU). Conv16 joins the groups: a ``agg_rows × 1`` kernel over both groups' 2 × 256 maps gives
one score per frame (no non-linearity); :meth:`LattnerCritic.forward` returns the per-frame
scores ``[N, T]`` and the Wasserstein estimate of eq. 1 averages them (§3.1.1).

Table 1 gives D's input as 2 maps; the MP3 condition and the second view are not in it. Here
each group's Conv1 takes its view's maps of ``x`` and of ``y`` (4 and 2), and every other
layer has Table 1's sizes. He initialisation throughout, as an equalized learning rate like the
generator's.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from upband.models.lattner import (
    PRELU_INIT,
    EqConv2d,
    FrontConvs,
    GatedConv,
    LattnerGenerator,
    he_init_,
)
from upband.models.signed_sqrt import root_magnitude

__all__ = ["LattnerCritic"]


class _Group(nn.Module):
    """One view's critic up to Conv15: ``[N, in_maps, bins, T]`` -> ``[N, head, agg_rows, T]``."""

    def __init__(self, in_maps: int, bins: int, front: Sequence[int], agg_maps: int,
                 agg_rows: int, dilations: Sequence[int], head: int) -> None:
        super().__init__()
        self.front = FrontConvs(in_maps, bins, front, agg_maps, agg_rows, pad_time=True)
        self.gated = nn.Sequential(*(
            GatedConv(2 * agg_maps if i == 0 else agg_maps, agg_maps, d, pad_time=True,
                      skip=i > 0) for i, d in enumerate(dilations)))
        self.conv15 = EqConv2d(agg_maps, head, 3, padding=1)
        self.conv15_act = nn.PReLU(head, init=PRELU_INIT)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv15_act(self.conv15(self.gated(self.front(x))))


class LattnerCritic(nn.Module):
    """D(x, y): per-frame scores of ``x`` given the MP3 ``y``; see the module docstring.

    Args:
        bins: frequency bins of the spectrograms (1 024).
        front, agg_maps, agg_rows, dilations: as the generator's
            (:class:`~upband.models.lattner.LattnerGenerator`).
        head: maps of Conv15 (256).
        equalized: He's initialisation as an equalized learning rate
            (:func:`~upband.models.lattner.he_init_`).
    """

    def __init__(self, bins: int = 1024, front: Sequence[int] = (18, 38, 38),
                 agg_maps: int = 128, agg_rows: int = 32,
                 dilations: Sequence[int] = (2, 4, 8, 16, 1, 2, 4, 8, 16),
                 head: int = 256, equalized: bool = True) -> None:
        super().__init__()
        self.complex_view = _Group(4, bins, front, agg_maps, agg_rows, dilations, head)
        self.magnitude_view = _Group(2, bins, front, agg_maps, agg_rows, dilations, head)
        self.conv16 = EqConv2d(2 * head, 1, (agg_rows, 1))
        he_init_(self, equalized)

    @classmethod
    def for_generator(cls, generator: LattnerGenerator, head: int | None = None
                      ) -> LattnerCritic:
        """The critic of Table 1 at the generator's sizes (``head``: twice its ``agg_maps``
        unless given, 256 for Table 1's generator)."""
        return cls(generator.bins, generator.front_maps, generator.agg_maps, generator.agg_rows,
                   generator.dilations, head or 2 * generator.agg_maps, generator.equalized)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        """Per-frame scores ``[N, T]`` of ``x`` given ``y`` (both ``[N, 2, bins, T]``)."""
        a = self.complex_view(torch.cat([x, y], dim=1))
        b = self.magnitude_view(torch.cat([root_magnitude(x), root_magnitude(y)], dim=1))
        return self.conv16(torch.cat([a, b], dim=1))[:, 0, 0]

    def num_parameters(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)
