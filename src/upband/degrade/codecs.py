"""Lossy codec round trips in memory: MP3 (LAME), Opus and Vorbis (libsndfile).

Each function encodes and decodes ``x`` and returns audio sample-aligned with the input, at the
input's rate and of its exact length, so that input and output can be compared sample by sample
(docs/readings/degradations.md: LAME's encoder/decoder delay is removed before any metric).
Lattner & Nistal (2021, §3.3) degrade music with LAME 3.100, mono, 16/32/64 kbit/s.

Channels: mono and stereo are encoded as one stream (LAME joint stereo for MP3); audio with more
than two channels, or any audio when ``per_channel=True``, is encoded channel by channel as
independent mono streams, each at the full bitrate (Ogg's 5.1 mapping would otherwise low-pass a
channel as LFE). Leading batch axes are encoded item by item.

Measured facts this module relies on (lameenc 1.x = LAME 3.100, libsndfile 1.2.2):

* lameenc writes no LAME/Xing gapless header, so the decoded MP3 starts with LAME's delay of
  exactly 1105 samples (576 encoder + 529 decoder) at the *stream's* sample rate;
* LAME picks the stream rate from the bitrate by itself (44.1 kHz mono 32 kbit/s → 22 050 Hz,
  stereo 32 → 16 kHz, 8 kbit/s → 8 kHz) and low-passes accordingly, as a real encoder does; it
  also caps the bitrate at what the stream rate allows (160 kbit/s at 16–24 kHz, 64 at 8 kHz);
* LAME's CBR presets scale the input by 0.95 (−0.45 dB) up to 160 kbit/s, 0.97 at 192, 0.98 at
  224 and 1.0 from 256 kbit/s: real MP3s carry this gain, so it is kept;
* libsndfile's Opus encoder takes 8/12/16/24/48 kHz only and sets its (VBR) bitrate from the
  compression level as ≈ (256 − 250 · level) kbit/s per channel; Opus and Vorbis decode with
  lag 0 and the exact length. libsndfile cannot set a bitrate mode for Ogg codecs.
"""

from __future__ import annotations

from collections.abc import Callable

import lameenc
import numpy as np

from upband.audio import decode_bytes, encode_bytes, fit_length, resample
from upband.errors import SpecError, UnsupportedFormatError

CODECS = ("mp3", "opus", "vorbis")
#: The bitrates (kbit/s) an MPEG-1/2/2.5 layer III CBR stream can have.
MP3_BITRATES = (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
#: LAME encoder (576) + decoder (529) delay in samples at the stream's rate, no gapless header.
LAME_DELAY = 1105
OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
#: libsndfile's Opus bitrate per channel (kbit/s) at compression level 0 and 1.
OPUS_MAX_KBPS, OPUS_MIN_KBPS = 256.0, 6.0

Codec = Callable[[np.ndarray], np.ndarray]


def _round_trip(x: np.ndarray, codec: Codec, per_channel: bool) -> np.ndarray:
    """Apply ``codec`` (float32 ``[C<=2, T]`` -> ``[C, T]``) to every item of ``x`` ``[..., T]``."""
    a = np.asarray(x, dtype=np.float32)
    if a.ndim == 0:
        raise SpecError("audio must have a time axis, got a scalar")
    if a.shape[-1] == 0:
        return a.copy()
    items = a.reshape(-1, a.shape[-1]) if a.ndim == 1 else a.reshape(-1, *a.shape[-2:])
    if a.ndim == 1 or per_channel or items.shape[1] > 2:
        items = items.reshape(-1, 1, a.shape[-1])
    return np.stack([codec(item) for item in items]).reshape(a.shape)


def _check_rate(sr: int) -> None:
    if isinstance(sr, bool) or not isinstance(sr, (int, np.integer)) or not 8000 <= sr <= 192000:
        raise SpecError(f"sample rate must be an integer from 8000 to 192000 Hz, got {sr!r}")


def mp3(x: np.ndarray, sr: int, bitrate_kbps: int, *, quality: int = 2,
        per_channel: bool = False) -> np.ndarray:
    """MP3 round trip through LAME, CBR, returned aligned with ``x`` at ``sr``.

    Args:
        x: ``[T]``, ``[C, T]`` or ``[B, C, T]`` float at ``sr``; clipped to [-1, 1] and quantised
            to 16-bit PCM for the encoder. Not modified.
        sr: input rate in Hz (LAME resamples rates above 48 kHz itself).
        bitrate_kbps: one of ``MP3_BITRATES`` (LAME silently rounds anything else, so other
            values are refused); the rate of the whole stream (both channels of joint stereo).
        quality: LAME's algorithm quality, 0 (best, slowest) to 9; 2 is LAME's ``-h``.
        per_channel: encode each channel as its own mono stream at ``bitrate_kbps``.

    Returns:
        float32 of ``x``'s shape: 1105 delay samples dropped at the stream rate, resampled to
        ``sr`` (libsoxr) and cropped or zero-padded to ``T``.
    """
    _check_rate(sr)
    if bitrate_kbps not in MP3_BITRATES or isinstance(bitrate_kbps, bool):
        raise SpecError(f"MP3 bitrate must be one of {', '.join(map(str, MP3_BITRATES))} kbit/s, "
                        f"got {bitrate_kbps!r}")
    if isinstance(quality, bool) or quality not in range(10):
        raise SpecError(f"LAME quality must be an integer from 0 (best) to 9, got {quality!r}")

    def codec(a: np.ndarray) -> np.ndarray:
        enc = lameenc.Encoder()
        enc.set_bit_rate(int(bitrate_kbps))
        enc.set_in_sample_rate(int(sr))
        enc.set_channels(a.shape[0])
        enc.set_quality(int(quality))
        pcm = np.clip(np.round(a.T * 32768.0), -32768, 32767).astype("<i2")
        data = bytes(enc.encode(pcm.tobytes())) + bytes(enc.flush())
        y, stream_sr = decode_bytes(data, what="LAME MP3 stream")
        return fit_length(resample(y[:, LAME_DELAY:], stream_sr, sr), a.shape[-1])

    return _round_trip(x, codec, per_channel)


def opus_level(bitrate_kbps: float, channels: int) -> float:
    """libsndfile compression level that gives ``bitrate_kbps`` for a stream of ``channels``.

    Inverts the measured mapping ≈ (256 − 250 · level) kbit/s per channel. ``SpecError`` if the
    per-channel rate is outside 6–256 kbit/s.
    """
    if isinstance(bitrate_kbps, bool) or not isinstance(bitrate_kbps, (int, float, np.number)) \
            or not OPUS_MIN_KBPS <= bitrate_kbps / channels <= OPUS_MAX_KBPS:
        raise SpecError(f"Opus bitrate must be {OPUS_MIN_KBPS:g} to {OPUS_MAX_KBPS:g} kbit/s per "
                        f"channel, got {bitrate_kbps!r} kbit/s for {channels} channel(s)")
    return (OPUS_MAX_KBPS - bitrate_kbps / channels) / (OPUS_MAX_KBPS - OPUS_MIN_KBPS)


def _ogg(a: np.ndarray, sr: int, codec_sr: int, subtype: str, level: float) -> np.ndarray:
    """Encode ``[C, T]`` as Ogg ``subtype`` at ``codec_sr``, decode, return ``[C, T]`` at ``sr``."""
    try:
        data = encode_bytes(resample(a, sr, codec_sr), codec_sr, format="OGG", subtype=subtype,
                            compression_level=level)
    except UnsupportedFormatError as err:
        raise UnsupportedFormatError(
            f"{err}; {subtype.title()} needs libsndfile >= 1.0.29 built with lib"
            f"{subtype.lower()}") from None
    y, dec_sr = decode_bytes(data, what=f"Ogg/{subtype} stream")
    return fit_length(resample(y, dec_sr, sr), a.shape[-1])


def opus(x: np.ndarray, sr: int, bitrate_kbps: float, *, per_channel: bool = False
         ) -> np.ndarray:
    """Opus round trip (libsndfile, VBR around ``bitrate_kbps``), aligned with ``x`` at ``sr``.

    ``bitrate_kbps`` is the whole stream's target (6–256 kbit/s per channel); the achieved rate
    stays within about ±25 % of it. Rates Opus does not take are resampled to the next supported
    rate up (48 kHz above 48 kHz) and back. ``x``: ``[..., T]`` float, not modified; returns
    float32 of the same shape. ``UnsupportedFormatError`` if libsndfile lacks Opus.
    """
    _check_rate(sr)
    codec_sr = next((rate for rate in OPUS_RATES if rate >= sr), OPUS_RATES[-1])
    return _round_trip(x, lambda a: _ogg(a, sr, codec_sr, "OPUS",
                                         opus_level(bitrate_kbps, a.shape[0])), per_channel)


def vorbis(x: np.ndarray, sr: int, quality: float, *, per_channel: bool = False) -> np.ndarray:
    """Vorbis round trip (libsndfile, VBR), aligned with ``x`` at ``sr``.

    ``quality`` is Vorbis's ``-q`` scale from 0 (≈ 64 kbit/s stereo at 44.1 kHz) to 10
    (≈ 500 kbit/s); libsndfile's compression level is 1 − quality / 10. Measured on white noise
    at 44.1 kHz: q0 54 / 70, q5 90 / 172, q10 255 / 520 kbit/s (mono / stereo). ``x``:
    ``[..., T]`` float, not modified; returns float32 of the same shape.
    """
    _check_rate(sr)
    if isinstance(quality, bool) or not isinstance(quality, (int, float, np.number)) \
            or not 0 <= quality <= 10:
        raise SpecError(f"Vorbis quality must be a number from 0 to 10, got {quality!r}")
    level = 1.0 - float(quality) / 10.0
    return _round_trip(x, lambda a: _ogg(a, sr, sr, "VORBIS", level), per_channel)
