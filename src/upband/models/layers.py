"""Building blocks shared by the waveform networks.

* :class:`Subpixel1d` / :class:`SpaceToDepth1d` -- the 1-D pixel shuffle of Shi et al. (2016) and
  its inverse (a polyphase split), in the TensorFlow ``batch_to_space`` channel order used by the
  released code of Kuleshov et al. and Sulun & Davies (docs/readings/kuleshov.md,
  docs/readings/sulun-davies.md).
* :class:`PQMF` -- a cosine-modulated pseudo-QMF filter bank (near-perfect-reconstruction
  sub-band analysis and synthesis with fixed filters).
* :class:`ReceptiveField` -- exact receptive-field arithmetic for stacks of (transposed)
  convolutions and pixel shuffles.
* :func:`conv_macs` -- multiply-accumulate counting with forward hooks.
* :func:`normal_init_` / :func:`zero_init_` -- the initialisations the models use.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "PQMF",
    "ReceptiveField",
    "SpaceToDepth1d",
    "Subpixel1d",
    "conv_macs",
    "normal_init_",
    "space_to_depth",
    "subpixel",
    "zero_init_",
]


def subpixel(x: Tensor, factor: int) -> Tensor:
    """1-D pixel shuffle: ``[B, C*r, W] -> [B, C, W*r]``.

    Channel order of TensorFlow's ``batch_to_space`` (docs/readings/sulun-davies.md):
    ``out[:, c, w*r + k] = x[:, k*C + c, w]``, i.e. the *k*-th block of ``C`` channels becomes the
    *k*-th phase of every output period. (``torch.nn.PixelShuffle`` instead reads channel
    ``c*r + k``; both are equally expressive when training from scratch.)
    """
    batch, chans, width = x.shape
    if chans % factor:
        raise ValueError(f"subpixel: {chans} channels are not divisible by {factor}")
    out = x.reshape(batch, factor, chans // factor, width).permute(0, 2, 3, 1)
    return out.reshape(batch, chans // factor, width * factor)


def space_to_depth(x: Tensor, factor: int) -> Tensor:
    """Inverse of :func:`subpixel`: ``[B, C, W*r] -> [B, C*r, W]`` (a polyphase split).

    ``out[:, k*C + c, w] = x[:, c, w*r + k]``. The length must be a multiple of ``factor``.
    """
    batch, chans, length = x.shape
    if length % factor:
        raise ValueError(f"space_to_depth: length {length} is not a multiple of {factor}")
    out = x.reshape(batch, chans, length // factor, factor).permute(0, 3, 1, 2)
    return out.reshape(batch, chans * factor, length // factor)


class Subpixel1d(nn.Module):
    """Module form of :func:`subpixel` (no parameters)."""

    def __init__(self, factor: int = 2) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x: Tensor) -> Tensor:
        return subpixel(x, self.factor)

    def extra_repr(self) -> str:
        return f"factor={self.factor}"


class SpaceToDepth1d(nn.Module):
    """Module form of :func:`space_to_depth` (no parameters)."""

    def __init__(self, factor: int = 2) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x: Tensor) -> Tensor:
        return space_to_depth(x, self.factor)

    def extra_repr(self) -> str:
        return f"factor={self.factor}"


# --------------------------------------------------------------------------------------------
# PQMF


def _kaiser_prototype(taps: int, cutoff: float, beta: float) -> np.ndarray:
    """Kaiser-windowed ideal low-pass of ``taps + 1`` coefficients, cutoff in units of pi."""
    n = np.arange(taps + 1, dtype=np.float64) - taps / 2
    ideal = cutoff * np.sinc(cutoff * n)
    return ideal * np.kaiser(taps + 1, beta)


def _prototype_error(taps: int, bands: int, cutoff: float, beta: float) -> float:
    """Deviation from the power-complementary condition of a PQMF prototype.

    For near-perfect reconstruction the autocorrelation ``h * h`` must vanish at every non-zero
    multiple of ``2 * bands`` (Lin & Vaidyanathan's Kaiser design criterion).
    """
    h = _kaiser_prototype(taps, cutoff, beta)
    auto = np.convolve(h, h[::-1])
    centre = taps
    lags = np.arange(2 * bands, taps + 1, 2 * bands)
    return float(np.max(np.abs(auto[centre + lags]))) if lags.size else 0.0


def pqmf_cutoff(taps: int, bands: int, beta: float) -> float:
    """Prototype cutoff (in units of pi) that best meets the power-complementary condition.

    A golden-section search over ``(0.25 / bands, 0.75 / bands)``, around the nominal
    ``1 / (2 bands)``; deterministic, a few ms.
    """
    lo, hi = 0.25 / bands, 0.75 / bands
    ratio = (math.sqrt(5.0) - 1.0) / 2.0
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = _prototype_error(taps, bands, a, beta), _prototype_error(taps, bands, b, beta)
    for _ in range(80):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = _prototype_error(taps, bands, a, beta)
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = _prototype_error(taps, bands, b, beta)
    return (lo + hi) / 2


class PQMF(nn.Module):
    """Cosine-modulated pseudo-QMF bank: ``bands`` critically sampled sub-bands of equal width.

    ``analysis``: ``[B, C, T] -> [B, C*bands, T/bands]`` with sub-band ``k`` of channel ``c`` at
    index ``c*bands + k`` (band 0 is the lowest). ``synthesis`` is its near-inverse
    (reconstruction error about -60 dB with the defaults, zero delay: the prototype is
    linear-phase and both stages are centred). ``T`` must be a multiple of ``bands``.

    The prototype is a Kaiser-windowed sinc of ``taps + 1`` coefficients whose cutoff is searched
    so that its autocorrelation vanishes at multiples of ``2*bands`` (Lin & Vaidyanathan 1998);
    the modulation is the standard one, ``h_k[n] = 2 h[n] cos((2k+1) pi/(2M) (n - taps/2) +
    (-1)^k pi/4)``, and the synthesis filters ``g_k`` use the opposite phase term. The filters
    are fixed (non-persistent buffers): they are rebuilt from ``bands, taps, beta`` and not saved.

    Both stages run in polyphase form -- a dense ``bands -> bands`` convolution of
    ``taps/bands + 1`` taps at the decimated rate -- which computes exactly the strided
    convolution ``y_k[m] = sum_n x[m*bands + n - taps/2] h_k[n]`` (and its transpose for the
    synthesis) but is about 20x faster on CPU than a 1-input-channel strided convolution.
    """

    analysis_weight: Tensor
    synthesis_weight: Tensor

    def __init__(self, bands: int = 4, taps: int | None = None, beta: float = 9.0) -> None:
        super().__init__()
        if bands < 2:
            raise ValueError("PQMF needs at least 2 bands")
        taps = 16 * bands if taps is None else taps
        if taps % (2 * bands):
            raise ValueError("PQMF taps must be a multiple of 2 * bands")
        self.bands, self.taps, self.beta = bands, taps, beta
        self.cutoff = pqmf_cutoff(taps, bands, beta)
        proto = _kaiser_prototype(taps, self.cutoff, beta)
        n = np.arange(taps + 1, dtype=np.float64) - taps / 2
        k = np.arange(bands, dtype=np.float64)[:, None]
        phase = (2 * k + 1) * math.pi / (2 * bands) * n[None, :]
        sign = (-1.0) ** k * math.pi / 4
        #: ``[bands, taps + 1]`` analysis / synthesis impulse responses (float64, for reference).
        self.analysis_impulse = 2 * proto * np.cos(phase + sign)
        self.synthesis_impulse = 2 * proto * np.cos(phase - sign)
        phases = taps // bands + 1  # polyphase taps Q; taps / 2 = (Q - 1) / 2 * bands
        self._pad = taps // (2 * bands)
        padded = np.zeros((bands, phases * bands))
        padded[:, : taps + 1] = self.analysis_impulse
        # analysis weight [band k, phase r, q] = h_k[q * bands + r]
        analysis = padded.reshape(bands, phases, bands).transpose(0, 2, 1)
        # synthesis = transposed strided conv with the time-reversed g (x bands for the energy
        # lost by decimation); polyphase weight [phase r, band k, q] = w_k[(Q - 1 - q) bands + r]
        padded = np.zeros((bands, phases * bands))
        padded[:, : taps + 1] = self.synthesis_impulse[:, ::-1] * bands
        synthesis = padded.reshape(bands, phases, bands)[:, ::-1, :].transpose(2, 0, 1)
        self.register_buffer("analysis_weight", torch.tensor(analysis.copy(), dtype=torch.float32),
                             persistent=False)
        self.register_buffer("synthesis_weight",
                             torch.tensor(synthesis.copy(), dtype=torch.float32),
                             persistent=False)

    def analysis(self, x: Tensor) -> Tensor:
        """``[B, C, T] -> [B, C*bands, T/bands]``."""
        batch, chans, length = x.shape
        if length % self.bands:
            raise ValueError(f"PQMF: length {length} is not a multiple of {self.bands}")
        frames = length // self.bands
        poly = x.reshape(batch * chans, frames, self.bands).transpose(1, 2)
        y = F.conv1d(poly, self.analysis_weight.to(x.dtype), padding=self._pad)
        return y.reshape(batch, chans * self.bands, frames)

    def synthesis(self, y: Tensor) -> Tensor:
        """``[B, C*bands, W] -> [B, C, W*bands]``."""
        batch, chans_bands, width = y.shape
        chans = chans_bands // self.bands
        phases = F.conv1d(y.reshape(batch * chans, self.bands, width),
                          self.synthesis_weight.to(y.dtype), padding=self._pad)
        return subpixel(phases, self.bands).reshape(batch, chans, width * self.bands)

    def forward(self, x: Tensor) -> Tensor:
        """Analysis followed by synthesis (a near-identity; for tests)."""
        return self.synthesis(self.analysis(x))

    def extra_repr(self) -> str:
        return f"bands={self.bands}, taps={self.taps}, beta={self.beta}, cutoff={self.cutoff:.5f}"


# --------------------------------------------------------------------------------------------
# receptive field, MACs, init


class ReceptiveField:
    """Receptive field of one path through a network, in input samples.

    Record the layers of the deepest path (the one through the bottleneck) in forward order;
    :meth:`samples` then walks them backwards from one output sample, tracking how many
    consecutive positions of each intermediate signal can influence it:

    * a convolution (kernel ``k``, stride ``s``, dilation ``d``) maps ``w`` output positions to
      ``s (w - 1) + d (k - 1) + 1`` input positions;
    * a pixel shuffle by ``r`` maps ``w`` fine positions to at most ``ceil((w - 1) / r) + 1``
      coarse ones -- the exact count depends on where the interval starts modulo ``r``, which is
      why a U-Net's receptive field varies with the output position;
    * a transposed convolution (kernel ``k``, stride ``s``) maps ``w`` outputs to at most
      ``floor((w + k - 2) / s) + 1`` inputs.

    Taking the maximum at every step gives the maximum over output positions (an upper bound
    in general, attained for the networks here: the tests compare it with a gradient probe).
    """

    def __init__(self) -> None:
        self._layers: list[tuple[str, int, int, int]] = []

    def conv(self, kernel: int, stride: int = 1, dilation: int = 1) -> ReceptiveField:
        """A convolution (``stride`` > 1 decimates)."""
        self._layers.append(("conv", kernel, stride, dilation))
        return self

    def transposed(self, kernel: int, stride: int) -> ReceptiveField:
        """A transposed convolution that upsamples by ``stride``."""
        self._layers.append(("transposed", kernel, stride, 1))
        return self

    def shuffle(self, factor: int) -> ReceptiveField:
        """A pixel shuffle by ``factor`` (each output sample comes from one input position)."""
        self._layers.append(("shuffle", 1, factor, 1))
        return self

    def samples(self) -> int:
        """The receptive field in input samples (maximum over output positions)."""
        width = 1
        for kind, kernel, stride, dilation in reversed(self._layers):
            if kind == "conv":
                width = stride * (width - 1) + dilation * (kernel - 1) + 1
            elif kind == "shuffle":
                width = -(-(width - 1) // stride) + 1
            else:
                width = (width + kernel - 2) // stride + 1
        return width


_MAC_LAYERS = (nn.Conv1d, nn.ConvTranspose1d, nn.Linear)


@contextmanager
def _mac_hooks(model: nn.Module, total: list[int]) -> Iterator[None]:
    def hook(module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
        if isinstance(module, nn.Conv1d):
            per_output = module.in_channels // module.groups * module.kernel_size[0]
            total[0] += output.numel() * per_output
        elif isinstance(module, nn.ConvTranspose1d):
            per_input = module.out_channels // module.groups * module.kernel_size[0]
            total[0] += inputs[0].numel() * per_input
        elif isinstance(module, nn.Linear):
            total[0] += output.numel() * module.in_features

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, _MAC_LAYERS)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def conv_macs(model: nn.Module, example: Tensor) -> int:
    """Multiply-accumulates of every Conv1d / ConvTranspose1d / Linear in one forward pass.

    Counted with forward hooks from the actual tensor shapes, so padding to ``valid_length`` and
    channel folding are included. Fixed filters applied with ``torch.nn.functional`` (the PQMF
    bank) and element-wise work (norms, activations, shuffles) are not counted. Works on the
    ``meta`` device, where no arithmetic is done.
    """
    total = [0]
    with _mac_hooks(model, total), torch.no_grad():
        model(example)
    return total[0]


def normal_init_(module: nn.Module, std: float) -> None:
    """Draw the weights of every conv / linear layer from N(0, std²) (biases keep their init).

    This is ``weights_init_normal`` of the released deep-music-enhancer code (std 0.02).
    """
    for m in module.modules():
        if isinstance(m, _MAC_LAYERS):
            nn.init.normal_(m.weight, 0.0, std)


def zero_init_(layer: nn.Module) -> None:
    """Set the weight and bias of a layer to zero (an additive model then starts as identity)."""
    for p in layer.parameters(recurse=False):
        nn.init.zeros_(p)
