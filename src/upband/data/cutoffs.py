"""The cutoff a degradation leaves, for training models that are told the input's cutoff.

``upband enhance`` tells such a model (:attr:`upband.models.base.WaveModel.takes_cutoff`) the
cutoff its detector measured (:mod:`upband.analysis`). Running that detector on every training
crop would cost more than the training step, so a crop's cutoff comes from its degradation's
parameters instead:

* a low-pass filter: its cutoff;
* decimation by ``r``: the Nyquist frequency of the low rate, ``sr / (2 r)``;
* a codec: what the detector measures on 4 s of white noise through the same codec settings
  (once per setting and process; LAME, Opus and Vorbis pick their own low-pass per bitrate or
  quality, and the detector reads it as it would on music).

:func:`training_cutoff` then jitters it by a factor drawn from ``JITTER`` (the detector's
cutoff on music is off by a few per cent for steep filters and more for gentle ones), so the
model does not learn to trust the number to the bin. With probability ``under`` it tells a cutoff
far below the true one instead (a factor log-uniform in ``UNDER_RANGE``): on dark music, whose
own content falls off early, the detector finds the music's roll-off (1.4 to 3 kHz on the
validation split's soundtrack excerpts) rather than the filter's 11 kHz, and a model must then
leave the real content between the two alone.
"""

from __future__ import annotations

import functools
import json

import numpy as np

from upband.analysis import detect_bandwidth
from upband.degrade import presets

__all__ = ["JITTER", "UNDER_RANGE", "nominal_cutoff", "training_cutoff"]

#: Range of the factor applied to a training crop's nominal cutoff.
JITTER = (0.94, 1.03)
#: Range of the factor (log-uniform) of a cutoff told below the true one.
UNDER_RANGE = (1 / 8, 1.0)
#: Seconds of noise measured per codec setting.
_NOISE_SECONDS = 4.0


@functools.lru_cache(maxsize=256)
def _codec_cutoff(params_json: str, sample_rate: int, channels: int) -> float:
    params = presets.params_from_dict(json.loads(params_json))
    rng = np.random.default_rng(0)
    noise = (0.1 * rng.standard_normal((channels, int(_NOISE_SECONDS * sample_rate))))
    found = detect_bandwidth(params.apply(noise.astype(np.float32), sample_rate), sample_rate)
    return sample_rate / 2 if found.full_band else float(found.cutoff_hz)


def nominal_cutoff(params: presets.Params, sample_rate: int, channels: int = 2) -> float:
    """The cutoff (Hz) that ``params`` leaves in a signal at ``sample_rate`` (see the module
    docstring); Nyquist when it leaves the whole band."""
    nyquist = sample_rate / 2
    if isinstance(params, presets.Lowpass):
        return min(params.cutoff_hz, nyquist)
    if isinstance(params, presets.Decimate):
        return nyquist / params.r
    if isinstance(params, presets.Codec):
        return _codec_cutoff(json.dumps(params.to_dict(), sort_keys=True), sample_rate, channels)
    return nyquist


def training_cutoff(params: presets.Params, sample_rate: int, channels: int,
                    rng: np.random.Generator, under: float = 0.0) -> float:
    """:func:`nominal_cutoff` times a factor drawn uniformly from :data:`JITTER` or, with
    probability ``under``, log-uniformly from :data:`UNDER_RANGE`; at most Nyquist."""
    if under > 0 and rng.uniform() < under:
        factor = float(np.exp(rng.uniform(*np.log(UNDER_RANGE))))
    else:
        factor = rng.uniform(*JITTER)
    return float(min(nominal_cutoff(params, sample_rate, channels) * factor, sample_rate / 2))
