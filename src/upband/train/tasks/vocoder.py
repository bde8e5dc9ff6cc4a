"""The vocoder task: TFGAN trained on clean music, for TD-PR's phase repair.

**Data**: the clean crops of the corpus (the ``target`` of every item; the degraded ``input``
is not used). The vocoder (``model.*``, a :class:`~upband.models.tfgan.TFGANVocoder`) sees
only the log-mel magnitude of each crop and re-synthesises it (copy synthesis).

**One iteration** (TFGAN's recipe; the weights are the recipe's ``loss.*`` and ``gan.*``):

* generator loss: ``loss.mrstft`` x multi-resolution STFT loss + ``loss.time`` x TFGAN's
  time-domain loss (:class:`~upband.train.losses.TimeDomainLoss`);
* from iteration ``gan.start_step`` on, first the discriminators -- MelGAN's multi-scale
  waveform critics and TFGAN's STFT critic (:mod:`upband.models.tfgan_discriminators`) -- take
  one least-squares GAN step on the real crops and the generated ones (real -> 1, generated ->
  0), then the generator adds ``gan.adversarial`` x ``mean (D(G) - 1)^2`` over the critics (+
  ``gan.feature_match`` x the L1 distance of the critics' activations, real vs generated).
  Real and generated crops go through the critics in one batch (one forward per backward, as
  DDP wants).

Logged: the generator's terms, ``critic`` (the discriminators' loss) and ``adversarial``
(0 before ``gan.start_step``). **Validation** (rank 0): copy synthesis of the clean validation
excerpts -- ``copy_mrstft`` (the default multi-resolution STFT loss), ``copy_lsd``
(``lsd_ssr``), ``copy_mel_l1`` (mean absolute log-mel difference, natural log) and
``copy_snr`` (dB; the vocoder does not keep the waveform, so this says how aligned it is).

Checkpoint entries: modules ``model`` and ``critics``, optimisers ``generator`` and
``discriminators``; ``best.safetensors`` holds the vocoder alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from upband import metrics
from upband.models.tfgan import TFGANVocoder
from upband.models.tfgan_discriminators import (
    Critique,
    FrequencyDiscriminator,
    MultiScaleDiscriminator,
)
from upband.train.config import ConfigError
from upband.train.losses import MultiResolutionSTFTLoss, build_loss
from upband.train.schedules import build_schedule
from upband.train.tasks.base import Task, TaskContext, build_optimizer, optimizer_step
from upband.train.tasks.regression import build_task_model
from upband.train.validation import model_output

__all__ = ["Critics", "VocoderTask", "copy_synthesis_scores"]


class Critics(nn.Module):
    """Every discriminator of TFGAN behind one forward: ``[B, 1, T]`` -> all critiques."""

    def __init__(self, scales: int, freq_fft: int, freq_hop: int) -> None:
        super().__init__()
        self.time = MultiScaleDiscriminator(scales=scales)
        self.frequency = FrequencyDiscriminator(freq_fft, freq_hop)

    def forward(self, x: Tensor) -> list[Critique]:
        return [*self.time(x), *self.frequency(x)]


def _split(critiques: list[Critique], n: int) -> tuple[list[Critique], list[Critique]]:
    """Critiques of ``cat([a, b])`` -> those of ``a`` (first ``n`` items) and of ``b``."""
    first = [([f[:n] for f in feats], score[:n]) for feats, score in critiques]
    second = [([f[n:] for f in feats], score[n:]) for feats, score in critiques]
    return first, second


def copy_synthesis_scores(vocoder: TFGANVocoder, clean: np.ndarray, sample_rate: int,
                          chunk: int = 0) -> dict[str, float]:
    """The vocoder's copy synthesis of ``clean`` (float ``[C, T]``) against ``clean``:
    ``mrstft``, ``lsd``, ``mel_l1``, ``snr`` (see the module docstring)."""
    device = next(vocoder.parameters()).device
    estimate = model_output(vocoder, clean, chunk, device, sample_rate)
    ref, est = torch.from_numpy(clean)[None], torch.from_numpy(estimate)[None]
    with torch.no_grad():
        mel_ref = vocoder.features(ref.reshape(-1, ref.shape[-1]).to(device))
        mel_est = vocoder.features(est.reshape(-1, est.shape[-1]).to(device))
        mrstft = MultiResolutionSTFTLoss()(est, ref)
    return {"mrstft": float(mrstft), "lsd": float(metrics.lsd_ssr(clean, estimate, sample_rate)),
            "mel_l1": float(5.0 * (mel_ref - mel_est).abs().mean()),
            "snr": float(metrics.snr(clean, estimate))}


class VocoderTask(Task):
    """TFGAN: a vocoder generator and its discriminators; see the module docstring."""

    name = "vocoder"
    validation_metrics = ("copy_mrstft", "copy_lsd", "copy_mel_l1", "copy_snr")

    def __init__(self, context: TaskContext) -> None:
        super().__init__(context)
        c, device = self.config, context.device
        model = build_task_model(context, TFGANVocoder, "a vocoder (tfgan, tfgan-s)")
        if model.sample_rate != c.data.sample_rate or c.data.channels != 1:
            raise ConfigError(f"the vocoder works at {model.sample_rate} Hz on mono crops; set "
                              f"data.sample_rate={model.sample_rate} and data.channels=1")
        self.model: TFGANVocoder = model.to(device)
        self.critics = Critics(c.gan.scales, c.gan.freq_fft, c.gan.freq_hop).to(device)
        self.loss = build_loss(c.loss).to(device)
        self.log_names = (*self.loss.names, "critic", "adversarial")
        self.optimizer = build_optimizer(self.model.parameters(), c.optim)
        self.critic_optimizer = build_optimizer(self.critics.parameters(), c.optim)
        self.forward = context.wrap(self.model)
        self.judge = context.wrap(self.critics)
        self.modules = {"model": self.model, "critics": self.critics}
        self.optimizers = {"generator": self.optimizer, "discriminators": self.critic_optimizer}
        self.schedules = {name: build_schedule(c.schedule, c.optim) for name in self.optimizers}

    def step(self, batch: dict[str, Tensor], step: int) -> dict[str, Tensor]:
        gan, clip = self.config.gan, self.config.optim.grad_clip
        y = batch["target"].to(self.context.device, non_blocking=True)
        with self.context.autocast():
            fake = self.forward(y)
        total, parts = self.loss(fake.float(), y)
        zero = total.new_zeros(())
        critic_loss, adversarial = zero, zero
        if step >= gan.start_step and gan.adversarial > 0:
            with self.context.autocast():
                real_c, fake_c = _split(self.judge(torch.cat([y, fake.detach()])), y.shape[0])
            critic_loss = sum(((s.float() - 1).square().mean() for _, s in real_c), zero) + \
                sum((s.float().square().mean() for _, s in fake_c), zero)
            critic_loss = critic_loss / len(real_c)
            optimizer_step(self.critic_optimizer, critic_loss, self.critics.parameters(), clip)
            with self.context.autocast():
                judged = self.judge(fake)
            adversarial = sum(((s.float() - 1).square().mean() for _, s in judged), zero) / \
                len(judged)
            total = total + gan.adversarial * adversarial
            if gan.feature_match > 0:
                with torch.no_grad():
                    real_feats = [feats for feats, _ in self.critics(y)]
                match = sum((torch.mean(torch.abs(a.float() - b.float()))
                             for (fake_feats, _), reals in zip(judged, real_feats, strict=True)
                             for a, b in zip(fake_feats, reals, strict=True)), zero)
                total = total + gan.feature_match * match / len(judged)
        optimizer_step(self.optimizer, total, self.model.parameters(), clip)
        return {"loss": total.detach(), **{k: v.detach() for k, v in parts.items()},
                "critic": critic_loss.detach(), "adversarial": adversarial.detach()}

    def validate(self, items: Mapping[str, Sequence[Any]]) -> dict[str, float]:
        self.model.eval()
        c = self.config
        chunk = round(c.validation.chunk_seconds * c.data.sample_rate)
        group = items.get("seen") or next(iter(items.values()), [])
        rows = [copy_synthesis_scores(self.model, np.asarray(it.clean, np.float32),
                                      c.data.sample_rate, chunk) for it in group]
        if not rows:
            return {}
        return {f"copy_{k}": float(np.mean([r[k] for r in rows])) for k in rows[0]}

    def describe(self, values: Mapping[str, float]) -> str:
        if "copy_mrstft" not in values:
            return ""
        return (f"copy synthesis: MR-STFT {values['copy_mrstft']:.3f}, LSD "
                f"{values['copy_lsd']:.3f}, log-mel L1 {values['copy_mel_l1']:.3f}, SNR "
                f"{values['copy_snr']:.2f} dB")
