"""Training crops and validation excerpts from a corpus (or any :class:`AudioSource`).

**Padded-crop degradation.** Sulun & Davies low-pass a training crop *after* cutting it, so the
filter's start-up and end transients (zero-phase filtering of a signal that starts abruptly)
enter the training input. Here every crop is read with ``context_samples`` of the file's real
neighbouring audio on each side (zeros only beyond the file's ends), degraded as a whole, and
the context is cut away afterwards: inside the crop the input equals what filtering the whole
file would give, to within the filter's impulse-response tail beyond the context (4 096 samples
at 44.1 kHz is ~93 ms; the Sulun filters ring for a few ms).

**Determinism.** Example ``index`` draws everything from ``numpy.random.default_rng([seed,
index])``: the file (probability proportional to its length), the crop start, the degradation
parameters and the gain. Any DataLoader worker, DDP rank or resumed run produces the same
example for the same index; a sampler only has to hand out indices.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from upband.audio import to_channels
from upband.data.corpus.records import FileRecord
from upband.data.corpus.splits import hash_fraction
from upband.data.cutoffs import training_cutoff
from upband.degrade import presets
from upband.errors import SpecError


class AudioSource(Protocol):
    """What the datasets need from a corpus: :class:`~upband.data.corpus.Corpus` and
    :class:`~upband.data.synthetic.SyntheticSource` both satisfy it."""

    @property
    def sample_rate(self) -> int: ...

    @property
    def channels(self) -> int: ...

    def files(self, split: str) -> list[FileRecord]:
        """Packed records of ``split`` (``frames`` > 0), in a fixed order."""
        ...

    def segment(self, record: FileRecord) -> np.ndarray:
        """The whole file, int16 ``[channels, frames]``."""
        ...

    def read(self, record: FileRecord, start: int, frames: int) -> np.ndarray:
        """float32 ``[channels, frames]`` from ``start`` (may be negative), zeros outside."""
        ...


def _check_channels(channels: int) -> int:
    if channels not in (1, 2):
        raise SpecError(f"channels must be 1 (mono) or 2 (stereo), got {channels}")
    return channels


def read_padded(source: AudioSource, record: FileRecord, start: int, frames: int,
                context: int, channels: int) -> np.ndarray:
    """``frames`` frames from ``start`` plus ``context`` real frames each side (zeros beyond the
    file), as float32 ``[channels, frames + 2 * context]``; mono is the channels' average."""
    x = source.read(record, start - context, frames + 2 * context)
    return to_channels(x, channels) if x.shape[0] != channels else x


def degrade_padded(x: np.ndarray, sr: int, params: presets.Params, context: int) -> np.ndarray:
    """Degrade a padded crop and cut ``context`` samples from each side."""
    y = presets.apply(x, sr, params)
    return y[:, context:y.shape[1] - context] if context else y


class CropDataset(torch.utils.data.Dataset[dict[str, Any]]):
    """Random training crops: clean target and degraded input, deterministic per (seed, index).

    Args:
        source: a :class:`~upband.data.corpus.Corpus` or another :class:`AudioSource`.
        split: ``train``, ``validation`` or ``test``.
        crop_samples: crop length T at ``source.sample_rate``.
        preset: degradation preset name (``upband presets``), e.g. ``sulun-single``.
        channels: 2 = stereo, 1 = mono (average of the source's channels).
        seed: the dataset seed; example ``i`` depends on ``(seed, i)`` only.
        gain_db: uniform random gain range in dB, applied to input and target alike after the
            degradation, lowered where needed so that neither exceeds a peak of 1.
        context_samples: real audio read on each side of the crop before degrading.
        length: ``len(dataset)``, the size of a virtual epoch.
        cutoffs: add each crop's ``"cutoff_hz"`` (:func:`upband.data.cutoffs.training_cutoff`,
            drawn after everything else, so the other keys do not change), for a model that is
            told the input's cutoff.
        cutoff_under: with ``cutoffs``, the share of crops told a cutoff below the true one.

    ``dataset[i]`` is ``{"input": Tensor[C, T] float32 (degraded), "target": Tensor[C, T]
    float32 (clean), "params": JSON str of the degradation's ``to_dict()``, "file": record id}``.
    Files are drawn with probability proportional to their length and a crop start uniformly
    over the file (a file shorter than the crop lands at a random place in it, zeros around).
    """

    def __init__(self, source: AudioSource, split: str = "train", *, crop_samples: int,
                 preset: str = "sulun-single", channels: int = 2, seed: int = 0,
                 gain_db: tuple[float, float] = (-6.0, 0.0), context_samples: int = 4096,
                 length: int = 1_000_000, cutoffs: bool = False,
                 cutoff_under: float = 0.0) -> None:
        if crop_samples <= 0:
            raise SpecError(f"crop_samples must be positive, got {crop_samples}")
        if context_samples < 0:
            raise SpecError(f"context_samples must be >= 0, got {context_samples}")
        if length <= 0:
            raise SpecError(f"length must be positive, got {length}")
        lo, hi = (float(g) for g in gain_db)
        if not lo <= hi:
            raise SpecError(f"gain_db must be (low, high) with low <= high, got {gain_db}")
        self.source = source
        self.split = split
        self.crop_samples = int(crop_samples)
        self.preset = presets.get_preset(preset).name
        self.channels = _check_channels(channels)
        self.seed = int(seed)
        self.gain_db = (lo, hi)
        self.context_samples = int(context_samples)
        self.length = int(length)
        self.cutoffs, self.cutoff_under = bool(cutoffs), float(cutoff_under)
        self.sample_rate = int(source.sample_rate)
        self.records = [r for r in source.files(split) if r.frames > 0]
        if not self.records:
            raise SpecError(f"split {split!r} of {source!r} holds no audio")
        self._ends = np.cumsum([r.frames for r in self.records], dtype=np.int64)

    def __len__(self) -> int:
        return self.length

    def pick(self, rng: np.random.Generator) -> tuple[FileRecord, int]:
        """A file (probability proportional to its length) and a crop start in it."""
        total = int(self._ends[-1])
        k = int(np.searchsorted(self._ends, rng.integers(total), side="right"))
        record = self.records[k]
        room = record.frames - self.crop_samples
        start = int(rng.integers(min(room, 0), max(room, 0) + 1))
        return record, start

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for a dataset of {self.length}")
        rng = np.random.default_rng([self.seed, int(index)])
        record, start = self.pick(rng)
        ctx = self.context_samples
        padded = read_padded(self.source, record, start, self.crop_samples, ctx, self.channels)
        params = presets.sample(self.preset, rng, self.sample_rate)
        degraded = degrade_padded(padded, self.sample_rate, params, ctx)
        clean = padded[:, ctx:ctx + self.crop_samples]
        gain = 10.0 ** (rng.uniform(*self.gain_db) / 20.0)
        peak = max(float(np.abs(clean).max(initial=0.0)), float(np.abs(degraded).max(initial=0.0)))
        if peak * gain > 1.0:
            gain = 1.0 / peak
        item = {
            "input": torch.from_numpy(np.ascontiguousarray(degraded * np.float32(gain))),
            "target": torch.from_numpy(np.ascontiguousarray(clean * np.float32(gain))),
            "params": json.dumps(params.to_dict(), sort_keys=True),
            "file": record.id,
        }
        if self.cutoffs:
            item["cutoff_hz"] = training_cutoff(params, self.sample_rate, self.channels, rng,
                                                under=self.cutoff_under)
        return item


@dataclass(frozen=True)
class ValItem:
    """One validation excerpt: clean and degraded float32 ``[C, T]`` and the degradation."""

    name: str
    clean: np.ndarray
    degraded: np.ndarray
    params: dict[str, Any]


def _validation_order(records: Sequence[FileRecord], min_frames: int) -> list[FileRecord]:
    """Files long enough for a full excerpt first, each group in a stable pseudo-random order
    (by hash of id), so the first few come from different sources rather than one folder."""
    def key(r: FileRecord) -> tuple[bool, float]:
        return (r.frames < min_frames, hash_fraction("validation:" + r.id))

    return sorted(records, key=key)


def build_validation(source: AudioSource, split: str = "validation", *, preset: str,
                     seconds: float = 8.0, offset_seconds: float = 8.0, max_files: int = 8,
                     channels: int = 2, context_samples: int = 4096,
                     seed: int = 0) -> list[ValItem]:
    """Sulun & Davies' validation protocol: ``seconds`` excerpts starting at ``offset_seconds``
    of each of up to ``max_files`` files of ``split`` (from the start when a file is shorter
    than ``offset_seconds + seconds``; a file shorter than ``seconds`` gives a shorter excerpt),
    degraded by ``preset`` on a padded excerpt like :class:`CropDataset`, without gain.

    Files are taken full-length ones first, in a fixed pseudo-random order. With a multi-option
    preset the ``i``-th file gets the preset's ``i mod n``-th option (so 8 files meet all 8
    filters of ``sulun-multi``), its random fields drawn from ``default_rng([seed, i])``. The
    result is the same on every call.
    """
    _check_channels(channels)
    p = presets.get_preset(preset)
    if not seconds > 0 or offset_seconds < 0 or max_files <= 0:
        raise SpecError("validation needs seconds > 0, offset_seconds >= 0 and max_files > 0")
    sr = int(source.sample_rate)
    n, offset = round(seconds * sr), round(offset_seconds * sr)
    chosen = _validation_order([r for r in source.files(split) if r.frames > 0], n)[:max_files]
    if not chosen:
        raise SpecError(f"split {split!r} of {source!r} holds no audio for validation")
    items = []
    for i, record in enumerate(chosen):
        start = offset if record.frames >= offset + n else 0
        length = min(n, record.frames - start)
        padded = read_padded(source, record, start, length, context_samples, channels)
        option = p.options[i % len(p.options)]
        single = presets.Preset(p.name, p.description, p.source, (option,))
        rng = np.random.default_rng([seed, i, zlib.crc32(record.id.encode())])
        params = presets.sample(single, rng, sr)
        degraded = degrade_padded(padded, sr, params, context_samples)
        clean = padded[:, context_samples:context_samples + length].copy()
        items.append(ValItem(record.id, clean, degraded, params.to_dict()))
    return items
