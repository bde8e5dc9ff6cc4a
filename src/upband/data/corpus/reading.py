"""Reading a built corpus: :class:`Corpus` opens its index and reads its shards (``.npy``
memory maps, or seeking in FLAC/Opus pieces)."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from upband import audio
from upband.common.hashing import file_sha256
from upband.data.corpus.records import (
    INDEX_NAME,
    INT16_SCALE,
    SHARD_DIR,
    SPLITS,
    CorpusSummary,
    FileRecord,
    Piece,
    SplitTotals,
    quantize,
    read_description,
    read_index,
)
from upband.errors import CorpusError, SpecError


class Corpus:
    """A built corpus, opened read-only: ``Corpus.open(path)``.

    ``files(split)`` lists the packed records of a split; ``read(record, start, frames)`` returns
    float32 audio at ``sample_rate`` (zero outside the file); ``segment(record)`` the whole file
    as int16 ``[channels, frames]`` (a read-only memmap view for ``.npy`` shards when the file
    lies in one shard). Shards are opened lazily in each process, so a ``Corpus`` can be handed
    to DataLoader workers (forked or spawned).
    """

    def __init__(self, path: Path, meta: dict[str, Any], records: list[FileRecord]) -> None:
        self.path = path
        self.meta = meta
        self.sample_rate = int(meta["sample_rate"])
        self.channels = int(meta["channels"])
        self.storage = str(meta["storage"])
        self.records = records
        self._by_split: dict[str, list[FileRecord]] = {s: [] for s in SPLITS}
        for r in records:
            if r.packed:
                self._by_split.setdefault(r.split, []).append(r)
        self._maps: dict[str, np.ndarray] = {}

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Corpus:
        """Load ``corpus.json`` and ``index.jsonl``; check that every shard is there.

        Raises ``AudioFileNotFoundError`` for a missing folder, ``NotAFileError`` for a file,
        ``CorpusError`` for an incomplete, unreadable or damaged corpus.
        """
        root = Path(path).expanduser()
        meta = read_description(root)
        records = read_index(root / INDEX_NAME)
        for shard in meta.get("shards", []):
            p = root / SHARD_DIR / shard["name"]
            if not p.is_file():
                raise CorpusError(f"{p}: shard missing (copy the whole corpus folder)")
            if p.stat().st_size != shard["bytes"]:
                raise CorpusError(f"{p}: {p.stat().st_size} bytes, the corpus says "
                                  f"{shard['bytes']}: truncated or replaced")
        return cls(root, meta, records)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_maps"] = {}  # memmaps are reopened in the receiving process
        return state

    def __repr__(self) -> str:
        return f"Corpus({str(self.path)!r}, {self.storage}, {self.sample_rate} Hz)"

    def files(self, split: str | None = None) -> list[FileRecord]:
        """Packed records of ``split`` (all splits when None), in id order."""
        if split is None:
            return [r for r in self.records if r.packed]
        if split not in SPLITS:
            raise SpecError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
        return list(self._by_split.get(split, []))

    def skipped(self) -> list[FileRecord]:
        """Records of files that were indexed but not packed, with the reason."""
        return [r for r in self.records if r.skipped]

    def shard_path(self, name: str) -> Path:
        """The file of the shard ``name``."""
        return self.path / SHARD_DIR / name

    def _npy(self, name: str) -> np.ndarray:
        m = self._maps.get(name)
        if m is None:
            try:
                m = np.load(self.shard_path(name), mmap_mode="r")
            except (OSError, ValueError) as err:
                raise CorpusError(f"{self.shard_path(name)}: unreadable shard ({err})") from None
            self._maps[name] = m
        return m

    def _piece(self, piece: Piece, a: int, b: int) -> np.ndarray:
        """Frames [a, b) of a piece as float32 (exactly int16 / 32768 for npy and FLAC)."""
        if self.storage == "npy":
            view = self._npy(piece.shard)[:, piece.offset + a:piece.offset + b]
            return view.astype(np.float32) * np.float32(1 / INT16_SCALE)
        return audio.read(self.shard_path(piece.shard), start=piece.offset + a, frames=b - a)[0]

    def segment(self, record: FileRecord) -> np.ndarray:
        """The whole file: int16 ``[channels, frames]`` (a read-only memmap view when it lies in
        one npy shard; decoded from FLAC/Opus otherwise)."""
        if not record.packed:
            raise SpecError(f"{record.id}: not packed ({record.skipped})")
        if self.storage == "npy":
            parts = [self._npy(p.shard)[:, p.offset:p.offset + p.frames] for p in record.pieces]
        else:
            parts = [quantize(self._piece(p, 0, p.frames))[0] for p in record.pieces]
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)

    def read(self, record: FileRecord, start: int, frames: int) -> np.ndarray:
        """Frames ``[start, start + frames)`` of a file as float32 ``[channels, frames]`` in
        [-1, 1); zeros where the range falls outside the file (``start`` may be negative)."""
        out = np.zeros((self.channels, max(frames, 0)), np.float32)
        a, b = max(start, 0), min(start + frames, record.frames)
        pos = 0
        for p in record.pieces:
            lo, hi = max(a, pos), min(b, pos + p.frames)
            if lo < hi:
                out[:, lo - start:hi - start] = self._piece(p, lo - pos, hi - pos)
            pos += p.frames
        return out

    def summary(self) -> CorpusSummary:
        """Totals per split, skipped counts, size on disk and packed files per licence."""
        totals = {k: SplitTotals(**v) for k, v in self.meta.get("totals", {}).items()}
        licences = Counter(r.licence for r in self.records if r.packed)
        return CorpusSummary(
            path=str(self.path), sample_rate=self.sample_rate, channels=self.channels,
            storage=self.storage, splits=totals, skipped=dict(self.meta.get("skipped", {})),
            files_seen=int(self.meta.get("files_seen", len(self.records))),
            bytes=sum(int(s["bytes"]) for s in self.meta.get("shards", [])),
            licences=dict(sorted(licences.items())))

    def verify(self) -> list[str]:
        """Check every shard against its sha256; returns the names of the bad ones."""
        return [s["name"] for s in self.meta.get("shards", [])
                if file_sha256(self.shard_path(s["name"])) != s["sha256"]]


def open_corpus(path: str | os.PathLike[str] | Corpus) -> Corpus:
    """``path`` itself when it is an open :class:`Corpus`, else :meth:`Corpus.open` of it."""
    return path if isinstance(path, Corpus) else Corpus.open(path)
