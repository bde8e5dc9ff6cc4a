"""Where and how a run executes: threads, determinism, seeds, mixed precision, compilation,
DataLoader workers (``runtime.*`` and ``data.workers``: what may change when a run resumes)."""

from __future__ import annotations

import contextlib
import os
import random
import warnings
from collections.abc import Iterator

import numpy as np
import torch

from upband.train.config import Config
from upband.train.distributed import DistInfo

__all__ = ["autocast", "prepare_runtime", "step_seed", "use_amp", "use_compile", "workers"]


def prepare_runtime(config: Config, device: torch.device) -> None:
    """Apply ``runtime.threads`` / ``runtime.deterministic`` (and the CUDA kernel choices), then
    seed Python, NumPy and torch from ``train.seed``: every rank builds the same weights."""
    c = config
    if c.runtime.threads:
        torch.set_num_threads(c.runtime.threads)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = not c.runtime.deterministic
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    if c.runtime.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
    random.seed(c.train.seed)
    np.random.seed(c.train.seed % 2**32)
    torch.manual_seed(c.train.seed)


def step_seed(seed: int, rank: int, step: int) -> int:
    """The torch seed of iteration ``step`` of ``rank`` (dropout and any other randomness)."""
    state = np.random.SeedSequence([seed, rank, step]).generate_state(2, dtype=np.uint32)
    return int(state[0]) << 32 | int(state[1])


def workers(config: Config, info: DistInfo) -> int:
    """``data.workers``, with -1 resolved: 0 on the CPU, up to 8 per GPU process on CUDA."""
    if config.data.workers >= 0:
        return config.data.workers
    if info.device.type != "cuda":
        return 0
    per_process = (os.cpu_count() or 1) // max(1, torch.cuda.device_count())
    return max(0, min(8, per_process - 1))


def use_amp(config: Config, device: torch.device) -> bool:
    """Whether forward passes run in bf16 autocast (``runtime.amp``; CUDA only)."""
    if config.runtime.amp == "off":
        return False
    if device.type != "cuda":
        if config.runtime.amp == "bf16":
            warnings.warn("runtime.amp=bf16 is only used on CUDA; training in float32",
                          RuntimeWarning, stacklevel=3)
        return False
    return bool(torch.cuda.is_bf16_supported())


def use_compile(config: Config, device: torch.device) -> bool:
    """Whether the trained modules go through ``torch.compile`` (``runtime.compile``)."""
    if config.runtime.compile == "auto":
        return device.type == "cuda"
    return config.runtime.compile == "on"


@contextlib.contextmanager
def autocast(enabled: bool) -> Iterator[None]:
    """bf16 autocast on CUDA when ``enabled``, else nothing."""
    if not enabled:
        yield
        return
    with torch.autocast("cuda", dtype=torch.bfloat16):
        yield
