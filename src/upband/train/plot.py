"""Training curves of a run folder as a PNG, after Sulun & Davies Fig. 3.

Top panel: output SNR against iterations for the seen filter(s) and the unseen filter (solid
lines), with the input SNR of each as a dashed horizontal baseline -- the input does not change
during training, so a line above its baseline means the model improves on its input. Middle
panel: the same for the log-spectral distance (``lsd_ssr``, lower is better). Bottom panel:
the training loss (log scale) with the learning rate on a second axis.

matplotlib is optional (``pip install 'upband[plot]'``) and imported only here, with the Agg
backend, so plotting works without a display.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from upband.plotting import pyplot, save_png
from upband.train.checkpoint import CheckpointError

__all__ = ["plot_run", "read_metrics"]

PathLike = str | os.PathLike[str]

#: Colours of the filter groups (colour-blind safe) and of the loss and rate curves.
COLORS = {"seen": "#0072B2", "unseen": "#D55E00", "loss": "#333333", "lr": "#999999"}
LABELS = {"seen": "seen filter", "unseen": "unseen filter"}


def read_metrics(run_dir: PathLike) -> dict[str, list[tuple[int, float]]]:
    """``metrics.csv`` of a run as ``{column: [(step, value), ...]}`` (empty cells skipped)."""
    path = Path(run_dir) / "metrics.csv"
    if not path.is_file():
        raise CheckpointError(f"{run_dir} holds no metrics.csv: not a training run folder")
    series: dict[str, list[tuple[int, float]]] = {}
    with path.open(newline="") as fh:
        for row in csv.DictReader(fh):
            try:
                step = int(float(row["step"]))
            except (KeyError, TypeError, ValueError):
                continue
            for key, text in row.items():
                if key in ("step", None) or not text:
                    continue
                try:
                    value = float(text)
                except ValueError:
                    continue
                if math.isfinite(value):
                    series.setdefault(key, []).append((step, value))
    return series


def _matplotlib() -> Any:
    return pyplot("plotting training curves")


def _title(run_dir: Path) -> str:
    try:
        config = json.loads((run_dir / "config.json").read_text())
        model = config["model"]["name"]
        preset = config["data"]["preset"]
        rate = config["data"]["sample_rate"]
        return f"{run_dir.name}: {model}, trained on {preset} at {rate / 1000:g} kHz"
    except (OSError, KeyError, TypeError, ValueError):
        return run_dir.name


def _xy(points: Sequence[tuple[int, float]]) -> tuple[list[int], list[float]]:
    return [p[0] for p in points], [p[1] for p in points]


def _metric_panel(ax: Any, series: dict[str, list[tuple[int, float]]], metric: str,
                  unit: str, x_max: int) -> bool:
    drawn = False
    for group in ("seen", "unseen"):
        output = series.get(f"{group}_output_{metric}")
        inputs = series.get(f"{group}_input_{metric}")
        color = COLORS[group]
        if output:
            x, y = _xy(output)
            ax.plot(x, y, color=color, lw=1.8, marker="o", ms=3.5,
                    label=f"output, {LABELS[group]}")
            drawn = True
        if inputs:
            ax.axhline(inputs[-1][1], color=color, lw=1.3, ls="--", alpha=0.85,
                       label=f"input, {LABELS[group]}")
            drawn = True
    ax.set_ylabel(unit)
    ax.grid(True, color="#e5e5e5", lw=0.8)
    ax.set_xlim(0, max(x_max, 1))
    if drawn:
        ax.legend(loc="best", fontsize=8, frameon=False, ncol=2)
    else:
        ax.text(0.5, 0.5, "no validation yet", transform=ax.transAxes, ha="center",
                va="center", color="#777777")
    return drawn


def _step_formatter() -> Any:
    from matplotlib.ticker import FuncFormatter

    def fmt(x: float, _: object) -> str:
        return f"{x / 1000:g}k" if abs(x) >= 1000 else f"{x:g}"

    return FuncFormatter(fmt)


def plot_run(run_dir: PathLike, output: PathLike | None = None) -> Path:
    """Draw the curves of ``run_dir/metrics.csv`` into ``output`` (default
    ``run_dir/curves.png``, written atomically) and return its path."""
    run_dir = Path(run_dir)
    series = read_metrics(run_dir)
    out = Path(output) if output is not None else run_dir / "curves.png"
    plt = _matplotlib()
    steps = [s for values in series.values() for s, _ in values]
    x_max = max(steps, default=1)

    fig, axes = plt.subplots(3, 1, figsize=(8.0, 9.0), sharex=True,
                             gridspec_kw={"height_ratios": [1.25, 1.0, 1.0]})
    try:
        snr_ax, lsd_ax, loss_ax = axes
        _metric_panel(snr_ax, series, "snr", "SNR (dB)", x_max)
        snr_ax.set_title("Validation SNR (higher is better)", fontsize=10, loc="left")
        _metric_panel(lsd_ax, series, "lsd", "LSD", x_max)
        lsd_ax.set_title("Validation log-spectral distance (lower is better)", fontsize=10,
                         loc="left")

        loss = series.get("train_loss", [])
        if loss:
            x, y = _xy(loss)
            positive = all(v > 0 for v in y)
            loss_ax.plot(x, y, color=COLORS["loss"], lw=1.4, label="training loss")
            if positive:
                loss_ax.set_yscale("log")
        val_loss = series.get("seen_loss", [])
        if val_loss:
            x, y = _xy(val_loss)
            loss_ax.plot(x, y, color=COLORS["seen"], lw=1.4, marker="o", ms=3.5,
                         label="validation loss, seen filter")
        loss_ax.set_ylabel("loss")
        loss_ax.set_xlabel("iterations")
        loss_ax.grid(True, color="#e5e5e5", lw=0.8)
        loss_ax.set_title("Training loss", fontsize=10, loc="left")
        handles, labels = loss_ax.get_legend_handles_labels()
        lr = series.get("lr", [])
        if lr:
            rate_ax = loss_ax.twinx()
            x, y = _xy(lr)
            (line,) = rate_ax.plot(x, y, color=COLORS["lr"], lw=1.0, ls=":",
                                   label="learning rate")
            rate_ax.set_ylim(0, 1.1 * max(y))
            rate_ax.set_ylabel("learning rate", color=COLORS["lr"])
            rate_ax.tick_params(axis="y", colors=COLORS["lr"], labelsize=8)
            rate_ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
            handles.append(line)
            labels.append("learning rate")
        if handles:
            loss_ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.25),
                           ncol=len(handles), fontsize=8, frameon=False)
        else:
            loss_ax.text(0.5, 0.5, "no training loss logged yet", transform=loss_ax.transAxes,
                         ha="center", va="center", color="#777777")
        loss_ax.xaxis.set_major_formatter(_step_formatter())
        for ax in axes:
            ax.spines["top"].set_visible(False)
        fig.suptitle(_title(run_dir), fontsize=11)
        fig.tight_layout()
    except BaseException:
        plt.close(fig)
        raise
    save_png(fig, out, dpi=130, tight=True)
    return out
