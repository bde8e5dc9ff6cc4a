"""Array helpers of the level guard's STFT frames (:mod:`upband.enhancement.guard`): bin
powers, overlap-add and a running median along the bins, each faster than the obvious NumPy
call on the guard's shapes (these are most of the time it spends outside its FFTs), and the
random-phase noise of its fill and floor."""

from __future__ import annotations

import numpy as np

__all__ = ["median_line", "overlap_add", "phasors", "power"]


def median_line(level: np.ndarray, width: int) -> np.ndarray:
    """The median of every ``width`` (odd) neighbouring values along the last axis of ``[G,
    K, bins]``, the edges repeated (``ndimage.median_filter``'s ``"nearest"``, a few times
    faster here); a few frames at a time, so the windows' copy stays near 16 MB."""
    half = width // 2
    padded = np.pad(level, [(0, 0), (0, 0), (half, half)], mode="edge")
    out = np.empty(level.shape)
    step = max(1, (1 << 21) // max(1, level.shape[0] * level.shape[2] * width))
    for k in range(0, level.shape[1], step):
        windows = np.lib.stride_tricks.sliding_window_view(padded[:, k:k + step], width, axis=-1)
        out[:, k:k + step] = np.partition(windows, half, axis=-1)[..., half]
    return out


def overlap_add(out: np.ndarray, frames: np.ndarray, hop: int) -> None:
    """Add ``[C, K, n]`` ``frames`` to ``out`` (``[C, >= (K - 1) hop + n]``) at every ``hop``
    (``n`` a multiple of it), in place: one vectorised sum per position of a hop-long piece
    within a frame, in the order a loop over the frames adds them (bit for bit the same)."""
    channels, count, n = frames.shape
    pieces = frames.reshape(channels, count, n // hop, hop)
    segments = out[:, :(count - 1 + n // hop) * hop].reshape(channels, -1, hop)
    # (splitting an axis is always a view of ``out``: the sums land in it)
    for j in reversed(range(n // hop)):  # a segment gets its earliest frame's last piece first
        segments[:, j:j + count] += pieces[:, :, j]


def power(spec: np.ndarray, joint: bool) -> np.ndarray:
    """``|spec|^2`` of ``[C, K, F]`` bins, summed over the channels when ``joint``."""
    p = np.square(spec.real)
    p += np.square(spec.imag)
    return p.sum(axis=0, keepdims=True) if joint else p


def phasors(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Unit-magnitude complex64 values of ``shape`` with phases drawn uniformly from ``rng``:
    noise whose every bin has the magnitude it is scaled to (the guard's fill, the floor)."""
    angle = rng.random(shape, dtype=np.float32) * np.float32(2 * np.pi)
    noise = np.empty(shape, np.complex64)
    noise.real, noise.imag = np.cos(angle), np.sin(angle)
    return noise
