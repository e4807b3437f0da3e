"""Short-run and medium-run elasticities (docs/model.md, "Horizons"; DESIGN §12)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import tomli_w as tw
from toy import TOY_MARKET

import tradepolicy as tp
from tradepolicy.errors import InputError
from tradepolicy.scenario import scenario_set_from_dict

#: short run: capacity fixed (supply far less elastic), use and stocks respond less
SHORT = {
    "supply": {"default": 0.1, "CHN": 0.05},
    "demand": {"default": 0.2},
}


def toy(short: dict | None = SHORT, se: dict | None = None) -> tp.Market:
    data = copy.deepcopy(TOY_MARKET)
    if short is not None:
        data["elasticities"]["short_run"] = copy.deepcopy(short)
    if se is not None:
        data["elasticity_se"] = se
    return tp.Market.from_dict(data, source="toy-test")


def shock_set(
    market: tp.Market, fraction: float, horizon: str | None = None, region: str = "CHN"
) -> tp.ScenarioSet:
    scen = tp.Scenario(
        name="cut",
        measure=[{"type": "supply_shock", "region": region, "fraction": fraction}],
    )
    return tp.ScenarioSet(market=market, scenarios=[scen], horizon=horizon)


def values(ds, scenario: str, var: str) -> np.ndarray:
    return ds[var].sel(scenario=scenario).isel(commodity=0).values


def test_medium_is_the_market_itself_and_short_run_keeps_base_data():
    m = toy()
    assert m.horizon == "medium"
    assert m.at_horizon("medium") is m
    s = m.at_horizon("short")
    assert s.horizon == "short"
    assert s.at_horizon("short") is s
    assert s.at_horizon("medium") is m
    assert s.flows is m.flows
    np.testing.assert_array_equal(s.base_price, m.base_price)
    np.testing.assert_array_equal(s.base_tariff, m.base_tariff)
    # the kinds given take their short-run values; substitution keeps its medium-run one
    np.testing.assert_array_equal(s.supply_elasticity, [0.05, 0.1, 0.1, 0.1, 0.1])
    np.testing.assert_array_equal(s.demand_elasticity, np.full(5, 0.2))
    np.testing.assert_array_equal(s.substitution_elasticity, m.substitution_elasticity)
    assert s.data_hash != m.data_hash


def test_both_horizons_reproduce_the_base_data_exactly():
    for h in ("medium", "short"):
        m = toy().at_horizon(h)
        ds = tp.solve(shock_set(m, 0.0))
        makes = m.production > 0
        for scen in ("baseline", "cut"):  # the baseline, and a zero shock, change nothing
            price = values(ds, scen, "producer_price")
            np.testing.assert_allclose(price[makes], m.base_price[makes], rtol=1e-12)
            np.testing.assert_allclose(values(ds, scen, "trade_flow"), m.flows, rtol=1e-10)
            np.testing.assert_allclose(
                values(ds, scen, "welfare_change"), 0.0, atol=1e-6 * m.flows.sum()
            )


def test_a_shock_moves_prices_more_in_the_less_elastic_short_run():
    """Less elastic supply and use: the same supply cut needs a larger price rise to clear
    (for one homogeneous market ΔlnP = −ln(1−f)/(ε+η))."""
    m = toy()
    base = values(tp.solve(shock_set(m, 0.0)), "baseline", "consumer_price")
    med = values(tp.solve(shock_set(m, 0.2)), "cut", "consumer_price")
    short = values(tp.solve(shock_set(m, 0.2, horizon="short")), "cut", "consumer_price")
    assert (med > base).all()
    assert (short - base > 2.0 * (med - base)).all()


def test_homogeneous_limit_matches_the_closed_form():
    """One region, no trade: P/P0 = (1 − f)^(−1/(ε+η)) in both horizons."""
    data = {
        "id": "one",
        "commodity": "x",
        "base_year": 2024,
        "regions": ["CHN"],
        "base_price": {"default": 10.0},
        "elasticities": {
            "supply": {"default": 1.0},
            "demand": {"default": 0.5},
            "substitution": {"default": 4.0},
            "short_run": {"supply": {"default": 0.1}, "demand": {"default": 0.15}},
        },
        "flows": {"CHN": {"CHN": 100.0}},
    }
    m = tp.Market.from_dict(data, source="one")
    for h, e in (("medium", 1.5), ("short", 0.25)):
        ds = tp.solve(shock_set(m, 0.3, horizon=h))
        p = float(values(ds, "cut", "producer_price")[0])
        assert p == pytest.approx(10.0 * 0.7 ** (-1 / e), rel=1e-8)


def test_short_run_without_data_names_the_file_and_the_table():
    m = toy(short=None)
    with pytest.raises(InputError) as err:
        m.at_horizon("short")
    assert "toy-test" in str(err.value) or "<market toy>" in str(err.value)
    assert "elasticities.short_run" in str(err.value)
    with pytest.raises(InputError, match="unknown horizon"):
        toy().at_horizon("long")


def test_short_run_tables_are_validated():
    data = copy.deepcopy(TOY_MARKET)
    data["elasticities"]["short_run"] = {"supply": {"default": -0.1}, "demand": {"XYZ": 0.1}}
    with pytest.raises(InputError) as err:
        tp.Market.from_dict(data, source="bad")
    text = str(err.value)
    assert "elasticities.short_run.supply.default" in text
    assert "elasticities.short_run.demand.XYZ" in text
    data = copy.deepcopy(TOY_MARKET)
    data["elasticities"]["short_run"] = {"supply": {"default": 0.1}}
    data["elasticity_se"] = {"short_run": {"demand": {"default": 0.1}}}
    with pytest.raises(InputError, match=r"elasticity_se\.short_run\.demand\.default"):
        tp.Market.from_dict(data, source="bad")


def test_draws_of_a_short_run_set_come_from_the_short_run_ranges():
    se = {
        "supply": {"default": 0.3},
        "short_run": {"supply": {"default": 0.03}},
    }
    m = toy(se=se)
    s = m.at_horizon("short")
    rng = np.random.default_rng(1)
    drawn = s.elasticity_draws(4000, rng)["supply"]
    # default (not CHN) column: log-normal with median 0.1 and log sd 0.03/0.1
    col = drawn[:, 1]
    assert np.median(col) == pytest.approx(0.1, rel=0.03)
    assert np.std(np.log(col)) == pytest.approx(0.3, rel=0.05)
    assert (drawn[:, 0] == 0.05).all()  # CHN has no short-run se: fixed
    # demand keeps no se in the short run (none given): fixed at 0.2
    assert (s.elasticity_draws(10, rng)["demand"] == 0.2).all()
    ds = tp.solve(shock_set(m, 0.1, horizon="short"), draws=40, seed=3)
    sup = ds["supply_elasticity"].sel(region="EU").values
    # the median of 40 log-normal draws (log sd 0.3) has a log sd of about 1.25·0.3/√40 ≈ 0.06
    assert abs(np.log(np.median(sup) / 0.1)) < 3 * 0.06
    assert np.std(np.log(sup)) < 0.6  # the medium-run log sd is 0.3/1.0 = 0.3 around 1.0
    assert sup.max() < 0.2  # no draw anywhere near the medium run's 1.0


def test_static_set_field_and_pathway_refusal(tmp_path):
    market_file = tmp_path / "toy.toml"
    data = copy.deepcopy(TOY_MARKET)
    data["elasticities"]["short_run"] = copy.deepcopy(SHORT)
    market_file.write_text(tw.dumps(data))
    tax = {"type": "export_tax", "exporter": "CHN", "rate": 0.1}
    body = {"market": "toy.toml", "horizon": "short", "scenario": [{"name": "a", "measure": [tax]}]}
    sset = scenario_set_from_dict(body, tmp_path / "s.toml")
    assert sset.horizon == "short" and sset.market.horizon == "short"
    assert '"horizon":"short"' in sset.to_json()
    body_medium = {k: v for k, v in body.items() if k != "horizon"}
    assert scenario_set_from_dict(body_medium, tmp_path / "s.toml").market.horizon == "medium"
    with pytest.raises(InputError, match="horizon"):
        scenario_set_from_dict({**body, "horizon": "long"}, tmp_path / "s.toml")
    with pytest.raises(InputError, match="pathway set"):
        scenario_set_from_dict({**body, "years": [2024, 2026]}, tmp_path / "s.toml")
    # a market without short-run data: the error names the set, the market file and the table
    data["elasticities"].pop("short_run")
    market_file.write_text(tw.dumps(data))
    with pytest.raises(InputError) as err:
        scenario_set_from_dict(body, tmp_path / "s.toml")
    text = str(err.value)
    assert "s.toml" in text and "toy.toml" in text and "elasticities.short_run" in text


@pytest.mark.parametrize("name", tp.list_markets())
def test_every_shipped_market_has_a_less_elastic_short_run(name):
    """A risk event on any shipped market needs its short run: capacity fixed (supply no more
    elastic than in the medium run) and use plus private inventories no more elastic."""
    m = tp.load_market(name)
    s = m.at_horizon("short")
    assert s.flows is m.flows
    assert (s.supply_elasticity <= m.supply_elasticity).all()
    assert (s.demand_elasticity <= m.demand_elasticity).all()
    assert (s.supply_elasticity < m.supply_elasticity).any()
    assert "short_run" in m.spec.sources and "inventor" in m.spec.sources["short_run"]


@pytest.mark.parametrize("name", tp.list_chains())
def test_every_shipped_chain_has_a_short_run(name):
    c = tp.load_market(name)
    s = c.at_horizon("short")
    assert s.horizon == "short" and all(m.horizon == "short" for m in s.stages)
    assert s.at_horizon("medium") is c or s.at_horizon("medium").stages == c.stages
    assert s.spec is c.spec
