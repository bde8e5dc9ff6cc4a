"""Exponential moving average of a network's weights, a pure function of the step."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

__all__ = ["ModelEMA"]


class ModelEMA(nn.Module):
    """Exponential moving average of a model's weights (buffers are copied).

    Update ``n`` (0-based) uses ``min(decay, (1 + n) / (10 + n))``, so early averages are not
    dominated by the random initial weights; the decay is a function of the step, so a resumed
    run averages exactly like an uninterrupted one. ``module`` is a full copy of the model in
    eval mode; :meth:`state_dict` is that copy's, so the average saves and loads like the model.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        super().__init__()
        self.decay = float(decay)
        self.module: nn.Module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        """Move the average towards ``model``'s weights after iteration ``step`` (0-based)."""
        d = min(self.decay, (1 + step) / (10 + step))
        for avg, p in zip(self.module.parameters(), model.parameters(), strict=True):
            avg.lerp_(p.detach(), 1.0 - d)
        for avg_b, b in zip(self.module.buffers(), model.buffers(), strict=True):
            avg_b.copy_(b)

    def state_dict(self, *args: Any, **kwargs: Any) -> Any:
        return self.module.state_dict(*args, **kwargs)

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True,
                        assign: bool = False) -> Any:
        return self.module.load_state_dict(state_dict, strict=strict, assign=assign)
