"""upband evaluate --listening-test: the test file and the stimuli it renders (reference,
BS.1534-3 anchors, degraded input, baselines, models), their loudness and cutoffs, and the
report's metrics carried along."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from upband import audio
from upband.cli import main
from upband.data.synthetic import synthesize
from upband.degrade import apply as degrade_apply
from upband.evaluate.protocols import draw, get_protocol
from upband.listen.loudness import integrated_loudness
from upband.listen.stimuli import FADE_S
from upband.listen.testfile import load_test

SR = 44100


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ev")
    music = root / "music"
    (music / "sub").mkdir(parents=True)
    audio.write(music / "a.wav", synthesize(SR, 1.6, np.random.default_rng(1)), SR)
    audio.write(music / "sub" / "b.flac", synthesize(48000, 1.2, np.random.default_rng(2), 1),
                48000)
    out = root / "rep"
    code = main(["evaluate", "--data", str(music), "--protocol", "sulun", "--models",
                 "upband_unittest", "--baselines", "input,spline,sbr,oracle", "--no-visqol",
                 "-q", "-o", str(out), "--listening-test", "mushra,ab,mos,abx",
                 "--listening-seconds", "1.0"])
    assert code == 0
    return out


def test_the_test_file_holds_every_design_and_version(report: Path) -> None:
    test = load_test(report / "listening" / "test.json")
    assert [it.id for it in test.items] == ["001-seen", "001-unseen", "002-seen", "002-unseen"]
    assert [it.condition for it in test.items[:2]] == ["Chebyshev1-6 (seen)",
                                                       "Butterworth-6 (unseen)"]
    names = ["reference", "anchor-3.5k", "anchor-7k", "input", "sbr", "upband_unittest"]
    assert all(it.names() == names for it in test.items)  # spline = input, oracle = reference
    assert any("spline is identical to input" in n for n in test.notes)
    assert any("oracle is identical to reference" in n for n in test.notes)
    mushra, ab, mos, abx = test.tests
    assert (mushra.design, mushra.reference, mushra.mid_anchor) == ("mushra", "reference",
                                                                     "anchor-7k")
    assert mushra.versions == tuple(names) and mushra.loudness_match
    assert ab.pairs == (("upband_unittest", "input"),) and abx.repeats == 2
    assert mos.versions == ("reference", "input", "sbr", "upband_unittest")
    doc = json.loads((report / "listening" / "test.json").read_text())
    assert doc["source"]["protocol"] == "sulun" and doc["source"]["seed"] == 0


def test_stimuli_are_what_the_evaluation_scored(report: Path) -> None:
    test = load_test(report / "listening" / "test.json")
    item = test.item("001-seen")
    x, sr = audio.read(item.version("reference").path)
    assert sr == SR and x.shape == (2, SR)  # the loudest 1.0 s, stereo at the protocol's rate
    clean, _ = audio.read(report.parent / "music" / "a.wav")
    entry = json.loads((report / "listening" / "test.json").read_text())["items"][0]
    start = round(entry["start_s"] * SR)
    fade = int(FADE_S * SR)
    body = slice(fade, SR - fade)
    # every version of an item that would clip is lowered by one gain (noted)
    gain = 10 ** (entry["gain_db"] / 20)
    peak = max(np.abs(audio.read(v.path)[0]).max() for v in item.versions)
    assert peak <= 0.99 + 1e-6 and (gain == 1.0 or peak > 0.98)
    assert (gain < 1) == any(n.startswith("001-seen: every version lowered") for n in test.notes)
    clean = clean * gain
    assert np.abs(x[:, body] - clean[:, start:start + SR][:, body]).max() < 1e-5  # 24-bit
    params = draw(get_protocol("sulun").condition("seen"), "a.wav", 0, SR)
    degraded = degrade_apply(clean, SR, params)[:, start:start + SR]
    y, _ = audio.read(item.version("input").path)
    assert np.abs(y[:, body] - degraded[:, body]).max() < 1e-5
    assert y[:, 0].max() < 1e-3 and np.abs(y[:, fade]).max() > 0  # faded in
    # the anchors are the reference low-passed at 3.5 and 7 kHz
    assert item.version("anchor-3.5k").cutoff_hz == pytest.approx(3500, rel=0.1)
    assert item.version("anchor-7k").cutoff_hz == pytest.approx(7000, rel=0.1)
    a35, _ = audio.read(item.version("anchor-3.5k").path)
    spec = np.abs(np.fft.rfft(a35.mean(axis=0))) ** 2
    f = np.fft.rfftfreq(a35.shape[-1], 1 / SR)
    assert spec[f > 5000].sum() < 1e-6 * spec[f < 3000].sum()
    for v in item.versions:
        a, _ = audio.read(v.path)
        assert v.loudness_lufs == pytest.approx(integrated_loudness(a, SR), abs=0.01)


def test_metrics_come_from_the_report(report: Path) -> None:
    test = load_test(report / "listening" / "test.json")
    with open(report / "results.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["file"] == "sub/b.flac"
                and r["condition"] == "unseen" and r["system"] == "upband_unittest"]
    want = {r["metric"]: float(r["value"]) for r in rows}
    got = dict(test.item("002-unseen").version("upband_unittest").metrics)
    assert got == pytest.approx(want) and set(want) == {"snr", "lsd_ssr", "lsd_ssr_high"}
    assert test.item("002-unseen").version("reference").metrics == {}


def test_a_bad_design_fails_before_the_evaluation(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["evaluate", "--data", str(tmp_path), "--protocol", "sulun",
                 "--listening-test", "mushra,pairs", "-o", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and "--listening-test takes designs from" in err
    assert not (tmp_path / "r").exists()
