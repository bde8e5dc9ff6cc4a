"""Training configuration: frozen models per concern, loaded from TOML with overrides.

A recipe (``configs/*.toml``) has one table per model below::

    [data]  [model]  [model.kwargs]  [optim]  [schedule]  [loss]
    [train] [validation]  [gan]  [wgan]  [checkpoint]  [runtime]

plus an optional top-level ``description``. Every key is optional (the defaults apply); an
unknown table or key is a :class:`ConfigError` that lists the valid ones. Command-line
overrides are ``section.key=value`` with the value parsed as a TOML literal (``optim.lr=1e-4``,
``optim.betas=[0.9, 0.99]``, ``runtime.progress=false``); a value that is not valid TOML is
taken as a bare string (``data.corpus=/data/corpus``). ``model.kwargs.NAME=value`` sets a
constructor argument of the network.

The resolved config (every key, defaults included) is :func:`config_to_dict`; it is written as
JSON into the run folder and into every checkpoint, and :func:`config_from_dict` reads it back
(``config_from_dict(config_to_dict(c)) == c``).

:mod:`.recipe` turns TOML text and overrides into nested tables (it knows no keys); this
module validates the tables into frozen models and turns them back.

Library: the sections are pydantic v2 models, frozen, ``extra="forbid"`` and strict (no ``"7"``
for an integer, no ``1`` for a boolean; two relaxations are spelled out: ``7.0`` is an integer,
a list is a tuple). pydantic was chosen over OmegaConf structured configs because OmegaConf has
no ``Literal`` fields (``optim.name`` and co. would become enums), converts strings to numbers
where today's recipes get an error, and parses overrides as YAML rather than as the TOML
literals the recipes are written in. pydantic removed the hand-written machinery: the
type-directed coercion of TOML values into tuples, literals, integers, numbers, booleans and
strings, the per-table builder with its unknown-key detection, the dataclass introspection that
listed sections and fields, and the ``> 0`` / ``>= 0`` checks (now ``Field`` constraints).
What remains is the project's own: TOML and overrides, the checks across keys, and the
translation of pydantic's first error into the same one-line message as before.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from upband.degrade.presets import PRESETS
from upband.models import MODELS, PRETRAINED
from upband.train.config.recipe import (
    ConfigError,
    PathLike,
    apply_overrides,
    describe_type,
    parse_override,
    plain,
    read_toml,
    unknown_error,
)
from upband.train.config.types import (
    VALIDATION_METRICS,
    Betas,
    Device,
    Fraction,
    GainRange,
    Ints,
    Invalid,
    Metric,
    NonNegativeFloat,
    NonNegativeInt,
    OpenFraction,
    PositiveFloat,
    PositiveInt,
    Preset,
    PresetOrNone,
    Workers,
)

__all__ = [
    "SECTIONS", "VALIDATION_METRICS", "CheckpointConfig", "Config", "ConfigError", "DataConfig",
    "GanConfig", "LossConfig", "ModelConfig", "OptimConfig", "RuntimeConfig", "ScheduleConfig",
    "TrainConfig", "ValidationConfig", "WganConfig", "apply_overrides", "config_diff",
    "config_from_dict", "config_to_dict", "load_config", "parse_override", "read_toml",
]



class _Frozen(BaseModel):
    """Immutable, comparable, no unknown keys; a bad value is a :class:`ConfigError`."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    def __init__(self, /, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise _config_error(exc, type(self)) from None


class DataConfig(_Frozen):
    """Training data (see :mod:`upband.data`).

    ``corpus``: path of a corpus built by ``upband corpus build``, or ``"synthetic"`` for the
    in-memory harmonic test source (``synthetic`` holds its keyword arguments).
    ``crop_samples``: length of a training crop at ``sample_rate``; ``context_samples`` of real
    audio on each side are degraded with the crop and cut away (no filter edge transients).
    ``workers``: DataLoader worker processes; 0 loads in the training process, -1 (default)
    picks 0 on the CPU (the cores are busy training) and ``min(8, CPUs / local GPUs - 1)`` on
    CUDA (degrading a batch takes longer than a small model's GPU step).
    ``cutoff_under``: for a model told the input's cutoff, the share of crops told a cutoff
    below the true one (down to ``UNDER_RANGE`` of it, :mod:`upband.data.cutoffs`), as the
    detector reads dark music: the network learns to keep real content above the cutoff it is
    told.
    """

    corpus: str = "synthetic"
    sample_rate: PositiveInt = 44_100
    channels: PositiveInt = 2
    crop_samples: PositiveInt = 8192
    preset: Preset = "sulun-single"
    gain_db: GainRange = (-6.0, 0.0)
    context_samples: NonNegativeInt = 4096
    workers: Workers = -1
    synthetic: dict[str, Any] = Field(default_factory=dict)
    cutoff_under: Fraction = 0.0


class ModelConfig(_Frozen):
    """The network: a name of :data:`upband.models.MODELS` and constructor overrides.

    ``init``: where a fresh run takes its initial weights: ``""`` (default) for random
    initialisation, a name of :data:`upband.models.PRETRAINED`, or the path of a
    ``.safetensors`` model file (whether it exists is checked when the run starts, so that a
    run's saved config still reads back after the file has moved). A resumed run ignores it.
    """

    name: str = "arunet"
    kwargs: dict[str, Any] = Field(default_factory=dict)
    init: str = ""

    @model_validator(mode="after")
    def _check(self) -> ModelConfig:
        if self.name not in MODELS:
            raise ConfigError(f"model.name {self.name!r} is not a registered model; valid: "
                              f"{', '.join(MODELS)}")
        valid = MODELS[self.name].parameters()
        unknown = sorted(set(self.kwargs) - set(valid))
        if unknown:
            raise ConfigError(f"model.kwargs: {self.name!r} has no argument(s) "
                              f"{', '.join(unknown)}; valid: {', '.join(valid)}")
        if self.init and self.init not in PRETRAINED and not self.init.endswith(".safetensors"):
            raise ConfigError(f"model.init {self.init!r} is neither a pretrained model nor a "
                              f".safetensors file; pretrained: {', '.join(PRETRAINED) or 'none'}")
        return self


class OptimConfig(_Frozen):
    """Optimiser. ``adamw`` decouples the weight decay (Loshchilov & Hutter); ``adam`` adds it
    to the gradient (L2). ``grad_clip``: maximum global gradient norm, 0 = no clipping."""

    name: Literal["adam", "adamw"] = "adamw"
    lr: PositiveFloat = 5e-4
    betas: Betas = (0.9, 0.999)
    eps: PositiveFloat = 1e-8
    weight_decay: NonNegativeFloat = 0.0
    grad_clip: NonNegativeFloat = 0.0


class ScheduleConfig(_Frozen):
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
    warmup_steps: NonNegativeInt = 0
    period: PositiveInt = 20_000
    period_mult: PositiveInt = 1
    min_lr: NonNegativeFloat = 1e-7
    plateau_window: PositiveInt = 2500
    plateau_patience: PositiveInt = 5
    plateau_factor: OpenFraction = 0.5


class LossConfig(_Frozen):
    """Weighted sum of loss terms (a weight of 0 leaves a term out; see
    :mod:`upband.train.losses`): ``mse``, ``rmse`` (per patch, Kuleshov), ``mrstft``
    (spectral convergence + log magnitude at each ``stft_ffts`` / ``stft_hops`` /
    ``stft_windows`` resolution), ``mrwave`` (L1 at the rates ``1 / wave_factors``, decimated
    by ``wave_decimation``: ``"fir"`` anti-aliased or ``"avgpool"``), ``time`` (TFGAN's
    time-domain loss over frames of ``time_windows`` / ``time_hops`` samples), ``logmse``
    (each crop's error in dB relative to its own energy, a negative SNR, averaged: every crop
    counts alike, however loud), ``envelope`` (dB distance of 1/6-octave band energies frame
    by frame: a band's level in time)."""

    mse: NonNegativeFloat = 1.0
    rmse: NonNegativeFloat = 0.0
    mrstft: NonNegativeFloat = 0.0
    mrwave: NonNegativeFloat = 0.0
    stft_ffts: Ints = (512, 1024, 2048)
    stft_hops: Ints = (256, 512, 1024)
    stft_windows: Ints = (512, 1024, 2048)
    wave_factors: Ints = (1, 2, 4)
    wave_decimation: Literal["fir", "avgpool"] = "fir"
    time: NonNegativeFloat = 0.0
    time_windows: Ints = (1, 240, 480, 960)
    time_hops: Ints = (1, 120, 240, 480)
    logmse: NonNegativeFloat = 0.0
    envelope: NonNegativeFloat = 0.0

    @model_validator(mode="after")
    def _check(self) -> LossConfig:
        if not any((self.mse, self.rmse, self.mrstft, self.mrwave, self.time, self.logmse,
                    self.envelope)):
            raise ConfigError("loss: every term has weight 0; give mse, rmse, mrstft, mrwave, "
                              "time, logmse or envelope a positive weight")
        if len(self.time_windows) != len(self.time_hops) or not all(
                0 < h <= w for w, h in zip(self.time_windows, self.time_hops, strict=False)):
            raise ConfigError("loss.time_windows and time_hops must be lists of equal length "
                              "with 0 < hop <= window")
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
        return self


class TrainConfig(_Frozen):
    """Length and batch of the run. ``batch_size`` is per process (the global batch is
    ``batch_size x world size``). ``max_steps``: total iterations of the run (a resumed run
    continues up to it); ``max_minutes``: wall-clock budget of one invocation, after which it
    stops with a checkpoint (0 = none); ``max_cpu_minutes``: CPU budget of the whole run (the
    training process's CPU time, every thread, resumes included: what designs are compared at),
    after which it stops the same way (0 = none). ``ema_decay``: exponential moving average of the
    weights used for validation and the exported models (0 = off). ``task``: what one step
    trains, a name of :data:`upband.train.tasks.TASKS` (checked when the run starts, since the
    tasks import this module)."""

    task: str = "regression"
    batch_size: PositiveInt = 8
    max_steps: PositiveInt = 100_000
    max_minutes: NonNegativeFloat = 0.0
    max_cpu_minutes: NonNegativeFloat = 0.0
    seed: NonNegativeInt = 0
    log_every: PositiveInt = 50
    ema_decay: Fraction = 0.0


class ValidationConfig(_Frozen):
    """Sulun & Davies §III-D3: every ``every`` iterations (0 = never), ``seconds`` of audio
    from ``offset_seconds`` into each of at most ``max_files`` files of ``split``, degraded
    with the seen filter(s) (``seen_preset``, empty = ``data.preset``) and with the unseen
    filter (``unseen_preset``, empty = no unseen validation); input and output SNR and LSD
    (``lsd_ssr``), mean over files.
    ``chunk_seconds``: process long items in chunks of this length (0 = in one pass).
    ``at_start``: also validate before the first iteration (the untrained baseline).
    ``merged``: also score what ``upband enhance`` would ship -- the raw output after the
    bandwidth detection and the do-no-harm merge -- and the LSD above the detected cutoff
    (``*_merged_*``, ``*_input_lsd_high``). ``visqol`` (with ``merged``): also ViSQOL of what
    ships and of the input (``*_merged_visqol``, ``*_input_visqol``; slow, seconds per
    excerpt; an excerpt ViSQOL refuses, near silence, is left out of the mean)."""

    every: NonNegativeInt = 2500
    split: str = "validation"
    seconds: PositiveFloat = 8.0
    offset_seconds: NonNegativeFloat = 8.0
    max_files: PositiveInt = 8
    seen_preset: PresetOrNone = ""
    unseen_preset: PresetOrNone = "sulun-unseen"
    chunk_seconds: NonNegativeFloat = 0.0
    at_start: bool = True
    merged: bool = False
    visqol: bool = False


class GanConfig(_Frozen):
    """The adversarial part of a GAN task (``train.task = "vocoder"``): the discriminators
    train and the generator gets ``adversarial`` x its least-squares GAN loss (+
    ``feature_match`` x the L1 feature distance) from iteration ``start_step`` on (TFGAN:
    200 000); ``scales`` waveform critics, a frequency critic on ``freq_fft`` / ``freq_hop``
    STFTs. The discriminators' optimiser is ``optim.*``'s."""

    start_step: NonNegativeInt = 0
    adversarial: NonNegativeFloat = 2.5
    feature_match: NonNegativeFloat = 0.0
    scales: PositiveInt = 3
    freq_fft: PositiveInt = 1024
    freq_hop: PositiveInt = 256


class WganConfig(_Frozen):
    """Lattner & Nistal's WGAN (``train.task = "lattner"``): per iteration ``critic_steps``
    critic steps (``-W + gradient_penalty x GP + drift x mean D(real)^2``) and one generator
    step (``-mean D(fake)`` x ``adversarial`` + eq. 3's profile loss for a model with noise,
    weight ``profile``, powers ``profile_p_freq`` / ``_rhythm``, floor ``profile_eps``); not the
    paper's (0 by default): ``reconstruction`` (L1 of square-rooted magnitudes), ``envelope``
    (dB distance of 1/6-octave band energies, floored ``envelope_floor_db`` under the original's
    mean), ``waveform`` (L1 of signed-root parts in the bins the MP3 keeps). ``optim.*`` sets
    the generator's and the critic's optimisers alike."""

    critic_steps: PositiveInt = 1
    gradient_penalty: NonNegativeFloat = 10.0
    drift: NonNegativeFloat = 1e-3
    profile: NonNegativeFloat = 1.0
    profile_p_freq: PositiveFloat = 1.3
    profile_p_rhythm: PositiveFloat = 1.6
    profile_eps: PositiveFloat = 1.0
    reconstruction: NonNegativeFloat = 0.0
    envelope: NonNegativeFloat = 0.0
    envelope_floor_db: PositiveFloat = 60.0
    waveform: NonNegativeFloat = 0.0
    adversarial: NonNegativeFloat = 1.0


class CheckpointConfig(_Frozen):
    """Checkpoints every ``every`` iterations (and at the end), keeping the ``keep_last`` most
    recent; the model with the best ``best_metric`` (``best_mode`` ``max`` or ``min``) is kept
    as ``best.safetensors``."""

    every: PositiveInt = 2500
    keep_last: PositiveInt = 3
    best_metric: Metric = "unseen_output_snr"
    best_mode: Literal["max", "min"] = "max"


class RuntimeConfig(_Frozen):
    """Where and how the run executes; none of these changes what is learnt on the CPU.

    ``device``: ``auto`` (CUDA when present, the local rank's GPU under torchrun), ``cpu``,
    ``cuda``, ``cuda:N``. ``amp``: ``auto`` = bf16 autocast on CUDA, off on the CPU.
    ``compile``: ``auto`` = ``torch.compile`` on CUDA, off on the CPU. ``threads``: torch CPU
    threads (0 = torch's default). ``deterministic``: deterministic CUDA kernels (slower).
    ``progress``: the progress bar (rank 0, on a terminal). ``tensorboard``: event files.
    """

    device: Device = "auto"
    amp: Literal["auto", "bf16", "off"] = "auto"
    compile: Literal["auto", "on", "off"] = "auto"
    threads: NonNegativeInt = 0
    deterministic: bool = False
    progress: bool = True
    tensorboard: bool = True


class Config(_Frozen):
    """A complete training recipe; see the module docstring."""

    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    validation: ValidationConfig = Field(default_factory=ValidationConfig)
    gan: GanConfig = Field(default_factory=GanConfig)
    wgan: WganConfig = Field(default_factory=WganConfig)
    checkpoint: CheckpointConfig = Field(default_factory=CheckpointConfig)
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig)
    description: str = ""

    @model_validator(mode="after")
    def _check(self) -> Config:
        rate = self.data.sample_rate
        _check_nyquist("data.preset", self.data.preset, rate)
        _check_nyquist("validation.seen_preset", self.seen_preset, rate)
        if self.validation.unseen_preset:
            _check_nyquist("validation.unseen_preset", self.validation.unseen_preset, rate)
        if self.checkpoint.best_metric.startswith("unseen_") and not self.validation.unseen_preset:
            raise ConfigError(f"checkpoint.best_metric is {self.checkpoint.best_metric!r} but "
                              "validation.unseen_preset is empty (no unseen validation)")
        best = self.checkpoint.best_metric
        if ("_merged_" in best or best.endswith("_lsd_high")) and not self.validation.merged:
            raise ConfigError(f"checkpoint.best_metric is {best!r} but validation.merged is "
                              "false (no merged validation)")
        if self.validation.visqol and not self.validation.merged:
            raise ConfigError("validation.visqol scores what ships: it needs "
                              "validation.merged=true")
        if best.endswith("_visqol") and not self.validation.visqol:
            raise ConfigError(f"checkpoint.best_metric is {best!r} but validation.visqol is "
                              "false")
        return self

    def check(self) -> None:
        """Validate every section again (construction already does; kept for callers)."""
        config_from_dict(config_to_dict(self))

    @property
    def seen_preset(self) -> str:
        """The preset of the seen-filter validation (``data.preset`` unless given)."""
        return self.validation.seen_preset or self.data.preset

    def updated(self, changes: Mapping[str, Any]) -> Config:
        """A validated copy with dotted ``{"section.key": value}`` changes applied."""
        return config_from_dict(apply_overrides(config_to_dict(self), changes.items()))


#: The tables of a recipe, in order.
SECTIONS = tuple(name for name in Config.model_fields if name != "description")


# --- checks and error messages --------------------------------------------------------------------


def _check_nyquist(key: str, name: str, sample_rate: int) -> None:
    """Every cutoff of preset ``name`` lies below the Nyquist frequency of ``sample_rate``."""
    for option in PRESETS[name].options:
        cutoff = option.fields.get("cutoff_hz")
        if isinstance(cutoff, int | float) and not cutoff < sample_rate / 2:
            raise ConfigError(f"{key} {name!r} cuts at {cutoff:g} Hz, above the Nyquist "
                              f"frequency of data.sample_rate = {sample_rate}; choose a preset "
                              "made for this rate")


def _config_error(exc: ValidationError, model: type[BaseModel]) -> ConfigError:
    """The first error of ``exc`` (validating ``model``) as today's one-line message."""
    error = exc.errors(include_url=False)[0]
    kind, value, ctx = error["type"], error["input"], error.get("ctx", {})
    if kind == "value_error" and isinstance(ctx.get("error"), ConfigError):
        return ctx["error"]  # a check across keys, raised by a model validator
    section = next((n for n in SECTIONS if Config.model_fields[n].annotation is model), None)
    names = [*([section] if section else []), *(p for p in error["loc"] if isinstance(p, str))]
    index = [p for p in error["loc"] if isinstance(p, int)]
    key = ".".join(names)
    parent: type[BaseModel] = Config  # walk down to the field and the model that holds it
    hint: Any = None
    for name in names:
        if isinstance(hint, type) and issubclass(hint, BaseModel):
            parent = hint
        field = parent.model_fields.get(name)
        hint = field.annotation if field else None
    if kind == "value_error" and isinstance(ctx.get("error"), Invalid):
        return ConfigError(f"{key} {ctx['error']}")  # a field check (:func:`_require`)
    if kind == "extra_forbidden":
        prefix = f"{'.'.join(names[:-1])}." if len(names) > 1 else ""
        return unknown_error("key" if prefix else "table", key,
                        (f"{prefix}{f}" for f in parent.model_fields))
    if kind == "model_type":
        return ConfigError(f"config [{key}] must be a table, got {value!r}")
    if kind in ("greater_than", "greater_than_equal"):
        bound = ctx["gt"] if kind == "greater_than" else ctx["ge"]
        sign = ">" if kind == "greater_than" else ">="
        value = float(value) if isinstance(bound, float) else value  # as the field holds it
        return ConfigError(f"{key} must be {sign} {bound:g}, got {value!r}")
    if index and kind != "missing":  # one element of a list field
        args = get_args(hint)
        hint = args[0] if args[-1] is Ellipsis else args[index[0]]
    return ConfigError(f"{key} must be {describe_type(hint)}, got {plain(value)!r}")


# --- dict <-> models ------------------------------------------------------------------------------


def config_from_dict(raw: Mapping[str, Any]) -> Config:
    """A validated :class:`Config` from nested tables (a parsed TOML file or the JSON of
    :func:`config_to_dict`); missing keys take their defaults.

    Raises:
        ConfigError: an unknown table or key, a value of the wrong type, or a failed check.
    """
    return Config(**raw)


def config_to_dict(config: Config) -> dict[str, Any]:
    """Every key of ``config`` as nested JSON-ready tables (tuples become lists)."""
    out: dict[str, Any] = plain(config.model_dump())
    return out


def config_diff(a: Config, b: Config) -> list[str]:
    """Dotted keys whose values differ between two configs (``model.kwargs`` as one key)."""
    da, db = config_to_dict(a), config_to_dict(b)
    keys = []
    for section, table in da.items():
        if isinstance(table, dict):
            keys += [f"{section}.{key}" for key, v in table.items() if v != db[section][key]]
        elif table != db[section]:
            keys.append(section)
    return keys


def load_config(path: PathLike | None = None, overrides: Iterable[str] = ()) -> Config:
    """The recipe at ``path`` (defaults when ``None``) with ``key=value`` overrides applied.

    >>> load_config("configs/arunet.toml", ["optim.lr=1e-4", "data.corpus=/data/music"])
    """
    raw = read_toml(path) if path is not None else {}
    return config_from_dict(apply_overrides(raw, (parse_override(o) for o in overrides)))
