#!/usr/bin/env python3
"""Validation curves of several training runs side by side, against their training time.

    python scripts/plot_validation.py runs/a:MSE runs/b:"logMSE + envelope" \\
        --metrics unseen_merged_visqol,seen_merged_lsd_high -o curves.png [--x step] \
        [--csv curves.csv]

Reads each run's ``metrics.csv`` (the rows with validation values) and draws one panel per
metric, against the run's ``time_s`` (wall-clock seconds of training, resumes included: equal
compute only for runs with the same threads on the same quiet machine) or, with ``--x step``,
its iterations (equal compute for runs of one network and batch whose losses cost alike).
``--csv`` also writes the plotted points (run, step, time_s, metrics).
"""

from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def read(run: Path, metrics: list[str]) -> list[dict[str, float]]:
    """The validation rows of ``run``'s metrics.csv: step, time_s and ``metrics``."""
    rows = []
    with open(run / "metrics.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            if all(row.get(m) for m in metrics):
                rows.append({k: float(row[k]) for k in ("step", "time_s", *metrics)})
    return rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", help="RUN_DIR:LABEL")
    p.add_argument("--metrics", required=True, help="metrics.csv columns, comma-separated")
    p.add_argument("-o", "--output", type=Path, required=True)
    p.add_argument("--x", choices=("time_s", "step"), default="time_s")
    p.add_argument("--csv", type=Path)
    args = p.parse_args()
    metrics = args.metrics.split(",")
    runs = [(label, read(Path(path), metrics))
            for path, _, label in (r.partition(":") for r in args.runs)]
    cols = min(len(metrics), 2)
    fig, axes = plt.subplots(math.ceil(len(metrics) / cols), cols, squeeze=False,
                             figsize=(6 * cols, 3.6 * math.ceil(len(metrics) / cols)))
    for ax, metric in zip(axes.flat, metrics, strict=False):
        for label, rows in runs:
            x = [r["time_s"] / 60 if args.x == "time_s" else r["step"] for r in rows]
            ax.plot(x, [r[metric] for r in rows], "o-", label=label, markersize=3)
        ax.set_title(metric)
        ax.set_xlabel("training time (min)" if args.x == "time_s" else "iterations")
        ax.grid(alpha=0.3)
    axes.flat[0].legend()
    fig.tight_layout()
    fig.savefig(args.output, dpi=110)
    if args.csv:
        with open(args.csv, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["run", "step", "time_s", *metrics])
            for label, rows in runs:
                w.writerows([label, int(r["step"]), r["time_s"], *(r[m] for m in metrics)]
                            for r in rows)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
