"""The results Dataset contract (DESIGN §7) and the netCDF round trip."""

from __future__ import annotations

import json
from datetime import datetime

import numpy as np
import pytest
import xarray as xr

import tradepolicy as tp
from tradepolicy.units import ureg

REGION = ("scenario", "commodity", "region")
FLOW = ("scenario", "commodity", "exporter", "importer")
SOLVER = ("scenario", "commodity")

CONTRACT = {
    **dict.fromkeys(["producer_price", "consumer_price", "production", "consumption"], REGION),
    **dict.fromkeys(
        ["trade_flow", "landed_price", "tariff_rate", "levy", "quota_rent", "supplier_share"], FLOW
    ),
    **dict.fromkeys(["top_supplier_share", "hhi", "unit_value_price", "stock_change"], REGION),
    **dict.fromkeys(
        [
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
            "welfare_change",
        ],
        REGION,
    ),
    **dict.fromkeys(["converged", "iterations", "max_residual"], SOLVER),
}

GLOBAL_ATTRS = (
    "Conventions",
    "title",
    "source",
    "history",
    "date_created",
    "markets",
    "scenario_spec",
    "calibration_id",
    "data_hash",
)


@pytest.fixture(scope="module")
def toy_results(tmp_path_factory) -> xr.Dataset:
    """Solve the toy scenario files once for the module."""
    from toy import TOY_MARKET, TOY_SCENARIOS_TOML, to_toml

    d = tmp_path_factory.mktemp("toy")
    (d / "toy.toml").write_text(to_toml(TOY_MARKET), encoding="utf-8")
    (d / "toy_scenarios.toml").write_text(TOY_SCENARIOS_TOML, encoding="utf-8")
    return tp.solve(tp.load_scenarios(d / "toy_scenarios.toml"))


def second_market() -> tp.Market:
    """A 3-region market sharing CHN and AUS with the toy market and adding JPN."""
    return tp.Market.from_dict(
        {
            "id": "toy_two",
            "commodity": "Second toy",
            "base_year": 2024,
            "quantity_unit": "kg",
            "currency": "USD",
            "regions": ["JPN", "CHN", "AUS"],
            "base_price": {"default": 100.0},
            "elasticities": {
                "supply": {"default": 1.0},
                "demand": {"default": 0.5},
                "substitution": {"default": 2.0},
            },
            "flows": {
                "CHN": {"CHN": 10.0, "JPN": 5.0},
                "AUS": {"JPN": 3.0, "AUS": 1.0},
                "JPN": {"JPN": 2.0},
            },
        },
        source="toy_two",
    )


# -- contract --------------------------------------------------------------------------------
def test_contract_variables_and_dims(toy_results) -> None:
    ds = toy_results
    for name, dims in CONTRACT.items():
        assert name in ds.data_vars, name
        assert ds[name].dims == dims, name
    assert set(ds.dims) == {"scenario", "commodity", "region", "exporter", "importer"}


def test_coordinates(toy_results) -> None:
    ds = toy_results
    assert list(ds.scenario.values) == ["baseline", "us_tariff", "chn_export_tax", "shock"]
    assert list(ds.commodity.values) == ["toy"]
    regions = ["CHN", "USA", "EU", "AUS", "ROW"]
    for dim in ("region", "exporter", "importer"):
        assert list(ds[dim].values) == regions


def test_units_and_long_names(toy_results) -> None:
    ds = toy_results
    for name, var in ds.data_vars.items():
        assert var.attrs.get("long_name"), name
        if var.dtype.kind == "O":  # no units on strings (CF)
            assert "units" not in var.attrs, name
            continue
        assert "units" in var.attrs, name
        ureg.Unit(var.attrs["units"])  # parses with the tradepolicy registry
    assert ds.producer_price.attrs["units"] == "USD/t"
    assert ds.trade_flow.attrs["units"] == "t/year"
    assert ds.welfare_change.attrs["units"] == "USD/year"
    # units are dimensionally consistent: price * quantity/year = currency/year
    value = ureg.Unit(ds.producer_price.attrs["units"]) * ureg.Unit(ds.production.attrs["units"])
    assert value.dimensionality == ureg.Unit(ds.welfare_change.attrs["units"]).dimensionality


def test_global_attrs(toy_results, toy_market) -> None:
    a = toy_results.attrs
    for key in GLOBAL_ATTRS:
        assert isinstance(a.get(key), str) and a[key], key
    assert a["source"].startswith("tradepolicy")
    assert a["source"] == f"tradepolicy {tp.__version__}"
    assert a["Conventions"].startswith("CF-")
    datetime.fromisoformat(a["date_created"])
    markets = json.loads(a["markets"])
    assert set(markets) == {"toy"}
    assert markets["toy"]["regions"] == list(toy_market.regions)
    spec = json.loads(a["scenario_spec"])
    assert spec["market"] == "toy"
    assert [s["name"] for s in spec["scenario"]] == ["us_tariff", "chn_export_tax", "shock"]
    assert toy_market.data_hash in a["data_hash"]
    assert a["calibration_id"].startswith("toy@")


def test_no_bool_or_dict_attrs(toy_results) -> None:
    ds = toy_results
    holders = [("<global>", ds.attrs)] + [(str(n), ds[n].attrs) for n in ds.variables]
    for name, attrs in holders:
        for key, value in attrs.items():
            assert not isinstance(value, bool | np.bool_ | dict | list | type(None)), (name, key)


def test_solver_diagnostics(toy_results) -> None:
    ds = toy_results
    assert ds.converged.dtype == np.int8
    assert (ds.converged == 1).all()
    assert (ds.max_residual <= 1e-10).all()
    assert ds.iterations.sel(scenario="baseline").item() == 0
    assert ds.tp.failed() == []


def test_baseline_reproduces_the_market(toy_results, toy_market) -> None:
    base = toy_results.sel(scenario="baseline", commodity="toy")
    np.testing.assert_allclose(base.trade_flow.values, toy_market.flows, rtol=1e-12)
    np.testing.assert_allclose(base.production.values, toy_market.production, rtol=1e-12)
    prod = toy_market.production > 0
    np.testing.assert_allclose(base.producer_price.values[prod], toy_market.base_price[prod])
    assert np.isnan(base.producer_price.values[~prod]).all()  # EU does not produce
    for k in (*tp.measures.WELFARE_ENTRIES, "welfare_change"):
        np.testing.assert_array_equal(base[k].values, 0.0)


def test_welfare_parts_add_up(toy_results) -> None:
    ds = toy_results
    parts = sum(ds[k] for k in tp.measures.WELFARE_ENTRIES)
    scale = float(np.abs(ds.welfare_change).max()) + 1.0
    np.testing.assert_allclose(parts.values, ds.welfare_change.values, rtol=0, atol=1e-9 * scale)


def test_shares_are_shares(toy_results) -> None:
    ds = toy_results
    share = ds.supplier_share.sum("exporter")
    consumes = ds.consumption > 0
    np.testing.assert_allclose(
        share.where(consumes.rename(region="importer")).values,
        np.where(consumes.values, 1.0, np.nan),
        rtol=1e-12,
    )
    hhi = ds.hhi.where(ds.consumption > 0)
    assert ((hhi > 0) & (hhi <= 1 + 1e-12)).sum() == (ds.consumption > 0).sum()


# -- netCDF ----------------------------------------------------------------------------------
def test_netcdf_round_trip(toy_results, tmp_path) -> None:
    path = tmp_path / "out" / "results.nc"
    assert tp.write_results(toy_results, path) == path
    back = tp.open_results(path)
    xr.testing.assert_identical(back, toy_results)
    assert back.converged.dtype == np.int8
    for key in GLOBAL_ATTRS:
        assert back.attrs[key] == toy_results.attrs[key]
    assert list(tmp_path.rglob("*.part")) == []


def test_open_results_rejects_foreign_netcdf(tmp_path) -> None:
    path = tmp_path / "plain.nc"
    xr.Dataset({"x": ("t", np.arange(3.0))}, attrs={"source": "elsewhere"}).to_netcdf(path)
    with pytest.raises(tp.InputError) as info:
        tp.open_results(path)
    assert str(path) in str(info.value)
    assert "not a tradepolicy result" in str(info.value)


def test_open_results_rejects_non_netcdf_and_missing(tmp_path) -> None:
    junk = tmp_path / "junk.nc"
    junk.write_text("not netcdf", encoding="utf-8")
    with pytest.raises(tp.InputError, match="not a readable netCDF"):
        tp.open_results(junk)
    with pytest.raises(tp.InputError, match="does not exist"):
        tp.open_results(tmp_path / "missing.nc")


# -- several markets -------------------------------------------------------------------------
def _pair(toy_market, names=("tariff",)):
    t1 = [
        tp.Scenario(name=n, measures=[tp.measures.Tariff(importers=["USA"], rate=0.3)])
        for n in names
    ]
    t2 = [
        tp.Scenario(name=n, measures=[tp.measures.Tariff(importers=["JPN"], rate=0.3)])
        for n in names
    ]
    return (
        tp.ScenarioSet(market=toy_market, scenarios=t1),
        tp.ScenarioSet(market=second_market(), scenarios=t2),
    )


def test_solve_many_stacks_along_commodity(toy_market, tmp_path) -> None:
    s1, s2 = _pair(toy_market)
    ds = tp.solve_many([s1, s2])
    assert list(ds.commodity.values) == ["toy", "toy_two"]
    assert list(ds.commodity_name.values) == ["Toy oxide", "Second toy"]
    union = {"CHN", "USA", "EU", "AUS", "ROW", "JPN"}
    for dim in ("region", "exporter", "importer"):
        assert set(ds[dim].values) == union
    assert set(ds.scenario.values) == {"baseline", "tariff"}
    assert (ds.converged == 1).all()
    # absent flows and quantities are 0, absent prices NaN
    two = ds.sel(commodity="toy_two")
    absent = ["USA", "EU", "ROW"]
    assert (two.trade_flow.sel(exporter=absent) == 0).all()
    assert (two.trade_flow.sel(importer=absent) == 0).all()
    assert (two.production.sel(region=absent) == 0).all()
    assert (two.consumption.sel(region=absent) == 0).all()
    assert two.producer_price.sel(region=absent).isnull().all()
    assert two.consumer_price.sel(region=absent).isnull().all()
    assert ds.sel(commodity="toy").trade_flow.sel(exporter="JPN").sum() == 0
    assert ds.sel(commodity="toy").producer_price.sel(region="JPN").isnull().all()
    # each market's numbers are the single-market solve, relabelled
    alone = tp.solve(_pair(toy_market)[1])
    xr.testing.assert_allclose(
        two.trade_flow.sel(
            exporter=list(alone.exporter.values), importer=list(alone.importer.values)
        ),
        alone.trade_flow.sel(commodity="toy_two"),
    )
    # provenance of both markets, still netCDF-safe
    assert set(json.loads(ds.attrs["markets"])) == {"toy", "toy_two"}
    assert len(json.loads(ds.attrs["scenario_spec"])) == 2
    assert "toy_two" in ds.attrs["data_hash"] and "toy:" in ds.attrs["data_hash"]
    assert ds.converged.dtype == np.int8
    path = tp.write_results(ds, tmp_path / "many.nc")
    xr.testing.assert_identical(tp.open_results(path), ds)


def test_solve_many_keeps_baseline_first(toy_market) -> None:
    s1, _ = _pair(toy_market, names=("x", "a_tariff"))
    _, s2 = _pair(toy_market, names=("x",))
    ds = tp.solve_many([s1, s2])
    assert list(ds.scenario.values) == ["baseline", "x", "a_tariff"]


def test_solve_many_different_scenarios_are_not_failures(toy_market) -> None:
    s1, _ = _pair(toy_market, names=("x", "only_toy"))
    _, s2 = _pair(toy_market, names=("x",))
    ds = tp.solve_many([s1, s2])
    assert ds.tp.failed() == []


# -- GSIM linear formulation -----------------------------------------------------------------
def test_gsim_linear_tariff_only(toy_market) -> None:
    scen = [
        tp.Scenario(
            name="t", measures=[tp.measures.Tariff(importers=["USA"], exporters=["CHN"], rate=0.3)]
        )
    ]
    ds = tp.solve(scen, toy_market, formulation="gsim-linear")
    assert ds.attrs["formulation"] == "gsim-linear"
    assert (ds.converged == 1).all()
    for name, dims in CONTRACT.items():
        assert ds[name].dims == dims
    base = ds.sel(scenario="baseline", commodity="toy")
    np.testing.assert_allclose(base.trade_flow.values, toy_market.flows, rtol=1e-12)


def test_gsim_linear_rejects_supply_shock(toy_market) -> None:
    scen = [
        tp.Scenario(name="t", measures=[tp.measures.Tariff(importers=["USA"], rate=0.1)]),
        tp.Scenario(name="s", measures=[tp.measures.SupplyShock(region="CHN", fraction=0.2)]),
    ]
    with pytest.raises(tp.InputError) as info:
        tp.solve(scen, toy_market, formulation="gsim-linear")
    msg = str(info.value)
    assert "scenario[1].measure[0].type: 'supply_shock' is not available in the GSIM linear" in msg
    assert "allowed: tariff, export_tax" in msg


def test_unknown_formulation(toy_market) -> None:
    with pytest.raises(ValueError, match="formulation 'spreadsheet' unknown"):
        tp.solve([tp.Scenario(name="x")], toy_market, formulation="spreadsheet")
