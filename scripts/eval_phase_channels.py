"""TD-PR on stereo: the vocoder on every channel (``each``) or once on their mean (``mid``)?

For each stereo file of a corpus split (``--seconds`` from ``--offset``), low-passed (zero-phase
Butterworth 8 at ``--cutoff``, as the speed benchmark's input), enhanced through ``enhance()``
(detection, chunks, do-no-harm merge) by ``--model`` alone and with TD-PR phase repair in both
channel modes; writes per-file LSD (``lsd_ssr``), ViSQOL (audio mode, when installed) and SNR
against the clean file, and their means and the mean paired differences ``mid - each``.

    python scripts/eval_phase_channels.py --corpus /work/corpus2 -o docs/results/tdpr/stereo
"""

from __future__ import annotations

import argparse
import csv
import math
import statistics
import sys
from pathlib import Path
from typing import Any

import upband  # noqa: F401  # isort: skip  (before torch: the OpenMP wait policy)
import numpy as np
import torch

from upband import metrics
from upband.data.corpus import open_corpus
from upband.degrade import lowpass
from upband.enhancement import enhance, load_enhancer
from upband.enhancement.loading import load_vocoder
from upband.enhancement.phase import PhaseRepaired
from upband.train.validation import visqol_or_nan

sys.path.insert(0, str(Path(__file__).parent))
from eval_vocoder import excerpt_arguments, excerpts

SYSTEMS = ("model", "each", "mid")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    excerpt_arguments(p)
    p.add_argument("--model", default=None, help="default: the default model")
    p.add_argument("--cutoff", type=float, default=11_025.0)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    corpus = open_corpus(args.corpus)
    sr = int(corpus.sample_rate)
    model = load_enhancer(args.model, device="cpu")
    vocoder = load_vocoder(args.vocoder, sr).eval()
    nets = {"model": model, **{mode: PhaseRepaired(model, vocoder, channels=mode).eval()
                               for mode in ("each", "mid")}}
    rows: list[dict[str, Any]] = []
    for record, clean in excerpts(corpus, args):
        if clean.shape[0] < 2 or np.abs(clean[0] - clean[1]).max() < 1e-4:
            continue  # mono, or the same signal twice: both modes are the same there
        degraded = lowpass(clean, sr, args.cutoff, "butter:8").astype(np.float32)
        row: dict[str, Any] = {"file": record.relpath}
        for name, net in nets.items():
            out, _ = enhance(degraded, sr, model=net, device="cpu", output_sample_rate=sr)
            row[f"{name}_lsd"] = float(metrics.lsd_ssr(clean, out, sr))
            row[f"{name}_visqol"] = visqol_or_nan(clean, out, sr) \
                if metrics.visqol_available() else math.nan
            row[f"{name}_snr"] = float(metrics.snr(clean, out))
        rows.append(row)
        print(", ".join(f"{k} {v:.3f}" if isinstance(v, float) else str(v)
                        for k, v in row.items()), flush=True)
    if not rows:
        print("no stereo files in the split", file=sys.stderr)
        return 1
    args.output.mkdir(parents=True, exist_ok=True)
    with open(args.output / "per-file.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)

    def mean(key: str) -> float:
        values = [r[key] for r in rows if not math.isnan(r[key])]
        return statistics.fmean(values) if values else math.nan

    lines = ["# TD-PR on stereo: the vocoder per channel or on the mid\n",
             f"{len(rows)} stereo files of the {args.split} split of `{args.corpus.name}`, "
             f"{args.seconds:g} s each from {args.offset:g} s (or the end), Butterworth 8 at "
             f"{args.cutoff:g} Hz, `enhance()` with the default settings (merge, guard).\n",
             "| system | LSD (lsd_ssr) | ViSQOL | SNR (dB) |", "|---|---:|---:|---:|"]
    for name in SYSTEMS:
        lines.append(f"| {name} | {mean(f'{name}_lsd'):.3f} | {mean(f'{name}_visqol'):.3f} | "
                     f"{mean(f'{name}_snr'):.2f} |")
    diffs = {k: [d for r in rows if not math.isnan(d := r[f"mid_{k}"] - r[f"each_{k}"])]
             for k in ("lsd", "visqol", "snr")}
    def counts(key: str, v: list[float]) -> str:
        better = sum(d < 0 if key == "lsd" else d > 0 for d in v)
        worse = sum(d > 0 if key == "lsd" else d < 0 for d in v)
        return f"{key} {statistics.fmean(v):+.4f} ({better} / {worse} of {len(v)})"

    lines.append("\nmid - each, mean paired difference (files where mid is better / where it "
                 "is worse, of the files with a value): "
                 + ", ".join(counts(k, v) for k, v in diffs.items() if v))
    lines.append(f"\nPer file: `per-file.csv`. Command: `python {' '.join(sys.argv)}`\n")
    text = "\n".join(lines)
    (args.output / "README.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
