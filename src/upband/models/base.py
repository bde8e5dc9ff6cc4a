"""The base class of every upband waveform network, and constructor-config capture.

Every network maps ``wav: Tensor[B, C, T]`` (float, in [-1, 1], at ``model.sample_rate``) to a
tensor of the same shape, for any ``T >= 0`` and any channel count ``C``:

* the input is zero-padded on the right to :meth:`WaveModel.valid_length` (a multiple of the
  network's total stride) and the output cropped back to ``T``;
* a model built with ``channels = k`` processes a ``k``-channel input jointly. More channels
  go through in groups of ``k`` in their order (5.1 as three stereo pairs: a third of the work
  of six dual-mono passes); the channels left over (and every channel of an input with fewer
  than ``k``) one by one, each fed as ``k`` identical copies ("dual mono" for a stereo model)
  whose ``k`` outputs are averaged. For a mono model both are simply folding the channels into
  the batch;
* the networks are additive: the output is ``input + correction``, where ``correction`` is what
  the subclass's ``_forward`` returns. Fresh models start with a zero correction (identity).

A subclass decorates its ``__init__`` with :func:`capture_config`, so that ``model.config``
holds every constructor argument (defaults included) and ``build_model(model.name,
**model.config)`` rebuilds the same architecture -- which is what a checkpoint stores.
"""

from __future__ import annotations

import copy
import functools
import inspect
import math
from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["WaveModel", "capture_config"]

P = ParamSpec("P")
M = TypeVar("M", bound="WaveModel")

#: Default sample rate of the networks (the papers' music setting). Checkpoints carry their own.
DEFAULT_SAMPLE_RATE = 44_100


def _plain(value: Any, where: str) -> Any:
    """A JSON-ready copy of a constructor argument (tuples become lists)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_plain(v, where) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v, where) for k, v in value.items()}
    raise TypeError(f"{where}: constructor argument of type {type(value).__name__} cannot be "
                    "stored in a checkpoint header (use numbers, strings, lists)")


def capture_config(init: Callable[Concatenate[M, P], None]) -> Callable[Concatenate[M, P], None]:
    """Decorate ``__init__`` to record every argument, defaults included, in ``self._config``.

    With subclasses the outermost ``__init__`` wins (it finishes last). Signatures must not use
    ``*args`` / ``**kwargs``.
    """
    signature = inspect.signature(init)
    for param in signature.parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise TypeError(f"{init.__qualname__}: capture_config needs explicit arguments")

    @functools.wraps(init)
    def wrapper(self: M, *args: P.args, **kwargs: P.kwargs) -> None:
        init(self, *args, **kwargs)
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        arguments = dict(bound.arguments)
        arguments.pop(next(iter(signature.parameters)))  # self
        self._config = {k: _plain(v, init.__qualname__) for k, v in arguments.items()}

    return wrapper


class WaveModel(nn.Module):
    """Base class: ``[B, C, T] -> [B, C, T]`` for any ``C`` and ``T``; see the module docstring.

    Subclasses call ``super().__init__(channels=..., stride=...)`` and implement

    * ``_forward(x)``: ``x`` is ``[B', channels, L]`` with ``L`` a multiple of ``stride``;
      returns the correction ``[B', channels, L]`` that is added to ``x``;
    * ``_receptive_field()``: the receptive field in samples, computed from the layers.
    """

    #: Registry name of the architecture; :func:`upband.models.build_model` sets the name used.
    name: str = "wave-model"
    #: Whether the network is told the input's cutoff (``forward(wav, cutoff_hz=...)``); such a
    #: subclass implements ``_forward_cutoff(x, cutoff_hz)`` instead of ``_forward(x)``.
    takes_cutoff: bool = False

    def __init__(self, channels: int, stride: int) -> None:
        super().__init__()
        if channels < 1:
            raise ValueError(f"channels must be >= 1, got {channels}")
        if stride < 1:
            raise ValueError(f"stride must be >= 1, got {stride}")
        self.channels = channels
        self.stride = stride
        #: Sample rate the weights are meant for; :func:`upband.states.load_model` sets it.
        self.sample_rate = DEFAULT_SAMPLE_RATE
        #: Name of the shipped weights when loaded by :func:`upband.states.load_pretrained`.
        self.pretrained_name = ""
        self._config: dict[str, Any] = {}

    @property
    def config(self) -> dict[str, Any]:
        """Every constructor argument (JSON-ready); ``build_model(name, **config)`` rebuilds."""
        return copy.deepcopy(self._config)

    @property
    def receptive_field(self) -> int:
        """Input samples that can influence one output sample (maximum over positions)."""
        return self._receptive_field()

    def valid_length(self, length: int) -> int:
        """Smallest length ``>= length`` that the network can process (a multiple of stride)."""
        return math.ceil(length / self.stride) * self.stride

    def num_parameters(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def forward(self, wav: Tensor, cutoff_hz: Tensor | float | None = None) -> Tensor:
        """Enhance a batch of waveforms.

        Args:
            wav: ``Tensor[B, C, T]``, float, samples in [-1, 1] at :attr:`sample_rate` (Hz);
                any ``C`` (more channels than :attr:`channels` go in groups of that many,
                the rest -- and a smaller ``C`` -- channel by channel, each as
                :attr:`channels` identical copies whose outputs are averaged) and any ``T``
                (padded internally to :meth:`valid_length`, cropped back).
            cutoff_hz: the input's detected cutoff in Hz, one number or ``Tensor[B]``, for a
                model that :attr:`takes_cutoff` (None: such a model estimates it); other
                models ignore it.

        Returns:
            ``Tensor[B, C, T]``: the input plus the network's correction, same dtype and
            device; the model never clips.

        Raises:
            ValueError: ``wav`` is not three-dimensional. TypeError: not floating point.
        """
        if wav.dim() != 3:
            raise ValueError(f"expected a [batch, channels, time] tensor, got {tuple(wav.shape)}")
        if not wav.is_floating_point():
            raise TypeError(f"expected a floating-point tensor, got {wav.dtype}")
        batch, chans, length = wav.shape
        if length == 0 or batch == 0:
            return wav.clone()
        k = self._group_size(chans)
        groups = chans // k  # channels in groups of k, jointly; the rest as k copies each
        rest = chans - groups * k
        x = torch.cat([wav[:, :groups * k].reshape(batch * groups, k, length),
                       wav[:, groups * k:].reshape(batch * rest, 1, length).expand(-1, k, -1)])
        padded = self.valid_length(length)
        if padded != length:
            x = F.pad(x, (0, padded - length))
        if self.takes_cutoff:
            cut = None if cutoff_hz is None else \
                torch.as_tensor(cutoff_hz, dtype=torch.float32, device=wav.device).expand(batch)
            if cut is not None:
                cut = torch.cat([cut.repeat_interleave(groups), cut.repeat_interleave(rest)])
            correction = self._forward_cutoff(x, cut)
        else:
            correction = self._forward(x)
        y = (x + correction)[..., :length]
        if not rest:
            return y.reshape(batch, chans, length)
        return torch.cat([y[:batch * groups].reshape(batch, groups * k, length),
                          y[batch * groups:].reshape(batch, rest, k, length).mean(dim=2)], dim=1)

    def _group_size(self, chans: int) -> int:
        """How many of an input's ``chans`` channels go through :meth:`_forward` together:
        :attr:`channels` (a wrapper that needs an item's channels at once returns ``chans``)."""
        return self.channels

    def _forward(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _forward_cutoff(self, x: Tensor, cutoff_hz: Tensor | None) -> Tensor:  # pragma: no cover
        raise NotImplementedError

    def _receptive_field(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def extra_repr(self) -> str:
        return f"name={self.name!r}, channels={self.channels}, stride={self.stride}"
