"""What the bandwidth detector sees after each condition of an evaluation protocol, file by file.

The pipeline's choices after the detector (compensation, the fill's margin: 12 dB under the
prediction with no shelf, 6 after a ``brickwall`` shelf, 3 after a ``lossy`` one) depend on its
verdict, so it helps to know how often a condition is read as which. The inputs are degraded
exactly as ``upband evaluate`` degrades them (the same draws, the same first seconds); prints
one line per file and condition, then the counts per condition, and writes them as JSON::

    python scripts/detect_conditions.py --data CORPUS --split validation --protocol versatile \\
        [--conditions mp3-32k,mp3-64k] [--limit-seconds 30] [--json F]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter

import upband  # noqa: F401  # isort: skip  (sets the OpenMP wait policy first)
from upband.analysis import detect_bandwidth
from upband.data.corpus import open_corpus
from upband.degrade import apply as degrade_apply
from upband.errors import UpbandError
from upband.evaluate.protocols import draw, get_protocol


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="corpus folder ('upband corpus build')")
    ap.add_argument("--split", default="validation")
    ap.add_argument("--protocol", default="versatile")
    ap.add_argument("--conditions", help="comma-separated names (default: all)")
    ap.add_argument("--limit-seconds", type=float, default=30.0)
    ap.add_argument("--seed", type=int, default=0, help="as upband evaluate --seed")
    ap.add_argument("--json", help="write the verdicts and counts here")
    args = ap.parse_args(argv)
    try:
        protocol = get_protocol(args.protocol)
        wanted = args.conditions.split(",") if args.conditions else None
        conditions = [c for c in protocol.conditions if wanted is None or c.name in wanted]
        if not conditions:
            raise UpbandError(f"no condition of {protocol.name} is named in {args.conditions!r}")
        corpus = open_corpus(args.data)
        files = corpus.files(args.split)
    except UpbandError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    sr = protocol.sample_rate
    rows, counts = [], {c.name: Counter() for c in conditions}
    for item in files:
        clean = corpus.read(item, 0, min(item.frames, int(args.limit_seconds * item.sample_rate)))
        for cond in conditions:
            found = detect_bandwidth(degrade_apply(clean, sr, draw(cond, item.id, args.seed, sr)),
                                     sr)
            verdict = "full band" if found.full_band else found.codec
            # the fitted trend into the cutoff (dB per octave; a resonance rises fast)
            slope = found.rolloff.slope_db if found.rolloff is not None else float("nan")
            counts[cond.name][verdict] += 1
            rows.append({"file": item.id, "condition": cond.name, "verdict": verdict,
                         "cutoff_hz": round(found.cutoff_hz), "hole_excess": found.hole_excess,
                         "fit_error_db": found.fit_error_db, "slope_db": slope,
                         "own_rolloff": found.own_rolloff})
            print(f"{cond.name:10s} {verdict:9s} {found.cutoff_hz:7.0f} Hz  trend "
                  f"{slope:+6.1f} dB/oct  {item.id}", flush=True)
    for name, c in counts.items():
        print(f"{name}: " + ", ".join(f"{k} {v}" for k, v in sorted(c.items())))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"split": args.split, "protocol": protocol.name,
                       "counts": {k: dict(v) for k, v in counts.items()}, "files": rows}, f,
                      indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
