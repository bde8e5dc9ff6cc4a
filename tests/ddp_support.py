"""Train a task's run on two CPU processes (gloo) launched as torchrun launches them, and
bring back every module of the task from both ranks (for the GAN tasks' DDP tests)."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file

from upband.train.config import Config, config_from_dict, config_to_dict
from upband.train.loop import StepInfo, train


def _worker(rank: int, port: int, config_json: str, run_dir: str, out: str) -> None:
    os.environ.update(WORLD_SIZE="2", RANK=str(rank), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    holder: dict[str, object] = {}

    def record(info: StepInfo) -> None:
        holder["task"] = info.task

    train(config_from_dict(json.loads(config_json)), run_dir if rank == 0 else run_dir + "-1",
          quiet=True, on_step=record)
    for name, module in holder["task"].modules.items():  # type: ignore[attr-defined]
        save_file({k: v.contiguous() for k, v in module.state_dict().items()},
                  str(Path(out) / f"{name}-rank{rank}.safetensors"))


def train_on_two_ranks(config: Config, run_dir: Path, out: Path,
                       names: tuple[str, ...]) -> dict[str, tuple[dict[str, torch.Tensor], ...]]:
    """Run ``config`` on two gloo ranks (rank 0 writes ``run_dir``, rank 1 would write
    ``run_dir-1``); the weights of the task's modules ``names`` on rank 0 and rank 1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    out.mkdir(parents=True, exist_ok=True)
    mp.spawn(_worker, args=(port, json.dumps(config_to_dict(config)), str(run_dir), str(out)),
             nprocs=2, join=True)
    return {name: tuple(load_file(out / f"{name}-rank{r}.safetensors") for r in (0, 1))
            for name in names}
