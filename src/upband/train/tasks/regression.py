"""The regression task: one network, one (weighted multi-term) loss against the clean target.

**One iteration**: forward (bf16 autocast on CUDA when enabled), loss in float32 (the
:class:`~upband.train.losses.TrainingLoss` of ``loss.*``), backward (DDP averages the gradients
over the ranks), optional gradient clipping (``optim.grad_clip``), optimiser step, EMA update
(``train.ema_decay``). Validation is Sulun & Davies' protocol
(:func:`upband.train.validation.validate`) on the EMA weights when there are some.

**Initial weights**: ``model.init`` -- a ``.safetensors`` file written by
:func:`upband.states.save_model` (a run's ``best.safetensors`` or a checkpoint's
``model.safetensors``) or a pretrained name of ``upband models`` -- replaces the random
initialisation of a fresh run; its architecture and arguments must be the run's. A resumed run
takes its weights from the checkpoint instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar, cast

from torch import Tensor

from upband.errors import ModelError
from upband.models import build_model
from upband.models.base import WaveModel
from upband.states import load_model_or_pretrained
from upband.train.config import VALIDATION_METRICS, ConfigError
from upband.train.ema import ModelEMA
from upband.train.losses import build_loss
from upband.train.schedules import build_schedule
from upband.train.tasks.base import Task, TaskContext, build_optimizer, optimizer_step
from upband.train.validation import describe_validation, validate

__all__ = ["RegressionTask", "build_task_model", "load_initial_weights"]


def load_initial_weights(model: WaveModel, spec: str) -> None:
    """Copy the weights of ``spec`` (a model file or a pretrained name) into ``model``
    strictly; a different architecture or other arguments are a :class:`ConfigError`."""
    try:
        stored = load_model_or_pretrained(spec)
    except ModelError as exc:
        raise ConfigError(f"model.init: {exc}") from exc
    if stored.name != model.name:
        raise ConfigError(f"model.init {spec} holds a {stored.name!r} model but the run builds "
                          f"{model.name!r}; set model.name and model.kwargs to the file's")
    if stored.config != model.config:
        file, run = stored.config, model.config
        keys = sorted(k for k in {*file, *run} if file.get(k) != run.get(k))
        what = ", ".join(f"{k} (file {file.get(k)!r}, run {run.get(k)!r})" for k in keys)
        raise ConfigError(f"model.init {spec}: the {model.name!r} arguments differ from the "
                          f"run's in {what}; set model.kwargs to the file's")
    model.load_state_dict(stored.state_dict(), strict=True)


M = TypeVar("M", bound=WaveModel)


def build_task_model(context: TaskContext, kind: type[M], trains: str) -> M:
    """The run's network (``model.name`` with ``model.kwargs``), which must be a ``kind``
    (otherwise a :class:`ConfigError`: ``train.task = '<task>' trains <trains>``), with the
    weights of ``model.init`` when the run starts (a resumed run has its own)."""
    c = context.config
    model = build_model(c.model.name, **c.model.kwargs)
    if not isinstance(model, kind):
        raise ConfigError(f"train.task = {c.train.task!r} trains {trains}, not {c.model.name!r}")
    if c.model.init and not context.resuming:
        load_initial_weights(model, c.model.init)
    return model


class RegressionTask(Task):
    """One :class:`~upband.models.base.WaveModel` (``model.*``) trained on ``input`` ->
    ``target`` pairs with ``loss.*``, one optimiser (``optim.*``) and schedule
    (``schedule.*``), optionally an EMA copy.

    Checkpoint entries: modules ``model`` (+ ``ema``), optimiser ``optimizer``; JSON state
    ``schedule`` and ``input_metrics`` (the validation's input metrics, computed once) -- the
    names of the one-network format, so its run folders resume unchanged.
    """

    name = "regression"
    validation_metrics = VALIDATION_METRICS

    def __init__(self, context: TaskContext) -> None:
        super().__init__(context)
        c, device = self.config, context.device
        model = build_task_model(context, WaveModel, "a waveform model")
        model.sample_rate = c.data.sample_rate
        self.model: WaveModel = model.to(device)
        self.ema = ModelEMA(self.model, c.train.ema_decay) if c.train.ema_decay > 0 else None
        self.optimizer = build_optimizer(self.model.parameters(), c.optim)
        self.schedule = build_schedule(c.schedule, c.optim)
        self.loss = build_loss(c.loss).to(device)
        self.log_names = tuple(self.loss.names)
        self.forward = context.wrap(self.model)
        self.modules = {"model": self.model, **({"ema": self.ema} if self.ema else {})}
        self.optimizers = {"optimizer": self.optimizer}
        self.schedules = {"optimizer": self.schedule}
        self.input_metrics: dict[str, float] | None = None

    def step(self, batch: dict[str, Tensor], step: int) -> dict[str, Tensor]:
        device = self.context.device
        x = batch["input"].to(device, non_blocking=True)
        y = batch["target"].to(device, non_blocking=True)
        cutoff = batch.get("cutoff_hz") if self.model.takes_cutoff else None
        with self.context.autocast():
            estimate = self.forward(x) if cutoff is None else self.forward(x, cutoff.to(device))
        total, parts = self.loss(estimate.float(), y)
        optimizer_step(self.optimizer, total, self.model.parameters(),
                       self.config.optim.grad_clip)
        if self.ema is not None:
            self.ema.update(self.model, step)
        return {"loss": total.detach(), **{k: v.detach() for k, v in parts.items()}}

    def eval_model(self) -> WaveModel:
        return cast(WaveModel, self.ema.module) if self.ema is not None else self.model

    def validate(self, items: Mapping[str, Sequence[Any]]) -> dict[str, float]:
        c = self.config
        chunk = round(c.validation.chunk_seconds * c.data.sample_rate)
        values = validate(self.eval_model(), items, c.data.sample_rate, loss=self.loss,
                          chunk=chunk, inputs=self.input_metrics, merged=c.validation.merged,
                          visqol=c.validation.visqol)
        if self.input_metrics is None:
            self.input_metrics = {k: v for k, v in values.items() if "_input_" in k}
        return values

    def describe(self, values: Mapping[str, float]) -> str:
        return describe_validation(values)

    def state_dict(self) -> dict[str, Any]:
        return {"schedule": self.schedule.state_dict(), "input_metrics": self.input_metrics}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.schedule.load_state_dict(state["schedule"])
        self.input_metrics = state.get("input_metrics")
