"""The levels model against theory: replication, zero shocks, closed forms, limits."""

from __future__ import annotations

import numpy as np
import pytest
from builders import abstract_regions, market, scen, solve1
from scipy import optimize

import tradepolicy as tp
from tradepolicy.measures import DemandShift, ExportTax, SupplyShock, Tariff

PARTS = [
    "consumer_surplus_change",
    "producer_surplus_change",
    "tariff_revenue_change",
    "levy_revenue",
    "undertaking_rent",
    "export_tax_revenue_change",
    "quota_rent_income",
    "subsidy_cost",
    "offtake_cost",
    "stockpile_cost",
    "stock_value_change",
]


#: Closed forms are checked at rtol 1e-12 on prices, so those solves clear markets to 1e-14
#: (the default tolerance, 1e-11 on quantities, moves prices by up to ~1e-11/(ε+η)).
CLOSED_FORM_TOL = 1e-14


def test_baseline_reproduces_data_exactly(four):
    ds = solve1([], four)
    b = ds.sel(scenario="baseline")
    assert int(b.converged) == 1 and int(b.iterations) == 0
    np.testing.assert_allclose(b.trade_flow.values, four.flows, rtol=1e-13, atol=0)
    prod = four.calibration.producer
    np.testing.assert_allclose(b.producer_price.values[prod], four.base_price[prod], rtol=1e-14)
    cal = four.calibration
    np.testing.assert_allclose(b.consumer_price.values, cal.P0, rtol=1e-14)
    np.testing.assert_allclose(
        b.landed_price.sel(exporter="CHN", importer="USA"), 125.0, rtol=1e-14
    )
    for part in [*PARTS, "welfare_change"]:
        assert np.all(b[part].values == 0.0)


def test_zero_shock_changes_nothing(four):
    same = [
        scen("same_tariff", Tariff(importers=["USA"], exporters=["CHN"], rate=0.25)),
        scen("zero_tariff", Tariff(importers=["EU"], rate=0.0)),
        scen("zero_tax", ExportTax(exporter="AUS", rate=0.0)),
        scen("zero_shock", SupplyShock(region="CHN", fraction=0.0)),
        scen("zero_shift", DemandShift(region=["EU", "USA"], fraction=0.0)),
    ]
    ds = solve1(same, four)
    assert ds.converged.all()
    base = ds.sel(scenario="baseline")
    for s in ds.scenario.values[1:]:
        cur = ds.sel(scenario=s)
        np.testing.assert_allclose(cur.trade_flow, base.trade_flow, rtol=1e-12)
        np.testing.assert_allclose(cur.producer_price, base.producer_price, rtol=1e-12)
        for part in [*PARTS, "welfare_change"]:
            np.testing.assert_allclose(cur[part], 0.0, atol=1e-9)


def test_welfare_parts_add_up_and_world_is_sum(four):
    ds = solve1(
        [
            scen("t", Tariff(importers=["USA", "EU"], exporters=["CHN"], rate=0.4)),
            scen("x", ExportTax(exporter="CHN", rate=0.3)),
            scen(
                "s", SupplyShock(region="CHN", fraction=0.3), DemandShift(region="EU", fraction=0.2)
            ),
        ],
        four,
    )
    total = sum(ds[p] for p in PARTS)
    np.testing.assert_allclose(ds.welfare_change, total, rtol=1e-12, atol=1e-9)
    world = ds.tp.world_welfare()
    np.testing.assert_allclose(
        world.sel(component="welfare_change"), ds.welfare_change.sum("region"), rtol=1e-12
    )
    # clearing holds in every solved scenario
    np.testing.assert_allclose(ds.production, ds.trade_flow.sum("importer").values, rtol=1e-10)


# -- closed forms ---------------------------------------------------------------------------


@pytest.mark.parametrize("eps,eta", [(0.7, 0.4), (0.0, 1.0), (2.0, 1.0), (1.3, 0.0)])
def test_one_region_closed_form(eps, eta):
    m = market({"A": {"A": 50.0}}, supply={"default": eps}, demand={"default": eta})
    k, s = 0.2, 0.3
    ds = solve1(
        [
            scen("shock", SupplyShock(region="A", fraction=k)),
            scen("shift", DemandShift(region="A", fraction=s)),
        ],
        m,
        tol=CLOSED_FORM_TOL,
    )
    p_shock = 100.0 * (1 - k) ** (-1.0 / (eps + eta))
    p_shift = 100.0 * (1 + s) ** (1.0 / (eps + eta))
    np.testing.assert_allclose(
        ds.producer_price.sel(scenario="shock", region="A"), p_shock, rtol=1e-12
    )
    np.testing.assert_allclose(
        ds.producer_price.sel(scenario="shift", region="A"), p_shift, rtol=1e-12
    )
    # consumer surplus: −∫ D dP with D = D0 (P/P0)^-η
    r = p_shock / 100.0
    cs = -50 * 100 * (np.log(r) if eta == 1 else (r ** (1 - eta) - 1) / (1 - eta))
    np.testing.assert_allclose(
        ds.consumer_surplus_change.sel(scenario="shock", region="A"), cs, rtol=1e-10, atol=1e-7
    )
    # producer surplus on the shocked curve minus the base: p S/(1+ε) with S=(1-k)S0 (p/p0)^ε
    ps = 100 * 50 / (1 + eps) * ((1 - k) * r ** (1 + eps) - 1)
    np.testing.assert_allclose(
        ds.producer_surplus_change.sel(scenario="shock", region="A"), ps, rtol=1e-10, atol=1e-7
    )


@pytest.mark.parametrize("kind", ["tariff", "export_tax"])
def test_two_region_tariff_incidence_closed_form(kind):
    """A exports everything to B (no other supplier): p_A/p0 = T^(−η/(ε+η))."""
    eps, eta, t0, t1 = 1.2, 0.6, 0.1, 0.5
    m = market(
        {"A": {"B": 80.0}},
        supply={"default": eps},
        demand={"default": eta},
        tariffs={"A": {"B": t0}},
    )
    if kind == "tariff":
        meas = Tariff(importers=["B"], exporters=["A"], rate=t1)
        T = (1 + t1) / (1 + t0)
    else:
        meas = ExportTax(exporter="A", rate=t1)
        T = 1 + t1
    ds = solve1([scen("s", meas)], m, tol=CLOSED_FORM_TOL).sel(scenario="s")
    r = T ** (-eta / (eps + eta))
    p = 100 * r
    np.testing.assert_allclose(ds.producer_price.sel(region="A"), p, rtol=1e-12)
    X = 80 * r**eps
    np.testing.assert_allclose(ds.trade_flow.sel(exporter="A", importer="B"), X, rtol=1e-12)
    P0 = 100 * (1 + t0)
    P1 = P0 * T * r
    np.testing.assert_allclose(ds.consumer_price.sel(region="B"), P1, rtol=1e-12)
    cs = -80 * P0 * ((P1 / P0) ** (1 - eta) - 1) / (1 - eta)
    ps = 100 * 80 / (1 + eps) * (r ** (1 + eps) - 1)
    np.testing.assert_allclose(ds.consumer_surplus_change.sel(region="B"), cs, rtol=1e-10)
    np.testing.assert_allclose(ds.producer_surplus_change.sel(region="A"), ps, rtol=1e-10)
    if kind == "tariff":
        rev = t1 * p * X - t0 * 100 * 80
        np.testing.assert_allclose(ds.tariff_revenue_change.sel(region="B"), rev, rtol=1e-10)
    else:
        np.testing.assert_allclose(
            ds.export_tax_revenue_change.sel(region="A"), t1 * p * X, rtol=1e-10
        )
        rev = t0 * p * (1 + t1) * X - t0 * 100 * 80
        np.testing.assert_allclose(ds.tariff_revenue_change.sel(region="B"), rev, rtol=1e-10)
    # world welfare = − deadweight triangle computed by quadrature of the wedge
    world = float(ds.welfare_change.sum())
    assert world < 0


def test_small_tariff_loss_is_harberger_triangle():
    """World welfare change of a small tariff from free trade ≈ ½ · t · fob · ΔX."""
    m = market(
        {
            "A": {"A": 50.0, "B": 30.0, "C": 20.0},
            "B": {"B": 40.0, "A": 10.0, "C": 15.0},
            "C": {"C": 25.0, "A": 5.0},
        },
        supply={"default": 0.9, "B": 1.4},
        demand={"default": 0.6},
        sigma={"default": 3.0, "C": 6.0},
    )
    ratios = []
    for t in (1e-2, 1e-3, 1e-4):
        ds = solve1([scen("t", Tariff(importers=["B"], exporters=["A"], rate=t))], m)
        cur, base = ds.sel(scenario="t"), ds.sel(scenario="baseline")
        dX = float(
            cur.trade_flow.sel(exporter="A", importer="B")
            - base.trade_flow.sel(exporter="A", importer="B")
        )
        fob = 0.5 * float(cur.producer_price.sel(region="A") + 100.0)
        triangle = 0.5 * t * fob * dX  # negative: dX < 0
        world = float(cur.welfare_change.sum())
        ratios.append(world / triangle)
    assert abs(ratios[1] - 1) < 2e-3 and abs(ratios[2] - 1) < 2e-4
    assert abs(ratios[2] - 1) < abs(ratios[0] - 1)


def test_high_sigma_approaches_homogeneous_good():
    """With σ → ∞ and free trade, every producer gets one world price (law of one price)."""
    flows = {
        "A": {"A": 50.0, "B": 30.0, "C": 20.0},
        "B": {"B": 40.0, "A": 10.0, "C": 15.0},
        "C": {"C": 25.0, "A": 5.0, "B": 5.0},
    }
    eps = {"A": 0.5, "B": 1.0, "C": 1.5}
    eta = {"A": 0.3, "B": 0.6, "C": 0.9}
    S0 = {k: sum(v.values()) for k, v in flows.items()}
    D0 = {r: sum(row.get(r, 0.0) for row in flows.values()) for r in flows}
    k = 0.3

    def excess(lnp):
        x = np.exp(lnp)
        s = sum(S0[r] * x ** eps[r] * (1 - (k if r == "A" else 0)) for r in flows)
        return s - sum(D0[r] * x ** (-eta[r]) for r in flows)

    homog = 100.0 * np.exp(optimize.brentq(excess, -5, 5, xtol=1e-15))
    errors = []
    for sig in (20.0, 200.0, 2000.0):
        m = market(
            flows,
            supply={"default": 1.0, **eps},
            demand={"default": 1.0, **eta},
            sigma={"default": sig},
        )
        ds = solve1([scen("s", SupplyShock(region="A", fraction=k))], m)
        assert int(ds.converged.sel(scenario="s")) == 1
        p = ds.producer_price.sel(scenario="s").values
        errors.append(np.max(np.abs(p / homog - 1)))
    assert errors[2] < errors[1] < errors[0]
    assert errors[2] < 2e-3


def test_cobb_douglas_and_unit_demand_limits():
    """σ = 1 and η = 1 are the continuous limits of the general formulas."""
    flows = {"A": {"A": 50.0, "B": 30.0}, "B": {"B": 40.0, "A": 10.0}}
    out = []
    for sig, eta in ((1.0, 1.0), (1.0 + 1e-7, 1.0 - 1e-7), (1.0 - 1e-7, 1.0 + 1e-7)):
        m = market(flows, sigma={"default": sig}, demand={"default": eta})
        ds = solve1([scen("t", Tariff(importers=["B"], rate=0.3))], m).sel(scenario="t")
        out.append(np.concatenate([ds.producer_price.values, ds.welfare_change.values]))
    np.testing.assert_allclose(out[1], out[0], rtol=1e-5)
    np.testing.assert_allclose(out[2], out[0], rtol=1e-5)


def test_zero_base_flow_stays_zero(four):
    ds = solve1(
        [scen("t", Tariff(importers=["EU"], rate=0.0), Tariff(importers=["USA"], rate=0.0))], four
    )
    # AUS does not ship to EU in the base data, and does not start to
    assert float(ds.trade_flow.sel(scenario="t", exporter="AUS", importer="EU")) == 0.0


def test_seed_share_gives_new_supplier_a_calibrated_share():
    m = tp.Market.from_dict(
        {
            "id": "seed",
            "commodity": "x",
            "base_year": 2024,
            "regions": ["A", "B", "C"],
            "base_price": {"default": 10.0},
            "elasticities": {
                "supply": {"default": 1.0},
                "demand": {"default": 0.5},
                "substitution": {"default": 3.0},
            },
            "flows": {"A": {"A": 50.0, "B": 50.0}, "C": {"C": 10.0}},
            "region_info": abstract_regions(["A", "B", "C"]),
            "seed_shares": {"C": {"B": 0.02}},
        },
        source="seed",
    )
    assert m.flows[2, 1] == pytest.approx(1.0)  # 2% of B's 50 t
    assert m.consumption[1] == pytest.approx(50.0)
    ds = solve1([scen("t", Tariff(importers=["B"], exporters=["A"], rate=0.5))], m)
    assert float(ds.trade_flow.sel(scenario="t", exporter="C", importer="B")) > 1.0


def test_levels_converge_to_gsim_linear_as_shock_shrinks(four):
    errs = []
    for h in (1e-1, 1e-2, 1e-3):
        scenarios = [
            scen(
                "t",
                Tariff(importers=["USA"], exporters=["CHN"], rate=0.25 + h),
                Tariff(importers=["EU"], rate=h),
            ),
            scen("x", ExportTax(exporter="CHN", destinations=["USA", "EU"], rate=h)),
        ]
        lv = solve1(scenarios, four)
        lin = solve1(scenarios, four, formulation="gsim-linear")
        base = lv.producer_price.sel(scenario="baseline")
        d_lv = (lv.producer_price / base - 1).sel(scenario=["t", "x"])
        d_lin = (lin.producer_price / base - 1).sel(scenario=["t", "x"])
        rel = float(np.nanmax(np.abs(d_lv - d_lin)) / np.nanmax(np.abs(d_lin)))
        errs.append(rel)
    assert errs[2] < 2e-3
    assert errs[2] < errs[1] < errs[0]


def test_gsim_linear_matches_textbook_equations(four):
    """Solve Francois–Hall's four equations independently with scipy and compare."""
    cal = four.calibration
    t_new = four.base_tariff.copy()
    t_new[four.index("CHN")[0], four.index("USA")[0]] = 0.4
    That = (1 + t_new) / (1 + cal.t0) - 1
    prod = np.flatnonzero(cal.producer)
    theta = cal.w0
    phi = cal.X0 / np.where(cal.S0 > 0, cal.S0, 1)[:, None]

    def resid(pstar):
        Ps = np.zeros(cal.N)
        Ps[prod] = pstar
        Prv = That + Ps[:, None]
        Pv = np.sum(theta * Prv, axis=0)
        Em, Es = -cal.eta, cal.sigma
        Mrv = Em[None, :] * Pv[None, :] - Es[None, :] * (Prv - Pv[None, :])
        return (np.sum(phi * Mrv, axis=1) - cal.eps * Ps)[prod]

    # the system is linear in P̂*: recover A and b column by column and solve A x = −b
    n = len(prod)
    b = resid(np.zeros(n))
    A = np.column_stack([resid(np.eye(n)[i]) - b for i in range(n)])
    x = np.linalg.solve(A, -b)
    np.testing.assert_allclose(resid(x), 0.0, atol=1e-14)
    ds = solve1(
        [scen("t", Tariff(importers=["USA"], exporters=["CHN"], rate=0.4))],
        four,
        formulation="gsim-linear",
    )
    got = (ds.producer_price.sel(scenario="t") / four.base_price - 1).values[prod]
    np.testing.assert_allclose(got, x, rtol=1e-9, atol=1e-13)
