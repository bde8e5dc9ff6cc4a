"""upband.enhancement: the top-level API names, the light defaults, one clip policy."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from upband import audio
from upband.enhancement import CLIP_MODES, UNITTEST_MODEL, enhance, enhance_file
from upband.errors import UpbandError


def test_array_and_file_paths_share_the_clip_policy(tmp_path: Path) -> None:
    t = np.arange(22050 * 2) / 22050
    square = np.sign(np.sin(2 * np.pi * 441 * t))[None].repeat(2, 0).astype(np.float32)
    src = tmp_path / "square.wav"
    audio.write(src, square, 22050, subtype="PCM_16")
    x, _ = audio.read(src)
    peaks = {}
    for mode in CLIP_MODES:
        y, rate = enhance(x, 22050, model=UNITTEST_MODEL, device="cpu", clip_mode=mode)
        enhance_file(src, tmp_path / f"{mode}.wav", UNITTEST_MODEL, device="cpu",
                     clip_mode=mode, bit_depth="32f")
        z, z_rate = audio.read(tmp_path / f"{mode}.wav")
        assert rate == z_rate == 44100
        np.testing.assert_allclose(z, y, atol=1e-6)
        peaks[mode] = float(np.max(np.abs(y)))
    assert peaks["none"] > 1.0 and peaks["rescale"] == pytest.approx(1.0, abs=1e-6)
    assert peaks["clamp"] == 1.0
    with pytest.raises(UpbandError, match="unknown clip mode"):
        enhance(x, 22050, model=UNITTEST_MODEL, device="cpu", clip_mode="loud")


def test_top_level_api_is_the_functions() -> None:
    import upband

    assert upband.enhance is enhance and upband.enhance_file is enhance_file
    package = importlib.import_module("upband.enhancement")
    for name in package.__all__:
        assert getattr(package, name) is not None, name
    # what the command line uses, the defaults without torch
    code = ("import sys, upband; "
            "from upband.enhancement import CHUNK_SECONDS, CLIP_MODES, OUTPUT_TEMPLATE; "
            "assert 'torch' not in sys.modules; "
            "from upband.enhancement import enhance, enhance_file, run_batch, plan_outputs; "
            "import upband.enhancement.pipeline; "
            "assert upband.enhance is enhance and upband.enhance_file is enhance_file; "
            "from upband import enhance as e; assert e is enhance")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("kwargs, words", [
    ({"chunk_seconds": 0.0}, "chunk_seconds) must be a positive number"),
    ({"chunk_seconds": float("inf")}, "chunk_seconds) must be a positive number"),
    ({"overlap_seconds": float("nan")}, "overlap_seconds) must be a non-negative number"),
    ({"batch_size": 0}, "batch_size) must be at least 1"),
    ({"output_sample_rate": -5}, "must be 2000-192000 Hz, got -5"),
])
def test_the_api_refuses_what_the_command_line_refuses(kwargs: dict[str, float],
                                                       words: str) -> None:
    x = np.zeros((2, 4410), np.float32)
    with pytest.raises(UpbandError, match=re.escape(words)):
        enhance(x, 44100, model=UNITTEST_MODEL, device="cpu", **kwargs)
