"""`upband plot RUN_DIR`: Sulun Fig. 3 style curves from metrics.csv."""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path

import pytest

from upband.errors import MissingDependencyError
from upband.train.checkpoint import CheckpointError
from upband.train.config import VALIDATION_METRICS, Config, config_to_dict
from upband.train.logs import CSV_BASE
from upband.train.plot import plot_run, read_metrics


def _write_run(run: Path) -> None:
    run.mkdir()
    (run / "config.json").write_text(json.dumps(config_to_dict(Config())))
    columns = [*CSV_BASE, "train_mse", *VALIDATION_METRICS]
    lines = [",".join(columns)]
    for step in range(0, 2001, 100):
        row = dict.fromkeys(columns, "")
        row["step"] = str(step)
        if step:
            loss = 1e-3 / (1 + step / 300)
            row.update(time_s=str(step / 10), lr=str(5e-4), train_loss=str(loss),
                       train_mse=str(loss))
            lines.append(",".join(row[c] for c in columns))
        if step % 500 == 0:
            val = dict.fromkeys(columns, "")
            val.update(step=str(step), seen_input_snr="14.3", unseen_input_snr="13.9",
                       seen_output_snr=str(14.3 + step / 400),
                       unseen_output_snr=str(13.9 + step / 800), seen_input_lsd="4.7",
                       unseen_input_lsd="4.6", seen_output_lsd=str(4.7 - step / 1000),
                       unseen_output_lsd=str(4.6 - step / 1500), seen_loss=str(2e-4))
            lines.append(",".join(val[c] for c in columns))
    (run / "metrics.csv").write_text("\n".join(lines) + "\n")


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_plot_writes_a_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    run = tmp_path / "run"
    _write_run(run)
    series = read_metrics(run)
    assert series["seen_output_snr"][-1] == (2000, 19.3)
    assert len(series["train_loss"]) == 20 and "unseen_input_lsd" in series
    out = plot_run(run)
    assert out == run / "curves.png"
    width, height = _png_size(out)
    assert 800 <= width <= 1400 and 900 <= height <= 1500
    assert 30_000 < out.stat().st_size < 1_000_000
    custom = plot_run(run, tmp_path / "fig.png")
    assert custom == tmp_path / "fig.png" and _png_size(custom) == (width, height)


def test_plot_of_a_run_without_validation(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.csv").write_text(",".join(CSV_BASE) + "\n")
    assert _png_size(plot_run(run))[0] > 500


def test_plot_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(CheckpointError, match=r"no metrics\.csv"):
        plot_run(tmp_path)
    run = tmp_path / "run"
    _write_run(run)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed
    with pytest.raises(MissingDependencyError, match=r"pip install 'upband\[plot\]'"):
        plot_run(run)
