"""TD-PR phase repair: the TFGAN vocoder (it sees only magnitudes, it learns, it resumes), the
phase replacement (ground-truth phase gives the reference back, the band below the cutoff is
left alone), the repaired model (chunked equals one pass, the merge keeps the input) and the
command line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from ddp_support import train_on_two_ranks
from upband import metrics
from upband.cli import main
from upband.enhancement import enhance, load_enhancer
from upband.enhancement.chunking import run_chunked
from upband.enhancement.loading import load_vocoder
from upband.enhancement.phase import PhaseRepaired, griffin_lim, phase_stft, replace_phase
from upband.errors import ModelError
from upband.models import build_model
from upband.models.tfgan import TFGANVocoder, mel_filterbank
from upband.states import load_model, save_model
from upband.train.config import load_config
from upband.train.loop import train

SR = 16_000
#: A tiny vocoder at 16 kHz (the structure of ``tfgan``, a few thousand parameters).
TINY = {"sample_rate_hz": SR, "n_fft": 256, "hop": 64, "mels": 20, "ratios": (4, 4, 4),
        "mult": 16, "res_layers": 2}


def _tiny_vocoder(seed: int = 0, loud: bool = False) -> TFGANVocoder:
    """Random weights; ``loud``: the last layer's gain x 30, so that the output is as loud as
    music (a trained vocoder's) rather than a fresh one's whisper."""
    torch.manual_seed(seed)
    vocoder = build_model("tfgan", **TINY)
    assert isinstance(vocoder, TFGANVocoder)
    if loud:
        with torch.no_grad():
            vocoder.head.parametrizations.weight.original0.mul_(30.0)
    return vocoder.eval()


def _music(seconds: float, sr: int = SR, seed: int = 0, channels: int = 1) -> np.ndarray:
    """Harmonic tones with a decaying envelope per note, full band."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    out = np.zeros((channels, t.size))
    for _ in range(12):
        f0, start = rng.uniform(110, 880), rng.uniform(0, seconds)
        env = np.where(t >= start, np.exp(-(t - start) * rng.uniform(1, 4)), 0.0)
        for k in range(1, int(sr / 2 / f0)):
            out += env * rng.uniform(0.1, 1.0, (channels, 1)) / k * np.sin(
                2 * np.pi * k * f0 * t + rng.uniform(0, 2 * np.pi))
    return (0.3 * out / np.abs(out).max()).astype(np.float32)


def _lowpass_bins(x: np.ndarray, below_hz: float, sr: int = SR) -> np.ndarray:
    spec = np.fft.rfft(x, axis=-1)
    spec[..., np.fft.rfftfreq(x.shape[-1], 1 / sr) >= below_hz] = 0
    return np.fft.irfft(spec, n=x.shape[-1], axis=-1)


def test_paper_vocoder_size_and_the_stft_of_the_repair() -> None:
    paper = build_model("tfgan")
    assert 5.5e6 < paper.num_parameters() < 6.5e6  # TD-PR Table 1: "+6M"
    assert (paper.n_fft, paper.hop, paper.sample_rate) == (1024, 256, 16_000)
    assert phase_stft(16_000) == (1024, 256)  # the paper's STFT
    assert phase_stft(44_100) == (2048, 512) and phase_stft(22_050) == (1024, 256)
    product = build_model("tfgan-s")
    assert product.sample_rate == 44_100 and product.num_parameters() < 1e6
    bank = mel_filterbank(SR, 256, 20)
    assert bank.shape == (20, 129) and np.all(bank >= 0)
    # unit area: a flat spectrum gives every band the same value
    widths = np.full(129, SR / 256)
    assert np.allclose(bank @ widths, 1.0, rtol=0.1)


def test_vocoder_sees_only_the_magnitude() -> None:
    """-x has the STFT magnitude of x and another phase: the vocoder cannot tell them apart."""
    vocoder = _tiny_vocoder()
    x = torch.from_numpy(_music(0.5))[None]
    with torch.no_grad():
        a, b = vocoder(x), vocoder(-x)
    assert a.shape == x.shape
    torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    assert float(a.abs().max()) > 0


def test_vocoder_receptive_field_bounds_the_gradient() -> None:
    vocoder = _tiny_vocoder()
    n = 4 * vocoder.receptive_field
    x = torch.randn(1, 1, n, requires_grad=True)
    vocoder(x)[0, 0, n // 2].backward()
    assert x.grad is not None
    reach = torch.nonzero(x.grad[0, 0]).flatten()
    assert int(reach.max() - reach.min()) + 1 <= vocoder.receptive_field


def test_ground_truth_phase_gives_back_the_reference() -> None:
    """Partials with the reference's amplitudes and scrambled phases (the magnitude a model
    gets right, its phase wrong): the reference's phase restores the reference."""
    rng = np.random.default_rng(1)
    t = np.arange(2 * SR) / SR
    freqs, amps = np.arange(300, 7800, 500.0), rng.uniform(0.01, 0.1, 15)
    phases = rng.uniform(0, 2 * np.pi, 15)
    ref = (amps[:, None] * np.sin(2 * np.pi * freqs[:, None] * t + phases[:, None])).sum(0)
    wrong = (amps[:, None] * np.sin(2 * np.pi * freqs[:, None] * t +
                                    rng.uniform(0, 2 * np.pi, 15)[:, None])).sum(0)
    inner = slice(SR // 4, -SR // 4)  # away from the STFT's padded edges
    assert metrics.snr(ref[inner], wrong[inner]) < 3
    out = replace_phase(torch.tensor(wrong[None]), torch.tensor(ref[None]), SR).double().numpy()
    assert metrics.snr(ref[inner], out[0, inner]) > 60
    # above 4 kHz only: the partials below keep the wrong phase, those above get the reference's
    half = replace_phase(torch.tensor(wrong[None]), torch.tensor(ref[None]), SR,
                         above_hz=4000.0).double().numpy()[0]
    assert metrics.snr(_lowpass_bins(ref, 4000)[inner], _lowpass_bins(half, 4000)[inner]) < 3
    high_ref, high_out = ref - _lowpass_bins(ref, 4000), half - _lowpass_bins(half, 4000)
    assert metrics.snr(high_ref[inner], high_out[inner]) > 40


@pytest.mark.parametrize("source", ["tdpr", "griffin-lim"])
def test_repair_leaves_the_band_below_the_cutoff_alone(source: str) -> None:
    base = build_model("upband_unittest")
    base.sample_rate = SR
    vocoder = _tiny_vocoder(loud=True) if source == "tdpr" else None
    repaired = PhaseRepaired(base, vocoder, source).eval()
    x = torch.from_numpy(_music(1.0, channels=2))[None]
    with torch.no_grad():
        y, z = base(x, None).numpy()[0], repaired(x, 3000.0).numpy()[0]
    inner = slice(SR // 8, -SR // 8)
    # below the cutoff the repaired output is the model's (up to the STFT's leakage) ...
    low_y, low_z = _lowpass_bins(y, 2800), _lowpass_bins(z, 2800)
    assert metrics.snr(low_y[:, inner], low_z[:, inner]) > 40
    # ... above it the phase changed, the magnitude did not (much)
    high_y, high_z = y - _lowpass_bins(y, 3300), z - _lowpass_bins(z, 3300)
    assert metrics.snr(high_y[:, inner], high_z[:, inner]) < 20
    ey, ez = (high_y[:, inner] ** 2).sum(), (high_z[:, inner] ** 2).sum()
    assert 0.5 < ez / ey < 2.0
    if source == "griffin-lim":  # Griffin-Lim moves towards a consistent spectrogram
        assert griffin_lim(torch.tensor(y), SR, iterations=0).shape == (2, y.shape[-1])


def test_repaired_model_chunked_equals_one_pass_and_the_merge_keeps_the_input() -> None:
    base = build_model("upband_unittest")
    base.sample_rate = SR
    repaired = PhaseRepaired(base, _tiny_vocoder(loud=True)).eval()
    wav = _music(3.0, channels=2)
    with torch.no_grad():
        whole = repaired(torch.from_numpy(wav)[None], 3000.0)[0].numpy()
    chunked = run_chunked(repaired, wav, chunk=SR // 2, overlap=SR // 16, cutoff_hz=3000.0)
    # equal up to float rounding, which taking the phase of a quiet bin magnifies a little
    np.testing.assert_allclose(chunked, whole, atol=2e-4)
    assert metrics.snr(whole, chunked) > 70
    # through enhance(): the input's band below its detected cutoff is the input's
    lowpassed = _lowpass_bins(wav, 3000).astype(np.float32)
    out, rate = enhance(lowpassed, SR, model=repaired, device="cpu", output_sample_rate=SR,
                        clip_mode="none")
    plain, _ = enhance(lowpassed, SR, model=base, device="cpu", output_sample_rate=SR,
                       clip_mode="none")
    assert rate == SR and out.shape == wav.shape
    low_in, low_out = _lowpass_bins(lowpassed, 2500), _lowpass_bins(out, 2500)
    assert metrics.snr(low_in, low_out) > 50
    assert not np.allclose(out, plain, atol=1e-4)  # the repair did change the high band


def test_loading_a_repaired_model(tmp_path: Path) -> None:
    assert isinstance(load_enhancer("upband_unittest+griffin-lim"), PhaseRepaired)
    vocoder = build_model("tfgan-s", mult=16, res_layers=1)
    path = tmp_path / "vocoder.safetensors"
    save_model(vocoder, path, sample_rate=44_100)
    net = load_enhancer("upband_unittest", phase_repair=str(path))
    assert isinstance(net, PhaseRepaired) and net.source == "tdpr"
    assert net.receptive_field > vocoder.receptive_field
    with pytest.raises(ModelError, match="is not a vocoder"):
        load_enhancer("upband_unittest", phase_repair="upband_unittest")
    at_16k = tmp_path / "v16.safetensors"
    save_model(_tiny_vocoder(), at_16k, sample_rate=SR)
    with pytest.raises(ModelError, match="the vocoder works at 16000 Hz but the model at 44100"):
        load_enhancer("upband_unittest", phase_repair=str(at_16k))


def test_enhance_command_with_phase_repair(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    wav = _lowpass_bins(_music(2.0, sr=44_100, channels=2), 6000, sr=44_100)
    src = tmp_path / "in.wav"
    sf.write(src, wav.T, 44_100, subtype="FLOAT")
    vocoder = tmp_path / "vocoder.safetensors"
    save_model(build_model("tfgan-s", mult=16, res_layers=1), vocoder, sample_rate=44_100)
    common = [str(src), "--model", "upband_unittest", "--no-guard", "--clip-mode", "none"]
    assert main(["enhance", *common, "-o", str(tmp_path / "plain.wav")]) == 0
    assert main(["enhance", *common, "-o", str(tmp_path / "tdpr.wav"),
                 "--phase-repair", str(vocoder)]) == 0
    plain, _ = sf.read(tmp_path / "plain.wav", always_2d=True)
    fixed, _ = sf.read(tmp_path / "tdpr.wav", always_2d=True)
    assert plain.shape == fixed.shape == wav.T.shape
    assert not np.allclose(plain, fixed, atol=1e-4)
    low = (_lowpass_bins(plain.T, 5000, 44_100), _lowpass_bins(fixed.T, 5000, 44_100))
    assert metrics.snr(*low) > 40
    assert main(["enhance", *common, "-o", str(tmp_path / "x.wav"),
                 "--phase-repair", "upband_unittest"]) == 2
    assert "is not a vocoder" in capsys.readouterr().err


VOCODER_RUN = [
    "data.corpus=synthetic", "data.synthetic={files=[3, 1, 0], seconds=2.0}",
    f"data.sample_rate={SR}", "data.channels=1", "data.crop_samples=4096",
    "data.context_samples=0", "data.preset=tdpr", "model.name=tfgan",
    "model.kwargs={n_fft=256, hop=64, mels=20, ratios=[4, 4, 4], mult=16, res_layers=2}",
    "train.task=vocoder", "optim.name=adam", "optim.lr=1e-3", "optim.betas=[0.5, 0.9]",
    "loss.mse=0", "loss.mrstft=1", "loss.stft_ffts=[256, 512, 128]",
    "loss.stft_hops=[32, 64, 16]", "loss.stft_windows=[150, 300, 60]", "loss.time=20",
    "gan.freq_fft=256", "gan.freq_hop=64", "train.batch_size=4", "train.log_every=10",
    "validation.max_files=2", "validation.seconds=1.0", "validation.offset_seconds=0.5",
    "validation.unseen_preset=", "checkpoint.best_metric=copy_mrstft", "checkpoint.best_mode=min",
    "runtime.progress=false", "runtime.tensorboard=false", "runtime.threads=1",
]


def test_vocoder_learns_copy_synthesis(tmp_path: Path) -> None:
    config = load_config(None, [*VOCODER_RUN, "train.max_steps=60", "validation.every=60",
                                "gan.start_step=1000000"])
    result = train(config, tmp_path / "run", quiet=True)
    first, last = result.validations[0], result.validations[-1]
    assert last["copy_mrstft"] < 0.85 * first["copy_mrstft"]
    assert last["copy_mel_l1"] < first["copy_mel_l1"]
    assert (tmp_path / "run/best.safetensors").exists()
    assert isinstance(load_model(tmp_path / "run/best.safetensors"), TFGANVocoder)
    with pytest.raises(ModelError, match="is a vocoder: it repairs another model's phase"):
        load_enhancer(tmp_path / "run/best.safetensors")


def test_vocoder_gan_phase_trains_the_discriminators_and_resumes(tmp_path: Path) -> None:
    extra = ["validation.every=0", "checkpoint.every=2", "gan.start_step=2",
             "gan.feature_match=2"]
    whole = train(load_config(None, [*VOCODER_RUN, "train.max_steps=4", *extra]),
                  tmp_path / "whole", quiet=True)
    train(load_config(None, [*VOCODER_RUN, "train.max_steps=2", *extra]), tmp_path / "cut",
          quiet=True)
    again = train(load_config(None, [*VOCODER_RUN, "train.max_steps=4", *extra]),
                  tmp_path / "cut", quiet=True, resume=True)
    assert (whole.step, again.start_step, again.step) == (4, 2, 4)
    rows = (tmp_path / "whole/metrics.csv").read_text().splitlines()
    header = rows[0].split(",")
    assert {"train_critic", "train_adversarial", "train_time", "train_mrstft"} <= set(header)
    from safetensors.torch import load_file
    for name in ("model", "critics", "generator", "discriminators"):
        a = load_file(tmp_path / f"whole/checkpoints/step-00000004/{name}.safetensors")
        b = load_file(tmp_path / f"cut/checkpoints/step-00000004/{name}.safetensors")
        assert a.keys() == b.keys() and a
        for key in a:
            assert torch.equal(a[key], b[key]), (name, key)
    c0 = load_file(tmp_path / "cut/checkpoints/step-00000002/critics.safetensors")
    c1 = load_file(tmp_path / "cut/checkpoints/step-00000004/critics.safetensors")
    assert any(not torch.equal(c0[k], c1[k]) for k in c0)  # the critics trained after step 2


def test_evaluate_takes_repaired_systems_and_the_ground_truth_phase(tmp_path: Path) -> None:
    from upband.evaluate import evaluate
    from upband.evaluate.runner import model_label

    assert model_label("/runs/seanet.safetensors+tdpr") == "seanet+tdpr"
    assert model_label("upband-default+gt-phase") == "upband-default+gt-phase"
    root = tmp_path / "music"
    root.mkdir()
    sf.write(root / "a.wav", _music(2.0, sr=44_100, channels=2).T, 44_100)
    vocoder = tmp_path / "vocoder.safetensors"
    save_model(build_model("tfgan-s", mult=16, res_layers=1), vocoder, sample_rate=44_100)
    systems = ["upband_unittest", "upband_unittest+gt-phase", "upband_unittest+tdpr",
               "upband_unittest+griffin-lim"]
    ev = evaluate(root, "sulun", models=systems, baselines=["input"], visqol=False,
                  vocoder=str(vocoder), output=tmp_path / "report", jobs=1)
    assert not ev.failed
    snr = {(c, s): v for c, s, m, v in ev.results[0].rows if m == "snr"}
    for cond in ("seen", "unseen"):
        values = [snr[(cond, s)] for s in systems]
        assert len(set(values)) == 4, values  # four different systems
        # the reference's phase with the model's magnitude is never further from the
        # reference than the model's own phase: | |M| - |X| | <= |M - X| in every bin
        assert snr[(cond, "upband_unittest+gt-phase")] >= snr[(cond, "upband_unittest")] - 0.05
    assert "upband_unittest+tdpr" in (tmp_path / "report/report.md").read_text()


def test_vocoder_gan_trains_under_ddp(tmp_path: Path) -> None:
    """Two gloo processes as torchrun starts them: the generator and the discriminators hold
    the same weights on both ranks after GAN steps (their gradients are averaged)."""
    config = load_config(None, [*VOCODER_RUN, "train.max_steps=3", "train.batch_size=2",
                                "validation.every=0", "checkpoint.every=3", "gan.start_step=1"])
    ranks = train_on_two_ranks(config, tmp_path / "run", tmp_path / "out", ("model", "critics"))
    for name, (a, b) in ranks.items():
        assert a.keys() == b.keys() and a
        for key in a:
            assert torch.equal(a[key], b[key]), (name, key)
    assert (tmp_path / "run/checkpoints/step-00000003/critics.safetensors").exists()
    assert not (tmp_path / "run-1").exists()


def test_a_vocoder_with_the_repair_stft_shares_it_and_still_chunks() -> None:
    """tfgan-s has the repair's STFT (2048 / 512 at 44.1 kHz): the model output's STFT feeds
    the vocoder and the repair at once, with the result of the two-STFT definition, and a
    chunked run still equals one pass."""
    torch.manual_seed(0)
    vocoder = build_model("tfgan-s", mult=16, res_layers=1).eval()
    assert isinstance(vocoder, TFGANVocoder)
    with torch.no_grad():
        vocoder.head.parametrizations.weight.original0.mul_(30.0)
    base = build_model("upband_unittest").eval()
    wav = _music(3.0, sr=44_100, channels=2)
    x = torch.from_numpy(wav)[None]
    with torch.no_grad():
        y = base(x, None)
        each = replace_phase(y, vocoder(y), 44_100, above_hz=6000.0)[0]
        # mid: the vocoder hears the channels' mean; every channel gets its phase
        mid = replace_phase(y, vocoder(y.mean(dim=1, keepdim=True)).expand_as(y), 44_100,
                            above_hz=6000.0)[0]
    inner = slice(0, -22_050)  # the end differs by where each pads to its stride
    for mode, by_definition in (("each", each), ("mid", mid)):
        repaired = PhaseRepaired(base, vocoder, channels=mode).eval()
        with torch.no_grad():
            whole = repaired(x, 6000.0)[0]
        assert metrics.snr(by_definition.numpy()[:, inner], whole.numpy()[:, inner]) > 70, mode
        chunked = run_chunked(repaired, wav, chunk=44_100, overlap=4096, cutoff_hz=6000.0)
        np.testing.assert_allclose(chunked, whole.numpy(), atol=2e-4)
        assert metrics.snr(whole.numpy(), chunked) > 70
    # a mono input (two copies in this stereo model: nearly its own mid); an unknown mode fails
    with torch.no_grad():
        one = repaired(x[:, :1], 6000.0)
        alone = PhaseRepaired(base, vocoder, channels="each")(x[:, :1], 6000.0)
    assert one.shape == (1, 1, wav.shape[-1]) and metrics.snr(alone.numpy(), one.numpy()) > 40
    with pytest.raises(ValueError, match="use 'mid' or 'each'"):
        PhaseRepaired(base, vocoder, channels="left")


def test_the_mid_pass_gives_each_channel_the_phase_of_the_mix() -> None:
    """With the shipped vocoder (a random one's phase hardly depends on its input) and two
    different channels: ``"mid"`` differs from ``"each"`` in the repaired band only, and each
    channel keeps its own level there."""
    vocoder = load_vocoder(True, 44_100).eval()
    torch.manual_seed(0)
    base = build_model("upband_unittest").eval()
    wav = np.stack([_music(2.0, sr=44_100)[0], _music(2.0, sr=44_100, seed=5)[0]])
    x = torch.from_numpy(wav)[None]
    with torch.no_grad():
        y = base(x, None)[0].numpy()
        out = {mode: PhaseRepaired(base, vocoder, channels=mode)(x, 6000.0)[0].numpy()
               for mode in ("each", "mid")}
    inner = slice(4096, -4096)
    low = {mode: _lowpass_bins(v, 5500, sr=44_100)[:, inner] for mode, v in out.items()}
    high = {mode: (v - _lowpass_bins(v, 6500, sr=44_100))[:, inner] for mode, v in out.items()}
    assert metrics.snr(low["each"], low["mid"]) > 40
    assert metrics.snr(high["each"], high["mid"]) < 20
    window = torch.hann_window(2048)
    band = slice(300, 1000)  # 6.5-21.5 kHz
    energy = {k: (torch.stft(torch.from_numpy(v), 2048, 512, window=window,
                             return_complex=True)[:, band, 8:-8].abs() ** 2).sum(dim=(1, 2))
              for k, v in (("y", y), *out.items())}
    # each channel keeps its own level there (a repaired phase loses some to inconsistency)
    for ratio in (energy["mid"] / energy["y"], energy["mid"] / energy["each"]):
        assert bool(((ratio > 0.6) & (ratio < 1.5)).all()), ratio
