"""The sources of a corpus build: folders (searched recursively) or single files, each with a
licence (``"PATH::LICENCE"``)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from upband import audio
from upband.errors import (
    AudioFileNotFoundError,
    NotAFileError,
    SpecError,
    UnsupportedFormatError,
)

DEFAULT_LICENCE = "unknown"


@dataclass(frozen=True)
class Source:
    """A source given to :func:`~upband.data.corpus.build_corpus`: a folder (or one file) and
    its licence. ``files`` are absolute paths under ``root``; ``name`` starts every file id."""

    root: Path
    name: str
    licence: str
    files: tuple[Path, ...]


def parse_source(text: str | os.PathLike[str]) -> tuple[Path, str]:
    """``"PATH"`` or ``"PATH::LICENCE"`` -> (path, licence)."""
    s = os.fspath(text)
    path, sep, licence = s.rpartition("::")
    if not sep or not licence.strip() or not path:
        path, licence = s, DEFAULT_LICENCE
    return Path(path).expanduser(), licence.strip()


def _walk_audio(root: Path) -> list[Path]:
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found.extend(Path(dirpath, f) for f in sorted(filenames)
                     if not f.startswith(".") and audio.is_audio_path(f)
                     and Path(dirpath, f).is_file())
    return found


def find_sources(sources: Iterable[str | os.PathLike[str]]) -> list[Source]:
    """Resolve the sources: folders are searched recursively for audio files (hidden files and
    folders left out); a file source is its own folder's only file."""
    out: list[Source] = []
    for text in sources:
        path, licence = parse_source(text)
        if not path.exists():
            raise AudioFileNotFoundError(f"{path}: no such file or folder")
        if path.is_dir():
            root = path.resolve()
            files = tuple(_walk_audio(root))
        elif path.is_file():
            if not audio.is_audio_path(path):
                raise UnsupportedFormatError(f"{path}: not an audio file upband reads")
            root = path.resolve().parent
            files = (path.resolve(),)
        else:
            raise NotAFileError(f"{path}: is neither a file nor a folder")
        out.append(Source(root, root.name or "root", licence, files))
    if not out:
        raise SpecError("no sources given")
    return out
