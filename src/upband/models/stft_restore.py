"""``stft-restore``: a frame-domain, cutoff-aware restorer of the band above a known cutoff.

Why: much of what a gentle low-pass removes is still in the input, attenuated, just above the
cutoff, and undoing that gains SNR; where nothing is left (codecs, steep cuts, low rates) the
job is a band of the right *level* in every frame, which a few band energies per frame
describe. Both are predictions at frame rate, not sample by sample, so the network runs on STFT
frames (as AP-BWE and Vocos do, ``docs/readings/peers.md``) and is cheap on a CPU.

**What it computes** for one channel ``x`` at :attr:`sample_rate` with the cutoff ``f_c`` (Hz;
given by the caller -- the product passes the detector's -- or estimated, see
:func:`estimate_cutoff`), ``X = STFT(x)`` (Hann window ``n_fft``, hop ``hop``), ``k_c`` the first
bin at or above ``f_c``::

    Y[k, t] = X[k, t]                                    for k <  k_c   (untouched)
    Y[k, t] = g[k, t] X[k, t] + h[k, t] P[k, t]          for k >= k_c
    y = ISTFT(Y)

* ``g = exp(G tanh(a / G))`` with ``G = ln(10^(max_gain_db/20))``: a gain on what the input still
  holds above the cutoff (the attenuated band of a gentle filter; its noise where nothing is
  left, which the network learns to turn down), at most ``max_gain_db``;
* ``P`` is a *patch*: the top octave below the cutoff copied upwards, repeatedly (spectral band
  replication's "copy-up"). The copy shifts bins by multiples of ``n_fft / hop`` so that a
  sinusoid's phase advances from frame to frame as it should at its new bin, and the patch stays
  coherent after overlap-add. ``h`` (real, either sign) is its gain: the band's level and
  envelope in every frame come from the network, its fine structure (tones, transients) from the
  music itself. With ``patch_peak_db`` set, no bin of the patch stands more than that many dB
  above the level of its ``_CAP_BINS`` neighbours in its frame (:func:`cap_tones`, phases kept;
  spectral band replication's "inverse filtering" does the like): a note's harmonics copied
  upwards land where the note has none, and a strong one stands out of the restored band as a
  whistle (``tests/test_enhance_artefacts.py``);
* with ``smooth_bins > 1`` both gains are averaged over that many neighbouring bins
  (:func:`average_bins`) before use, so that the network sets the band's level and envelope,
  not a fine structure of its own: per-bin gains let a network raise a few bins of the patch
  at a note's onset into a whistle that stands out of the restored band's long-term spectrum
  (``tests/test_enhance_artefacts.py``; ``docs/results/envelope/README.md``);
* ``a`` and ``h`` come from a ConvNeXt-style stack of 1-D convolutions over frames, fed with the
  log magnitudes of all bins relative to a reference level (the mean log power below the cutoff,
  averaged over ``_LEVEL_FRAMES`` frames: a quiet passage and a loud one look alike, yet a fade
  is still a fade), that reference itself, and a mask of the bins above the cutoff. Every
  statistic is local in time, so a chunk sees what one pass sees.

**Identity at init**: the output layer starts at zero, so ``g = 1``, ``h = 0`` and ``y`` equals
``x`` (up to the STFT round trip, ~1e-7). **Do no harm** below the cutoff holds by
construction (the pipeline's merge keeps the input there anyway).

**Precision**: at inference on a CPU that multiplies bfloat16 natively (:func:`native_bf16`)
the ConvNeXt body runs in bfloat16 (:data:`BF16_BODY`), the rest in float32; training is
float32 throughout.

**Chunking**: the stride is ``hop``, so chunk cores start on the frame grid and a chunked run
equals one pass (the receptive field covers the frames that see a sample).

How it compares with ``arunet-s`` at equal CPU time: ``docs/results/bakeoff/README.md``.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from upband.models.base import WaveModel, capture_config

__all__ = ["STFTRestorer", "average_bins", "cap_tones", "estimate_cutoff", "patch_sources"]

#: Power floor of the log-magnitude features.
_FLOOR = 1e-10
#: Frames of the moving average that sets each frame's reference level (0.19 s at 44.1 kHz).
_LEVEL_FRAMES = 33
#: The fallback estimate: the long-term spectrum is "content" down to this far below its
#: median level between 1 and 4 kHz (dB).
_ESTIMATE_DB = 55.0
#: Width (bins) of the neighbourhood whose level caps a patch bin (:func:`cap_tones`).
_CAP_BINS = 15
#: exp(Euler's gamma): the mean of white noise's bin powers over their geometric mean.
_GEOMETRIC_TO_MEAN = math.exp(0.5772156649015329)


def patch_sources(cutoff_bin: Tensor, bins: int, step: int) -> Tensor:
    """Source bin of every bin for the copy-up patch: ``[B, bins]`` long.

    Bins at or above ``cutoff_bin[b]`` take bin ``k - m W`` (the smallest ``m >= 1`` that lands
    in ``[k_c - W, k_c)``) with ``W`` the width of the top octave below the cutoff rounded down
    to a multiple of ``step`` (at least ``step``); bins below the cutoff point to themselves.
    """
    k = torch.arange(bins, device=cutoff_bin.device)
    kc = cutoff_bin.clamp(min=2 * step, max=bins).unsqueeze(1)
    width = ((kc // 2) // step * step).clamp(min=step)
    above = k.unsqueeze(0) >= kc
    source = kc - width + torch.remainder(k.unsqueeze(0) - kc, width)
    return torch.where(above, source, k.unsqueeze(0).expand_as(source)).clamp(0, bins - 1)


def estimate_cutoff(power: Tensor, sample_rate: int) -> Tensor:
    """A coarse cutoff (Hz, ``[B]``) from STFT power ``[B, bins, frames]``, for callers that do
    not give one: the highest frequency whose long-term level is within ``_ESTIMATE_DB`` of the
    median level between 1 and 4 kHz. The product always gives the detector's cutoff
    (``upband.analysis``), which is far more careful."""
    bins = power.shape[1]
    hz = torch.linspace(0, sample_rate / 2, bins, device=power.device)
    level = 10 * torch.log10(power.mean(dim=2) + _FLOOR)
    step = sample_rate / 2 / max(bins - 1, 1)
    lo, hi = min(math.ceil(1000 / step), bins - 1), min(math.floor(4000 / step), bins - 1)
    ref = level[:, lo:max(hi, lo) + 1].median(dim=1).values
    content = level >= (ref - _ESTIMATE_DB).unsqueeze(1)
    last = bins - 1 - torch.flip(content, dims=[1]).int().argmax(dim=1)
    return hz[last]


def average_bins(v: Tensor, width: int) -> Tensor:
    """``v`` ``[..., bins, frames]`` averaged over ``width`` neighbouring bins (odd; fewer at
    the edges)."""
    rows = v.transpose(-1, -2)
    out = F.avg_pool1d(rows.reshape(-1, 1, rows.shape[-1]), width, 1, width // 2,
                       count_include_pad=False)
    return out.reshape(rows.shape).transpose(-1, -2)


def cap_tones(patch: Tensor, peak_db: float | None) -> Tensor:
    """``patch`` ``[..., bins, frames]`` (complex) with no bin's power more than ``peak_db``
    above its frame's level around it, phases kept (None: unchanged). The level is the
    geometric mean of the powers of the ``_CAP_BINS`` bins around it (fewer at the edges)
    times :data:`_GEOMETRIC_TO_MEAN`: white noise's mean power, which one strong line barely
    raises (a line 30 dB over noise in one of 15 bins lifts it by 2 dB)."""
    if peak_db is None:
        return patch
    power = patch.real.square() + patch.imag.square()
    log_level = average_bins(torch.log(power + _FLOOR), _CAP_BINS)
    cap = torch.exp(log_level) * (_GEOMETRIC_TO_MEAN * 10 ** (peak_db / 10))
    return patch * torch.sqrt(torch.clamp(cap / (power + _FLOOR), max=1.0))


#: Whether inference runs the ConvNeXt body in bfloat16 on a CPU that multiplies it natively
#: (:func:`native_bf16`). The body is nearly all of the network's multiplications and half of
#: its time on a CPU; in bfloat16 on such a CPU it takes half as long, and the restored band
#: moves far below what anyone hears or the metrics see (docs/models/upband-default.md).
#: Training, gradients and other CPUs keep float32.
BF16_BODY = True


@functools.cache
def native_bf16() -> bool:
    """Whether this machine's CPU multiplies bfloat16 natively (AVX-512 BF16 or AMX): elsewhere
    PyTorch emulates it, slower than float32."""
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:  # a PyTorch without these probes: float32
        return False


class _Block(nn.Module):
    """ConvNeXt block over frames: depthwise conv, LayerNorm, pointwise MLP, layer scale."""

    def __init__(self, dim: int, kernel: int) -> None:
        super().__init__()
        self.dw = nn.Conv1d(dim, dim, kernel, padding=kernel // 2, groups=dim)
        self.norm = nn.LayerNorm(dim)
        self.up = nn.Linear(dim, 3 * dim)
        self.down = nn.Linear(3 * dim, dim)
        self.scale = nn.Parameter(torch.full((dim,), 0.1))

    def forward(self, x: Tensor) -> Tensor:  # [B, dim, frames]
        h = self.norm(self.dw(x).transpose(1, 2))
        h = self.down(F.gelu(self.up(h))) * self.scale
        return x + h.transpose(1, 2)


class STFTRestorer(WaveModel):
    """Frame-domain restorer of the band above a cutoff; see the module docstring.

    Args:
        channels: channels processed jointly (1: every channel on its own, the default).
        n_fft: STFT size (Hann window of the same length).
        hop: STFT hop; ``n_fft`` must be a multiple of it.
        dim: width of the frame network.
        blocks: ConvNeXt blocks.
        kernel: temporal kernel of each block (frames, odd).
        max_gain_db: the largest gain on what the input holds above the cutoff.
        patch_peak_db: no bin of the patch more than this many dB above its neighbours'
            level (None: no cap); see :func:`cap_tones`.
        smooth_bins: the network's gains ``a`` and ``h`` are averaged over this many
            neighbouring bins (odd; 1: not at all); see the module docstring.
    """

    name = "stft-restore"
    takes_cutoff = True

    @capture_config
    def __init__(self, channels: int = 1, n_fft: int = 1024, hop: int = 256, dim: int = 192,
                 blocks: int = 6, kernel: int = 7, max_gain_db: float = 30.0,
                 patch_peak_db: float | None = None, smooth_bins: int = 1) -> None:
        if n_fft % hop or n_fft < 2 * hop:
            raise ValueError(f"n_fft ({n_fft}) must be a multiple of hop ({hop}), at least 2x")
        if kernel % 2 == 0:
            raise ValueError(f"kernel must be odd, got {kernel}")
        if smooth_bins < 1 or smooth_bins % 2 == 0:
            raise ValueError(f"smooth_bins must be odd and positive, got {smooth_bins}")
        if patch_peak_db is not None and patch_peak_db < 0:
            raise ValueError(f"patch_peak_db must be at least 0, got {patch_peak_db}")
        super().__init__(channels=channels, stride=hop)
        self.n_fft, self.hop, self.kernel, self.blocks_n = n_fft, hop, kernel, blocks
        self.patch_peak_db, self.smooth_bins = patch_peak_db, smooth_bins
        self.bins = n_fft // 2 + 1
        self.log_gain = math.log(10 ** (max_gain_db / 20))
        self.window: Tensor
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        self.inp = nn.Conv1d(2 * self.bins * channels + 1, dim, 1)
        self.body = nn.Sequential(*[_Block(dim, kernel) for _ in range(blocks)])
        self.norm = nn.LayerNorm(dim)
        self.out = nn.Conv1d(dim, 2 * self.bins * channels, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)  # type: ignore[arg-type]  # the conv has a bias

    def _receptive_field(self) -> int:
        frames = self.blocks_n * (self.kernel - 1) + _LEVEL_FRAMES - 1
        return frames * self.hop + 2 * self.n_fft

    def _stft(self, x: Tensor) -> Tensor:
        return torch.stft(x, self.n_fft, self.hop, window=self.window, center=True,
                          pad_mode="constant", return_complex=True)

    def _forward_cutoff(self, x: Tensor, cutoff_hz: Tensor | None) -> Tensor:
        batch, chans, length = x.shape
        spec = self._stft(x.reshape(batch * chans, length).float())  # [B*C, bins, frames]
        frames = spec.shape[-1]
        power = spec.real.square() + spec.imag.square()
        if cutoff_hz is None:
            cutoff_hz = estimate_cutoff(power.reshape(batch, chans, self.bins, frames).mean(1),
                                        self.sample_rate)
        kc = torch.ceil(cutoff_hz.to(x.device).float() / (self.sample_rate / self.n_fft)).long()
        kc = kc.clamp(1, self.bins)  # [B]
        above = (torch.arange(self.bins, device=x.device).unsqueeze(0) >= kc.unsqueeze(1))
        log_power = torch.log(power + _FLOOR).reshape(batch, chans, self.bins, frames)
        below = (~above).float()[:, None, :, None]
        level = (log_power * below).sum((1, 2)) / (below.sum((1, 2)) * chans)  # [B, frames]
        level = F.avg_pool1d(level[:, None], _LEVEL_FRAMES, 1, _LEVEL_FRAMES // 2,
                             count_include_pad=False)  # [B, 1, frames]
        features = (log_power - level[:, :, None]) / 10.0
        mask = above.float()[:, None, :, None].expand(batch, chans, self.bins, frames)
        stacked = torch.cat([features, mask], dim=2).reshape(batch, -1, frames)
        h = self.inp(torch.cat([stacked, level / 10.0], dim=1))
        with torch.autocast("cpu", torch.bfloat16, enabled=self._bf16_body(x)):
            h = self.body(h)
        h = self.norm(h.float().transpose(1, 2)).transpose(1, 2)
        # only the bins from just under the batch's lowest cutoff bin on are computed: those
        # above it, and the neighbours their averages read (the same values as all bins give)
        lo = 0 if x.device.type == "meta" else self._first_bin(kc)
        a, b = self._gains(h, lo).unbind(2)  # [B, C, bins - lo, frames] each
        if self.smooth_bins > 1:
            a, b = (average_bins(v, self.smooth_bins) for v in (a, b))
        gain = torch.exp(self.log_gain * torch.tanh(a / self.log_gain))
        source = patch_sources(kc, self.bins, self.n_fft // self.hop)[:, lo:]  # [B, bins - lo]
        spec = spec.reshape(batch, chans, self.bins, frames)
        index = source[:, None, :, None].expand(batch, chans, self.bins - lo, frames)
        patch = cap_tones(torch.gather(spec, 2, index), self.patch_peak_db)
        keep = above[:, None, lo:, None]
        part = spec[:, :, lo:]
        added = torch.where(keep, gain * part + b * patch - part, torch.zeros_like(part))
        if x.device.type == "meta":  # describe_model counts MACs on meta tensors: no ISTFT there
            return torch.zeros_like(x)
        added = F.pad(added, (0, 0, lo, 0)).reshape(batch * chans, self.bins, frames)
        y = torch.istft(added, self.n_fft, self.hop, window=self.window, center=True,
                        length=length)
        return y.reshape(batch, chans, length).to(x.dtype)

    def _bf16_body(self, x: Tensor) -> bool:
        """Whether the ConvNeXt body runs in bfloat16: at inference on a CPU that multiplies
        bfloat16 natively (see :data:`BF16_BODY`)."""
        return BF16_BODY and x.device.type == "cpu" and not torch.is_grad_enabled() and \
            native_bf16()

    def _first_bin(self, cutoff_bin: Tensor) -> int:
        """The first bin the output layer computes for a batch with these cutoff bins."""
        return max(0, int(cutoff_bin.min()) - max(self.smooth_bins, _CAP_BINS) // 2)

    def _gains(self, h: Tensor, lo: int) -> Tensor:
        """The output layer's ``a`` and ``h`` for bins ``lo`` and up: ``[B, C, 2, bins - lo,
        frames]`` (the layer's rows of the other bins are not computed)."""
        batch, frames = h.shape[0], h.shape[-1]
        if lo == 0:
            return self.out(h).reshape(batch, self.channels, 2, self.bins, frames)
        rows = self.bins * torch.arange(2 * self.channels, device=h.device)[:, None] + \
            torch.arange(lo, self.bins, device=h.device)
        weight = self.out.weight[rows.reshape(-1)]  # [rows, dim, 1]
        bias = self.out.bias[rows.reshape(-1)]  # type: ignore[index]  # the conv has a bias
        out = F.conv1d(h, weight, bias)
        return out.reshape(batch, self.channels, 2, self.bins - lo, frames)
