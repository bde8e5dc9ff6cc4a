"""``upband listen --analyse DB``: the numbers of a results database, printed, as CSV and as
figures.

Per test, after the design:

* **MUSHRA**: BS.1534-3 post-screening first (:func:`upband.listen.stats.post_screen`; the
  excluded assessors are named and left out of everything below, ``screening=False`` keeps
  them); then per version, over all kept ratings, the mean with its 95 % interval, the same per
  condition, and the paired t-test and Wilcoxon signed-rank test of every two versions on the
  ratings the same participant gave them in the same trial, with Holm-adjusted p-values;
* **MOS**: the same without screening, pairs matched by participant and item;
* **AB**: per pair, the share of votes for each version with its exact binomial test against
  no preference (and the Clopper-Pearson interval of the share);
* **ABX**: per pair, the share of correct answers with the one-sided binomial test against
  guessing.

Files written into the output folder: ``ratings.csv`` (every row, with ``excluded``),
``summary.csv`` (the means and intervals), ``tests.csv`` (the paired and binomial tests) and,
with matplotlib, ``<test>_means.png`` and (MUSHRA, MOS) ``<test>_boxplot.png`` (TD-PR
Fig. 3's box plots).
"""

from __future__ import annotations

import csv
import io
import itertools
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from upband.errors import MissingDependencyError, OutputExistsError
from upband.fsutil import atomic_write_text
from upband.listen import stats
from upband.listen.plots import figure_names, plot_test
from upband.listen.store import RATING_COLUMNS, read_results

SUMMARY_COLUMNS = ("test", "design", "condition", "version", "n", "mean", "ci_low", "ci_high",
                   "sd")
TEST_COLUMNS = ("test", "design", "condition", "a", "b", "n", "mean_diff", "t", "p_t",
                "p_t_holm", "wilcoxon_w", "p_w", "p_w_holm", "k", "share", "p_binomial",
                "share_low", "share_high")
ALL = "all"


@dataclass
class TestResult:
    """The analysis of one test: summary rows, test rows, the text, and the values per
    version for the figures."""

    __test__ = False  # not a pytest class

    name: str
    design: str
    summary: list[dict[str, Any]] = field(default_factory=list)
    tests: list[dict[str, Any]] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    values: dict[str, list[float]] = field(default_factory=dict)
    excluded: dict[str, str] = field(default_factory=dict)


@dataclass
class Analysis:
    """Everything :func:`analyse` found and wrote."""

    results: list[TestResult]
    text: str
    written: list[Path]
    notes: list[str]


def _fmt(v: float, digits: int = 2) -> str:
    return "n/a" if v is None or math.isnan(v) else f"{v:.{digits}f}"


def _p(v: float) -> str:
    return "n/a" if math.isnan(v) else ("<0.0001" if v < 1e-4 else f"{v:.4f}")


def _order(test: dict[str, Any], rows: Iterable[dict[str, Any]]) -> list[str]:
    """Versions in the test's order, then any others in the order met."""
    names = [*test.get("versions", []), *(x for p in test.get("pairs", []) for x in p)]
    return list(dict.fromkeys([*names, *(r["stimulus"] for r in rows)]))


def _screen(test: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, str]:
    """MUSHRA post-screening: participant -> why excluded."""
    ref, mid = test.get("reference"), test.get("mid_anchor")
    if not ref:
        return {}
    ref_scores: dict[str, list[float]] = defaultdict(list)
    mid_scores: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        if r["stimulus"] == ref:
            ref_scores[r["participant"]].append(r["value"])
        elif mid and r["stimulus"] == mid:
            mid_scores[r["participant"]].append(r["value"])
    return {s.participant: s.reason() for s in stats.post_screen(ref_scores, mid_scores)
            if s.excluded}


def _ratings(res: TestResult, test: dict[str, Any], rows: list[dict[str, Any]],
             pair_key: str) -> None:
    """MUSHRA and MOS: means with intervals per version (all and per condition), paired tests."""
    versions = _order(test, rows)
    conditions = sorted({r["condition"] for r in rows})
    groups = [ALL] + (conditions if len(conditions) > 1 else [])
    res.lines.append(f"  {'condition':<24} {'version':<22} {'n':>5} {'mean':>8} "
                     f"{'95 % CI':>18} {'sd':>7}")
    for group in groups:
        for v in versions:
            vals = [r["value"] for r in rows if r["stimulus"] == v
                    and (group == ALL or r["condition"] == group)]
            if not vals:
                continue
            if group == ALL:
                res.values[v] = vals
            ci = stats.mean_ci(vals)
            res.summary.append({"condition": group, "version": v, "n": ci.n, "mean": ci.mean,
                                "ci_low": ci.low, "ci_high": ci.high, "sd": ci.sd})
            res.lines.append(f"  {group[:24]:<24} {v[:22]:<22} {ci.n:>5} {_fmt(ci.mean):>8} "
                             f"{'[' + _fmt(ci.low) + ', ' + _fmt(ci.high) + ']':>18} "
                             f"{_fmt(ci.sd):>7}")
    by: dict[str, dict[tuple[str, str], float]] = defaultdict(dict)
    for r in rows:
        by[r["stimulus"]][(r["participant"], r[pair_key])] = r["value"]
    tests: list[dict[str, Any]] = []
    for a, b in itertools.combinations(versions, 2):
        keys = sorted(set(by[a]) & set(by[b]))
        pt = stats.paired([by[a][k] for k in keys], [by[b][k] for k in keys])
        tests.append({"condition": ALL, "a": a, "b": b, "n": pt.n, "mean_diff": pt.mean_diff,
                      "t": pt.t, "p_t": pt.t_p, "wilcoxon_w": pt.w, "p_w": pt.w_p})
    for key in ("p_t", "p_w"):
        for t, adj in zip(tests, stats.holm([t[key] for t in tests]), strict=True):
            t[f"{key}_holm"] = adj
    res.tests += tests
    res.lines.append(f"  paired tests (same participant and {pair_key}; Holm-adjusted over "
                     f"{len(tests)} pairs):")
    res.lines.append(f"  {'a':<18} {'b':<18} {'n':>4} {'a−b':>7} {'t':>8} {'p':>8} "
                     f"{'p Holm':>8} {'W':>8} {'p':>8} {'p Holm':>8}")
    for t in tests:
        res.lines.append(
            f"  {t['a'][:18]:<18} {t['b'][:18]:<18} {t['n']:>4} {_fmt(t['mean_diff']):>7} "
            f"{_fmt(t['t'], 3):>8} {_p(t['p_t']):>8} {_p(t['p_t_holm']):>8} "
            f"{_fmt(t['wilcoxon_w'], 1):>8} {_p(t['p_w']):>8} {_p(t['p_w_holm']):>8}")


def _pair_of(trial: str) -> tuple[str, str]:
    """The pair of an AB/ABX trial id ``item:a|b:repeat`` (names hold no ``:`` or ``|``)."""
    a, b = trial.split(":")[1].split("|")
    return a, b


def _choices(res: TestResult, rows: list[dict[str, Any]]) -> None:
    """AB (votes for the first of each pair) and ABX (correct answers) per pair."""
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    seen = set()
    for r in rows:
        key = (r["participant"], r["position"])
        if key in seen:
            continue
        seen.add(key)
        pair = _pair_of(r["trial"])
        hit = (r["answer"] == pair[0]) if res.design == "ab" else r["value"] == 1.0
        counts[pair][0] += int(hit)
        counts[pair][1] += 1
    what = "prefer" if res.design == "ab" else "correct"
    res.lines.append(f"  {'pair':<40} {'n':>5} {what:>9} {'95 % CI':>18} {'p':>8}")
    for (a, b), (k, n) in counts.items():
        test = stats.preference(k, n) if res.design == "ab" else stats.discrimination(k, n)
        res.tests.append({"condition": ALL, "a": a, "b": b, "n": n, "k": k,
                          "share": test.share, "p_binomial": test.p, "share_low": test.low,
                          "share_high": test.high})
        res.values[f"{a} vs {b}"] = [test.share, test.low, test.high]
        label = f"{a} over {b}" if res.design == "ab" else f"{a} / {b}"
        res.lines.append(f"  {label[:40]:<40} {n:>5} {100 * test.share:>8.1f}% "
                         f"{'[' + _fmt(100 * test.low, 1) + ', ' + _fmt(100 * test.high, 1):>17}] "
                         f"{_p(test.p):>8}")


def analyse_results(path: str | Path, *, screening: bool = True) -> list[TestResult]:
    """The analysis of every test in the database at ``path``."""
    data = read_results(path)
    out = []
    for test in data.tests:
        rows = [r for r in data.ratings if r["test"] == test["name"]]
        res = TestResult(test["name"], test["design"])
        participants = sorted({r["participant"] for r in rows})
        if test["design"] == "mushra" and screening:
            res.excluded = _screen(test, rows)
        kept = [r for r in rows if r["participant"] not in res.excluded]
        trials = len({(r["participant"], r["position"]) for r in kept})
        res.lines.append(f"test {test['name']} ({test['design'].upper()}): {len(participants)} "
                         f"participant(s), {len(rows)} rating rows; {trials} trials analysed")
        for who, why in res.excluded.items():
            res.lines.append(f"  excluded by BS.1534-3 post-screening: {who} ({why})")
        if not kept:
            res.lines.append("  no ratings")
        elif test["design"] in ("mushra", "mos"):
            _ratings(res, test, kept, "trial" if test["design"] == "mushra" else "item")
        else:
            _choices(res, kept)
        for row in (*res.summary, *res.tests):
            row.update({"test": res.name, "design": res.design})
        out.append(res)
    return out


def _csv(columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n", restval="",
                       extrasaction="ignore")
    w.writeheader()
    for row in rows:
        w.writerow({k: (repr(float(v)) if isinstance(v, float) else v) for k, v in row.items()})
    return buf.getvalue()


def analyse(path: str | Path, output: str | Path | None = None, *, screening: bool = True,
            plots: bool = True, force: bool = False) -> Analysis:
    """Analyse the database at ``path``; write the CSVs and figures into ``output`` (default:
    ``<db stem>-analysis`` beside it), refusing to replace them without ``force``."""
    path = Path(path)
    results = analyse_results(path, screening=screening)
    out = Path(output) if output is not None else path.with_name(f"{path.stem}-analysis")
    names = ["ratings.csv", "summary.csv", "tests.csv"]
    if plots:
        names += [n for r in results for n in figure_names(r)]
    existing = [n for n in names if (out / n).exists()]
    if existing and not force:
        raise OutputExistsError(f"{out / existing[0]}: already exists (use --force to "
                                "replace the analysis)")
    out.mkdir(parents=True, exist_ok=True)
    excluded = {(r.name, who) for r in results for who in r.excluded}
    ratings = [{**row, "excluded": int((row["test"], row["participant"]) in excluded)}
               for row in read_results(path).ratings]
    written = [out / n for n in names[:3]]
    atomic_write_text(written[0], _csv([*RATING_COLUMNS, "excluded"], ratings))
    atomic_write_text(written[1], _csv(SUMMARY_COLUMNS, (s for r in results for s in r.summary)))
    atomic_write_text(written[2], _csv(TEST_COLUMNS, (t for r in results for t in r.tests)))
    notes: list[str] = []
    if plots:
        try:
            for r in results:
                written += plot_test(r, out)
        except MissingDependencyError as err:
            notes.append(f"no figures: {err}")
    text = "\n\n".join("\n".join(r.lines) for r in results) or "no tests in the database"
    return Analysis(results, text, written, notes)
