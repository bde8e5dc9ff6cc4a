"""Lattner & Nistal's MP3 restorer, the pieces: the signed-root STFT and its exact inverse, the
generator's sizes and receptive field, the two-view critic, the gradient penalty and the
profile loss against their definitions, and a short WGAN run that learns."""

from __future__ import annotations

import csv
import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import signal

from upband import metrics
from upband.data import ValItem
from upband.degrade import codecs
from upband.models import MODELS, build_model
from upband.models.lattner import LattnerGenerator
from upband.models.lattner_critic import LattnerCritic
from upband.models.signed_sqrt import (
    analyse,
    magnitude,
    power,
    root_magnitude,
    signed_sqrt,
    signed_square,
    synthesise,
)
from upband.states import load_model, save_model
from upband.train.config import load_config
from upband.train.data import TrainData
from upband.train.loop import train
from upband.train.losses import profile_loss
from upband.train.tasks.wgan import LattnerTask, gradient_penalty, kept_bins

SR = 44100
#: A generator of the same structure at toy size: 32 bins, Conv5-14 lose 1 + 1 + 2 frames.
TINY = {"n_fft": 64, "hop": 16, "front": [2, 4, 4], "agg_maps": 4, "agg_rows": 4,
        "noise_maps": 2, "dilations": [1, 2]}


def tiny(seed: int = 0, **overrides: object) -> LattnerGenerator:
    """The toy generator with every weight random (the zero-initialised output layer too), so
    that the noise changes the output; ``lattner-det`` when it has no noise maps."""
    torch.manual_seed(seed)
    kwargs = {**TINY, **overrides}
    model = build_model("lattner" if kwargs["noise_maps"] else "lattner-det", **kwargs)
    with torch.no_grad():
        for p in model.parameters():
            if not p.abs().max() > 0:
                p.normal_(0.0, 0.05)
    assert isinstance(model, LattnerGenerator)
    return model.eval()


# --------------------------------------------------------------------------------------------
# the representation


def test_signed_square_root_and_its_inverse() -> None:
    r = torch.tensor([4.0, -9.0, 0.0, 2.25, -0.01])
    assert torch.equal(signed_sqrt(r), torch.tensor([2.0, -3.0, 0.0, 1.5, -0.1]))
    x = torch.randn(10_000, dtype=torch.float64) * 100
    assert torch.allclose(signed_square(signed_sqrt(x)), x, rtol=1e-15, atol=0)
    assert torch.allclose(signed_sqrt(signed_square(x)), x, rtol=1e-15, atol=0)


def test_round_trip_is_exact() -> None:
    """STFT 2048 / 512 -> signed roots -> back: the waveform to double-precision rounding
    (4e-16), float32 to 1e-6; 1 024 bins reach the network, the Nyquist bin is kept aside."""
    x = torch.randn(2, 44_101, dtype=torch.float64) * 0.3
    s, nyquist = analyse(x, 2048, 512)
    assert s.shape == (2, 2, 1024, 1 + 44_101 // 512) and nyquist.shape == (2, 1, 87)
    assert torch.max(torch.abs(synthesise(s, nyquist, 2048, 512, 44_101) - x)) < 1e-14
    s32, n32 = analyse(x.float(), 2048, 512)
    assert torch.max(torch.abs(synthesise(s32, n32, 2048, 512, 44_101) - x.float())) < 1e-6
    spec = torch.stft(x, 2048, 512, window=torch.hann_window(2048, dtype=torch.float64),
                      pad_mode="constant", return_complex=True)
    assert torch.allclose(magnitude(s), spec.abs()[:, :1024], atol=1e-5)
    assert torch.allclose(root_magnitude(s)[:, 0], spec.abs()[:, :1024].sqrt(), atol=1e-5)


# --------------------------------------------------------------------------------------------
# the generator and the critic


def test_paper_generator_sizes() -> None:
    """Table 1 on the meta device: 2 x 1024 x 336 in, 2 x 1024 x 212 out, 4 096 aggregation
    maps reshaped to 128 x 32, 320 maps into Conv6 (256 + 64 noise)."""
    with torch.device("meta"):
        g, det = build_model("lattner"), build_model("lattner-det")
        assert isinstance(g, LattnerGenerator) and isinstance(det, LattnerGenerator)
        critic = LattnerCritic.for_generator(g)
        out = g.restore(torch.empty(1, 2, 1024, 336), torch.empty(1, 64))
        scores = critic(out, torch.empty(1, 2, 1024, 212))
    assert g.stochastic and not det.stochastic
    assert tuple(out.shape) == (1, 2, 1024, 212) and tuple(scores.shape) == (1, 212)
    assert g.shrink == 62 and g.front.aggregate.out_channels == 4096
    assert g.gated[0].conv.in_channels == 320 and g.gated[0].conv.out_channels == 256
    assert det.gated[0].conv.in_channels == 256
    assert (g.num_parameters(), critic.num_parameters()) == (322_577_148, 326_582_757)
    assert "lattner" in MODELS and MODELS["lattner-det"].defaults["noise_maps"] == 0


def test_receptive_field_as_computed() -> None:
    """An impulse in one frame reaches exactly the output frames the layers say (Conv1-3 and
    DeConv3-1: 1 + 2 + 4 each side, Conv5-14: shrink), and one changed sample reaches no
    output sample further than half the receptive field away."""
    g = tiny()
    s = torch.randn(1, 2, 32, 60)
    z = g.noise(1, 0)
    with torch.no_grad():
        base = g.restore(s, z)
        hit = s.clone()
        hit[..., 30] += 1.0
        changed = (g.restore(hit, z) - base).abs().amax(dim=(0, 1, 2)) > 0
    frames = torch.nonzero(changed).flatten() + g.shrink  # output frame j is input frame j+shrink
    reach = 2 * (1 + 2 + 4) + g.shrink
    assert frames.tolist() == list(range(30 - reach, 30 + reach + 1))
    x = torch.randn(1, 1, 6000) * 0.1
    with torch.no_grad():
        moved = x.clone()
        moved[..., 3000] += 0.5
        diff = (g(moved) - g(x)).abs()[0, 0]
    where = torch.nonzero(diff > 1e-7).flatten()
    assert where.numel() > 0
    assert int(torch.max(torch.abs(where - 3000))) <= g.receptive_field // 2
    assert g.receptive_field == 2 * (2 * 7 + 4 + 2) * 16 + 64


def test_fresh_residual_generator_is_the_identity() -> None:
    torch.manual_seed(0)
    g = build_model("lattner", **TINY).eval()
    x = torch.randn(1, 2, 3000) * 0.3
    with torch.no_grad():
        assert torch.equal(g(x), x)
    literal = build_model("lattner", **TINY, residual=False).eval()
    with torch.no_grad():
        assert not torch.equal(literal(x), x)  # Table 1 taken literally: He init everywhere


def test_critic_sees_both_views_and_the_condition() -> None:
    torch.manual_seed(0)
    critic = LattnerCritic(32, [2, 4, 4], 4, 4, [1, 2], 8)
    x, y = torch.randn(3, 2, 32, 20), torch.randn(3, 2, 32, 20)
    with torch.no_grad():
        scores = critic(x, y)
        assert scores.shape == (3, 20)  # time padding: one score per frame
        assert not torch.equal(critic(x, torch.randn_like(y)), scores)  # conditioned on y
        flipped = critic(-x, -y)  # same magnitudes, other signs: only the complex view differs
        critic.complex_view.conv15.weight.zero_()
        critic.complex_view.conv15.bias.zero_()
        assert not torch.equal(flipped, scores)
        assert torch.allclose(critic(-x, -y), critic(x, y))  # the magnitude view alone


# --------------------------------------------------------------------------------------------
# the losses


def test_gradient_penalty_equals_its_definition() -> None:
    """A linear critic <w, x> has gradient w everywhere: GP = (|w| - 1)^2; a quadratic one
    |x|^2 / 2 has gradient x: GP = mean (|x_n| - 1)^2; the penalty is differentiable."""
    w = torch.randn(2, 5, 7, requires_grad=True)
    points = torch.randn(4, 2, 5, 7, requires_grad=True)
    penalty = gradient_penalty((points * w).sum((1, 2, 3)), points)
    assert torch.allclose(penalty, (w.norm() - 1) ** 2)
    (grad,) = torch.autograd.grad(penalty, w)
    assert torch.allclose(grad, 2 * (w.norm() - 1) * w / w.norm())
    quad = gradient_penalty(0.5 * points.square().sum((1, 2, 3)), points)
    expected = (points.detach().flatten(1).norm(dim=1) - 1).square().mean()
    assert torch.allclose(quad, expected)


def _spectra(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(2, 2, 16, 12, generator=g), torch.randn(2, 2, 16, 12, generator=g)


def test_profile_loss_is_equation_3() -> None:
    a, b = _spectra(0)
    za, zb = torch.randn(2, 3), torch.randn(2, 3)
    for axis, p, summed in (("freq", 1.3, -1), ("rhythm", 1.6, -2)):
        got = profile_loss(a, b, za, zb, p=p, axis=axis, weight=0.7, eps=0.5)
        ma = torch.sqrt(a[:, 0] ** 4 + a[:, 1] ** 4).sum(summed)  # |h| = sqrt(re^2 + im^2)
        mb = torch.sqrt(b[:, 0] ** 4 + b[:, 1] ** 4).sum(summed)
        distance = ((ma - mb).abs() ** p).sum(-1)
        expected = (0.7 * (za - zb).norm(dim=1) / (distance + 0.5)).mean()
        assert torch.allclose(got, expected, rtol=1e-5), axis


def test_profile_loss_acts_only_where_it_says() -> None:
    """Blind to phase; the frequency term blind to when a draw's energy comes (its frames
    reordered), the rhythm term to where in frequency it lies (its bins reordered); descending
    it moves the two draws' profiles apart."""
    a, b = _spectra(1)
    z1, z2 = torch.randn(2, 3), torch.randn(2, 3)

    def both(u: torch.Tensor, v: torch.Tensor) -> tuple[float, float]:
        return (float(profile_loss(u, v, z1, z2, p=1.3, axis="freq")),
                float(profile_loss(u, v, z1, z2, p=1.6, axis="rhythm")))

    freq, rhythm = both(a, b)
    assert both(a.flip(1), -b) == pytest.approx((freq, rhythm), rel=1e-6)  # re <-> im, signs
    frames, bins = torch.randperm(12), torch.randperm(16)
    shuffled_t = both(a[..., frames], b)  # one draw's frames reordered
    shuffled_f = both(a[:, :, bins], b)  # one draw's bins reordered
    assert shuffled_t[0] == pytest.approx(freq, rel=1e-5)
    assert shuffled_t[1] != pytest.approx(rhythm, rel=1e-3)
    assert shuffled_f[1] == pytest.approx(rhythm, rel=1e-5)
    assert shuffled_f[0] != pytest.approx(freq, rel=1e-3)
    # a toy generator out = base + A z: gradient descent on the frequency term
    base = torch.randn(1, 2, 16, 12)
    mix = (0.01 * torch.randn(2, 16, 12, 3)).requires_grad_(True)
    opt = torch.optim.SGD([mix], lr=0.05)
    zi, zj = torch.randn(1, 3), torch.randn(1, 3)
    distances, losses = [], []
    for _ in range(30):
        out_i, out_j = base + (mix @ zi[0])[None], base + (mix @ zj[0])[None]
        loss = profile_loss(out_i, out_j, zi, zj, p=1.3, axis="freq")
        profile = magnitude(out_i).sum(-1) - magnitude(out_j).sum(-1)
        distances.append(float(profile.detach().abs().pow(1.3).sum()))
        losses.append(float(loss.detach()))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert all(b > a for a, b in itertools.pairwise(distances))
    assert all(b < a for a, b in itertools.pairwise(losses)) and losses[-1] < 0.2 * losses[0]


# --------------------------------------------------------------------------------------------
# a short WGAN run

SOS = signal.butter(12, 8000, fs=SR, output="sos")


def _noise_pair(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """White noise (the original) and its 8 kHz low-pass (the 'MP3'): the band to restore is
    noise at the level of the band below, which a GAN can learn in a few hundred steps."""
    rng = np.random.default_rng(seed)
    clean = (0.1 * rng.standard_normal(n + 2048)).astype(np.float32)
    degraded = signal.sosfiltfilt(SOS, clean).astype(np.float32)
    return clean[None, 1024:-1024].copy(), degraded[None, 1024:-1024].copy()


class _Noise(torch.utils.data.Dataset[dict[str, torch.Tensor]]):
    def __len__(self) -> int:
        return 1_000_000

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        clean, degraded = _noise_pair(index, 640)
        return {"input": torch.from_numpy(degraded), "target": torch.from_numpy(clean)}


def _toy_config(*extra: str) -> list[str]:
    return ["model.kwargs={n_fft=64, hop=16, front=[2, 4, 4], agg_maps=4, agg_rows=4, "
            "noise_maps=2, dilations=[1, 2]}", "data.crop_samples=640", "train.batch_size=8",
            "train.log_every=10", "checkpoint.every=1000", "runtime.progress=false",
            "runtime.tensorboard=false", "runtime.threads=1", *extra]


def _critic_estimates(task: LattnerTask, items: list[ValItem]) -> tuple[float, float]:
    """The critic's Wasserstein estimate on ``items`` of the trained generator and of the
    untrained one (the identity: the 'MP3' itself), mean over the excerpts."""
    g, critic = task.model, task.critic
    trained, untrained = [], []
    with torch.no_grad():
        for it in items:
            x = g.spectrogram(torch.from_numpy(it.clean))
            y = g.spectrogram(torch.from_numpy(it.degraded))
            keep = slice(g.shrink, y.shape[-1] - g.shrink)
            real = critic(x[..., keep], y[..., keep]).mean()
            trained.append(float(real - critic(g.restore(y, g.noise(1, 0)), y[..., keep]).mean()))
            untrained.append(float(real - critic(y[..., keep], y[..., keep]).mean()))
    return float(np.mean(trained)), float(np.mean(untrained))


def test_short_wgan_run_learns(tmp_path: Path) -> None:
    """The paper's recipe (lr 1e-3, betas (0, 0.99), GP 10, drift 1e-3, profile loss) on the
    toy, 240 steps: the critic's Wasserstein estimate on the training batches rises above 5
    while it learns to tell originals from 'MP3s', then falls below a third of its peak as the
    generator catches up; the band is filled (LSD down by more than 40 dB); the validation
    spectral MSE (eq. 6) falls below the 'MP3's (the identity's) at some validation, and
    best.safetensors holds the generator of that lowest one and reproduces it.

    Not asserted: that the spectral MSE *ends* below the 'MP3's, by how much it falls, nor
    that the final critic rates the restorations above the 'MP3s'. GAN trajectories oscillate
    and 240 toy steps do not settle the level of the added band: over four training seeds the
    best validation reached 0.99, 0.97, 1.00 and 0.98 times the 'MP3's spectral MSE (0.994 in
    this seeded run), and the final critic preferred the restorations in three of the four
    (printed below for this run). The paper's own det models do not beat the MP3 on spectral
    MSE at 32 and 64 kbit/s either (Table 2); the CPU training of the shipped restorer shows
    the fall at scale (docs/models/upband-lattner.md)."""
    val = [ValItem(f"v{i}", *_noise_pair(10**7 + i, SR // 2), {}) for i in range(4)]
    config = load_config("configs/lattner-mp3.toml",
                         _toy_config("train.max_steps=240", "validation.every=40"))
    holder: dict[str, LattnerTask] = {}
    result = train(config, tmp_path / "run", data=TrainData(_Noise(), {"seen": val}),
                   quiet=True, on_step=lambda info: holder.update(task=info.task))
    first, last = result.validations[0], result.validations[-1]
    mse = [v["val_output_spectral_mse"] for v in result.validations]
    rows = list(csv.DictReader((tmp_path / "run/metrics.csv").open()))
    w = [float(r["train_wasserstein"]) for r in rows if r["train_wasserstein"]]
    trained, untrained = _critic_estimates(holder["task"], val)
    print(f"\ntrain W {' '.join(f'{v:.2f}' for v in w)}; spectral MSE "
          f"{' '.join(f'{v:.3f}' for v in mse)} (MP3 {first['val_input_spectral_mse']:.3f}); "
          f"LSD {first['val_output_lsd_db']:.1f} -> {last['val_output_lsd_db']:.1f} dB; final "
          f"critic's W: trained G {trained:.2f}, untrained {untrained:.2f}")
    assert mse[0] == first["val_input_spectral_mse"]  # a fresh generator is the identity
    assert max(w) > 5.0 and np.mean(w[-4:]) < max(w) / 3  # the estimate rose, then fell
    assert last["val_output_lsd_db"] < first["val_input_lsd_db"] - 40.0
    assert min(mse) < mse[0]  # the spectral MSE fell below the identity's
    assert result.best is not None and result.best["value"] == min(mse)
    best = load_model(tmp_path / "run/best.safetensors")  # the generator alone
    assert isinstance(best, LattnerGenerator) and best.config["noise_maps"] == 2
    again = np.mean([metrics.spectral_mse(it.clean, best(torch.from_numpy(it.degraded)[None])
                                          [0].detach().numpy(), SR) for it in val])
    assert again == pytest.approx(result.best["value"], rel=1e-4)
    assert sorted(p.name for p in (tmp_path / "run/checkpoints/step-00000240").iterdir()) == [
        "critic.safetensors", "critic_optimizer.json", "critic_optimizer.safetensors",
        "generator.json", "generator.safetensors", "model.safetensors", "state.json"]


@pytest.mark.parametrize("term, weight", [("reconstruction", 50), ("envelope", 1),
                                          ("waveform", 50)])
def test_the_optional_anchor_terms(term: str, weight: float, tmp_path: Path) -> None:
    """``wgan.reconstruction``, ``wgan.envelope`` and ``wgan.waveform`` (not the paper's: 0 in
    every recipe) add their weight times the L1 distance of square-rooted magnitudes, of band
    energies in dB, or of the signed-root parts in the kept band, to G's loss: logged, and it
    falls as G trains; with all at 0 nothing is added."""
    data = TrainData(_Noise(), None)
    common = ("train.max_steps=60", "validation.every=0", "validation.at_start=false",
              "train.log_every=5", "wgan.profile=0")
    alone: tuple[str, ...] = ()
    if term == "waveform":  # 0 at the identity G starts from: from a random G, the anchor alone
        save_model(tiny(0), tmp_path / "random.safetensors", sample_rate=SR)
        alone = (f"model.init={tmp_path / 'random.safetensors'}", "wgan.adversarial=0")
    train(load_config("configs/lattner-mp3.toml",
                      _toy_config(*common, *alone, f"wgan.{term}={weight}")),
          tmp_path / term, data=data, quiet=True)
    rows = list(csv.DictReader((tmp_path / term / "metrics.csv").open()))
    values = [float(r[f"train_{term}"]) for r in rows if r[f"train_{term}"]]
    assert len(values) == 12 and min(values) > 0
    assert np.mean(values[-3:]) < 0.8 * np.mean(values[:3]), values
    train(load_config("configs/lattner-mp3.toml", _toy_config(*common, "train.max_steps=5")),
          tmp_path / "paper", data=data, quiet=True)
    rows = list(csv.DictReader((tmp_path / "paper/metrics.csv").open()))
    for name in ("reconstruction", "envelope", "waveform"):
        assert {float(r[f"train_{name}"]) for r in rows if r[f"train_{name}"]} == {0.0}
    assert all(float(r["train_adversarial"]) != 0 for r in rows if r["train_adversarial"])
    if term == "envelope":  # wgan.adversarial weighs the critic's term: 0 leaves the anchors
        train(load_config("configs/lattner-mp3.toml", _toy_config(
            *common, "train.max_steps=5", "wgan.adversarial=0", "wgan.envelope=1")),
            tmp_path / "anchor-only", data=data, quiet=True)
        rows = list(csv.DictReader((tmp_path / "anchor-only/metrics.csv").open()))
        assert {float(r["train_adversarial"]) for r in rows if r["train_adversarial"]} == {0.0}
        assert all(float(r["train_envelope"]) > 0 for r in rows if r["train_envelope"])


def test_the_envelope_floor_sets_how_quiet_a_band_still_counts(tmp_path: Path) -> None:
    """``wgan.envelope_floor_db``: the envelope anchor floors both spectrograms' band energies
    that far under the original's mean; the MP3's empty band (the identity G at the start) is
    then that many dB from the original's, so a deeper floor logs a larger distance, and the
    default (60 dB) is what the term was before the setting existed."""
    data = TrainData(_Noise(), None)
    logged = {}
    for floor in (None, 60, 90):
        extra = () if floor is None else (f"wgan.envelope_floor_db={floor}",)
        train(load_config("configs/lattner-mp3.toml", _toy_config(
            "train.max_steps=1", "train.log_every=1", "validation.every=0",
            "validation.at_start=false", "wgan.envelope=1", "wgan.adversarial=0", *extra)),
            tmp_path / str(floor), data=data, quiet=True)
        rows = list(csv.DictReader((tmp_path / str(floor) / "metrics.csv").open()))
        logged[floor] = float(rows[0]["train_envelope"])
    assert logged[None] == logged[60] > 0
    assert logged[90] > 1.2 * logged[60]


def test_kept_bins_are_the_band_the_mp3_keeps() -> None:
    """The waveform anchor's mask: the bins where an MP3 of noise keeps at least a quarter of
    the original's power; LAME's low-pass at 16 kbit/s (about 5.5 kHz) and 64 kbit/s (about
    14 kHz) is its edge, to within 1 kHz, per item."""
    rng = np.random.default_rng(0)
    x = (0.1 * rng.standard_normal((2, 4 * SR))).astype(np.float32)
    y = np.stack([codecs.mp3(x[k:k + 1], SR, rate)[0] for k, rate in enumerate((16, 64))])
    model = build_model("lattner", **{**TINY, "n_fft": 2048, "hop": 512})
    sy, sx = (model.spectrogram(torch.from_numpy(v)) for v in (y, x))
    kept = kept_bins(sy, sx)
    assert kept.shape == (2, 1, 1024, 1) and set(kept.unique().tolist()) == {0.0, 1.0}
    freqs = np.arange(1024) * SR / 2048
    ratio = 10 * np.log10(power(sy).mean(dim=-1).numpy() / power(sx).mean(dim=-1).numpy())
    for k in range(2):
        on = freqs[kept[k, 0, :, 0].numpy() > 0]
        cut = freqs[np.argmax((ratio[k] < -20) & (freqs > 2000))]  # LAME's low-pass
        assert abs(on.max() - cut) < 1000, (on.max(), cut)
        assert np.mean(kept[k, 0, (freqs > 200) & (freqs < cut - 1000), 0].numpy()) > 0.9
    assert kept[0].sum() < kept[1].sum()


def test_resume_equals_an_unbroken_run(tmp_path: Path) -> None:
    data = TrainData(_Noise(), None)
    whole = train(load_config("configs/lattner-mp3.toml", _toy_config(
        "train.max_steps=4", "validation.every=0", "validation.at_start=false")),
        tmp_path / "whole", data=data, quiet=True)
    assert whole.step == 4
    for steps in (2, 4):
        train(load_config("configs/lattner-mp3.toml", _toy_config(
            f"train.max_steps={steps}", "validation.every=0", "validation.at_start=false",
            "checkpoint.every=2")), tmp_path / "broken", data=data, quiet=True, resume=True)
    from safetensors.torch import load_file

    for name in ("model", "critic", "generator", "critic_optimizer"):
        a = load_file(tmp_path / f"whole/checkpoints/step-00000004/{name}.safetensors")
        b = load_file(tmp_path / f"broken/checkpoints/step-00000004/{name}.safetensors")
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name


def test_recipes_and_the_cpu_variant() -> None:
    """The recipes hold the paper's numbers; the CPU variant named in the header builds the
    same structure under the 16 MB limit of a shipped model."""
    import re

    for name, model, profile in (("lattner-mp3", "lattner", 1.0),
                                 ("lattner-mp3-det", "lattner-det", 0.0)):
        path = Path(f"configs/{name}.toml")
        c = load_config(path)
        assert (c.model.name, c.train.task, c.data.preset, c.data.channels) == \
            (model, "lattner", "lattner-mp3", 1)
        assert (c.optim.name, c.optim.lr, c.train.batch_size, c.train.max_steps) == \
            ("adam", 1e-3, 12, 40_000)
        assert 1 + c.data.crop_samples // 512 == 336 and c.wgan.profile == profile
        kwargs = re.search(r"'model\.kwargs=(\{.*?\})'", path.read_text())
        assert kwargs is not None
        small = load_config(path, [f"model.kwargs={kwargs.group(1)}"])
        with torch.device("meta"):
            net = build_model(small.model.name, **small.model.kwargs)
        assert isinstance(net, LattnerGenerator) and net.shrink == 62 and net.agg_rows == 32
        assert net.num_parameters() * 4 < 16_000_000
