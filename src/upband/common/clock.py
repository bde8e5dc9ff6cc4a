"""Time as text: durations as clocks (``m:ss.sss`` below an hour, ``h:mm:ss.sss`` from one hour
on) and the UTC timestamps of reports and corpora."""

from __future__ import annotations

import datetime as _dt


def format_clock(seconds: float, decimals: int = 3) -> str:
    """``seconds`` as ``m:ss.d…`` (or ``h:mm:ss.d…``) with ``decimals`` digits after the point.

    >>> format_clock(299.093)
    '4:59.093'
    >>> format_clock(3725.25, decimals=1)
    '1:02:05.2'
    """
    width = 3 + decimals if decimals else 2
    m, s = divmod(round(float(seconds), decimals), 60.0)
    h, m = divmod(int(m), 60)
    sec = f"{s:0{width}.{decimals}f}"
    return f"{h}:{m:02d}:{sec}" if h else f"{m}:{sec}"


def utcnow() -> str:
    """The current UTC time, ISO 8601 to the second (``2026-12-02T01:40:00+00:00``)."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
