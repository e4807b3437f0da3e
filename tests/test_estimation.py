"""Estimation recipes recover known parameters from simulated data; estimates round-trip."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from tradepolicy.calibration.estimation import (
    Estimate,
    combine_with_prior,
    data_hash,
    datasets_match,
    fit_elasticity,
    fit_price_process,
)


def simulated_prices(n: int, c: float, phi: float, sigma: float, seed: int) -> pd.Series:
    rng = np.random.default_rng(seed)
    x = np.empty(n)
    x[0] = c / (1 - phi)
    for t in range(1, n):
        x[t] = c + phi * x[t - 1] + sigma * rng.standard_normal()
    return pd.Series(np.exp(x), index=pd.RangeIndex(1960, 1960 + n, name="year"))


def test_price_process_recovers_an_ar1():
    c, phi, sigma = 1.5, 0.8, 0.1
    est = fit_price_process(simulated_prices(400, c, phi, sigma, seed=1), name="test")
    assert abs(est.params.iloc[1] - phi) < 4 * est.bse.iloc[1]
    assert abs(est.params.iloc[0] - c) < 4 * est.bse.iloc[0]
    # the innovation sd is estimated with standard error ≈ σ/√(2n)
    assert abs(est.extra["sigma"] - sigma) < 4 * sigma / np.sqrt(2 * 399)
    assert est.nobs == 399
    ci = est.conf_int()
    assert (ci["lower"] < est.params).all() and (est.params < ci["upper"]).all()
    table = est.summary_frame()
    assert list(table.columns) == ["coef", "std err", "z", "[0.025", "0.975]"]


def test_elasticity_regression_with_fixed_effects_and_hac():
    rng = np.random.default_rng(4)
    rows = []
    for k, level in enumerate([0.0, 1.0, -0.5, 2.0]):
        lp = rng.normal(0, 0.3, 60)
        e = rng.normal(0, 0.05, 60)
        rows.append(
            pd.DataFrame(
                {"country": f"C{k}", "ln_q": level + 0.6 * lp + e, "ln_p": lp, "t": range(60)}
            )
        )
    panel = pd.concat(rows, ignore_index=True)
    est = fit_elasticity(panel, "ln_q", ["ln_p"], entity="country", hac_lags=2, name="supply")
    assert abs(est.params["ln_p"] - 0.6) < 4 * est.bse["ln_p"]
    assert est.bse["ln_p"] < 0.05
    assert "HAC" in est.method and "country fixed effects" in est.method
    # without the fixed effects the level differences would bias nothing here (lp is
    # independent of levels) but inflate the residual variance
    pooled = fit_elasticity(panel, "ln_q", ["ln_p"], name="pooled")
    assert pooled.bse["ln_p"] > est.bse["ln_p"]
    with pytest.raises(ValueError, match="not in the data"):
        fit_elasticity(panel, "ln_q", ["ln_x"])


def test_precision_weighting():
    mean, sd, w = combine_with_prior(1.0, 0.1, 0.0, 0.1)
    assert (mean, w) == pytest.approx((0.5, 0.5))
    assert sd == pytest.approx(0.1 / np.sqrt(2))
    mean, _, w = combine_with_prior(1.0, 10.0, 0.3, 0.1)  # a useless estimate
    assert w < 1e-3 and mean == pytest.approx(0.3, abs=1e-3)
    with pytest.raises(ValueError):
        combine_with_prior(1.0, 0.0, 0.3, 0.1)


def test_estimates_round_trip_through_netcdf(tmp_path):
    est = fit_price_process(simulated_prices(60, 1.0, 0.7, 0.2, seed=2), lags=2, name="p")
    ds = est.to_dataset()
    path = tmp_path / "p.nc"
    ds.to_netcdf(path)
    back = xr.open_dataset(path)
    xr.testing.assert_identical(back.load(), ds)
    again = Estimate.from_dataset(back)
    pd.testing.assert_series_equal(again.params, est.params)
    pd.testing.assert_frame_equal(again.cov, est.cov)
    assert again.extra == est.extra and again.data_hash == est.data_hash
    back.close()


def test_data_hash_is_stable_and_sensitive():
    s = simulated_prices(30, 1.0, 0.5, 0.1, seed=3)
    assert data_hash(s) == data_hash(s.copy())
    t = s.copy()
    t.iloc[3] *= 1 + 1e-12
    assert data_hash(t) != data_hash(s)


def test_price_process_rejects_bad_series():
    with pytest.raises(ValueError, match="positive"):
        fit_price_process(pd.Series([1.0, -2.0, 3.0] * 5))
    with pytest.raises(ValueError, match="too few"):
        fit_price_process(pd.Series([1.0, 2.0, 3.0]), lags=1)


def test_round_off_around_zero_is_stored_as_zero_not_identified():
    """A coefficient a perfect fit leaves at 0 comes out as round-off whose digits differ from
    one BLAS to another (seen: home −1.077e-14 (s.e. 7.146e-15) on one machine, −1.443e-14
    (s.e. 8.572e-15) on another): both are stored as 0, not identified, the same result."""
    names = ["const", "home", "dist"]

    def est(home: float, se: float) -> Estimate:
        params = pd.Series([-8.026, home, -0.9], index=names)
        bse = pd.Series([0.0, se, 0.2], index=names)
        cov = pd.DataFrame(np.diag(bse.to_numpy() ** 2), index=names, columns=names)
        return Estimate("g", params, bse, cov, "ppml", "s", 10, "h")

    a, b = est(-1.077e-14, 7.146e-15), est(-1.443e-14, 8.572e-15)
    for e in (a, b):
        assert e.params["home"] == 0.0 and not e.identified["home"]
        assert e.summary_strings().loc["home"].tolist() == ["0", "not identified", "–", "–", "–"]
        # the real estimates are untouched
        assert e.params["dist"] == -0.9 and e.identified["dist"] and e.bse["dist"] == 0.2
    assert datasets_match(a.to_dataset(), b.to_dataset())
    # a small coefficient with a real standard error is an estimate, kept as it is
    small = est(3e-11, 0.05)
    assert small.params["home"] == 3e-11 and small.identified["home"]
