"""Estimation recipes (statsmodels) and their storage as xarray Datasets.

Every estimate keeps what a reader needs to judge it: parameters, standard errors, the full
covariance, the method, the sample and a hash of the input data. Estimates are saved as
netCDF Datasets (never pickles) and read back with :func:`Estimate.from_dataset`.

Recipes:

- :func:`fit_price_process`: an autoregression (``AutoReg``) on log real prices, used later
  for Monte Carlo price paths;
- :func:`fit_elasticity`: a log-linear regression with optional lags and fixed effects and
  HAC (Newey–West) standard errors;
- :func:`combine_with_prior`: precision weighting of an estimate with a literature prior.

Results must not depend on the last bits of a BLAS or library version. A standard error that
is not finite or below ``SE_NOT_IDENTIFIED`` times its coefficient is machine noise around a
degenerate (unidentified) variance; :class:`Estimate` stores it, and the covariances of that
parameter, as NaN and prints it as "not identified"; an estimate that is itself round-off
around zero with such a standard error (below ``ROUND_OFF``, a coefficient a perfect fit leaves
at 0) is stored as 0. :func:`datasets_match` compares stored
estimates numerically (relative tolerance ``RTOL``) instead of byte for byte, and
:func:`fmt_stat` prints statistics with ``STAT_DIGITS`` significant digits.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import statsmodels.api as sm
import xarray as xr
from statsmodels.tsa.ar_model import AutoReg

#: a standard error below this multiple of |coefficient| is read as not identified (machine
#: noise around a variance that is zero in exact arithmetic)
SE_NOT_IDENTIFIED = 1e-10
#: an estimate and standard error both below this in absolute value are round-off around an
#: exact zero (a coefficient a perfect fit leaves at 0): stored as 0, not identified, so that
#: the result does not depend on the machine's BLAS
ROUND_OFF = 1e-10
#: relative tolerance within which two stored estimates are the same result
RTOL = 1e-9
#: significant digits of every printed statistic (coefficients, standard errors, z, bounds)
STAT_DIGITS = 4
NOT_IDENTIFIED = "not identified"


def identified(coef: np.ndarray | float, se: np.ndarray | float) -> np.ndarray:
    """Whether each standard error is usable: finite, positive and not machine noise.

    A robust variance that is zero in exact arithmetic (e.g. a PPML constant when the only
    off-diagonal flow is fitted exactly) comes out as 0, 1e-16 or NaN depending on the BLAS;
    all of these are "not identified".
    """
    coef, se = np.asarray(coef, float), np.asarray(se, float)
    with np.errstate(invalid="ignore"):
        return np.isfinite(se) & (se > SE_NOT_IDENTIFIED * np.abs(coef)) & (se > 0)


def fmt_stat(x: float, digits: int = STAT_DIGITS) -> str:
    """A statistic with ``digits`` significant digits; "–" when it is not finite."""
    return f"{x:.{digits}g}" if math.isfinite(x) else "–"


def fmt_se(coef: float, se: float, digits: int = STAT_DIGITS) -> str:
    """A standard error, or "not identified" for NaN, infinite or machine-noise values."""
    return fmt_stat(se, digits) if bool(identified(coef, se)) else NOT_IDENTIFIED


def data_hash(frame: pd.DataFrame | pd.Series) -> str:
    """A stable SHA-256 of the values and labels of the input data."""
    obj = frame.to_frame() if isinstance(frame, pd.Series) else frame
    text = obj.to_csv(lineterminator="\n", float_format="%.17g")
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class Estimate:
    """One estimated parameter vector in the statsmodels results spirit."""

    name: str
    params: pd.Series
    bse: pd.Series
    cov: pd.DataFrame
    method: str
    sample: str
    nobs: int
    data_hash: str
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # an estimate that is round-off around zero, with a round-off standard error (a perfect
        # fit), is 0: its digits differ from one BLAS to another
        coef, se = self.params.to_numpy(float), self.bse.to_numpy(float)
        with np.errstate(invalid="ignore"):
            zero = (np.abs(coef) < ROUND_OFF) & ~(np.abs(se) >= ROUND_OFF)
        if zero.any():
            self.params = self.params.astype(float).copy()
            self.params[self.params.index[zero]] = 0.0
            self.bse = self.bse.astype(float).copy()
            self.bse[self.params.index[zero]] = np.nan
        # an unidentified standard error and its covariances are noise: store them as NaN
        bad = ~identified(self.params.to_numpy(float), self.bse.to_numpy(float))
        if bad.any():
            names = self.params.index[bad]
            self.bse = self.bse.astype(float).copy()
            self.bse[names] = np.nan
            self.cov = self.cov.astype(float).copy()
            self.cov.loc[names, :] = np.nan
            self.cov.loc[:, names] = np.nan

    @property
    def identified(self) -> pd.Series:
        """Whether each parameter has a usable standard error."""
        return pd.Series(identified(self.params, self.bse), index=self.params.index)

    def conf_int(self, alpha: float = 0.05) -> pd.DataFrame:
        """Normal confidence intervals ``[lower, upper]`` per parameter."""
        from scipy.stats import norm

        z = norm.ppf(1 - alpha / 2)
        return pd.DataFrame(
            {"lower": self.params - z * self.bse, "upper": self.params + z * self.bse}
        )

    def summary_frame(self) -> pd.DataFrame:
        """Coefficient table (``coef, std err, z, [0.025, 0.975]``), as in ``summary2``.

        Parameters that are not identified have NaN in every column but ``coef``.
        """
        ci = self.conf_int()
        with np.errstate(divide="ignore", invalid="ignore"):
            z = self.params / self.bse
        return pd.DataFrame(
            {
                "coef": self.params,
                "std err": self.bse,
                "z": z,
                "[0.025": ci["lower"],
                "0.975]": ci["upper"],
            }
        )

    def summary_strings(self) -> pd.DataFrame:
        """:meth:`summary_frame` as printed: ``STAT_DIGITS`` significant digits, an
        unidentified standard error as "not identified" and its z and bounds as "–"."""
        frame = self.summary_frame().map(fmt_stat)
        frame.loc[~self.identified, "std err"] = NOT_IDENTIFIED
        return frame

    def to_dataset(self) -> xr.Dataset:
        """The estimate as a Dataset (dims ``param``, ``param_2``) with provenance attrs."""
        names = list(self.params.index)
        ds = xr.Dataset(
            {
                "estimate": ("param", self.params.to_numpy(float), {"long_name": "estimate"}),
                "std_error": ("param", self.bse.to_numpy(float), {"long_name": "standard error"}),
                "covariance": (
                    ("param", "param_2"),
                    self.cov.loc[names, names].to_numpy(float),
                    {"long_name": "covariance of the estimates"},
                ),
            },
            coords={
                "param": ("param", np.array(names, dtype=object)),
                "param_2": ("param_2", np.array(names, dtype=object)),
            },
        )
        ds.attrs.update(
            {
                "name": self.name,
                "method": self.method,
                "sample": self.sample,
                "nobs": int(self.nobs),
                "data_hash": self.data_hash,
                "extra": json.dumps(self.extra, sort_keys=True),
            }
        )
        return ds

    @classmethod
    def from_dataset(cls, ds: xr.Dataset) -> Estimate:
        names = [str(n) for n in ds["param"].values]
        return cls(
            name=str(ds.attrs["name"]),
            params=pd.Series(ds["estimate"].values, index=names),
            bse=pd.Series(ds["std_error"].values, index=names),
            cov=pd.DataFrame(ds["covariance"].values, index=names, columns=names),
            method=str(ds.attrs["method"]),
            sample=str(ds.attrs["sample"]),
            nobs=int(ds.attrs["nobs"]),
            data_hash=str(ds.attrs["data_hash"]),
            extra=json.loads(str(ds.attrs["extra"])),
        )


def _match_arrays(name: str, a: np.ndarray, b: np.ndarray, rtol: float) -> bool:
    if a.shape != b.shape:
        return False
    if a.dtype.kind not in "fc" or b.dtype.kind not in "fc":
        return bool(np.array_equal(a, b))
    nan_a, nan_b = np.isnan(a), np.isnan(b)
    if not np.array_equal(nan_a, nan_b):
        return False
    scale = np.maximum(np.abs(a), np.abs(b))
    if name == "covariance" and a.ndim == 2 and a.shape[0] == a.shape[1]:
        # covariances are compared on the scale of the variances (as correlations)
        sd = np.sqrt(np.maximum(np.abs(np.diag(a)), np.abs(np.diag(b))))
        scale = np.outer(sd, sd)
    with np.errstate(invalid="ignore"):
        close = np.isfinite(scale) & (np.abs(a - b) <= rtol * scale)
    ok = nan_a | (a == b) | close
    return bool(ok.all())


def values_match(a: Any, b: Any, rtol: float = RTOL) -> bool:
    """Nested dicts/lists of plain values equal, numbers up to ``rtol`` (relative)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(values_match(a[k], b[k], rtol) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(values_match(x, y, rtol) for x, y in zip(a, b, strict=True))
    if isinstance(a, bool) or isinstance(b, bool) or isinstance(a, str) or isinstance(b, str):
        return a == b and type(a) is type(b)
    if isinstance(a, int | float) and isinstance(b, int | float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b or abs(a - b) <= rtol * max(abs(a), abs(b))
    return a == b


def datasets_match(a: xr.Dataset, b: xr.Dataset, rtol: float = RTOL) -> bool:
    """Whether two stored estimates are the same result up to floating-point noise.

    Variables, dimensions, coordinates and text attributes must be equal; numbers must agree
    to ``rtol`` relative to their size (covariances relative to the product of the standard
    deviations) with NaN in the same places. The JSON ``extra`` attribute is compared the
    same way. Any change of data (the ``data_hash``), sample or method is a mismatch.
    """
    if set(a.data_vars) != set(b.data_vars) or set(a.coords) != set(b.coords):
        return False
    for name in a.coords:
        if not _match_arrays(str(name), a[name].values, b[name].values, rtol):
            return False
    for name in a.data_vars:
        va, vb = a[name], b[name]
        if va.dims != vb.dims or va.attrs != vb.attrs:
            return False
        if not _match_arrays(str(name), va.values, vb.values, rtol):
            return False
    if a.attrs.keys() != b.attrs.keys():
        return False
    for key, x in a.attrs.items():
        y = b.attrs[key]
        if key == "extra":
            if not values_match(json.loads(str(x)), json.loads(str(y)), rtol):
                return False
        elif not values_match(_plain(x), _plain(y), rtol):
            return False
    return True


def _plain(x: Any) -> Any:
    """A netCDF attribute as a plain Python value (numpy scalars and arrays unwrapped)."""
    if isinstance(x, np.ndarray):
        return [_plain(v) for v in x.tolist()]
    if isinstance(x, np.generic):
        return x.item()
    return x


def _from_results(name: str, res, method: str, sample: str, digest: str, **extra) -> Estimate:
    params = pd.Series(np.asarray(res.params), index=list(res.model.exog_names))
    cov = pd.DataFrame(np.asarray(res.cov_params()), index=params.index, columns=params.index)
    return Estimate(
        name=name,
        params=params,
        bse=pd.Series(np.asarray(res.bse), index=params.index),
        cov=cov,
        method=method,
        sample=sample,
        nobs=int(res.nobs),
        data_hash=digest,
        extra=extra,
    )


def fit_price_process(prices: pd.Series, lags: int = 1, name: str = "price") -> Estimate:
    """AR(``lags``) with a constant on log prices: ``ln p_t = c + Σ φ_i ln p_{t−i} + e_t``.

    ``prices`` is indexed by period (years or month starts) and must be positive. The
    innovation standard deviation is in ``extra["sigma"]``.
    """
    if (prices <= 0).any() or prices.isna().any():
        raise ValueError(f"{name}: prices must be positive and complete")
    y = np.log(prices.astype(float)).reset_index(drop=True).rename("ln_price")
    if y.size < lags + 5:
        raise ValueError(f"{name}: {y.size} observations are too few for AR({lags})")
    res = AutoReg(y, lags=lags, trend="c").fit()
    sample = f"{prices.index[0]}..{prices.index[-1]} ({prices.size} periods)"
    return _from_results(
        name,
        res,
        f"statsmodels AutoReg(lags={lags}, trend='c') on log prices",
        sample,
        data_hash(prices),
        sigma=float(np.sqrt(res.sigma2)),
    )


def fit_elasticity(
    data: pd.DataFrame,
    y: str,
    x: list[str],
    entity: str | None = None,
    hac_lags: int = 1,
    name: str = "elasticity",
) -> Estimate:
    """OLS of ``y`` on ``x`` (logs already taken) with entity fixed effects and HAC errors.

    With ``entity`` given, a dummy per entity (one dropped) absorbs level differences, as in
    a country panel. Standard errors are Newey–West with ``hac_lags``.
    """
    cols = [y, *x] + ([entity] if entity else [])
    missing = [c for c in cols if c not in data.columns]
    if missing:
        raise ValueError(f"{name}: columns {missing} not in the data")
    frame = data[cols].dropna()
    exog = sm.add_constant(frame[x].astype(float))
    if entity:
        dummies = pd.get_dummies(frame[entity], prefix="fe", drop_first=True, dtype=float)
        exog = pd.concat([exog, dummies], axis=1)
    res = sm.OLS(frame[y].astype(float), exog).fit(cov_type="HAC", cov_kwds={"maxlags": hac_lags})
    fe = f", {entity} fixed effects" if entity else ""
    return _from_results(
        name,
        res,
        f"statsmodels OLS, HAC (Newey-West, {hac_lags} lags){fe}",
        f"{len(frame)} observations",
        data_hash(frame),
        r_squared=float(res.rsquared),
    )


def combine_with_prior(
    estimate: float, std_error: float, prior: float, prior_sd: float
) -> tuple[float, float, float]:
    """Precision-weighted mean of an estimate and a prior.

    Returns ``(mean, sd, weight_on_estimate)`` with weights proportional to 1/variance: a
    noisy estimate (large standard error) leaves the prior almost unchanged.
    """
    if std_error <= 0 or prior_sd <= 0:
        raise ValueError("standard errors must be positive")
    w_est, w_prior = 1.0 / std_error**2, 1.0 / prior_sd**2
    weight = w_est / (w_est + w_prior)
    mean = weight * estimate + (1.0 - weight) * prior
    return float(mean), float(np.sqrt(1.0 / (w_est + w_prior))), float(weight)
