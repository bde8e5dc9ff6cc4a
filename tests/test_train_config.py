"""Training config: TOML, dotted overrides, errors that list the valid keys, shipped recipes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from upband.errors import SpecError, UpbandError
from upband.models import MODELS, build_model
from upband.train.config import (
    Config,
    ConfigError,
    LossConfig,
    OptimConfig,
    config_diff,
    config_from_dict,
    config_to_dict,
    load_config,
    parse_override,
)
from upband.train.losses import build_loss
from upband.train.schedules import CosineRestarts, PlateauHalving, build_schedule

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
RECIPES = sorted(CONFIGS.glob("*.toml"))


def test_toml_and_overrides(tmp_path: Path) -> None:
    path = tmp_path / "r.toml"
    path.write_text('description = "x"\n[optim]\nlr = 1e-3\nbetas = [0.8, 0.9]\n'
                    '[model]\nname = "arunet"\n[model.kwargs]\ndropout = 0.1\n')
    c = load_config(path, ["optim.lr=2e-4", "data.corpus=/data/my corpus", "train.max_steps=7",
                           "model.kwargs.widths=[8, 12]", "runtime.progress=false",
                           "schedule.name=plateau", 'data.preset="sulun-multi"'])
    assert c.optim.lr == 2e-4 and c.optim.betas == (0.8, 0.9)
    assert c.data.corpus == "/data/my corpus"  # not TOML: kept as a bare string
    assert c.train.max_steps == 7 and isinstance(c.train.max_steps, int)
    assert c.model.kwargs == {"dropout": 0.1, "widths": [8, 12]}
    assert c.runtime.progress is False
    assert c.schedule.name == "plateau" and c.data.preset == "sulun-multi"
    assert c.description == "x"
    # defaults fill the rest; an int is accepted for a float field
    assert load_config(None, ["optim.lr=1"]).optim.lr == 1.0
    assert load_config(None).train.batch_size == 8


def test_json_round_trip_and_diff() -> None:
    c = load_config(CONFIGS / "tdpr-seanet.toml", ["optim.lr=3e-4"])
    d = config_to_dict(c)
    assert config_from_dict(json.loads(json.dumps(d))) == c
    assert d["loss"]["stft_ffts"] == [512, 1024, 2048]
    other = c.updated({"optim.lr": 1e-4, "train.max_steps": 5})
    assert config_diff(c, other) == ["optim.lr", "train.max_steps"]


@pytest.mark.parametrize("override, message", [
    ("optim.lrr=1", "unknown config key 'optim.lrr' (did you mean 'optim.lr'?); valid: "
                    "optim.name, optim.lr, optim.betas"),
    ("optimiser.lr=1", "unknown config table 'optimiser'"),
    ("optim.lr=fast", "optim.lr must be a number, got 'fast'"),
    ("optim.name=sgd", "optim.name must be 'adam' or 'adamw', got 'sgd'"),
    ("optim.betas=[0.9]", "optim.betas must be a list of 2 numbers"),
    ("train.batch_size=0", "train.batch_size must be > 0"),
    ("train.max_steps=1.5", "train.max_steps must be an integer"),
    ("data.preset=nope", "data.preset 'nope' is not a degradation preset; valid: sulun-single"),
    ("model.name=nope", "model.name 'nope' is not a registered model; valid: arunet"),
    ("model.kwargs.widthz=[1]", "model.kwargs: 'arunet' has no argument(s) widthz; valid: "),
    ("loss.mse=0", "every term has weight 0"),
    ("checkpoint.best_metric=snr", "not a validation metric; valid: seen_input_snr"),
    ("lr", "must look like section.key=value"),
])
def test_bad_keys_and_values(override: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(None, [override])
    assert message in str(err.value)
    assert isinstance(err.value, SpecError) and isinstance(err.value, UpbandError)
    assert "\n" not in str(err.value)


def test_unseen_metric_needs_unseen_filter() -> None:
    with pytest.raises(ConfigError, match="unseen_preset is empty"):
        load_config(None, ["validation.unseen_preset="])


def test_missing_file_and_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[optim\nlr = 1\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(bad)


def test_parse_override_literals() -> None:
    assert parse_override("a.b=1e-4") == ("a.b", 1e-4)
    assert parse_override("a.b = true") == ("a.b", True)
    assert parse_override("a.b=[1, 2]") == ("a.b", [1, 2])
    assert parse_override("a.b={x = 1}") == ("a.b", {"x": 1})
    assert parse_override("a.b=some/path.wav") == ("a.b", "some/path.wav")
    assert parse_override('a.b="quoted"') == ("a.b", "quoted")


EXPECTED = {
    # recipe: (model, preset, optimiser, lr, betas, schedule, batch, crop, rate, loss terms)
    "arunet": ("arunet", "sulun-single", "adamw", 5e-4, (0.9, 0.99), "cosine-restarts", 8, 8192,
               44100, {"mse"}),
    "sulun-unet": ("sulun-unet", "sulun-single", "adam", 5e-4, (0.9, 0.999), "plateau", 8, 8192,
                   44100, {"mse"}),
    "sulun-unet-da": ("sulun-unet", "sulun-multi", "adam", 5e-4, (0.9, 0.999), "plateau", 8,
                      8192, 44100, {"mse"}),
    "sulun-unet-bn": ("sulun-unet-bn", "sulun-single", "adam", 5e-4, (0.9, 0.999), "plateau", 8,
                      8192, 44100, {"mse"}),
    "sulun-unet-do": ("sulun-unet-do", "sulun-single", "adam", 5e-4, (0.9, 0.999), "plateau", 8,
                      8192, 44100, {"mse"}),
    "sulun-resnet": ("sulun-resnet", "sulun-single", "adam", 5e-4, (0.9, 0.999), "plateau", 8,
                     8192, 44100, {"mse"}),
    "sulun-resnet-da": ("sulun-resnet", "sulun-multi", "adam", 5e-4, (0.9, 0.999), "plateau", 8,
                        8192, 44100, {"mse"}),
    "sulun-resnet-bn": ("sulun-resnet-bn", "sulun-single", "adam", 5e-4, (0.9, 0.999),
                        "plateau", 8, 8192, 44100, {"mse"}),
    "sulun-resnet-do": ("sulun-resnet-do", "sulun-single", "adam", 5e-4, (0.9, 0.999),
                        "plateau", 8, 8192, 44100, {"mse"}),
    "kuleshov-audiounet": ("audiounet", "kuleshov-r4", "adam", 3e-4, (0.9, 0.999), "constant",
                           64, 8192, 16000, {"rmse"}),
    "tdpr-seanet": ("seanet", "tdpr", "adam", 1e-4, (0.9, 0.999), "constant", 12, 80_000, 16000,
                    {"mrstft", "mrwave"}),
    "tdpr-audiounet": ("audiounet", "tdpr", "adam", 1e-4, (0.9, 0.999), "constant", 12, 80_000,
                       16000, {"mrstft", "mrwave"}),
    "arunet-s": ("arunet-s", "versatile", "adamw", 5e-4, (0.9, 0.99), "cosine-restarts",
                 16, 16384, 44100, {"mse"}),
    "upband-default": ("stft-restore", "versatile", "adamw", 5e-4, (0.9, 0.99),
                       "cosine-restarts", 16, 32768, 44100, {"mse"}),
    "stft-restore": ("stft-restore", "versatile", "adamw", 5e-4, (0.9, 0.99), "cosine-restarts",
                     16, 32768, 44100, {"mse", "mrstft"}),
    "upband-envelope": ("stft-restore", "versatile", "adamw", 5e-4, (0.9, 0.99),
                        "cosine-restarts", 16, 32768, 44100, {"logmse", "envelope"}),
    "tfgan": ("tfgan", "tdpr", "adam", 2e-4, (0.5, 0.9), "constant", 16, 16000, 16000,
              {"mrstft", "time"}),
    "tfgan-s": ("tfgan-s", "sulun-single", "adam", 2e-4, (0.5, 0.9), "constant", 8, 16384,
                44100, {"mrstft", "time"}),
    # the WGAN task does not use loss.* (its default term stays listed)
    "lattner-mp3": ("lattner", "lattner-mp3", "adam", 1e-3, (0.0, 0.99), "constant", 12,
                    171_520, 44100, {"mse"}),
    "lattner-mp3-det": ("lattner-det", "lattner-mp3", "adam", 1e-3, (0.0, 0.99), "constant",
                        12, 171_520, 44100, {"mse"}),
}


def test_every_recipe_is_listed() -> None:
    assert {p.stem for p in RECIPES} == set(EXPECTED)


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_recipe_loads_and_builds(path: Path) -> None:
    c = load_config(path)
    model, preset, optim, lr, betas, schedule, batch, crop, rate, terms = EXPECTED[path.stem]
    assert (c.model.name, c.data.preset, c.optim.name, c.optim.lr, c.optim.betas) == \
        (model, preset, optim, lr, betas)
    assert (c.schedule.name, c.train.batch_size, c.data.crop_samples, c.data.sample_rate) == \
        (schedule, batch, crop, rate)
    assert set(build_loss(c.loss).names) == terms
    assert c.description and path.read_text().startswith("#")  # header comment cites the paper
    with torch.device("meta"):  # the paper models have 56-85 M parameters: build without memory
        net = build_model(c.model.name, **c.model.kwargs)
    assert net.name == model and model in MODELS
    assert c.data.crop_samples % 2 == 0
    if path.stem.startswith("sulun-"):  # Sulun tests the final weights; never pick on unseen
        assert c.checkpoint.best_metric == "seen_output_snr"
    # stft-restore is a mono network on stereo crops: each channel is enhanced on its own
    assert c.data.channels == (2 if net.name == "stft-restore" else net.channels)
    if c.train.task == "vocoder":  # a vocoder keeps the best copy synthesis, at its own rate
        assert (c.checkpoint.best_metric, c.checkpoint.best_mode) == ("copy_mrstft", "min")
        assert c.data.sample_rate == net.sample_rate
    sched = build_schedule(c.schedule, c.optim)
    assert sched.lr(10 * c.schedule.warmup_steps + 1) <= lr


def test_recipe_schedules_match_the_papers() -> None:
    arunet = load_config(CONFIGS / "arunet.toml")
    s = build_schedule(arunet.schedule, arunet.optim)
    assert isinstance(s, CosineRestarts)
    assert s.lr(0) == pytest.approx(5e-4)
    assert s.lr(19_999) == pytest.approx(1e-7, abs=1e-9)
    assert s.lr(20_000) == pytest.approx(5e-4)  # warm restart every 20 000 iterations
    assert arunet.optim.weight_decay == 1e-4
    sulun = load_config(CONFIGS / "sulun-resnet-da.toml")
    p = build_schedule(sulun.schedule, sulun.optim)
    assert isinstance(p, PlateauHalving)
    assert (p.window, p.patience, p.factor) == (2500, 5, 0.5)
    tdpr = load_config(CONFIGS / "tdpr-seanet.toml")
    assert (tdpr.loss.mrstft, tdpr.loss.mrwave) == (1.0, 1000.0)
    assert tdpr.loss.stft_hops == (256, 512, 1024) and tdpr.loss.wave_factors == (1, 2, 4)
    assert tdpr.data.crop_samples == 5 * tdpr.data.sample_rate


def test_defaults_are_valid() -> None:
    c = Config()
    c.check()
    assert c.seen_preset == c.data.preset


@pytest.mark.parametrize("override, message", [
    ('train.seed="1"', "train.seed must be an integer, got '1'"),  # strict: no "1" for 1
    ("runtime.progress=1", "runtime.progress must be true or false, got 1"),
    ("optim.eps=0", "optim.eps must be > 0, got 0.0"),
    ("data.gain_db=[0, -6]", "data.gain_db must be [low, high], got [0.0, -6.0]"),
    ("data.workers=-2", "data.workers must be >= 0, or -1 for automatic, got -2"),
    ("loss.wave_factors=[1.5]", "loss.wave_factors must be an integer, got 1.5"),
    ("runtime.amp=fp16", "runtime.amp must be 'auto' or 'bf16' or 'off', got 'fp16'"),
    ("data.x.y=1", "unknown config key 'data.x'; valid: data.corpus, data.sample_rate"),
    ("data=1", "config [data] must be a table, got 1"),
    ("description=[1]", "description must be a string, got [1]"),
    ("data.sample_rate=8000", "data.preset 'sulun-single' cuts at 11025 Hz, above the Nyquist"),
    ("model.init=upband-defualt", "model.init 'upband-defualt' is neither a pretrained model nor "
                                  "a .safetensors file; pretrained: upband-default"),
])
def test_more_messages(override: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(None, [override])
    assert message in str(err.value) and "\n" not in str(err.value)


def test_model_init_parses_and_overrides(tmp_path: Path) -> None:
    assert load_config(None).model.init == ""  # random initialisation
    recipe = tmp_path / "r.toml"
    recipe.write_text('[model]\nname = "arunet"\ninit = "upband-default"\n')
    c = load_config(recipe)
    assert c.model.init == "upband-default"
    weights = tmp_path / "warm start.safetensors"  # existence is checked when the run starts
    c = load_config(recipe, [f"model.init={weights}"])
    assert c.model.init == str(weights)
    assert config_from_dict(json.loads(json.dumps(config_to_dict(c)))) == c
    assert config_diff(load_config(recipe), c) == ["model.init"]
    assert load_config(recipe, ['model.init=""']).model.init == ""


def test_models_are_frozen_strict_and_checked_when_built() -> None:
    c = load_config(None, ["train.max_steps=1e3", "optim.betas=[0, 0.5]"])
    assert c.train.max_steps == 1000 and isinstance(c.train.max_steps, int)  # integral float
    assert c.optim.betas == (0.0, 0.5) and isinstance(c.optim.betas, tuple)
    with pytest.raises(ValueError):
        c.train.seed = 3  # type: ignore[misc]
    assert c == load_config(None, ["train.max_steps=1000", "optim.betas=[0.0, 0.5]"]) != Config()
    with pytest.raises(ConfigError, match=r"^optim\.lr must be > 0, got 0\.0$"):
        OptimConfig(lr=0)
    with pytest.raises(ConfigError, match=r"^unknown config key 'loss\.msee'"):
        LossConfig(msee=1.0)
