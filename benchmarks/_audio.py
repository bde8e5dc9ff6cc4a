"""Synthetic test music for the benchmarks: band-limited, music-like, written block by block."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from upband import audio
from upband.degrade import lowpass


def music_block(seconds: float, sr: int, seed: int) -> np.ndarray:
    """Stereo harmonic notes plus noise bursts, low-passed at 11 025 Hz (Chebyshev-I 6)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    t = np.arange(n) / sr
    x = np.zeros((2, n))
    for f0 in rng.uniform(80, 600, 5):
        env = np.exp(-t * rng.uniform(0.2, 2.0)) * (t < rng.uniform(1, seconds))
        for k in range(1, 30):
            x += env * rng.uniform(0.1, 1, (2, 1)) / k * np.sin(2 * np.pi * f0 * k * t
                                                                  + rng.uniform(0, 6.3, (2, 1)))
    x += 0.2 * rng.standard_normal((2, n)) * (rng.random(n) < 0.3)
    x = lowpass(x, sr, 11025.0, "cheby1:6")
    return (0.4 * x / max(float(np.max(np.abs(x))), 1e-9)).astype(np.float32)


def write_music(path: Path, seconds: float, sr: int = 44100, block_seconds: float = 10.0) -> Path:
    """Write ``seconds`` of music to ``path`` (16-bit) in blocks, so memory stays small.

    Six distinct blocks are cycled (an hour takes seconds to make instead of minutes)."""
    if path.exists() and abs(audio.info(path).duration - seconds) < 1e-3:
        return path
    blocks = [music_block(block_seconds, sr, seed) for seed in range(6)]
    with audio.AudioWriter(path, sr, 2, subtype="PCM_16", overwrite=True) as w:
        done, i = 0, 0
        total = round(seconds * sr)
        while done < total:
            block = blocks[i % len(blocks)][:, :total - done]
            w.write(block)
            done += block.shape[1]
            i += 1
    return path
