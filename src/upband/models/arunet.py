"""ARUNet: Ou & Chen, "Acoustic bandwidth extension by audio deep residual U-Net", eqs. 2-4, Fig. 1.

Structure (the paper's notation; ``F`` is the processing before a residual block, ``R`` the
residual block, ``Phi`` the pixel shuffle, ``Sigma`` the concatenation)::

    E_0 = R(F(x)) + F(x);  E_k = R(F(E_{k-1})) + F(E_{k-1}),  k = 1..4           (eq. 2)
    B   = Phi(F^-1(F(E_4)))                                                       (eq. 3)
    D_4 = Phi(R^-1(F^-1(Sigma(B, E_4))) + F^-1(Sigma(B, E_4)))
    D_k = Phi(R^-1(F^-1(Sigma(D_{k+1}, E_k))) + F^-1(Sigma(D_{k+1}, E_k))),  k = 3..0   (eq. 4)
    y   = x + D_0

* ``F`` (encoders, and the first half of the bottleneck): conv, stride 2 -> BN -> LeakyReLU;
* ``F^-1`` (decoders, second half of the bottleneck): conv, stride 1, to twice the width the
  pixel shuffle must deliver -> dropout -> LeakyReLU;
* ``R`` / ``R^-1``: stride-1 convolutions of unchanged width with the same kernel and the same
  layer order as the surrounding block (BN in encoders, dropout in decoders), added to their
  input;
* widths ``min(2^(6+b), 512)`` and kernels ``max(2^(7-b)+1, 9)`` for block ``b``.

Every place where the paper is ambiguous, and what we chose:

1. **Width / kernel formula.** The paper prints ``max(2^(6+K), 512)`` filters of length
   ``min(2^(7-k)+1, 9)`` -- Kuleshov's typo copied (it would give >= 512 filters of length <= 9);
   we use min/max the right way round (docs/readings/sulun-davies.md).
2. **Which index.** The formula is stated for "block k = 1..K" but the encoders are numbered
   E_0..E_4. We map E_k to block ``b = k + 1``, as Kuleshov's and Sulun's U-Nets (which ARUNet
   extends) do: widths 128, 256, 512, 512, 512 and kernels 65, 33, 17, 9, 9. (The other reading,
   ``b = k``, gives 64..512 and a 129-tap first kernel: ``widths=(64, 128, 256, 512, 512),
   kernels=(129, 65, 33, 17, 9)``.)
3. **Residual block depth.** Fig. 1 is not legible in the text; §II-B says the residual block's
   "parameters and arrangement order" equal those of its encoder/decoder block except for equal
   channels and stride 1. We read this as ONE conv unit (conv -> BN -> LReLU in encoders,
   conv -> dropout -> LReLU in decoders); ``res_convs`` sets more.
4. **Bottleneck.** Eq. 3 has no residual block: ``F`` (conv stride 2, 512 -> 512, k9, BN,
   LReLU) then ``F^-1`` (conv 512 -> 1024, k9, dropout, LReLU) then Phi, as in the U-Net baseline.
5. **Decoder kernels and widths.** D_k works at E_k's resolution and uses E_k's kernel; its
   ``F^-1`` outputs twice the width of E_{k-1} so that Phi delivers a tensor that concatenates
   with E_{k-1} (as the U-Net baseline's up convolutions do).
6. **The last decoder.** Eq. 4 makes the network output D_0 itself, so D_0's ``F^-1`` maps to
   2 x channels and Phi gives the waveform. Dropout and LeakyReLU on the output samples would
   drop half of them and bend negative values, so D_0's two convolutions are linear (no
   dropout, no activation), like the U-Net baseline's last layer.
7. **Additive input.** Eq. 4 says ``X_HR = D_0``; the text follows the U-Net baseline, which adds
   the input; we add the input (the model learns the missing high band only).
8. **LeakyReLU slope and dropout rate** are not given: 0.2 (Kuleshov, MelGAN) and 0.5 (Sulun, whom
   the paper follows for regularisation).
9. **BN and bias.** A conv followed by BN has no bias (BN's shift replaces it; foldable at
   inference).
10. **Init.** "Zero mean and unit variance" (copied from Sulun's text) would blow activations up
    by sqrt(fan-in) per layer; the baselines' released code uses N(0, 0.02), which we use for the
    paper model. D_0 starts at zero, so a fresh model is exactly the identity.
11. **Sub-pixel order**: TensorFlow ``batch_to_space`` (docs/readings/sulun-davies.md), as in
    the baselines.
12. **Padding**: (k-1)//2 zeros; inputs are padded to a multiple of the total stride 64.
13. **Order inside a block.** §II-B lists "a convolution layer, and an LReLU ..., a
    regularization layer, and a residual layer"; we put the regulariser between the conv and
    the activation (conv -> BN -> LReLU, conv -> dropout -> LReLU), as the baselines' code does.
14. **Mono or stereo.** Not stated; the SNR is computed on the stereo signals and the
    baselines are stereo networks, so ``channels=2`` (any other channel count is processed
    channel by channel, see :class:`~upband.models.base.WaveModel`). The paper resamples its
    data to 48 kHz; the network itself is rate-agnostic.

With these choices the paper model has **85 214 488 parameters** (encoders 20.5 M, bottleneck
7.1 M, decoders 57.7 M) and a receptive field of 3 457 samples; the paper calls ARUNet
"lightweight" but gives no count. The other index reading of item 2 gives 65.9 M, two convs per
residual block 123.1 M.

Fast variants (``arunet-s``, ``arunet-xs`` in the registry) keep every block of this structure
-- strided-conv encoders with BN and a residual block, the bottleneck with the first pixel
shuffle, pixel-shuffle decoders with skip concatenation and a residual block, the additive
input -- but run it on an 8-band PQMF decomposition of the input (``front="pqmf", bands=8``):
E_0 takes the ``2 x 8`` sub-band signals at 1/8 of the sample rate (its output is at 1/16), D_0
returns ``2 x 8`` sub-band corrections, and the PQMF synthesis turns them into a waveform that is
added to the input (a fresh model is still exactly the identity). Five levels, widths
64-96-128-160-224 (``arunet-s``, 3.48 M parameters) or 32-48-64-96-128 (``arunet-xs``, 1.06 M),
kernels 9-7-5-5-3, receptive field 7 649 samples (173 ms), no dropout by default (small models
underfit rather than overfit), Kaiming init and ``out_scale=0.01``. Why a PQMF rather than a
learned strided "patchify" conv (``front="polyphase"``, same cost): each sub-band is a
band-limited signal, so an error the network makes in one band stays in that band after
synthesis instead of imaging across the whole spectrum, and the empty high bands of a
band-limited input are explicit channels that the network has to fill. The PQMF runs in
polyphase form (two dense 8 -> 8 convolutions at 1/8 rate), about 3 % of the model's time.

Why ``out_scale=0.01``: in short training runs (AdamW, batch 4 x 16 384 stereo samples,
Chebyshev-I order 6 at 11 025 Hz, nine one-minute game-music excerpts, SNR on two held-out
excerpts) ``arunet-s`` with ``out_scale=1`` stayed *below* the identity (-3.8 dB after 600 steps
at lr 5e-4 with 200 warm-up steps, -5.1 dB after 800 steps at lr 1e-4): Adam's per-step noise on
D_0 exceeds the correction to be learnt. With lr 5e-4, 100 warm-up steps and 800 steps,
``out_scale`` 0.1, 0.03 and 0.01 gave +1.0, +2.7 and +4.2 dB over the input.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from upband.models.base import WaveModel, capture_config
from upband.models.layers import (
    PQMF,
    ReceptiveField,
    Subpixel1d,
    normal_init_,
    space_to_depth,
    subpixel,
    zero_init_,
)

__all__ = ["ARUNet"]

FRONTS = ("none", "pqmf", "polyphase")


class _Unit(nn.Sequential):
    """conv -> [BN] -> [dropout] -> LeakyReLU; a bare conv when ``linear``."""

    def __init__(self, cin: int, cout: int, kernel: int, *, stride: int = 1,
                 batchnorm: bool = False, dropout: float = 0.0, slope: float = 0.2,
                 linear: bool = False) -> None:
        norm = batchnorm and not linear
        layers: list[nn.Module] = [nn.Conv1d(cin, cout, kernel, stride=stride,
                                             padding=(kernel - 1) // 2, bias=not norm)]
        if not linear:
            if norm:
                layers.append(nn.BatchNorm1d(cout))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            layers.append(nn.LeakyReLU(slope))
        super().__init__(*layers)


class _Residual(nn.Module):
    """``R(u) + u`` with ``R`` a stack of stride-1 units of unchanged width."""

    def __init__(self, width: int, kernel: int, depth: int, *, batchnorm: bool = False,
                 dropout: float = 0.0, slope: float = 0.2, linear: bool = False) -> None:
        super().__init__()
        self.body = nn.Sequential(*[
            _Unit(width, width, kernel, batchnorm=batchnorm, dropout=dropout, slope=slope,
                  linear=linear)
            for _ in range(depth)])

    def forward(self, u: Tensor) -> Tensor:
        return u + self.body(u)


class _Encoder(nn.Module):
    """Eq. 2: ``E = R(F(x)) + F(x)`` with ``F`` = conv stride 2 -> BN -> LeakyReLU."""

    def __init__(self, cin: int, width: int, kernel: int, depth: int, batchnorm: bool,
                 slope: float) -> None:
        super().__init__()
        self.down = _Unit(cin, width, kernel, stride=2, batchnorm=batchnorm, slope=slope)
        self.res = _Residual(width, kernel, depth, batchnorm=batchnorm, slope=slope)

    def forward(self, x: Tensor) -> Tensor:
        return self.res(self.down(x))


class _Decoder(nn.Module):
    """Eq. 4: ``D = Phi(R(F^-1(Sigma)) + F^-1(Sigma))``, ``F^-1`` = conv -> dropout -> LReLU."""

    def __init__(self, cin: int, target: int, kernel: int, depth: int, dropout: float,
                 slope: float, linear: bool) -> None:
        super().__init__()
        self.up = _Unit(cin, 2 * target, kernel, dropout=dropout, slope=slope, linear=linear)
        self.res = _Residual(2 * target, kernel, depth, dropout=dropout, slope=slope,
                             linear=linear)
        self.shuffle = Subpixel1d(2)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        return self.shuffle(self.res(self.up(torch.cat([x, skip], dim=1))))


class ARUNet(WaveModel):
    """Audio deep residual U-Net (Ou & Chen, eqs. 2-4); see the module docstring.

    Args:
        channels: audio channels processed jointly (2 = stereo).
        widths: encoder widths E_0.. (the bottleneck keeps the last one).
        kernels: encoder kernel lengths (odd); decoders and the bottleneck mirror them.
        res_convs: conv units per residual block.
        batchnorm: BN in the encoders and the bottleneck's down convolution.
        dropout: dropout rate in the decoders and the bottleneck's up convolution.
        negative_slope: LeakyReLU slope.
        front: ``"none"`` (the paper), ``"pqmf"`` (PQMF sub-bands) or ``"polyphase"``
            (space-to-depth); the network then runs on ``channels x bands`` signals at
            ``1 / bands`` of the rate.
        bands: sub-bands / phases of the front end (1 with ``front="none"``).
        init_std: weights N(0, init_std²); ``None`` = Kaiming-normal for LeakyReLU.
        identity_init: start D_0 at zero so that a fresh model is the identity; ``False``
            keeps a random D_0 (a non-trivial random model, for tests).
        out_scale: constant factor on the correction (1 = the paper). The correction a
            bandwidth-extension model has to produce lies 30-40 dB below the signal, while the
            BN-normalised features feeding D_0 are of unit scale; Adam moves every weight of
            D_0 by about the learning rate per step whatever the gradient, so with
            ``out_scale = 1`` the first steps add noise far above the target correction.
            A factor below 1 scales that step down for the output only (see the module
            docstring for the measurement behind the fast variants' 0.03).
    """

    name = "arunet"

    @capture_config
    def __init__(
        self,
        channels: int = 2,
        widths: Sequence[int] = (128, 256, 512, 512, 512),
        kernels: Sequence[int] = (65, 33, 17, 9, 9),
        res_convs: int = 1,
        batchnorm: bool = True,
        dropout: float = 0.5,
        negative_slope: float = 0.2,
        front: str = "none",
        bands: int = 1,
        init_std: float | None = 0.02,
        identity_init: bool = True,
        out_scale: float = 1.0,
    ) -> None:
        widths, kernels = tuple(widths), tuple(kernels)
        if len(widths) != len(kernels) or not widths:
            raise ValueError("widths and kernels must be non-empty and of equal length")
        if any(k % 2 == 0 for k in kernels):
            raise ValueError("kernel lengths must be odd")
        if front not in FRONTS:
            raise ValueError(f"front must be one of {FRONTS}, got {front!r}")
        if (front == "none") != (bands == 1):
            raise ValueError("bands must be 1 exactly when front is 'none'")
        super().__init__(channels=channels, stride=bands * 2 ** (len(widths) + 1))
        self.widths, self.kernels, self.res_convs = widths, kernels, res_convs
        self.front, self.bands = front, bands
        self.out_scale = out_scale
        self.pqmf = PQMF(bands) if front == "pqmf" else None
        rep = channels * bands  # channels of the signal E_0 sees and D_0 produces

        self.encoders = nn.ModuleList()
        prev = rep
        for width, kernel in zip(widths, kernels, strict=True):
            self.encoders.append(_Encoder(prev, width, kernel, res_convs, batchnorm,
                                          negative_slope))
            prev = width
        self.bottleneck = nn.Sequential(
            _Unit(prev, prev, kernels[-1], stride=2, batchnorm=batchnorm, slope=negative_slope),
            _Unit(prev, 2 * prev, kernels[-1], dropout=dropout, slope=negative_slope),
            Subpixel1d(2),
        )
        self.decoders = nn.ModuleList()
        targets = (rep, *widths[:-1])
        for k in reversed(range(len(widths))):
            self.decoders.append(_Decoder(2 * widths[k], targets[k], kernels[k], res_convs,
                                          dropout, negative_slope, linear=k == 0))

        if init_std is None:
            for m in self.modules():
                if isinstance(m, nn.Conv1d):
                    nn.init.kaiming_normal_(m.weight, a=negative_slope, nonlinearity="leaky_relu")
                    if m.bias is not None:
                        nn.init.zeros_(m.bias)
        else:
            normal_init_(self, init_std)
        if identity_init:
            last = self.decoders[-1]
            for m in last.modules():
                if isinstance(m, nn.Conv1d):
                    zero_init_(m)

    def _analysis(self, x: Tensor) -> Tensor:
        if self.pqmf is not None:
            return self.pqmf.analysis(x)
        if self.front == "polyphase":
            return space_to_depth(x, self.bands)
        return x

    def _synthesis(self, y: Tensor) -> Tensor:
        if self.pqmf is not None:
            return self.pqmf.synthesis(y)
        if self.front == "polyphase":
            return subpixel(y, self.bands)
        return y

    def _forward(self, x: Tensor) -> Tensor:
        y = self._analysis(x)
        skips = []
        for encoder in self.encoders:
            y = encoder(y)
            skips.append(y)
        y = self.bottleneck(y)
        for decoder, skip in zip(self.decoders, reversed(skips), strict=True):
            y = decoder(y, skip)
        if self.out_scale != 1.0:
            y = y * self.out_scale
        return self._synthesis(y)

    def _receptive_field(self) -> int:
        rf = ReceptiveField()
        if self.pqmf is not None:
            rf.conv(self.pqmf.taps + 1, stride=self.bands)
        elif self.front == "polyphase":
            rf.conv(self.bands, stride=self.bands)
        for kernel in self.kernels:
            rf.conv(kernel, stride=2)
            for _ in range(self.res_convs):
                rf.conv(kernel)
        rf.conv(self.kernels[-1], stride=2).conv(self.kernels[-1]).shuffle(2)
        for kernel in reversed(self.kernels):
            rf.conv(kernel)
            for _ in range(self.res_convs):
                rf.conv(kernel)
            rf.shuffle(2)
        if self.pqmf is not None:
            rf.transposed(self.pqmf.taps + 1, self.bands)
        elif self.front == "polyphase":
            rf.shuffle(self.bands)
        return rf.samples()
