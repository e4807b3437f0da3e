"""Measures on the same target: combined by a documented rule or refused (issue 14).

Rules (docs/measures.md, "Combining measures"): one tariff (or tariff-rate quota) and one
export tax per pair, one price-gap subsidy per producer — a second one is refused with both
measures named; several price floors on a pair: the highest floor applies.
"""

from __future__ import annotations

import numpy as np
import pytest
from builders import scen, solve1
from typer.testing import CliRunner

import tradepolicy as tp
from tradepolicy.cli import app
from tradepolicy.errors import InputError
from tradepolicy.measures import (
    ExportTax,
    PriceFloor,
    PriceGapSubsidy,
    Tariff,
    TariffRateQuota,
)

REFUSED = {
    "two_tariffs": (
        Tariff(importers=["USA"], exporters=["CHN"], rate=0.3),
        Tariff(importers=["USA", "EU"], rate=0.1),
        ("tariff of CHN → USA", "one tariff or tariff_rate_quota per exporter → importer pair"),
    ),
    "tariff_and_trq": (
        Tariff(importers=["EU"], exporters=["CHN"], rate=0.3),
        TariffRateQuota(importers=["EU"], exporters=["CHN"], quantity=30, in_rate=0, out_rate=1),
        ("tariff of CHN → EU", "one tariff or tariff_rate_quota"),
    ),
    "two_export_taxes": (
        ExportTax(exporter="CHN", destinations=["EU"], rate=0.1),
        ExportTax(exporter="CHN", rate=0.2),
        ("export tax of CHN → EU", "one export_tax per exporter → destination pair"),
    ),
    "two_subsidies": (
        PriceGapSubsidy(producers=["AUS"], strike=120.0),
        PriceGapSubsidy(producers=["USA", "AUS"], strike=110.0, payers={"USA": 1.0}),
        ("price-gap top-up of AUS", "one price_gap_subsidy per producer"),
    ),
    "floors_same_level_other_collector": (
        PriceFloor(importers=["USA"], floor=118.0),
        PriceFloor(importers=["USA"], floor=118.0, exporters=["CHN"], collector="exporters"),
        ("two price floors of 118 on CHN → USA", "must agree on levy_cap and collector"),
    ),
}


@pytest.mark.parametrize(("first", "second", "words"), REFUSED.values(), ids=REFUSED.keys())
def test_measures_on_the_same_target_are_refused_naming_both(four, first, second, words):
    fine = scen("fine", Tariff(importers=["EU"], exporters=["ROW"], rate=0.1))
    with pytest.raises(InputError) as err:
        tp.ScenarioSet(market=four, scenarios=[fine, scen("both", first, second)])
    ((field, msg),) = err.value.problems
    assert field == "scenario[1].measure[1]"
    assert f"measure[0] ({first.type})" in msg and f"measure[1] ({second.type})" in msg
    for w in words:
        assert w in msg
    # each alone is fine, and so are both in separate scenarios
    tp.ScenarioSet(market=four, scenarios=[scen("a", first), scen("b", second)])


def test_refusal_reaches_the_cli_as_exit_2_naming_file_and_field(tmp_path, write_toml, toy_files):
    path = write_toml(
        """market = "toy.toml"

[[scenario]]
name = "double"
[[scenario.measure]]
type = "tariff"
importers = ["USA"]
exporters = ["CHN"]
rate = 0.5
[[scenario.measure]]
type = "tariff"
importers = ["USA"]
rate = 0.2
""",
        "double.toml",
    )
    for cmd in ("validate", "run"):
        res = CliRunner().invoke(app, [cmd, str(path)], env={"COLUMNS": "250"})
        assert res.exit_code == 2, res.output
        out = " ".join(res.output.split())
        assert "double.toml" in out and "scenario[0].measure[1]" in out
        assert "one tariff or tariff_rate_quota per exporter → importer pair" in out


def test_two_subsidies_would_double_count_the_budget(four):
    """The issue's case: a second identical subsidy doubled the cost with output unchanged.
    One subsidy's cost is the top-up times output, paid once."""
    one = PriceGapSubsidy(producers=["AUS"], strike=120.0)
    ds = solve1([scen("one", one)], four)
    sub = ds.sel(scenario="one")
    k = four.index("AUS")[0]
    top_up = 120.0 - float(sub.producer_price[k])
    assert top_up > 0
    np.testing.assert_allclose(
        float(sub.subsidy_cost[k]), -top_up * float(sub.production[k]), rtol=1e-10
    )
    with pytest.raises(InputError, match="one price_gap_subsidy per producer"):
        solve1([scen("two", one, one)], four)


def test_subsidies_on_different_producers_equal_one_measure_on_both(four):
    split = scen(
        "split",
        PriceGapSubsidy(producers=["AUS"], strike=120.0),
        PriceGapSubsidy(producers=["ROW"], strike=120.0),
    )
    joint = scen("joint", PriceGapSubsidy(producers=["AUS", "ROW"], strike=120.0))
    ds = solve1([split, joint], four)
    for var in ("producer_price", "production", "subsidy_cost", "welfare_change"):
        np.testing.assert_allclose(
            ds[var].sel(scenario="split").values,
            ds[var].sel(scenario="joint").values,
            rtol=1e-12,
            equal_nan=True,
        )


def test_highest_floor_applies_whatever_the_order(four):
    low = PriceFloor(importers=["USA", "EU"], floor=112.0, exempt=["AUS"])
    high = PriceFloor(importers=["USA"], floor=125.0, exporters=["CHN"], levy_cap=20.0)
    ds = solve1(
        [
            scen("low_high", low, high),
            scen("high_low", high, low),
            # what the rule says: CHN → USA at the high floor (and its cap), the rest low
            scen(
                "explicit",
                high,
                PriceFloor(importers=["USA"], floor=112.0, exporters=["ROW", "EU"]),
                PriceFloor(importers=["EU"], floor=112.0, exempt=["AUS"]),
            ),
        ],
        four,
    )
    assert (ds.converged == 1).all()
    ref = ds.sel(scenario="explicit")
    for name in ("low_high", "high_low"):
        for var in ("landed_price", "levy", "trade_flow", "producer_price", "welfare_change"):
            np.testing.assert_allclose(
                ds[var].sel(scenario=name).values, ref[var].values, rtol=1e-12, equal_nan=True
            )
    # the high floor binds on CHN → USA: landed at 125 (the levy below its cap of 20)
    c, u = four.index("CHN")[0], four.index("USA")[0]
    levy = float(ref.levy[c, u])
    assert 0 < levy < 20.0
    np.testing.assert_allclose(float(ref.landed_price[c, u]), 125.0, rtol=1e-12)


def test_floors_on_a_pair_with_the_same_level_and_terms_are_one_floor(four):
    a = PriceFloor(importers=["USA"], floor=118.0)
    b = PriceFloor(importers=["USA", "EU"], floor=118.0)
    ds = solve1([scen("ab", a, b), scen("b", b)], four)
    np.testing.assert_allclose(
        ds.landed_price.sel(scenario="ab").values,
        ds.landed_price.sel(scenario="b").values,
        rtol=1e-12,
        equal_nan=True,
    )
