"""Designs compared at equal compute: every checkpoint of several runs validated on the same
excerpts, against the CPU time each run had when it wrote that checkpoint.

    points = compare_runs({"arunet-s": "runs/a", "frames": "runs/b"}, "corpus/",
                          max_files=16)
    write_comparison(points, "REPORT_DIR", budget_minutes=60)

Each checkpoint's network (``model.safetensors``; the EMA copy ``ema.safetensors`` when the run
kept one) is scored by :func:`upband.train.validation.validate` with ``merged=True``: what
``upband enhance`` would ship (detection + do-no-harm merge) as well as the raw output. Compute
is the ``cpu_seconds`` the loop records in every checkpoint (all threads of the training
process, resumes included); checkpoints written before that field existed fall back to their
wall time (``elapsed_seconds``) and say so in the table (``compute`` column ``wall``).
"""

from __future__ import annotations

import concurrent.futures as cf
import csv
import io
import multiprocessing
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from upband.data.corpus import open_corpus
from upband.data.dataset import ValItem, build_validation
from upband.errors import SpecError
from upband.fsutil import atomic_write_text
from upband.models.base import WaveModel
from upband.plotting import pyplot, save_png
from upband.states import load_model
from upband.train.checkpoint import list_checkpoints, read_state
from upband.train.validation import shipped, validate, visqol_or_nan

__all__ = ["Point", "add_visqol", "compare_runs", "comparison_csv", "validation_items",
           "write_comparison"]

PathLike = str | os.PathLike[str]

#: The values plotted and tabled, with their direction ("max" is better when higher).
HEADLINE = {"seen_merged_snr": "max", "seen_merged_lsd_high": "min",
            "unseen_merged_snr": "max", "unseen_merged_lsd_high": "min"}
#: Columns of the table at the budget beyond the headline (when :func:`add_visqol` ran).
VISQOL = ("seen_merged_visqol", "unseen_merged_visqol")


@dataclass(frozen=True)
class Point:
    """One checkpoint of one run: its compute and its validation values."""

    run: str
    step: int
    minutes: float
    compute: str  # "cpu" (CPU seconds recorded) or "wall" (older checkpoints)
    values: dict[str, float] = field(default_factory=dict)
    folder: str = ""  # the checkpoint folder


def validation_items(corpus: PathLike, *, split: str = "validation", seen_preset: str,
                     unseen_preset: str = "", max_files: int = 16, seconds: float = 8.0,
                     offset_seconds: float = 8.0, seed: int = 0,
                     channels: int = 2) -> dict[str, list[ValItem]]:
    """The excerpts every design is scored on (Sulun & Davies' validation protocol, see
    :func:`upband.data.dataset.build_validation`), ``seen`` and optionally ``unseen``."""
    source = open_corpus(corpus)
    common: dict[str, Any] = {"seconds": seconds, "offset_seconds": offset_seconds,
                              "max_files": max_files, "channels": channels, "seed": seed}
    items = {"seen": build_validation(source, split, preset=seen_preset, **common)}
    if unseen_preset:
        items["unseen"] = build_validation(source, split, preset=unseen_preset, **common)
    return items


def _compute(state: Mapping[str, Any]) -> tuple[float, str]:
    """(minutes, "cpu" | "wall") of a checkpoint's ``state.json``."""
    if "cpu_seconds" in state:
        return float(state["cpu_seconds"]) / 60.0, "cpu"
    return float(state.get("elapsed_seconds", 0.0)) / 60.0, "wall"


def _checkpoint_point(run: str, folder: Path, items: Mapping[str, Sequence[ValItem]],
                      sample_rate: int) -> Point:
    state = read_state(folder)
    values = validate(_checkpoint_model(folder), items, sample_rate, merged=True)
    minutes, compute = _compute(state)
    return Point(run, int(state["step"]), minutes, compute, values, str(folder))


def _checkpoint_model(folder: PathLike) -> WaveModel:
    weights = Path(folder) / "ema.safetensors"
    return load_model(weights if weights.is_file() else Path(folder) / "model.safetensors")


def _item_visqols(folder: str | None, items: Sequence[ValItem], sample_rate: int
                  ) -> list[float]:
    """ViSQOL of the shipped output of the checkpoint in ``folder`` (None: of the inputs), one
    per excerpt; NaN where ViSQOL refuses the pair (an excerpt of near silence)."""
    model = _checkpoint_model(folder).eval() if folder is not None else None
    scores = []
    for it in items:
        signal = np.asarray(it.degraded, np.float32)
        if model is not None:
            _, signal, _ = shipped(model, signal, sample_rate)
        scores.append(visqol_or_nan(it.clean, signal, sample_rate))
    return scores


def add_visqol(points: Sequence[Point], items: Mapping[str, Sequence[ValItem]],
               sample_rate: int, budget_minutes: float, jobs: int = 1) -> None:
    """Add ViSQOL to each run's point at ``budget_minutes`` (:func:`at_budget`), in place:
    ``{group}_merged_visqol`` (what ``upband enhance`` ships) and ``{group}_input_visqol``,
    the mean over the group's excerpts that ViSQOL scores for the input (ViSQOL is too slow to
    score every checkpoint); ``jobs`` worker processes as in :func:`compare_runs`."""
    chosen = list(at_budget(points, budget_minutes).values())
    work = [(None, group) for group in items] + \
        [(p.folder, group) for p in chosen for group in items]
    if jobs <= 1:
        scores = [_item_visqols(folder, items[group], sample_rate) for folder, group in work]
    else:
        ctx = multiprocessing.get_context("spawn")
        with cf.ProcessPoolExecutor(max_workers=min(jobs, len(work)), mp_context=ctx,
                                    initializer=_init_worker) as pool:
            scores = list(pool.map(_item_visqols, [f for f, _ in work],
                                   [items[g] for _, g in work], [sample_rate] * len(work)))
    inputs = {group: np.asarray(scores[i]) for i, (_, group) in enumerate(work[:len(items)])}
    for (folder, group), values in zip(work[len(items):], scores[len(items):], strict=True):
        point = next(p for p in chosen if p.folder == folder)
        base, out = inputs[group], np.asarray(values)
        kept = np.isfinite(base) & np.isfinite(out)
        point.values[f"{group}_merged_visqol"] = float(out[kept].mean()) if kept.any() else \
            float("nan")
        point.values[f"{group}_input_visqol"] = float(base[kept].mean()) if kept.any() else \
            float("nan")


def _spaced(folders: Sequence[Path], spacing_minutes: float,
            budget_minutes: float | None) -> list[Path]:
    """The first checkpoint, then those at least ``spacing_minutes`` of compute after the last
    kept, then the last within ``budget_minutes`` (all of them when the spacing is 0)."""
    timed = [(f, _compute(read_state(f))[0]) for f in folders]
    if budget_minutes is not None:
        timed = [(f, m) for f, m in timed if m <= budget_minutes] or timed[:1]
    kept: list[tuple[Path, float]] = []
    for f, m in timed:
        if not kept or m - kept[-1][1] >= spacing_minutes:
            kept.append((f, m))
    if kept[-1][0] != timed[-1][0]:
        kept.append(timed[-1])
    return [f for f, _ in kept]


def _init_worker() -> None:
    torch.set_num_threads(1)


def compare_runs(runs: Mapping[str, PathLike], corpus: PathLike, *,
                 items: Mapping[str, Sequence[ValItem]] | None = None,
                 seen_preset: str = "versatile", unseen_preset: str = "sulun-unseen",
                 max_files: int = 16, seconds: float = 8.0, spacing_minutes: float = 0.0,
                 budget_minutes: float | None = None, jobs: int = 1) -> list[Point]:
    """Validate every checkpoint of every run on the same excerpts.

    Args:
        runs: label -> run folder.
        corpus: the corpus whose validation split gives the excerpts (44.1 kHz).
        items: the excerpts, if already built (else from ``corpus`` and the presets).
        seen_preset, unseen_preset, max_files, seconds: how the excerpts are built.
        spacing_minutes: validate only checkpoints at least this much compute apart (the
            first and the last are always kept).
        budget_minutes: leave out checkpoints past this much compute (but the first).
        jobs: checkpoints validated at once, in worker processes of one thread each (the
            values are the same as with one).

    Returns:
        One :class:`Point` per checkpoint, runs in the given order, oldest checkpoint first.
    """
    sample_rate = int(open_corpus(corpus).sample_rate)
    if items is None:
        items = validation_items(corpus, seen_preset=seen_preset, unseen_preset=unseen_preset,
                                 max_files=max_files, seconds=seconds)
    work: list[tuple[str, Path]] = []
    for label, run_dir in runs.items():
        folders = list_checkpoints(run_dir)
        if not folders:
            raise SpecError(f"{run_dir}: no checkpoint to compare")
        work += [(label, f) for f in _spaced(folders, spacing_minutes, budget_minutes)]
    if jobs <= 1 or len(work) <= 1:
        return [_checkpoint_point(label, f, items, sample_rate) for label, f in work]
    ctx = multiprocessing.get_context("spawn")  # torch's threads make fork unsafe
    with cf.ProcessPoolExecutor(max_workers=min(jobs, len(work)), mp_context=ctx,
                                initializer=_init_worker) as pool:
        futures = [pool.submit(_checkpoint_point, label, f, items, sample_rate)
                   for label, f in work]
        return [fut.result() for fut in futures]


def comparison_csv(points: Sequence[Point]) -> str:
    """``run, step, minutes, compute`` then every validation value, one row per point."""
    keys = sorted({k for p in points for k in p.values})
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["run", "step", "minutes", "compute", *keys])
    for p in points:
        writer.writerow([p.run, p.step, f"{p.minutes:.2f}", p.compute,
                         *(repr(p.values[k]) if k in p.values else "" for k in keys)])
    return buf.getvalue()


def at_budget(points: Sequence[Point], budget_minutes: float) -> dict[str, Point]:
    """Per run, the last checkpoint within ``budget_minutes`` of compute (the runs' points at
    equal compute); a run with none inside the budget is left out."""
    best: dict[str, Point] = {}
    for p in points:
        if p.minutes <= budget_minutes and (p.run not in best or p.minutes > best[p.run].minutes):
            best[p.run] = p
    return best


def _table(points: Sequence[Point], budget_minutes: float) -> str:
    chosen = at_budget(points, budget_minutes)
    extra = [k for k in VISQOL if any(k in p.values for p in chosen.values())]
    head = ["run", "step", "compute (min)", *HEADLINE, *extra]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for run, p in chosen.items():
        cells = [run, str(p.step), f"{p.minutes:.1f} {p.compute}"]
        cells += [f"{p.values[k]:.3f}" if k in p.values else "n/a" for k in [*HEADLINE, *extra]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _plot(points: Sequence[Point], path: Path, budget_minutes: float) -> None:
    plt = pyplot("plotting the comparison")
    metrics = [k for k in HEADLINE if any(k in p.values for p in points)]
    fig, axes = plt.subplots(len(metrics), 1, figsize=(8, 2.6 * len(metrics)), sharex=True,
                             squeeze=False)
    for ax, key in zip(axes[:, 0], metrics, strict=True):
        for run in dict.fromkeys(p.run for p in points):
            xy = [(p.minutes, p.values[key]) for p in points if p.run == run and key in p.values]
            ax.plot([x for x, _ in xy], [y for _, y in xy], marker="o", ms=3, label=run)
        base = key.replace("merged", "input")
        inputs = [p.values[base] for p in points if base in p.values]
        if inputs:
            ax.axhline(inputs[0], color="#999999", ls="--", lw=1, label="input")
        ax.axvline(budget_minutes, color="#cccccc", lw=1)
        ax.set_ylabel(key.replace("_", " ") + (" ↑" if HEADLINE[key] == "max" else " ↓"))
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8)
    axes[-1, 0].set_xlabel("compute (CPU minutes)")
    fig.tight_layout()
    save_png(fig, path, dpi=120)


def write_comparison(points: Sequence[Point], out_dir: PathLike, *, budget_minutes: float,
                     note: str = "") -> list[Path]:
    """``comparison.csv``, ``curves.png`` and ``README.md`` (the table at ``budget_minutes``
    and ``note``) in ``out_dir``; returns the paths written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "comparison.csv", out / "curves.png", out / "README.md"]
    atomic_write_text(written[0], comparison_csv(points))
    _plot(points, written[1], budget_minutes)
    text = (f"# Designs at equal compute ({budget_minutes:g} CPU minutes)\n\n"
            f"{_table(points, budget_minutes)}\n\n![curves](curves.png)\n\n{note}\n")
    atomic_write_text(written[2], text)
    return written
