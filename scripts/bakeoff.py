#!/usr/bin/env python3
"""Compare training runs at equal compute (issue 13's bake-off): every checkpoint of every run
scored on the same validation excerpts, merged as ``upband enhance`` ships it, against the CPU
minutes the run had (:mod:`upband.train.compare`).

    python scripts/bakeoff.py --corpus /work/corpus --budget-minutes 60 \\
        --run arunet-s=/work/runs/bakeoff-arunet-s --run frames=/work/runs/bakeoff-frames \\
        -o REPORT_DIR

Writes ``comparison.csv``, ``curves.png`` and ``README.md`` (the table at the budget) into
``-o``. Excerpts: 8 s of each of the first ``--files`` files of the corpus' validation split,
degraded by ``--seen`` (default ``versatile``) and ``--unseen`` (default ``sulun-unseen``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from upband.data.corpus import open_corpus
from upband.errors import UpbandError
from upband.train.compare import add_visqol, compare_runs, validation_items, write_comparison


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--corpus", type=Path, required=True, help="corpus with a validation split")
    p.add_argument("--run", action="append", required=True, metavar="LABEL=RUN_DIR",
                   help="a run folder and its label (repeat)")
    p.add_argument("-o", "--output", type=Path, required=True, help="report folder")
    p.add_argument("--budget-minutes", type=float, default=60.0,
                   help="compute at which the runs are compared (default 60 CPU minutes)")
    p.add_argument("--files", type=int, default=16, help="validation files (default 16)")
    p.add_argument("--spacing-minutes", type=float, default=0.0,
                   help="validate checkpoints at least this much compute apart (default: all)")
    p.add_argument("--seen", default="versatile", help="preset of the seen excerpts")
    p.add_argument("--unseen", default="sulun-unseen", help="preset of the unseen excerpts")
    p.add_argument("--note", type=Path, default=None, help="Markdown appended to README.md")
    p.add_argument("--jobs", "-j", type=int, default=1,
                   help="checkpoints validated at once, in worker processes")
    p.add_argument("--visqol", action="store_true",
                   help="also ViSQOL of each run's checkpoint at the budget (slow)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    runs = {}
    for spec in args.run:
        label, sep, folder = spec.partition("=")
        if not sep or not label or not folder:
            print(f"bakeoff: error: --run wants LABEL=RUN_DIR, got {spec!r}", file=sys.stderr)
            return 2
        runs[label] = Path(folder)
    try:
        items = validation_items(args.corpus, seen_preset=args.seen, unseen_preset=args.unseen,
                                 max_files=args.files)
        points = compare_runs(runs, args.corpus, items=items,
                              spacing_minutes=args.spacing_minutes,
                              budget_minutes=args.budget_minutes, jobs=args.jobs)
        if args.visqol:
            add_visqol(points, items, int(open_corpus(args.corpus).sample_rate),
                       args.budget_minutes, jobs=args.jobs)
        note = args.note.read_text(encoding="utf-8") if args.note else ""
        written = write_comparison(points, args.output, budget_minutes=args.budget_minutes,
                                   note=note)
    except (UpbandError, OSError) as err:
        print(f"bakeoff: error: {err}", file=sys.stderr)
        return 1
    print(f"{len(points)} checkpoints of {len(runs)} runs; wrote "
          + ", ".join(str(p) for p in written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
