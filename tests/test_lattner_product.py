"""Lattner & Nistal's restorer in the product: the noise seed (same seed, same output bit for
bit; another seed, another restoration), one noise for a whole stream (chunks without seams,
channels alike), ``upband enhance --seed / --draws / --model auto`` and ``upband evaluate
--protocol lattner-mp3`` with the best of N draws beside their mean."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from test_lattner import tiny as lattner_tiny
from upband.analysis import Bandwidth
from upband.cli import main
from upband.degrade import Codec, FilterSpec, lowpass
from upband.degrade import apply as degrade
from upband.enhancement import (
    CodecRouter,
    enhance,
    enhance_file,
    load_enhancer,
    run_chunked,
    settings,
)
from upband.enhancement.settings import LOSSY_PRETRAINED
from upband.errors import ModelError
from upband.evaluate import evaluate
from upband.models import PRETRAINED, build_model
from upband.models.lattner import LattnerGenerator
from upband.states import save_model

SR = 44100


def tiny(noise_maps: int = 2) -> LattnerGenerator:
    """test_lattner's random toy generator (seed 0) with ``noise_maps`` noise maps."""
    return lattner_tiny(0, noise_maps=noise_maps)


def music(seconds: float, channels: int = 1, seed: int = 0) -> np.ndarray:
    """Harmonic tones and noise bursts, full band, peak 0.5 (:func:`muffled`: an input that
    the product enhances)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    x = np.zeros((channels, t.size))
    for f0 in rng.uniform(110, 440, 3):
        for k in range(1, int(SR / 2 / f0)):
            x += rng.uniform(0.2, 1.0, (channels, 1)) / k * np.sin(2 * np.pi * f0 * k * t)
    x += 0.3 * rng.standard_normal(x.shape) * (np.sin(2 * np.pi * 2 * t) > 0.7)
    return (0.5 * x / np.abs(x).max()).astype(np.float32)


def muffled(seconds: float, channels: int = 1) -> np.ndarray:
    """:func:`music` low-passed at 8 kHz."""
    return lowpass(music(seconds, channels), SR, 8000.0, FilterSpec("butter", 8)).astype(
        np.float32)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("models")
    out = {}
    for name, noise in (("sto", 2), ("det", 0)):
        out[name] = folder / f"{name}.safetensors"
        save_model(tiny(noise), out[name], sample_rate=SR)
    return out


# --------------------------------------------------------------------------------------------
# seeds, chunks, channels


def test_one_noise_per_stream_chunks_without_seams() -> None:
    """The noise is drawn once from the seed and tiled over every frame: chunks of 0.5 s (or
    0.3 s with no cross-fade) give the one-pass output; both channels get the same noise."""
    model = tiny()
    model.seed = 7
    x = music(3.0, channels=2)
    with torch.inference_mode():
        one_pass = model(torch.from_numpy(x)[None])[0].numpy()
        mono = model(torch.from_numpy(x[1:])[None])[0].numpy()
        same = model(torch.from_numpy(np.stack([x[0], x[0]]))[None])[0].numpy()
    assert np.max(np.abs(one_pass - x)) > 1e-3  # it does something
    for chunk, overlap in ((0.5, 0.1), (0.3, 0.0)):
        chunked = run_chunked(model, x, chunk=int(chunk * SR), overlap=int(overlap * SR))
        assert np.max(np.abs(chunked - one_pass)) <= 1e-4, chunk
    np.testing.assert_allclose(mono[0], one_pass[1], atol=1e-5)  # each channel on its own
    assert np.array_equal(same[0], same[1])  # ... with the same noise


def test_same_seed_same_output_other_seed_other_output() -> None:
    model = tiny()
    x = muffled(2.0)
    kwargs = {"model": model, "device": "cpu", "merge": False, "chunk_seconds": 0.7}
    a, _ = enhance(x, SR, seed=3, **kwargs)
    b, _ = enhance(x, SR, seed=3, **kwargs)
    c, _ = enhance(x, SR, seed=4, **kwargs)
    assert np.array_equal(a, b)
    assert np.max(np.abs(a - c)) > 1e-3
    det = tiny(noise_maps=0)
    d3, _ = enhance(x, SR, seed=3, **{**kwargs, "model": det})
    d4, _ = enhance(x, SR, seed=4, **{**kwargs, "model": det})
    assert np.array_equal(d3, d4)  # a deterministic model ignores the seed


def test_temperature_scales_the_noise() -> None:
    """``temperature`` multiplies z: half of it is half the draw, and at 0 every seed gives
    the output of z = 0; it is stored with the model and checked."""
    hot, half, cold = tiny(), lattner_tiny(0, noise_maps=2, temperature=0.5), \
        lattner_tiny(0, noise_maps=2, temperature=0.0)
    torch.testing.assert_close(half.noise(1, seed=3), 0.5 * hot.noise(1, seed=3))
    assert float(hot.noise(1, seed=3).abs().max()) > 0.1
    x = torch.from_numpy(muffled(1.0))[None]
    with torch.inference_mode():
        outs = []
        for seed in (3, 4):
            cold.seed = hot.seed = seed
            outs.append((cold(x), hot(x)))
    assert torch.equal(outs[0][0], outs[1][0])  # one output for every seed at 0
    assert float((outs[0][1] - outs[1][1]).abs().max()) > 1e-3  # the seed matters at 1
    assert float((outs[0][0] - x).abs().max()) > 1e-3  # ... and z = 0 still restores
    assert cold.config["temperature"] == 0.0
    with pytest.raises(ModelError, match="temperature"):
        lattner_tiny(0, noise_maps=2, temperature=-1.0)


def test_files_are_bit_identical_for_one_seed(tmp_path: Path, models: dict[str, Path]) -> None:
    src = tmp_path / "song.wav"
    sf.write(src, muffled(2.0, channels=2).T, SR, subtype="PCM_16")  # 16 bit: dither included
    net = load_enhancer(models["sto"])
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        enhance_file(src, tmp_path / f"{name}.wav", net, device="cpu", seed=seed)
    data = {n: (tmp_path / f"{n}.wav").read_bytes() for n in "abc"}  # PCM: no time stamp
    assert data["a"] == data["b"] and data["a"] != data["c"]


# --------------------------------------------------------------------------------------------
# the command line


def test_enhance_draws_writes_k_variations(tmp_path: Path, models: dict[str, Path],
                                           capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "in" / "song.wav"
    src.parent.mkdir()
    sf.write(src, muffled(1.5).T, SR, subtype="FLOAT")
    out = tmp_path / "out"
    code = main(["enhance", str(src), "--model", str(models["sto"]), "--seed", "5",
                 "--draws", "3", "-o", str(out), "-q", "-d", "cpu"])
    assert code == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"song.seed{n}.upband.wav" for n in (5, 6, 7)]
    outs = [sf.read(out / n)[0] for n in names]
    assert all(np.max(np.abs(a - b)) > 1e-4 for a, b in ((outs[0], outs[1]), (outs[1], outs[2])))
    single = tmp_path / "five.wav"
    assert main(["enhance", str(src), "--model", str(models["sto"]), "--seed", "5", "-o",
                 str(single), "-q", "-d", "cpu"]) == 0
    # the samples bit for bit (a float WAV's PEAK chunk holds the time it was written)
    assert np.array_equal(sf.read(single, dtype="float32")[0],
                          sf.read(out / names[0], dtype="float32")[0])
    # a folder search leaves the draws out: a re-run finds the one input
    assert main(["enhance", str(src.parent), "--model", str(models["sto"]), "--draws", "2",
                 "-q", "-d", "cpu"]) == 0
    assert sorted(p.name for p in src.parent.iterdir()) == [
        "song.seed0.upband.wav", "song.seed1.upband.wav", "song.wav"]
    capsys.readouterr()
    assert main(["enhance", str(src), "--model", str(models["det"]), "--draws", "2", "-o",
                 str(tmp_path / "det"), "-q", "-d", "cpu"]) == 2
    assert "deterministic" in capsys.readouterr().err


def test_model_auto_routes_lossy_inputs(tmp_path: Path, models: dict[str, Path],
                                        capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """``--model auto``: the lossy-codec restorer for what the detector takes for a lossy
    codec (``--lossy-model``; the shipped ``upband-lattner`` unasked only once it beats the
    default model), the default model for the rest; with no restorer it is a command-line
    error."""
    other, lossy = build_model("upband_unittest"), tiny()
    router = CodecRouter(other, lossy)
    found = {codec: Bandwidth(SR, 8000.0, False, False, "butter:64", 3.0, 0.1, codec)
             for codec in ("lossy", "brickwall", "none")}
    assert router.pick(found["lossy"]) is lossy
    assert router.pick(found["brickwall"]) is other and router.pick(found["none"]) is other
    clean = music(4.0)
    mp3, lowpassed = tmp_path / "mp3.wav", tmp_path / "low.wav"
    sf.write(mp3, degrade(clean, SR, Codec("mp3", bitrate_kbps=16)).T, SR, subtype="FLOAT")
    sf.write(lowpassed, muffled(4.0).T, SR, subtype="FLOAT")
    report = tmp_path / "report.json"
    assert main(["enhance", str(mp3), str(lowpassed), "--model", "auto", "--lossy-model",
                 str(models["sto"]), "-o", str(tmp_path / "out"), "--report", str(report),
                 "-q", "-d", "cpu"]) == 0
    records = {Path(r["input"]).name: r for r in json.loads(report.read_text())}
    assert records["mp3.wav"]["bandwidth"]["codec"] == "lossy"
    assert records["mp3.wav"]["model"] == "lattner"
    assert records["low.wav"]["model"] != "lattner"
    # the shipped restorer: named, or unasked while it beats the default model (its card)
    assert PRETRAINED[LOSSY_PRETRAINED].architecture == "lattner"
    assert settings.AUTO_USES_LOSSY_PRETRAINED
    for name, extra in (("named", ["--lossy-model", LOSSY_PRETRAINED]), ("unasked", [])):
        shipped = tmp_path / f"{name}.json"
        assert main(["enhance", str(mp3), "--model", "auto", "-o", str(tmp_path / f"{name}.wav"),
                     "--report", str(shipped), "-q", "-d", "cpu", *extra]) == 0
        record = json.loads(shipped.read_text())[0]
        assert record["model"] == LOSSY_PRETRAINED and record["status"] == "enhanced", name
    monkeypatch.setattr(settings, "AUTO_USES_LOSSY_PRETRAINED", False)  # while it did not
    capsys.readouterr()
    assert main(["enhance", str(mp3), "--model", "auto", "-o", str(tmp_path / "y.wav"),
                 "-q"]) == 2
    assert f"--lossy-model {LOSSY_PRETRAINED}" in capsys.readouterr().err
    monkeypatch.setattr(settings, "AUTO_USES_LOSSY_PRETRAINED", True)
    monkeypatch.delitem(PRETRAINED, LOSSY_PRETRAINED)  # not shipped at all: an error again
    assert main(["enhance", str(mp3), "--model", "auto", "-o", str(tmp_path / "z.wav"),
                 "-q"]) == 2


# --------------------------------------------------------------------------------------------
# evaluation


def test_lattner_protocol_best_of_and_mean_of_draws(tmp_path: Path,
                                                    models: dict[str, Path]) -> None:
    """Table 2's layout: per bitrate the MP3, det, sto (best of N draws per metric, as the
    paper) and sto's mean over the same draws; the paper's numbers beside; PEAQ explained."""
    root = tmp_path / "music"
    root.mkdir()
    sf.write(root / "a.wav", music(2.5).T, SR, subtype="FLOAT")
    ev = evaluate(root, "lattner-mp3", models=[str(models["det"]), str(models["sto"])],
                  baselines=["input"], best_of=3, visqol=False, device="cpu",
                  output=tmp_path / "report")
    assert not ev.failed
    assert ev.summary.systems == ["input", "det", "sto", "sto mean-of-3"]
    rows = {(c, s, m): v for c, s, m, v in ev.results[0].rows}
    for cond in ("16k", "32k", "64k"):
        for metric, higher in (("lsd_db", False), ("spectral_mse", False), ("snr", True)):
            best, avg = rows[(cond, "sto", metric)], rows[(cond, "sto mean-of-3", metric)]
            assert math.isfinite(best) and math.isfinite(avg)
            assert (best >= avg) if higher else (best <= avg), (cond, metric)
        assert rows[(cond, "sto", "snr")] > rows[(cond, "sto mean-of-3", "snr")]  # draws differ
        assert (cond, "det mean-of-3", "snr") not in rows  # one draw of a deterministic model
    text = (tmp_path / "report/report.md").read_text()
    assert "| 32 kbit/s | sto (best of 20) | −2.74 | −1.07 | 3.75 | 0.26 | 9.57 |" in text
    assert "sto mean-of-3" in text and "best of 3 draws per file and metric" in text
    assert "ODG and DI (PEAQ, ITU-R BS.1387) are not reported" in text
