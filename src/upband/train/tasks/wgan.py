"""The Lattner & Nistal task: their MP3 restorer as a conditional Wasserstein GAN (§3.1-3.2).

**Data**: mono crops of the corpus (``data.channels = 1``), ``input`` the MP3 round trip
(preset ``lattner-mp3``), ``target`` the original; both become signed-root spectrograms
(:mod:`upband.models.signed_sqrt`). A crop of ``1 + crop_samples / hop`` frames (336 for the
paper's 171 520 samples, 3.9 s) gives G's 212 frames (:class:`~upband.models.lattner.
LattnerGenerator` has no time padding); the critic sees those frames of the restoration or the
original, and of the MP3 as its condition.

**One iteration** (the weights are the recipe's ``wgan.*``):

1. G restores every input, with two noise draws ``z_i, z_j`` per input for the stochastic
   model (one forward over the doubled batch), one pass for the deterministic one.
2. ``wgan.critic_steps`` critic steps against the first draw: ``-W + gradient_penalty · GP +
   drift · mean D(y, x)²`` with the Wasserstein estimate ``W = mean D(y, x) − mean D(y,
   G(y, z))`` (eq. 1, per-frame scores averaged), Gulrajani's penalty ``GP = mean (‖∇ D(y,
   x̂)‖₂ − 1)²`` at random points ``x̂`` between original and restoration (the condition ``y``
   fixed; :func:`gradient_penalty`), and the penalty on the critic's output for real data
   (§3.2: "penalizes the magnitudes of the output of D for real input data"; ProGAN's drift
   term). Original, restoration and ``x̂`` go through the critic as one batch.
3. One generator step: ``-mean D(y, G(y, z))`` over both draws, plus for the stochastic model
   the profile loss (eq. 3, :func:`upband.train.losses.profile_loss`) of the two draws, on the
   frequency profiles (p = ``wgan.profile_p_freq``) and the rhythm profiles
   (``wgan.profile_p_rhythm``); with ``wgan.reconstruction > 0`` (not in the paper; 0 by
   default) also that weight times the mean absolute difference of the square-rooted
   magnitudes (the critic's magnitude view) of restoration and original, for every draw:
   an anchor that a short, small-batch CPU run can use where the critic alone drifts; with
   ``wgan.envelope > 0`` (0 by default) that weight times the dB distance of their 1/6-octave
   band energies frame by frame (:func:`upband.train.losses.envelope_distance`: the level of
   the band in time, which a listener hears first; both floored ``wgan.envelope_floor_db``,
   60 dB, under the original's mean, so a deeper floor also counts quiet bands); with
   ``wgan.waveform > 0`` (0 by default) that weight times the mean absolute difference of the
   signed-root complex parts of restoration and original in the bins the MP3 keeps
   (:func:`kept_bins`: where the MP3 still holds the waveform, the restoration should too; the
   residual G otherwise re-draws that band, which the product's merge hides but the raw output,
   as Table 2 scores it, does not);
   ``wgan.adversarial`` (1 in the paper) weighs the critic's term.

Every network runs one forward per backward, as DDP wants; the critic is never compiled
(``torch.compile`` has no double backward, which the penalty needs). ``loss.*`` is not used.

Logged: ``loss`` (the generator's total), ``wasserstein`` (the critic's estimate on the batch,
before its step), ``gradient_penalty``, ``drift`` (mean D(real)²), ``critic`` (its loss),
``adversarial``, ``profile_freq``, ``profile_rhythm``, ``reconstruction``, ``envelope``,
``waveform``.
**Validation**
(rank 0, the ``seen`` excerpts: held-out songs degraded by ``data.preset``): the generator as
``upband enhance`` runs it (whole excerpt, noise seed 0), Lattner's metrics of the input and of
the output against the original (``val_{input,output}_{spectral_mse,lsd_db,snr}``) and the critic's
Wasserstein estimate on the excerpts (``val_wasserstein``).

Checkpoint entries: modules ``model`` and ``critic``, optimisers ``generator`` and
``critic_optimizer``;
``best.safetensors`` holds the generator.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from upband import metrics
from upband.models.lattner import LattnerGenerator
from upband.models.lattner_critic import LattnerCritic
from upband.models.signed_sqrt import power, root_magnitude
from upband.train.config import ConfigError
from upband.train.distributed import wrap_module
from upband.train.losses import envelope_distance, octave_bands, profile_loss
from upband.train.schedules import build_schedule
from upband.train.tasks.base import Task, TaskContext, build_optimizer, optimizer_step
from upband.train.tasks.regression import build_task_model
from upband.train.validation import model_output

__all__ = ["LattnerTask", "gradient_penalty", "restoration_scores"]

#: The validation metrics of the task (``metrics.csv`` columns, ``checkpoint.best_metric``).
METRICS = ("val_input_spectral_mse", "val_output_spectral_mse", "val_input_lsd_db",
           "val_output_lsd_db", "val_input_snr", "val_output_snr", "val_wasserstein")


def gradient_penalty(scores: Tensor, points: Tensor) -> Tensor:
    """Gulrajani et al.'s penalty: ``mean_n (‖∂ scores[n] / ∂ points[n]‖₂ − 1)²``.

    ``scores`` ``[N]`` must have been computed from ``points`` ``[N, ...]`` (requiring grad),
    each score from its own point; the graph is kept, so the penalty can be back-propagated.
    """
    (grad,) = torch.autograd.grad(scores.sum(), points, create_graph=True)
    return (grad.flatten(1).norm(dim=1) - 1.0).square().mean()


class _Restore(nn.Module):
    """G as a training step calls it (what DDP wraps): ``forward(s, z) = G.restore(s, z)``."""

    def __init__(self, generator: LattnerGenerator) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, s: Tensor, z: Tensor | None) -> Tensor:
        return self.generator.restore(s, z)


def restoration_scores(clean: np.ndarray, estimate: np.ndarray, sample_rate: int,
                       signal: str) -> dict[str, float]:
    """``val_{signal}_{spectral_mse,lsd_db,snr}`` of ``estimate`` against ``clean``."""
    return {f"val_{signal}_spectral_mse": float(metrics.spectral_mse(clean, estimate,
                                                                    sample_rate)),
            f"val_{signal}_lsd_db": float(metrics.lsd_db(clean, estimate, sample_rate)),
            f"val_{signal}_snr": float(metrics.snr(clean, estimate))}


#: A bin is one the MP3 keeps when its mean power over the crop is at least this fraction of
#: the original's (-6 dB): where LAME's low-pass and its dropped bands left little, it is not.
KEPT_FRACTION = 0.25


def kept_bins(y: Tensor, x: Tensor) -> Tensor:
    """``[N, 1, bins, 1]``: 1 for the bins whose mean power over the frames in the MP3s'
    signed-root spectrograms ``y`` is at least ``KEPT_FRACTION`` of that in the originals'
    ``x`` (both ``[N, 2, bins, frames]``), else 0: the band the MP3 keeps."""
    kept = power(y).mean(dim=-1) >= KEPT_FRACTION * power(x).mean(dim=-1)
    return kept.to(y.dtype)[:, None, :, None]


class LattnerTask(Task):
    """Lattner & Nistal's generator and two-view critic; see the module docstring."""

    name = "lattner"
    log_names = ("wasserstein", "gradient_penalty", "drift", "critic", "adversarial",
                 "profile_freq", "profile_rhythm", "reconstruction", "envelope", "waveform")
    validation_metrics = METRICS

    def __init__(self, context: TaskContext) -> None:
        super().__init__(context)
        c, device = self.config, context.device
        model = build_task_model(context, LattnerGenerator,
                                 "a Lattner generator (lattner, lattner-det)")
        if c.data.channels != 1:
            raise ConfigError("the Lattner generator is trained on mono crops (the paper's "
                              "mono MP3s); set data.channels=1")
        frames = 1 + c.data.crop_samples // model.hop
        if frames <= 2 * model.shrink:
            raise ConfigError(f"data.crop_samples={c.data.crop_samples} gives {frames} STFT "
                              f"frames; G needs more than {2 * model.shrink} (336 in the paper: "
                              f"crop_samples={335 * model.hop})")
        model.sample_rate = c.data.sample_rate
        self.model: LattnerGenerator = model.to(device)
        self.critic = LattnerCritic.for_generator(model).to(device)
        self.g_optimizer = build_optimizer(self.model.parameters(), c.optim)
        self.c_optimizer = build_optimizer(self.critic.parameters(), c.optim)
        self.generate = context.wrap(_Restore(self.model))
        self.judge = wrap_module(self.critic, context.info, compile=False)
        self.modules = {"model": self.model, "critic": self.critic}
        self.optimizers = {"generator": self.g_optimizer, "critic_optimizer": self.c_optimizer}
        self.schedules = {name: build_schedule(c.schedule, c.optim) for name in self.optimizers}
        self.input_metrics: dict[str, float] | None = None
        self.bands = octave_bands(model.bins).to(device)  # the envelope anchor's 1/6 octaves

    # ---------------------------------------------------------------- the step

    def _spectra(self, batch: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
        """Signed-root spectrograms of the MP3s and the originals, ``[B, 2, bins, frames]``."""
        device = self.context.device
        mp3, original = (batch[k].to(device, non_blocking=True) for k in ("input", "target"))
        with torch.no_grad():
            y = self.model.spectrogram(mp3.reshape(-1, mp3.shape[-1]))
            x = self.model.spectrogram(original.reshape(-1, original.shape[-1]))
        return y, x

    def _critic_step(self, real: Tensor, fake: Tensor, cond: Tensor) -> dict[str, Tensor]:
        """One critic step (eq. 1 + penalties) on one batch of originals and restorations."""
        w = self.config.wgan
        n = real.shape[0]
        eps = torch.rand(n, 1, 1, 1, device=real.device)
        mixed = (eps * real + (1 - eps) * fake).requires_grad_(True)
        with self.context.autocast():
            scores = self.judge(torch.cat([real, fake, mixed]), torch.cat([cond, cond, cond]))
        d_real, d_fake, d_mixed = scores.float().mean(-1).split(n)
        penalty = gradient_penalty(d_mixed, mixed)
        wasserstein = d_real.mean() - d_fake.mean()
        drift = d_real.square().mean()
        loss = -wasserstein + w.gradient_penalty * penalty + w.drift * drift
        optimizer_step(self.c_optimizer, loss, self.critic.parameters(),
                       self.config.optim.grad_clip)
        return {"wasserstein": wasserstein.detach(), "gradient_penalty": penalty.detach(),
                "drift": drift.detach(), "critic": loss.detach()}

    def step(self, batch: dict[str, Tensor], step: int) -> dict[str, Tensor]:
        w, g = self.config.wgan, self.model
        y, x = self._spectra(batch)
        n, keep = y.shape[0], slice(g.shrink, y.shape[-1] - g.shrink)
        draws = 2 if g.stochastic else 1
        z = torch.randn(draws * n, g.noise_maps, device=y.device) if g.stochastic else None
        with self.context.autocast():
            fake = self.generate(torch.cat([y] * draws), z).float()
        cond, real = y[..., keep], x[..., keep]
        logs: dict[str, Tensor] = {}
        for _ in range(w.critic_steps):
            logs = self._critic_step(real, fake[:n].detach(), cond)
        with self.context.autocast():
            judged = self.judge(fake, torch.cat([cond] * draws)).float()
        adversarial = -w.adversarial * judged.mean()
        zero = adversarial.new_zeros(())
        freq = rhythm = zero
        if z is not None and w.profile > 0:
            pair = (fake[:n], fake[n:], z[:n], z[n:])
            freq = profile_loss(*pair, p=w.profile_p_freq, axis="freq", weight=w.profile,
                                eps=w.profile_eps)
            rhythm = profile_loss(*pair, p=w.profile_p_rhythm, axis="rhythm",
                                  weight=w.profile, eps=w.profile_eps)
        target = torch.cat([real] * draws)
        rec = env = zero
        if w.reconstruction > 0:
            rec = w.reconstruction * (root_magnitude(fake) - root_magnitude(target)).abs().mean()
        if w.envelope > 0:
            fake_e, target_e = (torch.einsum("kf,nft->nkt", self.bands, power(v))
                                for v in (fake, target))
            env = w.envelope * envelope_distance(fake_e, target_e, w.envelope_floor_db)
        wave = zero
        if w.waveform > 0:
            kept = torch.cat([kept_bins(cond, real)] * draws).to(fake.dtype)  # [2N, 1, F, 1]
            diff = (fake - target).abs() * kept
            wave = w.waveform * diff.sum() / (kept.sum() * 2 * fake.shape[-1]).clamp_min(1.0)
        total = adversarial + freq + rhythm + rec + env + wave
        optimizer_step(self.g_optimizer, total, self.model.parameters(),
                       self.config.optim.grad_clip)
        return {"loss": total.detach(), **logs, "adversarial": adversarial.detach(),
                "profile_freq": freq.detach(), "profile_rhythm": rhythm.detach(),
                "reconstruction": rec.detach(), "envelope": env.detach(),
                "waveform": wave.detach()}

    # ---------------------------------------------------------------- validation

    @torch.no_grad()
    def wasserstein(self, clean: np.ndarray, degraded: np.ndarray) -> float:
        """The critic's Wasserstein estimate (eq. 1, seed-0 noise) on one excerpt ``[1, T]``."""
        g, device = self.model, self.context.device
        x = g.spectrogram(torch.from_numpy(np.ascontiguousarray(clean, np.float32)).to(device))
        y = g.spectrogram(torch.from_numpy(np.ascontiguousarray(degraded, np.float32))
                          .to(device))
        if y.shape[-1] <= 2 * g.shrink:
            return float("nan")
        fake = g.restore(y, g.noise(y.shape[0], 0) if g.stochastic else None)
        keep = slice(g.shrink, y.shape[-1] - g.shrink)
        return float(self.critic(x[..., keep], y[..., keep]).mean()
                     - self.critic(fake, y[..., keep]).mean())

    def validate(self, items: Mapping[str, Sequence[Any]]) -> dict[str, float]:
        self.model.eval()
        self.critic.eval()
        c = self.config
        sr, chunk = c.data.sample_rate, round(c.validation.chunk_seconds * c.data.sample_rate)
        self.model.seed = 0
        rows = []
        for item in items.get("seen", []):
            clean = np.asarray(item.clean, np.float32)
            degraded = np.asarray(item.degraded, np.float32)
            estimate = model_output(self.model, degraded, chunk, self.context.device, sr)
            row = restoration_scores(clean, estimate, sr, "output")
            if self.input_metrics is None:
                row.update(restoration_scores(clean, degraded, sr, "input"))
            row["val_wasserstein"] = self.wasserstein(clean, degraded)
            rows.append(row)
        if not rows:
            return {}
        values = {k: float(np.nanmean([r[k] for r in rows])) for k in rows[0]}
        if self.input_metrics is None:
            self.input_metrics = {k: v for k, v in values.items() if "_input_" in k}
        return {**self.input_metrics, **values}

    def describe(self, values: Mapping[str, float]) -> str:
        if "val_output_spectral_mse" not in values:
            return ""
        return ("MP3 -> restored: spectral MSE {:.4g} -> {:.4g}, LSD {:.2f} -> {:.2f} dB, "
                "SNR {:.2f} -> {:.2f} dB; critic's W {:.3g}".format(
                    *(values[k] for k in ("val_input_spectral_mse", "val_output_spectral_mse",
                                          "val_input_lsd_db", "val_output_lsd_db",
                                          "val_input_snr", "val_output_snr",
                                          "val_wasserstein"))))

    # ---------------------------------------------------------------- JSON state

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "input_metrics": self.input_metrics}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self.input_metrics = state.get("input_metrics")
