"""The file and batch driver: :func:`enhance_file`, where outputs go, batches and their report.

:func:`enhance_file` checks the output once (:func:`check_output`: never the input, never an
existing file unless asked), reads the file's format, detects its bandwidth from excerpts,
takes the route :func:`~upband.enhancement.pipeline.choose_route` decides, and streams the file
through the :class:`~upband.enhancement.pipeline.Pipeline` into the output in bounded memory.
:func:`run_batch` runs it over many files, turning a refused output into a ``skipped`` or
``failed`` record instead of an error.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from upband import audio
from upband.analysis import Bandwidth
from upband.analysis.detect import DETECT_SECONDS, detect_file  # noqa: F401 (re-exported)
from upband.common.jsonnum import dumps_strict, strict_values
from upband.enhancement.limiter import PeakLimiter
from upband.enhancement.loading import ModelSpec, PhaseRepair, load_models, pick_model
from upband.enhancement.pipeline import Pipeline, Route, choose_route
from upband.enhancement.settings import (
    CHUNK_SECONDS,
    CLIP_MODES,
    OVERLAP_SECONDS,
    ClipPolicy,
    Settings,
)
from upband.errors import OutputExistsError, UpbandError
from upband.fsutil import atomic_write_text, refuse_input_as_output
from upband.models.base import WaveModel

#: Input blocks read per step, in seconds of input audio.
READ_SECONDS = 10.0
#: How many blocks the model's thread may run ahead of the guard, merge and writing.
AHEAD_BLOCKS = 2


@dataclass
class FileReport:
    """What happened to one file (the ``--report`` JSON record). Rates in Hz, times in s."""

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
    #: ``rescale`` mode: the gain the whole output got (1: none)
    clip_gain: float = 1.0
    #: ``limit`` mode: the frames above the limiter's ceiling, the frames whose gain it lowered
    #: around them, and its deepest reduction (dB; 0: untouched)
    limit_overs: int = 0
    limited_samples: int = 0
    limit_reduction_db: float = 0.0
    #: the level guard (None: not applied): the model's band after it, relative to before
    #: (dB, energy-weighted), and the share of STFT frames in which it lowered a band
    guard_reduction_db: float | None = None
    guard_limited_fraction: float | None = None
    #: the guard's fill: its noise's energy over the guarded band's, and how far under the
    #: predicted level it fills outside quiet frames (dB; by the detector's verdict: 12, 6
    #: after a sharp shelf, 3 after a lossy codec) (None: no fill)
    guard_fill_ratio: float | None = None
    guard_fill_db: float | None = None
    #: the roll-off compensation (None: not applied): its largest gain (dB) and the band it
    #: raised by at least 1 dB (Hz)
    compensation_gain_db: float | None = None
    compensation_band_hz: tuple[float, float] | None = None
    seconds: float = 0.0
    #: what the listener should know although the file was written (printed on its line)
    warnings: list[str] = field(default_factory=list)

    @property
    def real_time_factor(self) -> float:
        """Processing time over audio time (below 1: faster than real time)."""
        return self.seconds / self.duration_s if self.duration_s else 0.0

    def to_dict(self) -> dict[str, Any]:
        """The record as strict JSON values (non-finite numbers per
        :func:`upband.common.jsonnum.json_number`)."""
        return strict_values({**asdict(self), "real_time_factor": round(self.real_time_factor, 5)})


def check_output(src: Path, dst: Path, *, overwrite: bool) -> None:
    """The output checks, in one place: ``dst`` is never ``src`` (:class:`SpecError`) and an
    existing ``dst`` is replaced only with ``overwrite`` (:class:`OutputExistsError`)."""
    refuse_input_as_output(src, dst)
    if dst.exists() and not overwrite:
        raise OutputExistsError(f"{dst}: already exists (use --force to overwrite)")


def enhance_file(src: str | os.PathLike[str], dst: str | os.PathLike[str],
                 model: ModelSpec = None, *, device: str = "auto",
                 sample_rate: int | None = None, bit_depth: str | None = None,
                 merge: bool = True, chunk_seconds: float = CHUNK_SECONDS,
                 overlap_seconds: float = OVERLAP_SECONDS, batch_size: int | None = None,
                 clip_mode: str = CLIP_MODES[0], guard: bool = True, pass_gentle: bool = True,
                 phase_repair: PhaseRepair = None, overwrite: bool = False, seed: int = 0,
                 progress: Callable[[float], None] | None = None,
                 compensate: bool = True, fill: bool = True) -> FileReport:
    """Enhance the audio file ``src`` into ``dst`` (.wav or .flac), streaming in bounded memory.

    What :func:`upband.enhance` does to an array, done to a file of any length: blocks of
    ``READ_SECONDS`` are read, resampled, run through the model in chunks, merged and written
    as they come; the output appears (atomically) only once complete.

    Args:
        src: input file (WAV, FLAC, AIFF, OGG Vorbis/Opus, MP3, ...).
        dst: output file; its extension picks the container.
        model: what :func:`~upband.enhancement.load_models` takes (None: the default model).
        device: where the model runs: ``"cpu"``, ``"cuda"`` or ``"auto"``.
        sample_rate: output rate (Hz); None: the input's from 44.1 kHz up, else 44.1 kHz
            (48 kHz for 8/16/24/32 kHz inputs).
        bit_depth: output sample format ``"16"``, ``"24"`` or ``"32f"``; None: the input's
            (lossy inputs give 24-bit).
        merge: keep the input below its detected cutoff (the do-no-harm merge).
        chunk_seconds, overlap_seconds: seconds of audio per model call (memory grows with
            it) and of cross-fade between chunks.
        batch_size: chunks per model call (None: 1 on the CPU, 8 on a GPU).
        clip_mode: an output above full scale is limited around the samples above it
            (``"limit"``: a look-ahead limiter, :mod:`upband.enhancement.limiter`; every other
            sample is left as it is), scaled down as a whole (``"rescale"``, which costs a
            second pass for such a file), clipped (``"clamp"``) or left (``"none"``).
        guard: bound the added band by the input's own level (:mod:`upband.enhancement.guard`).
        pass_gentle: take a roll-off that may be the music's own (:attr:`upband.analysis.
            Bandwidth.own_rolloff`) for the recording's timbre (False: enhance it like any other).
        phase_repair: TD-PR phase repair above the cutoff (:mod:`upband.enhancement.phase`;
            True: the shipped vocoder; a vocoder; ``"griffin-lim"``).
        overwrite: replace an existing ``dst``.
        seed: the noise of a stochastic model (ignored by deterministic ones).
        progress: called with the seconds of input audio processed since the last call.
        compensate, fill: undo a filter's roll-off where the input still holds the band
            (with the merge only); the guard's noise fill.

    Returns:
        The :class:`FileReport`. The output has exactly ``round(frames * out_rate / in_rate)``
        frames. An input already full band for the output rate (or silent) is not enhanced
        (status ``passthrough``): at its own rate it is copied sample for sample; at another
        rate it is resampled and written like any output (16-bit with TPDF dither).

    Raises:
        OutputExistsError: ``dst`` exists and not ``overwrite``.
        SpecError: ``dst`` is ``src``, or a bad option value.
        UpbandError: any other problem with the input, the output or the model (one line).
    """
    t0 = time.perf_counter()
    src, dst = Path(src), Path(dst)
    check_output(src, dst, overwrite=overwrite)
    settings = Settings(sample_rate, merge, chunk_seconds, overlap_seconds, batch_size,
                        ClipPolicy(clip_mode), guard, pass_gentle, seed, compensate, fill)
    info = audio.info(src)
    subtype = audio.output_subtype(info, bit_depth)
    audio.output_format(dst)
    net, found = _model_for(src, model, device, phase_repair)
    route = choose_route(found, info.sample_rate, info.channels, net, settings)
    report = _new_report(src, dst, info, subtype, route, net)
    report.clip_gain, pipe, limiter = _write_output(
        src, dst, lambda: Pipeline.build(net, route, settings), info, subtype, settings.clip,
        overwrite, progress)
    if pipe.frames_in < info.frames - info.sample_rate // 2:
        # a truncated file whose header promises more (an MP3's Xing frame count): say so
        report.duration_s = pipe.frames_in / info.sample_rate
        report.warnings.append(f"the file ends early: {report.duration_s:.1f} s decoded of the "
                               f"{info.duration:.1f} s its header gives (truncated?)")
    _stage_stats(report, pipe)
    if limiter is not None:
        report.limit_overs = limiter.stats.overs
        report.limited_samples = limiter.stats.limited
        report.limit_reduction_db = round(limiter.stats.reduction_db, 3)
    report.seconds = time.perf_counter() - t0
    return report


def _stage_stats(report: FileReport, pipe: Pipeline) -> None:
    """What the roll-off compensation and the level guard did, into ``report``."""
    if pipe.compensation is not None:
        curves = pipe.compensation.curves
        report.compensation_gain_db = round(curves.max_gain_db, 2)
        lo, hi = curves.span_hz()
        report.compensation_band_hz = (round(lo, 1), round(hi, 1))
    if pipe.guard is not None:
        report.guard_reduction_db = round(pipe.guard.stats.reduction_db, 3)
        report.guard_limited_fraction = round(pipe.guard.stats.limited_fraction, 4)
        if pipe.route.fill_db is not None:
            report.guard_fill_ratio = round(pipe.guard.stats.fill_ratio, 4)
            report.guard_fill_db = pipe.route.fill_db


def _model_for(src: Path, model: ModelSpec, device: str, phase_repair: PhaseRepair
               ) -> tuple[WaveModel, Bandwidth]:
    """The model that enhances ``src`` (``--model auto``: by the codec the detector sees) and
    its bandwidth, detected as ``upband info`` does (the same excerpts, the same answer)."""
    models = load_models(model, device=device, phase_repair=phase_repair)
    found = detect_file(src)
    return pick_model(models, found), found


def _new_report(src: Path, dst: Path, info: audio.AudioInfo, subtype: str, route: Route,
                net: WaveModel) -> FileReport:
    status, message = route.describe()
    return FileReport(
        str(src), str(dst), status, message, input_rate=info.sample_rate,
        output_rate=route.output_rate, channels=info.channels, duration_s=info.duration,
        input_subtype=info.subtype, output_subtype=subtype, bandwidth=route.bandwidth.to_dict(),
        merge_cutoff_hz=route.merge_cutoff_hz, model=net.pretrained_name or net.name)


def _read_blocks(src: Path, info: audio.AudioInfo) -> Iterator[tuple[np.ndarray, bool]]:
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


def _pushed(pipe: Pipeline, blocks: Iterator[tuple[np.ndarray, bool]]
            ) -> Iterator[tuple[np.ndarray, int, bool]]:
    """``(output, input frames, last)`` for each ``(block, last)`` of ``blocks`` through
    ``pipe``: the same as :meth:`Pipeline.push` block by block, but the first half of each
    block (resampling, the model and the compensation, :meth:`Pipeline.front`) runs in a second
    thread, up to ``AHEAD_BLOCKS`` blocks ahead of the second half (guard and merge: NumPy on
    one core) and the caller's writing, which run here. Reading stays in this thread; an error
    in either half is raised here, after the other thread's blocks are done."""
    with ThreadPoolExecutor(1, thread_name_prefix="upband-model") as pool:
        queue: deque[tuple[Future[tuple[np.ndarray, np.ndarray | None]], int, bool]] = deque()

        def oldest() -> tuple[np.ndarray, int, bool]:
            job, frames, last = queue.popleft()
            x, m = job.result()
            return pipe.back(x, m, last=last), frames, last

        for block, last in blocks:
            queue.append((pool.submit(pipe.front, block, last), block.shape[1], last))
            if len(queue) > AHEAD_BLOCKS:
                yield oldest()
        while queue:
            yield oldest()


def _write_output(src: Path, dst: Path, make_pipeline: Callable[[], Pipeline],
                  info: audio.AudioInfo, subtype: str, clip: ClipPolicy, overwrite: bool,
                  progress: Callable[[float], None] | None
                  ) -> tuple[float, Pipeline, PeakLimiter | None]:
    """Run a pipeline over ``src`` into ``dst``; returns the gain applied, the pipeline and the
    limiter (None: not ``limit`` mode, or the output is the input's own samples).

    The output is written as it comes (atomically). An output that is the input's own samples
    is written as it is; any other gets the clip policy (in ``limit`` mode the look-ahead
    limiter, in the same pass) and, to 16-bit, TPDF dither. If it went above full scale and the
    policy rescales, that pass is discarded and the (deterministic) pipeline runs again with the
    gain that brings the peak to full scale: a second pass for the rare clipping file rather
    than a spool file for every one.
    """
    gain = 1.0
    for attempt in range(2):
        pipe = make_pipeline()
        new_audio = not pipe.route.copies_input
        limiter = clip.limiter(info.channels, pipe.route.output_rate) if new_audio else None
        peak = 0.0
        writer = audio.AudioWriter(dst, pipe.route.output_rate, info.channels, subtype=subtype,
                                   overwrite=overwrite, dither=new_audio and subtype == "PCM_16")
        try:
            for out, frames, last in _pushed(pipe, _read_blocks(src, info)):
                if limiter is not None:
                    out = limiter.push(out, last=last)
                if out.size:
                    if new_audio:
                        out = clip.limit(out, gain)
                    peak = max(peak, float(np.max(np.abs(out))))
                    writer.write(out)
                if progress is not None and attempt == 0:
                    progress(frames / info.sample_rate)
        except BaseException:
            writer.abort()
            raise
        if attempt == 0 and new_audio and clip.gain_for(peak) != 1.0:
            writer.abort()
            gain = clip.gain_for(peak)
            continue
        writer.close()
        break
    return gain, pipe, limiter


# --------------------------------------------------------------------------------------------
# batches of files
# --------------------------------------------------------------------------------------------


def write_report(path: Path, reports: list[FileReport]) -> None:
    """Write the ``--report`` JSON (a list of :meth:`FileReport.to_dict`) atomically."""
    atomic_write_text(path, dumps_strict([r.to_dict() for r in reports], indent=2) + "\n")


def run_batch(pairs: list[tuple[Path, Path]], *, force: bool,
              on_file: Callable[[FileReport], None],
              on_start: Callable[[Path], None] | None = None,
              seeds: list[int] | None = None, **kwargs: Any) -> list[FileReport]:
    """Enhance every ``(input, output)`` pair; a bad file is reported and skipped, finished
    outputs are kept.

    An existing output (without ``force``) gives a ``skipped`` record, an output that is its
    input, any other :class:`UpbandError`, an ``OSError`` (a folder that cannot be written, a
    full disk) or an unexpected error a ``failed`` one, and the batch goes on (the refusals of
    :func:`check_output`, made once per file by :func:`enhance_file`). ``on_start(src)`` is
    called before each file, ``on_file(report)`` after it; ``kwargs`` go to
    :func:`enhance_file`, and ``seeds[i]`` (when given) as the ``seed`` of pair ``i``
    (:func:`~upband.enhancement.planning.draw_outputs`).
    """
    reports = []
    for i, (src, dst) in enumerate(pairs):
        if seeds is not None:
            kwargs["seed"] = seeds[i]
        if on_start is not None:
            on_start(src)
        report = FileReport(str(src), str(dst))
        try:
            dst.parent.mkdir(parents=True, exist_ok=True)
            report = enhance_file(src, dst, overwrite=force, **kwargs)
        except OutputExistsError:
            report.status, report.message = "skipped", "output exists (use --force to redo)"
        except UpbandError as err:
            report.status, report.message = "failed", str(err)
        except OSError as err:  # an output folder that cannot be made or written, a full disk
            where = err.filename or dst
            report.status, report.message = "failed", f"{where}: {err.strerror or err}"
        except Exception as err:  # a bug of ours must not lose the other files
            report.status, report.message = "failed", (
                f"{src}: internal error: {type(err).__name__}: {err} (please report it)")
        reports.append(report)
        on_file(report)
    return reports
