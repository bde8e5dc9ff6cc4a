"""Integrated loudness after ITU-R BS.1770-4: what the listening page matches versions with.

K-weighting (a high shelf of +4 dB above ~1.7 kHz, then a high pass at ~38 Hz) is designed at
the signal's own rate by the bilinear transform of the analogue prototypes that give
BS.1770-4's Tables 1 and 2 at 48 kHz (libebur128's derivation, which reproduces the tables).
Every channel is weighted 1.0 (mono, L, R; upband plays no surround channels here). Gating:
400 ms blocks with 75 % overlap, an absolute gate at −70 LUFS and a relative gate 10 LU below
the loudness of the blocks above it. A signal shorter than one block is measured as one block.
Silence is ``-inf``.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import signal

#: The shelf (centre Hz, gain dB, Q, and the exponent of its band gain) and the high pass
#: (centre Hz, Q) of the K filter, as libebur128 parametrises them: at 48 kHz they give
#: BS.1770-4 Tables 1 and 2 to 1e-12.
SHELF = (1681.974450955533, 3.999843853973347, 0.7071752369554196, 0.4996667741545416)
HIGHPASS = (38.13547087602444, 0.5003270373238773)
#: Block length (s), overlap and gates of BS.1770-4's gated measurement.
BLOCK_S = 0.4
OVERLAP = 0.75
ABSOLUTE_GATE_LUFS = -70.0
RELATIVE_GATE_LU = -10.0
#: The constant of BS.1770-4 eq. 2 (makes a 997 Hz 0 dBFS sine in one channel −3.01 LKFS).
OFFSET_DB = -0.691


def k_filter(sample_rate: int) -> np.ndarray:
    """The K-weighting filter at ``sample_rate`` (Hz) as second-order sections ``[2, 6]``."""
    f0, gain_db, q, exponent = SHELF
    k = math.tan(math.pi * f0 / sample_rate)
    vh = 10 ** (gain_db / 20.0)
    vb = vh**exponent
    a0 = 1.0 + k / q + k * k
    shelf = [(vh + vb * k / q + k * k) / a0, 2.0 * (k * k - vh) / a0,
             (vh - vb * k / q + k * k) / a0, 1.0, 2.0 * (k * k - 1.0) / a0,
             (1.0 - k / q + k * k) / a0]
    f0, q = HIGHPASS
    k = math.tan(math.pi * f0 / sample_rate)
    a0 = 1.0 + k / q + k * k
    highpass = [1.0, -2.0, 1.0, 1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / q + k * k) / a0]
    return np.array([shelf, highpass])


def integrated_loudness(audio: np.ndarray, sample_rate: int) -> float:
    """Gated integrated loudness (LUFS) of ``audio`` (float ``[C, T]`` or ``[T]``, full scale 1).

    Returns ``-inf`` for digital silence or a signal whose every block lies below the absolute
    gate.
    """
    x = np.atleast_2d(np.asarray(audio, dtype=np.float64))
    if x.shape[-1] == 0:
        return -math.inf
    y = signal.sosfilt(k_filter(sample_rate), x, axis=-1)
    block = round(BLOCK_S * sample_rate)
    if y.shape[-1] <= block:
        z = np.mean(y**2, axis=-1, keepdims=True)  # [C, 1]: one block
    else:
        step = max(1, round(block * (1 - OVERLAP)))
        power = np.concatenate([np.zeros((y.shape[0], 1)), np.cumsum(y**2, axis=-1)], axis=-1)
        starts = np.arange(0, y.shape[-1] - block + 1, step)
        z = (power[:, starts + block] - power[:, starts]) / block
    total = z.sum(axis=0)  # channel weights 1.0
    with np.errstate(divide="ignore"):
        block_lufs = OFFSET_DB + 10 * np.log10(total)
    above = total[block_lufs > ABSOLUTE_GATE_LUFS]
    if above.size == 0:
        return -math.inf
    relative = OFFSET_DB + 10 * math.log10(float(above.mean())) + RELATIVE_GATE_LU
    kept = total[(block_lufs > ABSOLUTE_GATE_LUFS) & (block_lufs > relative)]
    return OFFSET_DB + 10 * math.log10(float(kept.mean()))


def matching_gains_db(loudness: list[float | None]) -> list[float]:
    """Gains (dB, all ≤ 0) that bring every version to the loudness of the quietest measured
    one: turning down never clips. Unmeasured or silent versions get 0 dB."""
    finite = [v for v in loudness if v is not None and math.isfinite(v)]
    if not finite:
        return [0.0 for _ in loudness]
    floor = min(finite)
    return [floor - v if v is not None and math.isfinite(v) else 0.0 for v in loudness]
