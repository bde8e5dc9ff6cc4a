"""Audio files in and out, resampling and channels: the only module that touches audio files.

Conventions used across upband:

* audio is a ``numpy.ndarray`` of ``float32`` shaped ``[C, T]`` (channels first, as in torch);
* integer files (16/24/32-bit) are scaled to [-1, 1] on read; float files are returned as stored
  (they may exceed 1) but must be finite;
* every write goes to a temporary file in the destination folder and is renamed into place only
  when complete, so a crash or an exception never leaves a partial file behind.

Decoding is libsndfile (through ``soundfile``), which reads WAV/RF64/W64, FLAC, AIFF/CAF,
OGG (Vorbis, Opus) and MP3 (mpg123).

Resampling is libsoxr (``python-soxr``) with its "VHQ" recipe. We chose it over julius because it
handles any pair of rates (44 100 -> 48 000 is not a small integer ratio), keeps a linear-phase
pass band to about 91 % of the lower Nyquist rate with a stop band below -170 dB, streams block by
block with exactly the same result as one pass, runs in optimised C without torch on the path, and
is the resampler that audio engineers already trust (SoX). julius is a windowed-sinc resampler in
torch whose cost grows with the reduced ratio and whose stop band is far shallower.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import soundfile as sf
import soxr

from upband.errors import (
    AudioFileNotFoundError,
    DecodeError,
    EmptyAudioError,
    NonFiniteAudioError,
    NotAFileError,
    OutputExistsError,
    UnsupportedFormatError,
)
from upband.fsutil import atomic_write_bytes, umask

PathLike = str | os.PathLike[str]

MIN_SAMPLE_RATE = 8_000
MAX_SAMPLE_RATE = 192_000

#: Extensions upband reads; anything else that libsndfile cannot open is "unsupported".
READ_EXTENSIONS = frozenset(
    {".wav", ".wave", ".rf64", ".w64", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff",
     ".aifc", ".caf"}
)

#: Output containers by extension.
WRITE_FORMATS = {".wav": "WAV", ".flac": "FLAC"}

#: Output subtypes by the names users give them (CLI ``--bit-depth`` and libsndfile names).
SUBTYPE_ALIASES = {
    "16": "PCM_16", "pcm_16": "PCM_16",
    "24": "PCM_24", "pcm_24": "PCM_24",
    "32": "PCM_32", "pcm_32": "PCM_32",
    "32f": "FLOAT", "float": "FLOAT",
}

#: Leading bytes of formats libsndfile cannot read, to name them in the error message.
_FOREIGN_MAGIC: tuple[tuple[int, bytes, str], ...] = (
    (4, b"ftyp", "MP4/M4A (AAC or ALAC)"),
    (0, b"\x30\x26\xb2\x75", "ASF/WMA"),
    (0, b"\x1a\x45\xdf\xa3", "Matroska/WebM"),
    (0, b"\xff\xf1", "AAC (ADTS)"),
    (0, b"\xff\xf9", "AAC (ADTS)"),
    (0, b"MAC ", "Monkey's Audio (APE)"),
    (0, b"wvpk", "WavPack"),
    (0, b"#!AMR", "AMR"),
)
#: Leading bytes of formats libsndfile reads: a failure to open one of these is corruption.
_NATIVE_MAGIC = (b"RIFF", b"RF64", b"riff", b"fLaC", b"OggS", b"FORM", b"caff", b"ID3")

_TRUNCATED_WAV = re.compile(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
_PLACEHOLDER_SIZES = {0, 0xFFFFFFFF, 0x7FFFFFFF, 0xFFFFFFFF - 1}


@dataclass(frozen=True)
class AudioInfo:
    """What a file holds, read from its header without decoding the audio.

    ``frames`` is exact for PCM containers and FLAC/OGG; for MP3 it is mpg123's estimate
    (``frames_exact`` is False) and the decoded length may differ by a frame or two.
    """

    path: str
    sample_rate: int
    channels: int
    frames: int
    format: str
    subtype: str
    frames_exact: bool = True

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.frames / self.sample_rate

    @property
    def is_float(self) -> bool:
        return self.subtype in ("FLOAT", "DOUBLE")

    @property
    def is_lossy(self) -> bool:
        return self.subtype in ("VORBIS", "OPUS") or self.subtype.startswith("MPEG_LAYER")


# --------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------


def _check_input_path(path: PathLike) -> Path:
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise AudioFileNotFoundError(f"{p}: no such file") from None
    except PermissionError:
        raise DecodeError(f"{p}: permission denied") from None
    if stat.S_ISDIR(st.st_mode):
        raise NotAFileError(f"{p}: is a directory, not an audio file")
    if not stat.S_ISREG(st.st_mode):
        raise NotAFileError(f"{p}: is not a regular file")
    if st.st_size == 0:
        raise EmptyAudioError(f"{p}: file is empty (0 bytes)")
    return p


def _open_error(path: Path, err: Exception) -> Exception:
    """Turn a libsndfile open failure into the right ``UpbandError``."""
    try:
        with path.open("rb") as fh:
            head = fh.read(16)
    except OSError:
        head = b""
    for offset, magic, name in _FOREIGN_MAGIC:
        if head[offset:offset + len(magic)] == magic:
            return UnsupportedFormatError(
                f"{path}: {name} is not supported; convert it to WAV, FLAC, OGG, Opus or MP3 first")
    reason = str(err).split(": ", 1)[-1].strip() or "unknown libsndfile error"
    native = head.startswith(_NATIVE_MAGIC) or head[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2")
    if native or path.suffix.lower() in READ_EXTENSIONS:
        return DecodeError(f"{path}: cannot decode, the file is corrupt or truncated ({reason})")
    return UnsupportedFormatError(
        f"{path}: unsupported audio format ({reason}); upband reads WAV, FLAC, AIFF, OGG/Vorbis, "
        "Opus and MP3")


def _sf_open(path: Path) -> sf.SoundFile:
    try:
        return sf.SoundFile(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError) as err:
        raise _open_error(path, err) from None


def _info_of(path: Path, f: sf.SoundFile) -> AudioInfo:
    frames, exact = int(f.frames), f.format != "MP3"
    if f.format in ("WAV", "WAVEX"):
        _check_wav_truncation(path, f)
    out = AudioInfo(str(path), int(f.samplerate), int(f.channels), frames, str(f.format),
                    str(f.subtype), exact)
    if out.channels < 1:
        raise DecodeError(f"{path}: header declares {out.channels} channels")
    if not MIN_SAMPLE_RATE <= out.sample_rate <= MAX_SAMPLE_RATE:
        raise UnsupportedFormatError(
            f"{path}: sample rate {out.sample_rate} Hz is outside the supported "
            f"{MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz")
    if out.frames <= 0:
        raise EmptyAudioError(f"{path}: contains no audio samples")
    return out


def _check_wav_truncation(path: Path, f: sf.SoundFile) -> None:
    """libsndfile silently shortens a truncated WAV; its header report says so."""
    try:
        extra = f.extra_info
    except Exception:  # pragma: no cover - depends on libsndfile build
        return
    m = _TRUNCATED_WAV.search(extra)
    if m is None:
        return
    declared, present = int(m.group(1)), int(m.group(2))
    block = max(1, f.channels * 2)
    if declared not in _PLACEHOLDER_SIZES and declared - present >= block:
        raise DecodeError(
            f"{path}: truncated, the header declares {declared} bytes of audio but only {present} "
            "are present")


def info(path: PathLike) -> AudioInfo:
    """Read a file's header: rate, channels, length, container and subtype.

    Raises an ``UpbandError`` subclass for a missing path, a directory, an empty, truncated,
    undecodable or unsupported file.
    """
    p = _check_input_path(path)
    with _sf_open(p) as f:
        return _info_of(p, f)


def check_finite(audio: np.ndarray, what: str = "audio", sample_rate: int | None = None) -> None:
    """Raise ``NonFiniteAudioError`` if ``audio`` holds NaN or infinity."""
    if audio.size and not np.isfinite(audio).all():
        first = int(np.argwhere(~np.isfinite(audio))[0][-1])
        where = f"{first / sample_rate:.3f} s" if sample_rate else f"sample {first}"
        raise NonFiniteAudioError(f"{what}: contains NaN or infinite samples (first at {where})")


class AudioReader:
    """A decoder open on one file, for seeking and reading in blocks.

    >>> with AudioReader("song.flac") as r:          # doctest: +SKIP
    ...     for block in r.blocks(r.info.sample_rate * 10):
    ...         ...                                   # block: float32 [C, <=T]
    """

    def __init__(self, path: PathLike) -> None:
        self.path = _check_input_path(path)
        self._f = _sf_open(self.path)
        try:
            self.info = _info_of(self.path, self._f)
        except BaseException:
            self._f.close()
            raise
        self.position = 0

    def __enter__(self) -> AudioReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._f.close()

    def seek(self, frame: int) -> None:
        """Move to ``frame`` (clamped to the file)."""
        frame = max(0, min(int(frame), self.info.frames))
        try:
            self._f.seek(frame)
        except (sf.LibsndfileError, RuntimeError) as err:
            raise DecodeError(f"{self.path}: cannot seek to frame {frame} ({err})") from None
        self.position = frame

    def read(self, frames: int = -1) -> np.ndarray:
        """Decode up to ``frames`` frames (all that remain if -1): float32 ``[C, n]``."""
        try:
            data = self._f.read(frames, dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as err:
            raise DecodeError(
                f"{self.path}: cannot decode, the file is corrupt or truncated near "
                f"{self.position / self.info.sample_rate:.2f} s ({err})") from None
        out = np.ascontiguousarray(data.T)
        check_finite(out, str(self.path), self.info.sample_rate)
        self.position += out.shape[1]
        return out

    def blocks(self, block_frames: int) -> Iterator[np.ndarray]:
        """Yield consecutive ``[C, <= block_frames]`` blocks from the current position to the end.

        Raises ``DecodeError`` at the end if an exact-length file decoded short (truncation).
        """
        if block_frames <= 0:
            raise ValueError(f"block_frames must be positive, got {block_frames}")
        while True:
            block = self.read(block_frames)
            if block.shape[1] == 0:
                break
            yield block
            if block.shape[1] < block_frames:
                break
        if self.info.frames_exact and self.position < self.info.frames:
            raise DecodeError(
                f"{self.path}: truncated, decoded {self.position} of {self.info.frames} frames")


def read(path: PathLike, *, start: int = 0, frames: int = -1) -> tuple[np.ndarray, int]:
    """Decode a file (or ``frames`` frames from ``start``) to float32 ``[C, T]``.

    Returns ``(audio, sample_rate)``. Raises ``EmptyAudioError`` when nothing is decoded,
    ``DecodeError`` for a corrupt or truncated file and ``NonFiniteAudioError`` for NaN/inf.
    """
    with AudioReader(path) as r:
        if start:
            r.seek(start)
        audio = r.read(frames)
        want = r.info.frames - start if frames < 0 else min(frames, r.info.frames - start)
        if r.info.frames_exact and audio.shape[1] < want:
            raise DecodeError(
                f"{r.path}: truncated, decoded {audio.shape[1]} of {want} frames")
        if audio.shape[1] == 0:
            raise EmptyAudioError(f"{r.path}: contains no audio samples")
        return audio, r.info.sample_rate


def decode_bytes(data: bytes, *, what: str = "encoded audio") -> tuple[np.ndarray, int]:
    """Decode an in-memory file (any format ``read`` accepts) to float32 ``[C, T]``."""
    import io

    try:
        with sf.SoundFile(io.BytesIO(data)) as f:
            out = f.read(dtype="float32", always_2d=True).T
            return np.ascontiguousarray(out), int(f.samplerate)
    except (sf.LibsndfileError, RuntimeError) as err:
        raise DecodeError(f"{what}: cannot decode ({err})") from None


def encode_bytes(audio: np.ndarray, sample_rate: int, *, format: str, subtype: str | None = None,
                 compression_level: float | None = None,
                 bitrate_mode: str | None = None) -> bytes:
    """Encode float ``[C, T]`` audio to an in-memory file of the given libsndfile format.

    Used by the codec simulators (OGG/Vorbis, OGG/Opus). ``compression_level`` (0 = best
    quality, 1 = smallest) is passed to libsndfile; ``bitrate_mode`` too, but libsndfile 1.2
    refuses it for OGG codecs (they always run as VBR), so leave it ``None`` for those.
    """
    import io

    buf = io.BytesIO()
    try:
        sf.write(buf, _as_frames_last(audio), sample_rate, format=format, subtype=subtype,
                 compression_level=compression_level, bitrate_mode=bitrate_mode)
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError) as err:
        raise UnsupportedFormatError(
            f"cannot encode {format}/{subtype} at {sample_rate} Hz: {err}") from None
    return buf.getvalue()


# --------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------


def normalize_subtype(subtype: str) -> str:
    """Map ``16``/``24``/``32``/``32f`` and libsndfile names to a libsndfile subtype name."""
    name = SUBTYPE_ALIASES.get(subtype.lower(), subtype.upper())
    if name not in ("PCM_16", "PCM_24", "PCM_32", "FLOAT"):
        raise UnsupportedFormatError(
            f"unsupported output subtype {subtype!r}; choose PCM_16, PCM_24, PCM_32 or FLOAT")
    return name


def output_subtype(info: AudioInfo, bit_depth: str | None = None) -> str:
    """The subtype to write for an input described by ``info``: ``bit_depth`` when given
    (16/24/32/32f or a libsndfile name), else the input's own PCM/float subtype, else (lossy or
    exotic inputs) PCM_24."""
    if bit_depth is not None:
        return normalize_subtype(bit_depth)
    if info.subtype in ("PCM_16", "PCM_24", "PCM_32", "FLOAT"):
        return info.subtype
    if info.subtype == "DOUBLE":
        return "FLOAT"
    return "PCM_24"


def output_format(path: PathLike, format: str | None = None) -> str:
    """The libsndfile container for ``path``: from ``format`` ('wav'/'flac') or the extension."""
    key = f".{format.lower().lstrip('.')}" if format else Path(path).suffix.lower()
    if key not in WRITE_FORMATS:
        raise UnsupportedFormatError(
            f"{path}: cannot write {key or 'files without an extension'}; upband writes .wav "
            "or .flac")
    return WRITE_FORMATS[key]


def tpdf_dither(audio: np.ndarray, bits: int, rng: np.random.Generator) -> np.ndarray:
    """Add triangular (TPDF) dither of +-1 LSB peak for quantisation to ``bits``-bit PCM."""
    lsb = 2.0 ** (1 - bits)
    noise = rng.random(audio.shape, dtype=np.float32) - rng.random(audio.shape, dtype=np.float32)
    return (audio + noise * np.float32(lsb)).astype(np.float32, copy=False)


def _as_frames_last(audio: np.ndarray) -> np.ndarray:
    a = np.asarray(audio, dtype=np.float32)
    if a.ndim == 1:
        a = a[None]
    if a.ndim != 2:
        raise ValueError(f"audio must be [C, T] or [T], got shape {a.shape}")
    return np.ascontiguousarray(a.T)


class AudioWriter:
    """Write a WAV/FLAC file block by block, atomically.

    Blocks go to a temporary file next to ``path``; ``close()`` renames it into place. If the
    ``with`` block raises, the temporary file is deleted and ``path`` is left untouched.

    >>> with AudioWriter("out.flac", 44100, channels=2, subtype="PCM_24") as w:  # doctest: +SKIP
    ...     w.write(block)  # float32 [2, n]
    """

    def __init__(self, path: PathLike, sample_rate: int, channels: int, *,
                 subtype: str = "PCM_16", format: str | None = None, overwrite: bool = False,
                 dither: bool = False, seed: int = 0) -> None:
        self.path = Path(path)
        self.sample_rate, self.channels = int(sample_rate), int(channels)
        self.format = output_format(self.path, format)
        self.subtype = normalize_subtype(subtype)
        if self.format == "FLAC" and self.subtype not in ("PCM_16", "PCM_24"):
            raise UnsupportedFormatError(
                f"{self.path}: FLAC stores 16- or 24-bit integers only, not {self.subtype}; "
                "write .wav for 32-bit or float output")
        if self.path.is_dir():
            raise NotAFileError(f"{self.path}: is a directory")
        if self.path.exists() and not overwrite:
            raise OutputExistsError(f"{self.path}: already exists (use --force to overwrite)")
        if not self.path.parent.is_dir():
            raise AudioFileNotFoundError(f"{self.path.parent}: output folder does not exist")
        if self.format == "WAV" and channels > 2:
            self.format = "WAVEX"  # carries a channel mask for multichannel audio
        self._bits = {"PCM_16": 16, "PCM_24": 24}.get(self.subtype) if dither else None
        self._rng = np.random.default_rng(seed)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".upband-tmp",
                                   dir=self.path.parent)
        os.close(fd)
        self._tmp = Path(tmp)
        self.frames = 0
        try:
            self._f = sf.SoundFile(tmp, "w", samplerate=self.sample_rate, channels=self.channels,
                                   subtype=self.subtype, format=self.format)
        except (sf.LibsndfileError, RuntimeError, ValueError) as err:
            self._tmp.unlink(missing_ok=True)
            raise UnsupportedFormatError(
                f"{self.path}: cannot write {self.format}/{self.subtype} with {channels} channels "
                f"at {sample_rate} Hz ({err})") from None
        self._done = False

    def write(self, block: np.ndarray) -> None:
        """Append float ``[C, n]`` samples (clipped to [-1, 1] for integer subtypes)."""
        a = np.asarray(block, dtype=np.float32)
        if a.ndim != 2 or a.shape[0] != self.channels:
            raise ValueError(f"expected a [{self.channels}, n] block, got shape {a.shape}")
        check_finite(a, f"{self.path}: output")
        if self._bits is not None:
            a = tpdf_dither(a, self._bits, self._rng)
        if self.subtype != "FLOAT":
            a = np.clip(a, -1.0, 1.0)
        self._f.write(np.ascontiguousarray(a.T))
        self.frames += a.shape[1]

    def close(self) -> None:
        """Finish the file and move it into place."""
        if self._done:
            return
        self._done = True
        self._f.close()
        with open(self._tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(self._tmp, 0o644 & ~umask())
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        """Drop everything written so far; ``path`` is left as it was."""
        if self._done:
            return
        self._done = True
        with contextlib.suppress(Exception):
            self._f.close()
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> AudioWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write(path: PathLike, audio: np.ndarray, sample_rate: int, *, subtype: str = "PCM_16",
          format: str | None = None, overwrite: bool = False, dither: bool = False,
          seed: int = 0) -> None:
    """Write float ``[C, T]`` (or ``[T]``) audio to WAV/FLAC atomically.

    ``subtype`` is PCM_16, PCM_24, PCM_32 or FLOAT (or 16/24/32/32f); integer output is clipped
    to [-1, 1] and, with ``dither``, gets TPDF dither. Raises ``OutputExistsError`` if ``path``
    exists and ``overwrite`` is False.
    """
    a = np.asarray(audio, dtype=np.float32)
    if a.ndim == 1:
        a = a[None]
    with AudioWriter(path, sample_rate, a.shape[0], subtype=subtype, format=format,
                     overwrite=overwrite, dither=dither, seed=seed) as w:
        w.write(a)


def write_encoded(path: PathLike, audio: np.ndarray, sample_rate: int, *,
                  subtype: str = "OPUS", compression_level: float = 0.0,
                  overwrite: bool = False) -> None:
    """Write float ``[C, T]`` audio as an Ogg file (``OPUS`` or ``VORBIS``) atomically.

    Lossy: only for carrying data (``upband corpus pack --codec opus``), never for outputs.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path}: already exists (use --force to overwrite)")
    atomic_write_bytes(path, encode_bytes(audio, sample_rate, format="OGG", subtype=subtype,
                                          compression_level=compression_level))


# --------------------------------------------------------------------------------------------
# resampling and channels
# --------------------------------------------------------------------------------------------


def resampled_length(frames: int, sr_in: int, sr_out: int) -> int:
    """The exact output length upband uses for ``frames`` input frames: round(frames * ratio)."""
    return (frames * sr_out + sr_in // 2) // sr_in


def resample(audio: np.ndarray, sr_in: int, sr_out: int, *, quality: str = "VHQ") -> np.ndarray:
    """Resample along the last axis (any leading shape) with libsoxr.

    The output has exactly ``resampled_length(T, sr_in, sr_out)`` samples and is time-aligned
    with the input (linear phase, delay compensated). Returns float32; never modifies ``audio``.
    """
    x = np.asarray(audio, dtype=np.float32)
    if sr_in == sr_out:
        return x.copy()
    if sr_in <= 0 or sr_out <= 0:
        raise ValueError(f"sample rates must be positive, got {sr_in} -> {sr_out}")
    lead, t = x.shape[:-1], x.shape[-1]
    n_out = resampled_length(t, sr_in, sr_out)
    if t == 0:
        return np.zeros((*lead, 0), np.float32)
    flat = x.reshape(-1, t)
    y = soxr.resample(np.ascontiguousarray(flat.T), sr_in, sr_out, quality=quality)
    y = np.asarray(y, dtype=np.float32).T
    y = fit_length(y, n_out)
    return np.ascontiguousarray(y).reshape(*lead, n_out)


def fit_length(y: np.ndarray, n: int) -> np.ndarray:
    """Crop or zero-pad the last axis of ``y`` to exactly ``n`` samples."""
    if y.shape[-1] >= n:
        return y[..., :n]
    pad = np.zeros((*y.shape[:-1], n - y.shape[-1]), y.dtype)
    return np.concatenate([y, pad], axis=-1)


class StreamResampler:
    """Resample ``[C, n]`` blocks one after another; the concatenation equals ``resample``.

    Call ``process(block)`` for each block and ``process(last_block, last=True)`` (or
    ``flush()``) at the end; the total output is exactly ``resampled_length(total_in, ...)``.
    """

    def __init__(self, sr_in: int, sr_out: int, channels: int, *, quality: str = "VHQ") -> None:
        self.sr_in, self.sr_out, self.channels = int(sr_in), int(sr_out), int(channels)
        self._identity = self.sr_in == self.sr_out
        self._stream: Any = None if self._identity else soxr.ResampleStream(
            self.sr_in, self.sr_out, self.channels, dtype="float32", quality=quality)
        self.frames_in = 0
        self.frames_out = 0

    def process(self, block: np.ndarray, last: bool = False) -> np.ndarray:
        a = np.asarray(block, dtype=np.float32)
        if a.ndim != 2 or a.shape[0] != self.channels:
            raise ValueError(f"expected a [{self.channels}, n] block, got shape {a.shape}")
        self.frames_in += a.shape[1]
        if self._identity:
            self.frames_out += a.shape[1]
            return a.copy()
        y = self._stream.resample_chunk(np.ascontiguousarray(a.T), last=last)
        y = np.asarray(y, dtype=np.float32).T
        if last:
            y = fit_length(y, resampled_length(self.frames_in, self.sr_in, self.sr_out)
                            - self.frames_out)
        else:  # never emit more than the exact total can hold
            room = resampled_length(self.frames_in, self.sr_in, self.sr_out) - self.frames_out
            y = y[:, :max(room, 0)]
        self.frames_out += y.shape[1]
        return np.ascontiguousarray(y)

    def flush(self) -> np.ndarray:
        return self.process(np.zeros((self.channels, 0), np.float32), last=True)


def to_channels(audio: np.ndarray, channels: int) -> np.ndarray:
    """Convert ``[C, T]`` to ``[channels, T]``: mono is duplicated, anything is downmixed to mono
    by averaging; other conversions are refused."""
    a = np.asarray(audio, dtype=np.float32)
    c = a.shape[0]
    if c == channels:
        return a
    if channels == 1:
        return a.mean(axis=0, keepdims=True)
    if c == 1:
        return np.repeat(a, channels, axis=0)
    raise ValueError(f"cannot convert {c} channels to {channels}")


def is_audio_path(path: PathLike) -> bool:
    """Whether ``path`` has an extension upband reads (used to pick files from folders)."""
    return Path(path).suffix.lower() in READ_EXTENSIONS

