"""VGGish network, front end, weight loading and the VGG distance, with random weights only."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from upband import metrics
from upband.errors import ModelError, SpecError
from upband.models import vggish as vg

#: torchvggish state-dict keys: conv layers at features.{0,3,6,8,11,13}, fc at embeddings.{0,2,4}.
TORCHVGGISH_KEYS = {
    *(f"features.{i}.{p}" for i in (0, 3, 6, 8, 11, 13) for p in ("weight", "bias")),
    *(f"embeddings.{i}.{p}" for i in (0, 2, 4) for p in ("weight", "bias")),
    "pproc._pca_matrix",
    "pproc._pca_means",
}


@pytest.fixture(scope="module")
def model() -> vg.VGGish:
    """Random weights, plus a random PCA that spreads the embeddings over the 0..255 range."""
    torch.manual_seed(0)
    net = vg.VGGish().eval()
    gen = torch.Generator().manual_seed(1)
    net.pproc._pca_matrix.copy_(20.0 * torch.randn(128, 128, generator=gen))
    net.pproc._pca_means.copy_(0.001 * torch.randn(128, 1, generator=gen))
    return net


def _sine(freq: float, seconds: float, sr: int) -> torch.Tensor:
    t = torch.arange(round(seconds * sr), dtype=torch.float64) / sr
    return 0.5 * torch.sin(2 * math.pi * freq * t)


def test_parameter_count_and_keys(model: vg.VGGish) -> None:
    # conv 4 499 712 + fc 67 641 472; the PCA (16 512 values) is buffers, not parameters
    assert sum(p.numel() for p in model.parameters()) == 72_141_184
    state = model.state_dict()
    assert set(state) == TORCHVGGISH_KEYS
    assert state["pproc._pca_matrix"].shape == (128, 128)
    assert state["pproc._pca_means"].shape == (128, 1)
    assert state["embeddings.0.weight"].shape == (4096, 512 * 6 * 4)


def test_frame_lengths() -> None:
    assert vg.frame_lengths(16_000) == (400, 160, 512)  # 25 ms, 10 ms, next power of two
    assert vg.frame_lengths(44_100) == (1102, 441, 2048)  # Sulun & Davies' 44.1 kHz front end


def test_mel_matrix() -> None:
    w = vg.mel_matrix(257, 16_000)
    assert w.shape == (257, 64)
    assert np.all(w >= 0) and np.all(w <= 1)
    assert np.all(w[0] == 0)  # no DC
    freqs = np.linspace(0, 8000, 257)
    assert np.all(w[freqs < 125.0] == 0) and np.all(w[freqs > 7500.0] == 0)
    assert np.all(w.max(axis=0) > 0.5)  # every band catches a bin near its centre
    with pytest.raises(SpecError):
        vg.mel_matrix(257, 16_000, max_hz=9000.0)  # above Nyquist


def test_front_end_shape_and_values() -> None:
    ex = vg.log_mel_examples(_sine(1000.0, 3.0, 16_000))
    # 1 + (48000 - 400) // 160 = 298 frames -> 3 examples of 96 frames
    assert ex.shape == (3, 1, 96, 64) and ex.dtype == torch.float32
    # the loudest band is the one whose centre is nearest 1 kHz
    edges = np.linspace(vg.hz_to_mel(125.0), vg.hz_to_mel(7500.0), 66)
    centres_hz = 700.0 * np.expm1(edges[1:-1] / 1127.0)
    loudest = int(ex[0, 0].mean(dim=0).argmax())
    assert loudest == int(np.argmin(np.abs(centres_hz - 1000.0)))
    # silence is log(0 + 0.01) everywhere
    silent = vg.log_mel_examples(torch.zeros(16_000))
    assert silent.shape == (1, 1, 96, 64)
    assert torch.all(silent == torch.tensor(math.log(0.01), dtype=torch.float32))
    with pytest.raises(SpecError, match="too short"):
        vg.log_mel_examples(torch.zeros(15_000))
    with pytest.raises(SpecError):
        vg.log_mel_examples(torch.zeros(2, 16_000))


def test_postprocess_hand_values() -> None:
    pproc = vg.Postprocessor()  # identity PCA, zero means
    raw = torch.zeros(1, 128)
    raw[0, :6] = torch.tensor([-3.0, -2.0, 0.0, 1.0, 2.0, 3.0])
    q = pproc(raw)[0, :6]
    # round((clip(e, -2, 2) + 2) * 255 / 4): 0, 0, 127.5 -> 128 (half to even), 191.25 -> 191
    assert q.tolist() == [0.0, 0.0, 128.0, 191.0, 255.0, 255.0]
    pproc._pca_means.fill_(1.0)
    pproc._pca_matrix.mul_(0.5)
    assert pproc(torch.full((1, 128), 3.0))[0, 0].item() == 191.0  # 0.5 * (3 - 1) = 1 -> 191


def test_random_weight_embeddings(model: vg.VGGish) -> None:
    ex = vg.log_mel_examples(_sine(440.0, 2.0, 16_000) + 0.01 * torch.randn(
        32_000, generator=torch.Generator().manual_seed(2), dtype=torch.float64))
    with torch.inference_mode():
        raw = model(ex)
        first = model.embed(ex)
        second = model.embed(ex)
        other = model.embed(vg.log_mel_examples(_sine(3000.0, 2.0, 16_000)))
    assert raw.shape == (2, 128) and torch.all(raw >= 0)  # final ReLU (torchvggish)
    assert first.shape == (2, 128)
    assert torch.equal(first, second)  # deterministic
    assert torch.equal(first, torch.round(first))
    assert first.min() >= 0 and first.max() <= 255
    assert len(torch.unique(first)) > 20  # the random PCA spreads the values
    assert not torch.equal(first, other)
    with pytest.raises(SpecError):
        model(torch.zeros(1, 1, 95, 64))
    assert vg.VGGish(final_relu=False).embeddings[-1].__class__ is torch.nn.Linear


def test_load_safetensors_roundtrip_and_distance(model: vg.VGGish, tmp_path: Path) -> None:
    half = {k: v.to(torch.float16).contiguous() for k, v in model.state_dict().items()}
    path = tmp_path / "vggish.safetensors"
    save_file(half, str(path))
    loaded = metrics.load_vggish(path)
    for key, value in loaded.state_dict().items():
        assert value.dtype == torch.float32
        assert torch.equal(value, half[key].to(torch.float32)), key
    assert not loaded.training

    sr = 44_100
    rng = np.random.default_rng(3)
    x = 0.1 * rng.standard_normal((2, 2 * sr))
    y = 0.1 * rng.standard_normal((2, 2 * sr))
    assert metrics.vgg_distance(x, x, sr, loaded) == 0.0
    d = metrics.vgg_distance(x, y, sr, loaded)
    assert isinstance(d, float) and 0.0 < d <= 255.0
    # the file path works too and gives the same value
    assert metrics.vgg_distance(x, y, sr, path) == d
    # batch == loop
    batch = metrics.vgg_distance(np.stack([x, x]), np.stack([y, x]), sr, loaded)
    assert isinstance(batch, np.ndarray)
    np.testing.assert_array_equal(batch, [d, 0.0])
    # full-band front end (Sulun & Davies): runs at the input rate
    assert metrics.vgg_distance(x, x, sr, loaded, full_band=True) == 0.0
    assert metrics.vgg_distance(x, y, sr, loaded, full_band=True) > 0.0


def test_load_pth_plus_separate_pca(model: vg.VGGish, tmp_path: Path) -> None:
    state = model.state_dict()
    net = {k: v.to(torch.bfloat16) for k, v in state.items() if not k.startswith("pproc.")}
    torch.save(net, tmp_path / "vggish.pth")
    # the TF / torchvggish PCA file names, means as a flat vector
    np.savez(tmp_path / "pca.npz", pca_eigen_vectors=state["pproc._pca_matrix"].numpy(),
             pca_means=state["pproc._pca_means"].numpy().ravel())
    loaded = metrics.load_vggish([tmp_path / "vggish.pth", tmp_path / "pca.npz"])
    assert torch.equal(loaded.pproc._pca_means, state["pproc._pca_means"])
    assert torch.equal(loaded.state_dict()["features.0.weight"],
                       net["features.0.weight"].to(torch.float32))

    with pytest.raises(ModelError, match="separate file"):
        metrics.load_vggish(tmp_path / "vggish.pth")


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not found"):
        metrics.load_vggish(tmp_path / "missing.safetensors")
    small = tmp_path / "small.safetensors"
    save_file({"features.0.weight": torch.zeros(64, 1, 3, 3), "extra": torch.zeros(1)}, str(small))
    with pytest.raises(ModelError, match="unexpected \\['extra'\\]"):
        metrics.load_vggish(small)
    wrong = tmp_path / "wrong.pth"
    state = {k: torch.zeros(1) for k in TORCHVGGISH_KEYS}
    torch.save(state, wrong)
    with pytest.raises(ModelError, match="has shape"):
        metrics.load_vggish(wrong)
    pickled = tmp_path / "pickled.pth"
    torch.save({"model": Path("x")}, pickled)  # an arbitrary object: refused, never executed
    with pytest.raises(ModelError, match="Python objects"):
        metrics.load_vggish(pickled)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="cannot read"):
        metrics.load_vggish(garbage)


def test_published_front_end_is_blind_above_8k(model: vg.VGGish) -> None:
    sr = 44_100
    rng = np.random.default_rng(4)

    def band(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
        spec = np.fft.rfft(x, axis=-1)
        f = np.fft.rfftfreq(x.shape[-1], 1 / sr)
        spec[..., (f < lo) | (f >= hi)] = 0
        return np.fft.irfft(spec, n=x.shape[-1], axis=-1)

    x = band(0.1 * rng.standard_normal((2, 2 * sr)), 0.0, 6000.0)
    y = x + band(0.3 * rng.standard_normal((2, 2 * sr)), 10_000.0, sr / 2)  # loud highs added
    # 16 kHz input, mel bands up to 7.5 kHz: the added highs never reach the network
    assert metrics.vgg_distance(x, y, sr, model) == 0.0
    # Sulun & Davies' 44.1 kHz front end with mel bands up to 22.05 kHz sees them
    assert metrics.vgg_distance(x, y, sr, model, full_band=True) > 1.0


def test_embedding_in_chunks_equals_all_at_once(model: vg.VGGish,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    sr = 16_000
    rng = np.random.default_rng(5)
    x = 0.1 * rng.standard_normal(3 * sr)  # 3 examples
    y = x + 0.05 * rng.standard_normal(3 * sr)
    whole = metrics.vgg_distance(x, y, sr, model)
    monkeypatch.setattr(metrics.perceptual, "_EMBED_BATCH", 2)
    assert metrics.vgg_distance(x, y, sr, model) == pytest.approx(whole, rel=1e-12)
    assert whole > 0.0
