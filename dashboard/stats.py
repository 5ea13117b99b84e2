"""Statistics helpers for the outcomes page: plain functions of numbers and DataFrames, no I/O.

- `mean_ci`: mean with a t-based confidence interval (the usual "mean change, 95 % CI").
- `wilson`: a proportion with the Wilson score interval (good at small n and at 0 % / 100 %, unlike Wald).
- `adjusted_means`: risk-adjusted mean outcome per exercise type from one OLS model (`ols_fit`, checked against
  statsmodels), with the
  type indicators not mutually exclusive (an episode can count for several types).
- `indirect_standardised`: observed - expected per therapist or clinic (expected from an OLS of the outcome on the
  case mix), the usual way to benchmark providers on observational data.
- `percentile_bands`: 25/50/75th percentiles of a value by week.

tests/dashboard/test_outcomes_stats.py checks each against hand-computed values and against scipy/statsmodels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps


@dataclass(frozen=True)
class MeanCI:
    n: int
    mean: float
    sd: float
    lo: float
    hi: float

    @property
    def half_width(self) -> float:
        return (self.hi - self.lo) / 2


NAN = float("nan")


def mean_ci(values: Sequence[float] | pd.Series | np.ndarray, level: float = 0.95) -> MeanCI:
    """Mean of the non-missing values with a Student-t interval: mean +- t(level, n-1) x sd / sqrt(n).

    n = 0 gives all NaN; n = 1 gives the mean and a NaN interval (no spread to estimate).
    """
    x = np.asarray(pd.to_numeric(pd.Series(values, dtype="float64"), errors="coerce").dropna(), dtype=float)
    n = int(x.size)
    if n == 0:
        return MeanCI(0, NAN, NAN, NAN, NAN)
    mean = float(x.mean())
    if n == 1:
        return MeanCI(1, mean, NAN, NAN, NAN)
    sd = float(x.std(ddof=1))
    half = float(sps.t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n)
    return MeanCI(n, mean, sd, mean - half, mean + half)


@dataclass(frozen=True)
class Proportion:
    k: int
    n: int
    p: float
    lo: float
    hi: float


def wilson(k: int, n: int, level: float = 0.95) -> Proportion:
    """k successes out of n with the Wilson score interval. n = 0 gives NaN."""
    k, n = int(k), int(n)
    if k < 0 or k > n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    if n == 0:
        return Proportion(0, 0, NAN, NAN, NAN)
    z = float(sps.norm.ppf(0.5 + level / 2))
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # at k = 0 or k = n the bound is exactly 0 or 1; floating point can miss by 1e-17
    lo = 0.0 if k == 0 else max(0.0, centre - half)
    hi = 1.0 if k == n else min(1.0, centre + half)
    return Proportion(k, n, p, lo, hi)


def mean_ci_groups(values: pd.Series, groups: pd.Series, level: float = 0.95) -> pd.DataFrame:
    """`mean_ci` per group, vectorised: columns n, mean, sd, lo, hi indexed by group (groups with no value left
    out). Same numbers as calling `mean_ci` on each group."""
    v = pd.to_numeric(values, errors="coerce").astype(float)
    if isinstance(groups, pd.Series):
        out = _mean_sd_by_codes(v, groups)
    else:  # several keys: pandas groupby
        g = v.groupby(groups, sort=True)
        out = pd.DataFrame({"n": g.count(), "mean": g.mean(), "sd": g.std(ddof=1)})
    out = out[out["n"] > 0]
    dof = (out["n"] - 1).where(out["n"] > 1)
    tcrit = pd.Series(sps.t.ppf(0.5 + level / 2, dof.to_numpy(dtype=float)), index=out.index)
    half = tcrit * out["sd"] / np.sqrt(out["n"])
    out["lo"] = out["mean"] - half
    out["hi"] = out["mean"] + half
    out["n"] = out["n"].astype(int)
    return out


def _mean_sd_by_codes(v: pd.Series, groups: pd.Series) -> pd.DataFrame:
    """n, mean and sd (ddof 1, two passes) per group of one key, with numpy: grouping 100k episodes by 2,000
    therapists through pandas' groupby took ~20 ms per statistic. Null keys and null values are left out."""
    codes, uniques = pd.factorize(groups, sort=True)
    x = v.to_numpy(dtype=float)
    ok = (codes >= 0) & ~np.isnan(x)
    c, x = codes[ok], x[ok]
    k = len(uniques)
    n = np.bincount(c, minlength=k).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.bincount(c, weights=x, minlength=k) / n
        d = x - mean[c]
        sd = np.where(n > 1, np.sqrt(np.bincount(c, weights=d * d, minlength=k) / (n - 1)), np.nan)
    index = pd.Index(uniques, name=groups.name)
    return pd.DataFrame({"n": n, "mean": mean, "sd": sd}, index=index)


def mean_ci_sums(n: Any, total: Any, sumsq: Any, level: float = 0.95) -> tuple[np.ndarray, ...]:
    """`mean_ci` from a group's count, sum and sum of squares (what SQL aggregates return), vectorised: (mean, sd,
    lo, hi). n = 0 gives NaN; n = 1 the mean and NaN for the rest, as `mean_ci`.

    The variance is (sumsq - sum^2 / n) / (n - 1), clipped at 0: for outcome changes (|x| <= 100, n <= 10^6) the
    rounding error is far below the digits shown.
    """
    n = np.asarray(n, dtype=float)
    total = np.asarray(total, dtype=float)
    sumsq = np.asarray(sumsq, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, total / n, np.nan)
        var = np.where(n > 1, np.maximum((sumsq - total * total / n) / (n - 1), 0.0), np.nan)
        sd = np.sqrt(var)
        tcrit = sps.t.ppf(0.5 + level / 2, np.where(n > 1, n - 1, np.nan))
        half = tcrit * sd / np.sqrt(n)
    return mean, sd, mean - half, mean + half


def wilson_arrays(k: Any, n: Any, level: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`wilson` over arrays of k and n: (p, lo, hi), NaN where n = 0."""
    k = np.asarray(k, dtype=float)
    n = np.asarray(n, dtype=float)
    z = float(sps.norm.ppf(0.5 + level / 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(n > 0, k / n, np.nan)
        denom = 1 + z * z / n
        centre = (p + z * z / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
        lo = np.where(k == 0, 0.0, np.maximum(0.0, centre - half))
        hi = np.where(k == n, 1.0, np.minimum(1.0, centre + half))
    nan = n <= 0
    return p, np.where(nan, np.nan, lo), np.where(nan, np.nan, hi)


def _design(
    df: pd.DataFrame, outcome: str, terms: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """(y, X with an intercept column, the complete-case rows as floats), built with numpy (pandas' astype and
    dropna over 100k rows cost more than the fit)."""
    cols = [outcome, *terms]
    m = np.column_stack([df[c].to_numpy(dtype=float, na_value=np.nan) for c in cols]) if len(cols) else None
    keep = ~np.isnan(m).any(axis=1)
    m = m[keep]
    data = pd.DataFrame(m, columns=cols, index=df.index[keep])
    X = np.column_stack([np.ones(len(m)), m[:, 1:]]) if len(m) else np.empty((0, 0))
    return m[:, 0], X, data


@dataclass(frozen=True)
class OLSResult:
    """The OLS estimates the page uses, with the names statsmodels' RegressionResults gives them (params,
    cov_params(), conf_int(alpha), pvalues, fittedvalues, df_resid); nonrobust covariance, as statsmodels' default."""

    params: np.ndarray  # intercept first, then the terms
    cov: np.ndarray
    df_resid: float
    fittedvalues: np.ndarray

    def cov_params(self) -> np.ndarray:
        return self.cov

    @property
    def bse(self) -> np.ndarray:
        return np.sqrt(np.diag(self.cov))

    def conf_int(self, alpha: float = 0.05) -> np.ndarray:
        t = float(sps.t.ppf(1 - alpha / 2, self.df_resid))
        return np.column_stack([self.params - t * self.bse, self.params + t * self.bse])

    @property
    def pvalues(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return 2 * sps.t.sf(np.abs(self.params / self.bse), self.df_resid)


def ols_fit(y: np.ndarray, X: np.ndarray) -> OLSResult:
    """OLS of y on X (first column the intercept) from cross-products.

    The same estimator as `statsmodels.api.OLS(y, X).fit()` (tests compare them to 1e-9, full-rank and collinear
    designs), computed from the p x p matrix X'X instead of a factorisation of the n x p design: statsmodels 0.15
    runs a QR and a pseudo-inverse of the whole design per fit, ~0.3 s at 100k episodes on this machine, four fits
    per filter change; this is a few milliseconds. Full rank: the terms are centred first, which keeps X'X well
    conditioned (baseline, age and weeks are on different scales). Rank-deficient (type indicators that add up to
    a constant or to each other): the minimum-norm solution over the whole design, as statsmodels' pseudo-inverse
    gives; coefficients of aliased terms are then not individually estimable, as with statsmodels.
    """
    n, p = X.shape
    Z = X[:, 1:]
    z_mean = Z.mean(axis=0)
    y_mean = float(y.mean())
    Zc = Z - z_mean
    A = Zc.T @ Zc
    if np.linalg.matrix_rank(A, hermitian=True) < p - 1:
        return _ols_min_norm(y, X)
    A_inv = np.linalg.inv(A)
    slopes = A_inv @ (Zc.T @ (y - y_mean))
    fitted = y_mean + Zc @ slopes
    resid = y - fitted
    df_resid = float(n - p)
    scale = float(resid @ resid) / df_resid
    cov = np.empty((p, p))
    cov[1:, 1:] = scale * A_inv
    cov[1:, 0] = cov[0, 1:] = -scale * (A_inv @ z_mean)
    cov[0, 0] = scale * (1.0 / n + float(z_mean @ A_inv @ z_mean))
    params = np.concatenate([[y_mean - float(z_mean @ slopes)], slopes])
    return OLSResult(params, cov, df_resid, fitted)


def _ols_min_norm(y: np.ndarray, X: np.ndarray) -> OLSResult:
    """Rank-deficient OLS: pinv(X'X) X'y, the minimum-norm least-squares solution (= pinv(X) y)."""
    G_inv = np.linalg.pinv(X.T @ X, hermitian=True)
    params = G_inv @ (X.T @ y)
    fitted = X @ params
    resid = y - fitted
    df_resid = float(len(y) - np.linalg.matrix_rank(X))
    return OLSResult(params, float(resid @ resid) / df_resid * G_inv, df_resid, fitted)


@dataclass(frozen=True)
class AdjustedFit:
    """An OLS fit of `outcome` on `terms` (complete cases), and the rows it used."""

    result: OLSResult | None
    terms: tuple[str, ...]
    data: pd.DataFrame

    @property
    def n(self) -> int:
        return len(self.data)


def ols(df: pd.DataFrame, outcome: str, terms: Sequence[str]) -> AdjustedFit:
    """OLS with an intercept over the complete cases; terms that do not vary are dropped (they are collinear
    with the intercept). No fit (result None) when there are fewer rows than parameters + 2."""
    y, X, data = _design(df, outcome, terms)
    varies = X.max(axis=0) > X.min(axis=0) if len(data) else np.zeros(len(terms) + 1, dtype=bool)
    kept = tuple(t for t, v in zip(terms, varies[1:], strict=True) if v)
    if kept != tuple(terms):  # the complete cases can change without the dropped terms
        y, X, data = _design(df, outcome, kept)
    if len(data) < len(kept) + 3:
        return AdjustedFit(None, kept, data)
    return AdjustedFit(ols_fit(y, X), kept, data)


def adjusted_means(
    df: pd.DataFrame,
    outcome: str,
    type_columns: Sequence[str],
    covariates: Sequence[str],
    level: float = 0.95,
) -> pd.DataFrame:
    """Risk-adjusted mean `outcome` per exercise type.

    One model: outcome ~ 1 + [one 0/1 column per type] + covariates (complete cases). The adjusted mean for type t is
    the model's prediction with t's indicator at 1 and every other column (other types, covariates) at its mean in
    the fitted data: the expected outcome of an average patient of this case mix who received t (least-squares
    means). Its interval comes from the covariance of the coefficients. Columns: type, n_model, adjusted, lo, hi,
    coef (difference vs. not receiving t, others held fixed), coef_lo, coef_hi, p_value.
    """
    cols = ["type", "n_model", "adjusted", "lo", "hi", "coef", "coef_lo", "coef_hi", "p_value"]
    fit = ols(df, outcome, [*type_columns, *covariates])
    if fit.result is None:
        return pd.DataFrame(columns=cols)
    res = fit.result
    names = ["const", *fit.terms]
    terms = fit.data[list(fit.terms)].to_numpy(dtype=float)
    means = np.concatenate([[1.0], terms.mean(axis=0)])
    counts = dict(zip(fit.terms, terms.sum(axis=0), strict=True))
    cov = np.asarray(res.cov_params())
    params = np.asarray(res.params)
    tcrit = float(sps.t.ppf(0.5 + level / 2, res.df_resid))
    ci = np.asarray(res.conf_int(alpha=1 - level))
    rows = []
    for t in type_columns:
        if t not in fit.terms:
            continue
        j = names.index(t)
        x = means.copy()
        x[j] = 1.0
        est = float(x @ params)
        se = math.sqrt(float(x @ cov @ x))
        rows.append(
            {
                "type": t,
                "n_model": int(counts[t]),
                "adjusted": est,
                "lo": est - tcrit * se,
                "hi": est + tcrit * se,
                "coef": float(params[j]),
                "coef_lo": float(ci[j, 0]),
                "coef_hi": float(ci[j, 1]),
                "p_value": float(np.asarray(res.pvalues)[j]),
            }
        )
    return pd.DataFrame(rows, columns=cols)


def indirect_standardised(
    df: pd.DataFrame,
    outcome: str,
    group: str,
    covariates: Sequence[str],
    level: float = 0.95,
    fit: AdjustedFit | None = None,
) -> pd.DataFrame:
    """Per group (therapist or clinic): observed mean, expected mean (from an OLS of the outcome on the covariates
    over all groups) and the adjusted mean = overall mean + (observed - expected), with a t interval on the
    group's residuals. Columns: group, n_model, observed, expected, adjusted, lo, hi. `fit`: that OLS when the
    caller has it already (`ols(df, outcome, covariates)`; therapists and clinics share it)."""
    cols = ["group", "n_model", "observed", "expected", "adjusted", "lo", "hi"]
    fit = ols(df, outcome, covariates) if fit is None else fit
    if fit.result is None:
        return pd.DataFrame(columns=cols)
    y = fit.data[outcome].to_numpy(dtype=float)
    expected = np.asarray(fit.result.fittedvalues, dtype=float)
    groups = df.loc[fit.data.index, group]
    overall = float(y.mean())
    resid = mean_ci_groups(pd.Series(y - expected, index=fit.data.index), groups, level)
    codes, uniques = pd.factorize(groups, sort=True)
    ok = codes >= 0
    n = np.bincount(codes[ok], minlength=len(uniques))
    with np.errstate(invalid="ignore", divide="ignore"):
        observed = pd.Series(np.bincount(codes[ok], weights=y[ok], minlength=len(uniques)) / n, index=uniques)
        mean_expected = pd.Series(
            np.bincount(codes[ok], weights=expected[ok], minlength=len(uniques)) / n, index=uniques
        )
    out = pd.DataFrame(
        {
            "group": resid.index,
            "n_model": resid["n"].to_numpy(),
            "observed": observed.reindex(resid.index).to_numpy(),
            "expected": mean_expected.reindex(resid.index).to_numpy(),
            "adjusted": overall + resid["mean"].to_numpy(),
            "lo": overall + resid["lo"].to_numpy(),
            "hi": overall + resid["hi"].to_numpy(),
        }
    )
    return out[cols]


def trend_line(x: Sequence[float], y: Sequence[float]) -> tuple[float, float] | None:
    """Least-squares slope and intercept of y on x (complete pairs); None with fewer than 3 pairs or no spread."""
    pairs = pd.DataFrame({"x": x, "y": y}).apply(pd.to_numeric, errors="coerce").dropna()
    if len(pairs) < 3 or pairs["x"].nunique() < 2:
        return None
    slope, intercept = np.polyfit(pairs["x"], pairs["y"], 1)
    return float(slope), float(intercept)


def percentile_bands(
    df: pd.DataFrame, by: str, value: str, percentiles: Sequence[float] = (25, 50, 75), min_n: int = 5
) -> pd.DataFrame:
    """Percentiles of `value` per `by` (linear interpolation, as numpy), with n; groups under `min_n` dropped."""
    names = [f"p{int(p)}" for p in percentiles]
    if df.empty:
        return pd.DataFrame(columns=[by, "n", *names])
    g = df.groupby(by)[value]
    out = g.quantile([p / 100 for p in percentiles]).unstack()
    out.columns = names
    out.insert(0, "n", g.size())
    out = out[out["n"] >= min_n].reset_index()
    return out


__all__ = [
    "MeanCI",
    "Proportion",
    "AdjustedFit",
    "mean_ci",
    "mean_ci_groups",
    "mean_ci_sums",
    "wilson",
    "wilson_arrays",
    "ols",
    "adjusted_means",
    "indirect_standardised",
    "trend_line",
    "percentile_bands",
]
