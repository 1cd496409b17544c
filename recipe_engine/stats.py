"""Significance tests over seeds: Welch's t, the paired t, and a seeded bootstrap.

Every test returns a :class:`TestResult` with a two-sided p-value for "the two runs have
the same mean".  The t-distribution tail is the regularized incomplete beta function
(Abramowitz & Stegun 26.7.1 / 26.5.27): for T ~ t(df),
``P(|T| >= |t|) = I_{df / (df + t^2)}(df / 2, 1 / 2)``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy.special import betainc

TESTS = ("welch", "paired", "bootstrap")


@dataclass(frozen=True)
class TestResult:
    test: str
    statistic: float  # t (welch, paired) or the mean difference (bootstrap)
    df: float  # degrees of freedom; NaN for the bootstrap
    p: float  # two-sided p-value; NaN when the test is undefined (fewer than 2 values a side)
    diff: float  # mean(b) - mean(a)


def mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values) if len(values) else math.nan


def sample_var(values: Sequence[float]) -> float:
    """Unbiased sample variance (ddof = 1); NaN for fewer than two values."""
    n = len(values)
    if n < 2:
        return math.nan
    m = mean(values)
    return math.fsum((v - m) ** 2 for v in values) / (n - 1)


def sample_sd(values: Sequence[float]) -> float:
    return math.sqrt(sample_var(values))


def t_two_sided_p(t: float, df: float) -> float:
    """Two-sided tail of Student's t: ``I_{df/(df+t^2)}(df/2, 1/2)`` (A&S 26.7.1)."""
    if math.isnan(t) or math.isnan(df):
        return math.nan
    if math.isinf(t):
        return 0.0
    return float(betainc(df / 2.0, 0.5, df / (df + t * t)))


def _degenerate(diff: float) -> tuple[float, float]:
    """(t, p) when the standard error is 0: no spread at all, so p is 1 for equal means and 0 otherwise."""
    if diff == 0:
        return 0.0, 1.0
    return math.copysign(math.inf, diff), 0.0


def welch(a: Sequence[float], b: Sequence[float]) -> TestResult:
    """Welch's unequal-variance t-test (Welch 1947): ``t = (mean_b - mean_a) / sqrt(v_a/n_a + v_b/n_b)``
    with the Welch-Satterthwaite degrees of freedom
    ``df = (v_a/n_a + v_b/n_b)^2 / ((v_a/n_a)^2/(n_a-1) + (v_b/n_b)^2/(n_b-1))``."""
    a, b = [float(x) for x in a], [float(x) for x in b]
    diff = mean(b) - mean(a)
    if len(a) < 2 or len(b) < 2:
        return TestResult("welch", math.nan, math.nan, math.nan, diff)
    qa, qb = sample_var(a) / len(a), sample_var(b) / len(b)
    se2 = qa + qb
    if se2 == 0:
        t, p = _degenerate(diff)
        return TestResult("welch", t, math.nan, p, diff)
    t = diff / math.sqrt(se2)
    wa, wb = qa / se2, qb / se2  # the same ratio, scaled to avoid underflow of the squares
    df = 1.0 / (wa * wa / (len(a) - 1) + wb * wb / (len(b) - 1))
    return TestResult("welch", t, df, t_two_sided_p(t, df), diff)


def paired(a: Sequence[float], b: Sequence[float]) -> TestResult:
    """Paired t-test (Student 1908) on ``d_i = b_i - a_i``: ``t = mean(d) / (sd(d) / sqrt(n))``, ``df = n - 1``.
    ``a[i]`` and ``b[i]`` must come from the same seed."""
    if len(a) != len(b):
        raise ValueError(f"paired t-test needs the same number of values on both sides, got {len(a)} and {len(b)}")
    d = [float(y) - float(x) for x, y in zip(a, b)]
    diff = mean(d)
    if len(d) < 2:
        return TestResult("paired", math.nan, math.nan, math.nan, diff)
    se = sample_sd(d) / math.sqrt(len(d))
    if se == 0:
        t, p = _degenerate(diff)
        return TestResult("paired", t, len(d) - 1.0, p, diff)
    t = diff / se
    df = len(d) - 1.0
    return TestResult("paired", t, df, t_two_sided_p(t, df), diff)


def bootstrap(a: Sequence[float], b: Sequence[float], resamples: int = 10_000, seed: int = 0) -> TestResult:
    """Bootstrap test of equal means (Efron & Tibshirani 1993, sec. 16.4): both samples are shifted
    to the pooled mean (so the null holds), resampled with replacement within each sample, and
    ``p = (1 + #{|d*| >= |d|}) / (B + 1)`` for the mean difference ``d = mean_b - mean_a``.
    Deterministic for a given ``seed``."""
    xa, xb = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    diff = float(xb.mean() - xa.mean()) if len(xa) and len(xb) else math.nan
    if len(xa) < 2 or len(xb) < 2:
        return TestResult("bootstrap", diff, math.nan, math.nan, diff)
    pooled = np.concatenate([xa, xb]).mean()
    za, zb = xa - xa.mean() + pooled, xb - xb.mean() + pooled
    rng = np.random.default_rng(seed)
    ra = za[rng.integers(0, len(za), size=(resamples, len(za)))].mean(axis=1)
    rb = zb[rng.integers(0, len(zb), size=(resamples, len(zb)))].mean(axis=1)
    extreme = np.abs(rb - ra) >= abs(diff) - 1e-12 * max(1.0, abs(diff))
    p = (1.0 + float(extreme.sum())) / (resamples + 1.0)
    return TestResult("bootstrap", diff, math.nan, p, diff)


def run_test(name: str, a: Sequence[float], b: Sequence[float], *, resamples: int = 10_000, seed: int = 0) -> TestResult:
    """Dispatch on ``name`` (one of :data:`TESTS`)."""
    if name == "welch":
        return welch(a, b)
    if name == "paired":
        return paired(a, b)
    if name == "bootstrap":
        return bootstrap(a, b, resamples=resamples, seed=seed)
    raise ValueError(f"unknown test {name!r}; use one of {', '.join(TESTS)}")


def format_p(p: float) -> str:
    """``0.0123``, ``<0.0001``, or ``-`` when undefined."""
    if p is None or math.isnan(p):
        return "-"
    if p < 1e-4:
        return "<0.0001"
    return f"{p:.4f}"
