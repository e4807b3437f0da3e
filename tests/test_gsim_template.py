"""GSIM v1's 4×4 template (Francois & Hall): its reported US–EU FTA results, own-flow ROW
tariff included (DESIGN §3).

The template's data (trade values at world prices, tariffs ``T = 1 + t`` with a 15% tariff on
trade inside ROW, elasticities E_m = −1.25, E_x = 1.5, E_s = 5) are the fixture market
``tests/data/gsim_v1_4x4.toml``; its sources are recorded there.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from builders import scen, solve1

import tradepolicy as tp
from tradepolicy.measures import Tariff

FIXTURE = Path(__file__).parent / "data" / "gsim_v1_4x4.toml"
#: the template's reported world-price changes of the US–EU FTA (linear form)
REPORTED = {"USA": 0.0792, "JPN": -0.0316, "EU": 0.0480, "ROW": -0.0184}
FTA = scen(
    "us_eu_fta",
    Tariff(importers=["USA"], exporters=["EU"], rate=0.0),
    Tariff(importers=["EU"], exporters=["USA"], rate=0.0),
)


@pytest.fixture(scope="module")
def gsim() -> tp.Market:
    return tp.load_market(FIXTURE)


def _without_own_tariff(market: tp.Market) -> tp.Market:
    data = market.to_dict()
    data["base_tariffs"] = {
        e: {i: t for i, t in row.items() if i != e} for e, row in data["base_tariffs"].items()
    }
    return tp.Market.from_dict(data, source="gsim without the own-flow tariff")


def gsim_reference(market: tp.Market, T1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """GSIM v1's equations written out independently (paper §2): world price changes and
    tariff revenue changes by importer for new tariff factors ``T1``.

    ``P̂_rv = T̂_rv + P̂*_r``, ``P̂_v = Σ_r θ_rv P̂_rv`` (θ at internal prices),
    ``M̂_rv = E_m P̂_v + E_s (P̂_v − P̂_rv)``, clearing ``Σ_v φ_rv M̂_rv = E_x P̂*_r``; the system
    is linear in P̂*, so its Jacobian is exact from unit steps. Revenue: ``Σ_r M1 (T1 − 1) −
    M (T0 − 1)`` with ``M1 = M (1 + M̂)(1 + P̂*)`` (values at world prices).
    """
    M = market.flows
    T0 = 1.0 + market.base_tariff
    Em, Ex, Es = -market.demand_elasticity, market.supply_elasticity, market.substitution_elasticity
    theta = M * T0 / (M * T0).sum(axis=0)
    phi = M / M.sum(axis=1)[:, None]
    dT = T1 / T0 - 1.0

    def quantities(x):
        Prv = dT + x[:, None]
        Pv = (theta * Prv).sum(axis=0)
        return Em * Pv + Es * (Pv - Prv)

    def excess(x):
        return (phi * quantities(x)).sum(axis=1) - Ex * x

    n = len(M)
    J = np.column_stack([excess(np.eye(n)[i]) - excess(np.zeros(n)) for i in range(n)])
    x = np.linalg.solve(J, -excess(np.zeros(n)))
    M1 = M * (1.0 + quantities(x)) * (1.0 + x[:, None])
    revenue = (M1 * (T1 - 1.0) - M * (T0 - 1.0)).sum(axis=0)
    return x, revenue


def test_the_fixture_keeps_the_own_flow_tariff(gsim):
    r = gsim.index("ROW")[0]
    assert gsim.base_tariff[r, r] == pytest.approx(0.15)
    ds = solve1([], gsim)
    b = ds.sel(scenario="baseline")
    assert float(b.tariff_rate.sel(exporter="ROW", importer="ROW")) == pytest.approx(0.15)
    # replication: flows exactly, ROW's composite price includes the tariff on its own flow
    np.testing.assert_allclose(b.trade_flow.values, gsim.flows, rtol=1e-13)
    M, T0 = gsim.flows, 1.0 + gsim.base_tariff
    np.testing.assert_allclose(
        b.consumer_price.values, (M * T0).sum(axis=0) / M.sum(axis=0), rtol=1e-14
    )


def test_us_eu_fta_reproduces_the_reported_world_price_changes(gsim):
    ds = solve1([FTA], gsim, formulation="gsim-linear")
    cur = ds.sel(scenario="us_eu_fta")
    assert int(cur.converged) == 1
    change = cur.producer_price / ds.producer_price.sel(scenario="baseline") - 1.0
    for region, reported in REPORTED.items():
        # to the published precision (four decimals)
        assert round(float(change.sel(region=region)), 4) == pytest.approx(reported, abs=1e-12)


def test_dropping_the_own_flow_tariff_would_not_reproduce_them(gsim):
    """The own-flow ROW tariff matters at the published precision: without it the FTA's US
    and EU price changes round to +0.0793 and +0.0481."""
    ds = solve1([FTA], _without_own_tariff(gsim), formulation="gsim-linear")
    change = ds.producer_price.sel(scenario="us_eu_fta") / ds.producer_price.sel(
        scenario="baseline"
    )
    got = {r: round(float(change.sel(region=r)) - 1.0, 4) for r in REPORTED}
    assert got != pytest.approx(REPORTED, abs=1e-12)


def test_linear_solution_and_tariff_revenue_match_gsims_equations(gsim):
    """Prices and tariff revenue (own-flow revenue included) against GSIM's equations."""
    own = Tariff(importers=["ROW"], exporters=["ROW"], rate=0.05)  # an own-flow cut as well
    ds = solve1([FTA, scen("fta_and_row", *FTA.measures, own)], gsim, formulation="gsim-linear")
    for name, cells in (("us_eu_fta", []), ("fta_and_row", [("ROW", "ROW", 1.05)])):
        T1 = 1.0 + gsim.base_tariff
        usa, eu = gsim.index(["USA", "EU"])
        T1[usa, eu] = T1[eu, usa] = 1.0
        for e, i, factor in cells:
            T1[gsim.index(e)[0], gsim.index(i)[0]] = factor
        x, revenue = gsim_reference(gsim, T1)
        cur = ds.sel(scenario=name)
        np.testing.assert_allclose(cur.producer_price.values - 1.0, x, rtol=1e-10)
        np.testing.assert_allclose(cur.tariff_revenue_change.values, revenue, rtol=1e-10)
    # the own-flow cut costs ROW the revenue on trade inside ROW
    both, fta = ds.sel(scenario="fta_and_row"), ds.sel(scenario="us_eu_fta")
    assert float(both.tariff_rate.sel(exporter="ROW", importer="ROW")) == pytest.approx(0.05)
    assert float(fta.tariff_rate.sel(exporter="ROW", importer="ROW")) == pytest.approx(0.15)
    assert float(both.tariff_revenue_change.sel(region="ROW")) < float(
        fta.tariff_revenue_change.sel(region="ROW")
    )


@pytest.mark.parametrize("h", [1e-3, 1e-4])
def test_levels_model_converges_to_the_linear_form_for_a_small_own_flow_cut(gsim, h):
    """A small cut of the own-flow ROW tariff: the levels model's price changes approach the
    linear form's, with an error of second order in the shock."""
    rate = (1.15 * (1.0 - h)) - 1.0
    s = [scen("own_cut", Tariff(importers=["ROW"], exporters=["ROW"], rate=rate))]
    lev = solve1(s, gsim, tol=1e-13)
    lin = solve1(s, gsim, formulation="gsim-linear")
    base = lev.producer_price.sel(scenario="baseline")
    d_lev = (lev.producer_price.sel(scenario="own_cut") / base - 1.0).values
    d_lin = (lin.producer_price.sel(scenario="own_cut") / base - 1.0).values
    assert np.abs(d_lin).max() > 0.01 * h  # the shock moves prices at first order
    np.testing.assert_allclose(d_lev, d_lin, rtol=0, atol=0.5 * h**2)
    # ROW's own variety gets cheaper inside ROW: more demand for it, its world price rises
    assert d_lin[gsim.index("ROW")[0]] > 0
