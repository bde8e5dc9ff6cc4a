"""The sampler and the preset table: determinism, the papers' parameter sets, purity, errors."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from upband.degrade import presets
from upband.degrade.filters import FAMILIES, FilterSpec
from upband.degrade.presets import (
    PRESETS,
    Codec,
    Decimate,
    Lowpass,
    Params,
    apply,
    describe_presets,
    params_from_dict,
    sample,
)
from upband.errors import SpecError


def draws(name: str, n: int = 700, seed: int = 0, sr: int | None = 44100) -> list[Params]:
    rng = np.random.default_rng(seed)
    return [sample(name, rng, sr) for _ in range(n)]


def lowpasses(params: list[Params]) -> list[Lowpass]:
    out = [p for p in params if isinstance(p, Lowpass)]
    assert len(out) == len(params)
    return out


# --------------------------------------------------------------------------------------------
# sampler
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(PRESETS))
def test_sampler_is_deterministic_per_seed(name: str) -> None:
    assert draws(name, 50, seed=3) == draws(name, 50, seed=3)
    fixed = name in ("sulun-single", "sulun-unseen") or name.startswith("kuleshov") or \
        name.startswith("lattner-mp3-")  # one degradation: every seed draws it
    if not fixed:
        assert draws(name, 50, seed=3) != draws(name, 50, seed=4)


@pytest.mark.parametrize("name", list(PRESETS))
def test_params_survive_json(name: str) -> None:
    for p in draws(name, 40):
        record = json.loads(json.dumps(p.to_dict()))
        assert params_from_dict(record) == p
        assert record["type"] == p.type


def test_sulun_single_and_unseen_are_fixed_filters() -> None:
    """Sulun & Davies Table I/II: seen Chebyshev-I 6 (rp 0.05), unseen Butterworth 6, 11 025 Hz."""
    assert set(draws("sulun-single", 20)) == {Lowpass(11025.0, FilterSpec("cheby1", 6, rp=0.05))}
    assert set(draws("sulun-unseen", 20)) == {Lowpass(11025.0, FilterSpec("butter", 6))}


def test_sulun_multi_is_table_one() -> None:
    ps = lowpasses(draws("sulun-multi", 800))
    counts = Counter((p.spec.family, p.spec.order) for p in ps)
    assert set(counts) == {("cheby1", 6), ("cheby1", 8), ("cheby1", 10), ("cheby1", 12),
                           ("bessel", 6), ("bessel", 12), ("ellip", 6), ("ellip", 12)}
    assert all(60 <= c <= 140 for c in counts.values())  # equally likely: 100 expected
    assert {p.cutoff_hz for p in ps} == {11025.0}
    assert {(p.spec.rp, p.spec.rs) for p in ps if p.spec.family == "ellip"} == {(0.05, 20.0)}
    assert {p.spec.rp for p in ps if p.spec.family == "cheby1"} == {0.05}
    assert all(p.spec.zero_phase for p in ps)


def test_tdpr_families_orders_and_cutoffs() -> None:
    """TD-PR §3.2: 7 families, order U{6..10}, cutoff U(2.5, 4) kHz."""
    ps = lowpasses(draws("tdpr", 1400))
    assert {p.spec.family for p in ps} == set(FAMILIES)
    iir = [p for p in ps if p.spec.order is not None]
    assert {p.spec.order for p in iir} == set(range(6, 11))
    assert {p.spec.family for p in ps if p.spec.order is None} == {"subsample", "stft"}
    cutoffs = np.array([p.cutoff_hz for p in ps])
    assert cutoffs.min() >= 2500 and cutoffs.max() <= 4000
    assert cutoffs.min() < 2550 and cutoffs.max() > 3950
    assert np.mean(cutoffs) == pytest.approx(3250, abs=40)  # uniform, not log-uniform
    assert {(p.spec.rp, p.spec.rs) for p in ps if p.spec.family == "ellip"} == {(0.1, 60.0)}
    assert {p.spec.rs for p in ps if p.spec.family == "cheby2"} == {60.0}


@pytest.mark.parametrize("r", [2, 4, 6])
def test_kuleshov_presets(r: int) -> None:
    assert set(draws(f"kuleshov-r{r}", 10)) == {Decimate(r, "spline")}


def test_lattner_mp3_bitrates() -> None:
    ps = draws("lattner-mp3", 300)
    assert {(p.codec, p.per_channel) for p in ps if isinstance(p, Codec)} == {("mp3", True)}
    assert Counter(p.bitrate_kbps for p in ps if isinstance(p, Codec)).keys() == {16, 32, 64}
    for b in (16, 32, 64):  # the paper's one model per bitrate
        assert set(draws(f"lattner-mp3-{b}", 10)) == {Codec("mp3", bitrate_kbps=b,
                                                            per_channel=True)}


def test_versatile_covers_families_codecs_and_ranges() -> None:
    ps = draws("versatile", 2000)
    kinds = Counter(p.codec if isinstance(p, Codec) else p.type for p in ps)
    assert kinds["lowpass"] == pytest.approx(1400, abs=100)
    assert kinds["mp3"] == pytest.approx(300, abs=60)
    assert kinds["opus"] == pytest.approx(300, abs=60)
    lp = [p for p in ps if isinstance(p, Lowpass)]
    assert {p.spec.family for p in lp} == set(FAMILIES)
    assert {p.spec.order for p in lp} - {None} == set(range(4, 17))
    cutoffs = np.array([p.cutoff_hz for p in lp])
    assert cutoffs.min() >= 2000 and cutoffs.max() <= 16000
    assert np.median(cutoffs) == pytest.approx(np.sqrt(2000 * 16000), rel=0.1)  # log-uniform
    rps = [p.spec.rp for p in lp if p.spec.rp is not None]
    rss = [p.spec.rs for p in lp if p.spec.rs is not None]
    assert 0.01 <= min(rps) < 0.015 and 0.9 < max(rps) <= 1.0
    assert 20 <= min(rss) < 22 and 78 < max(rss) <= 80
    rates = {p.bitrate_kbps or 0 for p in ps if isinstance(p, Codec)}
    assert min(rates) == 16 and max(rates) == 128


def test_cutoff_ranges_stay_below_nyquist_at_low_rates() -> None:
    cutoffs = [p.cutoff_hz for p in lowpasses(
        [p for p in draws("versatile", 600, sr=16000) if isinstance(p, Lowpass)])]
    assert max(cutoffs) <= 0.9 * 8000 and min(cutoffs) >= 2000
    # fixed cutoffs are the paper's: at 22.05 kHz 11 025 Hz is the Nyquist rate and is refused
    params = sample("sulun-single", np.random.default_rng(0), 22050)
    with pytest.raises(SpecError, match=r"cutoff must be a frequency in Hz between 0 and"):
        apply(np.zeros(1000, np.float32), 22050, params)


# --------------------------------------------------------------------------------------------
# apply
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(PRESETS))
@pytest.mark.parametrize("shape", [(4411,), (2, 4409), (2, 1, 3001)])
def test_apply_keeps_shape_and_input(name: str, shape: tuple[int, ...]) -> None:
    x = (np.random.default_rng(1).standard_normal(shape) * 0.1).astype(np.float32)
    before = x.copy()
    params = sample(name, np.random.default_rng(7), 44100)
    y = apply(x, 44100, params)
    assert y.shape == x.shape and y.dtype == np.float32
    np.testing.assert_array_equal(x, before)
    assert not np.allclose(x, y, atol=1e-3)  # it did degrade


def test_apply_takes_a_record() -> None:
    x = (np.random.default_rng(2).standard_normal((2, 2000)) * 0.1).astype(np.float32)
    params = Lowpass(5000.0, FilterSpec("ellip", 8))
    np.testing.assert_array_equal(apply(x, 44100, params.to_dict()), apply(x, 44100, params))
    assert params.to_dict() == {"type": "lowpass", "cutoff_hz": 5000.0, "family": "ellip",
                                "order": 8, "rp": 0.05, "rs": 60.0, "zero_phase": True}
    assert str(params) == "lowpass ellip:8,rp=0.05,rs=60 @ 5000 Hz"


# --------------------------------------------------------------------------------------------
# the table and errors
# --------------------------------------------------------------------------------------------


def test_presets_are_data() -> None:
    for name, preset in PRESETS.items():
        assert preset.name == name and preset.description and preset.source
        assert all(isinstance(o, presets.Option) and o.type in presets.PARAM_TYPES
                   and o.weight > 0 for o in preset.options)
    listing = describe_presets()
    assert all(name in listing for name in PRESETS)
    assert "Table I" in listing and "Lattner" in listing and "Kuleshov" in listing


def test_unknown_preset_lists_valid_names() -> None:
    with pytest.raises(SpecError, match=r"unknown degradation preset 'sulun'; choose one of "
                                        r"sulun-single, sulun-multi, .*versatile"):
        sample("sulun", np.random.default_rng(0))


@pytest.mark.parametrize(("record", "message"), [
    ({"type": "reverb"}, r"unknown degradation type 'reverb'; choose one of lowpass, decimate"),
    ({"cutoff_hz": 4000}, r"unknown degradation type None"),
    ({"type": "lowpass", "family": "butter", "order": 4}, r"incomplete lowpass parameters"),
    ({"type": "lowpass", "cutoff_hz": 4000, "family": "butter", "order": 4, "q": 1},
     r"unknown lowpass field\(s\) q; allowed: cutoff_hz, family, order"),
    ({"type": "lowpass", "cutoff_hz": -1, "family": "butter", "order": 4},
     r"cutoff_hz must be a positive number"),
    ({"type": "decimate", "r": 1}, r"decimation factor must be an integer from 2"),
    ({"type": "decimate", "r": 2, "method": "linear"}, r"unknown upsampling method 'linear'"),
    ({"type": "codec", "codec": "aac", "bitrate_kbps": 128}, r"unknown codec 'aac'; choose one"),
    ({"type": "codec", "codec": "mp3", "bitrate_kbps": 100}, r"MP3 bitrate must be one of 8, 16"),
    ({"type": "codec", "codec": "mp3"}, r"mp3 takes bitrate_kbps and no quality"),
    ({"type": "codec", "codec": "vorbis", "bitrate_kbps": 96}, r"vorbis takes quality and no"),
    ({"type": "codec", "codec": "opus", "bitrate_kbps": -3}, r"Opus bitrate must be a positive "
                                                             r"whole number of kbit/s"),
])
def test_bad_records_raise_spec_error(record: dict[str, object], message: str) -> None:
    with pytest.raises(SpecError, match=message):
        params_from_dict(record)
