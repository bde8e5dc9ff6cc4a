"""Run a protocol over a folder of clean music or a corpus split: degrade, restore, score.

Per file (in a worker process when ``jobs > 1``; models are loaded once per worker): read the
clean music (or its first ``limit_seconds``), resample and convert it to the protocol's rate and
channels -- that is the reference -- then for every condition draw the degradation
(:func:`upband.evaluate.protocols.draw`), degrade, run every baseline and every model (through
:func:`upband.enhancement.enhance`, the same chunked pipeline, bandwidth detection and
do-no-harm merge as ``upband enhance``) and score each output against the reference. Results do
not depend on the number of jobs: every random draw is seeded by the file and condition, and
results are put back in file order. A file that cannot be read or scored is reported and
skipped; the others go on.
"""

from __future__ import annotations

import concurrent.futures as cf
import math
import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from upband import audio
from upband.analysis import Bandwidth, detect_bandwidth
from upband.data.corpus import META_NAME, open_corpus
from upband.degrade import Decimate, downsample
from upband.degrade import apply as degrade_apply
from upband.enhancement import enhance, load_enhancer, resolve_device
from upband.enhancement.phase import PHASE_SOURCES, replace_phase
from upband.errors import AudioFileNotFoundError, ModelError, SpecError, UpbandError
from upband.evaluate.baselines import BASELINES, DEFAULT_BASELINES, Observation
from upband.evaluate.protocols import Condition, Protocol, draw, get_protocol, seed_of
from upband.evaluate.scoring import better, mean, score
from upband.metrics import load_vggish, visqol_available

#: Seconds of the example clip kept for the spectrogram figures (the loudest such window).
EXAMPLE_SECONDS = 4.0


@dataclass(frozen=True)
class Item:
    """One clean file: ``id`` is stable across machines (path relative to the data folder, or
    the corpus record id); ``path`` is what the report shows."""

    id: str
    path: str
    corpus_record: str | None = None


@dataclass(frozen=True)
class Config:
    """Everything a worker needs (plain, picklable values)."""

    protocol: str
    models: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    baselines: tuple[str, ...] = DEFAULT_BASELINES
    device: str = "cpu"
    limit_seconds: float | None = None
    visqol: bool = True
    vggish: tuple[str, ...] = ()
    seed: int = 0
    best_of: int = 1
    corpus: str | None = None
    threads: int | None = None
    merge: bool = True
    guard: bool = True
    vocoder: str | None = None  # the vocoder of MODEL+tdpr systems (None: the shipped one)
    compensate: bool = True  # roll-off compensation, as upband enhance (with the merge only)
    fill: bool = True  # the guard's fill, as upband enhance (with the guard only)


@dataclass
class FileResult:
    """What one file gave: rows ``(condition, system, metric, value)`` or an error."""

    index: int
    item: Item
    duration_s: float = 0.0
    source_duration_s: float = 0.0
    error: str | None = None
    rows: list[tuple[str, str, str, float]] = field(default_factory=list)
    conditions: dict[str, dict[str, Any]] = field(default_factory=dict)
    example: dict[str, dict[str, np.ndarray]] | None = None
    example_start_s: float = 0.0
    seconds: float = 0.0


def model_label(spec: str) -> str:
    """A model's name in tables: a pretrained name as it is, a checkpoint by its file stem;
    a phase-repair suffix (``+tdpr``, ``+griffin-lim``, ``+gt-phase``) is kept."""
    text = os.fspath(spec)
    suffix = next((f"+{s}" for s in PHASE_SOURCES if text.endswith(f"+{s}")), "")
    base = text[: len(text) - len(suffix)]
    if base.endswith(".safetensors") or os.sep in base:
        base = Path(base).stem
    return base + suffix


def _load_system(spec: str, config: Config) -> Any:
    """A system of ``--models``: ``MODEL+gt-phase`` is the model itself (its phase is replaced
    by the reference's in :func:`system_output`), ``MODEL+tdpr`` repaired with
    ``config.vocoder`` when one is given."""
    if spec.endswith("+gt-phase"):
        return load_enhancer(spec[: -len("+gt-phase")], device=config.device)
    vocoder = config.vocoder if spec.endswith("+tdpr") else None  # None: the shipped one
    return load_enhancer(spec, device=config.device, phase_repair=vocoder)


def metric_names(protocol: Protocol, config: Config) -> tuple[str, ...]:
    """The protocol's metrics plus the optional ones that are asked for and available."""
    names = list(protocol.metrics)
    if config.visqol and "visqol" in protocol.optional_metrics and visqol_available():
        names.append("visqol")
    if config.vggish:
        names.append("vgg_distance")
    return tuple(names)


# --------------------------------------------------------------------------------------------
# finding the files
# --------------------------------------------------------------------------------------------


@dataclass
class Dataset:
    """The files to evaluate, and the corpus records of the split that were never packed."""

    items: list[Item]
    corpus: str | None = None
    split: str | None = None
    skipped: list[dict[str, str]] = field(default_factory=list)


def find_items(data: str | os.PathLike[str], split: str | None = None) -> Dataset:
    """A folder (searched recursively for audio), one audio file, or a corpus folder (with
    ``corpus.json``: the packed files of ``split``, default ``test``)."""
    root = Path(data).expanduser()
    if not root.exists():
        raise AudioFileNotFoundError(f"{root}: no such data folder")
    if root.is_dir() and (root / META_NAME).is_file():
        corpus = open_corpus(root)
        name = split or "test"
        records = corpus.files(name)
        skipped = [{"path": r.relpath, "reason": r.skipped or ""}
                   for r in corpus.skipped() if r.split == name]
        if not records:
            raise SpecError(f"{root}: the corpus has no packed files in its {name!r} split")
        items = [Item(r.id, r.relpath, r.id) for r in records]
        return Dataset(items, str(root), name, skipped)
    if split is not None:
        raise SpecError(f"--split needs a corpus folder (built by 'upband corpus build'); "
                        f"{root} has no {META_NAME}")
    if root.is_file():
        return Dataset([Item(root.name, str(root))])
    found = sorted(p for p in root.rglob("*") if p.is_file() and audio.is_audio_path(p))
    if not found:
        raise SpecError(f"{root}: no audio files found (searched recursively)")
    return Dataset([Item(p.relative_to(root).as_posix(), str(p)) for p in found])


# --------------------------------------------------------------------------------------------
# the worker
# --------------------------------------------------------------------------------------------


class State:
    """Loaded models, VGGish and corpus of one process."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.protocol = get_protocol(config.protocol)
        self.metrics = metric_names(self.protocol, config)
        self.models = {label: _load_system(spec, config)
                       for label, spec in zip(config.labels, config.models, strict=True)}
        self.context: dict[str, Any] = {}
        if config.vggish:
            self.context["vggish"] = load_vggish(list(config.vggish),
                                                 device=resolve_device(config.device))
        self.corpus = None
        self.records: dict[str, Any] = {}
        if config.corpus is not None:
            self.corpus = open_corpus(config.corpus)
            self.records = {r.id: r for r in self.corpus.records}


_STATE: State | None = None


def _init_worker(config: Config) -> None:
    global _STATE
    if config.threads:  # share the cores between the workers
        import torch

        torch.set_num_threads(config.threads)
    _STATE = State(config)


def _work(index: int, item: Item, want_example: bool) -> FileResult:
    assert _STATE is not None, "worker not initialised"
    return evaluate_item(_STATE, index, item, want_example=want_example)


def load_reference(state: State, item: Item) -> tuple[np.ndarray, float]:
    """The clean reference ``[channels, T]`` at the protocol's rate and the source's length (s)."""
    p = state.protocol
    limit = state.config.limit_seconds
    if item.corpus_record is not None and state.corpus is not None:
        record = state.records[item.corpus_record]
        sr_in = state.corpus.sample_rate
        n = record.frames if limit is None else min(record.frames, round(limit * sr_in))
        x = state.corpus.read(record, 0, n)
        source_s = record.frames / sr_in
    else:
        info = audio.info(item.path)
        sr_in = info.sample_rate
        n = -1 if limit is None else max(1, round(limit * sr_in))
        x, sr_in = audio.read(item.path, frames=n)
        source_s = info.duration
    audio.check_finite(x)
    x = audio.resample(x, sr_in, p.sample_rate)
    if x.shape[0] not in (1, p.channels):
        x = audio.to_channels(x, 1)
    x = audio.to_channels(x, p.channels)
    if x.shape[-1] < p.sample_rate // 10:
        raise SpecError(f"{item.path}: shorter than 0.1 s at {p.sample_rate} Hz; too short to "
                        "score")
    if not np.any(x):
        raise SpecError(f"{item.path}: the reference is digital silence; no metric is defined")
    return np.ascontiguousarray(x, dtype=np.float32), source_s


def _example_window(x: np.ndarray, sr: int) -> tuple[int, int]:
    """The loudest ``EXAMPLE_SECONDS`` of ``x`` (half-second steps): (start, stop) samples."""
    n = min(x.shape[-1], int(EXAMPLE_SECONDS * sr))
    step = max(1, sr // 2)
    energy = np.cumsum(np.concatenate([[0.0], (x.astype(np.float64) ** 2).sum(axis=0)]))
    starts = np.arange(0, x.shape[-1] - n + 1, step)
    best = int(starts[np.argmax(energy[starts + n] - energy[starts])])
    return best, best + n


def system_output(state: State, label: str, degraded: np.ndarray, seed: int,
                  found: Bandwidth, clean: np.ndarray | None = None) -> np.ndarray:
    """One model's output; ``found`` is ``detect_bandwidth`` of ``degraded`` (what
    :func:`upband.enhancement.enhance` would compute itself), detected once per condition.
    A ``+gt-phase`` system takes the phase of ``clean`` (TD-PR's oracle) where ``+tdpr``
    takes the vocoder's: above the detected cutoff, or in every bin with ``merge`` off."""
    torch.manual_seed(seed)
    sr = state.protocol.sample_rate
    y, _ = enhance(degraded, sr, model=state.models[label],
                   device=state.config.device, output_sample_rate=sr,
                   clip_mode="none", bandwidth=found, merge=state.config.merge,
                   guard=state.config.guard, seed=seed, compensate=state.config.compensate,
                   fill=state.config.fill)
    y = audio.fit_length(np.asarray(y, np.float32), degraded.shape[-1])
    if label.endswith("+gt-phase"):
        if clean is None:
            raise ModelError(f"{label}: the ground-truth phase needs the clean reference")
        # where MODEL+tdpr repairs: above the merge's cutoff, every bin without the merge
        above = found.cutoff_hz if state.config.merge else 0.0
        y = replace_phase(torch.from_numpy(y), torch.from_numpy(clean), sr,
                          above_hz=above).numpy()
    return y


def draws_of(state: State, label: str) -> int:
    """Samples drawn per input: ``best_of`` for a stochastic model (an attribute
    ``stochastic = True``; draw ``k`` of a file and condition gets its own noise seed, passed
    to :func:`upband.enhancement.enhance`), else 1."""
    return state.config.best_of if getattr(state.models[label], "stochastic", False) else 1


def mean_label(label: str, draws: int) -> str:
    """The system of a stochastic model's mean over its ``draws`` (what one draw gives a
    listener on average); the model's own label holds the best draw per metric."""
    return f"{label} mean-of-{draws}"


def _model_rows(state: State, label: str, cond: Condition, item: Item, clean: np.ndarray,
                degraded: np.ndarray, found: Bandwidth, cutoff: float,
                window: tuple[int, int] | None, example: dict[str, np.ndarray]
                ) -> list[tuple[str, str, str, float]]:
    """One model's rows: per metric the best of its draws (Lattner & Nistal's Table 2) and,
    for several draws, their mean (:func:`mean_label`); the first draw is the example."""
    cfg, names, sr = state.config, state.metrics, state.protocol.sample_rate
    drawn: dict[str, list[float]] = {metric: [] for metric in names}
    draws = draws_of(state, label)
    for k in range(draws):
        seed = seed_of(cfg.seed, item.id, cond.name, label, k) % (2**63)
        est = system_output(state, label, degraded, seed, found, clean)
        for metric, value in score(clean, est, sr, cutoff, names, state.context).items():
            drawn[metric].append(value)
        if k == 0 and window is not None:
            example[label] = est[:, window[0]:window[1]].mean(axis=0)
    rows = []
    for metric, values in drawn.items():
        best = values[0]
        for value in values[1:]:
            if better(metric, value, best):
                best = value
        rows.append((cond.name, label, metric, best))
        if draws > 1:
            rows.append((cond.name, mean_label(label, draws), metric, mean(values)[0]))
    return rows


def _condition(state: State, item: Item, cond: Condition, clean: np.ndarray,
               window: tuple[int, int] | None, result: FileResult) -> None:
    p, cfg = state.protocol, state.config
    sr = p.sample_rate
    params = draw(cond, item.id, cfg.seed, sr)
    degraded = degrade_apply(clean, sr, params)
    r = params.r if isinstance(params, Decimate) else None
    low = downsample(clean, r) if r is not None else None
    measured = cond.cutoff_hz is None
    # the models' pipeline and a codec condition's band edge both need the detector's view
    found = detect_bandwidth(degraded, sr) if measured or state.models else None
    if cond.cutoff_hz is not None:
        cutoff = cond.cutoff_hz
    else:
        assert found is not None
        cutoff = found.cutoff_hz
    result.conditions[cond.name] = {"degradation": params.to_dict(), "text": str(params),
                                    "cutoff_hz": cutoff, "cutoff_measured": measured}
    obs = Observation(degraded, sr, params, cutoff, low, r, clean)
    names = state.metrics
    example: dict[str, np.ndarray] = {}
    if window is not None:
        a, b = window
        example["target"] = clean[:, a:b].mean(axis=0)
    input_scores: dict[str, float] | None = None
    for system in cfg.baselines:
        raw = BASELINES[system](obs)
        est = np.asarray(raw, np.float32)
        if raw is obs.degraded and input_scores is not None:
            scores = input_scores  # the degraded signal itself (spline/sinc without decimation)
        else:
            scores = score(clean, est, sr, cutoff, names, state.context)
            if raw is obs.degraded:
                input_scores = scores
        for metric, value in scores.items():
            result.rows.append((cond.name, system, metric, value))
        if window is not None:
            example[system] = est[:, window[0]:window[1]].mean(axis=0)
    for label in state.models:
        assert found is not None
        result.rows += _model_rows(state, label, cond, item, clean, degraded, found, cutoff,
                                   window, example)
    if window is not None:
        assert result.example is not None
        result.example[cond.name] = example


def evaluate_item(state: State, index: int, item: Item, *, want_example: bool = False
                  ) -> FileResult:
    """Every condition x system x metric of one file; an ``UpbandError`` becomes ``error``."""
    t0 = time.perf_counter()
    result = FileResult(index, item)
    try:
        clean, result.source_duration_s = load_reference(state, item)
        sr = state.protocol.sample_rate
        result.duration_s = clean.shape[-1] / sr
        window = _example_window(clean, sr) if want_example else None
        if window is not None:
            result.example = {}
            result.example_start_s = window[0] / sr
        for cond in state.protocol.conditions:
            _condition(state, item, cond, clean, window, result)
    except UpbandError as err:
        result.error, result.rows, result.example = str(err), [], None
        if not result.error.startswith(item.path):
            result.error = f"{item.path}: {result.error}"
    result.seconds = time.perf_counter() - t0
    return result


# --------------------------------------------------------------------------------------------
# the driver
# --------------------------------------------------------------------------------------------


def make_config(protocol: str, *, models: Sequence[str] = (),
                baselines: Sequence[str] = DEFAULT_BASELINES, device: str = "auto",
                limit_seconds: float | None = None, visqol: bool = True,
                vggish: Sequence[str] = (), seed: int = 0, best_of: int = 1,
                corpus: str | None = None, jobs: int = 1, merge: bool = True,
                guard: bool = True, vocoder: str | None = None, compensate: bool = True,
                fill: bool = True) -> Config:
    """Check the options and resolve names; ``SpecError`` / ``ModelError`` for bad ones."""
    get_protocol(protocol)
    unknown = [b for b in baselines if b not in BASELINES]
    if unknown:
        raise SpecError(f"unknown baseline(s) {', '.join(unknown)}; choose from "
                        f"{', '.join(BASELINES)}")
    names = ["input", *(b for b in baselines if b != "input")]
    labels = [model_label(m) for m in models]
    clash = sorted({x for x in labels if labels.count(x) > 1 or x in BASELINES})
    if clash:
        raise ModelError(f"model label(s) {', '.join(clash)} used twice or by a baseline; "
                         "rename the checkpoint file")
    if limit_seconds is not None and not (math.isfinite(limit_seconds) and limit_seconds > 0):
        raise SpecError(f"--limit-seconds must be a positive number, got {limit_seconds:g}")
    if isinstance(best_of, bool) or best_of < 1:
        raise SpecError(f"--best-of must be a positive integer, got {best_of!r}")
    if jobs < 1:
        raise SpecError(f"--jobs must be a positive integer, got {jobs}")
    dev = str(resolve_device(device))
    threads = max(1, (os.cpu_count() or 1) // jobs) if jobs > 1 else None
    return Config(protocol, tuple(os.fspath(m) for m in models), tuple(labels), tuple(names),
                  dev, limit_seconds, visqol, tuple(os.fspath(v) for v in vggish), seed,
                  best_of, corpus, threads, merge, guard, vocoder, compensate, fill)


def run(config: Config, items: Sequence[Item], *, jobs: int = 1,
        on_file: Callable[[FileResult, int, int], None] | None = None,
        state: State | None = None) -> list[FileResult]:
    """Evaluate ``items`` (in worker processes when ``jobs > 1``); results in item order.

    ``state`` (built from ``config`` when None) holds this process's models: they are loaded
    here even with ``jobs > 1``, so that a bad model fails before any work starts. The example
    clip (``FileResult.example``) is taken from the first file that can be scored.
    """
    state = state or State(config)
    results: list[FileResult | None] = [None] * len(items)
    total = len(items)
    if jobs == 1 or len(items) == 1:
        for i, item in enumerate(items):
            want = all(r is None or r.error is not None for r in results[:i])
            results[i] = evaluate_item(state, i, item, want_example=want)
            if on_file is not None:
                on_file(results[i], i + 1, total)  # type: ignore[arg-type]
    else:
        ctx = multiprocessing.get_context("spawn")  # torch's threads make fork unsafe
        done = 0
        with cf.ProcessPoolExecutor(max_workers=min(jobs, len(items)), mp_context=ctx,
                                    initializer=_init_worker, initargs=(config,)) as pool:
            futures = [pool.submit(_work, i, item, i == 0) for i, item in enumerate(items)]
            try:
                for fut in cf.as_completed(futures):
                    res = fut.result()
                    results[res.index] = res
                    done += 1
                    if on_file is not None:
                        on_file(res, done, total)
            except BaseException:
                for fut in futures:
                    fut.cancel()
                raise
        if all(r is None or r.example is None for r in results):
            first = next((r for r in results if r is not None and r.error is None), None)
            if first is not None:  # the first file failed: take the example from the next
                again = evaluate_item(state, first.index, first.item, want_example=True)
                first.example, first.example_start_s = again.example, again.example_start_s
    return [r for r in results if r is not None]


def systems_of(config: Config, state: State | None = None) -> list[str]:
    """Row order of the tables: baselines (input first), then models; with the loaded models
    (``state``), a stochastic model drawn several times is followed by its mean over the
    draws (:func:`mean_label`)."""
    out = list(config.baselines)
    for label in config.labels:
        out.append(label)
        draws = draws_of(state, label) if state is not None else 1
        if draws > 1:
            out.append(mean_label(label, draws))
    return out
