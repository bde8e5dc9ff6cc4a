"""``upband plot``: a run's training curves as a PNG (:func:`upband.train.plot_run`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from upband.cli.base import EXIT_OK, input_files
from upband.train import plot_run

DESCRIPTION = ("Output SNR on the seen and unseen filters against iterations, input SNR as dashed "
               "baselines, and the training loss. A run folder that cannot be read, or a PNG "
               "that cannot be written, gives exit status 1.")


def configure(p: argparse.ArgumentParser) -> None:
    """The options of ``upband plot``."""
    p.description = DESCRIPTION
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    p.add_argument("-o", "--output", type=Path, metavar="PNG")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Draw the curves and print the PNG's path."""
    with input_files():
        print(plot_run(args.run_dir, args.output))
    return EXIT_OK
