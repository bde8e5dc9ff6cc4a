"""Channel layout: mono duplicated to many channels, many downmixed to mono."""

from __future__ import annotations

import numpy as np


def to_channels(audio: np.ndarray, channels: int) -> np.ndarray:
    """Convert ``[C, T]`` to ``[channels, T]``: mono is duplicated, anything is downmixed to mono
    by averaging; other conversions are refused."""
    a = np.asarray(audio, dtype=np.float32)
    c = a.shape[0]
    if c == channels:
        return a
    if channels == 1:
        return a.mean(axis=0, keepdims=True)
    if c == 1:
        return np.repeat(a, channels, axis=0)
    raise ValueError(f"cannot convert {c} channels to {channels}")
