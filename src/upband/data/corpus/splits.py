"""Which split a file belongs to: a hash of its id, or a split list that forces it.

A file's split is a function of its *id* alone, ``{source name}/{path relative to the source}``:
the first 8 bytes of ``sha256(id)`` read as a fraction in [0, 1) are compared with the cumulative
split fractions. It does not depend on where the tree lives, on the run order or on the worker
count; adding files never moves an existing file to another split. Split lists force files into
a split by id or relative path (globs allowed).
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from upband.data.corpus.records import SPLITS
from upband.errors import AudioFileNotFoundError, SpecError

DEFAULT_SPLITS = (0.9, 0.05, 0.05)


def check_splits(splits: Sequence[float]) -> tuple[float, float, float]:
    """Validate (train, validation, test) fractions: three numbers >= 0 summing to 1."""
    if len(splits) != 3:
        raise SpecError(f"splits must be three fractions (train, validation, test), got {splits!r}")
    try:
        out = tuple(float(s) for s in splits)
    except (TypeError, ValueError):
        raise SpecError(f"splits must be numbers, got {splits!r}") from None
    if any(not math.isfinite(s) or s < 0 for s in out) or abs(sum(out) - 1.0) > 1e-6:
        raise SpecError(f"split fractions must be >= 0 and sum to 1, got {splits!r}")
    return out[0], out[1], out[2]


def parse_splits(text: str) -> tuple[float, float, float]:
    """``"0.9,0.05,0.05"`` (train, validation, test; ``/`` or ``:`` also separate) -> fractions,
    for a ``--splits`` option."""
    parts = [p for p in text.replace("/", ",").replace(":", ",").split(",") if p.strip()]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise SpecError(f"splits must be three numbers like 0.9,0.05,0.05, got {text!r}") from None
    return check_splits(values)


def read_split_lists(path: str | os.PathLike[str]) -> dict[str, list[str]]:
    """Read forced split membership for a ``--split-list FILE`` option: a JSON object
    ``{"test": ["pkg/a.ogg", "pkg/live/*"], ...}`` or text lines ``SPLIT PATTERN`` (``#``
    comments). Patterns are file ids (``source/relative/path``) or relative paths, globs allowed."""
    p = Path(path).expanduser()
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise AudioFileNotFoundError(f"{p}: no such split list") from None
    except (OSError, UnicodeDecodeError) as err:
        raise SpecError(f"{p}: unreadable split list ({err})") from None
    out: dict[str, list[str]] = {}
    if text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise SpecError(f"{p}: invalid JSON ({err})") from None
        if not isinstance(data, dict) or not all(
                isinstance(v, list) and all(isinstance(x, str) for x in v) for v in data.values()):
            raise SpecError(f"{p}: expected {{split: [pattern, ...]}}")
        out = {str(k): list(v) for k, v in data.items()}
    else:
        for n, line in enumerate(text.splitlines(), 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            split, _, pattern = line.partition(" ")
            if not pattern.strip():
                raise SpecError(f"{p}:{n}: expected 'SPLIT PATTERN', got {line!r}")
            out.setdefault(split, []).append(pattern.strip())
    bad = set(out) - set(SPLITS)
    if bad:
        raise SpecError(f"{p}: unknown split(s) {', '.join(sorted(bad))}; choose from "
                        f"{', '.join(SPLITS)}")
    return out


def hash_fraction(key: str) -> float:
    """A stable number in [0, 1) from ``key``: the first 8 bytes of its sha256."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def split_of(file_id: str, splits: Sequence[float] = DEFAULT_SPLITS) -> str:
    """The split of ``file_id`` (``source/relative/path``) by its hash and the fractions."""
    u, edge = hash_fraction(file_id), 0.0
    fractions = check_splits(splits)
    for name, frac in zip(SPLITS, fractions, strict=True):
        edge += frac
        if u < edge and frac > 0:
            return name
    return next(n for n, f in zip(reversed(SPLITS), reversed(fractions), strict=True) if f > 0)


def matching(file_id: str, relpath: str, patterns: Iterable[str]) -> list[str]:
    """The ``patterns`` (globs on file ids or relative paths) that name this file."""
    return [p for p in patterns
            if fnmatch.fnmatchcase(file_id, p) or fnmatch.fnmatchcase(relpath, p)]


def forced_split(file_id: str, relpath: str,
                 split_lists: Mapping[str, Sequence[str]]) -> str | None:
    """The split a split list puts the file in, or None; ``SpecError`` when several do."""
    hits = {s for s, patterns in split_lists.items() if matching(file_id, relpath, patterns)}
    if len(hits) > 1:
        raise SpecError(f"{file_id}: listed in more than one split ({', '.join(sorted(hits))})")
    return hits.pop() if hits else None
