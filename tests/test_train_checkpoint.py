"""Training checkpoints: complete round trip, atomic writes, keep-last-K, stale temp folders."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from upband.models import build_model
from upband.models.base import WaveModel
from upband.states import load_model, read_header
from upband.train import checkpoint as ckpt
from upband.train.checkpoint import (
    CheckpointError,
    find_latest,
    get_rng_state,
    list_checkpoints,
    load_checkpoint,
    prune_checkpoints,
    save_best,
    save_checkpoint,
    set_rng_state,
)


def _trained(seed: int = 0) -> tuple[WaveModel, torch.optim.Optimizer]:
    torch.manual_seed(seed)
    model = build_model("upband_unittest")
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.99), weight_decay=1e-4)
    for _ in range(3):
        x = torch.randn(2, 2, 256)
        loss = (model(x) - x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model, opt


def test_round_trip_restores_everything(tmp_path: Path) -> None:
    model, opt = _trained()
    random.seed(5)
    np.random.seed(6)
    torch.manual_seed(7)
    state = {"config": {"a": 1}, "schedule": {"scale": 0.5}, "best": None}
    folder = save_checkpoint(tmp_path, 3, model=model, optimizer=opt, state=state,
                             sample_rate=44100, metadata={"note": "x"})
    assert folder == tmp_path / "checkpoints" / "step-00000003"
    assert sorted(p.name for p in folder.iterdir()) == [
        "model.safetensors", "optimizer.json", "optimizer.safetensors", "state.json"]
    expected = (random.random(), np.random.random(), torch.rand(1).item())

    fresh = build_model("upband_unittest")
    fresh_opt = torch.optim.AdamW(fresh.parameters(), lr=0.5)
    loaded = load_checkpoint(folder, model=fresh, optimizer=fresh_opt)
    assert loaded["step"] == 3 and loaded["schedule"] == {"scale": 0.5}
    assert (random.random(), np.random.random(), torch.rand(1).item()) == expected
    for a, b in zip(model.state_dict().values(), fresh.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    sa, sb = opt.state_dict(), fresh_opt.state_dict()
    assert sb["param_groups"][0]["lr"] == 1e-3 and sb["param_groups"][0]["betas"] == (0.9, 0.99)
    for pid, entries in sa["state"].items():
        for key, value in entries.items():
            assert torch.equal(value, sb["state"][pid][key]), (pid, key)
    # the weights file is an ordinary upband model with the run's metadata in its header
    header = read_header(folder / "model.safetensors")
    assert header.metadata == {"step": 3, "note": "x"} and header.sample_rate == 44100
    assert isinstance(load_model(folder / "model.safetensors"), WaveModel)
    # nothing is pickled: every file is JSON or safetensors
    assert json.loads((folder / "state.json").read_text())["format"] == "upband-train-state"


def test_wrong_model_is_refused(tmp_path: Path) -> None:
    model, opt = _trained()
    folder = save_checkpoint(tmp_path, 1, model=model, optimizer=opt, state={},
                             sample_rate=44100)
    other = build_model("upband_unittest", widths=(6, 10))
    with pytest.raises(CheckpointError, match="other arguments"):
        load_checkpoint(folder, model=other, optimizer=torch.optim.AdamW(other.parameters()))
    adam_model = build_model("upband_unittest")
    with pytest.raises(CheckpointError, match="AdamW"):
        load_checkpoint(folder, model=adam_model,
                        optimizer=torch.optim.Adam(adam_model.parameters()))


def test_rng_state_is_json() -> None:
    state = json.loads(json.dumps(get_rng_state()))
    a = (random.random(), np.random.standard_normal(), torch.randn(3).tolist())
    set_rng_state(state)
    assert (random.random(), np.random.standard_normal(), torch.randn(3).tolist()) == a


def test_keep_last_k(tmp_path: Path) -> None:
    model, opt = _trained()
    for step in (10, 20, 30, 40, 50):
        save_checkpoint(tmp_path, step, model=model, optimizer=opt, state={},
                        sample_rate=44100, keep_last=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step-00000040", "step-00000050"]
    assert find_latest(tmp_path) == tmp_path / "checkpoints" / "step-00000050"
    assert prune_checkpoints(tmp_path, 1) == [tmp_path / "checkpoints" / "step-00000040"]
    assert not any(p.name.startswith(".") for p in (tmp_path / "checkpoints").iterdir())
    # the same step written again replaces it whole
    save_checkpoint(tmp_path, 50, model=model, optimizer=opt, state={"again": True},
                    sample_rate=44100)
    assert ckpt.read_state(find_latest(tmp_path))["again"] is True  # type: ignore[arg-type]


def test_best_model_file(tmp_path: Path) -> None:
    model, _ = _trained()
    path = save_best(tmp_path, model, sample_rate=16000,
                     metadata={"best": {"metric": "unseen_output_snr", "value": 12.5}})
    assert path.name == "best.safetensors"
    assert read_header(path).metadata["best"]["value"] == 12.5
    loaded = load_model(path)
    assert loaded.sample_rate == 16000


def test_crash_mid_write_leaves_the_previous_checkpoint(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    model, opt = _trained()
    save_checkpoint(tmp_path, 10, model=model, optimizer=opt, state={"n": 10},
                    sample_rate=44100)
    real_replace = os.replace

    def failing_replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        if Path(dst).name == "state.json":  # die just before the checkpoint is complete
            raise OSError("disk full")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(tmp_path, 20, model=model, optimizer=opt, state={"n": 20},
                        sample_rate=44100)
    monkeypatch.setattr(os, "replace", real_replace)
    # no partial folder is visible, the temp folder is gone, the old checkpoint is intact
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["step-00000010"]
    assert ckpt.read_state(find_latest(tmp_path))["n"] == 10  # type: ignore[arg-type]


def test_killed_write_leftovers_are_ignored_and_removed(tmp_path: Path) -> None:
    model, opt = _trained()
    save_checkpoint(tmp_path, 10, model=model, optimizer=opt, state={}, sample_rate=44100)
    # what a SIGKILL during a write leaves: a temp folder, and a step folder without state.json
    stale = tmp_path / "checkpoints" / ".tmp-step-00000020-abc"
    stale.mkdir()
    (stale / "model.safetensors").write_bytes(b"partial")
    half = tmp_path / "checkpoints" / "step-00000030"
    half.mkdir()
    assert find_latest(tmp_path) == tmp_path / "checkpoints" / "step-00000010"
    ckpt.remove_stale(tmp_path)
    assert not stale.exists()
    with pytest.raises(CheckpointError, match="incomplete"):
        ckpt.read_state(half)


def test_empty_run_dir(tmp_path: Path) -> None:
    assert find_latest(tmp_path) is None
    assert find_latest(tmp_path / "missing") is None
    assert list_checkpoints(tmp_path) == []


def _as_format_1(folder: Path, *, ema: bool) -> None:
    """Rewrite a checkpoint's state.json as upband wrote it before tasks were pluggable."""
    path = folder / "state.json"
    state = json.loads(path.read_text())
    for key in ("modules", "optimizers", "task"):
        state.pop(key, None)
    state.update(format_version=1, ema=ema)
    path.write_text(json.dumps(state))


def test_format_1_checkpoints_still_load(tmp_path: Path) -> None:
    model, opt = _trained()
    folder = save_checkpoint(tmp_path, 3, model=model, optimizer=opt, state={},
                             sample_rate=44100)
    _as_format_1(folder, ema=False)
    fresh = build_model("upband_unittest")
    fresh_opt = torch.optim.AdamW(fresh.parameters())
    assert load_checkpoint(folder, model=fresh, optimizer=fresh_opt)["step"] == 3
    for a, b in zip(model.state_dict().values(), fresh.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    # strict about the names: an EMA the checkpoint does not have is an error
    with pytest.raises(CheckpointError, match=r"holds networks \['model'\]"):
        load_checkpoint(folder, model=fresh, optimizer=fresh_opt, ema=build_model(
            "upband_unittest"))


def test_named_modules_and_optimizers(tmp_path: Path) -> None:
    torch.manual_seed(0)
    nets = {"generator": torch.nn.Linear(3, 2), "critic": torch.nn.Linear(2, 1)}
    opts = {f"{k}_opt": torch.optim.Adam(v.parameters()) for k, v in nets.items()}
    for name, net in nets.items():
        net(torch.randn(4, net.in_features)).sum().backward()
        opts[f"{name}_opt"].step()
    folder = save_checkpoint(tmp_path, 1, modules=nets, optimizers=opts, state={},
                             sample_rate=44100)
    assert sorted(p.name for p in folder.iterdir()) == [
        "critic.safetensors", "critic_opt.json", "critic_opt.safetensors",
        "generator.safetensors", "generator_opt.json", "generator_opt.safetensors", "state.json"]
    torch.manual_seed(1)
    fresh = {"generator": torch.nn.Linear(3, 2), "critic": torch.nn.Linear(2, 1)}
    fresh_opts = {f"{k}_opt": torch.optim.Adam(v.parameters()) for k, v in fresh.items()}
    load_checkpoint(folder, modules=fresh, optimizers=fresh_opts)
    for name in nets:
        assert torch.equal(nets[name].weight, fresh[name].weight)
        assert torch.equal(opts[f"{name}_opt"].state_dict()["state"][0]["exp_avg"],
                           fresh_opts[f"{name}_opt"].state_dict()["state"][0]["exp_avg"])
    with pytest.raises(CheckpointError, match="holds networks"):
        load_checkpoint(folder, modules={"generator": fresh["generator"]},
                        optimizers=fresh_opts)
    with pytest.raises(CheckpointError, match="cannot load"):
        load_checkpoint(folder, modules={**fresh, "critic": torch.nn.Linear(2, 2)},
                        optimizers=fresh_opts)
