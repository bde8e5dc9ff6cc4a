"""upband: restore the high frequencies that music has lost.

    import upband
    restored, rate = upband.enhance(audio, sample_rate)      # numpy or torch, [C, T] or [T]
    upband.enhance_file("song.mp3", "song.upband.flac")

Audio arrays throughout are float32 ``[C, T]`` (channels first). See ``upband.inference`` for
enhancement, ``upband.audio`` for I/O, ``upband.degrade`` for the degradation simulator and the
bandwidth detector, ``upband.metrics`` for the papers' metrics, ``upband.models`` for the
networks.
"""

from __future__ import annotations

import os
from importlib.metadata import PackageNotFoundError, version
from typing import Any

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

__all__ = ["UpbandError", "__version__", "enhance", "enhance_file"]


def __getattr__(name: str) -> Any:
    """``upband.enhance`` and ``upband.enhance_file``, imported on first use (they need torch)."""
    if name in ("enhance", "enhance_file"):
        from upband import inference

        return getattr(inference, name)
    raise AttributeError(f"module 'upband' has no attribute {name!r}")
