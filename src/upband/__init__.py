"""upband: restore the high frequencies that music has lost.

Audio arrays throughout are float32 ``[C, T]`` (channels first). See ``upband.audio`` for I/O,
``upband.degrade`` for the degradation simulator and ``upband.metrics`` for the papers' metrics.
"""

from __future__ import annotations

import os
from importlib.metadata import PackageNotFoundError, version

# OpenMP threads that spin while they wait steal the CPU from everything else on a busy machine:
# under load, arunet-s ran 6x slower and small-chunk inference 60x slower with the default
# policy (benchmarks/speed.py, tests/test_inference.py); passive waiting costs little when idle.
# Effective only if torch is imported after upband; a user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from upband.errors import UpbandError

try:
    __version__ = version("upband")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"

__all__ = ["UpbandError", "__version__"]
