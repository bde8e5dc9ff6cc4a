#!/usr/bin/env python3
"""Per-excerpt view of the bake-off: for each given checkpoint, what ``upband enhance`` ships
for every validation excerpt, against its input (ΔSNR in dB, ΔLSD), the detected cutoff, and
how many excerpts end more than 0.3 dB below their input (issue 13's do-no-harm line).

    python scripts/bakeoff_files.py --corpus CORPUS LABEL=CHECKPOINT_DIR [LABEL=DIR ...] \\
        [--pretrained upband-default] -o REPORT_DIR/files.md

The excerpts are the bake-off's (:func:`upband.train.compare.validation_items`: 8 s of each
of the first ``--files`` validation files, ``versatile`` and ``sulun-unseen``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from upband import metrics
from upband.fsutil import atomic_write_text
from upband.models.base import WaveModel
from upband.states import load_model, load_pretrained
from upband.train.compare import validation_items
from upband.train.validation import shipped

SR = 44_100


def deltas(model: WaveModel, items: Sequence[object]) -> list[tuple[str, float, float, float]]:
    rows = []
    for it in items:
        degraded = np.asarray(it.degraded, np.float32)  # type: ignore[attr-defined]
        clean = it.clean  # type: ignore[attr-defined]
        _, output, cutoff = shipped(model, degraded, SR)
        d_snr = float(metrics.snr(clean, output)) - float(metrics.snr(clean, degraded))
        d_lsd = float(metrics.lsd_ssr(clean, output, SR)) - float(metrics.lsd_ssr(clean,
                                                                                  degraded, SR))
        rows.append((it.name, cutoff, d_snr, d_lsd))  # type: ignore[attr-defined]
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--corpus", type=Path, required=True)
    p.add_argument("checkpoints", nargs="*", metavar="LABEL=DIR")
    p.add_argument("--pretrained", action="append", default=[], help="a shipped model too")
    p.add_argument("--files", type=int, default=16)
    p.add_argument("-o", "--output", type=Path, required=True)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    items = validation_items(args.corpus, seen_preset="versatile", unseen_preset="sulun-unseen",
                             max_files=args.files)
    models: dict[str, WaveModel] = {name: load_pretrained(name) for name in args.pretrained}
    for spec in args.checkpoints:
        label, _, folder = spec.partition("=")
        models[label] = load_model(Path(folder) / "model.safetensors")
    lines = ["| model | group | mean ΔSNR (dB) | worst ΔSNR | excerpts below −0.3 dB | mean ΔLSD |",
             "|---|---|---:|---:|---:|---:|"]
    detail = []
    for label, model in models.items():
        model.eval()
        for group, group_items in items.items():
            rows = deltas(model, group_items)
            d = np.array([[r[2], r[3]] for r in rows])
            lines.append(f"| {label} | {group} | {d[:, 0].mean():+.2f} | {d[:, 0].min():+.2f} | "
                         f"{int((d[:, 0] < -0.3).sum())} / {len(rows)} | {d[:, 1].mean():+.3f} |")
            detail += [f"| {label} | {group} | {name} | {cut:.0f} | {ds:+.2f} | {dl:+.3f} |"
                       for name, cut, ds, dl in rows]
    text = "\n".join(["## Per excerpt", "", *lines, "", "<details><summary>every excerpt</summary>",
                      "", "| model | group | excerpt | detected cutoff (Hz) | ΔSNR (dB) | ΔLSD |",
                      "|---|---|---|---:|---:|---:|", *detail, "",
                      "</details>", ""])
    atomic_write_text(args.output, text)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
