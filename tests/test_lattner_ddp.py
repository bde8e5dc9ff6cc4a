"""Lattner & Nistal's WGAN under DDP: two gloo processes as torchrun starts them; the generator
and the critic hold the same weights on both ranks after the steps (their gradients, the
gradient penalty's double backward included, are averaged), and only rank 0 writes."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file

from ddp_support import train_on_two_ranks
from upband.train.config import load_config

RUN = ["data.corpus=synthetic", "data.synthetic={files=[3, 1, 0], seconds=1.0}",
       "data.preset=sulun-single", "data.crop_samples=640", "data.context_samples=256",
       "model.kwargs={n_fft=64, hop=16, front=[2, 4, 4], agg_maps=4, agg_rows=4, "
       "noise_maps=2, dilations=[1, 2]}", "train.batch_size=2", "train.max_steps=3",
       "validation.every=0", "validation.at_start=false", "checkpoint.every=3",
       "runtime.progress=false", "runtime.tensorboard=false", "runtime.threads=1"]


def test_wgan_trains_under_ddp(tmp_path: Path) -> None:
    config = load_config("configs/lattner-mp3.toml", RUN)
    ranks = train_on_two_ranks(config, tmp_path / "run", tmp_path / "out", ("model", "critic"))
    fresh = {}
    for name, (a, b) in ranks.items():
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
