"""Training configuration: frozen dataclasses per concern, loaded from TOML with overrides.

A recipe (``configs/*.toml``) has one table per dataclass below::

    [data]  [model]  [model.kwargs]  [optim]  [schedule]  [loss]
    [train] [validation]  [checkpoint]  [runtime]

plus an optional top-level ``description``. Every key is optional (the defaults below apply);
an unknown table or key is a :class:`ConfigError` that lists the valid ones. Command-line
overrides are ``section.key=value`` with the value parsed as a TOML literal (``optim.lr=1e-4``,
``optim.betas=[0.9, 0.99]``, ``runtime.progress=false``); a value that is not valid TOML is
taken as a bare string (``data.corpus=/data/corpus``). ``model.kwargs.NAME=value`` sets a
constructor argument of the network.

The resolved config (every key, defaults included) is :func:`config_to_dict`; it is written as
JSON into the run folder and into every checkpoint, and :func:`config_from_dict` reads it back
(``config_from_dict(config_to_dict(c)) == c``).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import sys
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from upband.errors import MissingDependencyError, SpecError

__all__ = [
    "VALIDATION_METRICS",
    "CheckpointConfig",
    "Config",
    "ConfigError",
    "DataConfig",
    "LossConfig",
    "ModelConfig",
    "OptimConfig",
    "RuntimeConfig",
    "ScheduleConfig",
    "TrainConfig",
    "ValidationConfig",
    "apply_overrides",
    "config_diff",
    "config_from_dict",
    "config_to_dict",
    "load_config",
    "parse_override",
    "read_toml",
]

PathLike = str | os.PathLike[str]

#: Metrics computed at every validation (``<filter>_<signal>_<metric>``); ``seen_loss`` is the
#: training loss on the seen-filter items. Any of them can be ``checkpoint.best_metric``.
VALIDATION_METRICS = (
    "seen_input_snr", "seen_output_snr", "seen_input_lsd", "seen_output_lsd",
    "unseen_input_snr", "unseen_output_snr", "unseen_input_lsd", "unseen_output_lsd",
    "seen_loss",
)


class ConfigError(SpecError):
    """A training config or override is malformed: unknown key, wrong type or bad value."""


@dataclass(frozen=True)
class DataConfig:
    """Training data (see :mod:`upband.data`).

    ``corpus``: path of a corpus built by ``upband corpus build``, or ``"synthetic"`` for the
    in-memory harmonic test source (``synthetic`` holds its keyword arguments).
    ``crop_samples``: length of a training crop at ``sample_rate``; ``context_samples`` of real
    audio on each side are degraded with the crop and cut away (no filter edge transients).
    ``workers``: DataLoader worker processes; 0 loads in the training process, -1 (default)
    picks 0 on the CPU (the cores are busy training) and ``min(8, CPUs / local GPUs - 1)`` on
    CUDA (degrading a batch takes longer than a small model's GPU step).
    """

    corpus: str = "synthetic"
    sample_rate: int = 44_100
    channels: int = 2
    crop_samples: int = 8192
    preset: str = "sulun-single"
    gain_db: tuple[float, float] = (-6.0, 0.0)
    context_samples: int = 4096
    workers: int = -1
    synthetic: dict[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        _positive(self, "sample_rate", "channels", "crop_samples")
        _non_negative(self, "context_samples")
        if self.workers < -1:
            raise ConfigError(f"data.workers must be >= 0, or -1 for automatic, "
                              f"got {self.workers}")
        if self.gain_db[0] > self.gain_db[1]:
            raise ConfigError(f"data.gain_db must be [low, high], got {list(self.gain_db)}")
        _check_preset("data.preset", self.preset)


@dataclass(frozen=True)
class ModelConfig:
    """The network: a name of :data:`upband.models.MODELS` and constructor overrides."""

    name: str = "arunet"
    kwargs: dict[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        from upband.models import MODELS

        if self.name not in MODELS:
            raise ConfigError(f"model.name {self.name!r} is not a registered model; valid: "
                              f"{', '.join(MODELS)}")
        valid = MODELS[self.name].parameters()
        unknown = sorted(set(self.kwargs) - set(valid))
        if unknown:
            raise ConfigError(f"model.kwargs: {self.name!r} has no argument(s) "
                              f"{', '.join(unknown)}; valid: {', '.join(valid)}")


@dataclass(frozen=True)
class OptimConfig:
    """Optimiser. ``adamw`` decouples the weight decay (Loshchilov & Hutter); ``adam`` adds it
    to the gradient (L2). ``grad_clip``: maximum global gradient norm, 0 = no clipping."""

    name: Literal["adam", "adamw"] = "adamw"
    lr: float = 5e-4
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0
    grad_clip: float = 0.0

    def check(self) -> None:
        _positive(self, "lr", "eps")
        _non_negative(self, "weight_decay", "grad_clip")
        if not all(0.0 <= b < 1.0 for b in self.betas):
            raise ConfigError(f"optim.betas must lie in [0, 1), got {list(self.betas)}")


@dataclass(frozen=True)
class ScheduleConfig:
    """Learning-rate schedule, stepped once per iteration (see :mod:`upband.train.schedules`).

    * ``constant``: ``optim.lr`` throughout;
    * ``cosine-restarts``: cosine from ``optim.lr`` down to ``min_lr`` over ``period``
      iterations, then restart (SGDR; the period grows by ``period_mult`` after each restart);
    * ``plateau``: multiply the rate by ``plateau_factor`` when ``plateau_patience`` consecutive
      averages of the training loss over ``plateau_window`` iterations show no decrease below
      the best average so far (Sulun & Davies §III-E), never below ``min_lr``.

    ``warmup_steps``: linear warm-up from 0 multiplying any of them.
    """

    name: Literal["constant", "cosine-restarts", "plateau"] = "constant"
    warmup_steps: int = 0
    period: int = 20_000
    period_mult: int = 1
    min_lr: float = 1e-7
    plateau_window: int = 2500
    plateau_patience: int = 5
    plateau_factor: float = 0.5

    def check(self) -> None:
        _positive(self, "period", "period_mult", "plateau_window", "plateau_patience")
        _non_negative(self, "warmup_steps", "min_lr")
        if not 0.0 < self.plateau_factor < 1.0:
            raise ConfigError(f"schedule.plateau_factor must lie in (0, 1), "
                              f"got {self.plateau_factor}")


@dataclass(frozen=True)
class LossConfig:
    """Weighted sum of loss terms (a weight of 0 leaves a term out; see
    :mod:`upband.train.losses`): ``mse``, ``rmse`` (per patch, Kuleshov), ``mrstft``
    (spectral convergence + log magnitude at each ``stft_ffts`` / ``stft_hops`` /
    ``stft_windows`` resolution), ``mrwave`` (L1 at the rates ``1 / wave_factors``, decimated
    by ``wave_decimation``: ``"fir"`` anti-aliased or ``"avgpool"``)."""

    mse: float = 1.0
    rmse: float = 0.0
    mrstft: float = 0.0
    mrwave: float = 0.0
    stft_ffts: tuple[int, ...] = (512, 1024, 2048)
    stft_hops: tuple[int, ...] = (256, 512, 1024)
    stft_windows: tuple[int, ...] = (512, 1024, 2048)
    wave_factors: tuple[int, ...] = (1, 2, 4)
    wave_decimation: Literal["fir", "avgpool"] = "fir"

    def check(self) -> None:
        _non_negative(self, "mse", "rmse", "mrstft", "mrwave")
        if not any((self.mse, self.rmse, self.mrstft, self.mrwave)):
            raise ConfigError("loss: every term has weight 0; give mse, rmse, mrstft or mrwave "
                              "a positive weight")
        if not len(self.stft_ffts) == len(self.stft_hops) == len(self.stft_windows) > 0:
            raise ConfigError("loss.stft_ffts, stft_hops and stft_windows must be non-empty "
                              "lists of equal length")
        for n, h, w in zip(self.stft_ffts, self.stft_hops, self.stft_windows, strict=True):
            if not 0 < h <= w <= n:
                raise ConfigError(f"loss: STFT resolution (fft {n}, hop {h}, window {w}) needs "
                                  "0 < hop <= window <= fft")
        if not self.wave_factors or any(f < 1 for f in self.wave_factors):
            raise ConfigError(f"loss.wave_factors must be integers >= 1, "
                              f"got {list(self.wave_factors)}")


@dataclass(frozen=True)
class TrainConfig:
    """Length and batch of the run. ``batch_size`` is per process (the global batch is
    ``batch_size x world size``). ``max_steps``: total iterations of the run (a resumed run
    continues up to it); ``max_minutes``: wall-clock budget of one invocation, after which it
    stops with a checkpoint (0 = none). ``ema_decay``: exponential moving average of the
    weights used for validation and the exported models (0 = off)."""

    batch_size: int = 8
    max_steps: int = 100_000
    max_minutes: float = 0.0
    seed: int = 0
    log_every: int = 50
    ema_decay: float = 0.0

    def check(self) -> None:
        _positive(self, "batch_size", "max_steps", "log_every")
        _non_negative(self, "max_minutes", "seed")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"train.ema_decay must lie in [0, 1), got {self.ema_decay}")


@dataclass(frozen=True)
class ValidationConfig:
    """Sulun & Davies §III-D3: every ``every`` iterations (0 = never), ``seconds`` of audio
    from ``offset_seconds`` into each of at most ``max_files`` files of ``split``, degraded
    with the seen filter(s) (``seen_preset``, empty = ``data.preset``) and with the unseen
    filter (``unseen_preset``, empty = no unseen validation); input and output SNR and LSD
    (``lsd_ssr``), mean over files.
    ``chunk_seconds``: process long items in chunks of this length (0 = in one pass).
    ``at_start``: also validate before the first iteration (the untrained baseline)."""

    every: int = 2500
    split: str = "validation"
    seconds: float = 8.0
    offset_seconds: float = 8.0
    max_files: int = 8
    seen_preset: str = ""
    unseen_preset: str = "sulun-unseen"
    chunk_seconds: float = 0.0
    at_start: bool = True

    def check(self) -> None:
        _positive(self, "seconds", "max_files")
        _non_negative(self, "every", "offset_seconds", "chunk_seconds")
        if self.seen_preset:
            _check_preset("validation.seen_preset", self.seen_preset)
        if self.unseen_preset:
            _check_preset("validation.unseen_preset", self.unseen_preset)


@dataclass(frozen=True)
class CheckpointConfig:
    """Checkpoints every ``every`` iterations (and at the end), keeping the ``keep_last`` most
    recent; the model with the best ``best_metric`` (``best_mode`` ``max`` or ``min``) is kept
    as ``best.safetensors``."""

    every: int = 2500
    keep_last: int = 3
    best_metric: str = "unseen_output_snr"
    best_mode: Literal["max", "min"] = "max"

    def check(self) -> None:
        _positive(self, "every", "keep_last")
        if self.best_metric not in VALIDATION_METRICS:
            raise ConfigError(f"checkpoint.best_metric {self.best_metric!r} is not a validation "
                              f"metric; valid: {', '.join(VALIDATION_METRICS)}")


@dataclass(frozen=True)
class RuntimeConfig:
    """Where and how the run executes; none of these changes what is learnt on the CPU.

    ``device``: ``auto`` (CUDA when present, the local rank's GPU under torchrun), ``cpu``,
    ``cuda``, ``cuda:N``. ``amp``: ``auto`` = bf16 autocast on CUDA, off on the CPU.
    ``compile``: ``auto`` = ``torch.compile`` on CUDA, off on the CPU. ``threads``: torch CPU
    threads (0 = torch's default). ``deterministic``: deterministic CUDA kernels (slower).
    ``progress``: the progress bar (rank 0, on a terminal). ``tensorboard``: event files.
    """

    device: str = "auto"
    amp: Literal["auto", "bf16", "off"] = "auto"
    compile: Literal["auto", "on", "off"] = "auto"
    threads: int = 0
    deterministic: bool = False
    progress: bool = True
    tensorboard: bool = True

    def check(self) -> None:
        _non_negative(self, "threads")
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ConfigError(f"runtime.device must be auto, cpu, cuda or cuda:N, "
                              f"got {self.device!r}")


@dataclass(frozen=True)
class Config:
    """A complete training recipe; see the module docstring."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    description: str = ""

    def check(self) -> None:
        """Validate every section (called by :func:`config_from_dict`)."""
        for name in SECTIONS:
            getattr(self, name).check()
        rate = self.data.sample_rate
        _check_preset("data.preset", self.data.preset, rate)
        _check_preset("validation.seen_preset", self.seen_preset, rate)
        if self.validation.unseen_preset:
            _check_preset("validation.unseen_preset", self.validation.unseen_preset, rate)
        if self.checkpoint.best_metric.startswith("unseen_") and not self.validation.unseen_preset:
            raise ConfigError(f"checkpoint.best_metric is {self.checkpoint.best_metric!r} but "
                              "validation.unseen_preset is empty (no unseen validation)")

    @property
    def seen_preset(self) -> str:
        """The preset of the seen-filter validation (``data.preset`` unless given)."""
        return self.validation.seen_preset or self.data.preset

    def updated(self, changes: Mapping[str, Any]) -> Config:
        """A validated copy with dotted ``{"section.key": value}`` changes applied."""
        return config_from_dict(apply_overrides(config_to_dict(self), changes.items()))


SECTIONS: dict[str, type[Any]] = {
    f.name: typing.get_type_hints(Config)[f.name]
    for f in dataclasses.fields(Config) if f.name != "description"
}


# --------------------------------------------------------------------------------------------
# checks
# --------------------------------------------------------------------------------------------


def _section_name(obj: object) -> str:
    return next(k for k, v in SECTIONS.items() if isinstance(obj, v))


def _positive(obj: object, *names: str) -> None:
    for name in names:
        if not getattr(obj, name) > 0:
            raise ConfigError(f"{_section_name(obj)}.{name} must be > 0, "
                              f"got {getattr(obj, name)!r}")


def _non_negative(obj: object, *names: str) -> None:
    for name in names:
        if not getattr(obj, name) >= 0:
            raise ConfigError(f"{_section_name(obj)}.{name} must be >= 0, "
                              f"got {getattr(obj, name)!r}")


def _check_preset(key: str, name: str, sample_rate: int | None = None) -> None:
    from upband.degrade.presets import PRESETS

    if name not in PRESETS:
        raise ConfigError(f"{key} {name!r} is not a degradation preset; valid: "
                          f"{', '.join(PRESETS)}")
    if sample_rate is None:
        return
    for option in PRESETS[name].options:
        cutoff = option.fields.get("cutoff_hz")
        if isinstance(cutoff, int | float) and not cutoff < sample_rate / 2:
            raise ConfigError(f"{key} {name!r} cuts at {cutoff:g} Hz, above the Nyquist "
                              f"frequency of data.sample_rate = {sample_rate}; choose a preset "
                              "made for this rate")


# --------------------------------------------------------------------------------------------
# dict <-> dataclasses
# --------------------------------------------------------------------------------------------


def _describe(hint: Any) -> str:
    origin = get_origin(hint)
    if origin is Literal:
        return " or ".join(repr(a) for a in get_args(hint))
    if origin is tuple:
        args = get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {_describe(args[0])}"
        return f"a list of {len(args)} numbers"
    if origin is dict:
        return "a table"
    return {bool: "true or false", int: "an integer", float: "a number",
            str: "a string"}.get(hint, str(hint))


def _coerce(value: Any, hint: Any, key: str) -> Any:
    """``value`` (from TOML or JSON) as the field type ``hint``; ConfigError otherwise."""
    origin = get_origin(hint)
    bad = ConfigError(f"{key} must be {_describe(hint)}, got {value!r}")
    if origin in (Union, types.UnionType):
        for option in get_args(hint):
            try:
                return _coerce(value, option, key)
            except ConfigError:
                pass
        raise bad
    if origin is Literal:
        if value not in get_args(hint):
            raise ConfigError(f"{key} must be {_describe(hint)}, got {value!r}")
        return value
    if origin is tuple:
        args = get_args(hint)
        if not isinstance(value, list | tuple):
            raise bad
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], key) for v in value)
        if len(value) != len(args):
            raise bad
        return tuple(_coerce(v, a, key) for v, a in zip(value, args, strict=True))
    if origin is dict:
        if not isinstance(value, dict):
            raise bad
        return {str(k): v for k, v in value.items()}
    if hint is bool:
        if not isinstance(value, bool):
            raise bad
        return value
    if hint is int:
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise bad
        return value
    if hint is float:
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise bad
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise bad
        return value
    raise TypeError(f"unsupported config field type {hint!r}")  # pragma: no cover


def _unknown(kind: str, name: str, valid: Iterable[str]) -> ConfigError:
    valid = list(valid)
    close = difflib.get_close_matches(name, valid, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return ConfigError(f"unknown config {kind} {name!r}{hint}; valid: {', '.join(valid)}")


def _build_section(cls: type[Any], raw: Any, name: str) -> Any:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"config [{name}] must be a table, got {raw!r}")
    hints = typing.get_type_hints(cls)
    fields = [f.name for f in dataclasses.fields(cls)]
    values = {}
    for key, value in raw.items():
        if key not in hints:
            raise _unknown("key", f"{name}.{key}", (f"{name}.{f}" for f in fields))
        values[key] = _coerce(value, hints[key], f"{name}.{key}")
    return cls(**values)


def config_from_dict(raw: Mapping[str, Any]) -> Config:
    """A validated :class:`Config` from nested tables (a parsed TOML file or the JSON of
    :func:`config_to_dict`); missing keys take their defaults."""
    sections = {}
    description = ""
    for name, value in raw.items():
        if name == "description":
            if not isinstance(value, str):
                raise ConfigError(f"description must be a string, got {value!r}")
            description = value
        elif name in SECTIONS:
            sections[name] = _build_section(SECTIONS[name], value, name)
        else:
            raise _unknown("table", name, [*SECTIONS, "description"])
    config = Config(**sections, description=description)
    config.check()
    return config


def _plain(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def config_to_dict(config: Config) -> dict[str, Any]:
    """Every key of ``config`` as nested JSON-ready tables (tuples become lists)."""
    out: dict[str, Any] = _plain(dataclasses.asdict(config))
    return out


def config_diff(a: Config, b: Config) -> list[str]:
    """Dotted keys whose values differ between two configs (``model.kwargs`` as one key)."""
    da, db = config_to_dict(a), config_to_dict(b)
    keys = []
    for section in da:
        if not isinstance(da[section], dict):
            if da[section] != db[section]:
                keys.append(section)
            continue
        for key in da[section]:
            if da[section][key] != db[section][key]:
                keys.append(f"{section}.{key}")
    return keys


# --------------------------------------------------------------------------------------------
# TOML and overrides
# --------------------------------------------------------------------------------------------


def _tomllib() -> Any:
    if sys.version_info >= (3, 11):
        import tomllib

        return tomllib
    try:  # pragma: no cover - Python 3.10
        import tomli
    except ImportError as exc:  # pragma: no cover
        raise MissingDependencyError(
            "reading TOML recipes on Python 3.10 needs tomli: pip install tomli") from exc
    return tomli  # pragma: no cover


def read_toml(path: PathLike) -> dict[str, Any]:
    """Parse a TOML file; a missing file or a syntax error is a :class:`ConfigError`."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    toml = _tomllib()
    try:
        with path.open("rb") as fh:
            data: dict[str, Any] = toml.load(fh)
    except toml.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML ({exc})") from exc
    return data


def parse_override(text: str) -> tuple[str, Any]:
    """``"optim.lr=1e-4"`` -> ``("optim.lr", 0.0001)``.

    The value is parsed as a TOML literal (numbers, booleans, quoted strings, lists, inline
    tables); anything that is not valid TOML is kept as a bare string, so paths need no quotes.
    """
    key, sep, value = text.partition("=")
    key, value = key.strip(), value.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override {text!r} must look like section.key=value "
                          "(e.g. optim.lr=1e-4)")
    try:
        parsed = _tomllib().loads(f"v = {value}")["v"]
    except Exception:  # not a TOML literal: a bare string such as a path
        parsed = value
    return key, parsed


def apply_overrides(raw: Mapping[str, Any], overrides: Iterable[tuple[str, Any]]
                    ) -> dict[str, Any]:
    """A deep copy of ``raw`` with each dotted ``(key, value)`` set; the keys are checked when
    the result goes through :func:`config_from_dict`."""
    out: dict[str, Any] = json.loads(json.dumps(raw))
    for key, value in overrides:
        parts = key.split(".")
        if parts[0] != "description" and parts[0] not in SECTIONS:
            raise _unknown("table", parts[0], [*SECTIONS, "description"])
        node = out
        for i, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"override {key!r}: {'.'.join(parts[:i + 1])} is not a table")
            node = child
        node[parts[-1]] = _plain(value)
    return out


def load_config(path: PathLike | None = None, overrides: Iterable[str] = ()) -> Config:
    """The recipe at ``path`` (defaults when ``None``) with ``key=value`` overrides applied.

    >>> load_config("configs/arunet.toml", ["optim.lr=1e-4", "data.corpus=/data/music"])
    """
    raw = read_toml(path) if path is not None else {}
    return config_from_dict(apply_overrides(raw, (parse_override(o) for o in overrides)))
