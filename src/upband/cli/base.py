"""What every command shares: the parser with one-line errors, the exit codes, and the rule that
turns an input file's failure into exit status 1 (see :mod:`upband.cli` for the rule)."""

from __future__ import annotations

import argparse
import contextlib
import inspect
import sys
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

from upband.errors import (
    MissingDependencyError,
    ModelError,
    OutputExistsError,
    SpecError,
    UpbandError,
)

#: All done.
EXIT_OK = 0
#: At least one input file could not be processed (missing, corrupt, unwritable output).
EXIT_FAILED = 1
#: The command line itself is wrong (bad option or value, no inputs found); also internal errors.
EXIT_USAGE = 2
#: Interrupted with Ctrl-C (SIGINT); SIGTERM and SIGHUP give 128 + their number (143, 129).
EXIT_INTERRUPTED = 130

#: Where ``-d/--device`` may run a model; ``auto`` is CUDA when present.
DEVICES = ("auto", "cpu", "cuda")

#: Errors that stay exit status 2 even when raised while a file is processed: the fix is on the
#: command line (another value or model, ``--force``, an installed extra), not in the file.
COMMAND_LINE_ERRORS: tuple[type[UpbandError], ...] = (SpecError, ModelError, OutputExistsError,
                                                      MissingDependencyError)


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump) and exit status :data:`EXIT_USAGE`."""

    def error(self, message: str) -> NoReturn:
        hint = f" (see '{self.prog} --help')"
        self.exit(EXIT_USAGE, f"upband: error: {message}{hint}\n")


class FileFailed(Exception):
    """An input (or its output) could not be processed: ``main`` prints it and exits 1."""


@contextlib.contextmanager
def input_files() -> Iterator[None]:
    """Report an error raised inside as a file's failure (exit 1), except the errors of the
    command line itself (:data:`COMMAND_LINE_ERRORS`, exit 2).

    Wrap only the steps that read inputs or write outputs, so that a bad option checked there
    is not taken for a bad file.
    """
    try:
        yield
    except COMMAND_LINE_ERRORS:
        raise
    except UpbandError as err:
        raise FileFailed(str(err)) from err
    except OSError as err:  # an output that cannot be written: permissions, a full disk
        where = f"{err.filename}: " if err.filename else ""
        raise FileFailed(f"{where}{err.strerror or err}") from err


def print_error(message: str) -> None:
    """``upband: error: <message>`` on stderr, the one form of every error line."""
    print(f"upband: error: {message}", file=sys.stderr)


def names(text: str) -> list[str]:
    """The items of a comma-separated option value, blanks dropped."""
    return [t.strip() for t in text.split(",") if t.strip()]


def add_no_fill(p: argparse.ArgumentParser, help: str) -> None:
    """``--no-fill`` (``args.no_fill``), and ``--fill``, the option's name while the fill was
    off by default: still accepted, hidden, it changes nothing."""
    p.add_argument("--fill", dest="no_fill", action="store_false", default=False,
                   help=argparse.SUPPRESS)
    p.add_argument("--no-fill", action="store_true", help=help)


def defaults_of(func: Callable[..., Any]) -> dict[str, Any]:
    """The keyword defaults of the library function ``func``, for options that mirror them."""
    return {k: p.default for k, p in inspect.signature(func).parameters.items()
            if p.default is not inspect.Parameter.empty}


#: The exit-status rule, the epilog of every command's ``--help``.
EXIT_STATUS_HELP = (
    "exit status: 0 all done; 1 at least one input file could not be processed (missing, "
    "corrupt, unwritable output); 2 the command line is wrong (bad option or value, a path an "
    "option names included; an output that is its input; an existing output without --force, "
    "except in enhance, which keeps it and goes on; no inputs found) or an internal error; "
    "130 interrupted (Ctrl-C; 143 SIGTERM, 129 SIGHUP). Errors are one line on stderr; "
    "UPBAND_DEBUG=1 shows an internal error's traceback.")
