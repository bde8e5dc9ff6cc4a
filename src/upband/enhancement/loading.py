"""The model to enhance with, and the device it runs on."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from upband import states
from upband.analysis import Bandwidth
from upband.enhancement import settings
from upband.enhancement.phase import PhaseRepaired
from upband.enhancement.settings import (
    AUTO_MODEL,
    LOSSY_PRETRAINED,
    UNITTEST_MODEL,
    default_model_name,
)
from upband.errors import ModelError, SpecError
from upband.models.base import WaveModel
from upband.models.registry import PRETRAINED, build_model
from upband.models.tfgan import TFGANVocoder


@dataclass(frozen=True)
class CodecRouter:
    """``--model auto``: ``lossy`` (the MP3 restorer) for an input that the detector takes for
    a lossy codec (:attr:`upband.analysis.Bandwidth.codec` ``== "lossy"``: a sharp shelf with
    spectral holes), ``other`` (the default model) for everything else."""

    other: WaveModel
    lossy: WaveModel

    def pick(self, found: Bandwidth) -> WaveModel:
        """The model for an input whose detected bandwidth is ``found``."""
        return self.lossy if found.codec == "lossy" else self.other


ModelSpec = str | os.PathLike[str] | WaveModel | CodecRouter | None
#: ``phase_repair`` of :func:`load_enhancer`: True (TD-PR with the shipped vocoder),
#: ``"griffin-lim"``, a vocoder (pretrained name or ``.safetensors`` file) or a loaded one.
PhaseRepair = bool | str | os.PathLike[str] | WaveModel | None
#: The shipped vocoder of TD-PR phase repair, by the rate it works at.
VOCODERS = {44_100: "upband-vocoder"}
#: ``NAME+<source>`` names a model with its phase repaired (``upband evaluate --models``).
PHASE_SUFFIXES = ("+tdpr", "+griffin-lim")


def _load_one(name: str) -> WaveModel:
    if name == UNITTEST_MODEL:
        torch.manual_seed(0)
        return build_model(UNITTEST_MODEL)
    if name in PRETRAINED:
        return states.load_pretrained(name)
    if name.endswith(".safetensors") or os.sep in name or Path(name).exists():
        return states.load_model(name)
    raise ModelError(f"unknown model {name!r}: give a pretrained name "
                     f"({', '.join(PRETRAINED) or 'none shipped'}), "
                     f"'{UNITTEST_MODEL}', or a .safetensors checkpoint")


def load_vocoder(spec: PhaseRepair, sample_rate: int) -> TFGANVocoder:
    """The vocoder of TD-PR phase repair: ``spec`` itself when it is one (a loaded vocoder, a
    name or a file), else the shipped one for ``sample_rate``."""
    if isinstance(spec, TFGANVocoder):
        return spec
    if spec is True or spec is None or spec == "tdpr":
        if sample_rate not in VOCODERS:
            raise ModelError(f"no shipped vocoder works at {sample_rate} Hz (only at "
                             f"{', '.join(map(str, VOCODERS))} Hz); give one with "
                             "--phase-repair VOCODER")
        spec = VOCODERS[sample_rate]
    net = spec if isinstance(spec, WaveModel) else _load_one(os.fspath(spec))  # type: ignore[arg-type]
    if not isinstance(net, TFGANVocoder):
        raise ModelError(f"{spec}: a {net.name!r} model is not a vocoder (tfgan, tfgan-s)")
    return net


def with_phase_repair(net: WaveModel, phase_repair: PhaseRepair) -> WaveModel:
    """``net`` with its phase repaired above the input's cutoff
    (:class:`~upband.enhancement.phase.PhaseRepaired`): ``"griffin-lim"``, or TD-PR with the
    vocoder ``phase_repair`` names (True: the shipped one at the model's rate)."""
    if phase_repair is None or phase_repair is False:
        return net
    if phase_repair == "griffin-lim":
        return PhaseRepaired(net, None, "griffin-lim")
    vocoder = load_vocoder(phase_repair, net.sample_rate)
    return PhaseRepaired(net, vocoder.to(next(net.parameters()).device).eval(), "tdpr")


def load_enhancer(model: ModelSpec = None, *, device: str | torch.device = "cpu",
                  phase_repair: PhaseRepair = None) -> WaveModel:
    """The model to enhance with, in eval mode on ``device``.

    Args:
        model: a loaded :class:`~upband.models.base.WaveModel` (moved to ``device``); the path
            of a ``.safetensors`` checkpoint written by :func:`upband.states.save_model`; the
            name of a pretrained model (``upband models`` lists them; shipped weights are
            checked against their SHA-256); :data:`UNITTEST_MODEL` (tiny and random, for
            tests); or None for the default pretrained model (:func:`default_model_name`).
            A name ending in ``+tdpr`` or ``+griffin-lim`` is that model with its phase
            repaired (:func:`with_phase_repair`).
        phase_repair: repair the phase of the model's output above the input's cutoff
            (:data:`PhaseRepair`; :mod:`upband.enhancement.phase`).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, a :class:`torch.device`, or ``"auto"``
            (CUDA when available, see :func:`resolve_device`).

    Returns:
        The model; ``model.sample_rate`` (Hz) is the rate it works at, its input and output
        ``Tensor[B, C, T]`` float in [-1, 1].

    Raises:
        ModelError: unknown name, or a checkpoint that cannot be read or does not match.
        SpecError: ``cuda`` asked for without a GPU.
    """
    if isinstance(model, CodecRouter):
        raise ModelError("--model auto picks a model per input: use load_models")
    if isinstance(model, WaveModel):
        net = model
    else:
        name = default_model_name() if model is None else os.fspath(model)
        suffix = next((s for s in PHASE_SUFFIXES if name.endswith(s) and not Path(name).exists()),
                      None)
        if suffix is not None:
            net = _load_one(name[: -len(suffix)])
            phase_repair = phase_repair or ("griffin-lim" if suffix == "+griffin-lim" else True)
        else:
            net = _load_one(name)
    if isinstance(net, TFGANVocoder):
        raise ModelError(f"{net.pretrained_name or net.name} is a vocoder: it repairs another "
                         "model's phase (--phase-repair), it does not enhance on its own")
    net = net.to(resolve_device(device))
    return with_phase_repair(net, phase_repair).eval()


def load_models(model: ModelSpec = None, *, device: str | torch.device = "cpu",
                phase_repair: PhaseRepair = None,
                lossy_model: str | os.PathLike[str] | None = None) -> WaveModel | CodecRouter:
    """:func:`load_enhancer`, or for ``model = "auto"`` a :class:`CodecRouter` of the default
    model and ``lossy_model`` (default: the shipped MP3 restorer,
    :data:`~upband.enhancement.settings.LOSSY_PRETRAINED`); a router is returned as it is."""
    if isinstance(model, CodecRouter):
        return model
    if not (isinstance(model, str) and model == AUTO_MODEL and not Path(model).exists()):
        return load_enhancer(model, device=device, phase_repair=phase_repair)
    if lossy_model is None and not (settings.AUTO_USES_LOSSY_PRETRAINED
                                    and LOSSY_PRETRAINED in PRETRAINED):
        raise ModelError(f"--model {AUTO_MODEL} routes inputs that look like a lossy codec to "
                         f"an MP3 restorer; this installation does not send them to "
                         f"{LOSSY_PRETRAINED} unasked, so name it (--lossy-model "
                         f"{LOSSY_PRETRAINED}) or another one (a .safetensors file)")
    lossy = load_enhancer(lossy_model or LOSSY_PRETRAINED, device=device,
                          phase_repair=phase_repair)
    return CodecRouter(load_enhancer(None, device=device, phase_repair=phase_repair), lossy)


def pick_model(models: WaveModel | CodecRouter, found: Bandwidth) -> WaveModel:
    """The model that enhances an input of detected bandwidth ``found``."""
    return models.pick(found) if isinstance(models, CodecRouter) else models


def is_stochastic(models: WaveModel | CodecRouter) -> bool:
    """Whether a network draws noise (``stochastic = True`` anywhere inside; for ``--model
    auto``: the lossy-codec restorer)."""
    net = models.lossy if isinstance(models, CodecRouter) else models
    return any(getattr(m, "stochastic", False) for m in net.modules())


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
