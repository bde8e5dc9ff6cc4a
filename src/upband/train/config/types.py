"""Field types of the recipe sections: strict pydantic types with the project's checks, and
the validation metrics a run may keep its best model by."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field

from upband.degrade.presets import PRESETS
from upband.train.config.recipe import plain

#: Metrics computed at every validation (``<filter>_<signal>_<metric>``); ``seen_loss`` is the
#: training loss on the seen-filter items. Any of them can be ``checkpoint.best_metric``.
VALIDATION_METRICS = (
    "seen_input_snr", "seen_output_snr", "seen_input_lsd", "seen_output_lsd",
    "unseen_input_snr", "unseen_output_snr", "unseen_input_lsd", "unseen_output_lsd",
    "seen_loss",
    # with validation.merged: what ships (detection + do-no-harm merge), and the band above
    # the detected cutoff
    "seen_merged_snr", "seen_merged_lsd", "seen_merged_lsd_high", "seen_input_lsd_high",
    "unseen_merged_snr", "unseen_merged_lsd", "unseen_merged_lsd_high", "unseen_input_lsd_high",
    # with validation.visqol as well: ViSQOL of what ships and of the input
    "seen_merged_visqol", "seen_input_visqol", "unseen_merged_visqol", "unseen_input_visqol",
    # a vocoder's copy synthesis of the clean validation excerpts (train.task = "vocoder")
    "copy_mrstft", "copy_lsd", "copy_mel_l1", "copy_snr",
    # Lattner & Nistal's MP3 restorer (train.task = "lattner"): its metrics of the MP3 and of
    # the restoration, and the critic's Wasserstein estimate on the validation excerpts
    "val_input_spectral_mse", "val_output_spectral_mse", "val_input_lsd_db",
    "val_output_lsd_db", "val_input_snr", "val_output_snr", "val_wasserstein",
)


def _whole(value: Any) -> Any:
    """An integral float is an integer (``train.max_steps=1e3``); ``1.5`` stays an error."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _tuple(value: Any) -> Any:
    """TOML and JSON have lists where the fields hold tuples."""
    return tuple(value) if isinstance(value, list) else value


class Invalid(ValueError):
    """A field check failed; the message follows the field's dotted key."""


def _require(test: Callable[[Any], bool], message: str) -> AfterValidator:
    """A field check: unless ``test(value)``, the error ``<key> <message>`` with the value
    (lists as lists) formatted into ``message``."""
    def check(value: Any) -> Any:
        if not test(value):
            raise Invalid(message.format(plain(value)))
        return value
    return AfterValidator(check)


# Field types: pydantic checks the type strictly, then the constraints.
Int = Annotated[int, BeforeValidator(_whole)]
PositiveInt = Annotated[int, BeforeValidator(_whole), Field(gt=0)]
NonNegativeInt = Annotated[int, BeforeValidator(_whole), Field(ge=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
NonNegativeFloat = Annotated[float, Field(ge=0)]
Pair = Annotated[tuple[float, float], BeforeValidator(_tuple)]
Ints = Annotated[tuple[Int, ...], BeforeValidator(_tuple)]
Fraction = Annotated[float, _require(lambda v: 0.0 <= v < 1.0, "must lie in [0, 1), got {}")]
OpenFraction = Annotated[float, _require(lambda v: 0.0 < v < 1.0, "must lie in (0, 1), got {}")]
Betas = Annotated[Pair, _require(lambda v: all(0.0 <= b < 1.0 for b in v),
                                 "must lie in [0, 1), got {}")]
GainRange = Annotated[Pair, _require(lambda v: v[0] <= v[1], "must be [low, high], got {}")]
Workers = Annotated[Int, _require(lambda v: v >= -1, "must be >= 0, or -1 for automatic, got {}")]
Device = Annotated[str, _require(lambda v: v in ("auto", "cpu", "cuda") or v.startswith("cuda:"),
                                 "must be auto, cpu, cuda or cuda:N, got {!r}")]
Metric = Annotated[str, _require(lambda v: v in VALIDATION_METRICS, "{!r} is not a validation "
                                 f"metric; valid: {', '.join(VALIDATION_METRICS)}")]
_NOT_PRESET = f"{{!r}} is not a degradation preset; valid: {', '.join(PRESETS)}"
Preset = Annotated[str, _require(lambda v: v in PRESETS, _NOT_PRESET)]
PresetOrNone = Annotated[str, _require(lambda v: not v or v in PRESETS, _NOT_PRESET)]
