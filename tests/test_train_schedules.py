"""Learning-rate schedules: SGDR values, the plateau-halving rule, state round trips."""

from __future__ import annotations

import json
import math

import pytest
import torch

from upband.train.config import OptimConfig, ScheduleConfig
from upband.train.schedules import (
    ConstantLR,
    CosineRestarts,
    PlateauHalving,
    build_schedule,
)


def test_cosine_restarts_values() -> None:
    s = CosineRestarts(5e-4, period=100, min_lr=1e-7)
    assert s.lr(0) == 5e-4
    assert s.lr(50) == pytest.approx(1e-7 + (5e-4 - 1e-7) * 0.5)
    assert s.lr(99) == pytest.approx(1e-7 + (5e-4 - 1e-7) * 0.5 * (1 + math.cos(math.pi * 0.99)))
    assert s.lr(100) == 5e-4 and s.lr(250) == s.lr(50)
    grown = CosineRestarts(1.0, period=10, min_lr=0.0, mult=2)
    assert grown.position(9) == (9, 10) and grown.position(10) == (0, 20)
    assert grown.position(29) == (19, 20) and grown.position(30) == (0, 40)


def test_cosine_matches_torch_sgdr() -> None:
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=5e-4)
    ref = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=20, T_mult=2,
                                                               eta_min=1e-7)
    ours = CosineRestarts(5e-4, period=20, min_lr=1e-7, mult=2)
    for step in range(150):
        assert ours.lr(step) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-9), step
        opt.step()
        ref.step()


def test_warmup_is_linear() -> None:
    s = ConstantLR(1e-3, warmup_steps=4)
    assert [s.lr(i) for i in range(6)] == pytest.approx([2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3, 1e-3])


def test_plateau_halves_after_five_flat_windows() -> None:
    s = PlateauHalving(5e-4, window=2, patience=5, factor=0.5)
    # window averages: 1.0 (best), then five that never go below 1.0 -> halve once
    for average in (1.0, 1.0, 1.2, 1.0, 1.1, 1.05):
        s.observe(average)
        s.observe(average)
    assert s.history == [1.0, 1.0, 1.2, 1.0, 1.1, 1.05]
    assert s.lr(0) == 2.5e-4
    # a new best resets the count: four flat windows are not enough
    for average in (0.9, 0.95, 0.95, 0.95, 0.95):
        s.observe(average)
        s.observe(average)
    assert s.lr(0) == 2.5e-4
    s.observe(0.95)
    s.observe(0.95)
    assert s.lr(0) == 1.25e-4


def test_plateau_is_not_the_released_code_bug() -> None:
    """A steadily falling loss never reduces the rate (mode='max' would cut it every 5)."""
    s = PlateauHalving(5e-4, window=1, patience=5)
    for k in range(40):
        s.observe(1.0 / (k + 1))
    assert s.lr(0) == 5e-4


def test_plateau_state_round_trip_mid_window() -> None:
    a = PlateauHalving(1e-3, window=3, patience=2)
    losses = [1.0, 0.9, 0.8, 0.9, 0.95, 0.99, 0.97, 0.96, 0.99, 1.1, 1.2]
    for x in losses[:7]:
        a.observe(torch.tensor(x))  # tensors accumulate without a sync
    b = PlateauHalving(1e-3, window=3, patience=2)
    b.load_state_dict(json.loads(json.dumps(a.state_dict())))
    for x in losses[7:]:
        a.observe(x)
        b.observe(x)
    assert a.state_dict() == b.state_dict() and a.lr(0) == b.lr(0) == 5e-4
    with pytest.raises(ValueError, match="keys"):
        b.load_state_dict({"scale": 1.0})


def test_build_schedule() -> None:
    optim = OptimConfig(lr=1e-3)
    assert isinstance(build_schedule(ScheduleConfig(name="constant"), optim), ConstantLR)
    cos = build_schedule(ScheduleConfig(name="cosine-restarts", period=10, min_lr=1e-5,
                                        warmup_steps=2), optim)
    assert cos.lr(0) == pytest.approx(0.5 * 1e-3 * 0.5 * (1 + math.cos(0.0)))
    plateau = build_schedule(ScheduleConfig(name="plateau", min_lr=3e-4, plateau_window=1,
                                            plateau_patience=1), optim)
    for _ in range(5):
        plateau.observe(1.0)
    assert plateau.lr(0) == 3e-4  # floored at min_lr
