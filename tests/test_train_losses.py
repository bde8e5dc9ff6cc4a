"""Training losses on known values: identical signals give 0, scaled / offset signals give
closed-form values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from upband.train.config import LossConfig
from upband.train.losses import (
    EnvelopeLoss,
    MultiResolutionSTFTLoss,
    MultiResolutionWaveLoss,
    build_loss,
    log_mse_loss,
    mse_loss,
    rmse_loss,
)


def _noise(*shape: int, seed: int = 0, std: float = 0.1) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * std


def test_mse_known_values() -> None:
    y = _noise(2, 2, 1000)
    assert mse_loss(y, y).item() == 0.0
    assert mse_loss(y + 0.5, y).item() == pytest.approx(0.25, rel=1e-6)
    assert mse_loss(0.5 * y, y).item() == pytest.approx(0.25 * y.pow(2).mean().item(), rel=1e-5)


def test_rmse_is_per_patch_then_mean() -> None:
    y = torch.zeros(3, 1, 100)
    est = y.clone()
    est[0] += 0.3  # RMSE 0.3
    est[1] += 0.4  # RMSE 0.4
    # patch 2 is exact: RMSE 0 (the MSE of the batch would give sqrt(mean) = 0.2887 instead)
    assert rmse_loss(est, y).item() == pytest.approx((0.3 + 0.4 + 0.0) / 3, rel=1e-6)
    assert rmse_loss(y, y).item() == 0.0


def test_rmse_gradient_is_finite_at_zero_error() -> None:
    y = _noise(2, 1, 64)
    est = y.clone().requires_grad_(True)
    rmse_loss(est, y).backward()
    assert est.grad is not None and torch.isfinite(est.grad).all()
    assert est.grad.abs().max().item() == 0.0


def test_log_mse_is_sixty_db_minus_each_patch_snr_then_mean() -> None:
    y = torch.cat([_noise(1, 2, 1000, std=1.0), _noise(1, 2, 1000, seed=1, std=1e-2)])
    energy = y.pow(2).mean(dim=(1, 2))
    est = y.clone()
    est[0] *= 1 + 0.1  # 20 dB SNR on the loud patch
    est[1] *= 1 + 0.01  # 40 dB SNR on a patch 40 dB quieter: it counts alike
    floor = 1e-6 * energy + 1e-12
    snr_terms = [10 * math.log10(1 + r * r * e / f)
                 for r, e, f in zip((0.1, 0.01), energy.tolist(), floor.tolist(), strict=True)]
    assert snr_terms[0] == pytest.approx(60 - 20, abs=0.01)
    assert snr_terms[1] == pytest.approx(60 - 40, abs=0.05)
    assert log_mse_loss(est, y).item() == pytest.approx(sum(snr_terms) / 2, rel=1e-5)
    assert log_mse_loss(y, y).item() == 0.0
    # the same relative error on both patches: the gradient scales with 1 / energy, so a step
    # changes each patch's SNR alike (plain MSE's gradient favours the loud patch 1e4-fold)
    est = y.clone().requires_grad_(True)
    log_mse_loss(est * 1.1, y).backward()
    assert est.grad is not None
    ratio = (est.grad[0].norm() / y[0].norm()) / (est.grad[1].norm() / y[1].norm())
    assert ratio.item() == pytest.approx((energy[1] / energy[0]).item(), rel=1e-3)
    assert build_loss(LossConfig(mse=0.0, logmse=1.0)).names == ("logmse",)


def test_envelope_is_the_db_distance_of_band_levels_and_ignores_phase() -> None:
    loss = EnvelopeLoss()
    y = _noise(2, 2, 16384)
    assert loss(y, y).item() == 0.0
    assert loss(0.5 * y, y).item() == pytest.approx(20 * math.log10(2), rel=1e-3)
    # the same band energies with other phases: a time-reversed copy of white noise is far
    # in waveform (MSE ~ 2x its energy) and near in envelope (2 dB: the spread of band
    # energies of a few bins each; 20+ dB for the low-passed copy below)
    other = y.flip(-1)
    assert mse_loss(other, y).item() > 1.9 * y.pow(2).mean().item()
    assert loss(other, y).item() < 2.5
    # an empty top half costs its bands' distance to the floor 60 dB down, and nothing else:
    spec = torch.fft.rfft(y)
    spec[..., spec.shape[-1] // 2:] = 0
    low = torch.fft.irfft(spec, n=y.shape[-1])
    top = int((loss.bands[:, loss.bands.shape[1] // 2 + 8:].sum(1) > 0).sum())
    assert top >= 5
    value = loss(low, y).item()
    assert 0.8 * top / loss.bands.shape[0] * 55 < value < top / loss.bands.shape[0] * 62
    assert build_loss(LossConfig(mse=0.0, envelope=1.0)).names == ("envelope",)


def test_mrstft_identical_is_zero_and_scaled_is_closed_form() -> None:
    loss = MultiResolutionSTFTLoss()  # TD-PR: 512/1024/2048, hops 256/512/1024
    y = _noise(2, 2, 16000)
    assert loss(y, y).item() == 0.0
    for a in (0.5, 2.0):
        # spectral convergence |1 - a| plus mean |log a| at every resolution
        expected = abs(1 - a) + abs(math.log(a))
        assert loss(a * y, y).item() == pytest.approx(expected, rel=1e-4)


def test_mrstft_sees_a_missing_high_band() -> None:
    sr = 16000
    t = torch.arange(sr) / sr
    low = torch.sin(2 * math.pi * 440 * t)
    full = (low + 0.1 * torch.sin(2 * math.pi * 6000 * t)).view(1, 1, -1)
    loss = MultiResolutionSTFTLoss()
    # two estimates with the same squared error (0.005): the high band missing, or 0.9 x gain
    missing, quieter = low.view(1, 1, -1), 0.9 * full
    assert mse_loss(missing, full).item() == pytest.approx(0.005, rel=1e-2)
    assert mse_loss(quieter, full).item() == pytest.approx(0.005, rel=1e-2)
    # the MR-STFT loss tells them apart: the missing band costs > 3 x the gain error
    # (below the closed form 0.1 + ln(1/0.9) only where bins sit at the magnitude floor)
    assert loss(quieter, full).item() == pytest.approx(0.1 + math.log(1 / 0.9), rel=0.1)
    assert loss(missing, full).item() > 3 * loss(quieter, full).item()


@pytest.mark.parametrize("decimation", ["fir", "avgpool"])
def test_mrwave_known_values(decimation: str) -> None:
    loss = MultiResolutionWaveLoss((1, 2, 4), decimation)
    y = _noise(2, 2, 4096)
    assert loss(y, y).item() == 0.0
    # a constant offset survives every unit-DC-gain decimation: |c| at all three rates
    assert loss(y + 0.25, y).item() == pytest.approx(0.25, rel=1e-5)


def test_mrwave_avgpool_by_hand() -> None:
    loss = MultiResolutionWaveLoss((1, 2, 4), "avgpool")
    y = torch.zeros(1, 1, 4)
    est = torch.tensor([[[1.0, -1.0, 2.0, 0.0]]])
    # rate 1: mean |e| = 1; rate 1/2: blocks (0, 1) -> mean 0.5; rate 1/4: (0.5) -> 0.5
    assert loss(est, y).item() == pytest.approx((1.0 + 0.5 + 0.5) / 3)


def test_fir_decimation_rejects_the_upper_band() -> None:
    loss = MultiResolutionWaveLoss((1, 2), "fir")
    n = 8192
    t = torch.arange(n, dtype=torch.float32)
    for freq, (lo, hi) in ((0.05, (0.99, 1.01)), (0.4, (0.0, 0.01))):  # cycles per sample
        x = torch.sin(2 * math.pi * freq * t).view(1, 1, -1)
        d = loss.decimate(x, 2)[..., 64:-64]
        gain = d.pow(2).mean().sqrt().item() / math.sqrt(0.5)
        assert lo <= gain <= hi, (freq, gain)
    # avg pooling lets the same tone through at -13 dB or so: the reason "fir" is the default
    pooled = MultiResolutionWaveLoss((1, 2), "avgpool").decimate(
        torch.sin(2 * math.pi * 0.4 * t).view(1, 1, -1), 2)
    assert pooled.pow(2).mean().sqrt().item() / math.sqrt(0.5) > 0.25


def test_weighted_sum_from_config() -> None:
    cfg = LossConfig(mse=2.0, rmse=0.0, mrstft=1.0, mrwave=1000.0, wave_decimation="avgpool")
    loss = build_loss(cfg)
    assert loss.names == ("mse", "mrstft", "mrwave")
    y = _noise(2, 2, 8192)
    est = y + 0.01
    total, parts = loss(est, y)
    assert parts["mse"].item() == pytest.approx(1e-4, rel=1e-4)
    assert parts["mrwave"].item() == pytest.approx(0.01, rel=1e-4)
    expected = 2.0 * parts["mse"] + parts["mrstft"] + 1000.0 * parts["mrwave"]
    assert total.item() == pytest.approx(expected.item(), rel=1e-6)
    zero, _ = loss(y, y)
    assert zero.item() == 0.0


def test_losses_accept_bf16_and_reject_bad_shapes() -> None:
    y = _noise(1, 2, 2048)
    value = MultiResolutionSTFTLoss()(y.bfloat16(), y).item()
    assert np.isfinite(value) and value < 0.1
    with pytest.raises(ValueError, match="same shape"):
        mse_loss(y, y[..., :100])
    with pytest.raises(ValueError, match="batch, channels, time"):
        mse_loss(y[0], y[0])
