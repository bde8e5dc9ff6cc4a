"""Tables in the papers' layouts, ``results.csv``, ``summary.json`` and ``report.md``.

Aggregation: every metric is computed per file (a whole song, or its first ``--limit-seconds``)
and averaged over files -- "SNR per song, then the mean over songs" as Sulun & Davies do.
Δ is the system's mean minus the input row's mean for the same condition and metric, so the
input row's Δ is exactly 0; the arrows say which direction is better. Limits (``inf``) and
undefined values follow :mod:`upband.evaluate.scoring`.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from upband.common.clock import format_clock
from upband.common.jsonnum import dumps_strict, json_number
from upband.evaluate.protocols import Protocol
from upband.evaluate.runner import FileResult
from upband.evaluate.scoring import METRICS, delta, format_value, mean

CSV_COLUMNS = ("file", "duration_s", "condition", "degradation", "cutoff_hz", "system",
               "metric", "value")
INPUT = "input"


@dataclass
class Summary:
    """Means over files per (condition, system, metric), with Δ against the input."""

    protocol: Protocol
    systems: list[str]
    metrics: list[str]
    means: dict[tuple[str, str, str], tuple[float, int]] = field(default_factory=dict)

    @classmethod
    def from_results(cls, protocol: Protocol, systems: Sequence[str],
                     results: Sequence[FileResult]) -> Summary:
        values: dict[tuple[str, str, str], list[float]] = {}
        order: list[str] = []
        for res in results:
            for cond, system, metric, value in res.rows:
                values.setdefault((cond, system, metric), []).append(value)
                if metric not in order:
                    order.append(metric)
        out = cls(protocol, list(systems), order)
        out.means = {key: mean(v) for key, v in values.items()}
        return out

    @property
    def conditions(self) -> list[str]:
        return [c.name for c in self.protocol.conditions]

    def value(self, cond: str, system: str, metric: str) -> float:
        return self.means.get((cond, system, metric), (math.nan, 0))[0]

    def delta(self, cond: str, system: str, metric: str) -> float:
        return delta(self.value(cond, system, metric), self.value(cond, INPUT, metric))

    def average(self, system: str, metric: str) -> float:
        """Mean over the conditions (TD-PR's AVG column)."""
        return mean([self.value(c, system, metric) for c in self.conditions])[0]

    def table_metrics(self) -> list[str]:
        return [m for m in self.protocol.table_metrics if m in self.metrics]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for cond in self.conditions:
            out[cond] = {}
            for system in self.systems:
                out[cond][system] = {
                    metric: {"mean": json_number(self.value(cond, system, metric)),
                             "delta": json_number(self.delta(cond, system, metric)),
                             "files": self.means.get((cond, system, metric), (0.0, 0))[1]}
                    for metric in self.metrics}
        return out


# --------------------------------------------------------------------------------------------
# Markdown tables
# --------------------------------------------------------------------------------------------


def _head(metric: str) -> str:
    spec = METRICS[metric]
    unit = f" ({spec.unit})" if spec.unit else ""
    return f"{spec.label}{unit} {spec.arrow}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], text_columns: int = 1) -> str:
    """A Markdown table: the first ``text_columns`` left-aligned, numbers right-aligned."""
    align = ["---"] * text_columns + ["---:"] * (len(header) - text_columns)
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _labels(s: Summary) -> dict[str, str]:
    return {c.name: c.label or c.name for c in s.protocol.conditions}


def table_systems_by_condition(s: Summary) -> str:
    """Sulun & Davies Table II: one row per system, (condition x metric, Δ) columns."""
    labels = _labels(s)
    header = ["System"]
    for cond in s.conditions:
        for m in s.table_metrics():
            header += [f"{labels[cond]}: {_head(m)}", "Δ"]
    rows = []
    for system in s.systems:
        row = [system]
        for cond in s.conditions:
            for m in s.table_metrics():
                row += [format_value(m, s.value(cond, system, m)),
                        format_value(m, s.delta(cond, system, m), signed=True)]
        rows.append(row)
    return _table(header, rows)


def table_condition_rows(s: Summary) -> str:
    """Kuleshov Table 2: rows (condition, metric), one value and one Δ column per system."""
    labels = _labels(s)
    header = ["Condition", "Metric"]
    for system in s.systems:
        header += [system, "Δ"]
    rows = []
    for cond in s.conditions:
        for m in s.table_metrics():
            row = [labels[cond], _head(m)]
            for system in s.systems:
                row += [format_value(m, s.value(cond, system, m)),
                        format_value(m, s.delta(cond, system, m), signed=True)]
            rows.append(row)
    return _table(header, rows, text_columns=2)


def table_systems_by_bandwidth(s: Summary) -> str:
    """TD-PR Table 1: one table per metric, rows systems, columns bandwidths, AVG and Δ AVG."""
    labels = _labels(s)
    parts = []
    for m in s.table_metrics():
        header = ["System", *(labels[c] for c in s.conditions), "AVG", "Δ AVG"]
        rows = []
        base = s.average(INPUT, m)
        for system in s.systems:
            avg = s.average(system, m)
            rows.append([system, *(format_value(m, s.value(c, system, m))
                                   for c in s.conditions),
                         format_value(m, avg), format_value(m, delta(avg, base), signed=True)])
        parts.append(f"{_head(m)}\n\n{_table(header, rows)}")
    return "\n\n".join(parts)


def table_condition_systems(s: Summary) -> str:
    """Lattner Table 2: rows (condition, system), (metric, Δ) columns."""
    labels = _labels(s)
    header = ["Condition", "System"]
    for m in s.table_metrics():
        header += [_head(m), "Δ"]
    rows = []
    for cond in s.conditions:
        for system in s.systems:
            row = [labels[cond], system]
            for m in s.table_metrics():
                row += [format_value(m, s.value(cond, system, m)),
                        format_value(m, s.delta(cond, system, m), signed=True)]
            rows.append(row)
    return _table(header, rows, text_columns=2)


TABLES = {
    "systems-by-condition": table_systems_by_condition,
    "condition-rows": table_condition_rows,
    "systems-by-bandwidth": table_systems_by_bandwidth,
    "condition-systems": table_condition_systems,
}


def table(s: Summary) -> str:
    """The protocol's table in its paper's layout."""
    return TABLES[s.protocol.layout](s)


# --------------------------------------------------------------------------------------------
# results.csv
# --------------------------------------------------------------------------------------------


def results_csv(results: Sequence[FileResult]) -> str:
    """One row per file x condition x system x metric; values as Python writes floats
    (``repr``: exact, ``inf`` for the SNR limit, ``nan`` when undefined)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for res in results:
        for cond, system, metric, value in res.rows:
            info = res.conditions.get(cond, {})
            cutoff = info.get("cutoff_hz")
            w.writerow([res.item.id, f"{res.duration_s:.6f}", cond, info.get("text", ""),
                        "" if cutoff is None else repr(float(cutoff)), system, metric,
                        repr(float(value))])
    return buf.getvalue()


def summary_json(summary: Summary, meta: dict[str, Any]) -> str:
    """``summary.json``: the run's facts (``meta``) and the means / Δ per cell."""
    return dumps_strict({**meta, "results": summary.to_dict()}) + "\n"


# --------------------------------------------------------------------------------------------
# report.md
# --------------------------------------------------------------------------------------------


def render_markdown(summary: Summary, meta: dict[str, Any], figures: Sequence[str]) -> str:
    """The human report: what was run on what, the table, notes, figures and the file list."""
    p = summary.protocol
    files = meta["files"]
    total = sum(f["duration_s"] for f in files)
    lines = [
        f"# upband evaluation: {p.name}",
        "",
        f"- date: {meta['date']}",
        f"- upband {meta['upband_version']}",
        f"- command: `{meta['command']}`",
        f"- protocol: {p.description} ({p.source})",
        f"- reference: {p.sample_rate} Hz, {p.channels} channel{'s' if p.channels > 1 else ''}"
        " (inputs at other rates or channel counts are resampled / converted first)",
        f"- data: {meta['data']}" + (f", split `{meta['split']}`" if meta.get("split") else ""),
        f"- files: {len(files)} evaluated ({format_clock(total, decimals=1)} of audio), "
        f"{len(meta['failed'])} failed" + (f", {len(meta['skipped'])} skipped by the corpus"
                                           if meta.get("skipped") else ""),
        f"- seed: {meta['seed']}" + (f"; first {meta['limit_seconds']:g} s of each file"
                                     if meta.get("limit_seconds") else "; whole files"),
        "",
        "## Conditions",
        "",
        _table(["Condition", "Degradation", "Cutoff for sbr / high band"],
               [[c["label"], c["degradation"], c["cutoff"]] for c in meta["conditions"]],
               text_columns=3),
        "",
        "## Systems",
        "",
    ]
    lines += [f"- `{s['name']}`: {s['description']}" for s in meta["systems"]]
    lines += ["", "## Results", "", table(summary), ""]
    if p.paper_table:
        lines += [f"The paper's own numbers ({p.source}), beside ours:", "", p.paper_table, ""]
    lines += ["Notes:", ""]
    notes = [
        "Every metric is computed per file, then averaged over files; Δ = system − input "
        "(same condition and metric), so the input row's Δ is 0. ↑: higher is better, "
        "↓: lower is better.",
        "A perfect output has SNR `inf` (shown as such, never capped) and LSD 0; `n/a` marks "
        "an undefined value, left out of the mean.",
        *p.notes,
        *meta.get("notes", []),
    ]
    lines += [f"- {n}" for n in notes]
    metric_list = ", ".join(f"`{m}`" for m in summary.metrics)
    lines += ["", f"All metrics ({metric_list}) per file, condition and system are in "
              "`results.csv`; means and Δ in `summary.json`.", ""]
    if figures:
        lines += ["## Figures", ""]
        lines += [f"![{name}]({name})" for name in figures]
        lines += [""]
    lines += ["## Files", "", _table(
        ["#", "File", "Evaluated (s)", "Source (s)"],
        [[str(i + 1), f["file"], f"{f['duration_s']:.2f}", f"{f['source_duration_s']:.2f}"]
         for i, f in enumerate(files)], text_columns=2)]
    if meta["failed"]:
        lines += ["", "## Failed files (skipped)", ""]
        lines += [f"- {f['file']}: {f['error']}" for f in meta["failed"]]
    if meta.get("skipped"):
        lines += ["", "## Files the corpus left out of this split", ""]
        lines += [f"- {f['path']}: {f['reason']}" for f in meta["skipped"]]
    return "\n".join(lines) + "\n"
