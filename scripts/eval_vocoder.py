"""Copy synthesis of a vocoder on a corpus split: how close is ``vocoder(x)`` to ``x``?

For each file of the split (first ``--seconds`` from ``--offset``, every channel as its own
mono signal), the vocoder re-synthesises the clean music from its mel magnitude; the script
writes per-file LSD (``lsd_ssr``), ViSQOL (audio mode, when installed), SNR and the delay that
maximises the cross-correlation, and their means, as CSV and Markdown.

    python scripts/eval_vocoder.py --corpus /work/corpus2 --vocoder upband-vocoder \\
        -o docs/results/tdpr/vocoder

The delay shows whether TD-PR's phase can be taken from the vocoder as it comes (0: aligned);
SNR near 0 dB or below is expected (a vocoder does not keep the waveform, only its sound).
"""

from __future__ import annotations

import argparse
import csv
import math
import statistics
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import upband  # noqa: F401  # isort: skip  (before torch: the OpenMP wait policy)
import numpy as np
import torch

from upband import metrics
from upband.data.corpus import Corpus, open_corpus
from upband.enhancement.loading import load_vocoder
from upband.enhancement.phase import vocoder_delay
from upband.train.validation import model_output, visqol_or_nan


def excerpt_arguments(p: argparse.ArgumentParser) -> None:
    """The options of a script that scores excerpts of a corpus split with a vocoder."""
    p.add_argument("--corpus", required=True, type=Path)
    p.add_argument("--split", default="test")
    p.add_argument("--vocoder", default="tdpr", help="name or .safetensors (default: shipped)")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--offset", type=float, default=10.0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("-o", "--output", required=True, type=Path)


def excerpts(corpus: Corpus, args: argparse.Namespace) -> Iterator[tuple[Any, np.ndarray]]:
    """``(record, [C, T] float32)`` for every file of ``args.split`` that is not silent:
    ``args.seconds`` from ``args.offset`` in, or the last ``args.seconds`` of a shorter file
    (the whole of one shorter than that)."""
    sr = int(corpus.sample_rate)
    for record in corpus.files(args.split):
        start = min(round(args.offset * sr), max(0, record.frames - round(args.seconds * sr)))
        clean = corpus.read(record, start, min(record.frames, round(args.seconds * sr)))
        clean = np.asarray(clean, np.float32)
        if np.any(clean):
            yield record, clean


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    excerpt_arguments(p)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    corpus = open_corpus(args.corpus)
    sr = int(corpus.sample_rate)
    vocoder = load_vocoder(args.vocoder, sr).eval()
    rows: list[dict[str, Any]] = []
    for record, clean in excerpts(corpus, args):
        copy = model_output(vocoder, clean, 0, torch.device("cpu"), sr)
        row = {"file": record.relpath, "lsd": float(metrics.lsd_ssr(clean, copy, sr)),
               "visqol": visqol_or_nan(clean, copy, sr) if metrics.visqol_available()
               else math.nan,
               "snr": float(metrics.snr(clean, copy)),
               # a short one-shot (a drum sample) has too little to correlate: no delay
               "delay": vocoder_delay(vocoder, clean.mean(axis=0), max_lag=1024)
               if clean.shape[-1] >= round(args.seconds * sr) else math.nan}
        rows.append(row)
        print(f"{record.relpath}: LSD {row['lsd']:.3f}, ViSQOL {row['visqol']:.3f}, "
              f"SNR {row['snr']:.2f} dB, delay {row['delay']} samples", flush=True)
    args.output.mkdir(parents=True, exist_ok=True)
    with open(args.output / "per-file.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    means = {k: statistics.fmean(r[k] for r in rows if not math.isnan(r[k]))
             for k in ("lsd", "visqol", "snr")}
    delays = [r["delay"] for r in rows if not math.isnan(r["delay"])]
    text = (f"# Copy synthesis of `{args.vocoder}` on the {args.split} split of "
            f"`{args.corpus.name}`\n\n{len(rows)} files, {args.seconds:g} s each from "
            f"{args.offset:g} s (or the end), every channel re-synthesised on its own.\n\n"
            f"| LSD (lsd_ssr) | ViSQOL | SNR (dB) | delay (samples) of the {len(delays)} files "
            f"as long as the excerpt: median, min, max |\n"
            f"|---:|---:|---:|---|\n| {means['lsd']:.3f} | {means['visqol']:.3f} | "
            f"{means['snr']:.2f} | {statistics.median(delays):g}, {min(delays)}, "
            f"{max(delays)} |\n\nPer file: `per-file.csv`. Command: `python "
            f"{' '.join(sys.argv)}`\n")
    (args.output / "README.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
