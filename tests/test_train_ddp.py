"""DDP on the CPU: 2 processes, gloo backend, launched the way torchrun launches them (the
environment variables WORLD_SIZE / RANK / LOCAL_RANK / MASTER_ADDR / MASTER_PORT)."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file

from upband.states import load_model
from upband.train.config import config_from_dict, config_to_dict, load_config
from upband.train.loop import StepInfo, train

WORLD = 2
STEPS = 4
BATCH = 2
#: No batch norm and no dropout, so that 2 ranks x batch B is the same computation as one
#: process with batch 2B (DDP averages the ranks' gradients).
BASE = [
    "data.corpus=synthetic", "data.synthetic={files=[3, 1, 0], seconds=1.0}",
    "data.crop_samples=2048", "data.context_samples=1024", "model.name=arunet",
    "model.kwargs={widths=[8, 12], kernels=[5, 3], dropout=0.0, batchnorm=false, "
    "init_std=0.02}",
    "optim.lr=1e-3", f"train.max_steps={STEPS}", "train.log_every=1", "validation.every=2",
    "validation.max_files=1", "validation.seconds=1.0", "checkpoint.every=2",
    "runtime.progress=false", "runtime.tensorboard=false", "runtime.threads=1",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker(rank: int, port: int, config_json: str, run_dirs: list[str], out: str) -> None:
    os.environ.update(WORLD_SIZE=str(WORLD), RANK=str(rank), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    config = config_from_dict(json.loads(config_json))
    steps: list[dict[str, object]] = []
    holder: dict[str, torch.nn.Module] = {}

    def record(info: StepInfo) -> None:
        steps.append({"step": info.step, "indices": info.indices, "rank": info.rank,
                      "loss": float(info.loss)})
        holder["model"] = info.model

    result = train(config, run_dirs[rank], quiet=True, on_step=record)
    save_file({k: v.contiguous() for k, v in holder["model"].state_dict().items()},
              str(Path(out) / f"rank{rank}.safetensors"))
    (Path(out) / f"rank{rank}.json").write_text(json.dumps(
        {"steps": steps, "step": result.step, "validations": len(result.validations),
         "checkpoint": None if result.checkpoint is None else str(result.checkpoint)}))


def test_two_cpu_processes_gloo(tmp_path: Path) -> None:
    config = load_config(None, [*BASE, f"train.batch_size={BATCH}"])
    run_dirs = [str(tmp_path / "run"), str(tmp_path / "rank1-must-stay-empty")]
    out = tmp_path / "out"
    out.mkdir()
    mp.spawn(_worker, args=(_free_port(), json.dumps(config_to_dict(config)), run_dirs,
                            str(out)), nprocs=WORLD, join=True)
    logs = [json.loads((out / f"rank{r}.json").read_text()) for r in range(WORLD)]
    weights = [load_file(str(out / f"rank{r}.safetensors")) for r in range(WORLD)]

    # rank r of step s trains on s*B*W + r*B + [0, B): different data on the two ranks
    for r, log in enumerate(logs):
        assert log["step"] == STEPS
        assert [s["indices"] for s in log["steps"]] == [
            [s * BATCH * WORLD + r * BATCH + i for i in range(BATCH)] for s in range(STEPS)]
    per_rank = [{i for s in log["steps"] for i in s["indices"]} for log in logs]
    assert not per_rank[0] & per_rank[1]
    # the logged loss is the mean over ranks, identical on both
    assert [s["loss"] for s in logs[0]["steps"]] == [s["loss"] for s in logs[1]["steps"]]

    # gradients are averaged: both ranks hold the same weights ...
    for key in weights[0]:
        assert torch.equal(weights[0][key], weights[1][key]), key
    # ... equal to one process training on the union of their batches (batch 2B)
    single = train(load_config(None, [*BASE, f"train.batch_size={BATCH * WORLD}"]),
                   tmp_path / "single", quiet=True)
    assert single.step == STEPS
    ref = load_model(tmp_path / "single/checkpoints/step-00000004/model.safetensors")
    for key, value in ref.state_dict().items():
        torch.testing.assert_close(weights[0][key], value, rtol=1e-4, atol=1e-6)

    # only rank 0 writes: logs, validations, checkpoints; rank 1's folder was never created
    assert logs[0]["validations"] == 3 and logs[1]["validations"] == 0
    assert logs[0]["checkpoint"] == str(tmp_path / "run/checkpoints/step-00000004")
    assert logs[1]["checkpoint"] is None
    assert not Path(run_dirs[1]).exists()
    run = tmp_path / "run"
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [
        "step-00000002", "step-00000004"]
    lines = (run / "metrics.csv").read_text().splitlines()
    steps = [line.split(",")[0] for line in lines[1:]]
    assert steps == ["0", "1", "2", "2", "3", "4", "4"]  # each event once, not once per rank
    state = json.loads((run / "checkpoints/step-00000004/state.json").read_text())
    assert state["world_size"] == WORLD
