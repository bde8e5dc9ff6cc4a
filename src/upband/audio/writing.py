"""Encoding: :class:`AudioWriter` (block by block, atomic, optional TPDF dither), :func:`write`,
:func:`write_encoded`, :func:`encode_bytes` and the choice of output container and subtype.

Every write goes to a temporary file in the destination folder and is moved into place only
when complete, so a crash or an exception never leaves a partial file behind; without
``overwrite`` the move never replaces a file, even one another process wrote meanwhile. The
temporary files are named and cleaned as :mod:`upband.fsutil` describes: one left by a killed
process is removed by the next writer of the same output.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import shutil
from pathlib import Path
from types import TracebackType

import numpy as np
import soundfile as sf

from upband.audio.header import AudioInfo, PathLike, check_finite
from upband.errors import (
    AudioFileNotFoundError,
    NotAFileError,
    OutputExistsError,
    UnsupportedFormatError,
)
from upband.fsutil import (
    atomic_write_bytes,
    make_temp,
    move_into_place,
    umask,
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



def encode_bytes(audio: np.ndarray, sample_rate: int, *, format: str, subtype: str | None = None,
                 compression_level: float | None = None,
                 bitrate_mode: str | None = None) -> bytes:
    """Encode float ``[C, T]`` audio to an in-memory file of the given libsndfile format.

    Used by the codec simulators (OGG/Vorbis, OGG/Opus). ``compression_level`` (0 = best
    quality, 1 = smallest) is passed to libsndfile; ``bitrate_mode`` too, but libsndfile 1.2
    refuses it for OGG codecs (they always run as VBR), so leave it ``None`` for those.
    """
    buf = io.BytesIO()
    try:
        sf.write(buf, _as_frames_last(audio), sample_rate, format=format, subtype=subtype,
                 compression_level=compression_level, bitrate_mode=bitrate_mode)
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError) as err:
        raise UnsupportedFormatError(
            f"cannot encode {format}/{subtype} at {sample_rate} Hz: {err}") from None
    return buf.getvalue()



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

    Blocks go to a temporary file next to ``path``; ``close()`` moves it into place. If the
    ``with`` block raises (Ctrl-C included), the temporary file is deleted and ``path`` is left
    untouched. Temporary files of ``path`` left by killed processes are removed when the writer
    starts. Without ``overwrite``, ``close()`` raises :class:`OutputExistsError` (and drops
    what was written) if ``path`` appeared meanwhile: it never replaces another writer's file.

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
        self._overwrite = overwrite
        fd, self._tmp = make_temp(self.path)
        os.close(fd)
        self.frames = 0
        try:
            self._f = sf.SoundFile(str(self._tmp), "w", samplerate=self.sample_rate,
                                   channels=self.channels, subtype=self.subtype,
                                   format=self.format)
        except BaseException as err:
            self._tmp.unlink(missing_ok=True)
            if isinstance(err, (sf.LibsndfileError, RuntimeError, ValueError)):
                raise UnsupportedFormatError(
                    f"{self.path}: cannot write {self.format}/{self.subtype} with {channels} "
                    f"channels at {sample_rate} Hz ({err})") from None
            raise
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
        try:
            self._f.write(np.ascontiguousarray(a.T))
        except (sf.LibsndfileError, RuntimeError) as err:
            raise self._write_failed(err) from None
        self.frames += a.shape[1]

    def _write_failed(self, err: Exception) -> OSError:
        """libsndfile's "System error." as the ``OSError`` it stands for (a full disk, or a
        folder that stopped being writable), naming the output."""
        try:
            full = shutil.disk_usage(self._tmp.parent).free < 1 << 20
        except OSError:
            full = False
        if full:
            return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path))
        return OSError(errno.EIO, f"cannot write ({err})", str(self.path))

    def close(self) -> None:
        """Finish the file and move it into place.

        Raises:
            OutputExistsError: ``path`` appeared since the writer started and ``overwrite`` was
                not given; it is left as it is. On this or any other error the temporary file
                is removed.
        """
        if self._done:
            return
        self._done = True
        try:
            try:
                self._f.close()
            except (sf.LibsndfileError, RuntimeError) as err:
                raise self._write_failed(err) from None
            with open(self._tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            os.chmod(self._tmp, 0o644 & ~umask())
            move_into_place(self._tmp, self.path, overwrite=self._overwrite)
        except BaseException:
            with contextlib.suppress(OSError):
                self._tmp.unlink(missing_ok=True)
            raise

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
                                          compression_level=compression_level),
                       overwrite=overwrite)
