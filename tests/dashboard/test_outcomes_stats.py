"""dashboard.stats against hand-computed values and against scipy / statsmodels on small fixed data."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf
from scipy import stats as sps
from statsmodels.stats.proportion import proportion_confint

from dashboard import stats


# --- mean and its interval ---------------------------------------------------------------------------------------
def test_mean_ci_by_hand():
    r = stats.mean_ci([1, 2, 3, 4, 5])
    # sd = sqrt(2.5); t(0.975, 4) = 2.776445; half = 2.776445 * 1.581139 / sqrt(5) = 1.963243
    assert (r.n, r.mean) == (5, 3.0)
    assert r.sd == pytest.approx(math.sqrt(2.5))
    assert r.lo == pytest.approx(3 - 1.963243, abs=1e-6)
    assert r.hi == pytest.approx(3 + 1.963243, abs=1e-6)
    assert r.half_width == pytest.approx(1.963243, abs=1e-6)


def test_mean_ci_matches_scipy_and_ignores_missing():
    x = [-3.0, -2.5, -4.0, 0.0, -1.0, -6.5, -2.0]
    r = stats.mean_ci([*x, None, float("nan")])
    lo, hi = sps.t.interval(0.95, len(x) - 1, loc=np.mean(x), scale=sps.sem(x))
    assert r.n == len(x)
    assert (r.lo, r.hi) == pytest.approx((lo, hi))
    r90 = stats.mean_ci(x, level=0.90)
    assert r90.half_width < r.half_width


def test_mean_ci_width_shrinks_with_sqrt_n():
    base = [1.0, 3.0]
    r2 = stats.mean_ci(base)
    r8 = stats.mean_ci(base * 4)
    # same spread; t(0.975, 1) = 12.706 vs t(0.975, 7) = 2.365, sd sqrt(2) vs sqrt(8/7)
    assert r2.half_width == pytest.approx(12.706205 * math.sqrt(2) / math.sqrt(2), rel=1e-6)
    assert r8.half_width == pytest.approx(2.364624 * math.sqrt(8 / 7) / math.sqrt(8), rel=1e-6)


def test_mean_ci_edges():
    assert stats.mean_ci([]).n == 0 and math.isnan(stats.mean_ci([]).mean)
    one = stats.mean_ci([4.0])
    assert one.mean == 4.0 and math.isnan(one.lo) and math.isnan(one.hi)
    same = stats.mean_ci([2.0, 2.0, 2.0])
    assert same.lo == same.hi == 2.0


# --- Wilson ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("k,n", [(0, 1), (1, 1), (0, 10), (5, 10), (10, 10), (3, 7), (1, 200), (57, 120)])
def test_wilson_matches_statsmodels(k, n):
    r = stats.wilson(k, n)
    lo, hi = proportion_confint(k, n, alpha=0.05, method="wilson")
    assert (r.lo, r.hi) == pytest.approx((lo, hi), abs=1e-12)
    assert r.p == k / n


def test_wilson_by_hand():
    z2 = 1.959964**2
    zero = stats.wilson(0, 10)
    assert zero.lo == 0.0
    assert zero.hi == pytest.approx(z2 / (10 + z2), abs=1e-6)  # 0.2775
    half = stats.wilson(5, 10)
    assert (half.lo, half.hi) == pytest.approx((0.236593, 0.763407), abs=1e-6)
    assert stats.wilson(10, 10).hi == 1.0


def test_wilson_edges():
    assert math.isnan(stats.wilson(0, 0).p)
    with pytest.raises(ValueError):
        stats.wilson(3, 2)
    with pytest.raises(ValueError):
        stats.wilson(-1, 2)


# --- OLS: adjusted means and benchmarking ------------------------------------------------------------------------
def _small() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    n = 60
    df = pd.DataFrame(
        {
            "core": rng.integers(0, 2, n),
            "nerve": rng.integers(0, 2, n),
            "baseline": rng.uniform(3, 9, n).round(1),
            "age": rng.integers(25, 75, n),
            "adherence": rng.uniform(0.2, 1.0, n).round(2),
            "therapist": rng.choice(["T1", "T2", "T3"], n),
        }
    )
    df["change"] = (
        -0.4 * df["baseline"] - 1.0 * df["nerve"] - 2.0 * df["adherence"] + rng.normal(0, 1, n)
    ).round(2)
    return df


def test_adjusted_means_match_statsmodels_prediction():
    df = _small()
    df.loc[3, "age"] = None  # complete cases only
    out = stats.adjusted_means(df, "change", ["core", "nerve"], ["baseline", "age", "adherence"]).set_index(
        "type"
    )
    cc = df.dropna()
    model = smf.ols("change ~ core + nerve + baseline + age + adherence", data=cc).fit()
    for t in ("core", "nerve"):
        at = {c: cc[c].mean() for c in ("core", "nerve", "baseline", "age", "adherence")}
        at[t] = 1.0
        pred = model.get_prediction(pd.DataFrame([at])).summary_frame(alpha=0.05).iloc[0]
        assert out.loc[t, "adjusted"] == pytest.approx(pred["mean"])
        assert out.loc[t, "lo"] == pytest.approx(pred["mean_ci_lower"])
        assert out.loc[t, "hi"] == pytest.approx(pred["mean_ci_upper"])
        assert out.loc[t, "coef"] == pytest.approx(model.params[t])
        assert out.loc[t, "coef_lo"] == pytest.approx(model.conf_int().loc[t, 0])
        assert out.loc[t, "n_model"] == int(cc[t].sum())


def test_adjusted_means_too_few_rows_or_constant_type():
    df = _small().head(4)
    assert stats.adjusted_means(df, "change", ["core"], ["baseline", "age", "adherence"]).empty
    df = _small().assign(core=1)  # everyone received it: not estimable, left out rather than wrong
    out = stats.adjusted_means(df, "change", ["core", "nerve"], ["baseline"])
    assert list(out["type"]) == ["nerve"]


def test_indirect_standardised_against_statsmodels_residuals():
    df = _small()
    out = stats.indirect_standardised(df, "change", "therapist", ["baseline", "adherence"]).set_index("group")
    model = sm.OLS(df["change"], sm.add_constant(df[["baseline", "adherence"]])).fit()
    resid = df["change"] - model.fittedvalues
    for g in ("T1", "T2", "T3"):
        part = resid[df["therapist"] == g]
        assert out.loc[g, "n_model"] == len(part)
        assert out.loc[g, "adjusted"] == pytest.approx(df["change"].mean() + part.mean())
        half = sps.t.ppf(0.975, len(part) - 1) * part.std(ddof=1) / math.sqrt(len(part))
        assert out.loc[g, "hi"] - out.loc[g, "adjusted"] == pytest.approx(half)
    # observed - expected sums to zero over all rows (OLS residuals have mean 0)
    assert (out["n_model"] * (out["observed"] - out["expected"])).sum() == pytest.approx(0, abs=1e-9)


def test_trend_line_and_percentiles():
    assert stats.trend_line([0, 1, 2, 3], [1, 3, 5, 7]) == pytest.approx((2.0, 1.0))
    assert stats.trend_line([1, 1, 1], [1, 2, 3]) is None
    assert stats.trend_line([1, 2], [1, 2]) is None
    df = pd.DataFrame({"week": [1] * 5 + [2] * 4, "v": [1, 2, 3, 4, 5, 9, 9, 9, 9]})
    bands = stats.percentile_bands(df, "week", "v")
    assert list(bands["week"]) == [1]  # week 2 has 4 < 5 values
    assert bands.iloc[0][["n", "p25", "p50", "p75"]].tolist() == [5, 2.0, 3.0, 4.0]
    assert bands.iloc[0]["p25"] == np.percentile([1, 2, 3, 4, 5], 25)


def test_vectorised_forms_agree_with_the_scalar_ones():
    df = _small()
    table = stats.mean_ci_groups(df["change"], df["therapist"])
    for g, part in df.groupby("therapist"):
        r = stats.mean_ci(part["change"])
        assert table.loc[g, ["n", "mean", "lo", "hi"]].tolist() == pytest.approx([r.n, r.mean, r.lo, r.hi])
    one = stats.mean_ci_groups(pd.Series([1.0, 2.0, None]), pd.Series(["a", "b", "b"]))
    assert one.loc["a", "n"] == 1 and math.isnan(one.loc["a", "lo"])
    ks, ns = [0, 1, 5, 10, 3, 0], [1, 1, 10, 10, 7, 0]
    p, lo, hi = stats.wilson_arrays(ks, ns)
    for i, (k, n) in enumerate(zip(ks, ns, strict=True)):
        w = stats.wilson(k, n)
        if n == 0:
            assert math.isnan(p[i]) and math.isnan(lo[i]) and math.isnan(hi[i])
        else:
            assert (p[i], lo[i], hi[i]) == pytest.approx((w.p, w.lo, w.hi))


def test_mean_ci_sums_matches_mean_ci_and_its_edges():
    """The grouped-SQL path gets a group's count, sum and sum of squares; the interval must be `mean_ci`'s."""
    groups = [[-5.0, 0.0, -0.5, -5.0], [2.5], [], [1.0, 1.0, 1.0], list(np.linspace(-3, 4, 101))]
    n = [len(g) for g in groups]
    s = [sum(g) for g in groups]
    q = [sum(x * x for x in g) for g in groups]
    mean, sd, lo, hi = stats.mean_ci_sums(n, s, q)
    for i, g in enumerate(groups):
        ref = stats.mean_ci(g)
        for got, want in ((mean[i], ref.mean), (sd[i], ref.sd), (lo[i], ref.lo), (hi[i], ref.hi)):
            assert (math.isnan(got) and math.isnan(want)) or got == pytest.approx(want, rel=1e-12, abs=1e-12)
    assert sd[3] == 0.0  # no spread: the variance is clipped at 0, never a NaN from -1e-17


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ols_fit_equals_statsmodels(seed):
    """The cross-product OLS the page uses against statsmodels' own fit, on scales like the page's covariates
    (baseline 0-10, age 20-90, weeks 0-200, adherence 0-1, overlapping 0/1 type indicators)."""
    rng = np.random.default_rng(seed)
    n = 400
    X = np.column_stack(
        [
            np.ones(n),
            rng.integers(0, 2, n),
            rng.integers(0, 2, n),
            rng.uniform(0, 10, n).round(1),
            rng.integers(20, 90, n),
            rng.uniform(0, 200, n),
            rng.uniform(0, 1, n),
        ]
    ).astype(float)
    y = X @ np.array([1.0, -1.0, -0.5, -0.4, 0.01, 0.002, -2.0]) + rng.normal(0, 1.5, n)
    ours = stats.ols_fit(y, X)
    ref = sm.OLS(y, X).fit()
    np.testing.assert_allclose(ours.params, ref.params, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ours.cov_params(), ref.cov_params(), rtol=1e-8, atol=1e-14)
    np.testing.assert_allclose(ours.conf_int(0.05), ref.conf_int(0.05), rtol=1e-8)
    np.testing.assert_allclose(ours.pvalues, ref.pvalues, rtol=1e-6, atol=1e-300)
    np.testing.assert_allclose(ours.fittedvalues, ref.fittedvalues, rtol=1e-9)
    assert ours.df_resid == ref.df_resid


@pytest.mark.filterwarnings("ignore:The design matrix is rank-deficient")  # statsmodels says so, as it should
def test_ols_fit_on_collinear_types_equals_statsmodels():
    """Type indicators that add up to the intercept (every episode counts for exactly one of two types) or repeat
    each other: statsmodels' pseudo-inverse answer (minimum norm), not a solution with the intercept left out."""
    rng = np.random.default_rng(7)
    n = 200
    a = rng.integers(0, 2, n).astype(float)
    c = rng.integers(0, 2, n).astype(float)
    age = rng.integers(20, 90, n).astype(float)
    y = 1.0 - 0.8 * a + 0.3 * c + 0.01 * age + rng.normal(0, 1, n)
    for X in (
        np.column_stack([np.ones(n), a, 1 - a, c, age]),  # a + b = 1
        np.column_stack([np.ones(n), a, c, c, age]),  # the same column twice
    ):
        ours = stats.ols_fit(y, X)
        ref = sm.OLS(y, X).fit()
        np.testing.assert_allclose(ours.params, ref.params, rtol=1e-7, atol=1e-9)
        np.testing.assert_allclose(ours.cov_params(), ref.cov_params(), rtol=1e-6, atol=1e-10)
        np.testing.assert_allclose(ours.fittedvalues, ref.fittedvalues, rtol=1e-9)
        assert ours.df_resid == ref.df_resid
