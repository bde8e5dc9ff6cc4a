"""The training task interface: which networks and optimisers a run has, what one step does.

The loop (:mod:`upband.train.loop`) owns everything a family of models shares -- data order,
seeds, resume, DDP process groups, logging, validation timing, best-model tracking, stopping;
a :class:`Task` owns the rest. A task is built from a :class:`TaskContext` and fills in:

* ``modules``: every named network whose weights a checkpoint holds (trained ones, EMA copies,
  frozen helpers), ``optimizers``: every named optimiser, ``schedules``: the learning-rate
  schedule of each optimiser (same names). The checkpoint saves and restores all of them
  strictly (:func:`upband.train.checkpoint.save_checkpoint`).
* ``model``: the network the run is about (the generator of a GAN): passed to ``on_step``
  callbacks; :meth:`Task.eval_model` is the one validated and saved as ``best.safetensors``.
* :meth:`Task.step`: one iteration on one rank -- forward, losses, backward, optimiser
  step(s) -- returning 0-dim tensors ``{"loss": ..., <name>: ... for name in log_names}``.
  The loop sets the rates before it (:meth:`Task.set_rates`), seeds torch for it, averages the
  returned values over the ranks, hands them to :meth:`Task.observe` (the plateau rule) and
  logs them as ``train_loss`` / ``train_<name>``.
* :meth:`Task.validate`: metrics on the validation items (rank 0), named in
  ``validation_metrics`` (the ``metrics.csv`` columns).
* :meth:`Task.state_dict` / :meth:`Task.load_state_dict`: the task's JSON state besides its
  tensors (schedules, cached values), stored at the top level of the checkpoint's
  ``state.json``.

Networks go through :meth:`TaskContext.wrap` (DDP when the run has several ranks, then
``torch.compile`` when enabled) for their training forward passes; their optimisers step the
unwrapped parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from upband.models.base import WaveModel
from upband.train.config import Config, OptimConfig
from upband.train.data import collate_pairs
from upband.train.distributed import DistInfo, wrap_module
from upband.train.ema import ModelEMA
from upband.train.runtime import autocast
from upband.train.schedules import Schedule

__all__ = ["Task", "TaskContext", "TaskFactory", "build_optimizer", "optimizer_step"]


@dataclass(frozen=True)
class TaskContext:
    """What a task is built with.

    ``resuming``: the run continues from a checkpoint (whose weights replace any initial
    weights: a task loads ``model.init`` only when this is false); ``amp``: forward passes in
    bf16 autocast (:meth:`autocast`); ``compile``: :meth:`wrap` compiles.
    """

    config: Config
    info: DistInfo
    amp: bool = False
    compile: bool = False
    resuming: bool = False

    @property
    def device(self) -> torch.device:
        return self.info.device

    def wrap(self, module: nn.Module, **ddp_kwargs: Any) -> nn.Module:
        """``module`` as a training step calls it (DDP and/or compiled, see the module doc)."""
        return wrap_module(module, self.info, compile=self.compile, **ddp_kwargs)

    def autocast(self) -> Any:
        """A context for forward passes: bf16 autocast when ``amp``, else nothing."""
        return autocast(self.amp)


class Task:
    """Base class of training tasks; see the module docstring for the contract."""

    #: The name a checkpoint records (a resumed run must use the same task).
    name: ClassVar[str] = ""
    #: Logged terms besides ``"loss"``, in the order of their ``train_<name>`` columns.
    log_names: tuple[str, ...] = ()
    #: Metrics :meth:`validate` may return (the validation columns of ``metrics.csv``).
    validation_metrics: tuple[str, ...] = ()

    def __init__(self, context: TaskContext) -> None:
        self.context = context
        self.config = context.config
        self.modules: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedules: dict[str, Schedule] = {}
        self.model: nn.Module = nn.Identity()
        #: Stacks dataset items into a batch; a plain function (DataLoader workers get it).
        self.collate: Callable[[list[dict[str, Any]]], dict[str, Any]] = collate_pairs

    # ---------------------------------------------------------------- the step

    def train(self) -> None:
        """Put the trained networks in training mode: those with a trainable parameter (EMA
        copies and frozen helpers, such as a fixed feature network, stay in eval mode)."""
        for module in self.modules.values():
            if not isinstance(module, ModelEMA) and any(
                    p.requires_grad for p in module.parameters()):
                module.train()

    def set_rates(self, step: int) -> None:
        """Set every optimiser's rate to its schedule's for iteration ``step`` (0-based)."""
        for name, schedule in self.schedules.items():
            rate = schedule.lr(step)
            for group in self.optimizers[name].param_groups:
                group["lr"] = rate

    @property
    def lr(self) -> float:
        """The current rate of the first optimiser (the ``lr`` column)."""
        first = next(iter(self.optimizers.values()))
        return float(first.param_groups[0]["lr"])

    def step(self, batch: dict[str, Tensor], step: int) -> dict[str, Tensor]:
        """Train on ``batch`` (this rank's, on the CPU) as iteration ``step`` (0-based).

        Returns 0-dim tensors: ``"loss"`` (the quantity checked for divergence and fed to the
        schedules) and one per name of :attr:`log_names`.
        """
        raise NotImplementedError

    def observe(self, logs: Mapping[str, Tensor]) -> None:
        """The step's values averaged over the ranks: every schedule sees ``logs["loss"]``."""
        for schedule in self.schedules.values():
            schedule.observe(logs["loss"])

    # ---------------------------------------------------------------- validation, export

    def eval_model(self) -> nn.Module:
        """The network that is validated (e.g. the EMA copy)."""
        return self.model

    def best_model(self) -> WaveModel | None:
        """What ``best.safetensors`` holds when a validation is the best so far (``None``:
        nothing is written, e.g. a network that is not an upband model)."""
        model = self.eval_model()
        return model if isinstance(model, WaveModel) else None

    def validate(self, items: Mapping[str, Sequence[Any]]) -> dict[str, float]:
        """Validation metrics on ``items`` (:attr:`TrainData.validation`), rank 0 only."""
        return {}

    def describe(self, values: Mapping[str, float]) -> str:
        """One line about a validation's ``values``."""
        return ", ".join(f"{k} {v:.4g}" for k, v in values.items())

    # ---------------------------------------------------------------- JSON state

    def state_dict(self) -> dict[str, Any]:
        """JSON state besides the modules' and optimisers' tensors (the schedules)."""
        return {"schedules": {name: s.state_dict() for name, s in self.schedules.items()}}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` from a checkpoint's ``state.json``."""
        saved = state["schedules"]
        if set(saved) != set(self.schedules):
            raise ValueError(f"schedules {sorted(saved)} saved, the task has "
                             f"{sorted(self.schedules)}")
        for name, schedule in self.schedules.items():
            schedule.load_state_dict(saved[name])


#: Builds a task: a :class:`Task` subclass, or any callable of a :class:`TaskContext`.
TaskFactory = Callable[[TaskContext], Task]


def build_optimizer(parameters: Iterable[nn.Parameter], config: OptimConfig) -> \
        torch.optim.Optimizer:
    """Adam or AdamW (``optim.name``) with ``optim``'s rate, betas, eps and weight decay."""
    cls = torch.optim.AdamW if config.name == "adamw" else torch.optim.Adam
    return cls(parameters, lr=config.lr, betas=config.betas, eps=config.eps,
               weight_decay=config.weight_decay)


def optimizer_step(optimizer: torch.optim.Optimizer, loss: Tensor,
                   parameters: Iterable[nn.Parameter], grad_clip: float = 0.0) -> None:
    """Zero the gradients, back-propagate ``loss``, clip the global gradient norm of
    ``parameters`` to ``grad_clip`` (when > 0), step ``optimizer``."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(parameters, grad_clip)
    optimizer.step()
