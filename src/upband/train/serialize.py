"""Training state that is not a network, as JSON and safetensors: RNG states, optimisers.

Nothing here pickles: an optimiser's tensors go to a safetensors blob (``state.<param>.<key>``),
everything else (param groups, non-tensor entries, RNG states) to JSON.
"""

from __future__ import annotations

import base64
import random
from typing import Any

import numpy as np
import torch
from safetensors.torch import save as safetensors_save

__all__ = ["get_rng_state", "optimizer_blobs", "optimizer_state", "set_rng_state"]

#: ``format`` of an optimiser's JSON file.
OPTIMIZER_FORMAT = "upband-optimizer"


def _b64(t: torch.Tensor) -> str:
    return base64.b64encode(t.cpu().numpy().tobytes()).decode("ascii")


def _from_b64(text: str) -> torch.Tensor:
    return torch.frombuffer(bytearray(base64.b64decode(text)), dtype=torch.uint8).clone()


def get_rng_state() -> dict[str, Any]:
    """Python, NumPy (legacy global), torch CPU and every CUDA device's RNG state as JSON."""
    version, keys, gauss = random.getstate()
    name, np_keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    state: dict[str, Any] = {
        "python": [version, list(keys), gauss],
        "numpy": [name, np.asarray(np_keys).tolist(), int(pos), int(has_gauss), float(cached)],
        "torch": _b64(torch.get_rng_state()),
        "cuda": [],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = [_b64(s) for s in torch.cuda.get_rng_state_all()]
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore :func:`get_rng_state` (CUDA states only if the device count matches)."""
    version, keys, gauss = state["python"]
    random.setstate((int(version), tuple(int(k) for k in keys), gauss))
    name, np_keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(np_keys, dtype=np.uint32), int(pos), int(has_gauss),
                         float(cached)))
    torch.set_rng_state(_from_b64(state["torch"]))
    cuda = state.get("cuda") or []
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([_from_b64(s) for s in cuda])


def optimizer_blobs(optimizer: torch.optim.Optimizer) -> tuple[bytes, dict[str, Any]]:
    """``optimizer.state_dict()`` as a safetensors blob of its tensors and a JSON-ready rest."""
    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    other: dict[str, dict[str, Any]] = {}
    for pid, entries in sd["state"].items():
        for key, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{pid}.{key}"] = value.detach().to("cpu").contiguous().clone()
            else:
                other.setdefault(str(pid), {})[key] = value
    groups = [{k: list(v) if isinstance(v, tuple) else v for k, v in g.items()}
              for g in sd["param_groups"]]
    meta = {"format": OPTIMIZER_FORMAT, "class": type(optimizer).__name__,
            "param_groups": groups, "state": other}
    return safetensors_save(tensors), meta


def optimizer_state(meta: dict[str, Any], tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    """The ``state_dict`` that :func:`optimizer_blobs` took apart, put back together."""
    state: dict[int, dict[str, Any]] = {}
    for pid, entries in meta["state"].items():
        state.setdefault(int(pid), {}).update(entries)
    for name, tensor in tensors.items():
        _, pid, key = name.split(".", 2)
        state.setdefault(int(pid), {})[key] = tensor
    groups = [{k: tuple(v) if k == "betas" else v for k, v in g.items()}
              for g in meta["param_groups"]]
    return {"state": state, "param_groups": groups}
