"""``upband train``: train a model from a TOML recipe (:func:`upband.train.run_training`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from upband.cli.base import EXIT_OK
from upband.train import run_training, summarize

DESCRIPTION = (
    "Train a model from a TOML recipe with KEY=VALUE overrides (e.g. data.corpus=/path "
    "optim.lr=1e-4 train.max_minutes=9). Checkpoints go to --run-dir (default runs/<recipe>); "
    "--resume continues exactly from the last one. Under torchrun (torchrun --nproc_per_node=N "
    "-m upband.cli train ...) it trains with DDP. A bad recipe or override is a command-line "
    "error (exit status 2).")


def configure(p: argparse.ArgumentParser) -> None:
    """The options of ``upband train``."""
    p.description = DESCRIPTION
    p.add_argument("config", help="recipe TOML, or an existing run folder with --resume")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    p.add_argument("--run-dir", type=Path, metavar="DIR")
    p.add_argument("--resume", action="store_true",
                   help="continue from the run folder's last checkpoint (start fresh if none)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run, take_extra=take_overrides)


def take_overrides(args: argparse.Namespace, extra: list[str]) -> bool:
    """Add KEY=VALUE pairs left after the options to ``args.overrides``; False if ``extra``
    holds an option (then they are unrecognized arguments).

    argparse ends a ``nargs="*"`` positional at the first option, so the pairs after it
    (``upband train RUN --resume train.max_minutes=9``) come back unparsed.
    """
    if any(a.startswith("-") for a in extra):
        return False
    args.overrides += extra
    return True


def run(args: argparse.Namespace) -> int:
    """Train (or resume) and print the summary on rank 0."""
    result = run_training(args.config, args.overrides, run_dir=args.run_dir, resume=args.resume,
                          quiet=args.quiet)
    if result.rank == 0 and not args.quiet:
        print(summarize(result))
    return EXIT_OK
