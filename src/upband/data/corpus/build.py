"""Building a corpus from audio files: index, deduplicate, decode in workers, pack into shards.

:func:`build_corpus` finds audio files under the sources (:mod:`~upband.data.corpus.sources`),
gives each an id, a licence and a split (:mod:`~upband.data.corpus.splits`), skips byte-for-byte
duplicates before decoding, then decodes and measures every other file in worker processes
(:mod:`~upband.data.corpus.decode`) and packs the kept ones into ``.npy`` shards by split, then
id (:mod:`~upband.data.corpus.staging`): the same corpus for any worker count. Skipped files stay
in the index with the reason in ``skipped``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from upband import audio
from upband.common.clock import utcnow
from upband.common.hashing import file_sha256
from upband.common.progress import audio_bar
from upband.common.version import __version__
from upband.data.corpus.decode import Task, run_tasks
from upband.data.corpus.reading import Corpus
from upband.data.corpus.records import (
    CORPUS_FORMAT,
    CORPUS_VERSION,
    SPLITS,
    CorpusSummary,
    FileRecord,
)
from upband.data.corpus.sources import Source, find_sources
from upband.data.corpus.splits import DEFAULT_SPLITS, check_splits, forced_split, matching, split_of
from upband.data.corpus.staging import Staging, write_npy_shards
from upband.errors import SpecError, UpbandError

#: Default ``min_cutoff_hz`` as a fraction of the corpus Nyquist rate (see ``default_min_cutoff``).
MIN_CUTOFF_FRACTION = 16000.0 / 22050.0


def default_min_cutoff(sample_rate: int) -> float:
    """The default ``min_cutoff_hz``: 16 kHz at 44.1 kHz, the same fraction of Nyquist elsewhere
    (17.4 kHz at 48 kHz).

    16 kHz is the top of the cutoffs the ``versatile`` preset draws and 45 % above Sulun's
    11 025 Hz, so every kept file has real content over most of the band the models must
    restore. The lossy game soundtracks of the standard corpus (docs/data.md) mostly stop between
    16 and 19 kHz (Vorbis' own low-pass); the detector's full-band threshold (18.7 kHz) would
    drop most of them.
    """
    return round(MIN_CUTOFF_FRACTION * sample_rate / 2, 1)


@dataclass(frozen=True)
class _Settings:
    """The checked arguments of one build."""

    sample_rate: int
    channels: int
    min_cutoff_hz: float
    fractions: tuple[float, float, float]
    split_lists: dict[str, list[str]]
    shard_seconds: float
    workers: int


def _settings(sample_rate: int, channels: int, min_cutoff_hz: float | None,
              splits: Sequence[float], split_lists: Mapping[str, Sequence[str]] | None,
              shard_seconds: float, workers: int | None) -> _Settings:
    sample_rate = int(sample_rate)
    if not audio.MIN_SAMPLE_RATE <= sample_rate <= audio.MAX_SAMPLE_RATE:
        raise SpecError(f"sample rate must be {audio.MIN_SAMPLE_RATE}-{audio.MAX_SAMPLE_RATE} Hz, "
                        f"got {sample_rate}")
    if channels not in (1, 2):
        raise SpecError(f"channels must be 1 or 2, got {channels}")
    fractions = check_splits(splits)
    lists = {k: list(v) for k, v in (split_lists or {}).items()}
    if set(lists) - set(SPLITS):
        bad = ", ".join(sorted(set(lists) - set(SPLITS)))
        raise SpecError(f"unknown split(s) in split lists: {bad}; choose from {', '.join(SPLITS)}")
    if not shard_seconds > 0:
        raise SpecError(f"shard_seconds must be positive, got {shard_seconds}")
    cutoff = default_min_cutoff(sample_rate) if min_cutoff_hz is None else float(min_cutoff_hz)
    if workers is None:
        workers = min(4, os.cpu_count() or 1)
    if workers < 0:
        raise SpecError(f"workers must be >= 0, got {workers}")
    return _Settings(sample_rate, channels, cutoff, fractions, lists, shard_seconds, workers)


def _index(found: Sequence[Source], settings: _Settings, exclude: Sequence[str],
           licences: Mapping[str, str]) -> dict[str, FileRecord]:
    """Every file once: id, split, licence, sha256 (unreadable files skipped as errors)."""
    lists = settings.split_lists
    records: dict[str, FileRecord] = {}
    seen_paths: set[Path] = set()
    used_patterns: set[str] = set()
    for src in found:
        for path in src.files:
            if path in seen_paths:
                continue
            seen_paths.add(path)
            relpath = path.relative_to(src.root).as_posix()
            file_id = f"{src.name}/{relpath}"
            if matching(file_id, relpath, exclude):
                continue
            if file_id in records:
                raise SpecError(f"two sources give the file id {file_id!r}: source folders need "
                                "distinct names (the split hash uses them)")
            forced = forced_split(file_id, relpath, lists) if lists else None
            if forced is not None:
                used_patterns.update(matching(file_id, relpath, lists[forced]))
            digest: str | None = None
            problem: str | None = None
            try:
                digest = file_sha256(path)
            except OSError as err:
                problem = f"error: {path}: cannot read ({err.strerror})"
            records[file_id] = FileRecord(
                id=file_id, source=src.name, path=str(path), relpath=relpath,
                licence=licences.get(str(path), src.licence),
                split=forced or split_of(file_id, settings.fractions), sha256=digest,
                skipped=problem)
    unused = [p for ps in lists.values() for p in ps if p not in used_patterns]
    if unused:  # stacklevel: the caller of build_corpus
        warnings.warn(f"split list entries matching no file: {', '.join(unused)}", stacklevel=3)
    return records


def _skip_duplicates(records: dict[str, FileRecord]) -> None:
    """Mark byte-identical files as duplicates: the first id (sorted) of identical bytes stays."""
    by_hash: dict[str, str] = {}
    for file_id in sorted(records):
        r = records[file_id]
        if r.sha256 is None or r.skipped:
            continue
        if r.sha256 in by_hash:
            records[file_id] = replace(r, skipped=f"duplicate: same bytes as {by_hash[r.sha256]}")
        else:
            by_hash[r.sha256] = file_id


def _decode_all(records: dict[str, FileRecord], ids: Sequence[str], work: Path,
                settings: _Settings, progress: bool) -> None:
    """Decode every unskipped file into ``work/{n}.npy`` (``n`` its place in ``ids``) and fill
    in its record."""
    tasks = [Task(i, records[fid].path, settings.sample_rate, settings.channels,
                  settings.min_cutoff_hz, str(work / f"{i}.npy"))
             for i, fid in enumerate(ids) if records[fid].skipped is None]
    total_s = 0.0
    for t in tasks:
        with contextlib.suppress(UpbandError):
            total_s += audio.info(t.path).duration
    bar = audio_bar(total_s, "decoding", enabled=progress, log=True)
    try:
        for res in run_tasks(tasks, settings.workers):
            fid = ids[res.index]
            fields = asdict(res)
            del fields["index"]
            records[fid] = replace(records[fid], **fields)
            bar.update(res.duration_s)
    finally:
        bar.close()


def _pack(records: Mapping[str, FileRecord], ids: Sequence[str], work: Path, shards: Path,
          settings: _Settings, progress: bool) -> list[FileRecord]:
    """Pack the decoded files into ``.npy`` shards, by split then id."""
    ordered = [records[fid] for fid in ids]
    index_of = {fid: i for i, fid in enumerate(ids)}
    sr = settings.sample_rate
    bar = audio_bar(sum(r.frames for r in ordered if r.packed) / sr, "packing", enabled=progress,
                    log=True)

    def fetch(r: FileRecord) -> np.ndarray:
        return np.load(work / f"{index_of[r.id]}.npy", mmap_mode="r")

    try:
        return write_npy_shards(shards, ordered, settings.channels,
                                max(1, round(settings.shard_seconds * sr)), fetch,
                                lambda n: bar.update(n / sr))
    finally:
        bar.close()


def _description(settings: _Settings, found: Sequence[Source],
                 exclude: Sequence[str]) -> dict[str, Any]:
    """The ``corpus.json`` fields of a new build (the staging adds shards and totals)."""
    return {
        "format": CORPUS_FORMAT, "version": CORPUS_VERSION, "storage": "npy",
        "sample_rate": settings.sample_rate, "channels": settings.channels, "created": utcnow(),
        "upband_version": __version__, "min_cutoff_hz": settings.min_cutoff_hz,
        "splits": dict(zip(SPLITS, settings.fractions, strict=True)),
        "split_lists": settings.split_lists or None, "exclude": list(exclude),
        "shard_seconds": float(settings.shard_seconds),
        "sources": [{"name": s.name, "path": str(s.root), "licence": s.licence,
                     "files": len(s.files)} for s in found],
    }


def build_corpus(sources: Sequence[str | os.PathLike[str]], output: str | os.PathLike[str], *,
                 sample_rate: int = 44100, channels: int = 2, min_cutoff_hz: float | None = None,
                 splits: Sequence[float] = DEFAULT_SPLITS,
                 split_lists: Mapping[str, Sequence[str]] | None = None,
                 workers: int | None = None, shard_seconds: float = 600.0,
                 licences: Mapping[str, str] | None = None, exclude: Sequence[str] = (),
                 overwrite: bool = False, progress: bool = True) -> CorpusSummary:
    """Build a corpus in ``output`` from audio files found under ``sources``.

    Args:
        sources: files or folders (searched recursively), each optionally ``"PATH::LICENCE"``
            (licence ``unknown`` otherwise).
        output: the corpus folder; must not exist or be empty unless ``overwrite``.
        sample_rate: corpus rate in Hz; every file is resampled to it (libsoxr VHQ).
        channels: 1 or 2.
        min_cutoff_hz: files whose measured bandwidth is below this are indexed but skipped;
            default :func:`default_min_cutoff` (16 kHz at 44.1 kHz). 0 keeps every file.
        splits: (train, validation, test) fractions for the hash split.
        split_lists: ``{split: [id, relative path or glob, ...]}`` forcing membership.
        workers: decoding processes (default min(4, CPUs)); 0 decodes in this process.
        shard_seconds: longest ``.npy`` shard; a file longer than that spans shards.
        licences: per-file licence overrides, keyed by the file's absolute path.
        exclude: globs on file ids (``source/relative/path``) or relative paths of files to
            leave out entirely (not even indexed).
        overwrite: replace an existing non-empty ``output``.
        progress: a progress bar on stderr counted in seconds of audio.

    Returns the :class:`CorpusSummary`. Raises ``SpecError`` for bad arguments,
    ``AudioFileNotFoundError`` for a missing source, ``OutputExistsError`` for an existing output.
    A file that fails to decode is recorded as skipped and never stops the build.
    """
    settings = _settings(sample_rate, channels, min_cutoff_hz, splits, split_lists,
                         shard_seconds, workers)
    found = find_sources(sources)
    overrides = {str(Path(k).expanduser().resolve()): v for k, v in (licences or {}).items()}
    records = _index(found, settings, exclude, overrides)
    _skip_duplicates(records)
    with Staging(output, overwrite) as staging:
        work = staging.path / ".files"  # one .npy per decoded file, removed before the commit
        work.mkdir()
        ids = sorted(records)
        _decode_all(records, ids, work, settings, progress)
        final = _pack(records, ids, work, staging.shards, settings, progress)
        shutil.rmtree(work)
        staging.commit(_description(settings, found, exclude), final)
    return Corpus.open(output).summary()
