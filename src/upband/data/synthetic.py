"""Synthetic harmonic "music" in memory: an :class:`~upband.data.dataset.AudioSource` for tests
and smoke runs that needs no files.

Each file is a sequence of overlapping notes plus a few hi-hat-like noise bursts, stereo
(every note has its own equal-power pan). A note is a band-limited periodic tone: fundamental f0
drawn from an equal-tempered scale (220-880 Hz), partials k·f0 up to 0.95 × Nyquist with
amplitude k^-slope (slope 0.3-0.8 per note), all partials in phase (saw-like, or odd partials
only: square-like) so the waveform has sharp edges, with a fast attack and an exponential decay;
a cross-fade to a darker table of the same partials (slope + 0.7) makes the high partials die
away first. The partials above any low-pass cutoff continue the series below it (same slope,
same phase pattern), so the high band is a learnable function of the low band; the noise bursts
(a few per file, at -26 dB) are the unpredictable part. About 4 % of the energy lies above
11 025 Hz: Sulun's seen filter leaves an input SNR of about 10 dB to improve on.

Wavetable synthesis (one period by inverse FFT, linear interpolation in a 16 384-point table)
makes a 4 s file in well under a second.

Deterministic per (seed, split, file number); the splits hold distinct files.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from upband.audio import to_channels
from upband.data.corpus.records import SPLITS, FileRecord, quantize
from upband.errors import SpecError

_SPLIT_SEED = {name: k for k, name in enumerate(SPLITS)}


TABLE_SIZE = 1 << 14


def _table(k: np.ndarray, amp: np.ndarray) -> np.ndarray:
    """One period of sum_k amp_k sin(2 pi k t), ``TABLE_SIZE`` samples (+1 wrap sample)."""
    spec = np.zeros(TABLE_SIZE // 2 + 1, np.complex128)
    spec[k] = -0.5j * amp * TABLE_SIZE
    one = np.fft.irfft(spec, TABLE_SIZE)
    return np.append(one, one[0])


def _note(rng: np.random.Generator, sr: int, n: int) -> np.ndarray:
    """One mono note of ``n`` samples (float64): a bright and a dark wavetable of the same
    partials (slopes s and s + 0.7), cross-faded so the high partials die away first."""
    f0 = 110.0 * 2.0 ** (int(rng.integers(12, 37)) / 12.0)
    slope = rng.uniform(0.3, 0.8)
    k = np.arange(1, int(0.95 * sr / 2 / f0) + 1)
    if rng.random() < 0.3:
        k = k[k % 2 == 1]
    bright = _table(k, k.astype(np.float64) ** -slope)
    dark = _table(k, k.astype(np.float64) ** -(slope + 0.7))
    t = np.arange(n) / sr
    pos = (f0 * t + rng.uniform()) % 1.0 * TABLE_SIZE
    i = pos.astype(np.int64)
    frac = pos - i
    decay = rng.uniform(2.0, 6.0)
    fade = np.exp(-decay * 2.0 * t)  # share of the bright table
    tone = fade * (bright[i] * (1 - frac) + bright[i + 1] * frac) \
        + (1 - fade) * (dark[i] * (1 - frac) + dark[i + 1] * frac)
    attack = np.minimum(1.0, t / 0.004)
    release = np.clip((n - 1 - np.arange(n)) / (0.01 * sr), 0.0, 1.0)
    return tone * np.exp(-decay * t) * attack * release


def _burst(rng: np.random.Generator, sr: int, n: int) -> np.ndarray:
    """A hi-hat-like burst: white noise, first-difference high-passed, fast exponential decay."""
    noise = rng.standard_normal(n + 1)
    hp = np.diff(noise) * 0.5
    return hp * np.exp(-np.arange(n) / sr * rng.uniform(30.0, 80.0))


def synthesize(sample_rate: int, seconds: float, rng: np.random.Generator,
               channels: int = 2) -> np.ndarray:
    """One synthetic file: float32 ``[channels, round(seconds * sample_rate)]``, peak 0.8."""
    total = round(seconds * sample_rate)
    out = np.zeros((2, total))
    t = 0.0
    while t < seconds:
        for _ in range(int(rng.integers(1, 4))):  # 1-3 voices start together
            start = int((t + rng.uniform(0, 0.02)) * sample_rate)
            n = min(total - start, int(rng.uniform(0.15, 0.8) * sample_rate))
            if n <= 0:
                continue
            pan = rng.uniform(0.1, 0.9) * np.pi / 2
            note = _note(rng, sample_rate, n) * rng.uniform(0.3, 1.0)
            out[0, start:start + n] += np.cos(pan) * note
            out[1, start:start + n] += np.sin(pan) * note
        t += rng.uniform(0.1, 0.4)
    for _ in range(int(rng.integers(2, 6))):
        start = int(rng.uniform(0, seconds) * sample_rate)
        n = min(total - start, int(0.15 * sample_rate))
        if n <= 0:
            continue
        burst = _burst(rng, sample_rate, n)
        scale = 0.05 * np.abs(out).max(initial=1e-3)
        out[:, start:start + n] += scale * burst[None] * rng.uniform(0.5, 1.0, (2, 1))
    peak = np.abs(out).max(initial=0.0)
    if peak > 0:
        out *= 0.8 / peak
    return to_channels(out.astype(np.float32), channels)


@dataclass(frozen=True)
class SyntheticSource:
    """In-memory source with the corpus interface the datasets use (``files``, ``segment``,
    ``read``, ``sample_rate``, ``channels``). Audio is stored as int16 like a corpus."""

    sample_rate: int
    channels: int
    audio: Mapping[str, np.ndarray]
    records: Mapping[str, tuple[FileRecord, ...]]

    def files(self, split: str) -> list[FileRecord]:
        if split not in SPLITS:
            raise SpecError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
        return list(self.records.get(split, ()))

    def segment(self, record: FileRecord) -> np.ndarray:
        return self.audio[record.id]

    def read(self, record: FileRecord, start: int, frames: int) -> np.ndarray:
        data = self.audio[record.id]
        out = np.zeros((self.channels, max(frames, 0)), np.float32)
        a, b = max(start, 0), min(start + frames, data.shape[1])
        if a < b:
            out[:, a - start:b - start] = data[:, a:b].astype(np.float32) / np.float32(32768.0)
        return out

    def __repr__(self) -> str:
        counts = ", ".join(f"{k} {len(v)}" for k, v in self.records.items())
        return f"SyntheticSource({self.sample_rate} Hz, {counts})"


def synthetic_source(sample_rate: int = 44100, *, files: tuple[int, int, int] = (8, 2, 2),
                     seconds: float = 4.0, seed: int = 0, channels: int = 2) -> SyntheticSource:
    """Harmonic test music: ``files`` = (train, validation, test) counts of ``seconds`` each."""
    if channels not in (1, 2):
        raise SpecError(f"channels must be 1 or 2, got {channels}")
    if len(files) != 3 or any(n < 0 for n in files):
        raise SpecError(f"files must be three counts (train, validation, test), got {files!r}")
    if not seconds > 0:
        raise SpecError(f"seconds must be positive, got {seconds}")
    data: dict[str, np.ndarray] = {}
    records: dict[str, tuple[FileRecord, ...]] = {}
    for split, count in zip(SPLITS, files, strict=True):
        recs = []
        for i in range(count):
            rng = np.random.default_rng([seed, _SPLIT_SEED[split], i])
            q, _ = quantize(synthesize(sample_rate, seconds, rng, channels))
            rid = f"synthetic/{split}/{i:03d}"
            data[rid] = q
            recs.append(FileRecord(
                id=rid, source="synthetic", path="", relpath=f"{split}/{i:03d}",
                licence="CC0-1.0", split=split, duration_s=q.shape[1] / sample_rate,
                sample_rate=sample_rate, channels=channels, cutoff_hz=sample_rate / 2,
                full_band=True, codec="none", frames=int(q.shape[1])))
        records[split] = tuple(recs)
    return SyntheticSource(int(sample_rate), int(channels), data, records)
