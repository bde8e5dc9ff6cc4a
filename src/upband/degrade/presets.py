"""Degradations as data: parameters, one generic sampler, and the named presets.

"Sample, then apply" (STYLE.md §7)::

    params = sample("sulun-multi", rng, sr=44100)   # str: lowpass ellip:6,rp=0.05,rs=20 @ 11025 Hz
    degraded = apply(wav, 44100, params)            # pure; wav is not modified
    record = params.to_dict()                       # plain JSON, travels with the example
    params == params_from_dict(record)              # True

A preset is data, not code: weighted :class:`Option` s, each naming a parameter type and giving
every field either a constant or a distribution (:class:`Choice`, :class:`IntRange`,
:class:`Uniform`). :func:`sample` interprets any preset the same way. When ``sr`` is given,
cutoff *ranges* are truncated to at most ``MAX_CUTOFF_FRACTION`` of the Nyquist frequency;
fixed cutoffs are kept as the paper has them (``apply`` refuses one at or above Nyquist).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from upband.degrade.codecs import CODECS, MP3_BITRATES, mp3, opus, vorbis
from upband.degrade.filters import FAMILIES, FAMILY_PARAMS, FilterSpec, lowpass
from upband.degrade.resampling import METHODS, band_limit_by_decimation, check_factor
from upband.errors import SpecError

#: Sampled cutoff ranges stay at or below this fraction of the Nyquist frequency.
MAX_CUTOFF_FRACTION = 0.9


# --------------------------------------------------------------------------------------------
# parameters
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Lowpass:
    """Low-pass filter ``spec`` at ``cutoff_hz`` (:func:`upband.degrade.filters.lowpass`)."""

    cutoff_hz: float
    spec: FilterSpec
    type: ClassVar[str] = "lowpass"

    def __post_init__(self) -> None:
        if isinstance(self.cutoff_hz, bool) \
                or not isinstance(self.cutoff_hz, (int, float, np.number)) \
                or not self.cutoff_hz > 0:
            raise SpecError(f"cutoff_hz must be a positive number of Hz, got {self.cutoff_hz!r}")
        object.__setattr__(self, "cutoff_hz", float(self.cutoff_hz))

    @classmethod
    def from_fields(cls, fields: Mapping[str, Any]) -> Lowpass:
        rest = {k: v for k, v in fields.items() if k != "cutoff_hz"}
        return cls(fields["cutoff_hz"], FilterSpec(**rest))

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "cutoff_hz": self.cutoff_hz, **dataclasses.asdict(self.spec)}

    def apply(self, x: np.ndarray, sr: int) -> np.ndarray:
        return lowpass(x, sr, self.cutoff_hz, self.spec)

    def __str__(self) -> str:
        return f"lowpass {self.spec} @ {self.cutoff_hz:g} Hz"


@dataclass(frozen=True)
class Decimate:
    """Decimate by ``r``, interpolate back by ``method`` (``band_limit_by_decimation``)."""

    r: int
    method: str = "spline"
    type: ClassVar[str] = "decimate"

    def __post_init__(self) -> None:
        object.__setattr__(self, "r", check_factor(self.r))
        if self.method not in METHODS:
            raise SpecError(f"unknown upsampling method {self.method!r}; choose one of "
                            f"{', '.join(METHODS)}")

    @classmethod
    def from_fields(cls, fields: Mapping[str, Any]) -> Decimate:
        return cls(**fields)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, **dataclasses.asdict(self)}

    def apply(self, x: np.ndarray, sr: int) -> np.ndarray:
        return band_limit_by_decimation(x, self.r, self.method)

    def __str__(self) -> str:
        return f"decimate x{self.r}, {self.method} back"


@dataclass(frozen=True)
class Codec:
    """Lossy codec round trip (:mod:`upband.degrade.codecs`).

    ``bitrate_kbps`` for ``mp3`` (one of ``MP3_BITRATES``) and ``opus``; ``quality`` (0–10) for
    ``vorbis``; ``per_channel`` encodes every channel as its own mono stream.
    """

    codec: str
    bitrate_kbps: int | None = None
    quality: float | None = None
    per_channel: bool = False
    type: ClassVar[str] = "codec"

    def __post_init__(self) -> None:
        if self.codec not in CODECS:
            raise SpecError(f"unknown codec {self.codec!r}; choose one of {', '.join(CODECS)}")
        uses_bitrate = self.codec != "vorbis"
        given, missing = ("bitrate_kbps", "quality") if uses_bitrate else ("quality",
                                                                           "bitrate_kbps")
        if getattr(self, given) is None or getattr(self, missing) is not None:
            raise SpecError(f"{self.codec} takes {given} and no {missing}, got {self!r}")
        if uses_bitrate:
            ok = self.bitrate_kbps in MP3_BITRATES if self.codec == "mp3" else (
                isinstance(self.bitrate_kbps, (int, np.integer)) and self.bitrate_kbps > 0)
            if isinstance(self.bitrate_kbps, bool) or not ok:
                allowed = "one of " + ", ".join(map(str, MP3_BITRATES)) \
                    if self.codec == "mp3" else "a positive whole number of"
                raise SpecError(f"{self.codec.upper() if self.codec == 'mp3' else 'Opus'} "
                                f"bitrate must be {allowed} kbit/s, got {self.bitrate_kbps!r}")
            object.__setattr__(self, "bitrate_kbps", int(self.bitrate_kbps))  # type: ignore[arg-type]
        else:
            object.__setattr__(self, "quality", float(self.quality))  # type: ignore[arg-type]

    @classmethod
    def from_fields(cls, fields: Mapping[str, Any]) -> Codec:
        return cls(**fields)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, **dataclasses.asdict(self)}

    def apply(self, x: np.ndarray, sr: int) -> np.ndarray:
        if self.codec == "mp3":
            return mp3(x, sr, self.bitrate_kbps or 0, per_channel=self.per_channel)
        if self.codec == "opus":
            return opus(x, sr, self.bitrate_kbps or 0, per_channel=self.per_channel)
        return vorbis(x, sr, self.quality or 0.0, per_channel=self.per_channel)

    def __str__(self) -> str:
        rate = f"q{self.quality:g}" if self.bitrate_kbps is None else f"{self.bitrate_kbps} kbit/s"
        return f"{self.codec} {rate}" + (" per channel" if self.per_channel else "")


Params = Lowpass | Decimate | Codec
PARAM_TYPES: dict[str, type[Lowpass] | type[Decimate] | type[Codec]] = {
    cls.type: cls for cls in (Lowpass, Decimate, Codec)}


def _field_names(cls: type[Lowpass] | type[Decimate] | type[Codec]) -> set[str]:
    names = {f.name for f in dataclasses.fields(cls)}
    if cls is Lowpass:
        names = names - {"spec"} | {f.name for f in dataclasses.fields(FilterSpec)}
    return names


def params_from_dict(record: Mapping[str, Any]) -> Params:
    """Rebuild parameters from ``to_dict()`` output (``{"type": ..., **fields}``)."""
    fields = dict(record)
    kind = fields.pop("type", None)
    if kind not in PARAM_TYPES:
        raise SpecError(f"unknown degradation type {kind!r}; choose one of "
                        f"{', '.join(PARAM_TYPES)}")
    cls = PARAM_TYPES[kind]
    unknown = set(fields) - _field_names(cls)
    if unknown:
        raise SpecError(f"unknown {kind} field(s) {', '.join(sorted(unknown))}; allowed: "
                        f"{', '.join(sorted(_field_names(cls)))}")
    try:
        return cls.from_fields(fields)
    except (TypeError, KeyError) as err:
        raise SpecError(f"incomplete {kind} parameters {dict(record)!r} ({err})") from None


def apply(x: np.ndarray, sr: int, params: Params | Mapping[str, Any]) -> np.ndarray:
    """Degrade ``x`` (``[T]``, ``[C, T]`` or ``[B, C, T]`` float at ``sr``) by ``params``.

    Pure: returns a new float32 array of ``x``'s shape and never modifies ``x``.
    """
    p = params if isinstance(params, (Lowpass, Decimate, Codec)) else params_from_dict(params)
    return p.apply(x, sr)


# --------------------------------------------------------------------------------------------
# distributions and presets
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Choice:
    """One of ``values``, equally likely or with relative ``weights``."""

    values: tuple[Any, ...]
    weights: tuple[float, ...] | None = None

    def draw(self, rng: np.random.Generator, hi: float | None = None) -> Any:
        p = None if self.weights is None else np.asarray(self.weights) / sum(self.weights)
        return self.values[int(rng.choice(len(self.values), p=p))]


@dataclass(frozen=True)
class IntRange:
    """An integer from ``lo`` to ``hi`` inclusive, equally likely."""

    lo: int
    hi: int

    def draw(self, rng: np.random.Generator, hi: float | None = None) -> int:
        return int(rng.integers(self.lo, self.hi + 1))


@dataclass(frozen=True)
class Uniform:
    """A float uniform in [lo, hi] (log-uniform with ``log=True``), rounded to ``decimals``.

    ``draw(rng, hi)`` lowers the upper end to ``hi`` (and ``lo`` with it if needed).
    """

    lo: float
    hi: float
    log: bool = False
    decimals: int | None = None

    def draw(self, rng: np.random.Generator, hi: float | None = None) -> float:
        top = self.hi if hi is None else min(self.hi, hi)
        lo = min(self.lo, top)
        value = np.exp(rng.uniform(np.log(lo), np.log(top))) if self.log else rng.uniform(lo, top)
        return float(value if self.decimals is None else round(value, self.decimals))


Dist = Choice | IntRange | Uniform


@dataclass(frozen=True)
class Option:
    """One weighted branch of a preset: a parameter type and its fields (constants or dists)."""

    weight: float
    type: str
    fields: Mapping[str, Any]


@dataclass(frozen=True)
class Preset:
    """A named degradation distribution: what it draws and which paper/table it reproduces."""

    name: str
    description: str
    source: str
    options: tuple[Option, ...]


def _lowpass(weight: float, family: str, *, cutoff: float | Dist, order: int | Dist | None = None,
             rp: float | Dist | None = None, rs: float | Dist | None = None) -> Option:
    """A lowpass option listing only the parameters ``family`` takes."""
    given = {"order": order, "rp": rp, "rs": rs}
    extra = {k: v for k, v in given.items() if k in FAMILY_PARAMS[family] and v is not None}
    return Option(weight, "lowpass", {"family": family, "cutoff_hz": cutoff, **extra})


SULUN_CUTOFF_HZ = 11025.0
#: Sulun & Davies Table I multi-filter training set (family, order).
SULUN_MULTI = (("cheby1", 6), ("cheby1", 8), ("cheby1", 10), ("cheby1", 12),
               ("bessel", 6), ("bessel", 12), ("ellip", 6), ("ellip", 12))
_SULUN_RIPPLE = {"rp": 0.05, "rs": 20.0}
_TDPR_RIPPLE = {"rp": 0.1, "rs": 60.0}  # ssr_eval's values, whose filters TD-PR uses
_VERSATILE_CUTOFF = Uniform(2000.0, 16000.0, log=True, decimals=0)

PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("sulun-single",
           "Chebyshev-I order 6, rp 0.05 dB, cutoff 11 025 Hz (the seen filter)",
           "Sulun & Davies 2021, Table I single-filter training / Table II seen test",
           (_lowpass(1.0, "cheby1", cutoff=SULUN_CUTOFF_HZ, order=6, rp=0.05),)),
    Preset("sulun-multi",
           "Chebyshev-I 6/8/10/12, Bessel 6/12, elliptic 6/12 (rp 0.05, rs 20 dB), equally "
           "likely, cutoff 11 025 Hz",
           "Sulun & Davies 2021, Table I multi-filter training (data augmentation)",
           tuple(_lowpass(1.0, f, cutoff=SULUN_CUTOFF_HZ, order=n, **_SULUN_RIPPLE)
                 for f, n in SULUN_MULTI)),
    Preset("sulun-unseen",
           "Butterworth order 6, cutoff 11 025 Hz (the unseen filter)",
           "Sulun & Davies 2021, Table I / Table II unseen test",
           (_lowpass(1.0, "butter", cutoff=SULUN_CUTOFF_HZ, order=6),)),
    Preset("tdpr",
           "7 families equally likely (Butterworth, Chebyshev-I rp 0.1, Chebyshev-II rs 60, "
           "elliptic 0.1/60, Bessel, subsampling, STFT cut), order U{6..10}, cutoff U(2.5, 4) kHz",
           "TD-PR (phase repair) §3.2 simulation pipeline, ssr_eval filters; Bessel normalised "
           "by magnitude (ssr_eval: phase)",
           tuple(_lowpass(1.0, f, cutoff=Uniform(2500.0, 4000.0, decimals=0), order=IntRange(6, 10),
                          **_TDPR_RIPPLE) for f in FAMILIES)),
    *(Preset(f"kuleshov-r{r}",
             f"decimate by {r} after a Chebyshev-I order 8 anti-alias filter, cubic spline back",
             f"Kuleshov et al. 2017, §4 datasets and spline baseline (r = {r}, at 16 kHz)",
             (Option(1.0, "decimate", {"r": r, "method": "spline"}),))
      for r in (2, 4, 6)),
    Preset("lattner-mp3",
           "LAME MP3 CBR at 16, 32 or 64 kbit/s, every channel a mono stream",
           "Lattner & Nistal 2021, §3.3 (LAME 3.100, mono, 16/32/64 kbit/s)",
           (Option(1.0, "codec", {"codec": "mp3", "bitrate_kbps": Choice((16, 32, 64)),
                                  "per_channel": True}),)),
    *(Preset(f"lattner-mp3-{b}",
             f"LAME MP3 CBR at {b} kbit/s, every channel a mono stream",
             f"Lattner & Nistal 2021, §3.3: one model per bitrate (here {b} kbit/s)",
             (Option(1.0, "codec", {"codec": "mp3", "bitrate_kbps": b, "per_channel": True}),))
      for b in (16, 32, 64)),
    Preset("versatile",
           "70 %: any of the 7 filter families, order 4-16, rp 0.01-1 dB, rs 20-80 dB, cutoff "
           "log-uniform 2-16 kHz; 15 % MP3, 15 % Opus, 16-128 kbit/s",
           "upband default model: union of Sulun Table I, TD-PR §3.2 and Lattner §3.3 settings",
           (*(_lowpass(0.7 / len(FAMILIES), f, cutoff=_VERSATILE_CUTOFF, order=IntRange(4, 16),
                       rp=Uniform(0.01, 1.0, log=True, decimals=3),
                       rs=Uniform(20.0, 80.0, decimals=1))
              for f in FAMILIES),
            Option(0.15, "codec", {"codec": "mp3", "bitrate_kbps": Choice(
                tuple(b for b in MP3_BITRATES if 16 <= b <= 128))}),
            Option(0.15, "codec", {"codec": "opus", "bitrate_kbps": Choice(
                (16, 24, 32, 48, 64, 96, 128))}))),
    Preset("versatile-codecs",
           "versatile's codecs alone: MP3 or Opus (equally likely) at 16-128 kbit/s",
           "upband: what the level guard's fill after a lossy codec is trained on",
           (Option(0.5, "codec", {"codec": "mp3", "bitrate_kbps": Choice(
                tuple(b for b in MP3_BITRATES if 16 <= b <= 128))}),
            Option(0.5, "codec", {"codec": "opus", "bitrate_kbps": Choice(
                (16, 24, 32, 48, 64, 96, 128))}))),
)}


def get_preset(name: str | Preset) -> Preset:
    """Look a preset up by name; ``SpecError`` listing the valid names otherwise."""
    if isinstance(name, Preset):
        return name
    if name not in PRESETS:
        raise SpecError(f"unknown degradation preset {name!r}; choose one of "
                        f"{', '.join(PRESETS)}")
    return PRESETS[name]


def sample(preset: str | Preset, rng: np.random.Generator, sr: int | None = None) -> Params:
    """Draw one set of degradation parameters from ``preset`` with ``rng``.

    Deterministic for a given generator state. With ``sr``, sampled cutoff ranges are capped at
    ``MAX_CUTOFF_FRACTION`` × Nyquist.
    """
    p = get_preset(preset)
    weights = np.array([o.weight for o in p.options], dtype=np.float64)
    option = p.options[int(rng.choice(len(weights), p=weights / weights.sum()))]
    limit = None if sr is None else MAX_CUTOFF_FRACTION * sr / 2
    fields = {k: v.draw(rng, limit if k == "cutoff_hz" else None)
              if isinstance(v, (Choice, IntRange, Uniform)) else v
              for k, v in option.fields.items()}
    return params_from_dict({"type": option.type, **fields})


def describe_presets() -> str:
    """One line per preset: name, what it draws and its source, for ``upband presets``."""
    width = max(map(len, PRESETS))
    return "\n".join(f"{p.name:<{width}}  {p.description}  [{p.source}]"
                     for p in PRESETS.values())
