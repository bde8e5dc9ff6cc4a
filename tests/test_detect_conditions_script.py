"""scripts/detect_conditions.py: the detector's verdict after each condition of a protocol, file
by file, on a corpus split (the counts cited in docs/results/band-level)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from upband import audio
from upband.data.corpus import build_corpus


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "detect_conditions", Path(__file__).resolve().parents[1] / "scripts/detect_conditions.py")
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


def test_it_counts_the_verdicts_of_every_file_and_condition(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(5)
    music = tmp_path / "music"
    music.mkdir()
    for k in range(3):  # full-band noise, 2 s of stereo
        audio.write(music / f"n{k}.wav", 0.1 * rng.standard_normal((2, 88200)).astype(np.float32),
                    44100)
    build_corpus([music], tmp_path / "corpus", splits=(0.0, 1.0, 0.0), workers=0,
                 progress=False)
    out = tmp_path / "verdicts.json"
    assert _script().main(["--data", str(tmp_path / "corpus"), "--conditions", "lp16k,mp3-32k",
                           "--json", str(out)]) == 0
    said = json.loads(out.read_text())
    assert said["split"] == "validation" and len(said["files"]) == 6
    # a Butterworth 6 is no shelf; LAME at 32 kbit/s is one, at its ~5.5 kHz low-pass
    assert said["counts"]["lp16k"] == {"none": 3}
    assert sum(said["counts"]["mp3-32k"].values()) == 3
    assert set(said["counts"]["mp3-32k"]) <= {"lossy", "brickwall"}
    cutoffs = [r["cutoff_hz"] for r in said["files"] if r["condition"] == "mp3-32k"]
    assert all(4500 < c < 6500 for c in cutoffs)
    assert "mp3-32k: " in capsys.readouterr().out
    # a name the protocol lacks: a one-line error
    assert _script().main(["--data", str(tmp_path / "corpus"), "--conditions", "nope"]) == 2
    assert capsys.readouterr().err.startswith("error: no condition of versatile")
