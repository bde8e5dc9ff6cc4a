"""Validation of what ships: the raw network output after the bandwidth detection and the
do-no-harm merge, as ``upband enhance`` writes it (``validation.merged``)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from upband import metrics
from upband.data.synthetic import synthesize
from upband.degrade import lowpass
from upband.models.base import WaveModel
from upband.train.config import ConfigError, load_config
from upband.train.validation import describe_validation, shipped_output, validate

SR = 44100
CUTOFF = 4000.0


class _Hum(WaveModel):
    """Adds a loud 100 Hz hum: wrong below the cutoff, where the merge keeps the input."""

    name = "test-hum"

    def __init__(self) -> None:
        super().__init__(channels=2, stride=1)
        self.gain = torch.nn.Parameter(torch.tensor(0.2))

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        t = torch.arange(x.shape[-1], dtype=x.dtype) / SR
        return self.gain * torch.sin(2 * torch.pi * 100.0 * t).expand_as(x)

    def _receptive_field(self) -> int:
        return 1


def _items(count: int = 2) -> list[SimpleNamespace]:
    rng = np.random.default_rng(7)
    out = []
    for _ in range(count):
        clean = synthesize(SR, 3.0, rng)
        out.append(SimpleNamespace(clean=clean,
                                   degraded=lowpass(clean, SR, CUTOFF, "butter:8")
                                   .astype(np.float32)))
    return out


def test_merged_validation_scores_what_ships() -> None:
    model = _Hum().eval()
    items = {"seen": _items()}
    values = validate(model, items, SR, merged=True)
    # the raw output carries the hum; what ships keeps the input below the cutoff
    assert values["seen_output_snr"] < values["seen_input_snr"] - 10.0
    assert values["seen_merged_snr"] == pytest.approx(values["seen_input_snr"], abs=0.2)
    # the input's damage is above its cutoff: the LSD there is larger than over the whole band
    assert values["seen_input_lsd_high"] > values["seen_input_lsd"]
    assert np.isfinite(values["seen_merged_lsd_high"])
    # each merged value is the mean over items of the shipped output's score
    item = items["seen"][0]
    with torch.no_grad():
        raw = model(torch.from_numpy(item.degraded)[None])[0].numpy()
    shipped, cutoff = shipped_output(model, item.degraded, raw, SR)
    assert CUTOFF * 0.8 < cutoff < CUTOFF * 1.5
    assert float(metrics.snr(item.clean, shipped)) > float(metrics.snr(item.clean, raw)) + 10.0
    assert "merged: SNR" in describe_validation(values)


def test_merged_values_appear_only_when_asked() -> None:
    values = validate(_Hum().eval(), {"seen": _items(1)}, SR)
    assert not [k for k in values if "merged" in k or "lsd_high" in k]


def test_merged_best_metric_needs_merged_validation() -> None:
    config = load_config(None, ["validation.merged=true",
                                "checkpoint.best_metric=seen_merged_snr"])
    assert config.validation.merged and config.checkpoint.best_metric == "seen_merged_snr"
    with pytest.raises(ConfigError, match=r"validation\.merged is false"):
        load_config(None, ["checkpoint.best_metric=seen_merged_lsd_high",
                           "checkpoint.best_mode=min"])


def test_visqol_of_what_ships() -> None:
    pytest.importorskip("visqol")
    items = {"seen": _items(2)}
    values = validate(_Hum().eval(), items, SR, merged=True, visqol=True)
    # the input's score is ViSQOL of the degraded excerpts, averaged
    each = [float(metrics.visqol(it.clean, it.degraded, SR)) for it in items["seen"]]
    assert values["seen_input_visqol"] == pytest.approx(np.mean(each), rel=1e-9)
    assert 1.0 <= values["seen_input_visqol"] <= 5.0 and 1.0 <= values["seen_merged_visqol"] <= 5.0
    # the hum is merged away, and above the 4 kHz cutoff the guard's fill (on from 3 kHz up)
    # adds a soft band: what ships scores no worse than the input, within ViSQOL's noise
    assert values["seen_merged_visqol"] >= values["seen_input_visqol"] - 0.15
    assert "visqol" not in " ".join(validate(_Hum().eval(), items, SR, merged=True))
    with pytest.raises(ConfigError, match=r"validation\.merged=true"):
        load_config(None, ["validation.visqol=true"])
    with pytest.raises(ConfigError, match=r"validation\.visqol is false"):
        load_config(None, ["validation.merged=true", "checkpoint.best_metric=seen_merged_visqol"])


def test_an_excerpt_detected_full_band_has_no_high_band_lsd() -> None:
    rng = np.random.default_rng(8)
    full = synthesize(SR, 3.0, rng)  # full band: the degradation left it whole
    items = {"seen": [*_items(1), SimpleNamespace(clean=full, degraded=full.copy())]}
    values = validate(_Hum().eval(), items, SR, merged=True)
    alone = validate(_Hum().eval(), {"seen": items["seen"][:1]}, SR, merged=True)
    # the full-band excerpt is left out of the high-band means, not a failure
    assert values["seen_input_lsd_high"] == pytest.approx(alone["seen_input_lsd_high"])
    assert np.isfinite(values["seen_merged_lsd_high"])
    assert values["seen_input_snr"] == float("inf")  # an untouched excerpt: infinite SNR stays
