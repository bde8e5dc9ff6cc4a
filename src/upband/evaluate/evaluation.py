"""The evaluation itself: :func:`evaluate` runs a protocol over clean music and writes the report
folder (see :mod:`upband.evaluate` for the pieces)."""

from __future__ import annotations

import os
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from upband.common.clock import utcnow
from upband.common.version import __version__
from upband.errors import EvaluationError, MissingDependencyError, NotAFileError, OutputExistsError
from upband.evaluate import (
    CSV_NAME,
    DEFAULT_BEST_OF,
    DEFAULT_JOBS,
    DEFAULT_SEED,
    JSON_NAME,
    REPORT_NAME,
    SCATTER_NAME,
    figures,
)
from upband.evaluate.baselines import DEFAULT_BASELINES, DESCRIPTIONS
from upband.evaluate.protocols import Condition, Protocol, get_protocol
from upband.evaluate.report import Summary, render_markdown, results_csv, summary_json
from upband.evaluate.runner import (
    FileResult,
    State,
    draws_of,
    find_items,
    make_config,
    mean_label,
    run,
    systems_of,
)
from upband.fsutil import atomic_write_text

__all__ = ["Evaluation", "evaluate"]


@dataclass
class Evaluation:
    """What :func:`evaluate` did: the folder, per-file results and the summary."""

    output: Path
    results: list[FileResult]
    summary: Summary
    written: list[Path]

    @property
    def failed(self) -> list[FileResult]:
        return [r for r in self.results if r.error is not None]


def _condition_meta(cond: Condition, results: Sequence[FileResult]) -> dict[str, str]:
    texts = sorted({r.conditions[cond.name]["text"] for r in results if cond.name in
                    r.conditions})
    if len(texts) == 1:
        degradation = texts[0]
    else:
        degradation = f"{cond.describe()}; drawn per file (see `results.csv`)"
    if cond.cutoff_hz is not None:
        cutoff = f"{cond.cutoff_hz:g} Hz"
    else:
        found = [r.conditions[cond.name]["cutoff_hz"] for r in results
                 if cond.name in r.conditions]
        cutoff = (f"measured per file (median {statistics.median(found):.0f} Hz)"
                  if found else "measured per file")
    return {"name": cond.name, "label": cond.label or cond.name, "degradation": degradation,
            "cutoff": cutoff}


def _system_meta(state: State) -> list[dict[str, str]]:
    out = [{"name": b, "description": DESCRIPTIONS[b]} for b in state.config.baselines]
    merge = ("do-no-harm merge" + ("" if state.config.guard else ", no level guard")
             + ("" if state.config.compensate else ", no roll-off compensation")
             + (", the guard's fill" if state.config.fill and state.config.guard else "")
             if state.config.merge else "raw model output (--no-merge)")
    for (label, net), spec in zip(state.models.items(), state.config.models, strict=True):
        draws = draws_of(state, label)
        out.append({"name": label, "description":
                    f"model `{spec}` ({net.name}, {net.num_parameters():,} parameters, "
                    f"{net.sample_rate} Hz) through the `upband enhance` pipeline (chunked, "
                    f"bandwidth detection, {merge}, no clipping)"
                    + (f"; best of {draws} draws per file and metric (chosen with the "
                       "reference, as Lattner & Nistal's Table 2)" if draws > 1 else "")})
        if draws > 1:
            out.append({"name": mean_label(label, draws), "description":
                        f"`{label}`'s {draws} draws per file, each scored, the mean taken: "
                        "what one draw gives a listener on average"})
    return out


def _figures(out: Path, protocol: Protocol, summary: Summary,
             results: Sequence[FileResult]) -> tuple[list[str], list[str]]:
    """Write the PNGs; returns (file names, notes). Without matplotlib: no figures, a note."""
    names: list[str] = []
    labels = {c.name: c.label or c.name for c in protocol.conditions}
    example = next((r for r in results if r.example), None)
    try:
        if example is not None and example.example is not None:
            for cond, clips in example.example.items():
                name = f"spectrogram_{cond}.png"
                figures.plot_spectrograms(
                    clips, protocol.sample_rate, out / name,
                    f"{example.item.id}, {labels[cond]} (mono downmix, "
                    f"{example.example_start_s:.1f} s +)", example.example_start_s)
                names.append(name)
        if "snr" in summary.metrics:
            points: dict[str, dict[str, list[tuple[float, float]]]] = {
                c: {} for c in labels}
            for r in results:
                snr = {(c, s): v for c, s, m, v in r.rows if m == "snr"}
                for (c, s), v in snr.items():
                    if (c, "input") in snr:
                        points[c].setdefault(s, []).append((snr[(c, "input")], v))
            figures.plot_snr_scatter(points, labels, summary.systems, out / SCATTER_NAME,
                                     f"{protocol.name}: SNR per clip")
            names.append(SCATTER_NAME)
    except MissingDependencyError as err:
        return names, [f"no figures: {err}"]
    return names, []


def evaluate(data: str | os.PathLike[str], protocol: str, *, models: Sequence[str] = (),
             baselines: Sequence[str] = DEFAULT_BASELINES,
             output: str | os.PathLike[str] | None = None, split: str | None = None,
             jobs: int = DEFAULT_JOBS, limit_seconds: float | None = None, device: str = "auto",
             visqol: bool = True, vggish: Sequence[str] = (), seed: int = DEFAULT_SEED,
             best_of: int = DEFAULT_BEST_OF, merge: bool = True, guard: bool = True,
             vocoder: str | None = None, compensate: bool = True, fill: bool = True,
             force: bool = False,
             command: str | None = None,
             on_file: Callable[[FileResult, int, int], None] | None = None) -> Evaluation:
    """Run ``protocol`` on the clean music in ``data`` and write the report folder.

    Args:
        data: a folder (searched recursively), one file, or a corpus folder (``split``,
            default ``test``).
        protocol: a key of :data:`PROTOCOLS`.
        models: anything :func:`upband.enhancement.load_enhancer` takes; labelled by name or
            checkpoint file stem.
        baselines: keys of :data:`BASELINES` (``input`` is always included, first).
        output: the report folder (default ``upband-eval-<protocol>``); an existing report
            there is replaced only with ``force``.
        jobs: files evaluated in parallel worker processes (the numbers do not change).
        limit_seconds: evaluate only the first seconds of every file.
        visqol: add ViSQOL where the protocol lists it and ``visqol-python`` is installed.
        vggish: VGGish weights file(s): adds the VGG distance (16 kHz front end).
        best_of: draws per file for stochastic models (the best per metric is kept).
        merge: apply the do-no-harm merge to the models' output, as ``upband enhance`` does;
            ``False`` scores the raw network output, as the papers do.
        vocoder: the vocoder of ``MODEL+tdpr`` systems (a name or ``.safetensors`` file;
            default: the shipped one at the protocol's rate). ``models`` may name a model with
            its phase repaired (``+tdpr``, ``+griffin-lim``) or with the reference's phase
            above the cutoff (``+gt-phase``, TD-PR's oracle): :mod:`upband.enhancement.phase`.
        guard: bound the model's added band by the input's level, as ``upband enhance``
            does (with the merge only).
        compensate: undo a filter's roll-off where the input still holds the band, as
            ``upband enhance`` does (with the merge only).
        fill: let the guard fill the band with soft noise, as ``upband enhance`` does (False: as
            ``--no-fill``).
        command: the command line to print in the report.
        on_file: called as ``on_file(result, done, total)`` after every file.

    Raises:
        UpbandError: bad options, no files, unknown model, or no file could be evaluated.
    """
    proto = get_protocol(protocol)
    out = Path(output) if output is not None else Path(f"upband-eval-{proto.name}")
    if out.exists() and not out.is_dir():
        raise NotAFileError(f"{out}: exists and is not a folder")
    if (out / REPORT_NAME).exists() and not force:
        raise OutputExistsError(f"{out}: already holds a report (use --force to replace it)")
    dataset = find_items(data, split)
    config = make_config(proto.name, models=models, baselines=baselines, device=device,
                         limit_seconds=limit_seconds, visqol=visqol, vggish=vggish, seed=seed,
                         best_of=best_of, corpus=dataset.corpus, jobs=jobs, merge=merge,
                         guard=guard, vocoder=vocoder, compensate=compensate, fill=fill)
    state = State(config)  # loads the models: a bad one fails before any work
    results = run(config, dataset.items, jobs=jobs, on_file=on_file, state=state)
    ok = [r for r in results if r.error is None]
    if not ok:
        raise EvaluationError(f"no file could be evaluated ({len(results)} failed; the first: "
                        f"{results[0].error})")
    summary = Summary.from_results(proto, systems_of(config, state), ok)
    out.mkdir(parents=True, exist_ok=True)
    figure_names, figure_notes = _figures(out, proto, summary, ok)
    notes = figure_notes + _option_notes(state, summary, proto, visqol=visqol, best_of=best_of)
    meta = _report_meta(proto, state, summary, results, data=data, split=dataset.split,
                        skipped=dataset.skipped, command=command, figures=figure_names,
                        notes=notes)
    written = [out / CSV_NAME, out / JSON_NAME, out / REPORT_NAME]
    atomic_write_text(written[0], results_csv(ok))
    atomic_write_text(written[1], summary_json(summary, meta))
    atomic_write_text(written[2], render_markdown(summary, meta, figure_names))
    return Evaluation(out, results, summary, [*written, *(out / n for n in figure_names)])


def _option_notes(state: State, summary: Summary, proto: Protocol, *, visqol: bool,
                  best_of: int) -> list[str]:
    """Notes on options that could not take effect."""
    notes = []
    if best_of > 1 and not any(draws_of(state, m) > 1 for m in state.models):
        notes.append(f"--best-of {best_of} was asked for, but no model is stochastic: one "
                     "output per file.")
    if "visqol" in proto.optional_metrics and "visqol" not in summary.metrics:
        notes.append("ViSQOL not computed (" + ("--no-visqol" if not visqol else
                                               "visqol-python is not installed") + ").")
    return notes


def _report_meta(proto: Protocol, state: State, summary: Summary,
                 results: Sequence[FileResult], *, data: str | os.PathLike[str], split: str | None,
                 skipped: Any, command: str | None, figures: list[str],
                 notes: list[str]) -> dict[str, Any]:
    """What was run on what: the header of ``summary.json`` and of the report."""
    ok = [r for r in results if r.error is None]
    config = state.config
    return {
        "upband_version": __version__,
        "date": utcnow(),
        "command": command or "(python API) upband.evaluate.evaluate",
        "protocol": {"name": proto.name, "description": proto.description,
                     "source": proto.source, "sample_rate": proto.sample_rate,
                     "channels": proto.channels, "layout": proto.layout},
        "data": str(data), "split": split, "seed": config.seed,
        "limit_seconds": config.limit_seconds, "merge": config.merge, "guard": config.guard,
        "compensate": config.compensate, "fill": config.fill,
        "device": config.device,
        "conditions": [_condition_meta(c, ok) for c in proto.conditions],
        "systems": _system_meta(state),
        "metrics": summary.metrics,
        "files": [{"file": r.item.id, "path": r.item.path,
                   "duration_s": round(r.duration_s, 6),
                   "source_duration_s": round(r.source_duration_s, 6)} for r in ok],
        "failed": [{"file": r.item.id, "error": r.error} for r in results if r.error],
        "skipped": skipped,
        "figures": figures,
        "notes": notes,
    }
