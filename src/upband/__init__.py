"""upband: restore the high frequencies that music has lost.

Audio arrays throughout are float32 ``[C, T]`` (channels first). See ``upband.audio`` for I/O,
``upband.degrade`` for the degradation simulator and ``upband.metrics`` for the papers' metrics.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from upband.errors import UpbandError

try:
    __version__ = version("upband")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"

__all__ = ["UpbandError", "__version__"]
