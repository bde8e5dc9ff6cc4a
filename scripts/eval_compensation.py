#!/usr/bin/env python3
"""Roll-off compensation alone: its SNR gain over the input for a grid of its two limits.

For every file of a corpus split (the first ``--seconds``), each Sulun & Davies filter (the
seen Chebyshev-I 6 and the unseen Butterworth 6 at 11 025 Hz, zero-phase, then 16-bit) is
applied, the bandwidth detected as ``upband enhance`` does, and the input compensated
(:func:`upband.enhancement.compensation.compensate` with the input as the "model") for every
``--headroom`` x ``--max-gain`` pair. A roll-off the pipeline passes through as the music's own
(``Bandwidth.gentle``) counts as 0. Writes ``per_file.csv`` and ``README.md`` (mean and worst
ΔSNR per pair and filter) to ``-o``; the limits were chosen on the validation split:

    python scripts/eval_compensation.py --corpus /work/corpus2 --split validation \\
        -o docs/results/compensation/validation
"""

from __future__ import annotations

import argparse
import csv
import itertools
import statistics
from pathlib import Path

import numpy as np

from upband.analysis import detect_bandwidth
from upband.data.corpus import open_corpus
from upband.degrade.presets import apply, sample
from upband.enhancement.compensation import Compensation, curves

PRESETS = {"seen": "sulun-single", "unseen": "sulun-unseen"}


def snr(ref: np.ndarray, est: np.ndarray) -> float:
    err = float(np.sum((ref.astype(np.float64) - est) ** 2))
    return 10 * np.log10(float(np.sum(ref.astype(np.float64) ** 2)) / max(err, 1e-20))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--corpus", required=True)
    p.add_argument("--split", default="validation")
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--headroom", default="3,6,10", help="dB, comma-separated")
    p.add_argument("--max-gain", default="8,10,12,20", help="dB, comma-separated")
    p.add_argument("-o", "--output", type=Path, required=True)
    args = p.parse_args()
    grid = list(itertools.product([float(v) for v in args.headroom.split(",")],
                                  [float(v) for v in args.max_gain.split(",")]))
    corpus = open_corpus(args.corpus)
    sr = int(corpus.sample_rate)
    rows = []
    for i, record in enumerate(corpus.files(args.split)):
        clean = corpus.read(record, 0, min(record.frames, int(args.seconds * sr)))
        for condition, preset in PRESETS.items():
            params = sample(preset, np.random.default_rng(i), sr=sr)
            low = np.round(apply(clean, sr, params) * 32768) / 32768
            low = low.astype(np.float32)
            found = detect_bandwidth(low, sr)
            base = snr(clean, low)
            row = {"file": record.relpath, "condition": condition,
                   "template": found.template, "cutoff_hz": round(found.cutoff_hz, 1),
                   "input_snr": round(base, 3)}
            for headroom, cap in grid:
                c = None if found.gentle else curves(found, sr, headroom_db=headroom,
                                                     max_gain_db=cap)
                gain = 0.0
                if c is not None:
                    out = Compensation(c, sr, low.shape[0]).push(low, low, last=True)[0]
                    gain = snr(clean, out) - base
                row[f"h{headroom:g}_g{cap:g}"] = round(gain, 3)
            rows.append(row)
            print(f"{record.relpath} {condition}: " + " ".join(
                f"{k}={v}" for k, v in row.items() if k.startswith("h")), flush=True)
    args.output.mkdir(parents=True, exist_ok=True)
    with open(args.output / "per_file.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    lines = [f"# Roll-off compensation alone, {args.split} split of {Path(args.corpus).name} "
             f"({len(rows) // len(PRESETS)} files, first {args.seconds:g} s)", "",
             "ΔSNR of the compensated input over the input (dB): mean / worst file. "
             "`scripts/eval_compensation.py`.", "",
             "| headroom dB | max gain dB | seen mean | seen worst | unseen mean | unseen worst |",
             "|---:|---:|---:|---:|---:|---:|"]
    for headroom, cap in grid:
        key = f"h{headroom:g}_g{cap:g}"
        cells = []
        for condition in PRESETS:
            values = [r[key] for r in rows if r["condition"] == condition]
            cells += [f"{statistics.fmean(values):+.3f}", f"{min(values):+.2f}"]
        lines.append(f"| {headroom:g} | {cap:g} | " + " | ".join(cells) + " |")
    (args.output / "README.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
