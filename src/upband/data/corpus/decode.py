"""One source file into corpus samples, in worker processes: decode, measure, skip or convert.

Each file's real bandwidth is measured on the *original* audio by the bandwidth detector
(:func:`upband.analysis.detect_bandwidth`); a file whose cutoff is below the build's
``min_cutoff_hz``, a silent file and a file that fails to decode come back with the reason in
``skipped``. Kept files are resampled with libsoxr to the corpus rate, converted to the corpus
channels and quantised to int16 (rounding, no dither).

**Channels.** Mono sources are duplicated for a stereo corpus, stereo is averaged for a mono
corpus; files with more than two channels are averaged to mono (then duplicated for a stereo
corpus): channel orders differ between containers (Vorbis puts the centre second), so "the first
two channels" is not reliably left/right, and averaging never drops a channel.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from upband import audio
from upband.analysis import detect_bandwidth, fft_size
from upband.data.corpus.records import quantize
from upband.errors import DecodeError, EmptyAudioError, UpbandError

#: A lossy file may decode this much shorter than its header says (seconds) without being
#: treated as truncated.
TRUNCATION_TOLERANCE_S = 0.1


@dataclass(frozen=True)
class Task:
    """One file to convert: ``path`` in, int16 ``[channels, frames]`` ``.npy`` at ``out``."""

    index: int
    path: str
    sample_rate: int
    channels: int
    min_cutoff_hz: float
    out: str


@dataclass(frozen=True)
class Result:
    """What a :class:`Task` found: the :class:`~upband.data.corpus.FileRecord` fields it fills."""

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


def convert_channels(x: np.ndarray, channels: int) -> np.ndarray:
    """[C, T] -> [channels, T]; more than two channels are averaged to mono first."""
    if x.shape[0] > 2 and channels != x.shape[0]:
        x = audio.to_channels(x, 1)
    return audio.to_channels(x, channels)


def decode(path: str) -> tuple[np.ndarray, int]:
    """Decode a whole file to float32 ``[C, T]`` and its rate in Hz; a lossy stream ending up to
    ``TRUNCATION_TOLERANCE_S`` short of its header's length is accepted (Vorbis files often
    decode a few ms short)."""
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


def process(task: Task) -> Result:
    """Decode, measure, resample, quantise and store one file as ``task.out`` (.npy)."""
    try:
        x, sr = decode(task.path)
    except UpbandError as err:
        return Result(task.index, skipped=f"error: {err}")
    c, t = x.shape
    base = {"duration_s": t / sr, "sample_rate": sr, "channels": c}
    # the detector needs one analysis frame: pad very short files (drum hits) with silence
    bw = detect_bandwidth(audio.fit_length(x, max(t, fft_size(sr))), sr)
    meta = {**base, "cutoff_hz": round(float(bw.cutoff_hz), 1), "full_band": bool(bw.full_band),
            "codec": bw.codec}
    if bw.silent:
        return Result(task.index, **meta, skipped="silent: no signal above -90 dBFS")
    if bw.cutoff_hz < task.min_cutoff_hz:
        return Result(task.index, **meta,
                      skipped=f"low-cutoff: {bw.cutoff_hz:.0f} Hz < {task.min_cutoff_hz:.0f} Hz")
    if c > 2 or task.channels < c:  # downmix before resampling: less work
        x = convert_channels(x, task.channels)
    y = audio.resample(x, sr, task.sample_rate)
    del x
    y = convert_channels(y, task.channels)
    q, clipped = quantize(y)
    np.save(task.out, q)
    return Result(task.index, **meta, clipped=clipped, frames=int(q.shape[1]))


def run_tasks(tasks: Sequence[Task], workers: int) -> Iterator[Result]:
    """Results in completion order; in this process when ``workers`` is 0."""
    if workers == 0 or not tasks:
        for t in tasks:
            yield process(t)
        return
    # spawn: the parent may hold threads (torch, OpenMP) that make fork unsafe
    ctx = multiprocessing.get_context("spawn")
    with cf.ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=ctx) as pool:
        futures = [pool.submit(process, t) for t in tasks]
        try:
            for fut in cf.as_completed(futures):
                yield fut.result()
        except BaseException:
            for fut in futures:
                fut.cancel()
            raise
