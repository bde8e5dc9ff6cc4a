"""Packing a corpus for carrying, and back: compressed shards of a size limit, or ``.npy``.

:func:`pack_corpus` re-encodes the shards as FLAC (16-bit, lossless: the samples are
bit-identical) or Opus (lossy, 48 kHz corpora only) files of at most ``max_mib`` MiB each.
*Opus removes everything above 20 kHz and alters the high band: do not use an Opus-packed corpus
as the reference for high-frequency training.* FLAC is the default. :func:`unpack_corpus` turns a
packed corpus back into ``.npy`` shards for the fastest reads; the datasets also read packed
corpora directly (seeking in the compressed files).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from upband import audio
from upband.common.clock import utcnow
from upband.common.progress import audio_bar
from upband.data.corpus.reading import Corpus, open_corpus
from upband.data.corpus.records import SPLITS, CorpusSummary, FileRecord, Piece
from upband.data.corpus.staging import Staging, write_npy_shards
from upband.errors import DecodeError, SpecError, UnsupportedFormatError

#: Sample rates an Opus stream can carry.
OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
#: Smallest piece ``pack_corpus`` writes before it gives up on a size limit (frames).
MIN_PACK_FRAMES = 1024

_Reader = Callable[[int, int], np.ndarray]


def _stream_reader(corpus: Corpus, records: Sequence[FileRecord]) -> _Reader:
    """Read frames [a, b) of the concatenation of ``records`` as float32."""
    starts = np.cumsum([0] + [r.frames for r in records])

    def read(a: int, b: int) -> np.ndarray:
        out = np.zeros((corpus.channels, b - a), np.float32)
        k = int(np.searchsorted(starts, a, side="right")) - 1
        pos = a
        while pos < b and k < len(records):
            r, s = records[k], int(starts[k])
            n = min(b, s + r.frames) - pos
            out[:, pos - a:pos - a + n] = corpus.read(r, pos - s, n)
            pos += n
            k += 1
        return out

    return read


def _encode(path: Path, x: np.ndarray, sr: int, codec: str) -> int:
    """Write ``x`` as a FLAC (16-bit) or Opus file; returns its size in bytes."""
    if codec == "flac":
        audio.write(path, x, sr, subtype="PCM_16", format="flac", overwrite=True)
    else:
        audio.write_encoded(path, x, sr, subtype="OPUS", compression_level=0.0, overwrite=True)
    return path.stat().st_size


class _Packer:
    """Writes one split's audio stream as consecutive pieces under a byte limit each."""

    def __init__(self, src: Corpus, folder: Path, codec: str, max_mib: float, bar: Any) -> None:
        self.src, self.folder, self.codec, self.max_mib, self.bar = src, folder, codec, max_mib, bar
        self.limit = int(max_mib * 2**20)
        self.raw_per_frame = 2.0 * src.channels
        self.bytes_per_frame = self.raw_per_frame  # learnt from the pieces written so far

    def _piece(self, name: str, read: _Reader, pos: int, n: int) -> int:
        """Write frames [pos, pos + n) as ``name``, shortened until it fits; returns its frames."""
        path = self.folder / name
        while True:
            size = _encode(path, read(pos, pos + n), self.src.sample_rate, self.codec)
            if size <= self.limit:
                break
            if n <= MIN_PACK_FRAMES:
                raise SpecError(f"max_mib {self.max_mib:g} is too small: {n} frames take "
                                f"{size} bytes")
            n = max(MIN_PACK_FRAMES, int(n * self.limit / size * 0.95))
        got = audio.info(path).frames
        if got != n:
            raise DecodeError(f"{path}: wrote {n} frames, reads back {got}")
        self.bytes_per_frame = max(size / n, 0.05 * self.raw_per_frame)
        return n

    def split(self, split: str) -> list[FileRecord]:
        """Pack ``split``; returns its records with their new pieces."""
        recs = self.src.files(split)
        read = _stream_reader(self.src, recs)
        total = sum(r.frames for r in recs)
        bounds: list[tuple[str, int, int]] = []  # (shard, start, end) in the split stream
        pos = 0
        while pos < total:
            n = min(total - pos,
                    max(MIN_PACK_FRAMES, int(0.97 * self.limit / self.bytes_per_frame)))
            name = f"{split}-{len(bounds):05d}.{self.codec}"
            n = self._piece(name, read, pos, n)
            bounds.append((name, pos, pos + n))
            self.bar.update(n / self.src.sample_rate)
            pos += n
        out, s = [], 0
        for r in recs:
            pieces = [Piece(name, max(s, a) - a, min(s + r.frames, b) - max(s, a))
                      for name, a, b in bounds if a < s + r.frames and s < b]
            out.append(replace(r, pieces=tuple(pieces)))
            s += r.frames
        return out


def pack_corpus(corpus: str | os.PathLike[str] | Corpus, output: str | os.PathLike[str], *,
                codec: str = "flac", max_mib: float = 60.0, overwrite: bool = False,
                progress: bool = True) -> CorpusSummary:
    """Re-pack a corpus into compressed shards of at most ``max_mib`` MiB each.

    Each split's audio is cut into consecutive pieces; a piece's size is checked after writing
    and the piece is cut shorter until it fits.

    Args:
        corpus: the corpus (folder or open :class:`Corpus`) to pack; any storage.
        output: the new corpus folder; must not exist or be empty unless ``overwrite``.
        codec: ``flac`` (16-bit, bit-identical samples; the default) or ``opus`` (lossy, only
            for :data:`OPUS_RATES`; never use an Opus-packed corpus as a high-frequency training
            reference: Opus removes everything above 20 kHz).
        max_mib: the largest shard file, in MiB.
        overwrite: replace an existing non-empty ``output``.
        progress: a progress bar on stderr counted in seconds of audio.

    Returns:
        The new corpus' :class:`CorpusSummary`.
    """
    src = open_corpus(corpus)
    if codec not in ("flac", "opus"):
        raise SpecError(f"unknown codec {codec!r}; choose flac or opus")
    if codec == "opus" and src.sample_rate not in OPUS_RATES:
        raise UnsupportedFormatError(
            f"Opus stores only {', '.join(str(r) for r in OPUS_RATES)} Hz; this corpus is "
            f"{src.sample_rate} Hz: pack it as FLAC")
    if not max_mib > 0:
        raise SpecError(f"max_mib must be positive, got {max_mib}")
    new_records: dict[str, FileRecord] = {r.id: r for r in src.records}
    total_s = sum(r.frames for r in src.files()) / src.sample_rate
    with Staging(output, overwrite) as staging, \
            contextlib.closing(audio_bar(total_s, f"packing {codec}", enabled=progress,
                                         log=True)) as bar:
        packer = _Packer(src, staging.shards, codec, max_mib, bar)
        for split in SPLITS:
            new_records.update((r.id, r) for r in packer.split(split))
        meta = {**src.meta, "storage": codec, "packed": utcnow(), "max_mib": float(max_mib),
                "packed_from": str(src.path)}
        staging.commit(meta, [new_records[i] for i in sorted(new_records)])
    return Corpus.open(output).summary()


def unpack_corpus(corpus: str | os.PathLike[str] | Corpus, output: str | os.PathLike[str], *,
                  shard_seconds: float = 600.0, overwrite: bool = False,
                  progress: bool = True) -> CorpusSummary:
    """Turn a FLAC/Opus-packed corpus back into ``.npy`` shards (fastest random reads).

    Args:
        corpus: the packed corpus (folder or open :class:`Corpus`).
        output: the new corpus folder; must not exist or be empty unless ``overwrite``.
        shard_seconds: longest ``.npy`` shard, in seconds.
        overwrite: replace an existing non-empty ``output``.
        progress: a progress bar on stderr counted in seconds of audio.

    Returns:
        The new corpus' :class:`CorpusSummary`.
    """
    src = open_corpus(corpus)
    total_s = sum(r.frames for r in src.files()) / src.sample_rate
    with Staging(output, overwrite) as staging, \
            contextlib.closing(audio_bar(total_s, "unpacking", enabled=progress,
                                         log=True)) as bar:
        final = write_npy_shards(staging.shards, src.records, src.channels,
                                 max(1, round(shard_seconds * src.sample_rate)),
                                 src.segment, lambda n: bar.update(n / src.sample_rate))
        meta = {**src.meta, "storage": "npy", "unpacked": utcnow(),
                "shard_seconds": float(shard_seconds), "unpacked_from": str(src.path)}
        staging.commit(meta, final)
    return Corpus.open(output).summary()
