"""The statistics of the listening tests: means with confidence intervals, the paired tests the
papers used, preference and discrimination tests, and BS.1534-3's post-screening.

Every function is pure (numbers in, numbers out) and names its scipy routine, so a reader can
check a printed value against scipy directly (the tests do).

* :func:`mean_ci`: mean and the two-sided 95 % interval ``mean ± t(0.975, n−1) · s / √n``
  with the sample standard deviation ``s`` (ddof 1): the interval BS.1534-3 reports.
* :func:`paired`: Student's paired t-test (``scipy.stats.ttest_rel``; Lattner & Nistal's
  t-tests) and the Wilcoxon signed-rank test (``scipy.stats.wilcoxon``, zero differences
  dropped, two-sided; exact below 50 pairs), on the ratings two stimuli got from the same
  participant in the same trial.
* :func:`holm`: Holm's step-down adjustment of a family of p-values.
* :func:`preference`: two-sided exact binomial test of an AB preference against 50 % (TD-PR's
  AB test reports the preference share).
* :func:`discrimination`: one-sided exact binomial test of ABX answers against guessing.
* :func:`post_screen`: BS.1534-3's post-screening: an assessor is excluded who rates the hidden
  reference below 90 in more than 15 % of the test items, or the mid-range anchor above 90 in
  more than 15 % of them.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

#: Confidence level of every interval.
LEVEL = 0.95
#: BS.1534-3 post-screening: the score limit and the share of items allowed beyond it.
SCREEN_SCORE = 90.0
SCREEN_SHARE = 0.15


@dataclass(frozen=True)
class MeanCI:
    """``n`` values: their mean, sample standard deviation and interval ``[low, high]``."""

    n: int
    mean: float
    sd: float
    low: float
    high: float

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2


def mean_ci(values: Sequence[float], level: float = LEVEL) -> MeanCI:
    """Mean and Student-t confidence interval; NaN where undefined (fewer than 2 values)."""
    x = np.asarray(values, dtype=np.float64)
    n = int(x.size)
    if n == 0:
        return MeanCI(0, math.nan, math.nan, math.nan, math.nan)
    m = float(x.mean())
    if n < 2:
        return MeanCI(1, m, math.nan, math.nan, math.nan)
    sd = float(x.std(ddof=1))
    half = float(stats.t.ppf((1 + level) / 2, n - 1)) * sd / math.sqrt(n)
    return MeanCI(n, m, sd, m - half, m + half)


@dataclass(frozen=True)
class Paired:
    """Two stimuli rated in the same ``n`` (participant, trial) pairs: the mean difference
    ``a − b``, the paired t-test and the Wilcoxon signed-rank test."""

    n: int
    mean_diff: float
    t: float
    t_p: float
    w: float
    w_p: float


def paired(a: Sequence[float], b: Sequence[float]) -> Paired:
    """Paired t-test and Wilcoxon signed-rank test of ``a`` against ``b`` (same length).

    A test that is undefined (fewer than 2 pairs, every difference zero) gives NaN.
    """
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"paired samples differ in length: {x.size} and {y.size}")
    n = int(x.size)
    diff = x - y
    t = t_p = w = w_p = math.nan
    if n >= 2:
        with warnings.catch_warnings():  # constant differences: scipy warns and returns NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            res = stats.ttest_rel(x, y)
        t, t_p = float(res.statistic), float(res.pvalue)
    if np.any(diff != 0):
        wil = stats.wilcoxon(x, y)
        w, w_p = float(wil.statistic), float(wil.pvalue)
    return Paired(n, float(diff.mean()) if n else math.nan, t, t_p, w, w_p)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values in the input order (NaN stays NaN and is not counted)."""
    valid = [(p, i) for i, p in enumerate(pvalues) if not math.isnan(p)]
    out = [math.nan] * len(pvalues)
    running = 0.0
    m = len(valid)
    for rank, (p, i) in enumerate(sorted(valid)):
        running = max(running, min(1.0, (m - rank) * p))
        out[i] = running
    return out


@dataclass(frozen=True)
class Binomial:
    """``k`` of ``n`` answers: the share, the exact binomial p-value and its interval."""

    k: int
    n: int
    share: float
    p: float
    low: float
    high: float


def _binomial(k: int, n: int, alternative: str) -> Binomial:
    if n == 0:
        return Binomial(0, 0, math.nan, math.nan, math.nan, math.nan)
    res = stats.binomtest(k, n, 0.5, alternative=alternative)
    ci = stats.binomtest(k, n, 0.5).proportion_ci(LEVEL)  # Clopper-Pearson
    return Binomial(k, n, k / n, float(res.pvalue), float(ci.low), float(ci.high))


def preference(k: int, n: int) -> Binomial:
    """``k`` of ``n`` AB votes for one side: two-sided test against no preference."""
    return _binomial(k, n, "two-sided")


def discrimination(correct: int, n: int) -> Binomial:
    """``correct`` of ``n`` ABX answers: one-sided test against guessing (50 %)."""
    return _binomial(correct, n, "greater")


@dataclass(frozen=True)
class Screening:
    """One assessor's post-screening: shares of items failing each rule, and the verdict."""

    participant: str
    items: int
    reference_low: float
    anchor_high: float

    @property
    def excluded(self) -> bool:
        return self.reference_low > SCREEN_SHARE or self.anchor_high > SCREEN_SHARE

    def reason(self) -> str:
        parts = []
        if self.reference_low > SCREEN_SHARE:
            parts.append(f"hidden reference < {SCREEN_SCORE:g} in "
                         f"{100 * self.reference_low:.0f} % of items")
        if self.anchor_high > SCREEN_SHARE:
            parts.append(f"mid anchor > {SCREEN_SCORE:g} in {100 * self.anchor_high:.0f} % "
                         "of items")
        return "; ".join(parts) or "kept"


def post_screen(reference: Mapping[str, Sequence[float]],
                mid_anchor: Mapping[str, Sequence[float]]) -> list[Screening]:
    """BS.1534-3 post-screening of MUSHRA assessors.

    Args:
        reference: participant -> the scores they gave the hidden reference, one per item.
        mid_anchor: participant -> the scores they gave the mid-range (7 kHz) anchor, one per
            item (empty when the test has none: that rule then never excludes).
    """
    out = []
    for who in sorted(set(reference) | set(mid_anchor)):
        ref = np.asarray(reference.get(who, ()), dtype=np.float64)
        mid = np.asarray(mid_anchor.get(who, ()), dtype=np.float64)
        out.append(Screening(
            who, int(max(ref.size, mid.size)),
            float(np.mean(ref < SCREEN_SCORE)) if ref.size else 0.0,
            float(np.mean(mid > SCREEN_SCORE)) if mid.size else 0.0))
    return out
