"""Writing a corpus: a hidden staging folder, ``.npy`` shards, then index and description.

Every corpus (built, packed or unpacked) is written into a hidden sibling of its output folder
and renamed into place at the end, ``corpus.json`` written last: an interrupted write never looks
like a corpus.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

from upband.common.hashing import file_sha256
from upband.data.corpus.records import (
    INDEX_NAME,
    META_NAME,
    SHARD_DIR,
    SPLITS,
    FileRecord,
    Piece,
    SplitTotals,
    description_text,
    index_text,
)
from upband.errors import AudioFileNotFoundError, DecodeError, NotAFileError, OutputExistsError
from upband.fsutil import atomic_write_text, umask

#: Called with a count of frames just written.
Progress = Callable[[int], None]
#: (record, first frame of the record, frames) placed one after another in one shard.
_Layout = list[list[tuple[FileRecord, int, int]]]


class Staging:
    """A hidden sibling folder that becomes ``output`` when complete (:meth:`commit`); used as
    ``with Staging(...) as staging:``, it is removed if the block fails.

    Raises ``NotAFileError`` when ``output`` is a file, ``OutputExistsError`` when it is a
    non-empty folder and not ``overwrite``, ``AudioFileNotFoundError`` without its parent.
    """

    def __init__(self, output: str | os.PathLike[str], overwrite: bool) -> None:
        self.output = Path(output).expanduser()
        if self.output.exists():
            if not self.output.is_dir():
                raise NotAFileError(f"{self.output}: exists and is not a folder")
            if any(self.output.iterdir()) and not overwrite:
                raise OutputExistsError(
                    f"{self.output}: already exists and is not empty (use --force to replace it)")
        parent = self.output.resolve().parent
        if not parent.is_dir():
            raise AudioFileNotFoundError(f"{parent}: output's parent folder does not exist")
        self.path = Path(tempfile.mkdtemp(prefix=f".{self.output.name}.building-", dir=parent))
        (self.path / SHARD_DIR).mkdir()

    @property
    def shards(self) -> Path:
        """The staging folder's shard folder."""
        return self.path / SHARD_DIR

    def commit(self, meta: dict[str, Any], records: Sequence[FileRecord]) -> None:
        """Complete ``meta`` with the shard list, the totals per split and the skipped counts,
        write the index and ``corpus.json`` (last), then put the folder in place of ``output``
        (an old corpus there is removed only after the swap)."""
        _describe(meta, records, self.shards)
        atomic_write_text(self.path / INDEX_NAME, index_text(records))
        atomic_write_text(self.path / META_NAME, description_text(meta))
        os.chmod(self.path, 0o755 & ~umask())
        old: Path | None = None
        if self.output.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{self.output.name}.old-",
                                        dir=self.output.resolve().parent))
            os.replace(self.output, old / "corpus")
        os.replace(self.path, self.output)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    def abort(self) -> None:
        """Remove the staging folder."""
        shutil.rmtree(self.path, ignore_errors=True)

    def __enter__(self) -> Staging:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        """Leaving the block by any exception (an interrupt included) removes the staging
        folder; the output is then as it was."""
        if kind is not None:
            self.abort()


def _describe(meta: dict[str, Any], records: Sequence[FileRecord], shard_dir: Path) -> None:
    meta["shards"] = [{"name": p.name, "bytes": p.stat().st_size, "sha256": file_sha256(p)}
                      for p in sorted(shard_dir.iterdir()) if not p.name.startswith(".")]
    totals: dict[str, SplitTotals] = {}
    sr = int(meta["sample_rate"])
    for split in SPLITS:
        packed = [r for r in records if r.split == split and r.packed]
        frames = sum(r.frames for r in packed)
        totals[split] = SplitTotals(len(packed), frames, round(frames / sr / 3600, 6))
    meta["totals"] = {k: asdict(v) for k, v in totals.items()}
    meta["skipped"] = dict(sorted(Counter(r.skip_kind for r in records if r.skipped).items()))
    meta["files_seen"] = len(records)


def _layout(todo: Sequence[FileRecord], shard_frames: int) -> _Layout:
    """Place files in shards: a file goes whole into the current shard when it fits, else starts
    a new shard; only files longer than a shard are cut across shards."""
    layout: _Layout = []
    used = shard_frames
    for r in todo:
        if used + r.frames > shard_frames and used > 0:
            layout.append([])
            used = 0
        start = 0
        while start < r.frames:
            if used == shard_frames:
                layout.append([])
                used = 0
            n = min(r.frames - start, shard_frames - used)
            layout[-1].append((r, start, n))
            used += n
            start += n
    return layout


def write_npy_shards(folder: Path, records: Sequence[FileRecord], channels: int,
                     shard_frames: int, fetch: Callable[[FileRecord], np.ndarray],
                     progress: Progress | None = None) -> list[FileRecord]:
    """Pack the packed ``records`` into ``.npy`` shards of at most ``shard_frames`` frames.

    Args:
        folder: where the shards go (``{split}-{NNNNN}.npy``).
        records: every record, any order; the packed ones are written by split, then id.
        channels: the corpus channels.
        shard_frames: the longest shard, in frames.
        fetch: a record's whole audio, int16 ``[channels, record.frames]``.
        progress: called with the frames written after each piece.

    Returns:
        All ``records`` in id order, with their pieces filled in (none for unpacked ones).
    """
    by_id = {r.id: r for r in records}
    out: dict[str, FileRecord] = {}
    for split in SPLITS:
        todo = sorted((r for r in records if r.split == split and r.packed), key=lambda r: r.id)
        pieces: dict[str, list[Piece]] = {r.id: [] for r in todo}
        cache: tuple[str, np.ndarray] | None = None
        for k, items in enumerate(_layout(todo, shard_frames)):
            name = f"{split}-{k:05d}.npy"
            tmp = folder / f".{name}.tmp"
            arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.int16,
                                            shape=(channels, sum(n for _, _, n in items)))
            pos = 0
            for r, start, n in items:
                if cache is None or cache[0] != r.id:
                    cache = (r.id, fetch(r))
                data = cache[1]
                if data.shape != (channels, r.frames):
                    raise DecodeError(f"{r.id}: expected [{channels}, {r.frames}] samples, got "
                                      f"{list(data.shape)}")
                arr[:, pos:pos + n] = data[:, start:start + n]
                pieces[r.id].append(Piece(name, pos, n))
                pos += n
                if progress is not None:
                    progress(n)
            arr.flush()
            del arr
            os.replace(tmp, folder / name)
        for r in todo:
            out[r.id] = replace(r, pieces=tuple(pieces[r.id]))
    return [out.get(i, replace(r, pieces=())) for i, r in sorted(by_id.items())]
