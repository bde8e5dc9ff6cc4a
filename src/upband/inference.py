"""Enhancement: bounded-memory chunked inference, the do-no-harm band merge, and the file driver.

The pipeline (every stage streams ``[C, n]`` blocks, so an hour of audio never sits in memory)::

    input blocks ──resample──> model rate ──ChunkRunner(model)──> model rate ──resample──┐
         │                                                                            v
         └─────────────────────resample──> output rate ─────────────────────> BandMerge ──> output

* :class:`ChunkRunner` is the one chunking function. Chunk cores of ``chunk`` samples start on
  multiples of the model's total stride (a strided U-Net is not shift-invariant, so this is what
  makes chunks see exactly what one pass sees), each chunk is run with ``context`` samples of real
  neighbouring audio on both sides (at least the receptive field, rounded up to the stride), and
  consecutive chunks overlap by ``overlap`` samples that are cross-faded with linear weights
  normalised by their sum. At the track's start and end a chunk has no context and is padded
  exactly as a one-pass run would be. The result equals one pass over the whole signal (tested:
  max abs difference ≤ 1e-4 for every architecture).
* :class:`BandMerge` is the do-no-harm merge: ``y = m + h * (x − m)`` where ``x`` is the input
  and ``m`` the model's output, both at the output rate, and ``h`` a linear-phase (Kaiser FIR)
  low-pass whose pass band ends at the detected cutoff and whose stop band starts
  ``MERGE_TRANSITION`` above it: below the cutoff the output is the input itself (to −90 dB),
  above the transition it is the model's.
* Channels: the model (stereo for the shipped ones) sees a stereo input as a pair; any other
  channel count is enhanced channel by channel (each channel as "dual mono"), see
  :class:`upband.models.base.WaveModel`.

:func:`enhance` works on arrays, :func:`enhance_file` on files; both use the same stages.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import signal

from upband import audio
from upband.degrade.detect import FULL_BAND_FRACTION, FULL_BAND_HZ, Bandwidth, detect_bandwidth
from upband.errors import ModelError, OutputExistsError, SpecError, UpbandError
from upband.fsutil import atomic_write_text
from upband.models.base import WaveModel

#: Reserved name of the tiny random model used by tests (as demucs' ``demucs_unittest``).
UNITTEST_MODEL = "upband_unittest"
#: Default seconds of audio per chunk (model rate) and cross-fade between chunks.
CHUNK_SECONDS = 10.0
OVERLAP_SECONDS = 0.25
#: Crossover of the merge: pass band to the cutoff, stop band ``MERGE_TRANSITION`` x cutoff above.
MERGE_TRANSITION = 0.08
#: Attenuation of the merge FIR's stop band and ripple of its pass band (dB).
MERGE_ATTENUATION_DB = 90.0
#: Rates at which a low-rate input is said to be of the 48 kHz family.
RATE_FAMILY_48K = frozenset({8000, 16000, 24000, 32000})
CLIP_MODES = ("rescale", "clamp", "none")
#: Input blocks read per step, in seconds of input audio.
READ_SECONDS = 10.0
#: Seconds of excerpts the bandwidth detector reads from each file.
DETECT_SECONDS = 30.0


# --------------------------------------------------------------------------------------------
# models
# --------------------------------------------------------------------------------------------


def default_model_name() -> str:
    """The pretrained model ``enhance`` uses when none is given."""
    from upband.models.registry import DEFAULT_PRETRAINED

    return DEFAULT_PRETRAINED


def load_enhancer(model: str | os.PathLike[str] | WaveModel | None = None, *,
                  device: str | torch.device = "cpu") -> WaveModel:
    """The model to enhance with, in eval mode on ``device``.

    ``model`` is a loaded :class:`WaveModel`, a ``.safetensors`` checkpoint path, the name of a
    pretrained model (``upband models``), :data:`UNITTEST_MODEL` (random, for tests), or None for
    the default pretrained model. Shipped weights are checked against their SHA-256.
    """
    from upband import states
    from upband.models.registry import PRETRAINED, build_model

    if isinstance(model, WaveModel):
        net = model
    else:
        name = default_model_name() if model is None else os.fspath(model)
        if name == UNITTEST_MODEL:
            torch.manual_seed(0)
            net = build_model(UNITTEST_MODEL)
        elif name in PRETRAINED:
            net = states.load_pretrained(name)
        elif name.endswith(".safetensors") or os.sep in name or Path(name).exists():
            net = states.load_model(name)
        else:
            raise ModelError(f"unknown model {name!r}: give a pretrained name "
                             f"({', '.join(PRETRAINED) or 'none shipped'}), "
                             f"'{UNITTEST_MODEL}', or a .safetensors checkpoint")
    return net.to(resolve_device(device)).eval()


def resolve_device(device: str | torch.device) -> torch.device:
    """``auto`` is CUDA when available, else CPU; ``cuda`` without a GPU is an error."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SpecError("--device cuda was asked for but no CUDA GPU is available")
    return dev


# --------------------------------------------------------------------------------------------
# chunked inference
# --------------------------------------------------------------------------------------------


def _round_up(n: int, step: int) -> int:
    return -(-n // step) * step


class ChunkRunner:
    """Runs ``model`` over a stream of ``[C, n]`` blocks in stride-aligned overlapping chunks.

    ``chunk`` and ``overlap`` are in samples (rounded to the model's stride); the context on
    each side is the receptive field rounded up to the stride. ``push(block, last)`` returns
    every output sample that is final so far; after ``last=True`` the outputs add up to exactly
    the input's length. Only the chunks go to ``device``; the stream stays on the CPU.
    """

    def __init__(self, model: WaveModel, channels: int, *, chunk: int, overlap: int = 0,
                 batch_size: int = 1, device: torch.device | None = None) -> None:
        stride = model.stride
        self.model, self.channels = model, channels
        self.device = device or next(model.parameters()).device
        self.context = _round_up(max(model.receptive_field, 1), stride)
        self.chunk = _round_up(max(chunk, stride), stride)
        self.overlap = min(_round_up(max(overlap, 0), stride), self.chunk // 2 // stride * stride)
        self.hop = self.chunk - self.overlap
        self.batch_size = max(1, batch_size)
        self._buf = np.zeros((channels, 0), np.float32)  # input from self._buf_start
        self._buf_start = 0
        self._total: int | None = None  # input length, known once last=True
        self._next = 0  # next chunk index
        self._acc = np.zeros((channels, 0), np.float64)  # weighted outputs from self._emitted
        self._wsum = np.zeros(0, np.float64)
        self._emitted = 0
        self._ramp = (np.arange(1, self.overlap + 1) / (self.overlap + 1)).astype(np.float64)

    @property
    def received(self) -> int:
        return self._buf_start + self._buf.shape[1]

    def push(self, block: np.ndarray, last: bool = False) -> np.ndarray:
        """Feed input; return the output samples that are final (``[C, m]`` float32)."""
        block = np.asarray(block, np.float32)
        self._buf = np.concatenate([self._buf, block], axis=1)
        if last:
            self._total = self.received
        ready: list[int] = []
        while self._chunk_ready(self._next + len(ready)):
            ready.append(self._next + len(ready))
            if len(ready) == self.batch_size or self._is_last_chunk(ready[-1]):
                self._run(ready)
                ready = []
        if ready:
            self._run(ready)
        return self._emit()

    def _core(self, k: int) -> tuple[int, int]:
        start = k * self.hop
        end = start + self.chunk
        return start, end if self._total is None else min(end, self._total)

    def _exists(self, k: int) -> bool:
        """Whether chunk ``k`` is part of the plan (always, until the length is known)."""
        if self._total is None:
            return True
        return self._total > 0 if k == 0 else (k - 1) * self.hop + self.chunk < self._total

    def _is_last_chunk(self, k: int) -> bool:
        return self._total is not None and k * self.hop + self.chunk >= self._total

    def _chunk_ready(self, k: int) -> bool:
        if self._total is not None:
            return self._exists(k)
        return k * self.hop + self.chunk + self.context <= self.received

    def _window(self, k: int) -> tuple[int, int]:
        start, end = self._core(k)
        stop = end + self.context
        if self._total is not None:
            stop = min(stop, self._total)
        return max(0, start - self.context), stop

    def _run(self, ks: list[int]) -> None:
        windows = [self._window(k) for k in ks]
        groups: dict[int, list[int]] = {}
        for k, (a, b) in zip(ks, windows, strict=True):
            groups.setdefault(b - a, []).append(k)
        for ks_same in groups.values():
            wins = [self._window(k) for k in ks_same]
            x = np.stack([self._buf[:, a - self._buf_start:b - self._buf_start]
                          for a, b in wins])
            with torch.inference_mode():
                y = self.model(torch.from_numpy(x).to(self.device)).float().cpu().numpy()
            for k, (a, _), out in zip(ks_same, wins, y, strict=True):
                self._accumulate(k, a, out)
        self._next = ks[-1] + 1
        keep_from = self._window(self._next)[0] if not self._is_last_chunk(ks[-1]) else \
            self.received
        drop = max(0, keep_from - self._buf_start)
        self._buf = self._buf[:, drop:]
        self._buf_start += drop

    def _accumulate(self, k: int, window_start: int, out: np.ndarray) -> None:
        start, end = self._core(k)
        piece = out[:, start - window_start:end - window_start].astype(np.float64)
        w = np.ones(end - start)
        if k > 0 and self.overlap:
            n = min(self.overlap, end - start)
            w[:n] = self._ramp[:n]
        if not self._is_last_chunk(k) and self.overlap:
            w[-self.overlap:] = np.minimum(w[-self.overlap:], self._ramp[::-1])
        need = end - self._emitted
        if need > self._acc.shape[1]:
            grow = need - self._acc.shape[1]
            self._acc = np.concatenate([self._acc, np.zeros((self.channels, grow))], axis=1)
            self._wsum = np.concatenate([self._wsum, np.zeros(grow)])
        a, b = start - self._emitted, end - self._emitted
        self._acc[:, a:b] += piece * w
        self._wsum[a:b] += w

    def _emit(self) -> np.ndarray:
        done = self._total is not None and not self._exists(self._next)
        # samples before the next chunk's core get no more contributions
        final = self._acc.shape[1] if done else max(0, self._next * self.hop - self._emitted)
        final = min(final, self._acc.shape[1])
        out = self._acc[:, :final] / np.maximum(self._wsum[:final], 1e-12)
        self._acc, self._wsum = self._acc[:, final:], self._wsum[final:]
        self._emitted += final
        return out.astype(np.float32)


def run_chunked(model: WaveModel, wav: np.ndarray, *, chunk: int, overlap: int = 0,
                batch_size: int = 1) -> np.ndarray:
    """Apply ``model`` to float ``[C, T]`` in chunks (see :class:`ChunkRunner`)."""
    runner = ChunkRunner(model, wav.shape[0], chunk=chunk, overlap=overlap,
                         batch_size=batch_size)
    return runner.push(wav, last=True)


# --------------------------------------------------------------------------------------------
# the do-no-harm merge
# --------------------------------------------------------------------------------------------


def merge_filter(cutoff_hz: float, sample_rate: int) -> np.ndarray:
    """Linear-phase Kaiser low-pass: pass band to ``cutoff_hz``, stop band from
    ``(1 + MERGE_TRANSITION) * cutoff_hz``, ``MERGE_ATTENUATION_DB`` down; odd length."""
    nyq = sample_rate / 2
    width = MERGE_TRANSITION * cutoff_hz
    numtaps, beta = signal.kaiserord(MERGE_ATTENUATION_DB, width / nyq)
    numtaps |= 1
    return signal.firwin(numtaps, cutoff_hz + width / 2, window=("kaiser", beta),
                         fs=sample_rate).astype(np.float64)


class BandMerge:
    """Streams ``y = m + h * (x − m)``: the input ``x`` below the cutoff, the model ``m`` above.

    ``push(x, m, last)`` takes equal-length aligned blocks and returns the final samples.
    """

    def __init__(self, cutoff_hz: float, sample_rate: int, channels: int) -> None:
        self.h = merge_filter(cutoff_hz, sample_rate)
        self.delay = (len(self.h) - 1) // 2
        self._d = np.zeros((channels, self.delay))  # x - m history, zero before the start
        self._m = np.zeros((channels, 0))

    def push(self, x: np.ndarray, m: np.ndarray, last: bool = False) -> np.ndarray:
        self._d = np.concatenate([self._d, x.astype(np.float64) - m], axis=1)
        self._m = np.concatenate([self._m, m.astype(np.float64)], axis=1)
        if last:
            self._d = np.concatenate([self._d, np.zeros((self._d.shape[0], self.delay))], axis=1)
        n = min(self._m.shape[1], self._d.shape[1] - 2 * self.delay)
        if n <= 0:
            return np.zeros((self._m.shape[0], 0), np.float32)
        low = signal.oaconvolve(self._d[:, :n + 2 * self.delay], self.h[None], mode="valid",
                                axes=1)
        out = self._m[:, :n] + low
        self._d, self._m = self._d[:, n:], self._m[:, n:]
        return out.astype(np.float32)


# --------------------------------------------------------------------------------------------
# the pipeline, shared by arrays and files
# --------------------------------------------------------------------------------------------


def output_rate(input_rate: int) -> int:
    """The input's rate from 44.1 kHz up; else 44.1 kHz, or 48 kHz for the 48 kHz family."""
    if input_rate >= 44100:
        return input_rate
    return 48000 if input_rate in RATE_FAMILY_48K else 44100


def is_full_band(found: Bandwidth, rate: int) -> bool:
    """Whether ``found`` already covers everything a ``rate`` output can hold (or is silent)."""
    return found.silent or found.cutoff_hz >= min(FULL_BAND_FRACTION * rate / 2, FULL_BAND_HZ)


@dataclass
class Plan:
    """What :class:`Pipeline` will do to one signal."""

    input_rate: int
    output_rate: int
    model_rate: int
    channels: int
    bandwidth: Bandwidth
    passthrough: bool
    merge_cutoff_hz: float | None


class Pipeline:
    """Input blocks in, output blocks out: resample, chunked model, resample, merge."""

    def __init__(self, model: WaveModel, plan: Plan, *, chunk_seconds: float,
                 overlap_seconds: float, batch_size: int) -> None:
        self.plan = plan
        c, sr_in, sr_out, sr_m = plan.channels, plan.input_rate, plan.output_rate, plan.model_rate
        self._direct = audio.StreamResampler(sr_in, sr_out, c)
        self._merge = None
        if not plan.passthrough:
            self._to_model = audio.StreamResampler(sr_in, sr_m, c)
            self._runner = ChunkRunner(model, c, chunk=int(chunk_seconds * sr_m),
                                       overlap=int(overlap_seconds * sr_m),
                                       batch_size=batch_size)
            self._from_model = audio.StreamResampler(sr_m, sr_out, c)
            if plan.merge_cutoff_hz is not None:
                self._merge = BandMerge(plan.merge_cutoff_hz, sr_out, c)
        self._x = np.zeros((c, 0), np.float32)
        self._m = np.zeros((c, 0), np.float32)

    def push(self, block: np.ndarray, last: bool = False) -> np.ndarray:
        x = self._direct.process(block, last=last)
        if self.plan.passthrough:
            return x
        m = self._from_model.process(self._runner.push(self._to_model.process(block, last=last),
                                                       last=last), last=last)
        if last:  # two roundings (in -> model -> out rate) can miss the exact length by one
            total = self._direct.frames_out
            m = audio.fit_length(m, max(0, total - (self._from_model.frames_out - m.shape[1])))
        if self._merge is None:
            return m
        self._x = np.concatenate([self._x, x], axis=1)
        self._m = np.concatenate([self._m, m], axis=1)
        n = min(self._x.shape[1], self._m.shape[1])
        out = self._merge.push(self._x[:, :n], self._m[:, :n], last=last)
        self._x, self._m = self._x[:, n:], self._m[:, n:]
        return out


def make_plan(bandwidth: Bandwidth, input_rate: int, channels: int, model: WaveModel, *,
              sample_rate: int | None = None, merge: bool = True) -> Plan:
    """Decide output rate, pass-through and merge cutoff for one input."""
    rate = sample_rate or output_rate(input_rate)
    full = is_full_band(bandwidth, rate)
    cutoff = None
    if merge and not full:
        cutoff = min(bandwidth.cutoff_hz, rate / 2 / (1 + MERGE_TRANSITION) * 0.999)
    return Plan(input_rate, rate, model.sample_rate, channels, bandwidth, full, cutoff)


def _finish(y: np.ndarray, clip_mode: str) -> tuple[np.ndarray, float]:
    """Apply ``clip_mode`` to a whole output; returns (audio, gain applied)."""
    if clip_mode not in CLIP_MODES:
        raise SpecError(f"unknown clip mode {clip_mode!r}; choose one of {', '.join(CLIP_MODES)}")
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    if peak > 1.0 and clip_mode == "rescale":
        gain = 1.0 / peak
        return (y * gain).astype(np.float32), gain
    if clip_mode == "clamp":
        return np.clip(y, -1.0, 1.0), 1.0
    return y, 1.0


def enhance(wav: Any, sample_rate: int, model: str | os.PathLike[str] | WaveModel | None = None,
            *, device: str = "auto", output_sample_rate: int | None = None, merge: bool = True,
            chunk_seconds: float = CHUNK_SECONDS, overlap_seconds: float = OVERLAP_SECONDS,
            batch_size: int | None = None, clip_mode: str = "rescale",
            bandwidth: Bandwidth | None = None) -> tuple[Any, int]:
    """Restore the high band of ``wav``: ``[C, T]`` (or ``[T]``) float numpy array or tensor.

    Returns ``(enhanced, rate)`` of the input's type, ``[C, T']`` with ``T' = round(T * rate /
    sample_rate)``; ``rate`` follows :func:`output_rate` unless ``output_sample_rate`` is given.
    A full-band input comes back unchanged (resampled if the rate changes).
    """
    is_torch = isinstance(wav, torch.Tensor)
    x = (wav.detach().cpu().numpy() if is_torch else np.asarray(wav)).astype(np.float32)
    mono = x.ndim == 1
    x = x[None] if mono else x
    if x.ndim != 2:
        raise SpecError(f"audio must be [C, T] or [T], got shape {tuple(x.shape)}")
    audio.check_finite(x)
    net = load_enhancer(model, device=device)
    found = bandwidth or detect_bandwidth(x, sample_rate)
    plan = make_plan(found, sample_rate, x.shape[0], net, sample_rate=output_sample_rate,
                     merge=merge)
    pipe = Pipeline(net, plan, chunk_seconds=chunk_seconds, overlap_seconds=overlap_seconds,
                    batch_size=batch_size or _default_batch(net))
    y = x.copy() if plan.passthrough and plan.output_rate == sample_rate else \
        pipe.push(x, last=True)
    y, _ = _finish(y, clip_mode) if not plan.passthrough else (y, 1.0)
    y = y[0] if mono else y
    return (torch.from_numpy(np.ascontiguousarray(y)) if is_torch else y), plan.output_rate


def _default_batch(model: WaveModel) -> int:
    return 1 if next(model.parameters()).device.type == "cpu" else 8


# --------------------------------------------------------------------------------------------
# files
# --------------------------------------------------------------------------------------------


@dataclass
class FileReport:
    """What happened to one file (the ``--report`` JSON record)."""

    input: str
    output: str | None = None
    status: str = "pending"  # enhanced | passthrough | skipped | failed
    message: str = ""
    input_rate: int = 0
    output_rate: int = 0
    channels: int = 0
    duration_s: float = 0.0
    input_subtype: str = ""
    output_subtype: str = ""
    bandwidth: dict[str, Any] = field(default_factory=dict)
    merge_cutoff_hz: float | None = None
    model: str = ""
    clip_gain: float = 1.0
    seconds: float = 0.0

    @property
    def real_time_factor(self) -> float:
        return self.seconds / self.duration_s if self.duration_s else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "real_time_factor": round(self.real_time_factor, 5)}


def enhance_file(src: str | os.PathLike[str], dst: str | os.PathLike[str],
                 model: str | os.PathLike[str] | WaveModel | None = None, *,
                 device: str = "auto", sample_rate: int | None = None,
                 bit_depth: str | None = None, merge: bool = True,
                 chunk_seconds: float = CHUNK_SECONDS, overlap_seconds: float = OVERLAP_SECONDS,
                 batch_size: int | None = None, clip_mode: str = "rescale",
                 overwrite: bool = False,
                 progress: Callable[[float], None] | None = None) -> FileReport:
    """Enhance ``src`` into ``dst`` (.wav/.flac), streaming in bounded memory.

    Output rate per :func:`output_rate` (``sample_rate`` overrides); sample format the input's
    (16-bit stays 16-bit with TPDF dither, float stays float; lossy inputs give 24-bit;
    ``bit_depth`` overrides); length exactly ``round(frames * out_rate / in_rate)``. A full-band
    input is copied through unchanged. ``progress`` is called with seconds of input processed.
    """
    from upband.degrade.detect import detect_file

    t0 = time.perf_counter()
    src, dst = Path(src), Path(dst)
    report = FileReport(str(src), str(dst))
    if dst.exists() and not overwrite:
        raise OutputExistsError(f"{dst}: already exists (use --force to overwrite)")
    if src.resolve() == dst.resolve():
        raise SpecError(f"{dst}: is the input; upband never overwrites its input")
    info = audio.info(src)
    subtype = audio.output_subtype(info, bit_depth)
    audio.output_format(dst)
    net = load_enhancer(model, device=device)
    found = detect_file(src, max_seconds=DETECT_SECONDS)
    plan = make_plan(found, info.sample_rate, info.channels, net, sample_rate=sample_rate,
                     merge=merge)
    report.input_rate, report.output_rate, report.channels = (info.sample_rate, plan.output_rate,
                                                              info.channels)
    report.duration_s, report.input_subtype, report.output_subtype = (info.duration,
                                                                      info.subtype, subtype)
    report.bandwidth, report.merge_cutoff_hz = found.to_dict(), plan.merge_cutoff_hz
    report.model = net.pretrained_name or net.name
    def make_pipeline() -> Pipeline:
        return Pipeline(net, plan, chunk_seconds=chunk_seconds, overlap_seconds=overlap_seconds,
                        batch_size=batch_size or _default_batch(net))

    if plan.passthrough:
        report.status = "passthrough"
        report.message = f"already {found.summary()}: copied through unchanged"
    else:
        report.status = "enhanced"
        report.message = found.summary()
        if found.full_band:  # full band at a low rate: the band above its Nyquist is new
            report.message = (f"full band at {info.sample_rate} Hz (to "
                              f"{found.cutoff_hz / 1000:.1f} kHz); extended to "
                              f"{plan.output_rate / 2000:.2f} kHz at {plan.output_rate} Hz")
    report.clip_gain = _stream_to_file(src, dst, make_pipeline, info, subtype, clip_mode,
                                       overwrite, progress)
    report.seconds = time.perf_counter() - t0
    return report


def _blocks(src: Path, info: audio.AudioInfo) -> Iterator[tuple[np.ndarray, bool]]:
    """``(block, last)`` pairs of the whole file, ``READ_SECONDS`` at a time."""
    with audio.AudioReader(src) as reader:
        size = max(1, int(READ_SECONDS * info.sample_rate))
        pending = None
        for block in reader.blocks(size):
            if pending is not None:
                yield pending, False
            pending = block
        yield (pending if pending is not None else np.zeros((info.channels, 0), np.float32),
               True)


def _stream_to_file(src: Path, dst: Path, make_pipeline: Callable[[], Pipeline],
                    info: audio.AudioInfo, subtype: str, clip_mode: str, overwrite: bool,
                    progress: Callable[[float], None] | None) -> float:
    """Run a pipeline over ``src`` into ``dst``; returns the gain applied.

    The output is written as it comes (atomically). If it went above full scale and
    ``clip_mode`` is ``rescale``, that pass is discarded and the (deterministic) pipeline runs
    again with the gain that brings the peak to full scale: a second pass for the rare clipping
    file rather than a spool file for every one.
    """
    if clip_mode not in CLIP_MODES:
        raise SpecError(f"unknown clip mode {clip_mode!r}; choose one of {', '.join(CLIP_MODES)}")
    gain = 1.0
    for attempt in range(2):
        pipe = make_pipeline()
        processed = not pipe.plan.passthrough  # a copied-through input keeps its samples
        peak = 0.0
        writer = audio.AudioWriter(dst, pipe.plan.output_rate, info.channels, subtype=subtype,
                                   overwrite=overwrite,
                                   dither=processed and subtype == "PCM_16")
        try:
            for block, last in _blocks(src, info):
                out = pipe.push(block, last=last)
                if gain != 1.0:
                    out = out * np.float32(gain)
                if out.size:
                    peak = max(peak, float(np.max(np.abs(out))))
                    if processed and clip_mode == "clamp":
                        out = np.clip(out, -1.0, 1.0)
                    writer.write(out)
                if progress is not None and attempt == 0:
                    progress(block.shape[1] / info.sample_rate)
        except BaseException:
            writer.abort()
            raise
        if attempt == 0 and processed and clip_mode == "rescale" and peak > 1.0:
            writer.abort()
            gain = 1.0 / peak
            continue
        writer.close()
        break
    return gain


# --------------------------------------------------------------------------------------------
# batches of files
# --------------------------------------------------------------------------------------------


def plan_outputs(inputs: list[Path], output: Path | None, *, recursive: bool,
                 template: str = "{stem}.upband.{ext}", fmt: str | None = None
                 ) -> list[tuple[Path, Path]]:
    """Pair every input file with its output path.

    One file and ``output`` ending in .wav/.flac: that file. Otherwise ``output`` (default: next
    to each input) is a folder; folders given as inputs are searched (recursively with
    ``recursive``) and their tree is mirrored. ``template`` fields: ``{stem}``, ``{ext}``.
    """
    files: list[tuple[Path, Path]] = []  # (input, path relative to its output root)
    for item in inputs:
        if item.is_dir():
            pattern = "**/*" if recursive else "*"
            found = sorted(p for p in item.glob(pattern) if p.is_file() and audio.is_audio_path(p))
            if not found:
                raise SpecError(f"{item}: no audio files found"
                                + ("" if recursive else " (use --recursive for subfolders)"))
            files += [(p, p.relative_to(item).parent) for p in found]
        else:
            files.append((item, Path()))
    single = len(inputs) == 1 and not inputs[0].is_dir() and output is not None and \
        output.suffix.lower() in audio.WRITE_FORMATS
    if single:
        assert output is not None
        return [(files[0][0], output)]
    pairs = []
    for src, rel in files:
        ext = fmt or _default_ext(src)
        name = template.format(stem=src.stem, ext=ext)
        root = output if output is not None else src.parent
        pairs.append((src, (root / rel / name) if output is not None else root / name))
    return pairs


def _default_ext(src: Path) -> str:
    suffix = src.suffix.lower()
    return "wav" if suffix in (".wav", ".wave") else "flac"


def write_report(path: Path, reports: list[FileReport]) -> None:
    """Write the ``--report`` JSON atomically."""
    atomic_write_text(path, json.dumps([r.to_dict() for r in reports], indent=2) + "\n")


def run_batch(pairs: list[tuple[Path, Path]], *, force: bool,
              on_file: Callable[[FileReport], None],
              on_start: Callable[[Path], None] | None = None,
              **kwargs: Any) -> list[FileReport]:
    """Enhance every pair; a bad file is reported and skipped, finished outputs are kept.

    ``on_start(src)`` is called before each file, ``on_file(report)`` after it; ``kwargs`` go to
    :func:`enhance_file`.
    """
    reports = []
    for src, dst in pairs:
        if on_start is not None:
            on_start(src)
        report = FileReport(str(src), str(dst))
        if src.resolve() == dst.resolve():
            report.status = "failed"
            report.message = f"{dst}: is the input; upband never overwrites its input"
        elif dst.exists() and not force:
            report.status, report.message = "skipped", "output exists (use --force to redo)"
        else:
            try:
                dst.parent.mkdir(parents=True, exist_ok=True)
                report = enhance_file(src, dst, overwrite=force, **kwargs)
            except UpbandError as err:
                report.status, report.message = "failed", str(err)
        reports.append(report)
        on_file(report)
    return reports

