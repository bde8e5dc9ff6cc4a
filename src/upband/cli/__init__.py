"""The ``upband`` command line: one module per command, each with its parser next to its
handler; the work is done by the library, the commands parse, call and print.

``get_parser()`` assembles the commands and ``main(argv)`` runs one. Every command follows one
exit-status rule:

- **0**: all done.
- **1**: at least one input file could not be processed (missing, corrupt, unwritable output);
  the other files are still processed where a command takes several. Input files are the
  files and folders a command is given as arguments (``info FILE``, ``metrics REFERENCE
  ESTIMATE``, ``corpus info CORPUS``, ``plot RUN_DIR``, the files ``evaluate`` finds).
- **2**: the command line itself is wrong: a bad option or value (a path named by an option,
  such as ``--data``, ``--split-list`` or ``--model``, included; and a ``train`` recipe or
  override), an output that exists without ``--force``, no inputs found; or an internal error
  (a bug, reported on one line).
- **130**: interrupted with Ctrl-C (SIGINT); **143** by SIGTERM and **129** by SIGHUP
  (128 + the signal's number). Both signals stop a command as Ctrl-C does: the output being
  written is dropped (finished outputs are kept) and ``upband: interrupted (SIGTERM)`` goes to
  stderr. A SIGHUP that is ignored when upband starts (``nohup``) stays ignored.

:mod:`upband.cli.base` holds the exit codes and :func:`~upband.cli.base.input_files`, the
context in which a command's handler reads its inputs and writes its outputs.

Every error is one line, ``upband: error: <what went wrong>``, on stderr; never a traceback
(set ``UPBAND_DEBUG=1`` to see the traceback of an internal error).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import signal
import sys
import threading
import traceback
from collections.abc import Iterable, Iterator, Sequence
from types import FrameType

from upband.cli.base import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_STATUS_HELP,
    EXIT_USAGE,
    FileFailed,
    Parser,
    print_error,
)
from upband.common.version import __version__
from upband.errors import UpbandError

__all__ = ["COMMANDS", "EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "get_parser",
           "main"]

#: Command -> its one-line help; the command lives in the module ``upband.cli.<command>``.
COMMANDS = {
    "enhance": "restore the high band of music files",
    "info": "rate, channels, length, format and detected bandwidth",
    "degrade": "simulate a band-limited or lossy version of a file",
    "presets": "list the degradation presets",
    "metrics": "compare an estimate with its reference",
    "corpus": "build, pack and inspect training corpora",
    "train": "train a model from a recipe (configs/*.toml)",
    "plot": "draw a run's training curves (Sulun Fig. 3) as a PNG",
    "evaluate": "run a paper's test protocol: tables and figures",
    "models": "list the model architectures and pretrained models",
    "listen": "compare versions by ear on a local page; listening tests and their analysis",
}


def get_parser(commands: Iterable[str] | None = None) -> argparse.ArgumentParser:
    """The ``upband`` parser.

    Args:
        commands: the commands whose options are built (default: all). The others are listed
            by name and help only, so ``upband --help`` need not import what they use.

    Returns:
        The parser; each command's arguments set ``func``, its handler
        (``func(args) -> exit status``).
    """
    wanted = set(COMMANDS if commands is None else commands)
    parser = Parser(prog="upband", description="Restore the high frequencies that music lost.",
                    epilog=EXIT_STATUS_HELP)
    parser.add_argument("--version", action="version", version=f"upband {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    for name, help_text in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, epilog=EXIT_STATUS_HELP)
        if name in wanted:
            # imported only when its command runs: most need torch or scipy, seconds for --help
            importlib.import_module(f"upband.cli.{name}").configure(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    SIGTERM and SIGHUP are turned into :class:`Interrupted` (a ``KeyboardInterrupt``) while it
    runs, and the previous handlers are put back when it returns.

    Args:
        argv: the arguments after the program name (default: ``sys.argv[1:]``).

    Returns:
        The exit status (see the module docstring); argparse's own exits (``--help``,
        ``--version``, usage errors) raise ``SystemExit`` with 0 or 2.
    """
    with stop_signals_interrupt():
        try:
            return _run(argv)
        except KeyboardInterrupt as err:
            signum = err.signum if isinstance(err, Interrupted) else signal.SIGINT
            print(f"upband: interrupted ({signal.Signals(signum).name})", file=sys.stderr)
            return 128 + int(signum)  # 130 (EXIT_INTERRUPTED) for SIGINT, 143 for SIGTERM


def _run(argv: Sequence[str] | None) -> int:
    """Parse ``argv`` and run its command; errors become exit statuses (not interrupts)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = get_parser(_named_command(argv))
    args, extra = parser.parse_known_args(argv)
    take_extra = getattr(args, "take_extra", None)
    if extra and not (take_extra is not None and take_extra(args, extra)):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.argv = argv
    try:
        status: int = args.func(args)
        return status
    except FileFailed as err:
        print_error(str(err))
        return EXIT_FAILED
    except UpbandError as err:
        print_error(str(err))
        return EXIT_USAGE
    except Exception as err:  # a bug: keep it to one line unless debugging
        if os.environ.get("UPBAND_DEBUG"):
            traceback.print_exc()
        print_error(f"internal error: {type(err).__name__}: {err} (set UPBAND_DEBUG=1 for the "
                    "traceback and please report it)")
        return EXIT_USAGE


class Interrupted(KeyboardInterrupt):
    """SIGTERM or SIGHUP arrived: raised in the main thread so that a command stops exactly as
    on Ctrl-C (``with`` blocks and ``except BaseException`` clean-ups run)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


#: The signals that stop a command as Ctrl-C does (SIGHUP does not exist on Windows).
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP")
                     if hasattr(signal, name))


@contextlib.contextmanager
def stop_signals_interrupt() -> Iterator[None]:
    """Within the block, :data:`STOP_SIGNALS` raise :class:`Interrupted` in the main thread.

    Only the first such signal raises; later ones are ignored while the clean-up runs. A
    signal that is ignored on entry (SIG_IGN, as under ``nohup``) stays ignored, and a process
    forked inside the block (a data-loader worker) gets the default action, not the exception.
    Outside the main thread (where handlers cannot be set) the block runs unchanged. The
    previous handlers are restored on exit.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    owner = os.getpid()
    raised: list[int] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        if os.getpid() != owner:  # a forked child: die of the signal as it would have
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        if not raised:
            raised.append(signum)
            raise Interrupted(signum)

    previous = {}
    for signum in STOP_SIGNALS:
        if signal.getsignal(signum) != signal.SIG_IGN:
            previous[signum] = signal.signal(signum, handler)
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, signal.SIG_DFL if old is None else old)


def _named_command(argv: Sequence[str]) -> list[str]:
    """The command ``argv`` names (the first word that is not an option), if it is one."""
    first = next((a for a in argv if not a.startswith("-")), None)
    return [first] if first in COMMANDS else []
