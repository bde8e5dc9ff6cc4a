#!/usr/bin/env python3
"""File by file against the input: how many files an ``upband evaluate`` run made worse.

    python scripts/eval_per_file.py REPORT_DIR/results.csv [--snr -0.3] [--visqol -0.1]

For every condition and system of a ``results.csv`` (one row per file, condition, system and
metric), the mean and worst difference to the ``input`` system's value of the same file, and
the number of files below the threshold (issue 13's do-no-harm lines: 0.3 dB of SNR, 0.1 of
ViSQOL). Files without a finite value on both sides (ViSQOL of a drum hit) are left out.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path


def deltas(rows: list[dict[str, str]], metric: str) -> dict[tuple[str, str], list[float]]:
    """``(condition, system) -> [value - input's value per file]`` for ``metric``."""
    values: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    for r in rows:
        if r["metric"] == metric:
            try:
                values[(r["condition"], r["system"])][r["file"]] = float(r["value"])
            except ValueError:
                continue
    out = {}
    for (condition, system), by_file in values.items():
        base = values.get((condition, "input"), {})
        if system != "input":
            out[(condition, system)] = [v - base[f] for f, v in by_file.items()
                                        if f in base and math.isfinite(v + base[f])]
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("results", type=Path)
    p.add_argument("--snr", type=float, default=-0.3, help="SNR threshold (dB)")
    p.add_argument("--visqol", type=float, default=-0.1, help="ViSQOL threshold")
    args = p.parse_args(argv)
    with args.results.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    for metric, threshold in (("snr", args.snr), ("visqol", args.visqol)):
        for (condition, system), d in sorted(deltas(rows, metric).items()):
            if d:
                print(f"{condition} | {system} | {metric}: mean {sum(d) / len(d):+.3f}, worst "
                      f"{min(d):+.2f}, below {threshold}: {sum(x < threshold for x in d)}/"
                      f"{len(d)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
