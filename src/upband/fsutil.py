"""Atomic file writes: a temporary file in the destination folder, fsynced, renamed into place.

A crash or an exception never leaves a partial file at the destination; an existing file there is
replaced only by a complete new one, and only when the caller allows it (``overwrite``). Audio
goes through :class:`upband.audio.AudioWriter`, which uses the same rule; this module serves
everything else (model files, JSON, corpus indexes).

A temporary file is named ``.{name}.{pid}-{host}.{random}.upband-tmp``: the destination's name,
the writing process's ID, a tag of its host and a random part that makes it unique (no two
writers share one, even in one process). A process killed outright (SIGKILL, a power cut)
cannot remove its temporary file; the next writer of the same destination on the same host
removes it (:func:`remove_stale_temps`) once that process is gone.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import re
import socket
import tempfile
from pathlib import Path
from typing import Any, NoReturn

from upband.common.jsonnum import dumps_strict
from upband.errors import OutputExistsError, SpecError

PathLike = str | os.PathLike[str]

#: The suffix of every temporary file upband writes beside an output.
TEMP_SUFFIX = ".upband-tmp"


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


@functools.cache
def host_tag() -> str:
    """Eight hex digits naming this host (a hash of its name) in temporary file names, so that
    a process ID is only ever checked on the host it belongs to (a folder may be shared)."""
    return hashlib.sha256(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:8]


def temp_prefix(dst: PathLike, pid: int | None = None) -> str:
    """The start of the name of a temporary file for ``dst`` written by process ``pid``
    (default: this one) on this host: ``.{name}.{pid}-{host}.``."""
    return f".{Path(dst).name}.{os.getpid() if pid is None else pid}-{host_tag()}."


def make_temp(dst: PathLike) -> tuple[int, Path]:
    """Create a new, empty temporary file beside ``dst``, for this process; returns its open
    descriptor and its path. The name is unique (created exclusively). Temporary files of
    ``dst`` left by killed processes are removed first (:func:`remove_stale_temps`)."""
    dst = Path(dst)
    remove_stale_temps(dst)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(dst), suffix=TEMP_SUFFIX, dir=dst.parent)
    return fd, Path(tmp)


def process_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this host. True whenever that cannot be told (a
    PID that is not positive, a system without ``kill(pid, 0)``): the caller keeps the file."""
    if pid <= 0 or os.name != "posix":  # on Windows os.kill would terminate the process
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError, ValueError):
        return True  # exists (another user's: EPERM), or a number that is no PID: keep the file
    return True


def remove_stale_temps(dst: PathLike) -> list[Path]:
    """Remove the temporary files of ``dst`` left by processes of this host that are gone.

    Only files named like this module's temporaries of ``dst`` itself (``temp_prefix`` with
    any PID) are considered, and only those whose process no longer exists are removed; a
    live process's file is never touched. Best effort: a file that cannot be removed is left.

    Returns:
        The paths removed.
    """
    dst = Path(dst)
    pattern = re.compile(re.escape(f".{dst.name}.") + r"(\d{1,10})-" + re.escape(host_tag())
                         + r"\.[A-Za-z0-9_]+" + re.escape(TEMP_SUFFIX))
    try:
        with os.scandir(dst.parent) as scan:
            found = [(Path(e.path), int(m.group(1))) for e in scan
                     if (m := pattern.fullmatch(e.name)) and not e.is_dir(follow_symlinks=False)]
    except OSError:  # no folder, or one that cannot be read: nothing to clean
        return []
    removed = []
    for path, pid in found:
        if not process_alive(pid):
            with contextlib.suppress(OSError):
                path.unlink()
                removed.append(path)
    return removed


def move_into_place(tmp: PathLike, dst: PathLike, *, overwrite: bool) -> None:
    """Move the complete file ``tmp`` to ``dst`` (same folder).

    With ``overwrite`` an existing ``dst`` is replaced (``os.replace``). Without it, ``dst`` is
    never replaced, even by a file another process put there after the caller checked: the
    move is a hard link (which fails if ``dst`` exists) and the removal of ``tmp``. Where hard
    links are not supported the move falls back to ``os.replace`` after an existence check
    (a short window remains there).

    Raises:
        OutputExistsError: ``dst`` exists and not ``overwrite``; ``tmp`` is then removed.
    """
    if overwrite:
        os.replace(tmp, dst)
        return
    try:
        os.link(tmp, dst)
    except FileExistsError:
        _refuse_existing(tmp, dst)
    except OSError:  # no hard links here (FAT, exFAT, some network file systems): check, rename
        if os.path.lexists(dst):
            _refuse_existing(tmp, dst)
        os.replace(tmp, dst)
        return
    with contextlib.suppress(OSError):  # dst is complete; a temp left is removed as stale later
        os.unlink(tmp)


def _refuse_existing(tmp: PathLike, dst: PathLike) -> NoReturn:
    with contextlib.suppress(OSError):
        os.unlink(tmp)
    raise OutputExistsError(f"{dst}: already exists (use --force to overwrite)")


def atomic_write_bytes(path: PathLike, data: bytes, *, overwrite: bool = True) -> None:
    """Write ``data`` to ``path`` atomically (mode 0644 minus the umask): a temporary file
    beside it (its folder is created if missing), flushed to disk, then renamed.

    Temporary files of ``path`` left by killed processes are removed first. Without
    ``overwrite``, an existing ``path`` (even one that appears while writing) is never
    replaced: :class:`~upband.errors.OutputExistsError`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = make_temp(path)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644 & ~umask())
        move_into_place(tmp, path, overwrite=overwrite)
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
