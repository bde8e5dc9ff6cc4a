"""Simulated degradations: low-pass filters, decimation, lossy codecs, and named presets.

``sample(preset, rng, sr) -> params`` draws, ``apply(x, sr, params)`` degrades (pure); the
params convert to plain JSON with ``to_dict()`` so each training example can say what made it.
"""

from __future__ import annotations

from upband.degrade.codecs import CODECS, MP3_BITRATES, mp3, opus, vorbis
from upband.degrade.filters import FAMILIES, FilterSpec, design, lowpass
from upband.degrade.presets import (
    PRESETS,
    Codec,
    Decimate,
    Lowpass,
    Params,
    Preset,
    apply,
    describe_presets,
    get_preset,
    params_from_dict,
    sample,
)
from upband.degrade.resampling import band_limit_by_decimation, downsample, upsample

__all__ = [
    "CODECS", "FAMILIES", "MP3_BITRATES", "PRESETS", "Codec",
    "Decimate", "FilterSpec", "Lowpass",
    "Params", "Preset", "apply", "band_limit_by_decimation", "describe_presets", "design",
    "downsample", "get_preset", "lowpass", "mp3", "opus", "params_from_dict", "sample",
    "upsample", "vorbis",
]
