"""upband listen --analyse: means, intervals, paired tests and binomial tests of a synthetic
results database with known ratings, against scipy; BS.1534-3 post-screening; the CSV files,
figures and the command line; BS.1770-4 loudness."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats as sps

from test_listen_support import SR, make_test, tone
from upband.cli import main
from upband.listen import stats
from upband.listen.analysis import analyse, analyse_results
from upband.listen.designs import rows_of
from upband.listen.loudness import integrated_loudness, k_filter
from upband.listen.store import Store
from upband.listen.testfile import load_test

#: participant -> item -> version -> MUSHRA score; p4 rates the hidden reference below 90 in
#: both items (100 % > 15 %): BS.1534-3 excludes them.
MUSHRA = {
    "p1": {"item0": [100, 20, 45, 60, 80], "item1": [95, 10, 40, 55, 85]},
    "p2": {"item0": [98, 25, 50, 52, 70], "item1": [100, 15, 35, 66, 90]},
    "p3": {"item0": [92, 30, 55, 61, 75], "item1": [97, 12, 48, 49, 77]},
    "p4": {"item0": [60, 90, 95, 99, 20], "item1": [70, 95, 99, 90, 10]},
}
VERSIONS = ["reference", "anchor-3.5k", "anchor-7k", "input", "model"]
MOS = {"p1": {"item0": [5, 2, 4], "item1": [4, 1, 3]},
       "p2": {"item0": [5, 3, 3], "item1": [5, 2, 4]}}
MOS_VERSIONS = ["reference", "input", "model"]
TESTS: list[dict[str, Any]] = [
    {"name": "mushra", "design": "mushra", "mid_anchor": "anchor-7k"},
    {"name": "mos", "design": "mos", "versions": MOS_VERSIONS},
    {"name": "ab", "design": "ab", "pairs": [["model", "input"]], "repeats": 2},
    {"name": "abx", "design": "abx", "pairs": [["model", "input"]], "repeats": 3},
]


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every rating of MUSHRA / MOS above; AB: p1 prefers the model always, p2 once in
    four; ABX: p1 right every time, p2 wrong every time."""
    folder = tmp_path_factory.mktemp("db")
    test = load_test(make_test(folder / "t", tests=TESTS, seconds=0.3))
    store = Store(folder / "results.sqlite", test)
    for who in ("p1", "p2", "p3", "p4"):
        store.start("mushra", who)
        for p in store.planned("mushra", who):
            ratings = [MUSHRA[who][p.trial.item][VERSIONS.index(v)] for v in p.order]
            store.save("mushra", who, p, rows_of(test.test("mushra"), p, {"ratings": ratings}))
    for who in ("p1", "p2"):
        for name in ("mos", "ab", "abx"):
            store.start(name, who)
        for p in store.planned("mos", who):
            value = MOS[who][p.trial.item][MOS_VERSIONS.index(p.order[0])]
            store.save("mos", who, p, rows_of(test.test("mos"), p, {"rating": value}))
        for k, p in enumerate(store.planned("ab", who)):
            want = "model" if who == "p1" or k == 0 else "input"
            store.save("ab", who, p, rows_of(test.test("ab"), p,
                                             {"choice": p.order.index(want)}))
        for p in store.planned("abx", who):
            right = p.order.index(p.order[2])
            answer = right if who == "p1" else 1 - right
            store.save("abx", who, p, rows_of(test.test("abx"), p, {"choice": answer}))
    return folder / "results.sqlite"


def _kept(version: str) -> list[float]:
    return [MUSHRA[w][i][VERSIONS.index(version)] for w in ("p1", "p2", "p3")
            for i in ("item0", "item1")]


def test_mushra_means_intervals_and_paired_tests_match_scipy(database: Path) -> None:
    res = {r.name: r for r in analyse_results(database)}["mushra"]
    assert list(res.excluded) == ["p4"] and "hidden reference < 90 in 100 %" in res.excluded["p4"]
    rows = {s["version"]: s for s in res.summary if s["condition"] == "all"}
    for v in VERSIONS:
        x = np.array(_kept(v), float)
        low, high = sps.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=sps.sem(x))
        assert rows[v]["n"] == 6
        assert rows[v]["mean"] == pytest.approx(x.mean(), abs=1e-12)
        assert (rows[v]["ci_low"], rows[v]["ci_high"]) == pytest.approx((low, high), abs=1e-9)
        assert rows[v]["sd"] == pytest.approx(x.std(ddof=1), abs=1e-12)
    assert rows["model"]["mean"] == pytest.approx((80 + 85 + 70 + 90 + 75 + 77) / 6)
    # per condition: item0 is "lp", item1 "mp3"
    lp = {s["version"]: s for s in res.summary if s["condition"] == "lp"}
    assert lp["input"]["mean"] == pytest.approx((60 + 52 + 61) / 3)
    pairs = {(t["a"], t["b"]): t for t in res.tests}
    assert len(pairs) == 10
    a, b = np.array(_kept("input"), float), np.array(_kept("model"), float)
    t, w = sps.ttest_rel(a, b), sps.wilcoxon(a, b)
    got = pairs[("input", "model")]
    assert got["n"] == 6 and got["mean_diff"] == pytest.approx((a - b).mean())
    assert (got["t"], got["p_t"]) == pytest.approx((t.statistic, t.pvalue), rel=1e-12)
    assert (got["wilcoxon_w"], got["p_w"]) == pytest.approx((w.statistic, w.pvalue), rel=1e-12)
    holm = stats.holm([pairs[k]["p_t"] for k in pairs])
    assert [pairs[k]["p_t_holm"] for k in pairs] == pytest.approx(holm)
    # without screening, p4 counts
    all_in = {r.name: r for r in analyse_results(database, screening=False)}["mushra"]
    assert all_in.excluded == {}
    ref = next(s for s in all_in.summary if s["condition"] == "all"
               and s["version"] == "reference")
    assert ref["n"] == 8 and ref["mean"] == pytest.approx((sum(_kept("reference")) + 130) / 8)


def test_mos_ab_and_abx(database: Path) -> None:
    res = {r.name: r for r in analyse_results(database)}
    mos = {s["version"]: s for s in res["mos"].summary if s["condition"] == "all"}
    x = [5, 4, 5, 5]
    assert mos["reference"]["mean"] == pytest.approx(4.75)
    assert mos["reference"]["ci_high"] == pytest.approx(
        sps.t.interval(0.95, 3, loc=np.mean(x), scale=sps.sem(x))[1])
    mt = next(t for t in res["mos"].tests if (t["a"], t["b"]) == ("input", "model"))
    ref = sps.ttest_rel([2, 1, 3, 2], [4, 3, 3, 4])
    assert (mt["t"], mt["p_t"]) == pytest.approx((ref.statistic, ref.pvalue))
    ab = res["ab"].tests[0]
    assert (ab["a"], ab["b"], ab["k"], ab["n"]) == ("model", "input", 5, 8)  # 4 + 1 of 8
    assert ab["p_binomial"] == pytest.approx(sps.binomtest(5, 8).pvalue)
    abx = res["abx"].tests[0]
    assert (abx["k"], abx["n"]) == (6, 12)  # 2 items x 3 repeats: p1 right 6 times, p2 never
    assert abx["p_binomial"] == pytest.approx(sps.binomtest(6, 12, alternative="greater")
                                              .pvalue)
    ci = sps.binomtest(6, 12).proportion_ci(0.95)
    assert (abx["share_low"], abx["share_high"]) == pytest.approx((ci.low, ci.high))


def test_analyse_writes_csv_and_figures_and_refuses_to_overwrite(
        database: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "analysis"
    code = main(["listen", "--analyse", str(database), "-o", str(out)])
    text, err = capsys.readouterr()
    assert code == 0, err
    assert "excluded by BS.1534-3 post-screening: p4" in text
    assert "test abx (ABX)" in text and "test ab (AB)" in text
    with open(out / "ratings.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    # MUSHRA 4 x 2 trials x 5 stimuli; MOS 2 x 6 trials; AB 2 x 4 trials x 2; ABX 2 x 6 trials
    assert len(rows) == 4 * 2 * 5 + 2 * 6 + 2 * 4 * 2 + 2 * 6
    assert {r["participant"] for r in rows if r["excluded"] == "1"} == {"p4"}
    assert all(r["time"] and r["trial"] and r["position"] for r in rows)
    with open(out / "summary.csv", newline="") as f:
        summary = list(csv.DictReader(f))
    model = next(r for r in summary if r["test"] == "mushra" and r["condition"] == "all"
                 and r["version"] == "model")
    assert float(model["mean"]) == pytest.approx(np.mean(_kept("model")))
    for name in ("mushra_means.png", "mushra_boxplot.png", "mos_boxplot.png", "ab_means.png",
                 "abx_means.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code = main(["listen", "--analyse", str(database), "-o", str(out)])
    _, err = capsys.readouterr()
    assert code == 2 and "already exists" in err and len(err.strip().splitlines()) == 1
    assert analyse(database, out, force=True, plots=False).written


def test_bad_databases_are_one_line_errors(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"not a database at all" * 100)
    for db, words in ((junk, "not an upband results database"),
                      (tmp_path / "none.sqlite", "no such results database")):
        code = main(["listen", "--analyse", str(db)])
        err = capsys.readouterr().err
        assert code == 2 and words in err and len(err.strip().splitlines()) == 1


def test_statistics_helpers() -> None:
    ci = stats.mean_ci([1.0, 2.0, 3.0, 4.0])
    assert (ci.low, ci.high) == pytest.approx(sps.t.interval(0.95, 3, loc=2.5,
                                                             scale=sps.sem([1, 2, 3, 4])))
    assert math.isnan(stats.mean_ci([3.0]).low) and stats.mean_ci([]).n == 0
    same = stats.paired([1, 2, 3], [1, 2, 3])
    assert math.isnan(same.t) and math.isnan(same.w) and same.mean_diff == 0
    assert stats.holm([0.01, 0.04, math.nan, 0.03]) == pytest.approx(
        [0.03, 0.06, math.nan, 0.06], nan_ok=True)
    screen = stats.post_screen({"a": [100, 95, 85, 100, 100, 100, 100], "b": [100] * 7},
                               {"a": [50] * 7, "b": [95, 50, 50, 50, 50, 50, 50]})
    assert [s.excluded for s in screen] == [False, False]  # 1 of 7 = 14 % is allowed
    screen = stats.post_screen({"a": [100, 80, 85, 100]}, {"a": [91, 95, 20, 20]})
    assert screen[0].excluded and "mid anchor > 90 in 50 %" in screen[0].reason()


def test_bs1770_loudness() -> None:
    assert k_filter(48000) == pytest.approx(np.array(
        [[1.53512485958697, -2.69169618940638, 1.19839281085285, 1.0, -1.69065929318241,
          0.73248077421585],
         [1.0, -2.0, 1.0, 1.0, -1.99004745483398, 0.99007225036621]]), abs=1e-10)
    t = np.arange(3 * 48000) / 48000
    sine = np.sin(2 * np.pi * 997 * t)
    # BS.1770-4: a 0 dBFS 997 Hz sine in one channel reads -3.01 LKFS
    assert integrated_loudness(np.stack([sine, 0 * sine]), 48000) == pytest.approx(-3.01,
                                                                                   abs=0.01)
    x = tone(2.0)
    assert integrated_loudness(0.5 * x, SR) == pytest.approx(
        integrated_loudness(x, SR) - 6.0206, abs=1e-6)
    assert integrated_loudness(np.zeros((2, 1000)), SR) == -math.inf
