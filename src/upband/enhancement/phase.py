"""TD-PR phase repair: keep a model's STFT magnitude, take the phase from elsewhere.

TD-PR (docs/readings/tdpr.md, §3.1): a waveform model's magnitude is good but its phase is
not; re-synthesising its output with a vocoder trained on wide-band music and keeping the
model's magnitude with the vocoder's phase removes the artefacts. Here:

* :func:`replace_phase` -- ``STFT(magnitude_source)`` and ``STFT(phase_source)`` (Hann,
  ``n_fft`` / ``hop``, centred), ``|M| * P / |P|`` (:data:`PHASE_FLOOR` aside) in the bins
  from ``above_hz`` up (a raised-cosine ramp over :data:`RAMP_BINS` bins starting there),
  ``M`` itself below, inverse STFT to the input's length; ``above_hz = 0`` replaces every
  bin (the paper).
* :func:`phase_stft` -- the paper's STFT is 1 024 / 256 at 16 kHz (64 ms / 16 ms); at another
  rate the window is the power of two nearest that duration on a log scale (2 048 / 512 at
  44.1 kHz: 46 / 12 ms), hop a quarter of it;
* :class:`PhaseRepaired` -- any :class:`~upband.models.base.WaveModel` followed by the repair,
  itself a ``WaveModel`` that takes the input's cutoff: ``upband enhance --phase-repair`` runs
  it through the same chunked, streamed pipeline and the same do-no-harm merge as the model
  alone, so the input's own band below the cutoff stays bit for bit the input's. The phase
  comes from ``source``:

  - ``"tdpr"`` (TD-PR): the vocoder's re-synthesis of the model's output (the vocoder
    sees only its mel magnitude, :class:`~upband.models.tfgan.TFGANVocoder`). The vocoder is
    trained to be sample-aligned with its input; :func:`vocoder_delay` measures what is
    left, and the vocoder's output is cut to the model output's length;
  - ``"griffin-lim"`` (baseline): :data:`GRIFFIN_LIM_ITERATIONS` Griffin-Lim iterations on
    the model's magnitude in the repaired bins, starting from zero phase there (the model's
    own phase is already consistent: Griffin-Lim would keep it) and keeping the bins below
    fixed;
  - the model's own phase is the model alone, and the ground-truth phase (the paper's AB
    reference) needs the clean signal: ``upband evaluate`` applies :func:`replace_phase`
    with the reference as ``phase_source`` (system ``MODEL+gt-phase``).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from upband.errors import ModelError
from upband.models.base import WaveModel
from upband.models.tfgan import TFGANVocoder

__all__ = ["GRIFFIN_LIM_ITERATIONS", "PHASE_SOURCES", "RAMP_BINS", "PhaseRepaired",
           "phase_stft", "replace_phase", "vocoder_delay"]

#: Where a repaired phase can come from (``MODEL+<source>`` in ``upband evaluate``).
PHASE_SOURCES = ("tdpr", "griffin-lim", "gt-phase")
#: Width of the cross-fade from the kept phase to the repaired one, in STFT bins.
RAMP_BINS = 4
#: Below this STFT magnitude (about -94 dB under a full-scale sine in a 2 048-point frame)
#: a phase source's phase is rounding noise: its phase blends into the magnitude source's, so
#: that a chunk and the whole signal (a few ulp apart) give the same result.
PHASE_FLOOR = 1e-2
#: Griffin-Lim iterations of the ``griffin-lim`` phase source.
GRIFFIN_LIM_ITERATIONS = 32


def _unit(z: Tensor) -> Tensor:
    """``z / |z|`` (0 where ``z`` is 0)."""
    return z / z.abs().clamp_min(1e-30)


def phase_stft(sample_rate: int) -> tuple[int, int]:
    """``(n_fft, hop)`` of the repair at ``sample_rate``: the paper's 64 ms / 16 ms at 16 kHz,
    the window rounded to the nearest power of two in samples."""
    n_fft = 2 ** round(math.log2(0.064 * sample_rate))
    return n_fft, n_fft // 4


def _stft(x: Tensor, n_fft: int, hop: int, window: Tensor) -> Tensor:
    mode = "reflect" if x.shape[-1] > n_fft // 2 else "constant"
    return torch.stft(x.reshape(-1, x.shape[-1]).float(), n_fft, hop, window=window,
                      center=True, pad_mode=mode, return_complex=True)


def _istft(spec: Tensor, n_fft: int, hop: int, window: Tensor, length: int) -> Tensor:
    return torch.istft(spec, n_fft, hop, window=window, center=True, length=length)


def _weights(bins: int, n_fft: int, sample_rate: int, above_hz: Tensor | float,
             device: torch.device) -> Tensor:
    """``[N or 1, bins, 1]``: 0 where the magnitude source keeps its phase, 1 where it is
    replaced, a raised cosine over :data:`RAMP_BINS` bins from ``above_hz`` up."""
    above = torch.as_tensor(above_hz, dtype=torch.float32, device=device).reshape(-1, 1, 1)
    start = above * n_fft / sample_rate
    k = torch.arange(bins, dtype=torch.float32, device=device).reshape(1, -1, 1)
    ramp = ((k - start) / RAMP_BINS).clamp(0.0, 1.0)
    weights: Tensor = 0.5 - 0.5 * torch.cos(math.pi * ramp)
    return torch.where(above <= 0, torch.ones_like(weights), weights)


def replace_phase(magnitude_source: Tensor, phase_source: Tensor, sample_rate: int, *,
                  above_hz: Tensor | float = 0.0, n_fft: int | None = None,
                  hop: int | None = None) -> Tensor:
    """``magnitude_source``'s STFT magnitude with ``phase_source``'s phase above ``above_hz``.

    Args:
        magnitude_source, phase_source: ``Tensor[..., T]`` of the same shape.
        sample_rate: Hz.
        above_hz: the repair starts here (a number, or one per signal: ``Tensor[N]`` for the
            ``N`` signals of the flattened leading dimensions); 0 = every bin.
        n_fft, hop: the STFT (default :func:`phase_stft`).

    Returns:
        ``Tensor[..., T]`` (float32).
    """
    if magnitude_source.shape != phase_source.shape:
        raise ValueError(f"shapes differ: {tuple(magnitude_source.shape)} and "
                         f"{tuple(phase_source.shape)}")
    default_fft, default_hop = phase_stft(sample_rate)
    n_fft, hop = n_fft or default_fft, hop or default_hop
    window = torch.hann_window(n_fft, device=magnitude_source.device)
    m = _stft(magnitude_source, n_fft, hop, window)
    p = _stft(phase_source, n_fft, hop, window)
    return _mix(m, p, n_fft, hop, window, sample_rate, above_hz, magnitude_source.shape)


def _mix(m: Tensor, p: Tensor, n_fft: int, hop: int, window: Tensor, sample_rate: int,
         above_hz: Tensor | float, shape: torch.Size) -> Tensor:
    """``|m|`` with ``p``'s phase from ``above_hz`` up, ``m`` below; inverse STFT to
    ``shape``."""
    w = _weights(m.shape[-2], n_fft, sample_rate, above_hz, m.device)
    unit = _unit(p + PHASE_FLOOR * _unit(m))
    mixed = (1 - w) * m + w * m.abs() * unit
    return _istft(mixed, n_fft, hop, window, shape[-1]).reshape(shape)


def griffin_lim(wav: Tensor, sample_rate: int, *, above_hz: Tensor | float = 0.0,
                iterations: int = GRIFFIN_LIM_ITERATIONS) -> Tensor:
    """Griffin-Lim on ``wav``'s magnitude in the bins from ``above_hz`` up, starting from zero
    phase there; the bins below keep ``wav``'s STFT."""
    n_fft, hop = phase_stft(sample_rate)
    window = torch.hann_window(n_fft, device=wav.device)
    target = _stft(wav, n_fft, hop, window)
    w = _weights(target.shape[-2], n_fft, sample_rate, above_hz, target.device)
    magnitude = target.abs()
    spec = (1 - w) * target + w * magnitude.to(target.dtype)
    for _ in range(iterations):
        estimate = _stft(_istft(spec, n_fft, hop, window, wav.shape[-1]), n_fft, hop, window)
        spec = (1 - w) * target + w * magnitude * _unit(estimate + PHASE_FLOOR * _unit(target))
    return _istft(spec, n_fft, hop, window, wav.shape[-1]).reshape(wav.shape)


def vocoder_delay(vocoder: TFGANVocoder, wav: np.ndarray, max_lag: int = 2048) -> int:
    """The lag (samples) maximising the cross-correlation of ``vocoder(wav)`` with ``wav``
    (mono ``[T]``): 0 for a vocoder aligned with its input."""
    x = torch.from_numpy(np.ascontiguousarray(wav, np.float32))[None, None]
    with torch.no_grad():
        y = vocoder(x.to(next(vocoder.parameters()).device))[0, 0].cpu().numpy()
    ref = wav.astype(np.float64)
    lags = range(-max_lag, max_lag + 1)
    scores = [float(np.dot(ref[max(0, -k):len(ref) - max(0, k)],
                           y[max(0, k):len(y) - max(0, -k)])) for k in lags]
    return int(list(lags)[int(np.argmax(scores))])


class PhaseRepaired(WaveModel):
    """``model``'s output with its phase repaired above the input's cutoff (see the module
    docstring). ``source`` is ``"tdpr"`` (needs ``vocoder``) or ``"griffin-lim"``. A cutoff of
    ``None`` (none detected, or the merge turned off: ``--no-merge``) repairs every bin, as the
    paper does.

    ``channels`` (TD-PR with two or more channels): ``"mid"`` (default) runs the vocoder once
    per item, on the mean of its channels' spectra, and gives its phase to every channel (each
    keeps its own magnitude); ``"each"`` runs it on every channel (the paper is mono). The mid
    pass halves the vocoder's cost on stereo, the largest part of the repair's; the phase it
    gives is a vocoder's guess either way, and the band it repairs is the one the model made,
    whose inter-channel phase nobody knows (docs/readings/tdpr.md)."""

    takes_cutoff = True

    def __init__(self, model: WaveModel, vocoder: TFGANVocoder | None = None,
                 source: str = "tdpr", channels: str = "mid") -> None:
        if source not in ("tdpr", "griffin-lim"):
            raise ValueError(f"phase source {source!r}: use 'tdpr' or 'griffin-lim'")
        if channels not in ("mid", "each"):
            raise ValueError(f"channels {channels!r}: use 'mid' or 'each'")
        if source == "tdpr" and vocoder is None:
            raise ValueError("TD-PR phase repair needs a vocoder")
        if vocoder is not None and vocoder.sample_rate != model.sample_rate:
            raise ModelError(f"the vocoder works at {vocoder.sample_rate} Hz but the model at "
                             f"{model.sample_rate} Hz")
        self.n_fft, self.hop = phase_stft(model.sample_rate)
        strides = [model.stride, self.hop] + ([vocoder.stride] if vocoder else [])
        super().__init__(channels=model.channels, stride=math.lcm(*strides))
        self.model, self.vocoder, self.source = model, vocoder, source
        self.channel_mode = channels
        self.sample_rate = model.sample_rate
        self.name = f"{model.name}+{source}"
        suffix = f"+{source}"
        self.pretrained_name = model.pretrained_name + suffix if model.pretrained_name else ""

    def _group_size(self, chans: int) -> int:
        """With the ``"mid"`` vocoder pass an item's channels stay together here (the model
        inside still groups them its own way)."""
        if self.source == "tdpr" and self.channel_mode == "mid" and chans > 1:
            return chans
        return self.channels

    def _forward_cutoff(self, x: Tensor, cutoff_hz: Tensor | None) -> Tensor:
        y = self.model(x, cutoff_hz)
        above: Tensor | float = 0.0
        if cutoff_hz is not None:  # one per row of x, then per channel
            above = cutoff_hz.repeat_interleave(x.shape[1])
        if self.source == "griffin-lim":
            out = griffin_lim(y, self.sample_rate, above_hz=above)
        else:
            assert self.vocoder is not None
            out = self._vocoder_phase(y, above)
        return out.to(x.dtype) - x

    def _vocoder_phase(self, y: Tensor, above: Tensor | float) -> Tensor:
        """:func:`replace_phase` of ``y`` with the vocoder's re-synthesis; when the vocoder's
        STFT is the repair's, ``y``'s STFT is computed once and feeds both."""
        vocoder = self.vocoder
        assert vocoder is not None
        batch, chans, length = y.shape
        mid = self.channel_mode == "mid" and chans > 1
        if (vocoder.n_fft, vocoder.hop) != (self.n_fft, self.hop):
            v = vocoder(y.mean(dim=1, keepdim=True)).expand_as(y) if mid else vocoder(y)
            return replace_phase(y, v, self.sample_rate, above_hz=above, n_fft=self.n_fft,
                                 hop=self.hop)
        window = torch.hann_window(self.n_fft, device=y.device)
        m = _stft(y, self.n_fft, self.hop, window)  # [batch * chans, bins, frames]
        source = m.reshape(batch, chans, *m.shape[1:]).mean(dim=1) if mid else m
        v = vocoder.synthesize(vocoder.magnitude_features(source.abs()), length)
        p = _stft(v, self.n_fft, self.hop, window)
        if mid:  # the same phase for every channel of an item
            p = p.repeat_interleave(chans, dim=0)
        return _mix(m, p, self.n_fft, self.hop, window, self.sample_rate, above, y.shape)

    def _receptive_field(self) -> int:
        extra = self.vocoder.receptive_field if self.vocoder is not None else 0
        if self.source == "griffin-lim":
            extra = GRIFFIN_LIM_ITERATIONS * self.n_fft
        return self.model.receptive_field + extra + 2 * self.n_fft
