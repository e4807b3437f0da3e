"""Bloc dependence, targets, who pays, cost-effectiveness and validity flags (DESIGN §5)."""

from __future__ import annotations

import numpy as np
import pytest
from builders import market, scen, solve1

import tradepolicy as tp
from tradepolicy.measures import ExportQuota, PriceFloor, PriceGapSubsidy, Tariff
from tradepolicy.results import indicators
from tradepolicy.scenario import ScenarioSet, Target

# JPN and AUS are G7 partners; MYS and CHN are outside; ROW is an aggregate.
FLOWS = {
    "CHN": {"CHN": 500.0, "JPN": 30.0, "USA": 20.0, "ROW": 20.0},
    "MYS": {"JPN": 40.0, "USA": 5.0, "MYS": 2.0},
    "AUS": {"JPN": 10.0, "USA": 30.0, "AUS": 1.0},
    "USA": {"USA": 10.0},
    "ROW": {"ROW": 50.0, "JPN": 20.0, "USA": 5.0},
}


@pytest.fixture(scope="module")
def mkt() -> tp.Market:
    return market(FLOWS, supply={"default": 1.0}, demand={"default": 0.5}, sigma={"default": 3.0})


def _solve(mkt, scenarios, target=None, target_share=None):
    sset = ScenarioSet(market=mkt, scenarios=scenarios, target=target, target_share=target_share)
    return solve1(sset)


def _recompute(ds, scenario: str) -> tuple[float, str, float]:
    """Bloc dependence straight from the Dataset's flows and the recorded bloc."""
    members = ds.attrs["target_bloc"].split()
    X = ds.trade_flow.sel(scenario=scenario).to_pandas()  # exporter × importer
    use = X[members].to_numpy().sum()
    from_origin = X[members].sum(axis=1)
    outside = [o for o in X.index if o not in members and not tp.regions.is_aggregate(o)]
    top = from_origin[outside].idxmax()
    agg = from_origin[[o for o in X.index if tp.regions.is_aggregate(o)]].sum()
    return from_origin[top] / use, top, agg / use


def test_bloc_dependence_recomputed_from_flows(mkt) -> None:
    target = Target(group="g7_partners", max_share=0.6)
    cut = ExportQuota(exporter="MYS", destinations=["JPN"], quantity=10.0)
    ds = _solve(
        mkt,
        [
            scen("tariff", Tariff(importers=["JPN"], exporters=["CHN"], rate=0.3)),
            scen("mys_quota", cut),
        ],
        target=target,
    )
    assert sorted(ds.attrs["target_bloc"].split()) == ["AUS", "JPN", "USA"]
    assert ds.attrs["target_max_share"] == 0.6
    for s in ds.scenario.values:
        share, top, agg = _recompute(ds, str(s))
        assert float(ds.bloc_dependency.sel(scenario=s)) == pytest.approx(share, rel=1e-12)
        assert str(ds.bloc_top_supplier.sel(scenario=s).values) == top
        assert float(ds.bloc_aggregate_share.sel(scenario=s)) == pytest.approx(agg, rel=1e-12)
        assert int(ds.meets_target.sel(scenario=s)) == int(share <= 0.6)


def test_allies_and_aggregates_are_never_the_single_supplier(mkt) -> None:
    # Per importer, JPN's largest foreign origin is MYS (40) and the USA's is AUS, an ally.
    ds = _solve(mkt, [], target=Target(group="g7_partners", max_share=0.6))
    base = ds.sel(scenario="baseline")
    assert str(base.top_supplier.sel(region="USA").values) == "AUS"  # per importer: an ally
    assert str(base.bloc_top_supplier.values) in ("CHN", "MYS")  # bloc: never AUS or ROW
    # a bloc of USA alone counts AUS as outside; ROW is still never named
    solo = _solve(mkt, [], target=Target(bloc=["USA"], max_share=0.6)).sel(scenario="baseline")
    assert str(solo.bloc_top_supplier.values) == "AUS"
    assert float(solo.bloc_dependency) == pytest.approx(30.0 / 70.0)
    assert float(solo.bloc_aggregate_share) == pytest.approx(5.0 / 70.0)


def test_target_crossing_flips_meets_target(mkt) -> None:
    base = _solve(mkt, [], target=Target(group="g7_partners", max_share=0.6))
    share = float(base.bloc_dependency.sel(scenario="baseline"))
    above = _solve(mkt, [], target=Target(group="g7_partners", max_share=share * 0.99))
    below = _solve(mkt, [], target=Target(group="g7_partners", max_share=share * 1.01))
    assert int(above.meets_target.sel(scenario="baseline")) == 0
    assert int(below.meets_target.sel(scenario="baseline")) == 1
    none = _solve(mkt, [])
    assert int(none.meets_target.sel(scenario="baseline")) == -1
    assert np.isnan(none.attrs["target_max_share"])
    assert none.meets_target.attrs["flag_meanings"] == "no_target not_met met"


def test_target_share_alone_reads_the_default_group(mkt) -> None:
    ds = _solve(mkt, [], target_share=0.5)
    assert ds.attrs["target_group"] == "g7_partners"
    assert ds.attrs["target_max_share"] == 0.5
    # the per-importer indicator keeps working
    assert set(np.unique(ds.top_supplier_meets_target.values)) <= {0, 1}


def test_options_table_who_pays_and_cost_per_point(mkt) -> None:
    sub = PriceGapSubsidy(producers=["AUS"], strike=130.0, payers={"JPN": 1.0})
    floor = PriceFloor(importers=["JPN", "USA"], exempt=["JPN", "USA", "AUS"], floor=115.0)
    ds = _solve(
        mkt,
        [
            scen("subsidy", sub),
            scen("floor", floor),
            scen("tiny", Tariff(importers=["ROW"], exporters=["MYS"], rate=1e-9)),
        ],
        target=Target(group="g7_partners", max_share=0.6),
    )
    full = ds.expand_dims("commodity") if "commodity" not in ds.dims else ds
    t = full.tp.options()
    units = t.attrs["units"]
    assert units["budget_cost"] == "M USD/yr"
    # one sign convention: spending > 0, equal to minus the signed fiscal parts, in M USD/yr
    fiscal = float(full.tp.fiscal_cost().sel(scenario="subsidy").sum())
    assert t.loc["subsidy", "budget_cost"] == pytest.approx(-fiscal / 1e6)
    assert t.loc["subsidy", "budget_cost"] > 0
    assert t.loc["subsidy", "budget_cost_bloc"] == pytest.approx(t.loc["subsidy", "budget_cost"])
    # buyers' cost is minus the bloc's consumer surplus change
    cs = float(ds.consumer_surplus_change.sel(scenario="floor", region=["AUS", "USA", "JPN"]).sum())
    assert t.loc["floor", "cost_to_bloc_buyers"] == pytest.approx(-cs / 1e6)
    # welfare adds up: bloc + everybody else = world
    rest = float(ds.welfare_change.sel(scenario="floor", region=["CHN", "MYS", "ROW"]).sum()) / 1e6
    assert t.loc["floor", "bloc_welfare"] + rest == pytest.approx(t.loc["floor", "world_welfare"])
    # cost per point = cost / points removed, only where dependence falls
    sub_row = t.loc["subsidy"]
    assert sub_row["points_removed"] > 0.1
    assert sub_row["budget_cost_per_point"] == pytest.approx(
        sub_row["budget_cost"] / sub_row["points_removed"]
    )
    assert np.isnan(t.loc["tiny", "budget_cost_per_point"])
    assert t.loc["tiny", "note"] == "does not move dependence"
    assert not (np.signbit(t[["budget_cost"]].to_numpy()) & (t[["budget_cost"]] == 0)).any().any()
    who = full.tp.who_pays("subsidy")
    assert who.loc["JPN", "budget_cost"] == pytest.approx(t.loc["subsidy", "budget_cost"])
    assert who.loc["AUS", "producers"] > 0
    assert bool(who.loc["AUS", "bloc_member"]) and not bool(who.loc["CHN", "bloc_member"])


def test_validity_flags_mark_results_beyond_the_model() -> None:
    gal = tp.solve(tp.load_scenarios("gallium"))
    flagged = gal.tp.flagged().isel(commodity=0).to_series()
    assert not flagged["baseline"]
    assert flagged.any()
    for s in flagged[flagged].index:
        assert gal.tp.warnings(s), s
    # a price more than 3x its base raises FLAG_PRICE wherever it happens
    ratio = (gal.consumer_price / gal.consumer_price.sel(scenario="baseline")).isel(commodity=0)
    hot = (ratio > indicators.PRICE_RATIO_LIMIT).any("region").to_series()
    bits = (gal.validity_flag.isel(commodity=0).astype(int) & indicators.FLAG_PRICE) > 0
    assert (bits.any("region").to_series()[hot]).all()
    assert gal.validity_flag.attrs["flag_masks"].tolist() == [1, 2, 4]


def test_small_shock_raises_no_flag(mkt) -> None:
    ds = _solve(mkt, [scen("t", Tariff(importers=["JPN"], exporters=["CHN"], rate=0.05))])
    assert int(ds.validity_flag.max()) == 0


def test_flag_functions_from_theory() -> None:
    p0 = np.array([[1.0, 1.0]])
    X0 = np.array([[[10.0, 5.0], [0.0, 5.0]]])
    f = indicators.validity_flags(
        np.array([[3.5, 1.0]]),
        p0,
        np.array([[1.0, 0.3]]),
        p0,
        np.array([[[10.0, 0.1], [0.0, 9.0]]]),
        X0,
        np.array([[10.0, 21.0]]),
        np.array([[15.0, 5.0]]),
    )
    assert f[0, 0] == indicators.FLAG_PRICE
    assert f[0, 1] == indicators.FLAG_PRICE | indicators.FLAG_VARIETY | indicators.FLAG_OUTPUT


def test_iamc_and_pint(mkt) -> None:
    pytest.importorskip("pint_xarray")
    ds = tp.solve(
        [scen("t", Tariff(importers=["JPN"], exporters=["CHN"], rate=0.2))], mkt, target_share=0.6
    )
    iamc = ds.tp.to_iamc()
    assert list(iamc.columns) == [
        "model",
        "scenario",
        "region",
        "variable",
        "unit",
        "year",
        "value",
    ]
    w = iamc[(iamc.variable == "change in national welfare|test") & (iamc.scenario == "t")]
    world = float(w.loc[w.region == "World", "value"].iloc[0])
    assert world == pytest.approx(w.loc[w.region != "World", "value"].sum())
    q = ds.pint.quantify(unit_registry=tp.ureg)
    assert str(q.welfare_change.data.units) == "USD / year"
    assert ds.tp.money(2.5e6) == pytest.approx(2.5)


def test_regions_table_is_the_single_source() -> None:
    table = tp.regions.table()
    assert table.loc["USA", "name"] == "United States"
    assert table.loc["COD", "short_name"] == "DR Congo"
    assert bool(table.loc["ROW", "aggregate"])
    assert tp.regions.bloc_members(
        "g7_partners", ["CHN", "USA", "EU", "KOR", "AUS", "ROW", "MYS"]
    ) == ["USA", "EU", "KOR", "AUS"]
    with pytest.raises(KeyError, match="did you mean USA"):
        tp.regions.get("USAA")
