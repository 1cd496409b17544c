import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, stats as sps

from recipe_engine.stats import bootstrap, format_p, paired, run_test, t_two_sided_p, welch


def t_pdf(x: float, df: float) -> float:
    """Student's t density, written out: Gamma((v+1)/2) / (sqrt(v pi) Gamma(v/2)) (1 + x^2/v)^(-(v+1)/2)."""
    log_c = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    return math.exp(log_c - (df + 1) / 2 * math.log1p(x * x / df))


def p_by_integration(t: float, df: float) -> float:
    tail, _ = integrate.quad(t_pdf, abs(t), math.inf, args=(df,), epsabs=1e-13, epsrel=1e-12)
    return 2 * tail


def welch_by_hand(a, b):
    na, nb = len(a), len(b)
    ma, mb = sum(a) / na, sum(b) / nb
    va = sum((x - ma) ** 2 for x in a) / (na - 1)
    vb = sum((x - mb) ** 2 for x in b) / (nb - 1)
    t = (mb - ma) / math.sqrt(va / na + vb / nb)
    df = (va / na + vb / nb) ** 2 / ((va / na) ** 2 / (na - 1) + (vb / nb) ** 2 / (nb - 1))
    return t, df, p_by_integration(t, df)


def test_t_tail_matches_integrated_density():
    for t, df in [(0.0, 3.0), (0.5, 1.0), (2.1, 4.0), (-3.3, 2.5), (5.0, 30.0), (1.96, 1e4)]:
        assert t_two_sided_p(t, df) == pytest.approx(p_by_integration(t, df), rel=1e-8, abs=1e-12)
    assert t_two_sided_p(0.0, 7.0) == pytest.approx(1.0)
    assert t_two_sided_p(math.inf, 3.0) == 0.0


def test_welch_three_seeds_by_formula():
    a = [76.2, 74.8, 77.1]
    b = [81.0, 79.4, 83.3]
    t, df, p = welch_by_hand(a, b)
    r = welch(a, b)
    assert r.statistic == pytest.approx(t, rel=1e-12)
    assert r.df == pytest.approx(df, rel=1e-12)
    assert r.p == pytest.approx(p, rel=1e-8)
    assert r.diff == pytest.approx(sum(b) / 3 - sum(a) / 3)
    ref = sps.ttest_ind(b, a, equal_var=False)
    assert r.p == pytest.approx(ref.pvalue, rel=1e-10)
    assert r.statistic == pytest.approx(ref.statistic, rel=1e-10)


@pytest.mark.filterwarnings("ignore:Precision loss occurred")  # scipy's note on nearly equal samples
@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(0, 100, allow_nan=False), min_size=2, max_size=6),
       st.lists(st.floats(0, 100, allow_nan=False), min_size=2, max_size=6))
def test_welch_matches_scipy(a, b):
    r = welch(a, b)
    if np.var(a) + np.var(b) < 1e-6:
        return  # (nearly) no spread: degenerate, checked separately
    ref = sps.ttest_ind(b, a, equal_var=False)
    assert r.p == pytest.approx(ref.pvalue, rel=1e-7, abs=1e-12)


def test_paired_by_formula():
    a = [70.0, 72.5, 71.0, 69.0]
    b = [71.0, 74.0, 71.5, 70.5]
    d = [y - x for x, y in zip(a, b)]
    md = sum(d) / 4
    sd = math.sqrt(sum((x - md) ** 2 for x in d) / 3)
    t = md / (sd / 2)
    r = paired(a, b)
    assert r.statistic == pytest.approx(t, rel=1e-12)
    assert r.df == 3
    assert r.p == pytest.approx(p_by_integration(t, 3), rel=1e-8)
    assert r.p == pytest.approx(sps.ttest_rel(b, a).pvalue, rel=1e-10)
    with pytest.raises(ValueError, match="same number"):
        paired([1, 2], [1, 2, 3])


def test_degenerate_and_undefined_cases():
    same = welch([80.0, 80.0, 80.0], [80.0, 80.0])
    assert (same.statistic, same.p) == (0.0, 1.0)
    apart = welch([80.0, 80.0], [81.0, 81.0])
    assert apart.p == 0.0 and apart.statistic == math.inf
    one = welch([80.0], [81.0, 82.0])
    assert math.isnan(one.p) and one.diff == pytest.approx(1.5)
    assert format_p(one.p) == "-"
    assert format_p(0.00001) == "<0.0001"
    assert format_p(0.04567) == "0.0457"


def test_bootstrap_is_seeded_and_sensible():
    a = [76.2, 74.8, 77.1, 75.5, 76.0]
    b = [81.0, 79.4, 83.3, 80.2, 82.0]
    r1 = bootstrap(a, b, resamples=4000, seed=7)
    r2 = bootstrap(a, b, resamples=4000, seed=7)
    assert r1 == r2
    assert r1.p < 0.01
    assert r1.diff == pytest.approx(np.mean(b) - np.mean(a))
    close = bootstrap(a, [x + 0.1 for x in a], resamples=4000, seed=7)
    assert close.p > 0.5
    # p is never 0: (1 + count) / (B + 1)
    assert r1.p >= 1 / 4001


def test_bootstrap_p_by_naive_loop():
    a, b = [1.0, 2.0, 4.0], [3.0, 5.0, 6.0]
    r = bootstrap(a, b, resamples=300, seed=3)
    rng = np.random.default_rng(3)
    pooled = np.mean(a + b)
    za = np.array(a) - np.mean(a) + pooled
    zb = np.array(b) - np.mean(b) + pooled
    ia = rng.integers(0, 3, size=(300, 3))
    ib = rng.integers(0, 3, size=(300, 3))
    count = 0
    for k in range(300):
        d = zb[ib[k]].mean() - za[ia[k]].mean()
        count += abs(d) >= abs(np.mean(b) - np.mean(a)) - 1e-12
    assert r.p == pytest.approx((1 + count) / 301)


def test_run_test_dispatch():
    assert run_test("welch", [1, 2, 3], [2, 3, 4]).test == "welch"
    assert run_test("paired", [1, 2, 3], [2, 3, 5]).test == "paired"
    assert run_test("bootstrap", [1, 2, 3], [2, 3, 4], resamples=100).test == "bootstrap"
    with pytest.raises(ValueError, match="unknown test"):
        run_test("mann", [1], [2])
