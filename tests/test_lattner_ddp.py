"""Lattner & Nistal's WGAN under DDP: two gloo processes as torchrun starts them; the generator
and the critic hold the same weights on both ranks after the steps (their gradients, the
gradient penalty's double backward included, are averaged), and only rank 0 writes."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file

from upband.train.config import config_from_dict, config_to_dict, load_config
from upband.train.loop import StepInfo, train

RUN = ["data.corpus=synthetic", "data.synthetic={files=[3, 1, 0], seconds=1.0}",
       "data.preset=sulun-single", "data.crop_samples=640", "data.context_samples=256",
       "model.kwargs={n_fft=64, hop=16, front=[2, 4, 4], agg_maps=4, agg_rows=4, "
       "noise_maps=2, dilations=[1, 2]}", "train.batch_size=2", "train.max_steps=3",
       "validation.every=0", "validation.at_start=false", "checkpoint.every=3",
       "runtime.progress=false", "runtime.tensorboard=false", "runtime.threads=1"]


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


def test_wgan_trains_under_ddp(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    config = load_config("configs/lattner-mp3.toml", RUN)
    out = tmp_path / "out"
    out.mkdir()
    mp.spawn(_worker, args=(port, json.dumps(config_to_dict(config)), str(tmp_path / "run"),
                            str(out)), nprocs=2, join=True)
    fresh = {}
    for name in ("model", "critic"):
        a, b = (load_file(out / f"{name}-rank{r}.safetensors") for r in (0, 1))
        assert a.keys() == b.keys() and a
        for key in a:
            assert torch.equal(a[key], b[key]), (name, key)
        fresh[name] = a
    # the ranks agree because they averaged, not because nothing moved: the output layer
    # starts at zero (a fresh generator is the identity)
    assert fresh["model"]["deconvs.2.weight"].abs().max() > 0
    saved = load_file(tmp_path / "run/checkpoints/step-00000003/model.safetensors")
    assert all(torch.equal(saved[k], fresh["model"][k]) for k in saved)
    assert (tmp_path / "run/checkpoints/step-00000003/critic.safetensors").exists()
    assert not (tmp_path / "run-1").exists()
