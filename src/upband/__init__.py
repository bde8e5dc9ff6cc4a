"""upband: restore the high frequencies that music has lost.

    import upband
    restored, rate = upband.enhance(audio, sample_rate)      # numpy or torch, [C, T] or [T]
    upband.enhance_file("song.mp3", "song.upband.flac")

Audio arrays throughout are float32 ``[C, T]`` (channels first). See ``upband.enhance`` for
enhancement (its stages: ``from upband.enhancement import ...``), ``upband.analysis`` for the
bandwidth detector, ``upband.audio`` for I/O, ``upband.degrade`` for the degradation simulator,
``upband.metrics`` for the papers' metrics, ``upband.models`` for the networks.
"""

from __future__ import annotations

import os
import sys
import warnings
from typing import TYPE_CHECKING

# OpenMP threads that spin while they wait steal the CPU from everything else on a busy machine:
# under load, arunet-s ran 6x slower and small-chunk inference 60x slower with the default
# policy (benchmarks/speed.py, tests/test_inference.py); passive waiting costs little when idle.
# Effective only if torch is imported after upband (OpenMP reads it once, when torch loads it),
# so a program that imported torch first is told how to get the speed back; a user's own
# setting wins.
if "torch" in sys.modules and "OMP_WAIT_POLICY" not in os.environ:
    warnings.warn("torch was imported before upband, so OpenMP threads spin while they wait: "
                  "on a busy machine enhancement can run several times slower. Import upband "
                  "before torch, or set OMP_WAIT_POLICY=PASSIVE in the environment.",
                  RuntimeWarning, stacklevel=2)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from upband.common.lazy import lazy_names
from upband.common.version import __version__
from upband.errors import UpbandError

if TYPE_CHECKING:
    from upband.enhancement.arrays import enhance
    from upband.enhancement.files import enhance_file

__all__ = ["UpbandError", "__version__", "enhance", "enhance_file"]

#: ``upband.enhance`` and ``upband.enhance_file``: imported on first use (they need torch).
__getattr__ = lazy_names(__name__, {"enhance": "enhancement.arrays",
                                    "enhance_file": "enhancement.files"})
