"""A pluggable training task: a toy WGAN-GP (a generator and a critic, two optimisers) on 2-D
points trained by the same loop as the regression task -- it learns, and it resumes exactly."""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file
from torch import Tensor, nn

from upband.train.checkpoint import CheckpointError, find_latest
from upband.train.config import Config, ConfigError, load_config
from upband.train.data import TrainData
from upband.train.loop import StepInfo, train
from upband.train.schedules import build_schedule
from upband.train.tasks import (
    RegressionTask,
    Task,
    TaskContext,
    build_optimizer,
    optimizer_step,
)

LATENT = 4
#: The real points: a Gaussian blob at REAL_MEAN with standard deviation REAL_STD.
REAL_MEAN = torch.tensor([2.0, -1.0])
REAL_STD = 0.3
GP_WEIGHT = 10.0


class _Points(torch.utils.data.Dataset[dict[str, Tensor]]):
    """Item ``i``: latent noise and one real point, a pure function of ``i``."""

    def __len__(self) -> int:
        return 1_000_000

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        g = torch.Generator().manual_seed(index)
        z = torch.randn(LATENT, generator=g)
        x = REAL_MEAN + REAL_STD * torch.randn(2, generator=g)
        return {"input": z, "target": x}


def _gradient_penalty(critic: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
    """Gulrajani et al.'s penalty: (|grad critic(x)| - 1)^2 at random points between pairs."""
    eps = torch.rand(real.shape[0], 1)
    mixed = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(mixed).sum(), mixed, create_graph=True)
    return (grad.norm(dim=1) - 1).pow(2).mean()


class ToyWGAN(Task):
    """A linear generator and a small critic; one critic step then one generator step."""

    name = "toy-wgan-gp"
    log_names = ("critic", "gp")
    validation_metrics = ("seen_mean_gap",)

    def __init__(self, context: TaskContext) -> None:
        super().__init__(context)
        c = self.config
        self.generator = nn.Linear(LATENT, 2)
        self.critic = nn.Sequential(nn.Linear(2, 32), nn.LeakyReLU(0.2), nn.Linear(32, 1))
        self.modules = {"generator": self.generator, "critic": self.critic}
        self.optimizers = {"generator_opt": build_optimizer(self.generator.parameters(), c.optim),
                           "critic_opt": build_optimizer(self.critic.parameters(), c.optim)}
        self.schedules = {name: build_schedule(c.schedule, c.optim) for name in self.optimizers}
        self.model = self.generator
        self.g_forward = context.wrap(self.generator)
        self.c_forward = context.wrap(self.critic)

    def step(self, batch: dict[str, Tensor], step: int) -> dict[str, Tensor]:
        z, real = batch["input"], batch["target"]
        fake = self.g_forward(z).detach()
        gp = _gradient_penalty(self.critic, real, fake)
        critic_loss = self.c_forward(fake).mean() - self.c_forward(real).mean() + GP_WEIGHT * gp
        optimizer_step(self.optimizers["critic_opt"], critic_loss, self.critic.parameters())
        generator_loss = -self.c_forward(self.g_forward(z)).mean()
        optimizer_step(self.optimizers["generator_opt"], generator_loss,
                       self.generator.parameters())
        return {"loss": generator_loss.detach(), "critic": critic_loss.detach(),
                "gp": gp.detach()}

    @torch.no_grad()
    def validate(self, items: Mapping[str, Sequence[Any]]) -> dict[str, float]:
        fake = self.generator(torch.stack(list(items["seen"])))
        return {"seen_mean_gap": float((fake.mean(0) - REAL_MEAN).norm())}


def _config(*extra: str) -> Config:
    return load_config(None, [
        "optim.lr=4e-3", "optim.betas=[0.5, 0.9]", "train.batch_size=32", "train.log_every=5",
        "checkpoint.keep_last=10", "runtime.progress=false", "runtime.tensorboard=false",
        "runtime.threads=1", *extra])


def _data() -> TrainData:
    fixed = torch.randn(256, LATENT, generator=torch.Generator().manual_seed(123))
    return TrainData(_Points(), {"seen": list(fixed)})


def test_two_networks_learn_through_the_loop(tmp_path: Path) -> None:
    """The generated points move onto the real blob: the gap between the means falls."""
    seen: list[StepInfo] = []
    result = train(_config("train.max_steps=400", "validation.every=100", "checkpoint.every=200"),
                   tmp_path / "run", data=_data(), quiet=True, task=ToyWGAN,
                   on_step=seen.append)
    gaps = [v["seen_mean_gap"] for v in result.validations]
    print(f"\nmean gap {' -> '.join(f'{g:.3f}' for g in gaps)}")
    assert [v["step"] for v in result.validations] == [0, 100, 200, 300, 400]
    assert gaps[0] > 1.5  # an untrained generator is centred near the origin
    assert all(b < a for a, b in itertools.pairwise(gaps))
    assert gaps[-1] < 0.25 * gaps[0]
    assert seen[-1].model is seen[-1].task.modules["generator"]  # type: ignore[union-attr]
    folder = find_latest(tmp_path / "run")
    assert folder is not None and folder.name == "step-00000400"
    assert sorted(p.name for p in folder.iterdir()) == [
        "critic.safetensors", "critic_opt.json", "critic_opt.safetensors",
        "generator.safetensors", "generator_opt.json", "generator_opt.safetensors", "state.json"]
    state = json.loads((folder / "state.json").read_text())
    assert state["task"] == "toy-wgan-gp" and state["format_version"] == 2
    assert sorted(state["schedules"]) == ["critic_opt", "generator_opt"]
    header = (tmp_path / "run" / "metrics.csv").read_text().splitlines()[0]
    assert header == "step,time_s,lr,train_loss,train_critic,train_gp,seen_mean_gap"


FINAL = 12


def _files(folder: Path) -> dict[str, dict[str, Tensor]]:
    return {name: load_file(str(folder / f"{name}.safetensors"))
            for name in ("generator", "critic", "generator_opt", "critic_opt")}


def test_resume_mid_run_equals_an_unbroken_run(tmp_path: Path) -> None:
    extra = ("validation.every=4", "checkpoint.every=3", "schedule.name=plateau",
             "schedule.plateau_window=2", "schedule.plateau_patience=1")
    whole = train(_config(f"train.max_steps={FINAL}", *extra), tmp_path / "whole",
                  data=_data(), quiet=True, task=ToyWGAN)
    assert whole.step == FINAL
    first = train(_config("train.max_steps=5", *extra), tmp_path / "broken", data=_data(),
                  quiet=True, task=ToyWGAN)
    assert first.step == 5
    again = train(_config(f"train.max_steps={FINAL}", *extra), tmp_path / "broken",
                  data=_data(), quiet=True, task=ToyWGAN, resume=True)
    assert (again.start_step, again.step) == (5, FINAL)
    a = _files(tmp_path / "whole/checkpoints/step-00000012")
    b = _files(tmp_path / "broken/checkpoints/step-00000012")
    for name in a:  # both networks and both optimisers' moments, bit for bit
        assert a[name].keys() == b[name].keys() and a[name], name
        for key in a[name]:
            assert torch.equal(a[name][key], b[name][key]), (name, key)
    states = [json.loads((tmp_path / run / "checkpoints/step-00000012/state.json").read_text())
              for run in ("whole", "broken")]
    assert states[0]["schedules"] == states[1]["schedules"]
    assert states[0]["log_sum"] == states[1]["log_sum"]
    # the other task cannot take over the run
    with pytest.raises(CheckpointError, match="trained by the 'toy-wgan-gp' task"):
        train(_config(f"train.max_steps={FINAL + 1}", *extra), tmp_path / "broken",
              data=_data(), quiet=True, task=RegressionTask, resume=True)


def test_recipe_names_its_task(tmp_path: Path) -> None:
    """``train.task`` picks the task from TASKS; an unknown name is a one-line ConfigError
    before anything is written."""
    assert load_config(None, []).train.task == "regression"
    with pytest.raises(ConfigError, match=r"train.task 'nope' is not a training task; "
                                          r"choose one of regression, vocoder, lattner"):
        train(_config("train.task=nope"), tmp_path / "run", quiet=True)
    assert not (tmp_path / "run").exists()
