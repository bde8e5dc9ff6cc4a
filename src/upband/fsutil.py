"""Atomic file writes: a temporary file in the destination folder, fsynced, renamed into place.

A crash or an exception never leaves a partial file at the destination; an existing file there is
replaced only by a complete new one. Audio goes through :class:`upband.audio.AudioWriter`, which
uses the same rule; this module serves everything else (model files, JSON, corpus indexes).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any

from upband.common.jsonnum import dumps_strict
from upband.errors import SpecError

PathLike = str | os.PathLike[str]


def refuse_input_as_output(src: PathLike, dst: PathLike) -> None:
    """:class:`~upband.errors.SpecError` when ``dst`` is the file ``src`` (upband never
    overwrites an input, whatever the options)."""
    if Path(src).resolve() == Path(dst).resolve():
        raise SpecError(f"{dst}: is the input; upband never overwrites its input")


def umask() -> int:
    """The process's file-creation mask (read without changing it)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (mode 0644 minus the umask): a temporary file
    beside it (its folder is created if missing), flushed to disk, then renamed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".upband-tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644 & ~umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: PathLike, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: PathLike, obj: Any) -> None:
    """:func:`atomic_write_bytes` of ``obj`` as indented JSON (NaN and inf refused)."""
    text = dumps_strict(obj, sort_keys=True) + "\n"
    atomic_write_bytes(path, text.encode())
