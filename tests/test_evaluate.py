"""upband evaluate: protocols as data, baselines with known values, limits, the CLI end to end."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from upband import audio, metrics
from upband.cli import main
from upband.common.jsonnum import json_number
from upband.data.corpus import build_corpus
from upband.data.synthetic import synthesize
from upband.degrade import Codec, Decimate, FilterSpec, Lowpass, lowpass
from upband.errors import SpecError
from upband.evaluate import PROTOCOLS, evaluate, sbr
from upband.evaluate.baselines import BASELINES, Observation
from upband.evaluate.protocols import draw, get_protocol
from upband.evaluate.scoring import delta, format_value, mean, score

SR = 44100


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def music(tmp_path: Path) -> Path:
    """Two short synthetic songs (one stereo 44.1 kHz, one mono 48 kHz in a subfolder)."""
    root = tmp_path / "music"
    (root / "sub").mkdir(parents=True)
    audio.write(root / "a.wav", synthesize(SR, 1.2, np.random.default_rng(1)), SR)
    audio.write(root / "sub" / "b.flac", synthesize(48000, 1.0, np.random.default_rng(2), 1),
                48000)
    return root


def harmonic(seconds: float = 2.0, sr: int = SR, f0: float = 220.0) -> np.ndarray:
    """A bright stereo harmonic tone (1/k partials up to Nyquist) plus a little noise."""
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * sr)) / sr
    k = np.arange(1, int(sr / 2 / f0))
    x = (np.sin(2 * np.pi * f0 * np.outer(k, t) + rng.uniform(0, 2 * np.pi, (len(k), 1)))
         / k[:, None]).sum(axis=0)
    x = x + 0.05 * rng.standard_normal(t.shape)
    x = 0.5 * x / np.abs(x).max()
    return np.stack([x, np.roll(x, 17)]).astype(np.float32)


# --------------------------------------------------------------------------------------------
# protocols and scoring
# --------------------------------------------------------------------------------------------


def test_protocols_hold_the_papers_parameters() -> None:
    sulun = get_protocol("sulun")
    seen, unseen = (draw(c, "x", 0, 44100) for c in sulun.conditions)
    assert (sulun.sample_rate, sulun.channels) == (44100, 2)
    assert seen == Lowpass(11025.0, seen.spec) and str(seen.spec) == "cheby1:6,rp=0.05"
    assert str(unseen) == "lowpass butter:6 @ 11025 Hz"
    kul = get_protocol("kuleshov")
    assert (kul.sample_rate, kul.channels) == (16000, 1)
    assert [draw(c, "x", 0, 16000) for c in kul.conditions] == [
        Decimate(2), Decimate(4), Decimate(6)]
    lat = get_protocol("lattner-mp3")
    assert get_protocol("lattner") is lat  # the paper's short name
    assert (lat.sample_rate, lat.channels) == (44100, 1)
    assert [c.degradation for c in lat.conditions] == [Codec("mp3", bitrate_kbps=b)
                                                      for b in (16, 32, 64)]
    assert [c.cutoff_hz for c in get_protocol("tdpr").conditions] == [2500, 3000, 3500, 4000]
    vers = get_protocol("versatile")
    assert [c.cutoff_hz for c in vers.conditions[:4]] == [4000, 8000, 11000, 16000]
    assert [c.degradation.bitrate_kbps for c in vers.conditions[4:]] == [32, 64, 128]
    with pytest.raises(SpecError, match="unknown protocol 'nope'; choose one of sulun"):
        get_protocol("nope")
    assert set(PROTOCOLS) == {"sulun", "kuleshov", "tdpr", "lattner-mp3", "versatile"}


def test_tdpr_draw_is_seeded_by_file_and_condition() -> None:
    cond = get_protocol("tdpr").conditions[1]
    draws = [draw(cond, f"song{i}.wav", 0, 16000) for i in range(40)]
    assert draws == [draw(cond, f"song{i}.wav", 0, 16000) for i in range(40)]  # deterministic
    assert all(d.cutoff_hz == 3000.0 for d in draws)
    families = {d.spec.family for d in draws}
    assert len(families) >= 5  # 7 equally likely families over 40 files
    orders = {d.spec.order for d in draws if d.spec.order is not None}
    assert orders <= set(range(6, 11)) and len(orders) >= 3
    assert draws != [draw(cond, f"song{i}.wav", 1, 16000) for i in range(40)]  # --seed 1


def test_limits_are_kept_and_serialised_consistently() -> None:
    assert mean([math.inf, 12.0]) == (math.inf, 2)
    assert mean([1.0, math.nan, 3.0]) == (2.0, 2)
    assert math.isnan(mean([math.nan])[0])
    assert delta(math.inf, math.inf) == 0.0 and delta(5.0, 5.0) == 0.0
    assert delta(math.inf, 3.0) == math.inf
    assert json_number(math.inf) == "inf" and json_number(math.nan) is None
    assert format_value("snr", math.inf) == "inf" and format_value("snr", math.nan) == "n/a"
    assert format_value("snr", -0.001, signed=True) == "+0.00"
    assert format_value("lsd_ssr", 1.23456) == "1.235"


# --------------------------------------------------------------------------------------------
# baselines
# --------------------------------------------------------------------------------------------


def test_spline_baseline_reproduces_the_analytic_snr() -> None:
    """A 500 Hz sine at 16 kHz, decimated by r = 4 (knots every h = 1/4000 s, no anti-alias
    filter, so only the interpolation errs) and interpolated by the cubic spline.

    Away from the ends, the interpolating cubic spline is the cardinal spline, a linear
    shift-invariant filter with frequency response H(f) = sinc(f/f_l)^4 · 3 / (2 + cos(2π f/f_l))
    (cubic B-spline kernel times its interpolation prefilter), f_l = 4000 Hz. The sine's
    components at f0 + m·f_l (m ∈ Z) pass with gain H(f0 + m·f_l); sampling at 16 kHz folds
    the m ≡ q (mod 4) components onto each other, so the output holds four sinusoids of
    amplitude A_q = Σ_{m ≡ q} H(f0 + m·f_l) and the error power relative to the sine is
    (A_0 − 1)² + A_1² + A_2² + A_3² → SNR = 62.433 dB (A = [−6.08e−4, 1.56e−4, 3.2e−5,
    4.19e−4] times a unit amplitude). The first and last 100 samples (not-a-knot ends and the
    extrapolation past the last knot) are left out.
    """
    sr, r, f0 = 16000, 4, 500.0
    f_l = sr / r
    m = np.arange(-4000, 4001)
    gain = np.sinc((f0 + m * f_l) / f_l) ** 4 * 3 / (2 + np.cos(2 * np.pi * (f0 + m * f_l) / f_l))
    amp = np.array([gain[(m % r) == q].sum() for q in range(r)])
    amp[0] -= 1.0
    expected = -10 * np.log10(np.sum(amp**2))
    assert expected == pytest.approx(62.433, abs=1e-3)

    x = 0.5 * np.sin(2 * np.pi * f0 * np.arange(4 * sr) / sr)[None]
    obs = Observation(x.astype(np.float32), sr, Decimate(r), 0.8 * f_l / 2,
                      low_rate=x[:, ::r], r=r)
    y = BASELINES["spline"](obs)
    inner = slice(100, -100)
    assert metrics.snr(x[:, inner], y[:, inner]) == pytest.approx(expected, abs=0.01)
    # sinc interpolation of the same samples is far closer than the spline
    assert metrics.snr(x[:, inner], BASELINES["sinc"](obs)[:, inner]) > expected + 20


def test_spline_and_sinc_are_the_input_without_decimation() -> None:
    x = harmonic(0.5)
    y = lowpass(x, SR, 8000.0, "cheby1:8")
    obs = Observation(y, SR, Lowpass(8000.0, FilterSpec.parse("cheby1:8")), 8000.0)
    assert np.array_equal(BASELINES["spline"](obs), y)
    assert np.array_equal(BASELINES["sinc"](obs), y)
    assert np.array_equal(BASELINES["input"](obs), y)


@pytest.mark.parametrize(("spec", "cutoff"), [("cheby1:8", 8000.0), ("butter:6", 11025.0),
                                              ("ellip:8,rp=0.1,rs=60", 4000.0)])
def test_sbr_lowers_lsd_and_keeps_the_band_below_the_cutoff(spec: str, cutoff: float) -> None:
    x = harmonic()
    y = lowpass(x, SR, cutoff, spec)
    z = sbr(y, SR, cutoff)
    assert z.shape == y.shape and z.dtype == np.float32
    for lsd in (metrics.lsd_ssr, metrics.lsd_kuleshov):
        before, after = lsd(x, y, SR), lsd(x, z, SR)
        assert after < 0.5 * before, (lsd.__name__, before, after)
    assert metrics.lsd_ssr(x, z, SR, min_hz=cutoff) < 0.4 * metrics.lsd_ssr(x, y, SR,
                                                                             min_hz=cutoff)
    added = np.fft.rfft(z.astype(np.float64) - y, axis=-1)
    freqs = np.fft.rfftfreq(y.shape[-1], 1 / SR)
    power = np.abs(added) ** 2
    assert power[:, freqs < 0.9 * cutoff].sum() < 1e-4 * power.sum()  # the input is kept
    assert np.array_equal(sbr(y, SR, 0.97 * SR / 2), y)  # nothing to extend near Nyquist


# --------------------------------------------------------------------------------------------
# end to end
# --------------------------------------------------------------------------------------------


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def strict_json(path: Path) -> dict:
    def refuse(token: str) -> float:
        raise AssertionError(f"non-standard JSON constant {token}")

    return json.loads(path.read_text(), parse_constant=refuse)


def test_sulun_cli_end_to_end_with_oracle_corrupt_file_and_jobs(
        capsys: pytest.CaptureFixture[str], music: Path, tmp_path: Path) -> None:
    (music / "corrupt.wav").write_bytes(b"RIFF" + bytes(range(256)) * 4)
    report = tmp_path / "rep"
    args = ["evaluate", "--data", str(music), "--protocol", "sulun", "--models",
            "upband_unittest", "--baselines", "input,spline,sinc,sbr,oracle", "--no-visqol",
            "-q"]
    code, _, err = run(capsys, *args, "-o", str(report))
    assert code == 1  # a file failed, as `upband enhance` does for a batch
    bad = [line for line in err.splitlines() if "corrupt.wav" in line]
    assert len(bad) == 1 and bad[0].startswith("upband: error: ") and "cannot decode" in bad[0]
    assert "2 file(s) evaluated, 1 failed" in err

    rows = read_rows(report / "results.csv")
    systems = ["input", "spline", "sinc", "sbr", "oracle", "upband_unittest"]
    assert len(rows) == 2 * 2 * len(systems) * 3  # files x conditions x systems x metrics
    assert {r["file"] for r in rows} == {"a.wav", "sub/b.flac"}
    assert {r["system"] for r in rows} == set(systems)
    oracle = {r["metric"]: r["value"] for r in rows if r["system"] == "oracle"}
    assert oracle == {"snr": "inf", "lsd_ssr": "0.0", "lsd_ssr_high": "0.0"}
    values = [float(r["value"]) for r in rows]
    assert not any(math.isnan(v) for v in values)

    summary = strict_json(report / "summary.json")
    res = summary["results"]
    for cond in ("seen", "unseen"):
        for metric in ("snr", "lsd_ssr", "lsd_ssr_high"):
            assert res[cond]["input"][metric]["delta"] == 0.0
            assert res[cond]["input"][metric]["files"] == 2
        assert res[cond]["oracle"]["snr"] == {"mean": "inf", "delta": "inf", "files": 2}
        assert res[cond]["oracle"]["lsd_ssr"]["mean"] == 0.0
        input_lsd = res[cond]["input"]["lsd_ssr"]["mean"]
        assert res[cond]["oracle"]["lsd_ssr"]["delta"] == -input_lsd
        assert res[cond]["sbr"]["lsd_ssr"]["delta"] < -1.0  # SBR beats the empty band
        assert res[cond]["spline"]["snr"]["delta"] == 0.0  # low-pass: spline = input
    assert json.loads((report / "summary.json").read_text())["results"]["seen"]["oracle"][
        "snr"]["mean"] == "inf"
    assert summary["failed"][0]["file"] == "corrupt.wav"
    assert [f["file"] for f in summary["files"]] == ["a.wav", "sub/b.flac"]
    assert summary["files"][1]["duration_s"] == pytest.approx(1.0, abs=1e-4)

    md = (report / "report.md").read_text()
    assert "upband evaluate --data" in md and "--protocol sulun" in md
    table = [line for line in md.splitlines() if line.startswith("| input |")]
    assert len(table) == 1 and table[0].count("| +0.00 |") == 2 \
        and table[0].count("| +0.000 |") == 2
    assert any(line.startswith("| oracle |") and "| inf |" in line for line in md.splitlines())
    assert "Chebyshev1-6 (seen): SNR (dB) ↑" in md and "## Failed files" in md
    assert "| 2 | sub/b.flac | 1.00 | 1.00 |" in md
    for name in ("spectrogram_seen.png", "spectrogram_unseen.png", "snr_scatter.png"):
        data = (report / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and 10_000 < len(data) < 1_500_000

    # two worker processes give the same numbers
    code, _, _ = run(capsys, *args, "-o", str(tmp_path / "rep2"), "--jobs", "2")
    assert code == 1
    assert (tmp_path / "rep2" / "results.csv").read_bytes() == \
        (report / "results.csv").read_bytes()

    # an existing report is kept unless --force
    code, _, err = run(capsys, *args, "-o", str(report))
    assert code == 2 and "already holds a report" in err and len(err.strip().splitlines()) == 1


def test_versatile_cli_end_to_end(capsys: pytest.CaptureFixture[str], music: Path,
                                  tmp_path: Path) -> None:
    report = tmp_path / "rep"
    code, out, err = run(capsys, "evaluate", "--data", str(music), "--protocol", "versatile",
                         "--models", "upband_unittest", "--no-visqol", "--limit-seconds", "0.8",
                         "-o", str(report))
    assert code == 0, err
    assert "[2/2] sub/b.flac: 0.8 s" in err and "2 file(s) evaluated, 0 failed" in out
    rows = read_rows(report / "results.csv")
    conds = ["lp4k", "lp8k", "lp11k", "lp16k", "mp3-32k", "mp3-64k", "mp3-128k"]
    assert [c for c in dict.fromkeys(r["condition"] for r in rows)] == conds
    assert len(rows) == 2 * len(conds) * 5 * 3
    assert {r["duration_s"] for r in rows} == {"0.800000"}
    md = (report / "report.md").read_text()
    for label in ("Butterworth-6 @ 4 kHz", "Butterworth-6 @ 16 kHz", "MP3 128 kbit/s"):
        assert f"| {label} | input |" in md and f"| {label} | upband_unittest |" in md
        assert f"| {label} | sbr |" in md
    assert "no family is unseen" in md  # the honest note on the versatile filter choice
    summary = strict_json(report / "summary.json")
    for cond in conds:
        assert all(v["delta"] == 0.0 for v in summary["results"][cond]["input"].values())
        # SBR lowers the high-band LSD everywhere
        assert summary["results"][cond]["sbr"]["lsd_ssr_high"]["delta"] < 0
    assert summary["conditions"][4]["cutoff"].startswith("measured per file")
    pngs = sorted(p.name for p in report.glob("*.png"))
    assert pngs == sorted([*(f"spectrogram_{c}.png" for c in conds), "snr_scatter.png"])


def test_kuleshov_baselines_on_a_corpus_test_split(tmp_path: Path) -> None:
    music = tmp_path / "music"
    music.mkdir()
    for i in range(3):
        audio.write(music / f"s{i}.wav", synthesize(SR, 0.7, np.random.default_rng(10 + i)), SR)
    corpus = tmp_path / "corpus"
    build_corpus([str(music)], corpus, split_lists={"test": ["*s1.wav", "*s2.wav"]},
                 workers=0, progress=False)
    ev = evaluate(corpus, "kuleshov", baselines=["input", "spline", "sinc"],
                  output=tmp_path / "rep")
    assert ev.failed == [] and len(ev.results) == 2
    assert [r.item.path for r in ev.results] == ["s1.wav", "s2.wav"]
    s = ev.summary
    for cond in ("r2", "r4", "r6"):
        for metric in ("segmental_snr", "snr", "lsd_kuleshov"):
            assert s.delta(cond, "spline", metric) == 0.0  # Kuleshov's input is the spline
        assert s.value(cond, "sinc", "snr") != s.value(cond, "spline", "snr")
    assert s.value("r2", "input", "snr") > s.value("r6", "input", "snr")
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "split `test`" in md and "| r = 2 | segmental SNR (dB) ↑ |" in md


def test_bad_arguments_are_one_line_errors(capsys: pytest.CaptureFixture[str], music: Path,
                                           tmp_path: Path) -> None:
    cases = [
        (["--data", str(music), "--protocol", "nope"], "unknown protocol 'nope'"),
        (["--data", str(tmp_path / "missing"), "--protocol", "sulun"], "no such data folder"),
        (["--data", str(music), "--protocol", "sulun", "--models", "no-such-model"],
         "unknown model 'no-such-model'"),
        (["--data", str(music), "--protocol", "sulun", "--baselines", "input,magic"],
         "unknown baseline(s) magic"),
        (["--data", str(music), "--protocol", "sulun", "--split", "test"],
         "--split needs a corpus folder"),
        (["--data", str(tmp_path), "--protocol", "sulun", "--limit-seconds", "-1"],
         "--limit-seconds must be a positive number"),
    ]
    for argv, message in cases:
        code, _, err = run(capsys, "evaluate", *argv, "-o", str(tmp_path / "r"))
        assert code == 2, (argv, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("upband: error: ") and message in lines[0]
        assert "Traceback" not in err
    assert not (tmp_path / "r").exists()


def test_every_file_failing_is_an_input_error(capsys: pytest.CaptureFixture[str],
                                              tmp_path: Path) -> None:
    """The exit-status rule: a run whose every file fails exits 1 (its inputs), not 2."""
    music = tmp_path / "music"
    music.mkdir()
    (music / "corrupt.wav").write_bytes(b"RIFF" + bytes(range(256)) * 4)
    code, _, err = run(capsys, "evaluate", "--data", str(music), "--protocol", "sulun",
                       "--no-visqol", "-q", "-o", str(tmp_path / "r"))
    assert code == 1, err
    assert err.strip().splitlines()[-1].startswith("upband: error: no file could be evaluated")
    assert "Traceback" not in err and not (tmp_path / "r" / "report.md").exists()


def test_visqol_of_a_clip_too_short_is_undefined_not_a_failure() -> None:
    pytest.importorskip("visqol")
    sr = 44100
    t = np.arange(int(0.3 * sr)) / sr  # a drum hit's length: too few ViSQOL patches
    x = np.stack([np.sin(2 * np.pi * 440 * t)] * 2).astype(np.float32)
    values = score(x, x, sr, 11025.0, ("snr", "visqol"))
    assert values["snr"] == math.inf and math.isnan(values["visqol"])


def test_no_merge_scores_the_raw_network_output(capsys: pytest.CaptureFixture[str],
                                                music: Path, tmp_path: Path) -> None:
    args = ["evaluate", "--data", str(music), "--protocol", "sulun", "--models",
            "upband_unittest", "--baselines", "input", "--no-visqol", "-q"]
    assert run(capsys, *args, "-o", str(tmp_path / "merged"))[0] == 0
    code, _, err = run(capsys, *args, "--no-merge", "-o", str(tmp_path / "raw"))
    assert code == 0, err
    merged, raw = (strict_json(tmp_path / n / "summary.json") for n in ("merged", "raw"))
    assert merged["merge"] is True and raw["merge"] is False
    assert "raw model output (--no-merge)" in (tmp_path / "raw" / "report.md").read_text()
    for cond in ("seen", "unseen"):
        m = merged["results"][cond]["upband_unittest"]["snr"]["delta"]
        r = raw["results"][cond]["upband_unittest"]["snr"]["delta"]
        # the merge keeps the input's pass band, which the random network garbles
        assert r < m - 2.0, (cond, m, r)
    # without the level guard: recorded, described, and the random network's band is louder,
    # so it costs at least as much SNR as with the guard
    code, _, err = run(capsys, *args, "--no-guard", "-o", str(tmp_path / "unguarded"))
    assert code == 0, err
    unguarded = strict_json(tmp_path / "unguarded" / "summary.json")
    assert merged["guard"] is True and unguarded["guard"] is False
    assert "do-no-harm merge, no level guard" in (tmp_path / "unguarded" / "report.md").read_text()
    for cond in ("seen", "unseen"):
        g = merged["results"][cond]["upband_unittest"]["snr"]["delta"]
        u = unguarded["results"][cond]["upband_unittest"]["snr"]["delta"]
        assert u <= g + 1e-9, (cond, g, u)
