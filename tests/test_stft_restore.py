"""stft-restore: the cutoff-aware frame-domain restorer, and the cutoff's way to it (training
crops, validation, the product's pipeline)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from upband.data.cutoffs import JITTER, UNDER_RANGE, nominal_cutoff, training_cutoff
from upband.data.synthetic import synthetic_source
from upband.degrade import presets
from upband.enhancement.chunking import ChunkRunner, run_chunked
from upband.enhancement.pipeline import model_stage
from upband.enhancement.settings import Settings
from upband.errors import ModelError
from upband.models import build_model, stft_restore
from upband.models.stft_restore import cap_tones, estimate_cutoff, patch_sources
from upband.states import load_model, load_pretrained
from upband.train.data import collate_pairs

SR = 44_100


def random_head(model: torch.nn.Module, std: float = 0.05, seed: int = 0) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        model.out.weight.copy_(torch.randn(model.out.weight.shape, generator=gen) * std)
        model.out.bias.copy_(torch.randn(model.out.bias.shape, generator=gen) * std)


def band_power(x: np.ndarray, lo: float, hi: float) -> float:
    spec = np.abs(np.fft.rfft(x, axis=-1)) ** 2
    freqs = np.fft.rfftfreq(x.shape[-1], 1 / SR)
    return float(spec[..., (freqs >= lo) & (freqs < hi)].sum())


def lowpassed_noise(cutoff: float, seconds: float = 2.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = (0.1 * rng.standard_normal((2, int(seconds * SR)))).astype(np.float32)
    return presets.apply(noise, SR, {"type": "lowpass", "cutoff_hz": cutoff,
                                     "family": "butter", "order": 8})


def test_fresh_model_is_exact_identity_with_any_cutoff() -> None:
    model = build_model("stft-restore").eval()
    x = torch.randn(2, 2, 20_000) * 0.2
    with torch.inference_mode():
        for cutoff in (None, 4000.0, torch.tensor([6000.0, 16000.0]), 30_000.0):
            assert torch.equal(model(x, cutoff), x)


def test_changes_only_the_band_above_the_cutoff() -> None:
    torch.manual_seed(0)  # the body's initial weights (the head is random_head's)
    model = build_model("stft-restore").eval()
    random_head(model)
    x = torch.from_numpy(lowpassed_noise(8000.0))[None]
    with torch.inference_mode():
        y = model(x, 8000.0)[0].numpy()
    d = y - x[0].numpy()
    # the correction below the cutoff is the STFT's leakage of a changed band: 50.7-66.4 dB
    # down over 20 random bodies (49.9 once, when the body was not seeded): over 45 dB
    below, above = band_power(d, 0, 7000), band_power(d, 8200, SR / 2)
    assert above > 0 and below < 3e-5 * above
    # the band above the cutoff gets content (the patch): far more than the filter left there
    assert band_power(y, 11_000, 20_000) > 100 * band_power(x[0].numpy(), 11_000, 20_000)


def test_patch_copies_whole_multiples_of_the_phase_step() -> None:
    step = 4
    kc = torch.tensor([100, 233, 513])
    src = patch_sources(kc, 513, step)
    k = torch.arange(513)
    for b, c in enumerate(kc.tolist()):
        width = max(c // 2 // step * step, step)
        above = k >= c
        shift = k[above] - src[b, above]
        assert torch.all(shift % width == 0) and torch.all(shift >= width)
        assert torch.all((src[b, above] >= c - width) & (src[b, above] < c))
        assert torch.equal(src[b, ~above], k[~above])


def test_the_cap_takes_a_tonal_line_down_to_its_neighbours_and_keeps_phases() -> None:
    gen = torch.Generator().manual_seed(0)
    noise = torch.complex(torch.randn(2, 200, 30, generator=gen), torch.randn(2, 200, 30,
                                                                              generator=gen))
    patch = noise.clone()
    patch[:, 100] = 100.0 * np.sqrt(2) * torch.exp(1j * noise[:, 100].angle())  # +40 dB
    assert torch.equal(cap_tones(patch, None), patch)

    def height_db(p: torch.Tensor) -> float:  # the line over the mean power of bins 150-190
        power = p.abs().square().mean(dim=(0, 2))
        return float(10 * torch.log10(power[100] / power[150:190].mean()))

    assert height_db(patch) == pytest.approx(40.0, abs=0.5)
    for peak in (3.0, 6.0):
        capped = cap_tones(patch, peak)
        # the line's 15 bins' geometric mean rises by 40 / 15 dB: the cap sits that much higher
        assert height_db(capped) == pytest.approx(peak + 40 / 15, abs=0.7)
        assert torch.allclose(torch.angle(capped), torch.angle(patch), atol=1e-5)
        # noise far from the line loses only its few bins above the cap
        far = slice(150, 190)
        ratio = capped[:, far].abs().square().mean() / patch[:, far].abs().square().mean()
        assert -1.0 < 10 * float(torch.log10(ratio)) <= 0.0
    with pytest.raises(ModelError, match="patch_peak_db must be at least 0"):
        build_model("stft-restore", patch_peak_db=-1.0)


@pytest.mark.parametrize("kwargs", [{"patch_peak_db": 6.0}, {"smooth_bins": 9}])
def test_flattened_or_smoothed_model_is_identity_at_init_and_chunks_exactly(
        kwargs: dict[str, float]) -> None:
    model = build_model("stft-restore", **kwargs).eval()
    x = torch.from_numpy(lowpassed_noise(8000.0, seconds=1.0))[None]
    with torch.inference_mode():
        assert torch.equal(model(x, 8000.0), x)
    random_head(model)
    with torch.inference_mode():
        whole = model(x, 8000.0)[0].numpy()
        chunked = run_chunked(model, x[0].numpy(), chunk=8192, cutoff_hz=8000.0)
    assert np.abs(whole - x[0].numpy()).max() > 1e-3  # the random head changes the band
    assert np.abs(chunked - whole).max() < 1e-5


def test_estimate_finds_a_steep_cutoff() -> None:
    x = torch.from_numpy(lowpassed_noise(9000.0))
    spec = torch.stft(x, 1024, 256, window=torch.hann_window(1024), return_complex=True)
    found = estimate_cutoff(spec.abs().square().mean(0, keepdim=True), SR)
    # the content ends where the zero-phase Butterworth 8 (16th order in power) is 55 dB down
    assert 8500 < float(found[0]) < 9000 * (10 ** (55 / 10)) ** (1 / 32) * 1.04


def test_learns_to_restore_a_filtered_band() -> None:
    """A few dozen steps on one filter: the output moves towards the clean target."""
    torch.manual_seed(0)
    model = build_model("stft-restore", dim=32, blocks=2)
    clean = torch.from_numpy(np.stack([
        presets.apply(np.random.default_rng(s).standard_normal((1, 16_384)).astype(np.float32)
                      * 0.1, SR, {"type": "lowpass", "cutoff_hz": 16_000.0,
                                  "family": "butter", "order": 8})
        for s in range(4)]))
    degraded = torch.from_numpy(presets.apply(clean.numpy().reshape(4, 16_384), SR, {
        "type": "lowpass", "cutoff_hz": 6000.0, "family": "butter", "order": 4})
    ).reshape(4, 1, -1).float()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)

    def error() -> float:
        with torch.no_grad():
            return float((model(degraded, 6000.0) - clean).pow(2).mean())

    before = error()
    for _ in range(60):
        opt.zero_grad()
        (model(degraded, 6000.0) - clean).pow(2).mean().backward()
        opt.step()
    assert error() < 0.8 * before


def test_nominal_cutoffs() -> None:
    low = presets.params_from_dict({"type": "lowpass", "cutoff_hz": 7000.0,
                                    "family": "cheby1", "order": 6})
    assert nominal_cutoff(low, SR) == 7000.0
    assert nominal_cutoff(presets.params_from_dict({"type": "decimate", "r": 4}), SR) == SR / 8
    mp3 = presets.params_from_dict({"type": "codec", "codec": "mp3", "bitrate_kbps": 64})
    assert 9000 < nominal_cutoff(mp3, SR) < 17_000  # LAME's own low-pass at 64 kbit/s
    rng = np.random.default_rng(0)
    draws = [training_cutoff(low, SR, 2, rng) for _ in range(200)]
    assert JITTER[0] * 7000 <= min(draws) < max(draws) <= JITTER[1] * 7000
    under = np.array([training_cutoff(low, SR, 2, rng, under=0.3) for _ in range(2000)])
    below = under < JITTER[0] * 7000  # told a cutoff under the true one, as on dark music
    assert 0.25 < below.mean() < 0.35
    assert UNDER_RANGE[0] * 7000 <= under.min() and np.median(under[below]) < 7000 / 2


def test_crops_carry_their_cutoff_only_when_asked() -> None:
    from upband.data.dataset import CropDataset

    source = synthetic_source(sample_rate=SR, seed=0, channels=2)
    plain = CropDataset(source, "train", crop_samples=4096, preset="sulun-single", length=4)
    told = CropDataset(source, "train", crop_samples=4096, preset="sulun-single", length=4,
                       cutoffs=True)
    a, b = plain[1], told[1]
    assert "cutoff_hz" not in a and torch.equal(a["input"], b["input"])
    assert JITTER[0] * 11_025 <= b["cutoff_hz"] <= JITTER[1] * 11_025  # Chebyshev @ 11 025 Hz
    batch = collate_pairs([told[0], told[1]])
    assert batch["cutoff_hz"].shape == (2,) and "cutoff_hz" not in collate_pairs([a])


def test_pipeline_tells_the_model_the_merge_cutoff() -> None:
    from upband.analysis import detect_bandwidth
    from upband.enhancement.pipeline import choose_route

    model = build_model("stft-restore").eval()
    x = lowpassed_noise(9000.0, seconds=3.0)
    route = choose_route(detect_bandwidth(x, SR), SR, 2, model, Settings())
    stage = model_stage(model, route, Settings())
    assert isinstance(stage, ChunkRunner)
    assert route.merge_cutoff_hz is not None and stage.cutoff_hz == route.merge_cutoff_hz
    assert 8000 < stage.cutoff_hz < 10_000
    arunet_route = choose_route(detect_bandwidth(x, SR), SR, 2, build_model("arunet-xs"),
                                Settings())
    assert model_stage(build_model("arunet-xs"), arunet_route, Settings()).cutoff_hz is None


@pytest.mark.parametrize("channels", [1, 2, 3])
def test_any_channel_count_gets_its_own_band(channels: int) -> None:
    model = build_model("stft-restore").eval()
    random_head(model)
    x = torch.from_numpy(np.concatenate([lowpassed_noise(7000.0, 1.0, seed=s)[:1]
                                         for s in range(channels)]))[None]
    with torch.inference_mode():
        y = model(x, 7000.0)
    assert y.shape == x.shape and torch.isfinite(y).all()
    for c in range(channels):
        assert band_power((y - x)[0, c].numpy(), 9000, 20_000) > 0


def test_reconfigure_script_copies_the_tensors_with_new_arguments(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """scripts/reconfigure_model.py: the shipped weights with the envelope recipe's arguments
    (configs/upband-envelope.toml starts from such a copy), and a one-line error for an
    argument that would change a tensor's shape."""
    spec = importlib.util.spec_from_file_location(
        "reconfigure_model", Path(__file__).resolve().parents[1] / "scripts/reconfigure_model.py")
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    out = tmp_path / "init.safetensors"
    assert script.main(["upband-default", str(out), "smooth_bins=9", "patch_peak_db=6.0"]) == 0
    shipped, copy = load_pretrained("upband-default"), load_model(out)
    assert copy.config == {**shipped.config, "smooth_bins": 9, "patch_peak_db": 6.0}
    assert all(torch.equal(a, b) for a, b in zip(shipped.state_dict().values(),
                                                 copy.state_dict().values(), strict=True))
    capsys.readouterr()
    assert script.main(["upband-default", str(tmp_path / "x.safetensors"), "dim=64"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "changes the tensors' shapes" in err


@pytest.mark.parametrize("config", [{}, {"channels": 2, "smooth_bins": 9, "patch_peak_db": 6.0}])
def test_the_bins_under_the_cutoff_are_not_computed_and_would_change_nothing(
        config: dict[str, object], monkeypatch: pytest.MonkeyPatch) -> None:
    # the output layer computes the bins from just under the batch's lowest cutoff bin up; all
    # of them give the same output to the last bit
    net = build_model("stft-restore", dim=16, blocks=1, **config).eval()  # type: ignore[arg-type]
    random_head(net, std=0.3)
    chans = net.channels
    x = torch.from_numpy(lowpassed_noise(18_000.0))[:1, None]  # [1, 1, T]
    x = torch.cat([x.repeat(1, chans, 1), 0.5 * x.roll(999, -1).repeat(1, chans, 1)])
    cuts = torch.tensor([4000.0, 15000.0])
    firsts: list[int] = []
    first_bin = type(net)._first_bin
    monkeypatch.setattr(type(net), "_first_bin",
                        lambda self, kc: firsts.append(first_bin(self, kc)) or firsts[-1])
    with torch.inference_mode():
        outs = [net(x, cuts), net(x[1:], cuts[1:])]
        monkeypatch.setattr(type(net), "_first_bin", lambda self, kc: 0)
        fulls = [net(x, cuts), net(x[1:], cuts[1:])]
    assert firsts == [93 - 7, 349 - 7]  # ceil(4 000 / 43.07), ceil(15 000 / 43.07); 15 bins
    for out, full in zip(outs, fulls, strict=True):
        assert torch.equal(out, full)
    for i, cut in enumerate(cuts.tolist()):  # and the model did change each item's band
        d = outs[0][i].numpy() - x[i].numpy()
        assert band_power(d, cut + 500, 20_000) > 1e-3 * band_power(x[i].numpy(), cut + 500,
                                                                     20_000)


@pytest.mark.parametrize("native", [True, False])
def test_inference_runs_the_body_in_bfloat16_only_where_the_cpu_has_it(
        monkeypatch: pytest.MonkeyPatch, native: bool) -> None:
    model = load_pretrained("upband-default").eval()
    x = torch.from_numpy(lowpassed_noise(8000.0, seconds=1.0))[None]
    monkeypatch.setattr(stft_restore, "BF16_BODY", False)
    with torch.inference_mode():
        reference = model(x, 8000.0) - x  # the band the model adds, all in float32
    monkeypatch.setattr(stft_restore, "BF16_BODY", True)
    monkeypatch.setattr(stft_restore, "native_bf16", lambda: native)
    with torch.inference_mode():
        added = model(x, 8000.0) - x
    with torch.enable_grad():  # training: float32 whatever the CPU
        assert torch.equal(model(x, 8000.0).detach() - x, reference)
    assert float(reference.square().sum()) > 1e-3 * float(x.square().sum())  # a real band
    error = float((added - reference).square().sum() / reference.square().sum())
    if native:  # a bfloat16 body: not the same numbers, the same band to far under -40 dB
        assert 0 < error < 1e-4
    else:
        assert error == 0
