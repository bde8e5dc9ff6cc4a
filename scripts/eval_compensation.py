#!/usr/bin/env python3
"""Roll-off compensation alone: its SNR gain over the input for a grid of its two limits.

For every file of a corpus split (the first ``--seconds``), each Sulun & Davies filter (the
seen Chebyshev-I 6 and the unseen Butterworth 6 at 11 025 Hz, zero-phase, then 16-bit) is
applied, the bandwidth detected as ``upband enhance`` does, and the input compensated
(:func:`upband.enhancement.compensation.compensate` with the input as the "model") for every
``--headroom`` x ``--max-gain`` pair. A roll-off the pipeline passes through as the music's own
(``Bandwidth.own_rolloff``) counts as 0. Writes ``per_file.csv`` and ``README.md`` (mean and worst
ΔSNR per pair and filter) to ``-o``; the limits were chosen on the validation split:

    python scripts/eval_compensation.py --corpus /work/corpus2 --split validation \\
        -o docs/results/compensation/validation

``--oracle 10,20`` adds, for each of those largest gains (dB), what no blind method can beat
within the product's merge: the *known* filter's exact zero-phase inverse, capped there, from
the detected cutoff up (the same raised-cosine ramp over the merge's transition band) -- the
ceiling of what inverting the roll-off can give on these files.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import statistics
from pathlib import Path

import numpy as np

from upband.analysis import Bandwidth, detect_bandwidth
from upband.data.corpus import open_corpus
from upband.degrade.presets import Params, apply, sample
from upband.enhancement.compensation import Compensation, Curves, curves, ramp_in

PRESETS = {"seen": "sulun-single", "unseen": "sulun-unseen"}


def snr(ref: np.ndarray, est: np.ndarray) -> float:
    err = float(np.sum((ref.astype(np.float64) - est) ** 2))
    return 10 * np.log10(float(np.sum(ref.astype(np.float64) ** 2)) / max(err, 1e-20))


def key(headroom: float, cap: float, sure_cap: float | None) -> str:
    """The column of one pair of limits (and a sure fit's largest gain, if any)."""
    return f"h{headroom:g}_g{cap:g}" + ("" if sure_cap is None else f"_s{sure_cap:g}")


def oracle(params: Params, found: Bandwidth, sr: int, cap_db: float,
           points: int = 4097) -> Curves:
    """The known filter's inverse, at most ``cap_db``, ramped in from the detected cutoff."""
    impulse = np.zeros((1, 2 * (points - 1)), np.float32)
    impulse[0, points - 1] = 1.0
    response = np.abs(np.fft.rfft(apply(impulse, sr, params)[0].astype(np.float64)))
    freqs = np.linspace(0.0, sr / 2, points)
    gain = np.clip(1 / np.maximum(response, 1e-12), 1.0, 10 ** (cap_db / 20))
    return Curves(freqs, ramp_in(freqs, gain, found.cutoff_hz), np.ones_like(gain))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--corpus", required=True)
    p.add_argument("--split", default="validation")
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--headroom", default="3,6,10", help="dB, comma-separated")
    p.add_argument("--max-gain", default="8,10,12,20", help="dB, comma-separated")
    p.add_argument("--sure-gain", default="none,20", help="largest gain of a sure fit (dB, "
                   "comma-separated; none: the max gain for every fit)")
    p.add_argument("--oracle", default="", help="largest gains (dB) of the known filter's "
                   "inverse, comma-separated (none by default)")
    p.add_argument("-o", "--output", type=Path, required=True)
    args = p.parse_args()
    caps = [float(v) for v in args.oracle.split(",") if v]
    sure_gains = [None if v == "none" else float(v) for v in args.sure_gain.split(",")]
    grid = list(itertools.product([float(v) for v in args.headroom.split(",")],
                                  [float(v) for v in args.max_gain.split(",")], sure_gains))
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
            for headroom, cap, sure_cap in grid:
                c = None if found.own_rolloff else curves(found, sr, headroom_db=headroom,
                                                          max_gain_db=cap, sure_gain_db=sure_cap)
                gain = 0.0
                if c is not None:
                    out = Compensation(c, sr, low.shape[0]).push(low, low, last=True)[0]
                    gain = snr(clean, out) - base
                row[key(headroom, cap, sure_cap)] = round(gain, 3)
            for cap in caps:
                stage = Compensation(oracle(params, found, sr, cap), sr, low.shape[0])
                row[f"oracle_g{cap:g}"] = round(snr(clean, stage.push(low, low, last=True)[0])
                                                - base, 3)
            rows.append(row)
            print(f"{record.relpath} {condition}: " + " ".join(
                f"{k}={v}" for k, v in row.items() if k.startswith(("h", "o"))), flush=True)
    args.output.mkdir(parents=True, exist_ok=True)
    with open(args.output / "per_file.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    lines = [f"# Roll-off compensation alone, {args.split} split of {Path(args.corpus).name} "
             f"({len(rows) // len(PRESETS)} files, first {args.seconds:g} s)", "",
             "ΔSNR of the compensated input over the input (dB): mean / worst file. "
             "`scripts/eval_compensation.py`.", "",
             "| headroom dB | max gain dB | sure fit's dB | seen mean | seen worst | unseen mean "
             "| unseen worst |", "|---:|---:|---:|---:|---:|---:|---:|"]
    table = [(f"{h:g}", f"{g:g}", "-" if s is None else f"{s:g}", key(h, g, s))
             for h, g, s in grid]
    table += [("known filter", f"{g:g}", "", f"oracle_g{g:g}") for g in caps]
    for headroom_label, cap_label, sure_label, column in table:
        cells = []
        for condition in PRESETS:
            values = [r[column] for r in rows if r["condition"] == condition]
            cells += [f"{statistics.fmean(values):+.3f}", f"{min(values):+.2f}"]
        lines.append(f"| {headroom_label} | {cap_label} | {sure_label} | " + " | ".join(cells)
                     + " |")
    (args.output / "README.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
