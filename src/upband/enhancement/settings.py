"""How to enhance: the defaults, the options shared by arrays and files, and the clip policy.

This module needs neither torch nor scipy, so the command line can build its parser from these
constants without loading them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from upband.audio.header import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE
from upband.errors import SpecError

if TYPE_CHECKING:
    from upband.enhancement.limiter import PeakLimiter

#: Reserved name of the tiny random model used by tests (as demucs' ``demucs_unittest``).
UNITTEST_MODEL = "upband_unittest"
#: ``--model auto``: the default model, or the lossy-codec restorer for an input the detector
#: takes for a lossy codec (:class:`upband.enhancement.loading.CodecRouter`).
AUTO_MODEL = "auto"
#: The shipped MP3 restorer (Lattner & Nistal's generator, docs/models/upband-lattner.md).
LOSSY_PRETRAINED = "upband-lattner"
#: Whether ``--model auto`` sends lossy inputs to :data:`LOSSY_PRETRAINED` unasked: only while
#: the shipped restorer beats the default model on MP3s by ViSQOL, one draw on average, on the
#: held-out test split (its card; true since the 2 300-iteration file of 2026-12-06). Without
#: it a user names the restorer (``--lossy-model``); "better, never worse" comes first.
AUTO_USES_LOSSY_PRETRAINED = True
#: Default seconds of audio per chunk (model rate) and cross-fade between chunks.
CHUNK_SECONDS = 10.0
OVERLAP_SECONDS = 0.25
#: What to do with an output that goes above full scale: lower the gain only around the samples
#: above it (a look-ahead limiter, :mod:`upband.enhancement.limiter`; one pass), scale the whole
#: output down so its peak is full scale (a second pass for a file), clip it sample by sample,
#: or leave it (float outputs keep it). The first is the default.
CLIP_MODES = ("limit", "rescale", "clamp", "none")
#: Name of each output in folder mode: fields ``{stem}`` (the input's name without its
#: extension) and ``{ext}`` (wav or flac).
OUTPUT_TEMPLATE = "{stem}.upband.{ext}"


def default_model_name() -> str:
    """The pretrained model ``enhance`` uses when none is given."""
    # the registry imports torch: kept out of the command line's start-up
    from upband.models.registry import DEFAULT_PRETRAINED

    return DEFAULT_PRETRAINED


@dataclass(frozen=True)
class ClipPolicy:
    """One rule for outputs above full scale, used by the array and the file path alike.

    ``mode`` is one of :data:`CLIP_MODES`. An output that is the input's own samples (a
    full-band input at its own rate) is never touched. Every other output goes, as it streams,
    through the :meth:`limiter` (``limit`` mode only), then gets ``limit(block,
    gain_for(peak))``, ``peak`` being the output's largest absolute sample (a gain other than 1
    in ``rescale`` mode only).
    """

    mode: str = CLIP_MODES[0]

    def __post_init__(self) -> None:
        if self.mode not in CLIP_MODES:
            raise SpecError(f"unknown clip mode {self.mode!r}; choose one of "
                            f"{', '.join(CLIP_MODES)}")

    def gain_for(self, peak: float) -> float:
        """The gain for an output whose peak is ``peak``: ``1 / peak`` when rescaling an output
        above full scale, else 1."""
        return 1.0 / peak if self.mode == "rescale" and peak > 1.0 else 1.0

    def limiter(self, channels: int, sample_rate: int) -> PeakLimiter | None:
        """A new look-ahead limiter for one output in ``limit`` mode, else None."""
        if self.mode != "limit":
            return None
        # scipy: kept out of the command line's start-up
        from upband.enhancement.limiter import PeakLimiter

        return PeakLimiter(channels, sample_rate)

    def limit(self, block: np.ndarray, gain: float = 1.0) -> np.ndarray:
        """``block`` (float32 ``[C, n]``) scaled by ``gain``, then clipped to [-1, 1] in
        ``clamp`` mode."""
        out = block * np.float32(gain) if gain != 1.0 else block
        return np.clip(out, -1.0, 1.0) if self.mode == "clamp" else out


@dataclass(frozen=True)
class Settings:
    """How to enhance one signal; the same for :func:`upband.enhancement.enhance` and
    :func:`upband.enhancement.enhance_file`.

    Attributes:
        output_rate: output sample rate (Hz); None picks it from the input's rate
            (:func:`upband.enhancement.pipeline.output_rate`).
        merge: keep the input below its detected cutoff (the do-no-harm merge).
        chunk_seconds: seconds of audio per model chunk (at the model's rate).
        overlap_seconds: seconds of cross-fade between chunks.
        batch_size: chunks per model call; None: 1 on the CPU, 8 on a GPU.
        clip: what to do above full scale.
        guard: bound the model's band by the input's own level, frame by frame
            (:mod:`upband.enhancement.guard`); only with the merge.
        pass_gentle: a roll-off that may be the music's own, gentle or not
            (:attr:`upband.analysis.Bandwidth.own_rolloff`), is taken for the recording's timbre,
            not a cutoff: such an input is not enhanced below its own Nyquist (False: enhance
            it above the fitted cutoff like any band-limited input).
        compensate: undo the fitted filter's roll-off where the input still holds the band
            above the cutoff (:mod:`upband.enhancement.compensation`; with the merge only).
        fill: with the guard, fill the band above the cutoff with soft noise up to
            ``FILL_DB`` (12 dB; ``FILL_LOSSY_DB``, 3, after a lossy codec;
            ``FILL_BRICKWALL_DB``, 6, after another sharp shelf) under the level the
            band-level predictors give it, closer in frames well under the music's recent
            peak (down to ``QUIET_FILL_DB``, 6 dB; 3 after a sharp shelf), where the model's
            band is fainter (:mod:`upband.enhancement.guard`; from a cutoff of
            ``FILL_MIN_CUTOFF_HZ``, 3 kHz, up), and bring every bin fainter than the input's
            own noise floor up to it (:mod:`upband.enhancement.floor`). Brighter, at a small
            cost in SNR, more on a file whose original had no band there (False: as
            ``upband enhance --no-fill``).
        seed: the noise of a stochastic model (``stochastic = True``, Lattner & Nistal's
            restorer): the same seed gives the same output bit for bit, another seed another
            restoration; deterministic models ignore it.
    """

    output_rate: int | None = None
    merge: bool = True
    chunk_seconds: float = CHUNK_SECONDS
    overlap_seconds: float = OVERLAP_SECONDS
    batch_size: int | None = None
    clip: ClipPolicy = ClipPolicy()
    guard: bool = True
    pass_gentle: bool = True
    seed: int = 0
    compensate: bool = True
    fill: bool = True

    def __post_init__(self) -> None:
        """Refuse values that cannot work (:class:`SpecError`), for the Python API and the
        command line alike (the option's name is in the message)."""
        for value, name, low in ((self.chunk_seconds, "chunk_seconds", 0.0),
                                 (self.overlap_seconds, "overlap_seconds", None)):
            if not (math.isfinite(value) and (value > low if low is not None else value >= 0)):
                flag = "--" + name.replace("_", "-")
                raise SpecError(f"{flag} ({name}) must be a "
                                f"{'positive' if low is not None else 'non-negative'} number of "
                                f"seconds, got {value}")
        if self.batch_size is not None and self.batch_size < 1:
            raise SpecError(f"--batch-size (batch_size) must be at least 1, got "
                            f"{self.batch_size}")
        if self.output_rate is not None and not (
                MIN_SAMPLE_RATE <= self.output_rate <= MAX_SAMPLE_RATE):
            raise SpecError(f"--sample-rate (output rate) must be {MIN_SAMPLE_RATE}-"
                            f"{MAX_SAMPLE_RATE} Hz, got {self.output_rate}")
