"""What is wrong with an input: where its real content ends (cutoff) and whether a lossy codec
put the end there (codec signature). Used by enhancement, the corpus builder and evaluation.

``detect_bandwidth(x, sr)`` on an array, ``detect_file(path)`` on a file (excerpts of a long
one), :class:`BandwidthAnalyzer` on a stream of blocks; each gives a :class:`Bandwidth`. The
method is in :mod:`upband.analysis.detect`.
"""

from __future__ import annotations

from upband.analysis.detect import (
    FULL_BAND_FRACTION,
    FULL_BAND_HZ,
    Bandwidth,
    BandwidthAnalyzer,
    detect_bandwidth,
    detect_file,
    fft_size,
    reaches_full_band,
)

__all__ = [
    "FULL_BAND_FRACTION", "FULL_BAND_HZ", "Bandwidth", "BandwidthAnalyzer", "detect_bandwidth",
    "detect_file", "fft_size", "reaches_full_band",
]
