"""Enhancement of an array in memory: :func:`enhance` (``upband.enhance`` itself)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from upband import audio
from upband.analysis import Bandwidth, detect_bandwidth
from upband.enhancement.loading import ModelSpec, PhaseRepair, load_models, pick_model
from upband.enhancement.pipeline import Pipeline, choose_route
from upband.enhancement.settings import (
    CHUNK_SECONDS,
    CLIP_MODES,
    OVERLAP_SECONDS,
    ClipPolicy,
    Settings,
)
from upband.errors import SpecError

#: More channels than this in ``[C, T]`` is taken for a ``[T, C]`` array passed by mistake.
MAX_CHANNELS = 64


def enhance(wav: Any, sample_rate: int, model: ModelSpec = None, *, device: str = "auto",
            output_sample_rate: int | None = None, merge: bool = True,
            chunk_seconds: float = CHUNK_SECONDS, overlap_seconds: float = OVERLAP_SECONDS,
            batch_size: int | None = None, clip_mode: str = CLIP_MODES[0], guard: bool = True,
            pass_gentle: bool = True, phase_repair: PhaseRepair = None,
            bandwidth: Bandwidth | None = None, seed: int = 0, compensate: bool = True,
            fill: bool = True) -> tuple[Any, int]:
    """Restore the high band of ``wav``, a signal in memory.

    The input's effective bandwidth is detected, the model runs at its own rate in chunks, and
    below the detected cutoff the output keeps the input itself (the do-no-harm merge). An
    input already full band for the output rate (or silent) is not enhanced: it comes back
    unchanged, or only resampled if the rate changes.

    Args:
        wav: ``[C, T]`` or ``[T]`` audio, float in [-1, 1], a numpy array or a torch tensor
            (any device), at ``sample_rate``.
        sample_rate: rate of ``wav`` (Hz).
        model: what :func:`~upband.enhancement.load_models` takes: a pretrained name, a
            ``.safetensors`` path, a loaded model, ``"auto"`` or None (the default model).
        device: ``"cpu"``, ``"cuda"`` or ``"auto"`` (CUDA when present).
        output_sample_rate: rate of the result (Hz); None: the input's from 44.1 kHz up, else
            44.1 kHz (48 kHz for 8/16/24/32 kHz inputs).
        merge: keep the input below its detected cutoff (False: the model's output throughout).
        chunk_seconds, overlap_seconds: audio per model call (s, at the model's rate: memory,
            not results) and seconds of cross-fade between chunks.
        batch_size: chunks per model call (None: 1 on the CPU, 8 on a GPU).
        clip_mode: an output above full scale is limited around the samples above it
            (``"limit"``: a look-ahead limiter, :mod:`upband.enhancement.limiter`; every other
            sample is left as it is), scaled down to full scale as a whole (``"rescale"``),
            clipped (``"clamp"``) or left (``"none"``). Not applied to an unchanged input.
        guard: bound the added band by the input's own level (:mod:`upband.enhancement.guard`).
        pass_gentle: take a roll-off that may be the music's own (:attr:`upband.analysis.
            Bandwidth.own_rolloff`) for the recording's timbre (False: enhance it like any other).
        phase_repair: TD-PR phase repair above the cutoff (:mod:`upband.enhancement.phase`;
            True: the shipped vocoder; a vocoder; ``"griffin-lim"``).
        bandwidth: the input's :class:`~upband.analysis.Bandwidth` if known (skips detection).
        seed: the noise of a stochastic model (ignored by deterministic ones).
        compensate, fill: the roll-off compensation; the guard's noise fill.

    Returns:
        ``(enhanced, rate)``: ``enhanced`` of the input's type (numpy, or a CPU tensor) and
        rank (``[C, T']`` or ``[T']``), float32, ``T' = round(T * rate / sample_rate)``;
        ``rate`` in Hz.

    Raises:
        SpecError: bad shape (over ``MAX_CHANNELS`` channels: a ``[T, C]`` array), no samples,
            a rate upband does not read, non-finite samples or unknown ``clip_mode``.
        ModelError: a model that cannot be loaded.
    """
    settings = Settings(output_sample_rate, merge, chunk_seconds, overlap_seconds, batch_size,
                        ClipPolicy(clip_mode), guard, pass_gentle, seed, compensate, fill)
    is_torch = isinstance(wav, torch.Tensor)
    x = (wav.detach().cpu().numpy() if is_torch else np.asarray(wav)).astype(np.float32)
    mono = x.ndim == 1
    x = x[None] if mono else x
    if x.ndim != 2:
        raise SpecError(f"audio must be [C, T] or [T], got shape {tuple(x.shape)}")
    if x.shape[0] > MAX_CHANNELS:
        raise SpecError(f"audio of shape {tuple(x.shape)} would have {x.shape[0]} channels: "
                        "upband takes [C, T] (soundfile.read returns [T, C]: pass its .T)")
    if x.shape[1] == 0:
        raise SpecError(f"audio of shape {tuple(x.shape)} holds no samples")
    if not (isinstance(sample_rate, (int, np.integer)) and
            audio.MIN_SAMPLE_RATE <= sample_rate <= audio.MAX_SAMPLE_RATE):
        raise SpecError(f"sample_rate must be an integer of {audio.MIN_SAMPLE_RATE}-"
                        f"{audio.MAX_SAMPLE_RATE} Hz, got {sample_rate!r}")
    audio.check_finite(x)
    found = bandwidth or detect_bandwidth(x, sample_rate)
    net = pick_model(load_models(model, device=device, phase_repair=phase_repair), found)
    route = choose_route(found, sample_rate, x.shape[0], net, settings)
    y = Pipeline.build(net, route, settings).push(x, last=True)
    if not route.copies_input:
        limiter = settings.clip.limiter(y.shape[0], route.output_rate)
        if limiter is not None:
            y = limiter.push(y, last=True)
        peak = float(np.max(np.abs(y))) if y.size else 0.0
        y = settings.clip.limit(y, settings.clip.gain_for(peak))
    y = y[0] if mono else y
    return (torch.from_numpy(np.ascontiguousarray(y)) if is_torch else y), route.output_rate
