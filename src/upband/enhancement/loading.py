"""The model to enhance with, and the device it runs on."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from upband import states
from upband.enhancement.settings import UNITTEST_MODEL, default_model_name
from upband.errors import ModelError, SpecError
from upband.models.base import WaveModel
from upband.models.registry import PRETRAINED, build_model

ModelSpec = str | os.PathLike[str] | WaveModel | None


def load_enhancer(model: ModelSpec = None, *, device: str | torch.device = "cpu") -> WaveModel:
    """The model to enhance with, in eval mode on ``device``.

    Args:
        model: a loaded :class:`~upband.models.base.WaveModel` (moved to ``device``); the path
            of a ``.safetensors`` checkpoint written by :func:`upband.states.save_model`; the
            name of a pretrained model (``upband models`` lists them; shipped weights are
            checked against their SHA-256); :data:`UNITTEST_MODEL` (tiny and random, for
            tests); or None for the default pretrained model (:func:`default_model_name`).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, a :class:`torch.device`, or ``"auto"``
            (CUDA when available, see :func:`resolve_device`).

    Returns:
        The model; ``model.sample_rate`` (Hz) is the rate it works at, its input and output
        ``Tensor[B, C, T]`` float in [-1, 1].

    Raises:
        ModelError: unknown name, or a checkpoint that cannot be read or does not match.
        SpecError: ``cuda`` asked for without a GPU.
    """
    if isinstance(model, WaveModel):
        net = model
    else:
        name = default_model_name() if model is None else os.fspath(model)
        if name == UNITTEST_MODEL:
            torch.manual_seed(0)
            net = build_model(UNITTEST_MODEL)
        elif name in PRETRAINED:
            net = states.load_pretrained(name)
        elif name.endswith(".safetensors") or os.sep in name or Path(name).exists():
            net = states.load_model(name)
        else:
            raise ModelError(f"unknown model {name!r}: give a pretrained name "
                             f"({', '.join(PRETRAINED) or 'none shipped'}), "
                             f"'{UNITTEST_MODEL}', or a .safetensors checkpoint")
    return net.to(resolve_device(device)).eval()


def resolve_device(device: str | torch.device) -> torch.device:
    """``auto`` is CUDA when available, else CPU; ``cuda`` without a GPU is an error."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SpecError("--device cuda was asked for but no CUDA GPU is available")
    return dev


def default_batch_size(model: WaveModel) -> int:
    """Chunks per model call when none is given: 1 on the CPU, 8 on a GPU."""
    return 1 if next(model.parameters()).device.type == "cpu" else 8
