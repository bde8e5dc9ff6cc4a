"""The figures of ``upband listen --analyse``: means with 95 % intervals and box plots.

MUSHRA and MOS get two figures per test: ``<test>_means.png``, the mean of each version with
its interval as an error bar (as BS.1534-3 presents results), and ``<test>_boxplot.png``, the
distribution of the ratings per version as box plots (median, quartiles, whiskers at 1.5 IQR,
outliers; the mean as a dot) in the manner of TD-PR's Fig. 3. AB and ABX get the share of
votes (correct answers) per pair with its Clopper-Pearson interval, ``<test>_means.png`` only
(a share has no spread to box).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from upband.plotting import pyplot, save_png

if TYPE_CHECKING:
    from upband.listen.analysis import TestResult

DPI = 110


def _means(result: TestResult, path: Path) -> None:
    plt = pyplot("listening-test figures")
    rows = [s for s in result.summary if s["condition"] == "all"]
    fig, ax = plt.subplots(figsize=(max(4.0, 0.9 * len(rows) + 1.5), 3.6))
    xs = range(len(rows))
    means = [s["mean"] for s in rows]
    err = [[s["mean"] - s["ci_low"] if s["n"] > 1 else 0 for s in rows],
           [s["ci_high"] - s["mean"] if s["n"] > 1 else 0 for s in rows]]
    ax.errorbar(xs, means, yerr=err, fmt="o", capsize=5, color="#2f6fde")
    ax.set_xticks(list(xs), [s["version"] for s in rows], rotation=30, ha="right")
    if result.design == "mushra":
        ax.set_ylim(0, 100)
        ax.set_ylabel("MUSHRA score")
        for y in (20, 40, 60, 80):
            ax.axhline(y, color="#ccc", lw=0.6, zorder=0)
    else:
        ax.set_ylim(0.8, 5.2)
        ax.set_ylabel("MOS")
    ax.set_title(f"{result.name}: mean and 95 % confidence interval")
    fig.tight_layout()
    save_png(fig, path, dpi=DPI)


def _boxes(result: TestResult, path: Path) -> None:
    plt = pyplot("listening-test figures")
    names = list(result.values)
    fig, ax = plt.subplots(figsize=(max(4.0, 0.9 * len(names) + 1.5), 3.6))
    data = [result.values[n] for n in names]
    ax.boxplot(data, showmeans=True, meanprops={"marker": "o", "markerfacecolor": "white",
                                                 "markeredgecolor": "black"})
    ax.set_xticks(range(1, len(names) + 1), names, rotation=30, ha="right")
    ax.set_ylabel("MUSHRA score" if result.design == "mushra" else "MOS")
    ax.set_title(f"{result.name}: ratings per version")
    fig.tight_layout()
    save_png(fig, path, dpi=DPI)


def _shares(result: TestResult, path: Path) -> None:
    plt = pyplot("listening-test figures")
    names = list(result.values)
    fig, ax = plt.subplots(figsize=(max(4.0, 1.3 * len(names) + 1.5), 3.6))
    share = [100 * result.values[n][0] for n in names]
    err = [[100 * (v[0] - v[1]) for v in result.values.values()],
           [100 * (v[2] - v[0]) for v in result.values.values()]]
    ax.bar(range(len(names)), share, yerr=err, capsize=5, color="#2f6fde")
    ax.axhline(50, color="black", lw=0.8, ls="--")
    ax.set_xticks(range(len(names)), names, rotation=20, ha="right")
    ax.set_ylim(0, 100)
    ax.set_ylabel("% preferring the first" if result.design == "ab" else "% correct")
    ax.set_title(f"{result.name}: {result.design.upper()} with 95 % interval")
    fig.tight_layout()
    save_png(fig, path, dpi=DPI)


def figure_names(result: TestResult) -> list[str]:
    """The files :func:`plot_test` writes for ``result``."""
    if not result.values:
        return []
    kinds = ("means", "boxplot") if result.design in ("mushra", "mos") else ("means",)
    return [f"{result.name}_{kind}.png" for kind in kinds]


def plot_test(result: TestResult, folder: Path) -> list[Path]:
    """Draw the test's figures into ``folder``; returns the paths written."""
    if not result.values:
        return []
    means, boxes = folder / f"{result.name}_means.png", folder / f"{result.name}_boxplot.png"
    if result.design in ("mushra", "mos"):
        _means(result, means)
        _boxes(result, boxes)
        return [means, boxes]
    _shares(result, means)
    return [means]
