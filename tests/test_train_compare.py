"""Designs compared at equal compute: every checkpoint of two runs scored on the same
excerpts, placed by the CPU time each run had."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from upband.data import build_corpus
from upband.data.synthetic import synthesize
from upband.train.compare import (
    add_visqol,
    at_budget,
    compare_runs,
    validation_items,
    write_comparison,
)
from upband.train.config import load_config
from upband.train.loop import train

RUN = [
    "data.corpus=synthetic", "data.synthetic={files=[3, 1, 0], seconds=1.0}",
    "data.crop_samples=2048", "data.context_samples=1024", "model.name=arunet",
    "model.kwargs={widths=[8, 12], kernels=[5, 3], dropout=0.0, init_std=0.02}",
    "train.batch_size=2", "train.log_every=2", "train.max_steps=4", "checkpoint.every=2",
    "checkpoint.keep_last=10", "validation.every=0", "validation.at_start=false",
    "runtime.progress=false", "runtime.tensorboard=false", "runtime.threads=1",
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("music")
    rng = np.random.default_rng(3)
    for name in ("a", "b", "val"):
        sf.write(root / f"{name}.wav", synthesize(44100, 2.0, rng).T, 44100, subtype="FLOAT")
    out = root / "corpus"
    build_corpus([root], out, min_cutoff_hz=0, workers=0,
                 split_lists={"validation": ["val.wav"], "test": []}, progress=False)
    return out


def test_two_runs_compared_at_equal_compute(corpus: Path, tmp_path: Path) -> None:
    runs = {}
    for label, lr in (("slow", "1e-5"), ("fast", "3e-3")):
        train(load_config(None, [*RUN, f"optim.lr={lr}"]), tmp_path / label, quiet=True)
        runs[label] = tmp_path / label
    items = validation_items(corpus, seen_preset="sulun-single", unseen_preset="",
                             max_files=1, seconds=1.0, offset_seconds=0.0)
    points = compare_runs(runs, corpus, items=items)
    assert [(p.run, p.step) for p in points] == [("slow", 2), ("slow", 4), ("fast", 2),
                                                 ("fast", 4)]
    assert [p.values for p in compare_runs(runs, corpus, items=items, jobs=2)] == \
        [p.values for p in points]  # worker processes score the same
    assert all(p.compute == "cpu" and p.minutes > 0 for p in points)
    assert points[0].minutes < points[1].minutes and points[2].minutes < points[3].minutes
    for p in points:  # the merged output is what ships; the input's values are its baseline
        assert {"seen_merged_snr", "seen_merged_lsd_high", "seen_input_snr"} <= set(p.values)
    assert len({p.values["seen_input_snr"] for p in points}) == 1  # the same excerpts for all
    budget = points[0].minutes + 1e-9
    assert at_budget(points, budget)["slow"] == points[0]
    written = write_comparison(points, tmp_path / "report", budget_minutes=60.0, note="toy")
    rows = list(csv.DictReader(io.StringIO(written[0].read_text())))
    assert [r["run"] for r in rows] == ["slow", "slow", "fast", "fast"]
    assert float(rows[3]["seen_merged_snr"]) == points[3].values["seen_merged_snr"]
    assert written[1].read_bytes()[:4] == b"\x89PNG"
    text = written[2].read_text()
    assert "| slow | 4 |" in text and "| fast | 4 |" in text and "toy" in text
    # thinned: the first and the last checkpoint within the budget of each run
    thin = compare_runs(runs, corpus, items=items, spacing_minutes=1e6,
                        budget_minutes=points[1].minutes + 1e-9)

    budget = points[1].minutes + 1e-9
    expected = [(q.run, q.step) for q in points if q.minutes <= budget]
    if ("fast", 2) not in expected:  # a run with nothing inside the budget keeps its first
        expected.append(("fast", 2))
    assert [(q.run, q.step) for q in thin] == expected
    assert [q.values for q in thin[:2]] == [points[0].values, points[1].values]


def test_visqol_is_added_at_the_budget_only(corpus: Path, tmp_path: Path) -> None:
    pytest.importorskip("visqol")
    train(load_config(None, RUN), tmp_path / "run", quiet=True)
    items = validation_items(corpus, seen_preset="sulun-single", unseen_preset="",
                             max_files=1, seconds=2.0, offset_seconds=0.0)
    points = compare_runs({"run": tmp_path / "run"}, corpus, items=items)
    add_visqol(points, items, 44100, budget_minutes=60.0)
    first, last = points
    assert "seen_merged_visqol" not in first.values
    assert 1.0 <= last.values["seen_merged_visqol"] <= 5.0
    assert 1.0 <= last.values["seen_input_visqol"] <= 5.0
    text = write_comparison(points, tmp_path / "report", budget_minutes=60.0)[2].read_text()
    assert "seen_merged_visqol" in text
    assert f"{last.values['seen_merged_visqol']:.3f}" in text
