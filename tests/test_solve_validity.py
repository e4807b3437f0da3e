"""A number is never presented as solved unless it is an equilibrium one can report.

Regressions of issue 14: a stock release larger than the region's demand (negative flows
marked solved), the GSIM-linear formulation's negative prices, non-finite welfare, the CLI's
exit status and summary for scenarios and draws that did not solve.
"""

from __future__ import annotations

import copy
import logging

import numpy as np
import pytest
from builders import scen, solve1
from toy import TOY_MARKET, to_toml
from typer.testing import CliRunner

import tradepolicy as tp
from tradepolicy import api
from tradepolicy.cli import MAX_FAILED_DRAW_SHARE, NOT_SOLVED_EXIT, app
from tradepolicy.measures import (
    DemandShift,
    ExportTax,
    ImportQuota,
    PriceFloor,
    StockpilePurchase,
    StockpileRelease,
    Tariff,
)
from tradepolicy.reports.context import option_labels

runner = CliRunner()
ENV = {"COLUMNS": "250"}


def _clears(ds, scenario: str) -> None:
    """Market clearing recomputed from the Dataset: production = Σ_d flows (no offtakes)."""
    sub = ds.sel(scenario=scenario)
    sold = sub.trade_flow.sum("importer").values
    np.testing.assert_allclose(sub.production.values, sold, rtol=1e-9, atol=1e-9)


@pytest.fixture(scope="module")
def gallium() -> tp.Market:
    return tp.load_market("gallium")


def _gallium_release(gallium, *extra) -> tuple:
    """The issue's case: a 2,740 kg release in KOR with demand cut or a high floor."""
    sc = scen("release", StockpileRelease(region="KOR", quantity=2740.0), *extra)
    return solve1([sc], gallium), gallium.index("KOR")[0]


@pytest.mark.parametrize(
    "extra",
    [
        (DemandShift(region="KOR", fraction=-0.8),),
        (PriceFloor(importers=["KOR"], floor=8000.0), DemandShift(region="KOR", fraction=-0.3)),
    ],
    ids=["demand_drop", "floor"],
)
def test_release_beyond_demand_is_capped_at_what_users_buy(gallium, extra, caplog):
    with caplog.at_level(logging.WARNING, logger="tradepolicy.api"):
        ds, k = _gallium_release(gallium, *extra)
    sub = ds.sel(scenario="release")
    assert int(sub.converged) == 1
    assert float(sub.trade_flow.min()) >= 0.0
    # the release covers all of KOR's demand: KOR buys nothing from the market
    np.testing.assert_array_equal(sub.trade_flow.isel(importer=k).values, 0.0)
    # what users buy at the solved composite price, from the demand curve D0 (P/P0)^-η (1+s)
    base = ds.sel(scenario="baseline")
    P, P0 = float(sub.consumer_price[k]), float(base.consumer_price[k])
    D0 = float(base.consumption[k])
    shift = 1.0 + sum(m.fraction for m in extra if isinstance(m, DemandShift))
    demand = D0 * (P / P0) ** -float(gallium.demand_elasticity[k]) * shift
    assert demand < 2740.0
    np.testing.assert_allclose(float(sub.consumption[k]), demand, rtol=1e-9)
    # only that much is sold (and booked); the rest stays in the stock
    np.testing.assert_allclose(float(sub.public_purchases[k]), -demand, rtol=1e-9)
    np.testing.assert_allclose(float(sub.stockpile_cost[k]), P * demand, rtol=1e-9)
    _clears(ds, "release")
    assert "stays in the stock" in caplog.text and "KOR" in caplog.text


def test_capped_release_equals_a_release_of_exactly_what_is_sold(gallium):
    """Independent check: releasing exactly the quantity sold gives the same equilibrium."""
    shock = DemandShift(region="KOR", fraction=-0.8)
    ds, k = _gallium_release(gallium, shock)
    sold = -float(ds.sel(scenario="release").public_purchases[k])
    exact = solve1(
        [scen("exact", StockpileRelease(region="KOR", quantity=sold * (1 - 1e-12)), shock)],
        gallium,
    )
    for var in ("producer_price", "consumer_price", "production"):
        a = ds[var].sel(scenario="release").values
        b = exact[var].sel(scenario="exact").values
        np.testing.assert_allclose(a, b, rtol=1e-8, equal_nan=True)


def test_release_below_demand_is_sold_in_full(four):
    """Regime below the cap: the whole release is sold and booked at the composite price."""
    ds = solve1([scen("r", StockpileRelease(region="EU", quantity=10.0))], four)
    sub = ds.sel(scenario="r")
    k = four.index("EU")[0]
    assert int(sub.converged) == 1
    np.testing.assert_allclose(float(sub.public_purchases[k]), -10.0, rtol=1e-12)
    np.testing.assert_allclose(
        float(sub.stockpile_cost[k]), 10.0 * float(sub.consumer_price[k]), rtol=1e-12
    )


def test_purchase_and_release_in_one_region_net_before_the_cap(four):
    """A purchase beside the release raises what the region absorbs: releases are sold up to
    users' demand plus the purchases (the cap applies to the net flow)."""
    k = four.index("EU")[0]
    ds = solve1(
        [
            scen(
                "both",
                StockpileRelease(region="EU", quantity=40.0),
                StockpilePurchase(region="EU", quantity=5.0),
                DemandShift(region="EU", fraction=-0.8),
            )
        ],
        four,
    )
    sub = ds.sel(scenario="both")
    assert int(sub.converged) == 1
    np.testing.assert_array_equal(sub.trade_flow.isel(importer=k).values, 0.0)
    # users buy D; the release sold is D + 5 (the purchase is made in full)
    D = float(sub.consumption[k])
    np.testing.assert_allclose(float(sub.public_purchases[k]), -D, rtol=1e-9)
    P = float(sub.consumer_price[k])
    np.testing.assert_allclose(float(sub.stockpile_cost[k]), P * D, rtol=1e-9)


def test_gsim_linear_negative_price_is_not_solved(four):
    """P̂ < −1 (a huge export tax) is no price: reported not solved, naming the price."""
    small = scen("small", ExportTax(exporter="CHN", rate=0.01))
    huge = scen("huge", ExportTax(exporter="CHN", rate=9.5))
    ds = solve1([small, huge], four, formulation="gsim-linear")
    assert int(ds.converged.sel(scenario="small")) == 1
    assert int(ds.converged.sel(scenario="huge")) == 0
    msg = str(ds.solver_message.sel(scenario="huge").values)
    assert "negative" in msg and "linear approximation" in msg
    assert np.isnan(ds.welfare_change.sel(scenario="huge")).all()


def test_non_finite_welfare_is_never_solved(four, monkeypatch):
    """Whatever produces it, a NaN in a welfare part makes the scenario not solved."""
    book = api.welfare.book_measures

    def spoiled(ctx, lists):
        book(ctx, lists)
        ctx.ledger["subsidy_cost"][1, 0] = np.nan

    monkeypatch.setattr(api.welfare, "book_measures", spoiled)
    ds = solve1([scen("t", Tariff(importers=["USA"], exporters=["CHN"], rate=0.3))], four)
    assert int(ds.converged.sel(scenario="t")) == 0
    msg = str(ds.solver_message.sel(scenario="t").values)
    assert "non-finite subsidy cost" in msg and four.regions[0] in msg
    assert int(ds.converged.sel(scenario="baseline")) == 1


@pytest.mark.parametrize(
    ("what", "field", "value", "expect"),
    [
        ("X", (0, 1), -1.0, "negative trade flow"),
        ("p", (0,), np.inf, "non-finite producer price"),
        ("P", (1,), 0.0, "zero consumer price"),
        ("S", (0,), np.nan, "non-finite production"),
    ],
)
def test_check_solution_names_the_offending_number(four, what, field, value, expect):
    ds_vars = {}
    cal = four.calibration
    inst, _ = api.build_instruments(four, cal, [[]])
    sol = api.solve_batch(cal, inst)
    st = sol.state
    ds_vars["consumption"] = st.D.copy()
    for name in api._FINITE:
        ds_vars.setdefault(name, np.zeros((1, cal.N)))
    assert api.check_solution(four, cal, inst, st, ds_vars) == [""]
    getattr(st, what)[(0, *field)] = value
    (msg,) = api.check_solution(four, cal, inst, st, ds_vars)
    assert expect in msg
    assert four.regions[field[0]] in msg


# -- the command line -------------------------------------------------------------------------
INFEASIBLE = """\
market = "toy.toml"

[[scenario]]
name = "fine"
[[scenario.measure]]
type = "tariff"
importers = ["USA"]
exporters = ["CHN"]
rate = 0.5

[[scenario]]
name = "eu_ban"
[[scenario.measure]]
type = "import_quota"
importers = ["EU"]
exporters = ["CHN"]
quantity = 0.0
"""


def _write(tmp_path, market_dict, scenarios):
    (tmp_path / "toy.toml").write_text(to_toml(market_dict), encoding="utf-8")
    path = tmp_path / "s.toml"
    path.write_text(scenarios, encoding="utf-8")
    return path


def test_run_exits_3_and_writes_flagged_results_when_a_scenario_does_not_solve(tmp_path):
    # EU's substitution elasticity is 1 in the toy market: a ban on its main supplier has
    # no equilibrium
    path = _write(tmp_path, copy.deepcopy(TOY_MARKET), INFEASIBLE)
    out = tmp_path / "r.nc"
    res = runner.invoke(app, ["run", str(path), "-o", str(out)], env=ENV)
    assert res.exit_code == NOT_SOLVED_EXIT == 3, res.output
    assert "eu_ban" in res.output and "not solved" in res.output
    assert out.exists()
    ds = tp.open_results(out)
    summary = res.output[res.output.index("Summary") :]
    name = option_labels(ds)["eu_ban"]  # the summary names options in words
    row = next(line for line in summary.splitlines() if f"│ {name} " in line)
    cells = [c.strip() for c in row.strip("│ ").split("│")]
    assert cells[2] == "no" and cells[-4:] == ["not solved"] * 4, cells
    assert int(ds.converged.sel(scenario="eu_ban").squeeze()) == 0
    assert int(ds.converged.sel(scenario="fine").squeeze()) == 1
    assert np.isnan(ds.welfare_change.sel(scenario="eu_ban")).all()
    assert np.isnan(ds.tp.summary().xs("eu_ban", level="scenario")["world_welfare_change"]).all()


def test_run_exits_3_when_too_many_draws_fail(tmp_path):
    """EU's σ = 1.3 solves a ban on CHN, but draws with σ ≤ 1 cannot (about 25% of them)."""
    m = copy.deepcopy(TOY_MARKET)
    m["elasticities"]["substitution"]["EU"] = 1.3
    m["elasticity_se"] = {"substitution": {"EU": 0.5}}
    path = _write(tmp_path, m, INFEASIBLE.replace("eu_ban", "eu_ban_draws"))
    res = runner.invoke(app, ["run", str(path), "-q", "--draws", "40", "--seed", "1"], env=ENV)
    assert res.exit_code == NOT_SOLVED_EXIT, res.output
    assert "eu_ban_draws" in res.output and "draws did not solve" in res.output
    ds = tp.solve(tp.load_scenarios(path), draws=40, seed=1)
    share, where, n = ds.tp.failed_draw_share()
    assert n == 40 and share > MAX_FAILED_DRAW_SHARE and where == ("eu_ban_draws", "toy")
    ok = ds.draw_converged.sel(scenario="eu_ban_draws", draw=slice(1, None)).values.ravel()
    assert share == np.mean(ok == 0)
    assert int(ds.tp.point().converged.sel(scenario="eu_ban_draws").squeeze()) == 1
    # without the uncertainty every draw solves: exit 0
    m.pop("elasticity_se")
    path = _write(tmp_path, m, INFEASIBLE.replace("eu_ban", "eu_ban_draws"))
    res = runner.invoke(app, ["run", str(path), "-q", "--draws", "4", "--seed", "1"], env=ENV)
    assert res.exit_code == 0, res.output


def test_a_quota_covering_no_pair_solves_like_no_measure():
    """Found by the input property suite: a quota on an importer's own flow only (no foreign
    pair) left its complementarity pair without entries and crashed the Jacobian."""
    m = tp.Market.from_dict(
        {
            "id": "m",
            "commodity": "x",
            "base_year": 2024,
            "regions": ["CHN", "USA"],
            "base_price": {"default": 100.0},
            "elasticities": {
                "supply": {"default": 1.0},
                "demand": {"default": 0.5},
                "substitution": {"default": 1.0},
            },
            "flows": {"CHN": {"CHN": 1.0}, "USA": {"USA": 1.0}},
        },
        source="m",
    )
    quota = ImportQuota(importers=["CHN"], exporters=["CHN"], quantity=2.0)
    ds = solve1([scen("q", quota)], m)
    assert (ds.converged == 1).all()
    np.testing.assert_allclose(
        ds.trade_flow.sel(scenario="q").values, ds.trade_flow.sel(scenario="baseline").values
    )
