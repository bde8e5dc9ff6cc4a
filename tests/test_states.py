"""Checkpoints: safetensors + JSON header, strict loading, checksums, no code execution."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from safetensors.torch import save as safetensors_save

from upband import __version__
from upband.errors import ModelError
from upband.models import PRETRAINED, PretrainedModel, build_model
from upband.states import file_sha256, load_model, load_pretrained, read_header, save_model


def trained_like(name: str = "upband_unittest", seed: int = 0) -> torch.nn.Module:
    """A model whose weights and BN statistics differ from a fresh build."""
    torch.manual_seed(seed)
    model = build_model(name)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    model.train()
    model(torch.randn(2, 2, 4096))  # moves the BN running statistics
    return model.eval()


def rewrite(src: Path, dst: Path, *, header: dict | None = None,
            tensors: dict[str, torch.Tensor] | None = None) -> Path:
    """Copy a checkpoint, replacing its upband header and/or tensors."""
    meta = {"upband": json.dumps(header if header is not None else _raw_header(src))}
    dst.write_bytes(safetensors_save(tensors if tensors is not None else load_file(src), meta))
    return dst


def _raw_header(path: Path) -> dict:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as fh:
        return json.loads(fh.metadata()["upband"])


@pytest.fixture
def checkpoint(tmp_path: Path) -> tuple[torch.nn.Module, Path, str]:
    model = trained_like()
    path = tmp_path / "model.safetensors"
    digest = save_model(model, path, sample_rate=48_000, metadata={"train": {"lr": 5e-4}})
    return model, path, digest


def test_round_trip_rebuilds_identical_model(checkpoint) -> None:  # type: ignore[no-untyped-def]
    model, path, digest = checkpoint
    loaded = load_model(path, sha256=digest)
    assert type(loaded) is type(model)
    assert loaded.name == model.name and loaded.config == model.config
    assert loaded.sample_rate == 48_000
    assert not loaded.training
    original, restored = model.state_dict(), loaded.state_dict()
    assert original.keys() == restored.keys()
    for key in original:
        assert torch.equal(original[key], restored[key]), key
    x = torch.randn(1, 2, 3000)
    with torch.inference_mode():
        assert torch.equal(model(x), loaded(x))


@pytest.mark.parametrize("name", ["arunet-s", "seanet", "sulun-resnet-bn"])
def test_round_trip_other_architectures(tmp_path: Path, name: str) -> None:
    overrides = {"blocks": 2, "width": 32} if name.startswith("sulun-resnet") else {}
    torch.manual_seed(1)
    model = build_model(name, **overrides)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    model.eval()
    path = tmp_path / f"{name}.safetensors"
    save_model(model, path, sample_rate=44_100)
    loaded = load_model(path)
    assert loaded.config == model.config
    x = torch.randn(1, 2, 2048)
    with torch.inference_mode():
        assert torch.equal(model(x), loaded(x))


def test_header_contents(checkpoint) -> None:  # type: ignore[no-untyped-def]
    model, path, digest = checkpoint
    header = read_header(path)
    assert header.architecture == "upband_unittest"
    assert header.kwargs == model.config
    assert header.sample_rate == 48_000
    assert header.upband_version == __version__
    assert header.metadata == {"train": {"lr": 5e-4}}
    assert digest == file_sha256(path)


def test_save_is_atomic_and_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "m.safetensors"
    first = save_model(trained_like(seed=1), path, sample_rate=44_100)
    second = save_model(trained_like(seed=2), path, sample_rate=44_100)
    assert first != second and file_sha256(path) == second
    assert sorted(p.name for p in path.parent.iterdir()) == ["m.safetensors"]
    # a failing save leaves neither a file nor a temporary behind
    bad = tmp_path / "bad.safetensors"
    with pytest.raises(ModelError, match="JSON"):
        save_model(trained_like(), bad, sample_rate=44_100, metadata={"x": object()})
    assert not bad.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sub"]


def test_save_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="sample_rate"):
        save_model(trained_like(), tmp_path / "a.safetensors", sample_rate=0)
    with pytest.raises(ModelError, match="WaveModel"):
        save_model(torch.nn.Linear(2, 2), tmp_path / "a.safetensors",  # type: ignore[arg-type]
                   sample_rate=44_100)
    model = trained_like()
    model.name = "homemade"
    with pytest.raises(ModelError, match="not registered"):
        save_model(model, tmp_path / "a.safetensors", sample_rate=44_100)


def test_sha256_mismatch(checkpoint) -> None:  # type: ignore[no-untyped-def]
    _, path, digest = checkpoint
    load_model(path, sha256=digest.upper())  # case does not matter
    with pytest.raises(ModelError, match="SHA-256 mismatch"):
        load_model(path, sha256="0" * 64)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not found"):
        load_model(tmp_path / "nope.safetensors")
    with pytest.raises(ModelError, match="not a file"):
        load_model(tmp_path)


def test_foreign_and_corrupt_files(tmp_path: Path, checkpoint) -> None:  # type: ignore[no-untyped-def]
    _, path, _ = checkpoint
    foreign = tmp_path / "foreign.safetensors"
    foreign.write_bytes(safetensors_save({"weight": torch.zeros(3)}, {"format": "pt"}))
    with pytest.raises(ModelError, match="not an upband model"):
        load_model(foreign)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00" * 7 + b"not a safetensors file at all")
    with pytest.raises(ModelError, match="not a safetensors file"):
        load_model(garbage)
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ModelError):
        load_model(truncated)


def test_pickle_is_never_executed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (Path.touch, (marker,))

    evil = tmp_path / "evil.safetensors"
    evil.write_bytes(pickle.dumps({"state_dict": Payload()}))
    with pytest.raises(ModelError):
        load_model(evil)
    torch_file = tmp_path / "evil.pt"
    torch.save({"x": Payload()}, torch_file)
    with pytest.raises(ModelError):
        load_model(torch_file)
    assert not marker.exists()


def test_bad_headers(tmp_path: Path, checkpoint) -> None:  # type: ignore[no-untyped-def]
    _, path, _ = checkpoint
    header = _raw_header(path)
    with pytest.raises(ModelError, match="unknown architecture 'quantum-net'"):
        load_model(rewrite(path, tmp_path / "a.safetensors",
                           header={**header, "architecture": "quantum-net"}))
    with pytest.raises(ModelError, match="newer"):
        load_model(rewrite(path, tmp_path / "b.safetensors",
                           header={**header, "format_version": 99}))
    with pytest.raises(ModelError, match="sample_rate"):
        load_model(rewrite(path, tmp_path / "c.safetensors",
                           header={**header, "sample_rate": "fast"}))
    with pytest.raises(ModelError, match="no argument"):
        load_model(rewrite(path, tmp_path / "d.safetensors",
                           header={**header, "kwargs": {**header["kwargs"], "evil": 1}}))
    with pytest.raises(ModelError, match="not an upband model header"):
        load_model(rewrite(path, tmp_path / "e.safetensors", header={"format": "other"}))


def test_strict_key_and_shape_checks(tmp_path: Path, checkpoint) -> None:  # type: ignore[no-untyped-def]
    _, path, _ = checkpoint
    tensors = load_file(path)
    header = _raw_header(path)
    dropped = dict(tensors)
    removed = sorted(dropped)[0]
    del dropped[removed]
    with pytest.raises(ModelError, match="missing 1 tensor"):
        load_model(rewrite(path, tmp_path / "a.safetensors", tensors=dropped))
    extra = {**tensors, "smuggled.weight": torch.zeros(2)}
    with pytest.raises(ModelError, match="unexpected"):
        load_model(rewrite(path, tmp_path / "b.safetensors", tensors=extra))
    # the header claims a wider network than the tensors hold
    wider = {**header, "kwargs": {**header["kwargs"], "widths": [7, 8]}}
    with pytest.raises(ModelError, match="shape mismatch"):
        load_model(rewrite(path, tmp_path / "c.safetensors", header=wider))


def test_load_pretrained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ModelError, match="unknown pretrained model"):
        load_pretrained("no-such-weights")
    model = trained_like()
    digest = save_model(model, tmp_path / "tiny.safetensors", sample_rate=44_100)
    entry = PretrainedModel(name="tiny", architecture="upband_unittest", kwargs={},
                            sample_rate=44_100, file="tiny.safetensors", sha256=digest)
    monkeypatch.setitem(PRETRAINED, "tiny", entry)
    loaded = load_pretrained("tiny", directory=tmp_path)
    assert loaded.pretrained_name == "tiny" and model.pretrained_name == ""
    x = torch.randn(1, 2, 1000)
    with torch.inference_mode():
        assert torch.equal(loaded(x), model(x))
    wrong_rate = PretrainedModel(name="tiny48", architecture="upband_unittest", kwargs={},
                                 sample_rate=48_000, file="tiny.safetensors", sha256=digest)
    monkeypatch.setitem(PRETRAINED, "tiny48", wrong_rate)
    with pytest.raises(ModelError, match="does not match"):
        load_pretrained("tiny48", directory=tmp_path)
