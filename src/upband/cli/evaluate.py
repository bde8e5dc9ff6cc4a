"""``upband evaluate``: a paper's test protocol on clean music
(:func:`upband.evaluate.evaluate`)."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from upband.cli.base import DEVICES, EXIT_FAILED, EXIT_OK, add_no_fill, names, print_error
from upband.errors import EvaluationError
from upband.evaluate import (
    DEFAULT_BEST_OF,
    DEFAULT_JOBS,
    DEFAULT_SEED,
    PROTOCOLS,
    REPORT_NAME,
)
from upband.evaluate.baselines import BASELINES, DEFAULT_BASELINES
from upband.evaluate.protocols import ALIASES
from upband.listen.testfile import DEFAULT_ITEMS, DEFAULT_SECONDS, parse_designs

DESCRIPTION = (
    "Degrade clean music the way a paper's test does, restore it with models and baselines, and "
    "write report.md (the paper's table with deltas against the input), results.csv, "
    "summary.json and PNG figures into -o. A file that fails is reported and skipped; the exit "
    "status is then 1.")



def configure(p: argparse.ArgumentParser) -> None:
    """The options of ``upband evaluate``."""
    p.description = DESCRIPTION
    baselines = ",".join(DEFAULT_BASELINES)
    p.add_argument("--data", required=True, type=Path, metavar="DIR",
                   help="folder of clean music (searched recursively), or a corpus folder "
                   "from 'upband corpus build' (its --split)")
    p.add_argument("--protocol", required=True, metavar="NAME",
                   help=f"{', '.join(list(PROTOCOLS)[:-1])} or {list(PROTOCOLS)[-1]} "
                   f"({', '.join(f'{a} = {n}' for a, n in ALIASES.items())})")
    p.add_argument("--models", default="", metavar="M1,M2,...",
                   help="pretrained names, .safetensors checkpoints or upband_unittest "
                   "(default: none, baselines only)")
    p.add_argument("--baselines", default=baselines, metavar="B1,B2,...",
                   help=f"from {', '.join(BASELINES)} (default: {baselines}; input is always "
                   "included)")
    p.add_argument("--split", metavar="NAME", help="corpus split (default: test)")
    p.add_argument("-o", "--output", type=Path, metavar="REPORT_DIR",
                   help="report folder (default: upband-eval-<protocol>)")
    p.add_argument("-j", "--jobs", type=int, default=DEFAULT_JOBS, metavar="N",
                   help=f"files in parallel processes (default {DEFAULT_JOBS}; same numbers "
                   "for any N)")
    p.add_argument("--limit-seconds", type=float, metavar="S",
                   help="evaluate only the first S seconds of each file")
    p.add_argument("-d", "--device", default=DEVICES[0], choices=DEVICES,
                   help="where the models run (default: CUDA when present)")
    p.add_argument("--no-visqol", action="store_true", help="skip ViSQOL even if installed")
    p.add_argument("--vggish", action="append", default=[], type=Path, metavar="WEIGHTS",
                   help="VGGish weights file(s): adds the VGG distance (repeatable)")
    p.add_argument("--best-of", type=int, default=DEFAULT_BEST_OF, metavar="N",
                   help="draws per file for stochastic models, best kept per metric "
                   f"(Lattner & Nistal; default {DEFAULT_BEST_OF})")
    p.add_argument("--vocoder", metavar="NAME|PATH",
                   help="the vocoder of MODEL+tdpr systems (default: the shipped one at the "
                   "protocol's rate); --models takes MODEL+tdpr, MODEL+griffin-lim and "
                   "MODEL+gt-phase (TD-PR's phase repair, its baseline and its oracle)")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED,
                   help=f"seed of the per-file degradation draws (default {DEFAULT_SEED})")
    p.add_argument("--no-guard", action="store_true",
                   help="no level guard on the models' added band (upband enhance --no-guard)")
    p.add_argument("--no-compensate", action="store_true",
                   help="no roll-off compensation (upband enhance --no-compensate)")
    add_no_fill(p, help="the guard does not fill the band with soft noise (upband enhance "
                "--no-fill)")
    p.add_argument("--no-merge", action="store_true",
                   help="score the models' raw output, as the papers do (default: the "
                   "do-no-harm merge of upband enhance)")
    p.add_argument("--listening-test", nargs="?", const="mushra", metavar="DESIGNS",
                   help="also write REPORT_DIR/listening/test.json and its stimuli for "
                   "'upband listen': designs from mushra, ab, mos, abx, comma-separated "
                   "(default: mushra)")
    p.add_argument("--listening-items", type=int, default=DEFAULT_ITEMS, metavar="N",
                   help=f"with --listening-test: files in it (default {DEFAULT_ITEMS}), each "
                   "in every condition")
    p.add_argument("--listening-seconds", type=float, default=DEFAULT_SECONDS, metavar="S",
                   help=f"with --listening-test: excerpt length (default {DEFAULT_SECONDS:g})")
    p.add_argument("-f", "--force", action="store_true", help="replace an existing report")
    p.add_argument("-q", "--quiet", action="store_true", help="no per-file lines")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Evaluate and write the report; exit status 1 if a file failed."""
    # here, not at the top: the evaluation loads torch, which `upband evaluate --help` need not
    from upband.evaluate import FileResult, evaluate

    def on_file(result: FileResult, done: int, total: int) -> None:
        if result.error is not None:
            print_error(f"{result.error} (skipped)")
        elif not args.quiet:
            print(f"[{done}/{total}] {result.item.id}: {result.duration_s:.1f} s in "
                  f"{result.seconds:.1f} s", file=sys.stderr)

    designs = () if args.listening_test is None else parse_designs(args.listening_test)
    command = "upband " + " ".join(shlex.quote(a) for a in args.argv)
    # --data and the other paths are option values: an error before the files are evaluated
    # (no such folder, no music in it, an existing report) is one of the command line
    # (2); every file failing is an error of the inputs (1)
    try:
        ev = evaluate(args.data, args.protocol, models=names(args.models),
                      baselines=names(args.baselines), output=args.output, split=args.split,
                      jobs=args.jobs, limit_seconds=args.limit_seconds, device=args.device,
                      visqol=not args.no_visqol, vggish=[str(v) for v in args.vggish],
                      seed=args.seed, best_of=args.best_of, merge=not args.no_merge,
                      vocoder=args.vocoder,
                      guard=not args.no_guard, compensate=not args.no_compensate,
                      fill=not args.no_fill, force=args.force, command=command, on_file=on_file)
    except EvaluationError as err:
        print_error(str(err))
        return EXIT_FAILED
    failed = len(ev.failed)
    print(f"upband: {len(ev.results) - failed} file(s) evaluated, {failed} failed; report in "
          f"{ev.output / REPORT_NAME}", file=sys.stderr if failed else sys.stdout)
    if designs:
        _listening_test(args, ev.output, designs)
    return EXIT_FAILED if failed else EXIT_OK


def _listening_test(args: argparse.Namespace, report: Path, designs: tuple[str, ...]) -> None:
    """Render the listening test of the report just written (upband.listen.stimuli)."""
    # here: it runs the models again (torch)
    from upband.listen.stimuli import write_listening_test

    test = write_listening_test(
        report, data=args.data, protocol=args.protocol, models=names(args.models),
        baselines=names(args.baselines), split=args.split, limit_seconds=args.limit_seconds,
        device=args.device, seed=args.seed, merge=not args.no_merge, guard=not args.no_guard,
        compensate=not args.no_compensate, fill=not args.no_fill, vocoder=args.vocoder,
        designs=designs,
        items=args.listening_items, seconds=args.listening_seconds, force=args.force)
    print(f"upband: listening test ({len(test.items)} items; "
          f"{', '.join(t.design for t in test.tests)}) in {test.path}; run: upband listen "
          f"{shlex.quote(str(test.path))}")
