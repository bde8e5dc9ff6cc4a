"""``lattner``: the generator of Lattner & Nistal's stochastic MP3 restorer (Electronics 2021,
§3.1, Table 1), and the layers its critic shares (:mod:`upband.models.lattner_critic`).

**What it computes** on the signed-root complex spectrogram ``s`` of an MP3
(:mod:`upband.models.signed_sqrt`: STFT 2 048 / 512, ``[2, 1024, T]``) and a noise vector
``z ~ N(0, I)`` of ``noise_maps`` values (Table 1's default sizes in brackets)::

    Conv1-3      3×3, dilation 1 / 2 / 4, padded         2 -> 18 -> 38 -> 38   [38, 1024, T]
    Conv4        all 1 024 bins at once, per frame       38·1024 -> 4 096      [4096, T]
    Reshape1                                                                   [128, 32, T]
    ReMap        1×1                                     128 -> 256
    Conv5        3×3, no time padding                    256 -> 256            [256, 32, T-2]
    z            tiled over rows and frames, concatenated                      [320, 32, T-2]
    Conv6-14     3×3 self-gated (eq. 2), dilations 2, 4, 8, 16, 1, 2, 4, 8, 16,
                 no time padding                         320|128 -> 2·128 -> 128
    Reshape2                                                                   [4096, T-124]
    DeConv4-1    the mirror of Conv4-1                   4 096 -> 38·1024, 38 -> 38 -> 18 -> 2

PReLU after every layer (channel-wise) but the output, He initialisation (PReLU's initial slope
0.25) as ProGAN's equalized learning rate (:func:`he_init_`: weights stored ``N(0, 1)``, scaled
by He's constant when a layer runs; with Adam at the paper's 10⁻³ a static He initialisation
moves Conv4's weights, of standard deviation 0.007, by a seventh of their scale per step).
Table 1 also lists a PReLU after DeConv1, the output layer; the output is signed (signed roots
of real and imaginary parts, or a correction to them), which a PReLU of slope 0.25 makes at a
quarter of its positive scale until the slope learns 1: the output is linear here, as the
critic's Conv16 is in Table 1 (docs/readings/lattner-nistal.md).
Self-gating (eq. 2): a layer computes twice the maps it keeps, ``PReLU(first half) ·
sigmoid(second half)``. Conv4 is a 1 024×1 kernel without frequency padding, i.e. one linear
map of each whole frame; it is written as a 1×1 ``Conv1d`` over the ``38 · 1024`` values of a
frame (and DeConv4 as its transpose), which is the same operation. DeConv3-1 have stride 1, and
a transposed convolution of stride 1 is a convolution with the kernel flipped: they are
``Conv2d`` layers (the same parameters; PyTorch's dilated ``ConvTranspose2d`` takes a slow path
on the CPU: a narrow model took twice as long over 30 s of stereo).

**Time**: Conv5-14 are not padded in time (§3.1.1: the authors found zero-padded training hurt
on long inputs), so ``T`` input frames give ``T - 2·shrink`` output frames, ``shrink = 1 +
sum(dilations)`` = 62: 336 -> 212 (Table 1). :meth:`LattnerGenerator.restore` is that
training-time network; as a :class:`~upband.models.base.WaveModel` (``upband enhance``) the
spectrogram is first extended by ``shrink`` frames of silence on each side, so every frame gets
an output (the chunker gives a chunk real context on both sides; only a song's first and last
0.9 s see the silence, as they would at the start of the file).

**Noise** (stochastic model, ``noise_maps > 0``): the 64 maps are inferred from Table 1's
256 -> 320 jump; ``z`` is one vector per signal, tiled over rows *and frames* as the paper
says, so it sets the character of a whole restoration (§4.1.1). As a ``WaveModel`` the noise
is ``z = N(0, I)`` drawn from a generator seeded with :attr:`LattnerGenerator.seed`
(``upband enhance --seed``): the same for every channel and every chunk of a stream, so the
same seed gives the same output bit for bit and a chunked run equals one pass (no seams).
``noise_maps = 0`` is the paper's deterministic model (no ``z``). ``temperature`` scales that
``z`` (the truncation trick of large GANs: below 1 a draw lies nearer the generator's typical
restoration, with less variety between seeds; 0 gives one output for every seed); training
draws ``z ~ N(0, I)`` whatever it is, so it is a choice of the shipped model's use, not of its
weights.

**Residual** (``residual=True``, upband's default): the output is the input spectrogram plus
the network's, and DeConv1 starts at zero, so a fresh model is the identity like every upband
model (the paper initialises every layer with He's scheme and does not say whether G adds its
input; ``residual=False`` is Table 1 taken literally). The Nyquist bin is passed through.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from upband.models.base import WaveModel, capture_config
from upband.models.signed_sqrt import analyse, to_complex

__all__ = ["PRELU_INIT", "EqConv1d", "EqConv2d", "FrontConvs", "GatedConv", "LattnerGenerator",
           "he_init_"]

#: PReLU's initial negative slope (PyTorch's default, He et al.'s 0.25); He initialisation
#: uses it in its gain.
PRELU_INIT = 0.25
#: Dilations of Conv1-3 (Table 1).
FRONT_DILATIONS = (1, 2, 4)


class EqConv1d(nn.Conv1d):
    """A ``Conv1d`` whose weight is multiplied by :attr:`gain` when it runs (see
    :func:`he_init_`; ``gain = 1``: a plain convolution)."""

    gain: float = 1.0

    def forward(self, x: Tensor) -> Tensor:
        return self._conv_forward(x, self.weight * self.gain if self.gain != 1.0 else
                                  self.weight, self.bias)


class EqConv2d(nn.Conv2d):
    """A ``Conv2d`` whose weight is multiplied by :attr:`gain` when it runs (see
    :func:`he_init_`)."""

    gain: float = 1.0

    def forward(self, x: Tensor) -> Tensor:
        return self._conv_forward(x, self.weight * self.gain if self.gain != 1.0 else
                                  self.weight, self.bias)


def he_init_(module: nn.Module, equalized: bool = True) -> None:
    """He et al.'s initialisation of every conv of ``module`` (normal, fan-in, the gain of a
    PReLU of slope :data:`PRELU_INIT`: ``std = √(2 / ((1 + a²) fan_in))``), biases zero.

    ``equalized`` (ProGAN's "equalized learning rate", the form He's initialisation takes in the
    WGAN-GP stack the paper trains with): the weight is stored as ``N(0, 1)`` and multiplied by
    ``std`` when the layer runs, so that Adam's step is the same fraction of every layer's
    weights; otherwise the weight is drawn with ``std`` once.
    """
    for m in module.modules():
        if isinstance(m, EqConv1d | EqConv2d):
            std = math.sqrt(2.0 / (1.0 + PRELU_INIT ** 2) / m.weight[0].numel())
            nn.init.normal_(m.weight, 0.0, 1.0 if equalized else std)
            m.gain = std if equalized else 1.0
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def _conv(cin: int, cout: int, kernel: int, dilation: int, pad_time: bool) -> EqConv2d:
    """A ``kernel``² conv padded in frequency (rows) and, with ``pad_time``, in time."""
    pad = dilation * (kernel - 1) // 2
    return EqConv2d(cin, cout, kernel, dilation=dilation, padding=(pad, pad if pad_time else 0))


class GatedConv(nn.Module):
    """Eq. 2: ``PReLU(x * W + a) · σ(x * V + b)`` with 3×3 kernels, ``maps`` output maps.

    ``pad_time=False``: no time padding (``T`` frames -> ``T - 2·dilation``). ``skip``: add
    the input (the critic's skip connections; needs ``cin == maps``).
    """

    def __init__(self, cin: int, maps: int, dilation: int, *, pad_time: bool,
                 skip: bool = False) -> None:
        super().__init__()
        if skip and cin != maps:
            raise ValueError(f"a skip connection needs as many input maps as output ({cin} vs "
                             f"{maps})")
        self.conv = _conv(cin, 2 * maps, 3, dilation, pad_time)
        self.act = nn.PReLU(maps, init=PRELU_INIT)
        self.skip = skip

    def forward(self, x: Tensor) -> Tensor:
        a, b = self.conv(x).chunk(2, dim=1)
        y = self.act(a) * torch.sigmoid(b)
        return x + y if self.skip else y


class FrontConvs(nn.Module):
    """Conv1-4, Reshape1, ReMap and Conv5 of Table 1: ``[N, in_maps, bins, T]`` ->
    ``[N, 2·agg_maps, agg_rows, T']`` (``T' = T - 2`` without time padding in Conv5)."""

    def __init__(self, in_maps: int, bins: int, front: Sequence[int], agg_maps: int,
                 agg_rows: int, *, pad_time: bool) -> None:
        super().__init__()
        if len(front) != len(FRONT_DILATIONS):
            raise ValueError(f"front gives the maps of Conv1-3: 3 numbers, got {list(front)}")
        maps = [in_maps, *front]
        self.convs = nn.ModuleList(_conv(a, b, 3, d, True) for a, b, d in
                                   zip(maps[:-1], maps[1:], FRONT_DILATIONS, strict=True))
        self.acts = nn.ModuleList(nn.PReLU(m, init=PRELU_INIT) for m in front)
        self.aggregate = EqConv1d(front[-1] * bins, agg_maps * agg_rows, 1)  # Conv4
        self.aggregate_act = nn.PReLU(agg_maps * agg_rows, init=PRELU_INIT)
        self.remap = EqConv2d(agg_maps, 2 * agg_maps, 1)
        self.remap_act = nn.PReLU(2 * agg_maps, init=PRELU_INIT)
        self.conv5 = _conv(2 * agg_maps, 2 * agg_maps, 3, 1, pad_time)
        self.conv5_act = nn.PReLU(2 * agg_maps, init=PRELU_INIT)
        self.agg_maps, self.agg_rows = agg_maps, agg_rows

    def forward(self, x: Tensor) -> Tensor:
        for conv, act in zip(self.convs, self.acts, strict=True):
            x = act(conv(x))
        n, _, _, frames = x.shape
        h = self.aggregate_act(self.aggregate(x.reshape(n, -1, frames)))
        h = h.reshape(n, self.agg_maps, self.agg_rows, frames)  # Reshape1
        return self.conv5_act(self.conv5(self.remap_act(self.remap(h))))


class LattnerGenerator(WaveModel):
    """Lattner & Nistal's generator G(y, z) (Table 1); see the module docstring.

    Args:
        n_fft: STFT size (the network sees ``n_fft / 2`` bins); hop: STFT hop.
        front: maps of Conv1-3 (DeConv3-1 mirror them).
        agg_maps, agg_rows: Conv4's maps are reshaped into ``agg_maps`` maps of ``agg_rows``
            rows (128 × 32 = 4 096); ReMap and Conv5 have ``2 · agg_maps``, the gated layers
            compute ``2 · agg_maps`` and keep ``agg_maps``.
        noise_maps: maps of tiled noise after Conv5 (0: the deterministic model).
        dilations: of the self-gated Conv6-14.
        residual: add the input spectrogram to the output (DeConv1 starts at zero).
        equalized: He's initialisation as an equalized learning rate (:func:`he_init_`).
        temperature: scale of the noise ``z`` of :meth:`noise` (module doc; 1: the paper's).
    """

    name = "lattner"

    @capture_config
    def __init__(self, n_fft: int = 2048, hop: int = 512, front: Sequence[int] = (18, 38, 38),
                 agg_maps: int = 128, agg_rows: int = 32, noise_maps: int = 64,
                 dilations: Sequence[int] = (2, 4, 8, 16, 1, 2, 4, 8, 16),
                 residual: bool = True, equalized: bool = True, temperature: float = 1.0
                 ) -> None:
        if n_fft % hop or n_fft < 2 * hop:
            raise ValueError(f"n_fft ({n_fft}) must be a multiple of hop ({hop}), at least 2x")
        if noise_maps < 0 or not dilations or min(dilations) < 1:
            raise ValueError("noise_maps must be >= 0 and dilations positive")
        if not (math.isfinite(temperature) and temperature >= 0):
            raise ValueError(f"temperature must be a finite number >= 0, got {temperature}")
        super().__init__(channels=1, stride=hop)
        self.n_fft, self.hop, self.bins = n_fft, hop, n_fft // 2
        self.front_maps, self.dilations = tuple(front), tuple(dilations)
        self.agg_maps, self.agg_rows, self.noise_maps = agg_maps, agg_rows, noise_maps
        self.residual, self.equalized, self.temperature = residual, equalized, temperature
        #: Whether the output depends on the noise (``upband evaluate --best-of`` draws it).
        self.stochastic = noise_maps > 0
        #: Seed of the noise of :meth:`forward` (``upband enhance --seed``).
        self.seed = 0
        #: Frames lost on each side by Conv5-14 without time padding (62 in Table 1).
        self.shrink = 1 + sum(self.dilations)
        self.front = FrontConvs(2, self.bins, front, agg_maps, agg_rows, pad_time=False)
        self.gated = nn.ModuleList(
            GatedConv((2 * agg_maps + noise_maps) if i == 0 else agg_maps, agg_maps, d,
                      pad_time=False) for i, d in enumerate(self.dilations))
        last = front[-1]
        self.deconv4 = EqConv1d(agg_maps * agg_rows, last * self.bins, 1)
        self.deconv4_act = nn.PReLU(last, init=PRELU_INIT)
        maps = [*reversed(front), 2]
        self.deconvs = nn.ModuleList(  # stride 1: a transposed conv is a conv (kernel flipped)
            _conv(a, b, 3, d, True)
            for a, b, d in zip(maps[:-1], maps[1:], reversed(FRONT_DILATIONS), strict=True))
        self.deconv_acts = nn.ModuleList([*(nn.PReLU(m, init=PRELU_INIT) for m in maps[1:-1]),
                                          nn.Identity()])
        he_init_(self, equalized)
        if residual:  # a fresh model is the identity
            for p in self.deconvs[-1].parameters():
                nn.init.zeros_(p)

    # ------------------------------------------------------------------ the network

    def noise(self, n: int, seed: int | None = None, device: torch.device | None = None
              ) -> Tensor:
        """``[n, noise_maps]``: the same ``z ~ N(0, I)`` × :attr:`temperature` in every row,
        drawn from a generator seeded with ``seed`` (default :attr:`seed`)."""
        g = torch.Generator().manual_seed(self.seed if seed is None else seed)
        z = torch.randn(self.noise_maps, generator=g) * self.temperature
        return z.to(device or self.deconv4.weight.device).expand(n, -1)

    def restore(self, s: Tensor, z: Tensor | None = None) -> Tensor:
        """G(y, z) as trained: ``s`` ``[N, 2, bins, T]`` (signed-root spectrogram) and ``z``
        ``[N, noise_maps]`` (None for the deterministic model) -> ``[N, 2, bins, T - 2·shrink]``,
        the restoration of frames ``shrink .. T - shrink - 1``."""
        if (z is None) == self.stochastic:
            raise ValueError("the stochastic model needs z [N, noise_maps], the "
                             "deterministic one none")
        frames = s.shape[-1]
        if frames <= 2 * self.shrink:
            raise ValueError(f"G needs more than {2 * self.shrink} frames, got {frames}")
        h = self.front(s)
        if z is not None:
            tiled = z[:, :, None, None].to(h.dtype).expand(-1, -1, h.shape[2], h.shape[3])
            h = torch.cat([h, tiled], dim=1)
        for layer in self.gated:
            h = layer(h)
        n, kept = h.shape[0], h.shape[-1]
        h = self.deconv4(h.reshape(n, -1, kept)).reshape(n, self.front_maps[-1], self.bins, kept)
        h = self.deconv4_act(h)  # Reshape2, DeConv4
        for deconv, act in zip(self.deconvs, self.deconv_acts, strict=True):
            h = act(deconv(h))
        if self.residual:
            h = h + s[..., self.shrink:frames - self.shrink]
        return h

    def spectrogram(self, x: Tensor) -> Tensor:
        """The signed-root spectrogram ``[N, 2, bins, 1 + T // hop]`` of waveforms ``[N, T]``."""
        return analyse(x, self.n_fft, self.hop)[0]

    # ------------------------------------------------------------------ as a WaveModel

    def _forward(self, x: Tensor) -> Tensor:
        n, c, length = x.shape
        s, _ = analyse(x.reshape(n * c, length), self.n_fft, self.hop)
        padded = F.pad(s, (self.shrink, self.shrink))  # silence around the signal
        z = self.noise(n * c, device=x.device) if self.stochastic else None
        out = self.restore(padded, z)
        if x.device.type == "meta":  # describe_model counts MACs on meta tensors: no ISTFT there
            return torch.zeros_like(x)
        delta = F.pad(to_complex(out) - to_complex(s), (0, 0, 0, 1))  # Nyquist bin: unchanged
        window = torch.hann_window(self.n_fft, device=x.device)
        y = torch.istft(delta, self.n_fft, self.hop, window=window, center=True, length=length)
        return y.reshape(n, c, length).to(x.dtype)

    def _frames_each_side(self) -> int:
        """Input frames that reach an output frame on each side: Conv1-3, Conv5-14, DeConv3-1."""
        return 2 * sum(FRONT_DILATIONS) + self.shrink

    def _receptive_field(self) -> int:
        # an output sample comes from the frames whose windows cover it (n_fft / hop / 2 on
        # each side), each of which sees _frames_each_side() frames on each side
        half = self._frames_each_side() + math.ceil(self.n_fft / self.hop / 2)
        return 2 * half * self.hop + self.n_fft
