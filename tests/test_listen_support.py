"""Builders shared by the ``test_listen_*`` modules (no tests here): a small listening-test
folder with real audio, made in ``tmp_path``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from upband import audio
from upband.degrade import lowpass

SR = 44100
VERSIONS = ("reference", "anchor-3.5k", "anchor-7k", "input", "model")


def tone(seconds: float = 1.5, sr: int = SR, seed: int = 0) -> np.ndarray:
    """A bright stereo harmonic tone with a little noise, peak 0.5."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    k = np.arange(1, int(sr / 2 / 330))
    x = (np.sin(2 * np.pi * 330 * np.outer(k, t) + rng.uniform(0, 6.3, (len(k), 1)))
         / k[:, None]).sum(axis=0) + 0.05 * rng.standard_normal(t.shape)
    x = 0.5 * x / np.abs(x).max()
    return np.stack([x, np.roll(x, 11)]).astype(np.float32)


def make_test(folder: Path, *, items: int = 2, seconds: float = 1.5,
              tests: Sequence[dict[str, Any]] | None = None, name: str = "test.json"
              ) -> Path:
    """A test folder: ``items`` items of :data:`VERSIONS` (the reference, its 3.5 / 7 kHz
    low-passes, an 8 kHz low-pass as the input and the reference at -6 dB as the "model"),
    and a test file with the given tests (default: one MUSHRA over everything)."""
    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for i in range(items):
        ref = tone(seconds, seed=i)
        signals = {"reference": ref, "anchor-3.5k": lowpass(ref, SR, 3500, "butter:12"),
                   "anchor-7k": lowpass(ref, SR, 7000, "butter:12"),
                   "input": lowpass(ref, SR, 8000, "cheby1:8"), "model": 0.5 * ref}
        versions = []
        for v in VERSIONS:
            rel = f"stimuli/item{i}/{v}.flac"
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            audio.write(folder / rel, signals[v], SR, subtype="PCM_24", overwrite=True)
            versions.append({"name": v, "role": {"reference": "reference", "input": "degraded",
                                                 "model": "system"}.get(v, "anchor"),
                             "path": rel, "loudness_lufs": -20.0 - 6.02 * (v == "model"),
                             "metrics": {"snr": 10.0 + i, "lsd": "inf"} if v == "input" else {}})
        entries.append({"id": f"item{i}", "title": f"song {i}",
                        "condition": "lp" if i % 2 == 0 else "mp3", "versions": versions})
    if tests is None:
        tests = [{"name": "mushra", "design": "mushra", "mid_anchor": "anchor-7k"}]
    doc = {"format": "upband-listening-test", "version": 1, "title": "a test",
           "items": entries, "tests": list(tests)}
    path = folder / name
    path.write_text(json.dumps(doc, indent=1))
    return path
