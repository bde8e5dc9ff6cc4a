"""The papers' evaluation protocols as data: conditions, rates, metrics and table layouts.

A :class:`Protocol` is a table of :class:`Condition` s, each a degradation that is either fixed
(:class:`~upband.degrade.presets.Lowpass`, ``Decimate``, ``Codec``) or a
:class:`~upband.degrade.presets.Preset` drawn once per file with a generator seeded by the file,
the condition and ``--seed`` (TD-PR's filter family and order). Nothing here runs anything: the
runner (:mod:`upband.evaluate.runner`) interprets every protocol the same way, as
:func:`upband.degrade.sample` interprets every preset.

=============  ========  ===  ===================================  ===========================
protocol       rate      ch   conditions                           table (layout)
=============  ========  ===  ===================================  ===========================
sulun          44.1 kHz  2    seen Chebyshev-I 6, unseen Butter-   Sulun & Davies Table II
                              worth 6, both at 11 025 Hz           (systems x condition/metric)
kuleshov       16 kHz    1    decimation r = 2, 4, 6 (Chebyshev-I  Kuleshov Table 2
                              8 anti-alias), cubic spline back     (r/metric x systems)
tdpr           16 kHz    1    7 families, order U{6..10}, cutoff   TD-PR Table 1
                              2.5 / 3 / 3.5 / 4 kHz                (systems x bandwidth + AVG)
lattner-mp3    44.1 kHz  1    LAME 16 / 32 / 64 kbit/s             Lattner & Nistal Table 2
                                                                   (bitrate/system x metrics)
versatile      44.1 kHz  2    Butterworth 6 at 4 / 8 / 11 / 16     ours
                              kHz; LAME 32 / 64 / 128 kbit/s       (condition/system x metrics)
=============  ========  ===  ===================================  ===========================
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from upband.degrade.filters import FAMILIES, FAMILY_PARAMS, FilterSpec
from upband.degrade.presets import (
    PRESETS,
    SULUN_CUTOFF_HZ,
    Codec,
    IntRange,
    Lowpass,
    Option,
    Params,
    Preset,
    sample,
)
from upband.degrade.resampling import ANTI_ALIAS_EDGE
from upband.errors import SpecError

#: Table layouts (see :mod:`upband.evaluate.report`).
LAYOUTS = ("systems-by-condition", "condition-rows", "systems-by-bandwidth", "condition-systems")


@dataclass(frozen=True)
class Condition:
    """One test condition: a ``name`` (table column/row label) and its degradation.

    ``degradation`` is fixed parameters or a preset drawn per file (:func:`draw`).
    ``cutoff_hz`` is the band edge that the high-band metrics and the ``sbr`` baseline use; None
    means "measured on each degraded file" (codecs, whose low-pass LAME picks itself).
    """

    name: str
    degradation: Params | Preset
    cutoff_hz: float | None = None
    label: str = ""

    def describe(self) -> str:
        d = self.degradation
        return d.description if isinstance(d, Preset) else str(d)


@dataclass(frozen=True)
class Protocol:
    """A paper's test: rate and channels of the clean reference, conditions, metrics, table.

    ``metrics`` are keys of :data:`upband.evaluate.scoring.METRICS`; ``optional_metrics`` are
    computed only when available and asked for (ViSQOL, VGG distance). ``table_metrics`` are
    the ones in the Markdown table (all metrics always go to ``results.csv``). ``paper_table``:
    the paper's own numbers (Markdown), printed beside ours in the report.
    """

    name: str
    description: str
    source: str
    sample_rate: int
    channels: int
    conditions: tuple[Condition, ...]
    metrics: tuple[str, ...]
    table_metrics: tuple[str, ...]
    layout: str
    optional_metrics: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())
    paper_table: str = ""

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ValueError(f"unknown layout {self.layout!r}")

    def condition(self, name: str) -> Condition:
        for c in self.conditions:
            if c.name == name:
                return c
        raise SpecError(f"protocol {self.name} has no condition {name!r}")


def seed_of(*parts: object) -> int:
    """A stable 64-bit seed from text (Python's ``hash`` is salted per process)."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "little")


def draw(condition: Condition, file_id: str, seed: int, sample_rate: int) -> Params:
    """The degradation of ``condition`` for one file: fixed parameters as they are, a preset
    drawn with a generator seeded by (``seed``, ``file_id``, condition name) -- the same for any
    number of jobs and any file order."""
    d = condition.degradation
    if not isinstance(d, Preset):
        return d
    rng = np.random.default_rng(seed_of(seed, file_id, condition.name))
    return sample(d, rng, sr=sample_rate)


# --------------------------------------------------------------------------------------------
# the tables of conditions
# --------------------------------------------------------------------------------------------

#: TD-PR §3.2 draws order U{6..10} of 7 families with ssr_eval's ripples (rp 0.1 dB, rs 60 dB).
_TDPR_ORDER = IntRange(6, 10)
_TDPR_RIPPLE = {"rp": 0.1, "rs": 60.0}
TDPR_CUTOFFS_HZ = (2500.0, 3000.0, 3500.0, 4000.0)


def _tdpr_preset(cutoff: float) -> Preset:
    """TD-PR's simulation at one fixed cutoff: family equally likely, order U{6..10}."""
    options = []
    for family in FAMILIES:
        takes = FAMILY_PARAMS[family]
        fields: dict[str, object] = {"family": family, "cutoff_hz": cutoff}
        if "order" in takes:
            fields["order"] = _TDPR_ORDER
        fields.update({k: v for k, v in _TDPR_RIPPLE.items() if k in takes})
        options.append(Option(1.0, "lowpass", fields))
    return Preset(f"tdpr@{cutoff:g}",
                  f"one of 7 families (equally likely), order U{{6..10}}, cutoff {cutoff:g} Hz",
                  "TD-PR §3.2", tuple(options))


#: Lattner & Nistal's Table 2 as published (20 draws, best per metric, for sto; their LSD floor
#: and MSE scale are not stated, PEAQ from peaqb-fast).
LATTNER_TABLE_2 = """\
| Condition | System | ODG ↑ | DI ↑ | LSD (dB) ↓ | MSE ↓ | SNR (dB) ↑ |
|---|---|---:|---:|---:|---:|---:|
| 16 kbit/s | mp3 | −3.08 | −1.67 | 10.98 | 0.40 | 13.69 |
| 16 kbit/s | det | −3.12 | −1.77 | 4.15 | 0.30 | 8.95 |
| 16 kbit/s | sto (best of 20) | −2.80 | −1.19 | 3.72 | 0.26 | 9.51 |
| 32 kbit/s | mp3 | −3.04 | −1.56 | 9.75 | 0.31 | 13.67 |
| 32 kbit/s | det | −2.99 | −1.48 | 3.83 | 0.32 | 7.66 |
| 32 kbit/s | sto (best of 20) | −2.74 | −1.07 | 3.75 | 0.26 | 9.57 |
| 64 kbit/s | mp3 | −2.64 | −0.86 | 4.89 | 0.07 | 17.85 |
| 64 kbit/s | det | −2.95 | −1.40 | 3.54 | 0.16 | 12.13 |
| 64 kbit/s | sto (best of 20) | −2.74 | −1.02 | 3.59 | 0.17 | 11.51 |"""

#: The fixed family of the versatile protocol's low-pass conditions (see its notes).
VERSATILE_FILTER = FilterSpec("butter", 6)
VERSATILE_CUTOFFS_HZ = (4000.0, 8000.0, 11000.0, 16000.0)
VERSATILE_MP3_KBPS = (32, 64, 128)

PROTOCOLS: dict[str, Protocol] = {p.name: p for p in (
    Protocol(
        "sulun",
        "seen Chebyshev-I order 6 (rp 0.05 dB) and unseen Butterworth order 6 low-pass at "
        "11 025 Hz, 44.1 kHz stereo, whole songs; SNR per song (both channels one vector), "
        "then the mean over songs",
        "Sulun & Davies 2021, Table II",
        44100, 2,
        (Condition("seen", PRESETS["sulun-single"], SULUN_CUTOFF_HZ, "Chebyshev1-6 (seen)"),
         Condition("unseen", PRESETS["sulun-unseen"], SULUN_CUTOFF_HZ,
                   "Butterworth-6 (unseen)")),
        ("snr", "lsd_ssr", "lsd_ssr_high"),
        ("snr", "lsd_ssr", "visqol", "vgg_distance"),
        "systems-by-condition",
        optional_metrics=("visqol", "vgg_distance"),
        notes=("Sulun & Davies report SNR and VGG distance; LSD (ssr_eval's definition) and "
               "ViSQOL are added here. VGG distance needs --vggish weights.",)),
    Protocol(
        "kuleshov",
        "decimation by r = 2, 4, 6 after a Chebyshev-I order 8 anti-alias filter, cubic "
        "spline back to 16 kHz, mono",
        "Kuleshov et al. 2017, Table 2",
        16000, 1,
        tuple(Condition(f"r{r}", PRESETS[f"kuleshov-r{r}"], ANTI_ALIAS_EDGE * 8000.0 / r,
                        f"r = {r}") for r in (2, 4, 6)),
        ("segmental_snr", "snr", "lsd_kuleshov"),
        ("segmental_snr", "lsd_kuleshov"),
        "condition-rows",
        notes=("SNR in the table is Kuleshov's segmental SNR (mean over 8192-sample patches); "
               "results.csv also has the whole-signal SNR. LSD is his released code's "
               "(natural log, RMS over time per bin, mean over bins).",
               "The network input of this protocol is the spline-upsampled signal, so the "
               "'input' and 'spline' rows are the same signal.")),
    Protocol(
        "tdpr",
        "TD-PR's simulation: one of 7 filter families (Butterworth, Chebyshev-I rp 0.1, "
        "Chebyshev-II rs 60, elliptic 0.1/60, Bessel, subsampling, STFT cut), order "
        "U{6..10}, drawn per file and bandwidth from a seeded generator, at 2.5 / 3 / 3.5 / "
        "4 kHz, 16 kHz mono",
        "TD-PR (phase repair) Table 1",
        16000, 1,
        tuple(Condition(f"{c / 1000:g}kHz", _tdpr_preset(c), c, f"{c / 1000:g} kHz")
              for c in TDPR_CUTOFFS_HZ),
        ("lsd_ssr", "lsd_ssr_high", "snr"),
        ("lsd_ssr", "visqol"),
        "systems-by-bandwidth",
        optional_metrics=("visqol",),
        notes=("TD-PR's eq. 5 (RMS over frequency per frame, mean over frames) does not state "
               "the log base or the STFT; the table uses ssr_eval's lsd_ssr (log10, n_fft "
               "2048 x sr / 44100, hop sr / 100).",
               "ViSQOL (audio mode, 48 kHz) is upband's addition: the paper judged by ear.",
               "Phase repair systems: MODEL+tdpr (the vocoder's phase), MODEL+griffin-lim, "
               "MODEL+gt-phase (the reference's phase: TD-PR's AB reference): above the "
               "detected cutoff, or in every bin with --no-merge, as the paper does.")),
    Protocol(
        "lattner-mp3",
        "LAME MP3 CBR at 16 / 32 / 64 kbit/s of 44.1 kHz mono music (LAME picks the stream "
        "rate and low-pass itself); delay removed",
        "Lattner & Nistal 2021, Table 2",
        44100, 1,
        tuple(Condition(f"{b}k", Codec("mp3", bitrate_kbps=b), None, f"{b} kbit/s")
              for b in (16, 32, 64)),
        ("lsd_db", "spectral_mse", "snr"),
        ("lsd_db", "spectral_mse", "snr", "visqol"),
        "condition-systems",
        optional_metrics=("visqol",),
        notes=("LSD in dB (eq. 5) and MSE of square-rooted power spectra (eq. 6) with STFT "
               "2048/512, unnormalised (Lattner's scale is not stated): compare the MSE with "
               "the paper's only as ratios, and its LSD not at all (it depends on the unstated "
               "floor of empty bins; ours is 1e-12).",
               "ODG and DI (PEAQ, ITU-R BS.1387) are not reported: no implementation can be "
               "installed with pip or apt (the paper used peaqb-fast, a C program outside any "
               "package index; PyPI's 'peaq' packages are unrelated), so those columns are "
               "left out, not left blank.",
               "ViSQOL (audio mode, 48 kHz) is upband's addition; the paper has PEAQ.",
               "Stochastic models: the model's row is the best of --best-of N draws per file "
               "and metric, chosen with the reference (Table 2's protocol, N = 20); its "
               "'mean-of-N' row is the mean over the same draws, what a listener gets from one "
               "draw on average."),
        paper_table=LATTNER_TABLE_2),
    Protocol(
        "versatile",
        "Butterworth order 6 (zero-phase) at 4 / 8 / 11 / 16 kHz and LAME MP3 (joint "
        "stereo) at 32 / 64 / 128 kbit/s, 44.1 kHz stereo",
        "upband's own test of the versatile model",
        44100, 2,
        (*(Condition(f"lp{c / 1000:g}k", Lowpass(c, VERSATILE_FILTER), c,
                     f"Butterworth-6 @ {c / 1000:g} kHz") for c in VERSATILE_CUTOFFS_HZ),
         *(Condition(f"mp3-{b}k", Codec("mp3", bitrate_kbps=b), None, f"MP3 {b} kbit/s")
           for b in VERSATILE_MP3_KBPS)),
        ("snr", "lsd_ssr", "lsd_ssr_high"),
        ("snr", "lsd_ssr", "lsd_ssr_high", "visqol"),
        "condition-systems",
        optional_metrics=("visqol",),
        notes=("The versatile training preset draws all seven filter families (order 4-16, "
               "cutoff 2-16 kHz), so no family is unseen by it; the low-pass conditions use "
               "one fixed family, Butterworth order 6 zero-phase (Sulun's unseen filter), "
               "which lies inside that training distribution. These rows measure "
               "in-distribution bandwidths, not filter generalization.",
               "lsd_ssr_high is lsd_ssr over the bins at or above the condition's cutoff "
               "(for MP3: the cutoff the bandwidth detector measures on each degraded file).")),
)}


#: Other names a protocol answers to: the paper's short name.
ALIASES = {"lattner": "lattner-mp3"}


def get_protocol(name: str) -> Protocol:
    """Look a protocol up by name (or :data:`ALIASES`); ``SpecError`` listing the valid names
    otherwise."""
    name = ALIASES.get(name, name)
    if name not in PROTOCOLS:
        raise SpecError(f"unknown protocol {name!r}; choose one of {', '.join(PROTOCOLS)} "
                        f"(or {', '.join(ALIASES)})")
    return PROTOCOLS[name]
