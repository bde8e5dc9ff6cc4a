"""What the detector finds (:mod:`upband.analysis.detect`): :class:`Bandwidth`, the fit behind
it (:class:`Rolloff`), and the rules that read it: full band (:func:`reaches_full_band`), a
roll-off gentle enough to be music's own (:attr:`Bandwidth.gentle`) and, more widely, one that
may be the instrument's own (:attr:`Bandwidth.own_rolloff`). The method and the measurements
behind each threshold are in the detector's module doc.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

#: A cutoff at or above this fraction of Nyquist, or at or above ``FULL_BAND_HZ`` (the end of
#: what listeners hear, and where 48/96 kHz masters from 44.1 kHz sources stop), is full band.
FULL_BAND_FRACTION = 0.85
FULL_BAND_HZ = 19_000.0
#: A fitted Butterworth up to this order is a gentle roll-off (``Bandwidth.gentle``).
GENTLE_ORDER = 4
#: A roll-off after a trend rising faster than this (dB per octave) is a resonance's own
#: (``Bandwidth.own_rolloff``).
OWN_SLOPE_DB = 16.0
#: A roll-off below this (Hz) is the instrument's own (``Bandwidth.own_rolloff``).
OWN_MIN_CUTOFF_HZ = 2000.0


def reaches_full_band(cutoff_hz: float, sample_rate: int) -> bool:
    """Whether content up to ``cutoff_hz`` (Hz) is full band for a signal at ``sample_rate`` (Hz):
    the cutoff reaches ``FULL_BAND_FRACTION`` of that rate's Nyquist or ``FULL_BAND_HZ``."""
    return cutoff_hz >= min(FULL_BAND_FRACTION * sample_rate / 2, FULL_BAND_HZ)


@dataclass(frozen=True)
class Rolloff:
    """The fit behind a cutoff: the long-term spectrum in 1/48-octave bands (``bands`` Hz,
    ``level`` dB), the power-law trend ``trend_db + slope_db * log2(f / 1 kHz)`` fitted under
    the template, and the floor (dB) the transition sinks into (the 5th percentile of the bands
    above the cutoff: the recording's noise floor there). What roll-off compensation
    (:mod:`upband.enhancement.compensation`) needs to undo the fitted filter."""

    bands: tuple[float, ...]
    level: tuple[float, ...]
    trend_db: float
    slope_db: float
    floor_db: float

    def trend(self, freqs: np.ndarray) -> np.ndarray:
        """The fitted trend at ``freqs`` (Hz, > 0), dB."""
        return self.trend_db + self.slope_db * np.log2(np.asarray(freqs) / 1000.0)


@dataclass(frozen=True)
class Bandwidth:
    """What the detector found. Frequencies in Hz; ``cutoff_hz`` is Nyquist when full band.

    ``full_band`` is full band *for the recording's own rate* (``sample_rate``); whether it is
    full band for another rate (an output rate) is :meth:`full_band_at`. ``rolloff`` is the
    fit behind a cutoff below full band (None otherwise); it is not part of :meth:`to_dict`.
    """

    sample_rate: int
    cutoff_hz: float
    full_band: bool
    silent: bool
    template: str
    fit_error_db: float
    hole_excess: float
    codec: str
    rolloff: Rolloff | None = field(default=None, repr=False, compare=False)

    @property
    def nyquist(self) -> float:
        """Half the recording's rate (Hz)."""
        return self.sample_rate / 2

    def full_band_at(self, sample_rate: int) -> bool:
        """Whether this content (or silence) already fills a signal at ``sample_rate`` (Hz);
        ``full_band_at(self.sample_rate) == full_band``."""
        return self.silent or reaches_full_band(self.cutoff_hz, sample_rate)

    @property
    def gentle(self) -> bool:
        """The fitted roll-off is as gentle as music's own (Butterworth order 4 or a Bessel
        shape): it may be the recording's timbre, not a filter's or a codec's (module doc)."""
        if self.silent or self.full_band:
            return False
        family, _, order = self.template.partition(":")
        return family == "bessel" or (family == "butter" and order.isdigit()
                                      and int(order) <= GENTLE_ORDER)

    @property
    def own_rolloff(self) -> bool:
        """The roll-off may be the music's own, not a filter's or a codec's: gentle
        (:attr:`gentle`), after a trend rising faster than ``OWN_SLOPE_DB`` per octave (a
        resonance, also where a codec's shelf ends it), or, with no codec's shelf, below
        ``OWN_MIN_CUTOFF_HZ`` (module doc). Enhancement passes such an input through by
        default."""
        if self.gentle:
            return True
        if self.silent or self.full_band:
            return False
        rising = self.rolloff is not None and self.rolloff.slope_db > OWN_SLOPE_DB
        return rising or (self.codec == "none" and self.cutoff_hz < OWN_MIN_CUTOFF_HZ)

    def to_dict(self) -> dict[str, Any]:
        record = asdict(self)
        del record["rolloff"]
        return record

    def summary(self) -> str:
        """One line for ``upband info`` and verbose ``enhance``."""
        if self.silent:
            return "silent"
        if self.full_band:
            return "full band"
        if self.codec != "none" and self.own_rolloff:  # a resonance the shelf ends
            return (f"band-limited at {self.cutoff_hz / 1000:.1f} kHz, a sharp shelf after a "
                    "steeply rising spectrum: may be the instrument's own")
        kind = {"lossy": ", sharp shelf with spectral holes: looks like a lossy codec",
                "brickwall": ", sharp shelf: resampled or brick-wall filtered",
                "none": (", gentle roll-off: may be the music's own" if self.gentle else
                         ", roll-off: may be the instrument's own" if self.own_rolloff else "")
                }[self.codec]
        return f"band-limited at {self.cutoff_hz / 1000:.1f} kHz{kind}"
