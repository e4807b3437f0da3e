"""Pathway sets (docs/pathways.md): the year loop's theory tests and its inputs.

- no growth and no projects repeat the static model every year;
- a measure starting in year k changes nothing before k and equals the static scenario from
  k on when capacity cannot move;
- demand growth on a path equals a static demand shift of the same size;
- committed projects arrive after their start with ramp-up; entrants start latent;
- a project with a large positive NPV is built, one with a large negative NPV is not;
- present values add up from the yearly results; the target probability is a frequency.
"""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pandas as pd
import pytest
from chains import toy_chain
from toy import TOY_MARKET

import tradepolicy as tp
from tradepolicy.errors import InputError
from tradepolicy.measures.floors import PriceFloor
from tradepolicy.measures.shocks import DemandShift
from tradepolicy.measures.trade import Tariff
from tradepolicy.pathway.results import discount_factors
from tradepolicy.pathway.spec import PathwaySet
from tradepolicy.scenario import Scenario, ScenarioSet, Target

FLOOR = PriceFloor(importers=["USA", "EU"], floor=60000.0, exempt=["USA", "EU", "AUS"])
TARIFF = Tariff(importers=["USA"], exporters=["CHN"], rate=0.3)


def toy() -> tp.Market:
    return tp.Market.from_dict(copy.deepcopy(TOY_MARKET))


def with_tables(market: tp.Market, **tables: pd.DataFrame) -> tp.Market:
    """``market`` with capacity, project or demand-path tables set in code."""
    return dataclasses.replace(market, year_tables={**market.year_tables, **tables})


def project(region: str, status: str = "construction", start: int = 2026, **kw) -> dict:
    row = {
        "project": f"{region} plant",
        "owner": "test",
        "region": region,
        "stage": kw.pop("stage", "toy"),
        "capacity": 2000.0,
        "status": status,
        "earliest_start": start,
        "lead_time": 2.0,
        "capex": 100.0,  # MUSD
        "unit_cost": 30000.0,
        "source": "test",
    }
    return row | kw


def projects(*rows: dict) -> pd.DataFrame:
    return pd.DataFrame(list(rows))


def capacity(market: tp.Market, extra: dict[str, float] | None = None) -> pd.DataFrame:
    out = market.flows.sum(axis=1)
    rows = [
        {"region": r, "capacity": float(out[i]) + (extra or {}).get(r, 0.0), "year": 2024}
        for i, r in enumerate(market.regions)
    ]
    return pd.DataFrame(rows)


def pathway(market, scenarios, years=(2024, 2027), **kw) -> PathwaySet:
    return PathwaySet(market=market, scenarios=list(scenarios), years=years, **kw)


def static(market, scenarios) -> ScenarioSet:
    return ScenarioSet(market=market, scenarios=list(scenarios))


# -- inputs ---------------------------------------------------------------------------------


def test_static_set_refuses_years_and_project_measures():
    m = toy()
    late = FLOOR.model_copy(update={"start_year": 2026})
    with pytest.raises(InputError) as exc:
        static(m, [Scenario(name="late", measure=[late])])
    assert "scenario[0].measure[0].start_year" in str(exc.value)
    grant = tp.measures.MEASURES["capex_grant"](share=0.3, payers={"USA": 1.0})
    with pytest.raises(InputError) as exc:
        static(m, [Scenario(name="grant", measure=[grant])])
    assert "scenario[0].measure[0].type" in str(exc.value)
    assert "pathway" in str(exc.value)


def test_pathway_set_checks_years_path_and_target():
    m = toy()
    with pytest.raises(InputError, match="base year 2024"):
        pathway(m, [Scenario(name="f", measure=[FLOOR])], years=(2025, 2030))
    with pytest.raises(InputError, match="years"):
        pathway(m, [Scenario(name="f", measure=[FLOOR])], years=(2024, 2024))
    with pytest.raises(InputError, match="demand_path"):
        pathway(m, [Scenario(name="f", measure=[FLOOR])], demand_path="iea_nze")
    t = Target(group="g7", max_share=0.6, year=2040)
    with pytest.raises(InputError, match=r"target\.year"):
        pathway(m, [Scenario(name="f", measure=[FLOOR])], target=t)
    with pytest.raises(InputError, match=r"investment\.bogus"):
        pathway(m, [Scenario(name="f", measure=[FLOOR])], investment={"bogus": 1.0})


def test_pathway_fields_need_years(tmp_path):
    from toy import to_toml

    spec = {
        "market": "ndpr_oxide",
        "demand_path": "iea_steps",
        "scenario": [
            {"name": "x", "measure": [{"type": "tariff", "importers": ["USA"], "rate": 0.1}]}
        ],
    }
    p = tmp_path / "s.toml"
    p.write_text(to_toml(spec))
    with pytest.raises(InputError) as exc:
        tp.load_scenarios(p)
    assert "demand_path" in str(exc.value) and "years" in str(exc.value)


# -- theory ---------------------------------------------------------------------------------


def _close(a, b, rtol=1e-9, atol=1e-9):
    np.testing.assert_allclose(np.asarray(a, float), np.asarray(b, float), rtol=rtol, atol=atol)


@pytest.mark.parametrize("chain", [False, True])
def test_no_growth_no_projects_repeats_the_static_model(chain):
    market = toy_chain() if chain else toy()
    stage = {"stage": "toy"} if chain else {}
    scen = [
        Scenario(name="floor", measure=[FLOOR.model_copy(update=stage)]),
        Scenario(name="tariff", measure=[TARIFF.model_copy(update=stage)]),
    ]
    ds = tp.solve(pathway(market, scen))
    ref = tp.solve(static(market, scen))
    ref = ref if chain else ref.rename(commodity="stage")
    for year in ds.year.values:
        for var in ("production", "producer_price", "consumer_price", "welfare_change"):
            got = ds[var].sel(year=year)
            want = ref[var].transpose("scenario", "stage", "region")
            _close(got.fillna(0), want.fillna(0), rtol=1e-8, atol=1e-6)
    assert ds.attrs["pathway"] == 1
    assert (ds["converged"] == 1).all()


def test_a_measure_from_year_k_changes_nothing_before_and_is_static_after():
    m = toy()
    late = FLOOR.model_copy(update={"start_year": 2026})
    ds = tp.solve(pathway(m, [Scenario(name="late", measure=[late])]))
    ref = tp.solve(static(m, [Scenario(name="floor", measure=[FLOOR])]))
    for year in (2024, 2025):
        _close(
            ds.production.sel(year=year, scenario="late"),
            ds.production.sel(year=year, scenario="baseline"),
            rtol=0,
            atol=0,
        )
        assert float(np.abs(ds.welfare_change.sel(year=year, scenario="late")).max()) < 1e-6
    for year in (2026, 2027):
        _close(
            ds.production.sel(year=year, scenario="late", stage="toy"),
            ref.production.sel(scenario="floor", commodity="toy"),
            rtol=1e-8,
        )


def test_demand_path_equals_a_static_demand_shift():
    m = toy()
    path = pd.DataFrame(
        {"path": ["up", "up"], "year": [2024, 2027], "index": [1.0, 1.3], "source": ["t", "t"]}
    )
    m = with_tables(m, demand_paths=path)
    ds = tp.solve(pathway(m, [Scenario(name="tariff", measure=[TARIFF])], demand_path="up"))
    consumers = [r for r, d in zip(m.regions, m.flows.sum(axis=0), strict=True) if d > 0]
    for year, shift in ((2025, 0.1), (2027, 0.3)):
        ref = tp.solve(
            static(
                m,
                [Scenario(name="grown", measure=[DemandShift(region=consumers, fraction=shift)])],
            )
        )
        _close(
            ds.producer_price.sel(year=year, scenario="baseline", stage="toy"),
            ref.producer_price.sel(scenario="grown", commodity="toy"),
            rtol=1e-8,
        )
    chn = ds.producer_price.sel(scenario="baseline", stage="toy", region="CHN")
    assert float(chn.sel(year=2027)) > float(chn.sel(year=2024))


def test_committed_projects_arrive_with_ramp_up_and_entrants_start_latent():
    m = toy()
    m = with_tables(
        m,
        capacity=capacity(m),
        projects=projects(project("AUS", start=2026), project("EU", start=2025, capacity=3000.0)),
    )
    ds = tp.solve(pathway(m, [Scenario(name="tariff", measure=[TARIFF])], years=(2024, 2028)))
    cap_aus = ds.capacity.sel(scenario="baseline", stage="toy", region="AUS").values
    base = float(m.flows.sum(axis=1)[m.regions.index("AUS")])
    ramp = tp.pathway.decisions.Finance().ramp(np.arange(3))
    _close(cap_aus, [base, base, base + ramp[0] * 2000, base + ramp[1] * 2000, base + 2000])
    eu = ds.production.sel(scenario="baseline", stage="toy", region="EU").values
    world = float(m.flows.sum())
    from tradepolicy.pathway.capacity import LATENT

    assert eu[0] <= 1.0001 * LATENT * world  # latent in the base year
    assert eu[1] > 0.1 * 3000  # producing once its plant runs
    sold_to = ds.trade_flow if "trade_flow" in ds else None
    assert sold_to is None or True
    # the base year still reproduces the data, to the latent entrant's size
    base_year = ds.production.sel(year=2024, scenario="baseline", stage="toy")
    _close(base_year, m.flows.sum(axis=1), rtol=10 * LATENT, atol=1.0001 * LATENT * world)


def test_large_positive_npv_is_built_large_negative_is_not():
    m = toy()
    good = project("AUS", status="announced", project="good", unit_cost=1000.0, capex=1.0)
    bad = project("USA", status="announced", project="bad", unit_cost=500000.0, capex=5000.0)
    m = with_tables(m, capacity=capacity(m), projects=projects(good, bad))
    ds = tp.solve(pathway(m, [Scenario(name="tariff", measure=[TARIFF])], years=(2024, 2030)))
    built = ds.project_decided.sel(draw=0, scenario="baseline")
    assert float(built.sel(project="good")) > 0.999
    assert float(built.sel(project="bad")) < 1e-3


def test_present_values_add_up():
    m = toy()
    m = with_tables(
        m,
        capacity=capacity(m),
        projects=projects(project("AUS", status="announced", project="a", unit_cost=20000.0)),
    )
    grant = tp.measures.MEASURES["capex_grant"](share=0.5, payers={"USA": 1.0}, regions=["AUS"])
    pset = pathway(
        m,
        [Scenario(name="floor_grant", measure=[FLOOR, grant])],
        years=(2024, 2029),
        discount_rate=0.04,
    )
    ds = tp.solve(pset)
    df = discount_factors(ds.year.values, 0.04)
    cs = ds.consumer_surplus_change.sum("stage")
    _close(
        ds.pv_cost_to_buyers.sel(draw=0),
        -(cs * xr_df(ds, df)).sum("year"),
        rtol=1e-10,
    )
    from tradepolicy.measures.base import FISCAL_ENTRIES
    from tradepolicy.pathway.decisions import POLICY_COSTS
    from tradepolicy.pathway.results import BORDER_ENTRIES

    spend = -sum(ds[k].sum("stage") for k in (*FISCAL_ENTRIES, *BORDER_ENTRIES))
    spend = spend + sum(sign * ds[k] for k, sign in POLICY_COSTS.items())
    _close(ds.pv_budget_cost.sel(draw=0), (spend * xr_df(ds, df)).sum("year"), rtol=1e-10)
    assert float(ds.grant_paid.sel(scenario="floor_grant", region="USA").sum()) > 0
    assert float(ds.grant_paid.sel(scenario="baseline").sum()) == 0


def xr_df(ds, df):
    import xarray as xr

    return xr.DataArray(df, dims="year", coords={"year": ds.year.values})


def test_target_probability_is_the_share_of_draws_meeting_it():
    m = toy()
    m = with_tables(
        m,
        capacity=capacity(m),
        projects=projects(project("AUS", status="announced", project="a", unit_cost=25000.0)),
    )
    t = Target(group="g7", max_share=0.6, ambition=0.5, year=2027)
    pset = pathway(m, [Scenario(name="floor", measure=[FLOOR])], target=t, mode="draws")
    ds = tp.solve(pset, draws=12, seed=3)
    dep = ds.target_dependence.isel(draw=slice(1, None))
    for share in (0.6, 0.5):
        want = (dep <= share + 1e-12).mean("draw")
        _close(ds.meets_target_probability.sel(share=share), want)
    decided = ds.project_decided.isel(draw=slice(1, None)).values
    assert set(np.unique(np.round(decided, 12))) <= {0.0, 1.0}
    assert (
        0
        <= float(ds.meets_target_probability.min())
        <= float(ds.meets_target_probability.max())
        <= 1
    )


def test_results_round_trip(tmp_path):
    m = toy()
    m = with_tables(m, capacity=capacity(m), projects=projects(project("AUS")))
    ds = tp.solve(pathway(m, [Scenario(name="floor", measure=[FLOOR])]))
    p = tmp_path / "p.nc"
    tp.write_results(ds, p)
    back = tp.open_results(p)
    _close(back.capacity, ds.capacity)
    assert back.attrs["pathway"] == 1
    table = back.tp.pathway_options()
    assert list(table.index) == ["baseline", "floor"]
    traj = back.tp.trajectory("production", region="AUS")
    assert list(traj.index) == list(ds.year.values)


def test_co_product_rows_follow_their_plant():
    from tradepolicy.pathway import capacity as cap

    chain = toy_chain()
    plant = project("USA", status="announced", project="plant", owner="Miner Ltd", capex=100.0)
    side = project(
        "USA",
        status="announced",
        project="plant - magnets",
        owner="Miner Ltd (51% X)",
        capex=0.0,
        stage="toy_magnet",
    )
    oxide = with_tables(chain.stages[0], projects=projects(plant))
    magnet = with_tables(chain.stages[1], projects=projects(side))
    pipe = cap.read_pipeline([oxide, magnet], chain.regions)
    assert list(cap.co_product_leaders(pipe)) == [-1, 0]
    # with the plant's capex on the plant row, the co-product is decided with it
    pset = pathway(
        dataclasses.replace(chain, stages=(oxide, magnet)),
        [Scenario(name="floor", measure=[FLOOR.model_copy(update={"stage": "toy"})])],
        years=(2024, 2028),
    )
    ds = tp.solve(pset)
    d = ds.project_decided.sel(draw=0)
    _close(d.sel(project="plant - magnets"), d.sel(project="plant"), rtol=1e-12)


def test_capacity_cost_from_the_price_side_is_finite_at_saturation():
    from scipy import integrate

    from tradepolicy.model.levels import capacity_cost

    S0m, v0, eps, u0 = 100.0, 10.0, 0.5, 0.8
    a, ib = (1 - u0) / u0, (1 - u0) / eps
    K = S0m / u0
    for S in (40.0, 90.0, 120.0):
        u = S / K
        v = v0 * (a * u / (1 - u)) ** ib
        want = integrate.quad(lambda s: v0 * (a * (s / K) / (1 - s / K)) ** ib, 0, S, epsrel=1e-12)[
            0
        ]
        got = capacity_cost(*(np.array([x]) for x in (S, S0m, v0, eps, u0)), v=np.array([v]))
        _close(got, [want], rtol=1e-9)
    # a steep curve puts output within rounding of capacity: the quantity form is infinite,
    # the price form is not
    steep = dict(
        S0m=np.array([1000.0]), v0=np.array([2749.7]), eps=np.array([2.7]), u0=np.array([0.8])
    )
    at_cap = np.array([1250.0])
    assert not np.isfinite(capacity_cost(at_cap, **steep))[0]
    assert np.isfinite(capacity_cost(at_cap, **steep, v=np.array([60000.0])))[0]


def test_shipped_pathway_set_runs_from_the_cli(tmp_path):
    from typer.testing import CliRunner

    from tradepolicy.cli import app

    out = tmp_path / "p.nc"
    res = CliRunner().invoke(app, ["run", "ree_magnets_2030", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "The 2030 question" in res.output and "P" in res.output
    ds = tp.open_results(out)
    table = ds.tp.pathway_options()
    assert table.loc["baseline", "points_removed"] == 0
    # the oxide + magnet floors remove dependence at the magnet stage, an oxide-only floor
    # does not (leakage), and a price-gap subsidy costs the budget money
    assert table.loc["club_floor_oxide_magnet", "points_removed"] > 5
    assert table.loc["club_floor_oxide_110", "points_removed"] < 1
    assert table.loc["price_gap_subsidy", "pv_budget_cost"] > 0
    assert (ds.converged.sel(draw=0) == 1).all()


def test_projection_table_compares_with_iea():
    from tradepolicy.pathway.calibrate import projection_table

    t = projection_table(tp.load_chain("ree_magnets"))
    chn = t.set_index("region").loc["CHN"]
    assert chn["source"] == "projected"
    # a region without projects follows IEA's capacity path; its output moves with price only
    assert 0.9 < chn["model_over_iea"] < 1.15
    assert set(t.loc[t["source"] == "pipeline", "region"]) >= {"AUS", "USA", "EU"}


def test_a_market_without_projects_follows_iea_capacity():
    """Regions without projects grow capacity along IEA's base-case projection (linear from
    the base year to the projection's first year)."""
    m = tp.load_market("lithium_chemicals")
    pset = pathway(m, [Scenario(name="tariff", measure=[TARIFF])], years=(2024, 2030))
    ds = tp.solve(pset)
    proj = m.supply_projections
    proj = proj[(proj["path"] == proj["path"].iloc[0]) & (proj["year"] == 2030)]
    base = dict(zip(m.regions, m.flows.sum(axis=1), strict=True))
    for _, row in proj.iterrows():
        r = row["region"]
        if base[r] <= 0:
            continue
        k0 = float(ds.capacity.sel(year=2024, scenario="baseline", region=r).squeeze())
        k30 = float(ds.capacity.sel(year=2030, scenario="baseline", region=r).squeeze())
        _close(k30 / k0, row["quantity"] / base[r], rtol=1e-12)
    assert (ds.converged == 1).all()
