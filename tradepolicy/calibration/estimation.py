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
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import statsmodels.api as sm
import xarray as xr
from statsmodels.tsa.ar_model import AutoReg


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

    def conf_int(self, alpha: float = 0.05) -> pd.DataFrame:
        """Normal confidence intervals ``[lower, upper]`` per parameter."""
        from scipy.stats import norm

        z = norm.ppf(1 - alpha / 2)
        return pd.DataFrame(
            {"lower": self.params - z * self.bse, "upper": self.params + z * self.bse}
        )

    def summary_frame(self) -> pd.DataFrame:
        """Coefficient table (``coef, std err, z, [0.025, 0.975]``), as in ``summary2``."""
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
