"""The one chunking function: a model over a stream of blocks, equal to one pass over it.

Chunk cores of ``chunk`` samples start on multiples of the model's total stride (a strided U-Net
is not shift-invariant, so this is what makes chunks see exactly what one pass sees), each chunk
is run with ``context`` samples of real neighbouring audio on both sides (at least the receptive
field, rounded up to the stride), and consecutive chunks overlap by ``overlap`` samples that are
cross-faded with linear weights normalised by their sum. At the track's start and end a chunk
has no context and is padded exactly as a one-pass run would be. The result equals one pass over
the whole signal (tested: max abs difference <= 1e-4 for every architecture). Only the chunks go
to the model's device; the stream stays on the CPU.
"""

from __future__ import annotations

import numpy as np
import torch

from upband.models.base import WaveModel


def _round_up(n: int, step: int) -> int:
    return -(-n // step) * step


class ChunkRunner:
    """Runs ``model`` over a stream of ``[C, n]`` blocks in stride-aligned overlapping chunks.

    ``chunk`` and ``overlap`` are in samples (rounded to the model's stride); the context on
    each side is the receptive field rounded up to the stride. ``push(block, last)`` returns
    every output sample that is final so far; after ``last=True`` the outputs add up to exactly
    the input's length. Only the chunks go to ``device``; the stream stays on the CPU.
    ``cutoff_hz`` (the stream's detected cutoff) is handed to every chunk of a model that
    :attr:`~upband.models.base.WaveModel.takes_cutoff`.
    """

    def __init__(self, model: WaveModel, channels: int, *, chunk: int, overlap: int = 0,
                 batch_size: int = 1, device: torch.device | None = None,
                 cutoff_hz: float | None = None) -> None:
        stride = model.stride
        self.model, self.channels, self.cutoff_hz = model, channels, cutoff_hz
        self.device = device or next(model.parameters()).device
        self.context = _round_up(max(model.receptive_field, 1), stride)
        self.chunk = _round_up(max(chunk, stride), stride)
        self.overlap = min(_round_up(max(overlap, 0), stride), self.chunk // 2 // stride * stride)
        self.hop = self.chunk - self.overlap
        self.batch_size = max(1, batch_size)
        self._buf = np.zeros((channels, 0), np.float32)  # input from self._buf_start
        self._buf_start = 0
        self._total: int | None = None  # input length, known once last=True
        self._next = 0  # next chunk index
        self._acc = np.zeros((channels, 0), np.float64)  # weighted outputs from self._emitted
        self._wsum = np.zeros(0, np.float64)
        self._emitted = 0
        self._ramp = (np.arange(1, self.overlap + 1) / (self.overlap + 1)).astype(np.float64)

    @property
    def received(self) -> int:
        """Input samples pushed so far."""
        return self._buf_start + self._buf.shape[1]

    def push(self, block: np.ndarray, last: bool = False) -> np.ndarray:
        """Feed input; return the output samples that are final (``[C, m]`` float32)."""
        block = np.asarray(block, np.float32)
        self._buf = np.concatenate([self._buf, block], axis=1)
        if last:
            self._total = self.received
        ready: list[int] = []
        while self._chunk_ready(self._next + len(ready)):
            ready.append(self._next + len(ready))
            if len(ready) == self.batch_size or self._is_last_chunk(ready[-1]):
                self._run(ready)
                ready = []
        if ready:
            self._run(ready)
        return self._emit()

    def _core(self, k: int) -> tuple[int, int]:
        start = k * self.hop
        end = start + self.chunk
        return start, end if self._total is None else min(end, self._total)

    def _exists(self, k: int) -> bool:
        """Whether chunk ``k`` is part of the plan (always, until the length is known)."""
        if self._total is None:
            return True
        return self._total > 0 if k == 0 else (k - 1) * self.hop + self.chunk < self._total

    def _is_last_chunk(self, k: int) -> bool:
        return self._total is not None and k * self.hop + self.chunk >= self._total

    def _chunk_ready(self, k: int) -> bool:
        if self._total is not None:
            return self._exists(k)
        return k * self.hop + self.chunk + self.context <= self.received

    def _window(self, k: int) -> tuple[int, int]:
        start, end = self._core(k)
        stop = end + self.context
        if self._total is not None:
            stop = min(stop, self._total)
        return max(0, start - self.context), stop

    def _run(self, ks: list[int]) -> None:
        windows = [self._window(k) for k in ks]
        groups: dict[int, list[int]] = {}
        for k, (a, b) in zip(ks, windows, strict=True):
            groups.setdefault(b - a, []).append(k)
        for ks_same in groups.values():
            wins = [self._window(k) for k in ks_same]
            x = np.stack([self._buf[:, a - self._buf_start:b - self._buf_start]
                          for a, b in wins])
            with torch.inference_mode():
                y = self.model(torch.from_numpy(x).to(self.device), self.cutoff_hz)
                y = y.float().cpu().numpy()
            for k, (a, _), out in zip(ks_same, wins, y, strict=True):
                self._accumulate(k, a, out)
        self._next = ks[-1] + 1
        keep_from = self._window(self._next)[0] if not self._is_last_chunk(ks[-1]) else \
            self.received
        drop = max(0, keep_from - self._buf_start)
        self._buf = self._buf[:, drop:]
        self._buf_start += drop

    def _accumulate(self, k: int, window_start: int, out: np.ndarray) -> None:
        start, end = self._core(k)
        piece = out[:, start - window_start:end - window_start].astype(np.float64)
        w = np.ones(end - start)
        if k > 0 and self.overlap:
            n = min(self.overlap, end - start)
            w[:n] = self._ramp[:n]
        if not self._is_last_chunk(k) and self.overlap:
            w[-self.overlap:] = np.minimum(w[-self.overlap:], self._ramp[::-1])
        need = end - self._emitted
        if need > self._acc.shape[1]:
            grow = need - self._acc.shape[1]
            self._acc = np.concatenate([self._acc, np.zeros((self.channels, grow))], axis=1)
            self._wsum = np.concatenate([self._wsum, np.zeros(grow)])
        a, b = start - self._emitted, end - self._emitted
        self._acc[:, a:b] += piece * w
        self._wsum[a:b] += w

    def _emit(self) -> np.ndarray:
        done = self._total is not None and not self._exists(self._next)
        # samples before the next chunk's core get no more contributions
        final = self._acc.shape[1] if done else max(0, self._next * self.hop - self._emitted)
        final = min(final, self._acc.shape[1])
        out = self._acc[:, :final] / np.maximum(self._wsum[:final], 1e-12)
        self._acc, self._wsum = self._acc[:, final:], self._wsum[final:]
        self._emitted += final
        return out.astype(np.float32)


def run_chunked(model: WaveModel, wav: np.ndarray, *, chunk: int, overlap: int = 0,
                batch_size: int = 1, cutoff_hz: float | None = None) -> np.ndarray:
    """Apply ``model`` to float ``wav`` ``[C, T]`` at the model's rate in chunks of ``chunk``
    samples overlapping by ``overlap`` (see :class:`ChunkRunner`); returns float32 ``[C, T]``."""
    runner = ChunkRunner(model, wav.shape[0], chunk=chunk, overlap=overlap,
                         batch_size=batch_size, cutoff_hz=cutoff_hz)
    return runner.push(wav, last=True)
