"""Process-group plumbing for ``torchrun``: detection, device choice, collectives.

``torchrun --nproc_per_node=N`` (or any launcher) sets ``WORLD_SIZE``, ``RANK`` and
``LOCAL_RANK`` (and ``MASTER_ADDR`` / ``MASTER_PORT``); :func:`init_distributed` then joins the
process group -- NCCL when the run is on CUDA, gloo on the CPU -- and picks the local rank's GPU.
Without those variables everything here degrades to a single process and the collectives are
no-ops, so the same training command runs on one CPU, one GPU or many.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from upband.train.config import ConfigError

__all__ = ["DistInfo", "all_reduce_mean", "any_rank", "barrier", "init_distributed",
           "resolve_device", "shutdown_distributed", "wrap_module"]


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits: ``rank`` of ``world_size``, ``local_rank`` on its node."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    #: whether :func:`init_distributed` created the process group (and must destroy it)
    owns_group: bool = False

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the only process that logs and writes files."""
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"environment variable {name}={value!r} is not an integer") from None


def resolve_device(spec: str, local_rank: int = 0) -> torch.device:
    """``auto`` -> the local rank's GPU when CUDA is present, else the CPU; ``cuda`` -> the local
    rank's GPU; ``cpu`` / ``cuda:N`` as given."""
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    if spec.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"runtime.device={spec!r} but CUDA is not available; use cpu or auto")
    if spec == "cuda":
        return torch.device("cuda", local_rank)
    return torch.device(spec)


def init_distributed(device: str = "auto") -> DistInfo:
    """Detect a torchrun launch and join its process group; a single process otherwise.

    An already initialised default group (e.g. created by a test harness) is reused and left
    alone by :func:`shutdown_distributed`.
    """
    world = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", rank)
    if dist.is_available() and dist.is_initialized():
        world, rank = dist.get_world_size(), dist.get_rank()
    if world <= 1:
        return DistInfo(device=resolve_device(device))
    if not dist.is_available():  # pragma: no cover - every standard torch build has it
        raise ConfigError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    where = resolve_device(device, local_rank)
    if where.type == "cuda":
        torch.cuda.set_device(where)
    owns = False
    if not dist.is_initialized():
        if where.type == "cuda":
            try:  # binding the device (torch >= 2.3) makes NCCL set up eagerly and correctly
                dist.init_process_group(backend="nccl", init_method="env://", world_size=world,
                                        rank=rank, device_id=where)
            except TypeError:  # pragma: no cover - torch 2.2
                dist.init_process_group(backend="nccl", init_method="env://", world_size=world,
                                        rank=rank)
        else:
            dist.init_process_group(backend="gloo", init_method="env://", world_size=world,
                                    rank=rank)
        owns = True
    return DistInfo(rank=rank, world_size=world, local_rank=local_rank, device=where,
                    owns_group=owns)


def shutdown_distributed(info: DistInfo) -> None:
    """Destroy the process group if :func:`init_distributed` created it."""
    if info.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    """Wait for every rank (no-op in a single process)."""
    if info.distributed:
        if info.device.type == "cuda":
            dist.barrier(device_ids=[info.device.index or 0])
        else:
            dist.barrier()


def all_reduce_mean(tensor: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """The mean of ``tensor`` over the ranks (a new tensor; the input itself in one process)."""
    if not info.distributed:
        return tensor
    out = tensor.detach().clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out / info.world_size


def any_rank(flag: bool, info: DistInfo) -> bool:
    """True on every rank when ``flag`` is true on at least one (e.g. a stop request)."""
    if not info.distributed:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=info.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def wrap_module(module: nn.Module, info: DistInfo, *, compile: bool = False,
                **ddp_kwargs: Any) -> nn.Module:
    """The module a training step calls: ``module`` in :class:`DistributedDataParallel` when
    the run has several ranks (gradients averaged over them in ``backward``), then compiled
    with ``compile``. The parameters stay ``module``'s: step its optimiser, save ``module``.
    ``ddp_kwargs`` go to DDP (e.g. ``find_unused_parameters=True``)."""
    wrapped: nn.Module = module
    if info.distributed:
        ids = [info.device.index] if info.device.type == "cuda" else None
        wrapped = DistributedDataParallel(module, device_ids=ids, **ddp_kwargs)
    if compile:
        wrapped = torch.compile(wrapped)  # type: ignore[assignment]
    return wrapped
