"""scripts/average_models.py: the weighted parameter mean of model files of one architecture
(means of ``upband-lattner`` and its own continuation, measured in docs/results/lattner)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
import torch

from upband.models import build_model
from upband.states import load_model, read_header, save_model

TINY = {"n_fft": 64, "hop": 16, "front": [2, 4, 4], "agg_maps": 4, "agg_rows": 4,
        "noise_maps": 2, "dilations": [1, 2]}


def _script(name: str = "average_models") -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        name, Path(__file__).resolve().parents[1] / f"scripts/{name}.py")
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


def _saved(tmp_path: Path, name: str, seed: int, **overrides: object) -> Path:
    torch.manual_seed(seed)
    model = build_model("lattner", **{**TINY, **overrides})
    path = tmp_path / f"{name}.safetensors"
    save_model(model, path, sample_rate=44100, metadata={"step": seed * 100})
    return path


def test_the_mean_is_the_weighted_mean_of_every_parameter(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = _saved(tmp_path, "a", 1), _saved(tmp_path, "b", 2)
    out = tmp_path / "mean.safetensors"
    assert _script().main([str(out), str(a), str(b), "--weights", "1", "3"]) == 0
    assert f"{a} x 0.25, {b} x 0.75" in capsys.readouterr().out
    sa, sb, sm = (load_model(p).state_dict() for p in (a, b, out))
    assert any(not torch.equal(sa[k], sb[k]) for k in sa)  # two different networks
    for key, value in sm.items():
        assert value.dtype == sa[key].dtype
        torch.testing.assert_close(value, 0.25 * sa[key] + 0.75 * sb[key], rtol=0, atol=1e-6)
    records = read_header(out).metadata["average_of"]
    assert [(r["model"], r["weight"], r["step"]) for r in records] == [
        (str(a), 0.25, 100), (str(b), 0.75, 200)]
    assert all(len(r["sha256"]) == 64 for r in records)


def test_models_that_differ_are_refused_in_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, wide = _saved(tmp_path, "a", 1), _saved(tmp_path, "wide", 2, noise_maps=4)
    out = tmp_path / "mean.safetensors"
    assert _script().main([str(out), str(a), str(wide)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "architecture and arguments differ" in err
    assert _script().main([str(out), str(a), str(a), "--weights", "1", "-1"]) == 2
    assert "non-negative" in capsys.readouterr().err
    assert not out.exists()


def test_export_keeps_what_a_mean_averages(tmp_path: Path) -> None:
    """scripts/export_pretrained.py carries the inputs of a mean into the shipped file, their
    paths reduced to the file names."""
    a, b = _saved(tmp_path, "a", 1), _saved(tmp_path, "b", 2)
    mean, shipped = tmp_path / "mean.safetensors", tmp_path / "shipped.safetensors"
    assert _script().main([str(mean), str(a), str(b)]) == 0
    _script("export_pretrained").export(mean, shipped, "tiny-mean", "a test")
    meta = read_header(shipped).metadata
    assert [r["model"] for r in meta["average_of"]] == ["a.safetensors", "b.safetensors"]
    assert meta["trained_step"] is None and meta["pretrained_name"] == "tiny-mean"
