"""Audio files in and out, resampling and channels: the only package that touches audio files.

Conventions used across upband:

* audio is a ``numpy.ndarray`` of ``float32`` shaped ``[C, T]`` (channels first, as in torch);
* integer files (16/24/32-bit) are scaled to [-1, 1] on read; float files are returned as stored
  (they may exceed 1) but must be finite;
* every write goes to a temporary file in the destination folder and is renamed into place only
  when complete, so a crash or an exception never leaves a partial file behind.

Decoding is libsndfile (through ``soundfile``), which reads WAV/RF64/W64, FLAC, AIFF/CAF,
OGG (Vorbis, Opus) and MP3 (mpg123). Resampling is libsoxr (why: :mod:`upband.audio.resampling`).

The rooms, every name of which is importable from ``upband.audio`` itself:

* :mod:`upband.audio.header`: :class:`AudioInfo`, :func:`info`, :func:`check_finite`,
  :func:`is_audio_path` and the supported rates and extensions;
* :mod:`upband.audio.reading`: :class:`AudioReader`, :func:`read`, :func:`decode_bytes`;
* :mod:`upband.audio.writing`: :class:`AudioWriter` (with TPDF dither), :func:`write`,
  :func:`write_encoded`, :func:`encode_bytes`, output container and subtype choice;
* :mod:`upband.audio.resampling`: :func:`resample`, :class:`StreamResampler`,
  :func:`resampled_length`, :func:`fit_length`;
* :mod:`upband.audio.channels`: :func:`to_channels`.
"""

from __future__ import annotations

from upband.audio.channels import to_channels
from upband.audio.header import (
    MAX_SAMPLE_RATE,
    MIN_SAMPLE_RATE,
    READ_EXTENSIONS,
    AudioInfo,
    PathLike,
    check_finite,
    info,
    is_audio_path,
)
from upband.audio.reading import AudioReader, decode_bytes, read
from upband.audio.resampling import (
    PASSBAND,
    StreamResampler,
    fit_length,
    resample,
    resampled_length,
)
from upband.audio.writing import (
    SUBTYPE_ALIASES,
    WRITE_FORMATS,
    AudioWriter,
    encode_bytes,
    normalize_subtype,
    output_format,
    output_subtype,
    tpdf_dither,
    write,
    write_encoded,
)

__all__ = [
    "MAX_SAMPLE_RATE",
    "MIN_SAMPLE_RATE",
    "PASSBAND",
    "READ_EXTENSIONS",
    "SUBTYPE_ALIASES",
    "WRITE_FORMATS",
    "AudioInfo",
    "AudioReader",
    "AudioWriter",
    "PathLike",
    "StreamResampler",
    "check_finite",
    "decode_bytes",
    "encode_bytes",
    "fit_length",
    "info",
    "is_audio_path",
    "normalize_subtype",
    "output_format",
    "output_subtype",
    "read",
    "resample",
    "resampled_length",
    "to_channels",
    "tpdf_dither",
    "write",
    "write_encoded",
]
