"""What an audio file is, from its header: :class:`AudioInfo`, :func:`info` and the checks on
input paths, formats and samples that reading shares.

The underscored helpers (``_check_input_path``, ``_sf_open``, ``_info_of``) are private to
:mod:`upband.audio`; :mod:`upband.audio.reading` opens files through them.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from upband.errors import (
    AudioFileNotFoundError,
    DecodeError,
    EmptyAudioError,
    NonFiniteAudioError,
    NotAFileError,
    UnsupportedFormatError,
)

PathLike = str | os.PathLike[str]

MIN_SAMPLE_RATE = 2_000
MAX_SAMPLE_RATE = 192_000

#: Extensions upband reads; anything else that libsndfile cannot open is "unsupported".
READ_EXTENSIONS = frozenset(
    {".wav", ".wave", ".rf64", ".w64", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff",
     ".aifc", ".caf"}
)

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
    def is_lossy(self) -> bool:
        """Whether the audio is stored by a lossy codec (Vorbis, Opus, MP3)."""
        return self.subtype in ("VORBIS", "OPUS") or self.subtype.startswith("MPEG_LAYER")


def _check_input_path(path: PathLike) -> Path:
    """``path`` as a ``Path`` once it is known to be a non-empty regular file."""
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
    except PermissionError:
        return DecodeError(f"{path}: permission denied (cannot read the file)")
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



def is_audio_path(path: PathLike) -> bool:
    """Whether ``path`` has an extension upband reads (used to pick files from folders)."""
    return Path(path).suffix.lower() in READ_EXTENSIONS
