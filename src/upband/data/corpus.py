"""Training corpora: an index of source files plus their audio packed into shards.

A corpus is a folder::

    corpus.json              what it is: format version, sample rate, channels, storage, split
                             fractions, totals per split, the shard list with sizes and sha256
    index.jsonl              one :class:`FileRecord` per source file, packed or skipped
    shards/{split}-{NNNNN}.npy   int16 [channels, N]: the split's files one after another
                             (``.flac`` / ``.opus`` after :func:`pack_corpus`)

:func:`build_corpus` finds audio files under the sources, decodes them in worker processes,
measures each file's real bandwidth on the *original* audio
(:func:`upband.degrade.detect_bandwidth`), resamples it with libsoxr to the corpus rate, converts
the channels and quantises to int16 (rounding, no dither). Files whose own cutoff is below
``min_cutoff_hz``, silent files, byte-for-byte duplicates and files that fail to decode are kept
in the index with the reason in ``skipped`` and are not packed. The build happens in a hidden
sibling folder renamed into place at the end, so an interrupted build never looks like a corpus.

**Splits** are by file. A file's split is a function of its *id* alone, ``{source name}/{path
relative to the source}``: the first 8 bytes of ``sha256(id)`` read as a fraction in [0, 1) are
compared with the cumulative split fractions. It does not depend on where the tree lives, on the
run order or on the worker count; adding files never moves an existing file to another split.
``split_lists`` forces files into a split by id or relative path (globs allowed).

**Channels.** Mono sources are duplicated for a stereo corpus, stereo is averaged for a mono
corpus; files with more than two channels are averaged to mono (then duplicated for a stereo
corpus): channel orders differ between containers (Vorbis puts the centre second), so "the first
two channels" is not reliably left/right, and averaging never drops a channel.

**Packing.** :func:`pack_corpus` re-encodes the shards as FLAC (16-bit, lossless: the samples are
bit-identical) or Opus (lossy, 48 kHz corpora only) files of at most ``max_mib`` MiB each, for
carrying a corpus in pieces. *Opus removes everything above 20 kHz and alters the high band: do
not use an Opus-packed corpus as the reference for high-frequency training.* FLAC is the default.
:func:`unpack_corpus` turns a packed corpus back into ``.npy`` shards for the fastest reads;
the datasets also read packed corpora directly (seeking in the compressed files).

List the test files of a corpus (the held-out set)::

    python -c "import json,sys; [print(r['id']) for r in map(json.loads, open(sys.argv[1]))
               if r['split'] == 'test' and not r['skipped']]" CORPUS/index.jsonl
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import datetime as _dt
import fnmatch
import hashlib
import json
import math
import multiprocessing
import os
import shutil
import sys
import tempfile
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from upband import audio
from upband.errors import (
    AudioFileNotFoundError,
    CorpusError,
    DecodeError,
    EmptyAudioError,
    NotAFileError,
    OutputExistsError,
    SpecError,
    UnsupportedFormatError,
    UpbandError,
)
from upband.fsutil import atomic_write_text, umask

CORPUS_FORMAT = "upband-corpus"
CORPUS_VERSION = 1
META_NAME = "corpus.json"
INDEX_NAME = "index.jsonl"
SHARD_DIR = "shards"
SPLITS = ("train", "validation", "test")
DEFAULT_SPLITS = (0.9, 0.05, 0.05)
DEFAULT_LICENCE = "unknown"
STORAGES = ("npy", "flac", "opus")
#: Sample rates an Opus stream can carry.
OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
#: int16 <-> float scale, the one libsndfile uses for 16-bit PCM (bit-exact round trips).
INT16_SCALE = 32768.0
#: Default ``min_cutoff_hz`` as a fraction of the corpus Nyquist rate (see ``default_min_cutoff``).
MIN_CUTOFF_FRACTION = 16000.0 / 22050.0
#: A lossy file may decode this much shorter than its header says (seconds) without being
#: treated as truncated.
TRUNCATION_TOLERANCE_S = 0.1
#: Smallest piece ``pack_corpus`` writes before it gives up on a size limit (frames).
MIN_PACK_FRAMES = 1024

Progress = Callable[[float], None]


# --------------------------------------------------------------------------------------------
# records
# --------------------------------------------------------------------------------------------


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
        return self.skipped is None and self.frames > 0

    @property
    def skip_kind(self) -> str | None:
        return None if self.skipped is None else self.skipped.split(":", 1)[0]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["pieces"] = [asdict(p) for p in self.pieces]
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FileRecord:
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
        return sum(t.hours for t in self.splits.values())

    def to_dict(self) -> dict[str, Any]:
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


# --------------------------------------------------------------------------------------------
# splits and sources
# --------------------------------------------------------------------------------------------


def default_min_cutoff(sample_rate: int) -> float:
    """The default ``min_cutoff_hz``: 16 kHz at 44.1 kHz, the same fraction of Nyquist elsewhere
    (17.4 kHz at 48 kHz).

    16 kHz is the top of the cutoffs the ``versatile`` preset draws and 45 % above Sulun's
    11 025 Hz, so every kept file has real content over most of the band the models must
    restore. The lossy game soundtracks of REFERENCE.md §6 mostly stop between 16 and 19 kHz
    (Vorbis' own low-pass); the detector's full-band threshold (18.7 kHz) would drop most of them.
    """
    return round(MIN_CUTOFF_FRACTION * sample_rate / 2, 1)


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


def _forced_split(file_id: str, relpath: str,
                  split_lists: Mapping[str, Sequence[str]]) -> str | None:
    hits = {s for s, patterns in split_lists.items()
            if any(fnmatch.fnmatchcase(file_id, p) or fnmatch.fnmatchcase(relpath, p)
                   for p in patterns)}
    if len(hits) > 1:
        raise SpecError(f"{file_id}: listed in more than one split ({', '.join(sorted(hits))})")
    return hits.pop() if hits else None


@dataclass(frozen=True)
class Source:
    """A source given to :func:`build_corpus`: a folder (or one file) and its licence."""

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


# --------------------------------------------------------------------------------------------
# decoding a file (runs in worker processes)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Task:
    index: int
    path: str
    sample_rate: int
    channels: int
    min_cutoff_hz: float
    out: str


@dataclass(frozen=True)
class _Result:
    index: int
    duration_s: float = 0.0
    sample_rate: int = 0
    channels: int = 0
    cutoff_hz: float | None = None
    full_band: bool | None = None
    codec: str | None = None
    skipped: str | None = None
    clipped: int = 0
    frames: int = 0


def quantize(x: np.ndarray) -> tuple[np.ndarray, int]:
    """float -> int16 by rounding (×32768, no dither); returns (samples, clipped count)."""
    y = np.rint(np.asarray(x, dtype=np.float32) * np.float32(INT16_SCALE))
    clipped = int(np.count_nonzero((y > 32767) | (y < -32768)))
    return np.clip(y, -32768, 32767).astype(np.int16), clipped


def convert_channels(x: np.ndarray, channels: int) -> np.ndarray:
    """[C, T] -> [channels, T]; more than two channels are averaged to mono first."""
    if x.shape[0] > 2 and channels != x.shape[0]:
        x = audio.to_channels(x, 1)
    return audio.to_channels(x, channels)


def _decode(path: str) -> tuple[np.ndarray, int]:
    """Decode a whole file; a lossy stream ending up to ``TRUNCATION_TOLERANCE_S`` short of
    its header's length is accepted (Vorbis files often decode a few ms short)."""
    with audio.AudioReader(path) as reader:
        x = reader.read(-1)
        info = reader.info
    missing = info.frames - x.shape[1]
    if x.shape[1] == 0:
        raise EmptyAudioError(f"{path}: contains no audio samples")
    if info.frames_exact and missing > (TRUNCATION_TOLERANCE_S * info.sample_rate
                                        if info.is_lossy else 0):
        raise DecodeError(f"{path}: truncated, decoded {x.shape[1]} of {info.frames} frames")
    return x, info.sample_rate


def _process(task: _Task) -> _Result:
    """Decode, measure, resample, quantise and store one file as ``task.out`` (.npy)."""
    from upband.degrade.detect import detect_bandwidth, fft_size

    try:
        x, sr = _decode(task.path)
    except UpbandError as err:
        return _Result(task.index, skipped=f"error: {err}")
    c, t = x.shape
    base = {"duration_s": t / sr, "sample_rate": sr, "channels": c}
    # the detector needs one analysis frame: pad very short files (drum hits) with silence
    bw = detect_bandwidth(audio.fit_length(x, max(t, fft_size(sr))), sr)
    meta = {**base, "cutoff_hz": round(float(bw.cutoff_hz), 1), "full_band": bool(bw.full_band),
            "codec": bw.codec}
    if bw.silent:
        return _Result(task.index, **meta, skipped="silent: no signal above -90 dBFS")
    if bw.cutoff_hz < task.min_cutoff_hz:
        return _Result(task.index, **meta,
                       skipped=f"low-cutoff: {bw.cutoff_hz:.0f} Hz < {task.min_cutoff_hz:.0f} Hz")
    if c > 2 or task.channels < c:  # downmix before resampling: less work
        x = convert_channels(x, task.channels)
    y = audio.resample(x, sr, task.sample_rate)
    del x
    y = convert_channels(y, task.channels)
    q, clipped = quantize(y)
    np.save(task.out, q)
    return _Result(task.index, **meta, clipped=clipped, frames=int(q.shape[1]))


# --------------------------------------------------------------------------------------------
# writing corpora
# --------------------------------------------------------------------------------------------


def _utcnow() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def _version() -> str:
    from upband import __version__

    return __version__


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class _Staging:
    """A hidden sibling folder that becomes ``output`` when complete (``commit``)."""

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

    def commit(self) -> None:
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
        shutil.rmtree(self.path, ignore_errors=True)


def _write_npy_shards(folder: Path, records: Sequence[FileRecord], channels: int,
                      shard_frames: int, fetch: Callable[[FileRecord], np.ndarray],
                      progress: Progress | None = None) -> list[FileRecord]:
    """Pack the packed ``records`` (any order; written by split, then id) into ``.npy`` shards of
    at most ``shard_frames`` frames. A file goes whole into the current shard when it fits, else
    starts a new shard; only files longer than a shard are cut across shards. Returns the records
    with their pieces filled in."""
    by_id = {r.id: r for r in records}
    out: dict[str, FileRecord] = {}
    for split in SPLITS:
        todo = sorted((r for r in records if r.split == split and r.packed), key=lambda r: r.id)
        layout: list[list[tuple[FileRecord, int, int]]] = []  # per shard: (record, start, n)
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
        pieces: dict[str, list[Piece]] = {r.id: [] for r in todo}
        cache: tuple[str, np.ndarray] | None = None
        for k, items in enumerate(layout):
            name = f"{split}-{k:05d}.npy"
            total = sum(n for _, _, n in items)
            tmp = folder / f".{name}.tmp"
            arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.int16,
                                            shape=(channels, total))
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


def _finish(staging: _Staging, meta: dict[str, Any], records: Sequence[FileRecord]) -> None:
    """Write index + corpus.json into the staging folder (corpus.json last) and commit."""
    shard_dir = staging.path / SHARD_DIR
    shards = []
    for p in sorted(shard_dir.iterdir()):
        if p.name.startswith("."):
            continue
        shards.append({"name": p.name, "bytes": p.stat().st_size, "sha256": _sha256_file(p)})
    meta["shards"] = shards
    totals: dict[str, SplitTotals] = {}
    sr = int(meta["sample_rate"])
    for split in SPLITS:
        packed = [r for r in records if r.split == split and r.packed]
        frames = sum(r.frames for r in packed)
        totals[split] = SplitTotals(len(packed), frames, round(frames / sr / 3600, 6))
    meta["totals"] = {k: asdict(v) for k, v in totals.items()}
    meta["skipped"] = dict(sorted(Counter(r.skip_kind for r in records if r.skipped).items()))
    meta["files_seen"] = len(records)
    index = "".join(json.dumps(r.to_dict(), ensure_ascii=False) + "\n" for r in records)
    atomic_write_text(staging.path / INDEX_NAME, index)
    atomic_write_text(staging.path / META_NAME, json.dumps(meta, indent=2) + "\n")
    staging.commit()


class _Bar:
    """A tqdm bar counted in seconds of audio, or nothing."""

    def __init__(self, enabled: bool, total_s: float, desc: str) -> None:
        self._bar: Any = None
        if enabled:
            from tqdm import tqdm

            tty = sys.stderr.isatty()
            self._bar = tqdm(total=round(total_s, 1), unit="s", desc=desc, file=sys.stderr,
                             dynamic_ncols=True, mininterval=0.5 if tty else 30.0,
                             bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s of audio "
                                        "[{elapsed}<{remaining}]")

    def __call__(self, seconds: float) -> None:
        if self._bar is not None:
            self._bar.update(seconds)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


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
    found = find_sources(sources)
    overrides = {str(Path(k).expanduser().resolve()): v for k, v in (licences or {}).items()}

    # 1. index every file: id, split, licence, sha256 (duplicates skipped before decoding)
    records: dict[str, FileRecord] = {}
    seen_paths: set[Path] = set()
    by_hash: dict[str, str] = {}
    used_patterns: set[str] = set()
    for src in found:
        for path in src.files:
            if path in seen_paths:
                continue
            seen_paths.add(path)
            relpath = path.relative_to(src.root).as_posix()
            file_id = f"{src.name}/{relpath}"
            if any(fnmatch.fnmatchcase(file_id, p) or fnmatch.fnmatchcase(relpath, p)
                   for p in exclude):
                continue
            if file_id in records:
                raise SpecError(f"two sources give the file id {file_id!r}: source folders need "
                                "distinct names (the split hash uses them)")
            forced = _forced_split(file_id, relpath, lists) if lists else None
            if forced is not None:
                used_patterns.update(p for p in lists[forced]
                                     if fnmatch.fnmatchcase(file_id, p)
                                     or fnmatch.fnmatchcase(relpath, p))
            digest: str | None = None
            problem: str | None = None
            try:
                digest = _sha256_file(path)
            except OSError as err:
                problem = f"error: {path}: cannot read ({err.strerror})"
            records[file_id] = FileRecord(
                id=file_id, source=src.name, path=str(path), relpath=relpath,
                licence=overrides.get(str(path), src.licence),
                split=forced or split_of(file_id, fractions), sha256=digest, skipped=problem)
    unused = [p for ps in lists.values() for p in ps if p not in used_patterns]
    if unused:
        warnings.warn(f"split list entries matching no file: {', '.join(unused)}", stacklevel=2)
    for file_id in sorted(records):  # the first id (sorted) of identical bytes is kept
        r = records[file_id]
        if r.sha256 is None or r.skipped:
            continue
        if r.sha256 in by_hash:
            records[file_id] = replace(r, skipped=f"duplicate: same bytes as {by_hash[r.sha256]}")
        else:
            by_hash[r.sha256] = file_id

    staging = _Staging(output, overwrite)
    try:
        # 2. decode in workers into per-file .npy files
        work = staging.path / ".files"
        work.mkdir()
        ids = sorted(records)
        tasks = [_Task(i, records[fid].path, sample_rate, channels, cutoff,
                       str(work / f"{i}.npy"))
                 for i, fid in enumerate(ids) if records[fid].skipped is None]
        total_s = 0.0
        for t in tasks:
            with contextlib.suppress(UpbandError):
                total_s += audio.info(t.path).duration
        bar = _Bar(progress, total_s, "decoding")
        try:
            for res in _run_tasks(tasks, workers):
                fid = ids[res.index]
                fields = asdict(res)
                del fields["index"]
                records[fid] = replace(records[fid], **fields)
                bar(res.duration_s)
        finally:
            bar.close()
        # 3. pack into shards, by split then id: the same corpus for any worker count
        ordered = [records[fid] for fid in ids]
        index_of = {fid: i for i, fid in enumerate(ids)}
        packed_s = sum(r.frames for r in ordered if r.packed) / sample_rate
        bar = _Bar(progress, packed_s, "packing")

        def fetch(r: FileRecord) -> np.ndarray:
            return np.load(work / f"{index_of[r.id]}.npy", mmap_mode="r")

        try:
            final = _write_npy_shards(staging.path / SHARD_DIR, ordered, channels,
                                      max(1, round(shard_seconds * sample_rate)), fetch,
                                      lambda n: bar(n / sample_rate))
        finally:
            bar.close()
        shutil.rmtree(work)
        meta = {
            "format": CORPUS_FORMAT, "version": CORPUS_VERSION, "storage": "npy",
            "sample_rate": sample_rate, "channels": channels, "created": _utcnow(),
            "upband_version": _version(), "min_cutoff_hz": cutoff,
            "splits": dict(zip(SPLITS, fractions, strict=True)),
            "split_lists": lists or None, "exclude": list(exclude),
            "shard_seconds": float(shard_seconds),
            "sources": [{"name": s.name, "path": str(s.root), "licence": s.licence,
                         "files": len(s.files)} for s in found],
        }
        _finish(staging, meta, final)
    except BaseException:
        staging.abort()
        raise
    return Corpus.open(output).summary()


def _run_tasks(tasks: Sequence[_Task], workers: int) -> Iterator[_Result]:
    """Results in completion order; in this process when ``workers`` is 0."""
    if workers == 0 or not tasks:
        for t in tasks:
            yield _process(t)
        return
    # spawn: the parent may hold threads (torch, OpenMP) that make fork unsafe
    ctx = multiprocessing.get_context("spawn")
    with cf.ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=ctx) as pool:
        futures = [pool.submit(_process, t) for t in tasks]
        try:
            for fut in cf.as_completed(futures):
                yield fut.result()
        except BaseException:
            for fut in futures:
                fut.cancel()
            raise


# --------------------------------------------------------------------------------------------
# reading corpora
# --------------------------------------------------------------------------------------------


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
        """Load ``corpus.json`` and ``index.jsonl``; check that every shard is there."""
        root = Path(path).expanduser()
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
        records: list[FileRecord] = []
        n = 0
        index_path = root / INDEX_NAME
        try:
            with index_path.open(encoding="utf-8") as fh:
                for n, line in enumerate(fh, 1):  # noqa: B007 - n names the bad line
                    if line.strip():
                        records.append(FileRecord.from_dict(json.loads(line)))
        except FileNotFoundError:
            raise CorpusError(f"{index_path}: missing corpus index") from None
        except (json.JSONDecodeError, TypeError, KeyError) as err:
            raise CorpusError(f"{index_path}: corrupt at line {n} ({err})") from None
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
                if _sha256_file(self.shard_path(s["name"])) != s["sha256"]]


def open_corpus(path: str | os.PathLike[str] | Corpus) -> Corpus:
    return path if isinstance(path, Corpus) else Corpus.open(path)


# --------------------------------------------------------------------------------------------
# packing
# --------------------------------------------------------------------------------------------


def _stream_reader(corpus: Corpus, records: Sequence[FileRecord]
                   ) -> Callable[[int, int], np.ndarray]:
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


def pack_corpus(corpus: str | os.PathLike[str] | Corpus, output: str | os.PathLike[str], *,
                codec: str = "flac", max_mib: float = 60.0, overwrite: bool = False,
                progress: bool = True) -> CorpusSummary:
    """Re-pack a corpus into compressed shards of at most ``max_mib`` MiB each.

    ``codec`` is ``flac`` (16-bit, bit-identical samples; the default) or ``opus`` (lossy, only
    for 48 kHz corpora; never use an Opus-packed corpus as a high-frequency training reference:
    Opus removes everything above 20 kHz). Each split's audio is cut into consecutive pieces;
    a piece's size is checked after writing and the piece is cut shorter until it fits.
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
    limit = int(max_mib * 2**20)
    staging = _Staging(output, overwrite)
    new_records: dict[str, FileRecord] = {r.id: r for r in src.records}
    bar = _Bar(progress, sum(r.frames for r in src.files()) / src.sample_rate, f"packing {codec}")
    try:
        folder = staging.path / SHARD_DIR
        raw_per_frame = 2.0 * src.channels
        bytes_per_frame = raw_per_frame  # learnt from the pieces written so far
        for split in SPLITS:
            recs = src.files(split)
            read = _stream_reader(src, recs)
            total = sum(r.frames for r in recs)
            bounds: list[tuple[str, int, int]] = []  # (shard, start, end) in the split stream
            pos, k = 0, 0
            while pos < total:
                n = min(total - pos, max(MIN_PACK_FRAMES, int(0.97 * limit / bytes_per_frame)))
                name = f"{split}-{k:05d}.{codec}"
                while True:
                    size = _encode(folder / name, read(pos, pos + n), src.sample_rate, codec)
                    if size <= limit:
                        break
                    if n <= MIN_PACK_FRAMES:
                        raise SpecError(f"max_mib {max_mib:g} is too small: {n} frames take "
                                        f"{size} bytes")
                    n = max(MIN_PACK_FRAMES, int(n * limit / size * 0.95))
                got = audio.info(folder / name).frames
                if got != n:
                    raise DecodeError(f"{folder / name}: wrote {n} frames, reads back {got}")
                bytes_per_frame = max(size / n, 0.05 * raw_per_frame)
                bounds.append((name, pos, pos + n))
                bar(n / src.sample_rate)
                pos += n
                k += 1
            s = 0
            for r in recs:
                pieces = [Piece(name, max(s, a) - a, min(s + r.frames, b) - max(s, a))
                          for name, a, b in bounds if a < s + r.frames and s < b]
                new_records[r.id] = replace(r, pieces=tuple(pieces))
                s += r.frames
        meta = {**src.meta, "storage": codec, "packed": _utcnow(), "max_mib": float(max_mib),
                "packed_from": str(src.path)}
        _finish(staging, meta, [new_records[i] for i in sorted(new_records)])
    except BaseException:
        staging.abort()
        raise
    finally:
        bar.close()
    return Corpus.open(output).summary()


def unpack_corpus(corpus: str | os.PathLike[str] | Corpus, output: str | os.PathLike[str], *,
                  shard_seconds: float = 600.0, overwrite: bool = False,
                  progress: bool = True) -> CorpusSummary:
    """Turn a FLAC/Opus-packed corpus back into ``.npy`` shards (fastest random reads)."""
    src = open_corpus(corpus)
    staging = _Staging(output, overwrite)
    bar = _Bar(progress, sum(r.frames for r in src.files()) / src.sample_rate, "unpacking")
    try:
        final = _write_npy_shards(staging.path / SHARD_DIR, src.records, src.channels,
                                  max(1, round(shard_seconds * src.sample_rate)),
                                  src.segment, lambda n: bar(n / src.sample_rate))
        meta = {**src.meta, "storage": "npy", "unpacked": _utcnow(),
                "shard_seconds": float(shard_seconds), "unpacked_from": str(src.path)}
        _finish(staging, meta, final)
    except BaseException:
        staging.abort()
        raise
    finally:
        bar.close()
    return Corpus.open(output).summary()
