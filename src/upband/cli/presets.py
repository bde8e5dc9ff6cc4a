"""``upband presets``: list the named degradation presets
(:func:`upband.degrade.describe_presets`)."""

from __future__ import annotations

import argparse

from upband.cli.base import EXIT_OK
from upband.degrade import describe_presets

DESCRIPTION = "List the named degradation presets and their sources."


def configure(p: argparse.ArgumentParser) -> None:
    """The options of ``upband presets`` (none)."""
    p.description = DESCRIPTION
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the preset table."""
    print(describe_presets())
    return EXIT_OK
