"""The route one signal takes, decided in one place, and the streaming pipeline that follows it.

::

    input blocks ──resample──> model rate ──model stage──> model rate ──resample──┐
         │                                                                     v
         └──resample──> output rate ──> Compensation ──> LevelGuard ──> BandMerge ──> output

:func:`choose_route` makes every decision about one input once: the output rate
(:func:`output_rate` unless given), whether the model runs at all (not on an input that is
already full band for the output rate, or silent, or whose roll-off is as gentle as music's
own: pass-through), where the do-no-harm merge crosses over and whether the level guard
bounds the model's band first. :class:`Pipeline` follows a :class:`Route` block by block;
every stage streams ``[C, n]`` float32 blocks, so an hour of audio never sits in memory. The
array path (:func:`upband.enhancement.enhance`) and the file path
(:func:`upband.enhancement.enhance_file`) both use them.

The model enters the pipeline through one function, :func:`model_stage`, which sees the whole
route (the detected cutoff included) and returns a :class:`Stage`: a later stage (phase repair
of the model's output, a stochastic model drawn with a seed, a model told the cutoff) wraps or
replaces it there, without the file driver changing.

Channels: the model (stereo for the shipped ones) sees a stereo input as a pair, more channels
as pairs in their order (5.1: L/R, C/LFE, Ls/Rs) and a channel left over (or a mono input) as
"dual mono", see :class:`upband.models.base.WaveModel`; the level guard then bounds each
channel on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from upband import audio
from upband.analysis import Bandwidth
from upband.enhancement.chunking import ChunkRunner
from upband.enhancement.compensation import Compensation, applies, compensate
from upband.enhancement.guard import (
    FILL_BRICKWALL_DB,
    FILL_DB,
    FILL_LOSSY_DB,
    FILL_MIN_CUTOFF_HZ,
    QUIET_FILL_DB,
    LevelGuard,
)
from upband.enhancement.loading import default_batch_size
from upband.enhancement.merge import MERGE_TRANSITION, BandMerge
from upband.enhancement.settings import Settings
from upband.models.base import WaveModel

#: Rates at which a low-rate input is said to be of the 48 kHz family.
RATE_FAMILY_48K = frozenset({8000, 16000, 24000, 32000})


def output_rate(input_rate: int) -> int:
    """The input's rate from 44.1 kHz up; else 44.1 kHz, or 48 kHz for the 48 kHz family."""
    if input_rate >= 44100:
        return input_rate
    return 48000 if input_rate in RATE_FAMILY_48K else 44100


@dataclass(frozen=True)
class Route:
    """What :class:`Pipeline` does to one signal (rates in Hz).

    ``passthrough``: the model does not run (the input is already full band for
    ``output_rate``, or silent); the output is the input, resampled if the rates differ.
    ``merge_cutoff_hz``: where the merge hands over from the input to the model (None: no
    merge, the model's output is used for the whole band). ``guard``: the model's band is
    bounded by the input's own level first (:class:`~upband.enhancement.guard.LevelGuard`).
    ``own_rolloff``: the detected roll-off may be the music's own
    (:attr:`~upband.analysis.Bandwidth.own_rolloff`) and was not taken for a cutoff: the input
    counts as full band up to its own Nyquist. ``compensate``: the fitted filter's roll-off is
    undone where the input still holds the band
    (:mod:`~upband.enhancement.compensation`, :func:`~upband.enhancement.compensation.applies`).
    ``fill``: the guard also fills its band with noise up to ``FILL_DB`` (``FILL_LOSSY_DB``
    after a lossy codec, ``FILL_BRICKWALL_DB`` after another sharp shelf; closer in quiet
    frames) under the band-level predictor's level
    (:mod:`~upband.enhancement.guard`); only from a cutoff of ``FILL_MIN_CUTOFF_HZ`` up.
    """

    input_rate: int
    output_rate: int
    model_rate: int
    channels: int
    bandwidth: Bandwidth
    passthrough: bool
    merge_cutoff_hz: float | None
    guard: bool = False
    model_channels: int = 2
    own_rolloff: bool = False
    compensate: bool = False
    fill: bool = False

    @property
    def fill_db(self) -> float | None:
        """The guard's fill level (dB under the predicted level), None without it. After a
        codec the fill may come closer: what the codec's noise costs the SNR below the
        cutoff dwarfs what the fill's error costs above it. After another sharp shelf,
        halfway: most are a codec's whose holes the detector missed (the guard's module
        doc)."""
        if not (self.fill and self.guard):
            return None
        return {"lossy": FILL_LOSSY_DB, "brickwall": FILL_BRICKWALL_DB}.get(
            self.bandwidth.codec, FILL_DB)

    @property
    def quiet_fill_db(self) -> float:
        """How close to the prediction the guard's fill may come in quiet frames (dB under
        it): after a sharp shelf as close as after a lossy codec."""
        return FILL_LOSSY_DB if self.bandwidth.codec == "brickwall" else QUIET_FILL_DB

    def level_guard(self, channels: int) -> LevelGuard:
        """The level guard of this route's model band (its cutoff, rate and fill), for
        ``channels`` channels; only on a route with a merge."""
        assert self.merge_cutoff_hz is not None
        return LevelGuard(self.merge_cutoff_hz, self.output_rate, channels,
                          joint=self.joint_channels, fill_db=self.fill_db,
                          quiet_fill_db=self.quiet_fill_db)

    @property
    def joint_channels(self) -> bool:
        """The channels go through the model together (a stereo file and a stereo model);
        otherwise each is enhanced on its own, and so are the stages after the model."""
        return self.channels == self.model_channels

    @property
    def copies_input(self) -> bool:
        """The output is the input's own samples: pass-through at the input's own rate. Such
        an output is written as it is; every other output is new audio, which gets the clip
        policy and (to 16-bit) dither."""
        return self.passthrough and self.output_rate == self.input_rate

    def describe(self) -> tuple[str, str]:
        """``(status, message)`` of the report: ``enhanced`` or ``passthrough``, and why."""
        found = self.bandwidth
        why = (f"{found.summary()}; taken for the music's own timbre (--enhance-gentle "
               "enhances it anyway)") if self.own_rolloff else f"already {found.summary()}"
        if self.copies_input:
            return "passthrough", f"{why}: copied through unchanged"
        if self.passthrough:
            return "passthrough", (f"{why}: resampled from {self.input_rate} Hz to "
                                   f"{self.output_rate} Hz, not enhanced")
        if self.own_rolloff:
            return "enhanced", (f"{why}: extended above {self.input_rate / 2000:.2f} kHz only, "
                                f"at {self.output_rate} Hz")
        if found.full_band:  # full band at a low rate: the band above its Nyquist is new
            return "enhanced", (f"full band at {self.input_rate} Hz (to "
                                f"{found.cutoff_hz / 1000:.1f} kHz); extended to "
                                f"{self.output_rate / 2000:.2f} kHz at {self.output_rate} Hz")
        return "enhanced", found.summary()


def choose_route(bandwidth: Bandwidth, input_rate: int, channels: int, model: WaveModel,
                 settings: Settings) -> Route:
    """Decide output rate, pass-through and merge cutoff for one input (rates in Hz)."""
    rate = settings.output_rate or output_rate(input_rate)
    own = settings.pass_gentle and bandwidth.own_rolloff
    # a roll-off of the music's own: the input is full band to its own Nyquist
    full = bandwidth.full_band_at(rate) or (own and input_rate >= rate)
    cutoff = None
    if settings.merge and not full:
        found = input_rate / 2 if own else bandwidth.cutoff_hz
        cutoff = min(found, rate / 2 / (1 + MERGE_TRANSITION) * 0.999)
        if input_rate < rate:
            # upsampled, the input's content ends at the resampler's pass band, below its own
            # Nyquist: the merge hands over before that, or a hole opens between the bands
            cutoff = min(cutoff, audio.PASSBAND * input_rate / 2 / (1 + MERGE_TRANSITION))
    return Route(input_rate, rate, model.sample_rate, channels, bandwidth, full, cutoff,
                 guard=settings.guard and cutoff is not None, model_channels=model.channels,
                 own_rolloff=own,
                 compensate=settings.compensate and cutoff is not None and not own
                 and applies(bandwidth),
                 fill=settings.fill and cutoff is not None and cutoff >= FILL_MIN_CUTOFF_HZ)


def route_output(route: Route, x: np.ndarray, m: np.ndarray) -> np.ndarray:
    """What the pipeline makes of a whole input and the model's whole output, for a caller
    that ran the model itself at the output rate (training validation scores what ships).

    Args:
        route: from :func:`choose_route`, with ``output_rate`` equal to the rate of both.
        x: the input, float32 ``[C, T]``.
        m: the model's output for ``x``, float32 ``[C, T]``.

    Returns:
        ``x`` on a pass-through route, ``m`` when there is no merge, else the do-no-harm band
        merge of the two (:class:`~upband.enhancement.merge.BandMerge`), float32 ``[C, T]``.
    """
    if route.passthrough:
        return x
    if route.merge_cutoff_hz is None:
        return m
    if route.compensate:
        x, m = compensate(route.bandwidth, route.output_rate, x, m)
    if route.guard:
        x, m = route.level_guard(x.shape[0]).push(x, m, last=True)
    return BandMerge(route.merge_cutoff_hz, route.output_rate, x.shape[0]).push(x, m, last=True)


class Stage(Protocol):
    """A streaming step at the model's rate: ``push(block, last)`` takes float32 ``[C, n]``
    blocks and returns the output samples that are final; after ``last=True`` the outputs add
    up to exactly the input's length."""

    def push(self, block: np.ndarray, last: bool = False) -> np.ndarray:
        """Feed ``block``; return the final output samples (float32 ``[C, m]``)."""
        ...


def model_stage(model: WaveModel, route: Route, settings: Settings) -> Stage:
    """The model as a pipeline stage: the model's output enters the pipeline here only.

    Today the chunked model (:class:`~upband.enhancement.chunking.ChunkRunner`) with the chunk,
    overlap and batch size of ``settings``; a model that takes the cutoff is told where the
    merge hands over (:attr:`Route.merge_cutoff_hz`: the detected cutoff, or the resampler's
    pass band for an upsampled input), the band it must restore starts there. A stochastic
    network (``stochastic = True``, also inside a wrapper) draws its noise from
    ``settings.seed``, once for the whole stream: every chunk and channel gets the same noise,
    so a chunked run equals one pass and the same seed gives the same output.
    """
    for net in model.modules():
        if getattr(net, "stochastic", False):
            setattr(net, "seed", settings.seed)  # noqa: B010 (nn.Module types its attributes)
    rate = route.model_rate
    return ChunkRunner(model, route.channels, chunk=int(settings.chunk_seconds * rate),
                       overlap=int(settings.overlap_seconds * rate),
                       batch_size=settings.batch_size or default_batch_size(model),
                       cutoff_hz=route.merge_cutoff_hz if model.takes_cutoff else None)


class Pipeline:
    """Input blocks in, output blocks out, along ``route``: resample, ``stage``, resample, merge.

    ``stage`` (see :func:`model_stage`) is None for a pass-through route.
    """

    def __init__(self, route: Route, stage: Stage | None) -> None:
        if stage is None and not route.passthrough:
            raise ValueError("a route that runs the model needs its stage (model_stage)")
        self.route = route
        c, sr_in, sr_out, sr_m = route.channels, route.input_rate, route.output_rate, \
            route.model_rate
        self._direct = audio.StreamResampler(sr_in, sr_out, c)
        self._stage = None if route.passthrough else stage
        self._merge = None
        #: the roll-off compensation (None: not on this route, or nothing to compensate)
        self.compensation: Compensation | None = None
        #: the level guard of the model's band (None: not on this route)
        self.guard: LevelGuard | None = None
        if self._stage is not None:
            self._to_model = audio.StreamResampler(sr_in, sr_m, c)
            self._from_model = audio.StreamResampler(sr_m, sr_out, c)
            if route.merge_cutoff_hz is not None:
                self._merge = BandMerge(route.merge_cutoff_hz, sr_out, c)
                if route.compensate:
                    self.compensation = Compensation.for_input(route.bandwidth, sr_out, c)
                if route.guard:
                    self.guard = route.level_guard(c)
        self._x = np.zeros((c, 0), np.float32)
        self._m = np.zeros((c, 0), np.float32)

    @property
    def frames_in(self) -> int:
        """Input frames pushed so far."""
        return self._direct.frames_in

    @classmethod
    def build(cls, model: WaveModel, route: Route, settings: Settings) -> Pipeline:
        """The pipeline of ``route`` with ``model`` as its stage (:func:`model_stage`)."""
        return cls(route, None if route.passthrough else model_stage(model, route, settings))

    def push(self, block: np.ndarray, last: bool = False) -> np.ndarray:
        """Feed input ``[C, n]`` at the input rate; return the final output samples
        (float32 ``[C, m]``, output rate). After ``last=True`` the outputs add up to exactly
        ``resampled_length(input frames, input rate, output rate)``.

        The same as :meth:`back` of :meth:`front`: a driver may run the two halves in
        different threads, one block apart (each half's state is its own)."""
        x, m = self.front(block, last=last)
        return self.back(x, m, last=last)

    def front(self, block: np.ndarray, last: bool = False
              ) -> tuple[np.ndarray, np.ndarray | None]:
        """The first half of :meth:`push`: resampling, the model and the roll-off
        compensation; returns the input at the output rate and the model's output (None on a
        pass-through route), aligned with each other where the route merges them."""
        x = self._direct.process(block, last=last)
        if self._stage is None:
            return x, None
        m = self._from_model.process(self._stage.push(self._to_model.process(block, last=last),
                                                      last=last), last=last)
        if last:  # two roundings (in -> model -> out rate) can miss the exact length by one
            total = self._direct.frames_out
            m = audio.fit_length(m, max(0, total - (self._from_model.frames_out - m.shape[1])))
        if self._merge is None:
            return x, m
        self._x = np.concatenate([self._x, x], axis=1)
        self._m = np.concatenate([self._m, m], axis=1)
        n = min(self._x.shape[1], self._m.shape[1])
        x, m = self._x[:, :n], self._m[:, :n]
        self._x, self._m = self._x[:, n:], self._m[:, n:]
        if self.compensation is not None:
            x, m = self.compensation.push(x, m, last=last)
        return x, m

    def back(self, x: np.ndarray, m: np.ndarray | None, last: bool = False) -> np.ndarray:
        """The second half of :meth:`push`: level guard and merge of what :meth:`front` gave,
        in the same order."""
        if m is None:
            return x
        if self._merge is None:
            return m
        if self.guard is not None:
            x, m = self.guard.push(x, m, last=last)
        return self._merge.push(x, m, last=last)
