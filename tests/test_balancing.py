"""Bilateral matrices from partial data: PPML gravity prior (statsmodels) + RAS balancing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tradepolicy.calibration import balance, build_matrix, gravity_prior

REGIONS = ["CHN", "AUS", "USA", "EU", "JPN"]


def long(matrix: np.ndarray, regions=REGIONS) -> pd.DataFrame:
    o, d = np.nonzero(np.ones_like(matrix, bool))
    return pd.DataFrame(
        {
            "exporter": [regions[i] for i in o],
            "importer": [regions[j] for j in d],
            "quantity": matrix[o, d],
        }
    )


def test_ppml_recovers_known_parameters_from_simulated_flows():
    """Flows drawn from E[X] = P_o C_d exp(κ + h·home): estimates within 4 standard errors,
    and the estimator is consistent (errors shrink with the scale of the data)."""
    rng = np.random.default_rng(7)
    N = len(REGIONS)
    P = np.array([900.0, 60.0, 40.0, 30.0, 20.0])
    C = np.array([700.0, 10.0, 120.0, 90.0, 80.0])
    kappa, h = np.log(1.0 / P.sum()) - 0.3, 1.2
    mean = P[:, None] * C[None, :] * np.exp(kappa + h * np.eye(N))
    fit = gravity_prior(REGIONS, long(rng.poisson(mean).astype(float)), P, C)
    assert fit.nobs == N * N
    assert abs(fit.params["home"] - h) < 4 * fit.bse["home"]
    assert abs(fit.params["const"] - kappa) < 4 * fit.bse["const"]
    assert fit.home_effect == pytest.approx(np.exp(fit.params["home"]))
    big = gravity_prior(REGIONS, long(rng.poisson(1000 * mean).astype(float)), 1000 * P, C)
    assert abs(big.params["home"] - h) < 0.01
    assert abs(big.params["const"] - kappa) < 0.01


def test_ras_hits_targets_keeps_known_cells_and_prior_odds_ratios():
    rng = np.random.default_rng(3)
    N = len(REGIONS)
    prior = rng.uniform(0.5, 5.0, (N, N))
    truth = rng.uniform(1.0, 10.0, (N, N))
    prod, cons = truth.sum(axis=1), truth.sum(axis=0)
    known = np.zeros((N, N), bool)
    known[0, 2] = known[1, 4] = known[3, 3] = True
    X, it = balance(prior, prod, cons, known, truth)
    np.testing.assert_allclose(X.sum(axis=1), prod, rtol=1e-11)
    np.testing.assert_allclose(X.sum(axis=0), cons, rtol=1e-11)
    np.testing.assert_array_equal(X[known], truth[known])
    assert it > 1
    # RAS only rescales rows and columns: X/prior = r_o c_d on the free cells, so every
    # 2x2 cross-product ratio of free cells is the prior's
    ratio = np.where(known, np.nan, X / prior)
    o1, o2, d1, d2 = 2, 4, 0, 1
    assert ratio[o1, d1] * ratio[o2, d2] == pytest.approx(ratio[o1, d2] * ratio[o2, d1])


def test_build_matrix_reproduces_known_flows_and_totals():
    """A market with structural zeros: EU and JPN produce nothing."""
    prod = pd.Series({"CHN": 880.0, "AUS": 70.0, "USA": 50.0})
    cons = pd.Series({"CHN": 700.0, "USA": 120.0, "EU": 90.0, "JPN": 80.0, "AUS": 10.0})
    known = pd.DataFrame(
        {
            "exporter": ["CHN", "CHN", "AUS", "USA", "AUS"],
            "importer": ["CHN", "USA", "JPN", "USA", "AUS"],
            "quantity": [690.0, 70.0, 30.0, 35.0, 10.0],
        }
    )
    out = build_matrix(REGIONS, prod, cons, known)
    assert out.max_relative_residual < 1e-10, out.max_relative_residual
    f = pd.DataFrame(out.flows, index=REGIONS, columns=REGIONS)
    for row in known.itertuples(index=False):
        assert f.loc[row.exporter, row.importer] == row.quantity
    assert f.loc[["EU", "JPN"]].to_numpy().sum() == 0.0  # non-producers export nothing
    assert (out.flows >= 0).all()
    table = out.to_frame()
    assert set(table.columns) == {"exporter", "importer", "quantity", "known"}
    assert table["known"].sum() == len(known)
    assert out.gravity is not None and out.gravity.nobs == len(known)
    assert out.gravity.home_effect > 1.0  # domestic use exceeds what margins alone predict


def test_targets_known_flows_cannot_leave_room_for_are_refused():
    prod = pd.Series({"CHN": 900.0, "USA": 100.0})
    cons = pd.Series({"CHN": 700.0, "USA": 300.0})
    known = pd.DataFrame(
        {
            "exporter": ["CHN", "USA", "CHN"],
            "importer": ["CHN", "USA", "USA"],
            "quantity": [690.0, 100.0, 5.0],
        }
    )
    with pytest.raises(ValueError, match="no free cell"):
        build_matrix(REGIONS, prod, cons, known)
    with pytest.raises(ValueError, match="at least 3"):
        build_matrix(REGIONS, prod, cons, known.iloc[[0, 2]])


def test_bad_inputs_give_clear_errors():
    prod = pd.Series({"CHN": 10.0, "AUS": 5.0})
    known = pd.DataFrame(
        {
            "exporter": ["CHN", "AUS", "CHN"],
            "importer": ["USA", "USA", "CHN"],
            "quantity": [4.0, 1.0, 2.0],
        }
    )
    with pytest.raises(ValueError, match="totals differ"):
        build_matrix(REGIONS, prod, pd.Series({"USA": 20.0, "CHN": 2.0}), known)
    with pytest.raises(ValueError, match="exceed"):
        build_matrix(REGIONS, prod, pd.Series({"USA": 3.0, "CHN": 12.0}), known)
    P, C = np.array([10.0, 5.0, 0, 0, 0]), np.array([0, 0, 15.0, 0, 0])
    with pytest.raises(ValueError, match="one known domestic flow"):
        gravity_prior(REGIONS, known.iloc[:2], P, C)
    with pytest.raises(ValueError, match="not in the list"):
        gravity_prior(REGIONS, known.assign(exporter=["CHN", "XXX", "CHN"]), P, C)
    with pytest.raises(ValueError, match=">= 0"):
        gravity_prior(REGIONS, known.assign(quantity=[-1.0, 1.0, 2.0]), P, C)
