"""The band-level predictor behind ``--fill``: band levels and features as the guard reads
them, streaming exactly; strict loading; the shipped network follows the input's brightness;
its training script learns."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from upband.enhancement import bandlevel as bl
from upband.errors import ModelError

ROOT = Path(__file__).resolve().parents[1]
SR = 44100


def test_band_levels_of_white_noise_are_zero_db() -> None:
    n = 2048
    w = np.hanning(n + 1)[:-1]
    frames = np.random.default_rng(0).standard_normal((400, n))
    power = np.abs(np.fft.rfft(frames * w, axis=-1)) ** 2 / np.sum(w ** 2)
    freqs = np.fft.rfftfreq(n, 1 / SR)
    levels = bl.band_levels(power.mean(axis=0), freqs, bl.below_edges(11025.0))
    np.testing.assert_allclose(levels, 0.0, atol=0.3)  # a mean power of 1 in every band
    assert bl.reference_level(power.mean(axis=0), freqs, 11025.0) == pytest.approx(0, abs=0.1)
    # per frame, the narrow bands' few bins scatter more
    frames_db = bl.band_levels(power, freqs, bl.below_edges(11025.0))
    assert frames_db[:, -1].std() > 2 * frames_db[:, 0].std()
    edges = bl.above_edges(11025.0, SR / 2)
    assert len(edges) == 3 and edges[-1][1] == SR / 2  # the last band cut at Nyquist
    assert len(bl.above_edges(5000.0, SR / 2)) == 7
    residual = bl.residual_levels(power.mean(axis=0), freqs, 20000.0, SR / 2)
    assert residual[0] == pytest.approx(0.0, abs=0.5) and np.all(residual[1:] == -np.inf)


def test_features_stream_exactly_and_smooth_the_past() -> None:
    rng = np.random.default_rng(1)
    ref = rng.normal(-40, 5, (2, 300))
    below = ref[..., None] + rng.normal(-6, 3, (2, 300, bl.BELOW))
    residual = ref[..., None] + rng.normal(-30, 10, (2, 300, bl.RESIDUAL))
    residual[..., -1] = -np.inf  # a band past Nyquist
    alpha = 0.05
    whole = bl.features(ref, below, residual, 9000.0, alpha, bl.FeatureState())
    state = bl.FeatureState()
    parts = [bl.features(ref[:, a:b], below[:, a:b], residual[:, a:b], 9000.0, alpha, state)
             for a, b in ((0, 1), (1, 120), (120, 300))]
    np.testing.assert_allclose(np.concatenate(parts, axis=1), whole, atol=1e-9)
    n = bl.BELOW + bl.RESIDUAL
    rel = np.clip(np.concatenate([below, residual], axis=-1) - ref[..., None], *bl.REL_RANGE)
    np.testing.assert_allclose(whole[..., :n], rel)
    assert np.all(whole[..., n - 1] == bl.REL_RANGE[0])
    # the smoothed half lags: its spread over frames is well under the raw one's
    assert whole[..., n:2 * n - 1].std(axis=1).mean() < 0.5 * rel[..., :-1].std(axis=1).mean()
    assert whole[0, 0, -1] == pytest.approx(np.log2(9000 / 11025))


def _tensors(level_db: float = 0.0) -> dict[str, torch.Tensor]:
    h = 4
    return {"w0": torch.zeros(h, bl.N_FEATURES), "b0": torch.zeros(h),
            "w1": torch.zeros(h, h), "b1": torch.zeros(h), "w2": torch.zeros(bl.ABOVE, h),
            "b2": torch.full((bl.ABOVE,), level_db), "mean": torch.zeros(bl.N_FEATURES),
            "scale": torch.ones(bl.N_FEATURES)}


def constant_predictor(level_db: float) -> bl.BandLevelModel:
    """A predictor that says every band lies ``level_db`` from the reference."""
    return bl.BandLevelModel({k: v.numpy() for k, v in _tensors(level_db).items()},
                             {"format": bl.FORMAT})


def test_loading_is_strict(tmp_path: Path) -> None:
    good = tmp_path / "good.safetensors"
    save_file(_tensors(-7.0), str(good), metadata={"upband": json.dumps({"format": bl.FORMAT})})
    model = bl.BandLevelModel.load(good)
    np.testing.assert_allclose(model.predict(np.zeros((3, bl.N_FEATURES))), -7.0)
    foreign = tmp_path / "foreign.safetensors"
    save_file(_tensors(), str(foreign), metadata={"upband": json.dumps({"format": "x"})})
    short = tmp_path / "short.safetensors"
    save_file({k: v for k, v in _tensors().items() if k != "w2"}, str(short),
              metadata={"upband": json.dumps({"format": bl.FORMAT})})
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(good.read_bytes()[:100])
    for path, said in ((foreign, "not a band-level predictor"), (short, "lacks tensor"),
                       (junk, "not a band-level predictor")):
        with pytest.raises(ModelError, match=said):
            bl.BandLevelModel.load(path)
    with pytest.raises(ModelError, match="SHA-256"):
        bl.BandLevelModel.load(good, sha256="0" * 64)


@pytest.mark.parametrize("cutoff", [11025.0, 4000.0])
def test_the_shipped_predictors_follow_the_input_brightness(cutoff: float) -> None:
    model = bl.shipped(cutoff)  # checked against its SHA-256
    assert model.meta["format"] == bl.FORMAT
    # under 9 kHz the predictor trained from 3 kHz up, the other from 5 kHz up
    assert model is bl.shipped(cutoff * 1.01)  # loaded once
    assert bl.shipped(4000.0) is not bl.shipped(11025.0)
    assert (model.meta["hidden"], cutoff < bl.LOW_UNTIL_HZ) in ((64, False), (128, True))
    preds = {}
    for slope in (-3.0, -15.0):  # dB per octave under the cutoff
        octaves = np.array([-(j + 0.5) / 3 for j in range(bl.BELOW)])
        ref = np.full((1, 200), -30.0)
        below = ref[..., None] + slope * (octaves + 0.5)[None, None]
        # what a gentle filter leaves above the cutoff: the trend, 10 dB down and falling
        up = np.array([(j + 0.5) / 3 for j in range(bl.RESIDUAL)])
        residual = ref[..., None] + slope * (up + 0.5) - 10 - 15 * np.arange(bl.RESIDUAL)
        feats = bl.features(ref, below, residual, cutoff, 0.05, bl.FeatureState())
        preds[slope] = model.predict(feats)[0, -1]
    # a bright input gets a louder band than a dark one, and both fall with frequency
    assert preds[-3.0][0] > preds[-15.0][0] + 5
    for p in preds.values():
        assert p[0] > p[2]


def test_training_script_learns(tmp_path: Path) -> None:
    script = str(ROOT / "scripts" / "train_band_level.py")
    for split, n in (("train", 40), ("validation", 16)):
        subprocess.run([sys.executable, script, "extract", "--corpus", "synthetic", "--split",
                        split, "--examples", str(n), "--seconds", "2", "--min-cutoff", "3000",
                        "-j", "1", "-o", str(tmp_path / f"{split}.npz")], check=True)
    out = tmp_path / "model.safetensors"
    done = subprocess.run([sys.executable, script, "fit", str(tmp_path / "train.npz"),
                           str(tmp_path / "validation.npz"), "--epochs", "30", "--hidden",
                           "16", "--batch", "256", "-o", str(out)],
                          check=True, capture_output=True, text=True)
    history = [json.loads(line.split(": ", 1)[1]) for line in done.stdout.splitlines()
               if line.startswith("epoch ")]
    assert len(history) == 30
    first, last = history[0]["mae_db"], history[-1]["mae_db"]
    assert last < 0.7 * first  # validation error fell
    meta = bl.BandLevelModel.load(out).meta
    assert meta["validation"]["mae_db"] == pytest.approx(last)
    # score: the fit's error again (the guard's cap at the reference's level applied: the
    # synthetic music's band is never louder than it), over one range of cutoffs or two
    scored = subprocess.run([sys.executable, script, "score", str(tmp_path / "validation.npz"),
                             str(out), "--edges", "0"], check=True, capture_output=True,
                            text=True).stdout.splitlines()
    assert len(scored) == 1 and "cutoffs 0-inf Hz, " in scored[0]
    whole = json.loads(scored[0].split(": ", 1)[1])
    assert whole["mae_db"] == pytest.approx(last, rel=1e-3)
    split = subprocess.run([sys.executable, script, "score", str(tmp_path / "validation.npz"),
                            str(out), "--edges", "0", "6000"], check=True, capture_output=True,
                           text=True).stdout.splitlines()
    crops = [int(line.split(" crops")[0].rsplit(" ", 1)[1]) for line in split]
    assert len(split) == 2 and sum(crops) == int(scored[0].split(" crops")[0].rsplit(" ", 1)[1])
    # more training files add their frames
    twice = tmp_path / "twice.safetensors"
    subprocess.run([sys.executable, script, "fit", str(tmp_path / "train.npz"),
                    str(tmp_path / "validation.npz"), "--more", str(tmp_path / "train.npz"),
                    "--epochs", "1", "--hidden", "4", "-o", str(twice)],
                   check=True, capture_output=True)
    assert bl.BandLevelModel.load(twice).meta["frames"] == 2 * meta["frames"] > 0
