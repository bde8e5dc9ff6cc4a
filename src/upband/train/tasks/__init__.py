"""Training tasks: what one step computes for which networks and optimisers.

* :mod:`upband.train.tasks.base` -- :class:`Task` (the interface), :class:`TaskContext`,
  :func:`build_optimizer`, :func:`optimizer_step`;
* :mod:`upband.train.tasks.regression` -- :class:`RegressionTask`: one network, one loss;
* :mod:`upband.train.tasks.vocoder` -- :class:`VocoderTask`: TFGAN (a vocoder and its
  discriminators) for TD-PR's phase repair;
* :mod:`upband.train.tasks.wgan` -- :class:`LattnerTask`: Lattner & Nistal's MP3 restorer, a
  conditional WGAN with gradient penalty and their profile loss.

:data:`TASKS` names the tasks a run can use (``train(..., task=...)``); a new model family
(a vocoder with discriminators, a generator/critic pair) adds its task here and reuses the
loop's resume, DDP, logging and validation.
"""

from __future__ import annotations

from upband.train.tasks.base import Task, TaskContext, TaskFactory, build_optimizer, optimizer_step
from upband.train.tasks.regression import RegressionTask, load_initial_weights
from upband.train.tasks.vocoder import VocoderTask
from upband.train.tasks.wgan import LattnerTask

__all__ = ["TASKS", "LattnerTask", "RegressionTask", "Task", "TaskContext", "TaskFactory",
           "build_optimizer", "load_initial_weights", "optimizer_step", "VocoderTask"]

#: Tasks by the name their checkpoints record.
TASKS: dict[str, type[Task]] = {RegressionTask.name: RegressionTask,
                                VocoderTask.name: VocoderTask,
                                LattnerTask.name: LattnerTask}
