"""Progress bars on stderr: one look for every command (tqdm, imported when a bar is made)."""

from __future__ import annotations

import sys
from typing import Any

_AUDIO_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s of audio " \
                "[{elapsed}<{remaining}]"


class NullBar:
    """Stands in for a bar that is not shown: every call does nothing."""

    def update(self, n: float = 1) -> None:
        """Ignore ``n``."""

    def set_postfix_str(self, text: str) -> None:
        """Ignore ``text``."""

    def close(self) -> None:
        """Nothing to close."""


def audio_bar(total_seconds: float, desc: str, *, enabled: bool = True, position: int = 0,
              leave: bool = True, log: bool = False) -> Any:
    """A bar counted in seconds of audio on stderr; hidden when not ``enabled``.

    When stderr is no terminal the bar is hidden too, unless ``log`` (long jobs whose log
    should show progress, such as corpus builds): then it is written at most every 30 s so
    logs stay short."""
    if not enabled:
        return NullBar()
    from tqdm import tqdm

    tty = sys.stderr.isatty()
    return tqdm(total=round(total_seconds, 1), desc=desc, unit="s", position=position,
                leave=leave, bar_format=_AUDIO_FORMAT, dynamic_ncols=True, file=sys.stderr,
                mininterval=0.1 if tty else 30.0,
                disable=False if log else None)


def step_bar(total: int, initial: int, desc: str, *, enabled: bool = True) -> Any:
    """A bar counted in iterations (training), shown only on a terminal."""
    if not (enabled and sys.stderr.isatty()):
        return NullBar()
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="it", dynamic_ncols=True, smoothing=0.05,
                desc=desc, file=sys.stderr)
