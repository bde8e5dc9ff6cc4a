#!/usr/bin/env python3
"""Roll-offs taken for the music's own: which inputs, why, and what restoring them would do.

``upband enhance`` passes through an input whose roll-off may be the music's own
(:attr:`upband.analysis.Bandwidth.own_rolloff`): a gentle one, one after a trend rising
steeply into it (a resonance), one under 2 kHz. For every file of a corpus split (the first
``--seconds``) and every low-pass condition of the ``sulun`` and ``versatile`` protocols (the
same draws as ``upband evaluate``), this detects the degraded input as the pipeline does and,
where the roll-off is taken for the music's own, scores what the default pipeline would have
made of it had it restored it anyway (``pass_gentle=False``, as ``--enhance-gentle`` does):
ΔSNR over the input. Writes ``per_file.csv`` and ``README.md`` (per reason: inputs, mean and
worst ΔSNR, how many lose more than 0.3 dB) to ``-o``:

    python scripts/eval_own_rolloff.py --corpus CORPUS --split train --limit 200 \\
        -o docs/results/own-rolloff/train

``--codecs`` takes the MP3 conditions of ``versatile`` instead and scores the inputs whose
trend rises steeply into a codec's shelf (a resonance the shelf ends); ``--visqol`` adds
ΔViSQOL (``upband[visqol]``).
"""

from __future__ import annotations

import argparse
import csv
import statistics
from pathlib import Path
from typing import Any

import numpy as np

from upband.analysis import Bandwidth, detect_bandwidth
from upband.analysis.bandwidth import OWN_MIN_CUTOFF_HZ
from upband.degrade.presets import apply
from upband.enhancement import enhance, load_enhancer
from upband.errors import SpecError
from upband.evaluate.protocols import draw
from upband.evaluate.runner import State, find_items, load_reference, make_config
from upband.metrics.perceptual import visqol

CONDITIONS = (("sulun", "seen"), ("sulun", "unseen"), ("versatile", "lp4k"),
              ("versatile", "lp8k"), ("versatile", "lp11k"))
#: ``--codecs``: the codec conditions of ``versatile``
CODEC_CONDITIONS = (("versatile", "mp3-32k"), ("versatile", "mp3-64k"),
                    ("versatile", "mp3-128k"))


def reason(found: Bandwidth, codecs: bool = False) -> str:
    """Why the roll-off is taken for the music's own (module doc), or ``""`` if it is not;
    ``codecs``: only a roll-off behind a codec's shelf (where only a rising trend counts)."""
    if not found.own_rolloff or (codecs and found.codec == "none"):
        return ""
    if found.gentle:
        return "gentle"
    if found.codec != "none":  # behind a codec's shelf: only the rising trend
        return "rising"
    return "low" if found.cutoff_hz < OWN_MIN_CUTOFF_HZ else "rising"


def delta_visqol(ref: np.ndarray, est: np.ndarray, low: np.ndarray, sr: int) -> float | str:
    """ViSQOL of ``est`` less that of ``low`` (``""``: too short for ViSQOL)."""
    try:
        return round(float(visqol(ref, est, sr)) - float(visqol(ref, low, sr)), 3)
    except SpecError:
        return ""


def snr(ref: np.ndarray, est: np.ndarray) -> float:
    err = float(np.sum((ref.astype(np.float64) - est) ** 2))
    return 10 * np.log10(float(np.sum(ref.astype(np.float64) ** 2)) / max(err, 1e-20))


def summary(rows: list[dict[str, Any]], what: str, scope: str) -> list[str]:
    """The README's lines: per reason, the inputs and what restoring them would do."""
    lines = [f"# Roll-offs taken for the music's own, {what}", "",
             f"{scope}; `scripts/eval_own_rolloff.py`. ΔSNR (dB) and, where scored, ΔViSQOL of "
             "the default pipeline had it restored them (`--enhance-gentle`) over the input, "
             "which is what `upband enhance` returns for them.", "",
             "| reason | inputs | mean ΔSNR if restored | worst | below −0.3 dB | "
             "mean ΔViSQOL (scored) | below −0.1 |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for why in ("gentle", "rising", "low"):
        values = [float(r["restored_delta_snr"]) for r in rows if r["reason"] == why]
        scores = [float(r["restored_delta_visqol"]) for r in rows
                  if r["reason"] == why and r["restored_delta_visqol"] != ""]
        row = f"| {why} | {len(values)} | "
        if values:
            row += (f"{statistics.fmean(values):+.2f} | {min(values):+.2f} | "
                    f"{sum(v < -0.3 for v in values)} | ")
        else:
            row += " | | | "
        if scores:
            row += (f"{statistics.fmean(scores):+.3f} ({len(scores)}) | "
                    f"{sum(v < -0.1 for v in scores)} |")
        else:
            row += " | |"
        lines.append(row)
    return lines


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--corpus", required=True)
    p.add_argument("--split", default="validation")
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--limit", type=int, default=0, help="at most this many files, drawn at "
                   "random (seed 0); 0: all")
    p.add_argument("--codecs", action="store_true", help="the MP3 conditions of versatile "
                   "instead, where a trend rises steeply into a codec's shelf")
    p.add_argument("--visqol", action="store_true", help="ΔViSQOL too (needs upband[visqol])")
    p.add_argument("-o", "--output", type=Path, required=True)
    args = p.parse_args()
    conditions = CODEC_CONDITIONS if args.codecs else CONDITIONS
    data = find_items(args.corpus, args.split)
    items = data.items
    if 0 < args.limit < len(items):
        keep = np.random.default_rng(0).choice(len(items), args.limit, replace=False)
        items = [items[i] for i in sorted(keep)]
    states = {name: State(make_config(name, limit_seconds=args.seconds, visqol=False,
                                      corpus=data.corpus, device="cpu"))
              for name in {n for n, _ in conditions} | {"sulun"}}
    model = load_enhancer(device="cpu")  # the default model, loaded (and checked) once
    rows, inputs = [], 0
    for item in items:
        try:  # both protocols: 44.1 kHz stereo
            clean, _ = load_reference(states["sulun"], item)
        except SpecError as e:  # too short or silent: not scored, as upband evaluate does
            print(f"skipped: {e}", flush=True)
            continue
        for name, cond_name in conditions:
            state = states[name]
            cond = next(c for c in state.protocol.conditions if c.name == cond_name)
            sr = state.protocol.sample_rate
            low = apply(clean, sr, draw(cond, item.id, 0, sr))
            found = detect_bandwidth(low, sr)
            inputs += 1
            why = reason(found, args.codecs)
            if not why:
                continue
            restored, _ = enhance(low, sr, model, bandwidth=found, pass_gentle=False,
                                  device="cpu")
            rows.append({"file": item.path, "condition": f"{name}/{cond_name}", "reason": why,
                         "template": found.template, "cutoff_hz": round(found.cutoff_hz),
                         "trend_db_per_octave": round(found.rolloff.slope_db, 1)
                         if found.rolloff else "",
                         "restored_delta_snr": round(snr(clean, restored) - snr(clean, low), 3),
                         "restored_delta_visqol": delta_visqol(clean, restored, low, sr)
                         if args.visqol else ""})
            print(" ".join(str(v) for v in rows[-1].values()), flush=True)
    args.output.mkdir(parents=True, exist_ok=True)
    fields = ["file", "condition", "reason", "template", "cutoff_hz", "trend_db_per_octave",
              "restored_delta_snr", "restored_delta_visqol"]
    with open(args.output / "per_file.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    lines = summary(rows, f"{args.split} split of {Path(args.corpus).name}",
                    f"{len(items)} files x {len(conditions)} "
                    f"{'codec' if args.codecs else 'low-pass'} conditions ({inputs} inputs, "
                    f"first {args.seconds:g} s)")
    (args.output / "README.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
