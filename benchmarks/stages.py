"""CPU time of the pipeline's signal-processing stages, each on its own.

`benchmarks/enhance.py` measures ``upband enhance`` end to end; this says where the time goes
outside the model. On 60 s of the same synthetic 44.1 kHz stereo music (low-passed at
11 025 Hz), it times the bandwidth detection, the roll-off compensation, the level guard
(without and with its fill, which ``upband enhance`` runs by default) and the band merge, each
streamed in blocks of ``--block`` samples as the pipeline feeds them, with a stand-in model
output (the input plus soft noise: the stages' cost does not depend on what the
model adds). Prints the median over ``--repeats`` runs of every stage, in seconds and as a
real-time factor.

    python benchmarks/stages.py [--seconds 60] [--repeats 5] [--block 131072] [--json F]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

# upband first: it sets the OpenMP wait policy that torch reads when it is imported
import upband  # noqa: F401  # isort: skip
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from _audio import music_block
from upband.analysis import detect_bandwidth
from upband.enhancement.compensation import Compensation
from upband.enhancement.guard import FILL_DB, LevelGuard
from upband.enhancement.merge import BandMerge

SR = 44100


def streamed(make: Callable[[], object], x: np.ndarray, m: np.ndarray, block: int) -> None:
    """Push ``x`` and ``m`` through a fresh stage in blocks."""
    stage = make()
    for a in range(0, x.shape[1], block):
        stage.push(x[:, a:a + block], m[:, a:a + block],  # type: ignore[attr-defined]
                   last=a + block >= x.shape[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--block", type=int, default=131072)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    x = music_block(args.seconds, SR, seed=0)
    m = x + (1e-3 * np.random.default_rng(1).standard_normal(x.shape)).astype(np.float32)
    found = detect_bandwidth(x, SR)
    comp = Compensation.for_input(found, SR, 2)
    if comp is None:
        raise SystemExit("the benchmark music has no roll-off to compensate")
    stages: dict[str, Callable[[], object]] = {
        "detect": lambda: detect_bandwidth(x, SR),
        "compensation": lambda: streamed(
            lambda: Compensation.for_input(found, SR, 2), x, m, args.block),
        "guard": lambda: streamed(lambda: LevelGuard(found.cutoff_hz, SR, 2), x, m, args.block),
        # as upband enhance runs it by default: with the fill (no shelf here: FILL_DB)
        "guard+fill": lambda: streamed(lambda: LevelGuard(found.cutoff_hz, SR, 2, fill_db=FILL_DB),
                                       x, m, args.block),
        "merge": lambda: streamed(lambda: BandMerge(found.cutoff_hz, SR, 2), x, m, args.block),
    }
    times: dict[str, list[float]] = {name: [] for name in stages}
    for _ in range(args.repeats + 1):  # the first round warms up
        for name, run in stages.items():
            t0 = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - t0)
    result = {name: {"median_s": statistics.median(t[1:]),
                     "rtf": statistics.median(t[1:]) / args.seconds} for name, t in times.items()}
    print(f"{args.seconds:g} s of 44.1 kHz stereo, cutoff {found.cutoff_hz:.0f} Hz, median of "
          f"{args.repeats} runs:")
    for name, r in result.items():
        print(f"  {name:13s} {r['median_s']:.3f} s  RTF {r['rtf']:.4f}")
    if args.json:
        args.json.write_text(json.dumps({"seconds": args.seconds, "block": args.block,
                                         "stages": result}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
