"""Figures of an evaluation: spectrograms of one example clip (after Sulun & Davies Fig. 4) and
per-clip input SNR against output SNR.

matplotlib is optional (``pip install 'upband[plot]'``); imported here only, with the Agg
backend. Figures are written atomically and kept small (a few seconds, 64 dpi).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import signal

from upband.plotting import pyplot, save_png

PathLike = str | os.PathLike[str]
#: Spectrogram floor and the range of the difference panels, in dB.
FLOOR_DB = -100.0
DIFF_MAX_DB = 40.0
DPI = 64


def _pyplot() -> Any:
    return pyplot("evaluation figures")


def _save(fig: Any, path: PathLike) -> Path:
    save_png(fig, path, dpi=DPI)
    return Path(path)


def spectrogram_db(x: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(times s, freqs Hz, power dB ``[F, L]``) of mono ``x``: Hann 1024 at 44.1 kHz (scaled
    with the rate), hop 1/4, floored at ``FLOOR_DB``."""
    n = int(2 ** round(math.log2(sr / 44100 * 1024)))
    f, t, z = signal.stft(np.asarray(x, np.float64), fs=sr, nperseg=n, noverlap=3 * n // 4)
    power = np.abs(z) ** 2
    return t, f, np.maximum(10 * np.log10(power + 1e-20), FLOOR_DB)


def plot_spectrograms(clips: dict[str, np.ndarray], sr: int, path: PathLike, title: str,
                      start_s: float = 0.0) -> Path:
    """One row per clip (``target`` first): its spectrogram and |dB difference| to the
    target's (Sulun & Davies Fig. 4a and 4b)."""
    plt = _pyplot()
    names = ["target", *(k for k in clips if k != "target")]
    _, f, ref = spectrogram_db(clips["target"], sr)
    top = float(ref.max())
    fig, axes = plt.subplots(len(names), 2, figsize=(9.0, 1.3 * len(names) + 0.6),
                             sharex=True, sharey=True, squeeze=False, layout="constrained")
    try:
        duration = len(clips["target"]) / sr
        extent = (start_s, start_s + duration, 0.0, f[-1] / 1000)
        for row, name in enumerate(names):
            _, _, s = spectrogram_db(clips[name], sr)
            a, b = axes[row]
            im = a.imshow(s, origin="lower", aspect="auto", extent=extent, cmap="magma",
                          vmin=top + FLOOR_DB / 1.25, vmax=top)
            a.set_ylabel(f"{name}\nkHz", fontsize=8)
            if name == "target":
                b.axis("off")
                b.text(0.5, 0.5, "(reference)", ha="center", va="center",
                       transform=b.transAxes, color="#777777", fontsize=8)
            else:
                d = b.imshow(np.abs(s - ref), origin="lower", aspect="auto", extent=extent,
                             cmap="viridis", vmin=0, vmax=DIFF_MAX_DB)
        axes[0, 0].set_title("spectrogram (dB)", fontsize=9)
        axes[min(1, len(names) - 1), 1].set_title("|difference to target| (dB)", fontsize=9)
        for ax in axes[-1]:
            ax.set_xlabel("time (s)", fontsize=8)
        fig.suptitle(title, fontsize=10)
        fig.colorbar(im, ax=axes[:, 0].tolist(), fraction=0.04, pad=0.01)
        if len(names) > 1:
            fig.colorbar(d, ax=axes[:, 1].tolist(), fraction=0.04, pad=0.01)
    except BaseException:
        plt.close(fig)
        raise
    return _save(fig, path)


def plot_snr_scatter(points: dict[str, dict[str, list[tuple[float, float]]]],
                     labels: dict[str, str], systems: Sequence[str], path: PathLike,
                     title: str) -> Path:
    """Per clip: input SNR (x) against each system's SNR (y), one panel per condition.
    ``points[condition][system]`` holds ``(input_snr, output_snr)`` pairs; pairs with an
    infinite value (a perfect output) are left out and counted in the legend."""
    plt = _pyplot()
    conds = list(points)
    cols = min(3, max(1, len(conds)))
    rows = math.ceil(len(conds) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.8 * rows), squeeze=False)
    try:
        markers = "os^vD<>phX*"
        for ax, cond in zip(axes.flat, conds, strict=False):
            lo, hi = math.inf, -math.inf
            for k, system in enumerate(s for s in systems if s != "input"):
                pairs = points[cond].get(system, [])
                ok = [(x, y) for x, y in pairs if math.isfinite(x) and math.isfinite(y)]
                off = len(pairs) - len(ok)
                if ok:
                    xs, ys = zip(*ok, strict=True)
                    lo, hi = min(lo, *xs, *ys), max(hi, *xs, *ys)
                    ax.scatter(xs, ys, s=18, marker=markers[k % len(markers)],
                               label=system + (f" ({off} inf)" if off else ""))
            if math.isfinite(lo):
                pad = max(1.0, 0.05 * (hi - lo))
                ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="#999999", lw=1,
                        ls="--", label="output = input")
            ax.set_title(labels.get(cond, cond), fontsize=9)
            ax.set_xlabel("input SNR (dB)", fontsize=8)
            ax.set_ylabel("output SNR (dB)", fontsize=8)
            ax.grid(True, color="#e5e5e5", lw=0.8)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=7, frameon=False)
            else:
                ax.text(0.5, 0.5, "no finite SNR to show", transform=ax.transAxes,
                        ha="center", va="center", color="#777777")
        for ax in list(axes.flat)[len(conds):]:
            ax.axis("off")
        fig.suptitle(title, fontsize=10)
        fig.tight_layout()
    except BaseException:
        plt.close(fig)
        raise
    return _save(fig, path)
