"""What a corpus folder holds on disk: its layout, its records, its index and its description.

``index.jsonl`` has one :class:`FileRecord` per source file (packed or skipped) as one JSON line,
in id order; ``corpus.json`` describes the whole corpus (format version, sample rate, channels,
storage, split fractions, totals per split, the shard list with sizes and sha256). The samples
are int16: :func:`quantize` is the one float -> int16 rule, :data:`INT16_SCALE` the one scale.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from upband.errors import AudioFileNotFoundError, CorpusError, NotAFileError

CORPUS_FORMAT = "upband-corpus"
CORPUS_VERSION = 1
META_NAME = "corpus.json"
INDEX_NAME = "index.jsonl"
SHARD_DIR = "shards"
SPLITS = ("train", "validation", "test")
STORAGES = ("npy", "flac", "opus")
#: int16 <-> float scale, the one libsndfile uses for 16-bit PCM (bit-exact round trips).
INT16_SCALE = 32768.0


@dataclass(frozen=True)
class Piece:
    """A run of one file's frames stored in one shard: ``frames`` frames from ``offset``."""

    shard: str
    offset: int
    frames: int


@dataclass(frozen=True)
class FileRecord:
    """One source file of a corpus (one line of ``index.jsonl``).

    ``duration_s``, ``sample_rate`` and ``channels`` describe the original file; ``frames`` is
    its length at the corpus rate (0 when skipped) and ``pieces`` where those frames are stored,
    in order (usually one piece; a file crossing a shard boundary has several). ``cutoff_hz`` is
    the detector's measured bandwidth of the original (its Nyquist rate when full band) and
    ``codec`` the detector's guess (``none``, ``lossy``, ``brickwall``). ``skipped`` is None
    for packed files, else ``"<kind>: <detail>"`` with kind one of ``low-cutoff``, ``silent``,
    ``duplicate``, ``error``.
    """

    id: str
    source: str
    path: str
    relpath: str
    licence: str
    split: str
    sha256: str | None = None
    duration_s: float = 0.0
    sample_rate: int = 0
    channels: int = 0
    cutoff_hz: float | None = None
    full_band: bool | None = None
    codec: str | None = None
    skipped: str | None = None
    clipped: int = 0
    frames: int = 0
    pieces: tuple[Piece, ...] = ()

    @property
    def packed(self) -> bool:
        """True when the file's audio is in the shards (not skipped, at least one frame)."""
        return self.skipped is None and self.frames > 0

    @property
    def skip_kind(self) -> str | None:
        """The kind of ``skipped`` (``low-cutoff``, ``silent``, ``duplicate``, ``error``)."""
        return None if self.skipped is None else self.skipped.split(":", 1)[0]

    def to_dict(self) -> dict[str, Any]:
        """The record as its ``index.jsonl`` object."""
        d = asdict(self)
        d["pieces"] = [asdict(p) for p in self.pieces]
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FileRecord:
        """The record of an ``index.jsonl`` object."""
        fields = dict(d)
        fields["pieces"] = tuple(Piece(**p) for p in fields.get("pieces", ()))
        return cls(**fields)


@dataclass(frozen=True)
class SplitTotals:
    """Packed files and their length in one split."""

    files: int = 0
    frames: int = 0
    hours: float = 0.0


@dataclass(frozen=True)
class CorpusSummary:
    """What a corpus holds: totals per split and the skipped files counted by kind."""

    path: str
    sample_rate: int
    channels: int
    storage: str
    splits: dict[str, SplitTotals]
    skipped: dict[str, int]
    files_seen: int
    bytes: int = 0
    licences: dict[str, int] = field(default_factory=dict)

    @property
    def hours(self) -> float:
        """Packed hours over all splits."""
        return sum(t.hours for t in self.splits.values())

    def to_dict(self) -> dict[str, Any]:
        """The summary as plain JSON-ready data."""
        return asdict(self)

    def format(self) -> str:
        """A few lines for ``upband corpus info`` / ``build``."""
        lines = [f"{self.path}: {self.storage} corpus, {self.sample_rate} Hz, "
                 f"{self.channels} channel{'s' if self.channels > 1 else ''}, "
                 f"{self.files_seen} files seen, {self.hours:.2f} h packed, "
                 f"{self.bytes / 2**20:.1f} MiB"]
        for name, t in self.splits.items():
            lines.append(f"  {name:<10} {t.files:6d} files  {t.hours:8.3f} h")
        skipped = ", ".join(f"{k} {v}" for k, v in sorted(self.skipped.items())) or "none"
        lines.append(f"  skipped    {sum(self.skipped.values()):6d} files  ({skipped})")
        return "\n".join(lines)


def quantize(x: np.ndarray) -> tuple[np.ndarray, int]:
    """float -> int16 by rounding (×32768, no dither).

    Args:
        x: float samples, any shape, nominally in [-1, 1).

    Returns:
        (int16 samples of ``x``'s shape, count of samples clipped to [-32768, 32767]).
    """
    y = np.rint(np.asarray(x, dtype=np.float32) * np.float32(INT16_SCALE))
    clipped = int(np.count_nonzero((y > 32767) | (y < -32768)))
    return np.clip(y, -32768, 32767).astype(np.int16), clipped


# --------------------------------------------------------------------------------------------
# index.jsonl and corpus.json
# --------------------------------------------------------------------------------------------


def index_text(records: Sequence[FileRecord]) -> str:
    """The ``index.jsonl`` text of ``records``: one JSON object per line, in the given order."""
    return "".join(json.dumps(r.to_dict(), ensure_ascii=False) + "\n" for r in records)


def read_index(path: Path) -> list[FileRecord]:
    """The records of an ``index.jsonl``; ``CorpusError`` when it is missing or corrupt."""
    records: list[FileRecord] = []
    n = 0
    try:
        with path.open(encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):  # noqa: B007 - n names the bad line
                if line.strip():
                    records.append(FileRecord.from_dict(json.loads(line)))
    except FileNotFoundError:
        raise CorpusError(f"{path}: missing corpus index") from None
    except (json.JSONDecodeError, TypeError, KeyError) as err:
        raise CorpusError(f"{path}: corrupt at line {n} ({err})") from None
    return records


def description_text(meta: Mapping[str, Any]) -> str:
    """The ``corpus.json`` text of a corpus description."""
    return json.dumps(meta, indent=2) + "\n"


def read_description(root: Path) -> dict[str, Any]:
    """The ``corpus.json`` of the corpus folder ``root``, checked for format, version and
    storage; ``AudioFileNotFoundError`` / ``NotAFileError`` / ``CorpusError`` otherwise."""
    if not root.exists():
        raise AudioFileNotFoundError(f"{root}: no such corpus folder")
    if not root.is_dir():
        raise NotAFileError(f"{root}: is a file, not a corpus folder")
    meta_path = root / META_NAME
    if not meta_path.is_file():
        raise CorpusError(f"{root}: not a corpus, or an incomplete build ({META_NAME} is "
                          "missing)")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CorpusError(f"{meta_path}: unreadable corpus description ({err})") from None
    if not isinstance(meta, dict) or meta.get("format") != CORPUS_FORMAT:
        raise CorpusError(f"{meta_path}: not an upband corpus description")
    if meta.get("version") != CORPUS_VERSION:
        raise CorpusError(f"{meta_path}: corpus format version {meta.get('version')!r}; "
                          f"this upband reads version {CORPUS_VERSION}")
    if meta.get("storage") not in STORAGES:
        raise CorpusError(f"{meta_path}: unknown shard storage {meta.get('storage')!r}")
    return meta
