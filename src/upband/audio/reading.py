"""Decoding: :class:`AudioReader` (seek, blocks), :func:`read` and :func:`decode_bytes`."""

from __future__ import annotations

import io
from collections.abc import Iterator

import numpy as np
import soundfile as sf

from upband.audio.header import PathLike, _check_input_path, _info_of, _sf_open, check_finite
from upband.errors import DecodeError, EmptyAudioError


class AudioReader:
    """A decoder open on one file, for seeking and reading in blocks.

    >>> with AudioReader("song.flac") as r:          # doctest: +SKIP
    ...     for block in r.blocks(r.info.sample_rate * 10):
    ...         ...                                   # block: float32 [C, <=T]
    """

    def __init__(self, path: PathLike) -> None:
        self.path = _check_input_path(path)
        self._f = _sf_open(self.path)
        try:
            self.info = _info_of(self.path, self._f)
        except BaseException:
            self._f.close()
            raise
        self.position = 0

    def __enter__(self) -> AudioReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._f.close()

    def seek(self, frame: int) -> None:
        """Move to ``frame`` (clamped to the file)."""
        frame = max(0, min(int(frame), self.info.frames))
        try:
            self._f.seek(frame)
        except (sf.LibsndfileError, RuntimeError, ValueError) as err:
            raise DecodeError(f"{self.path}: cannot seek to frame {frame} ({err})") from None
        self.position = frame

    def read(self, frames: int = -1) -> np.ndarray:
        """Decode up to ``frames`` frames (all that remain if -1): float32 ``[C, n]``."""
        try:
            data = self._f.read(frames, dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError, ValueError) as err:
            raise DecodeError(
                f"{self.path}: cannot decode, the file is corrupt or truncated near "
                f"{self.position / self.info.sample_rate:.2f} s ({err})") from None
        out = np.ascontiguousarray(data.T)
        check_finite(out, str(self.path), self.info.sample_rate)
        self.position += out.shape[1]
        return out

    def blocks(self, block_frames: int) -> Iterator[np.ndarray]:
        """Yield consecutive ``[C, <= block_frames]`` blocks from the current position to the end.

        Raises ``DecodeError`` at the end if an exact-length file decoded short (truncation).
        """
        if block_frames <= 0:
            raise ValueError(f"block_frames must be positive, got {block_frames}")
        while True:
            block = self.read(block_frames)
            if block.shape[1] == 0:
                break
            yield block
            if block.shape[1] < block_frames:
                break
        if self.info.frames_exact and self.position < self.info.frames:
            raise DecodeError(
                f"{self.path}: truncated, decoded {self.position} of {self.info.frames} frames")


def read(path: PathLike, *, start: int = 0, frames: int = -1) -> tuple[np.ndarray, int]:
    """Decode a file (or ``frames`` frames from ``start``) to float32 ``[C, T]``.

    Returns ``(audio, sample_rate)``. Raises ``EmptyAudioError`` when nothing is decoded,
    ``DecodeError`` for a corrupt or truncated file and ``NonFiniteAudioError`` for NaN/inf.
    """
    with AudioReader(path) as r:
        if start:
            r.seek(start)
        audio = r.read(frames)
        want = r.info.frames - start if frames < 0 else min(frames, r.info.frames - start)
        if r.info.frames_exact and audio.shape[1] < want:
            raise DecodeError(
                f"{r.path}: truncated, decoded {audio.shape[1]} of {want} frames")
        if audio.shape[1] == 0:
            raise EmptyAudioError(f"{r.path}: contains no audio samples")
        return audio, r.info.sample_rate


def decode_bytes(data: bytes, *, what: str = "encoded audio") -> tuple[np.ndarray, int]:
    """Decode an in-memory file (any format ``read`` accepts) to float32 ``[C, T]``."""
    try:
        with sf.SoundFile(io.BytesIO(data)) as f:
            out = f.read(dtype="float32", always_2d=True).T
            return np.ascontiguousarray(out), int(f.samplerate)
    except (sf.LibsndfileError, RuntimeError) as err:
        raise DecodeError(f"{what}: cannot decode ({err})") from None
