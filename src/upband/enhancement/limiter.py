"""The look-ahead peak limiter of the default clip mode (``limit``): it lowers the gain only
around the samples above full scale and leaves every other sample exactly as it is.

Scaling a whole output down because a few samples went over (``rescale``) changes every sample
of the file and needs the file's peak, so a second pass; clipping (``clamp``) distorts. The
limiter instead works in one streaming pass and touches only the neighbourhood of each *over*
(a frame whose largest absolute sample, across channels, is above :data:`CEILING`):

* one gain for all channels (linked), so the stereo image does not move;
* the gain ramps down linearly over the ``LOOKAHEAD_SECONDS`` before an over and is low
  enough at the over itself to bring it to the ceiling, so no sample is ever above it;
* it stays down for ``HOLD_SECONDS`` after the over, then ramps back up linearly over
  ``RELEASE_SECONDS``; after that it is exactly 1 and the samples are the input's, bit for bit.

Around a lone over exactly the frames from the look-ahead before it to the hold and release
after it change; however close the overs, no frame farther than look-ahead + hold + release
from every over does (:attr:`PeakLimiter.reach`).

How the gain is made, without a loop over samples: each frame's required reduction
``d = 1 - CEILING / peak`` (0 below the ceiling) is rounded *up* to a multiple of
``2^-GRID_BITS`` and held as an integer, then two envelopes are formed from it, each a sliding
maximum (:func:`scipy.ndimage.maximum_filter1d`) followed by a moving average whose window lies
inside the maximum's span -- so at every over each envelope is at least the reduction that over
needs:

* the *attack* envelope: maximum over ``[n - hold - release, n + lookahead]``, averaged over
  ``[n - lookahead, n]``: a ramp over the look-ahead, then flat until the release has ended;
* the *release* envelope: maximum over ``[n - hold, n + release]``, averaged over
  ``[n - release, n]``: a long ramp up to the over, the hold, then the release ramp.

The reduction applied is the smaller of the two: the attack envelope's short ramp before an
over, the release envelope's long one after it. Neighbouring overs closer than the release
merge into one dip instead of letting the gain pump between them. The integer sums are exact,
so block boundaries do not change the output: streamed in any blocks it equals one pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import maximum_filter1d

#: Largest absolute output sample: the float32 nearest to 0.999 (-0.0087 dBFS), a margin under
#: full scale that 16-bit dither and 24-bit rounding cannot cross.
CEILING = float(np.float32(0.999))
#: The gain's ramp down before an over, how long it stays down after it, and its ramp back up.
LOOKAHEAD_SECONDS = 0.0015
HOLD_SECONDS = 0.005
RELEASE_SECONDS = 0.030
#: Reductions are held as integer multiples of 2^-GRID_BITS (rounded up), so their sums are
#: exact whatever the block boundaries.
GRID_BITS = 24
#: Most frames limited in one step (bounds the temporary arrays of one large push).
STEP_FRAMES = 1 << 18


@dataclass
class LimiterStats:
    """What the limiter did to one signal: ``overs``, the frames above the ceiling;
    ``limited``, the frames whose gain was below 1; ``min_gain``, the lowest gain applied."""

    overs: int = 0
    limited: int = 0
    min_gain: float = 1.0

    @property
    def reduction_db(self) -> float:
        """The deepest gain reduction in dB (0: untouched, -0.5: 0.5 dB down at most)."""
        return 20 * math.log10(self.min_gain) if self.min_gain > 0 else -math.inf


class PeakLimiter:
    """Streams the look-ahead limiter: ``push(block, last)`` takes float32 ``[C, n]`` blocks and
    returns the limited samples, ``delay`` frames behind while streaming; after ``last=True``
    the outputs add up to exactly the input's length.

    ``lookahead``, ``hold`` and ``release`` are the gain's three phases in frames at
    ``sample_rate`` (see the module's description); a frame farther than ``reach`` (their sum)
    from every over comes out bit-identical to the input.
    """

    def __init__(self, channels: int, sample_rate: int) -> None:
        self.channels = channels
        self.lookahead = max(1, round(LOOKAHEAD_SECONDS * sample_rate))
        self.hold = round(HOLD_SECONDS * sample_rate)
        self.release = max(self.lookahead, round(RELEASE_SECONDS * sample_rate))
        self.reach = self.lookahead + self.hold + self.release
        #: the release envelope looks ``release`` frames ahead (the attack envelope less)
        self.delay = self.release
        self.stats = LimiterStats()
        # the frames in, not yet out, and their reductions; the reductions of the frames
        # just before them (as far back as the envelopes reach)
        self._x = np.zeros((channels, 0), np.float32)
        self._q = np.zeros(0, np.int64)
        self._past = np.zeros(self.reach, np.int64)

    def push(self, block: np.ndarray, last: bool = False) -> np.ndarray:
        """Feed ``block`` (float ``[C, n]``); return the frames whose gain is now known
        (float32 ``[C, m]``): all that are left once ``last``."""
        block = np.asarray(block, np.float32)
        if block.ndim != 2 or block.shape[0] != self.channels:
            raise ValueError(f"expected [{self.channels}, n] audio, got {block.shape}")
        self._x = np.concatenate([self._x, block], axis=1)
        self._q = np.concatenate([self._q, _reduction(block)])
        outs = [np.zeros((self.channels, 0), np.float32)]
        while (ready := self._q.size - (0 if last else self.delay)) > 0:
            outs.append(self._emit(min(ready, STEP_FRAMES)))
        return outs[0] if len(outs) == 1 else np.concatenate(outs, axis=1)

    def _emit(self, n: int) -> np.ndarray:
        """The next ``n`` frames, limited (their future up to ``delay`` frames is known, or
        taken as silence after the last block)."""
        past, q = self._past, self._q
        future = q[n:n + self.delay]
        context = np.concatenate([past, q[:n], future,
                                  np.zeros(self.delay - future.size, np.int64)])
        x, self._x, self._q = self._x[:, :n], self._x[:, n:], q[n:]
        self._past = context[n:n + past.size]
        if not context.any():
            return x
        reduction = self._envelope(context, past.size, n)
        self.stats.overs += int(np.count_nonzero(q[:n]))
        touched = np.flatnonzero(reduction)
        if touched.size == 0:
            return x
        gain = 1.0 - reduction[touched]
        self.stats.limited += int(touched.size)
        self.stats.min_gain = min(self.stats.min_gain, float(gain.min()))
        y = x.copy()
        y[:, touched] = (x[:, touched].astype(np.float64) * gain).astype(np.float32)
        return y

    def _envelope(self, q: np.ndarray, start: int, n: int) -> np.ndarray:
        """The reduction (float64, ``1 - gain``) of frames ``start .. start + n`` of the
        integer reductions ``q``, which hold every frame those frames' envelopes reach."""
        look, hold, rel = self.lookahead, self.hold, self.release
        attack = _window_sum(_window_max(q, hold + rel, look), start, n, look) / (look + 1)
        release = _window_sum(_window_max(q, hold, rel), start, n, rel) / (rel + 1)
        return np.minimum(attack, release) * 2.0 ** -GRID_BITS


def _reduction(block: np.ndarray) -> np.ndarray:
    """Each frame's required reduction ``1 - CEILING / peak`` as an integer multiple of
    ``2^-GRID_BITS``, rounded up (0 for a frame within the ceiling)."""
    if block.shape[1] == 0:
        return np.zeros(0, np.int64)
    peak = np.max(np.abs(block), axis=0).astype(np.float64)
    over = peak > CEILING
    d = np.zeros_like(peak)
    d[over] = 1.0 - CEILING / peak[over]
    return np.ceil(d * 2.0 ** GRID_BITS).astype(np.int64)


def _window_max(q: np.ndarray, before: int, after: int) -> np.ndarray:
    """``out[i] = max(q[i - before .. i + after])``, zero beyond ``q``'s ends."""
    size = before + after + 1
    return maximum_filter1d(q, size, mode="constant", cval=0, origin=before - size // 2)


def _window_sum(g: np.ndarray, start: int, n: int, before: int) -> np.ndarray:
    """``sum(g[i - before .. i])`` for ``i`` in ``start .. start + n`` (exact integers;
    ``start >= before``)."""
    cs = np.concatenate([np.zeros(1, np.int64), np.cumsum(g)])
    return cs[start + 1:start + n + 1] - cs[start - before:start + n - before]
