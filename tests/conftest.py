"""Shared test fixtures. Audio is synthesised in tmp_path; nothing is downloaded."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

# as upband itself does on import: OpenMP threads that spin steal the CPU from the other test
# processes on a small machine (set before torch is imported by any test module)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@pytest.fixture
def bad_inputs(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """Every bad input of the foundation issue, with the words its error must contain."""
    tmp = tmp_path / "bad"
    tmp.mkdir()
    empty = tmp / "empty.wav"
    empty.write_bytes(b"")
    zero = tmp / "zero.wav"
    sf.write(zero, np.zeros((0, 1), np.float32), 8000)
    garbage = tmp / "garbage.mp3"
    garbage.write_bytes(os.urandom(3000))
    truncated = tmp / "truncated.wav"
    sf.write(truncated, np.zeros((8000, 1), np.float32), 8000)
    truncated.write_bytes(truncated.read_bytes()[:5000])
    m4a = tmp / "song.m4a"
    m4a.write_bytes(b"\x00\x00\x00\x20ftypM4A " + bytes(3000))
    nan = tmp / "nan.wav"
    sf.write(nan, np.full((100, 1), np.nan, np.float32), 8000, subtype="FLOAT")
    (tmp / "folder").mkdir()
    return {
        "missing": (tmp / "missing.flac", "no such file"),
        "directory": (tmp / "folder", "is a directory"),
        "empty": (empty, "file is empty"),
        "zero-length": (zero, "no audio samples"),
        "undecodable": (garbage, "cannot decode"),
        "truncated": (truncated, "truncated"),
        "unsupported": (m4a, "not supported"),
        "non-finite": (nan, "NaN or infinite"),
    }
