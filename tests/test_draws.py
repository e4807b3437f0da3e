"""Monte Carlo draws of the elasticities (``solve(..., draws=N, seed=S)``, ``run --draws``)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from builders import ELASTICITIES, FOUR, scen
from typer.testing import CliRunner

import tradepolicy as tp
from tradepolicy import measures as M
from tradepolicy.api import DRAW_VARIABLES
from tradepolicy.cli import app

SE = {
    "supply": {"default": 0.3, "CHN": 0.2},
    "demand": {"default": 0.1},
    "substitution": {"default": 1.0},
}


def _market(se=SE) -> tp.Market:
    return tp.Market.from_dict(
        {
            "id": "drawn",
            "commodity": "test good",
            "base_year": 2024,
            "regions": sorted({r for e, row in FOUR.items() for r in (e, *row)}),
            "base_price": ELASTICITIES["price"],
            "elasticities": {
                "supply": ELASTICITIES["supply"],
                "demand": ELASTICITIES["demand"],
                "substitution": ELASTICITIES["sigma"],
            },
            "elasticity_se": se,
            "flows": FOUR,
        },
        source="draws-test",
    )


SCENARIOS = [
    scen("tariff", M.Tariff(importers=["USA"], exporters=["CHN"], rate=0.25)),
    scen("floor", M.PriceFloor(importers=["USA", "EU"], exempt=["AUS"], floor=130.0)),
    scen("subsidy", M.PriceGapSubsidy(producers=["USA"], strike=120.0, payers={"USA": 1.0})),
]


@pytest.fixture(scope="module")
def drawn() -> xr.Dataset:
    return tp.solve(SCENARIOS, _market(), draws=40, seed=7).isel(commodity=0)


def test_layout_and_quantiles(drawn):
    assert drawn.tp.has_draws and drawn.sizes["draw"] == 40
    assert list(drawn["quantile"].values) == [0.05, 0.5, 0.95]
    for var in DRAW_VARIABLES:
        q = drawn.tp.quantiles(var)
        assert q.dims[0] == "quantile" and "units" in q.attrs
        lo, mid, hi = (q.sel(quantile=x) for x in (0.05, 0.5, 0.95))
        assert bool(((lo <= mid) | lo.isnull()).all()) and bool(((mid <= hi) | mid.isnull()).all())
    assert int(drawn["draw_converged"].sum()) == 40 * 4
    assert drawn.attrs["draws"] == 40 and drawn.attrs["draw_seed"] == 7


def test_baseline_is_the_data_in_every_draw(drawn):
    base = drawn.sel(scenario="baseline")
    np.testing.assert_allclose(base["welfare_change_draws"], 0.0, atol=1e-6)
    prod = drawn["production_draws"].sel(scenario="baseline")
    np.testing.assert_allclose(
        prod, np.broadcast_to(drawn["production"].sel(scenario="baseline"), prod.shape), rtol=1e-10
    )


def test_each_draw_equals_an_independent_solve(drawn):
    """Draw d of the batch is the point solve of a market with draw d's elasticities."""
    for d in (0, 17, 39):
        eps, eta, sig = (
            drawn[f"{k}_elasticity_draws"].sel(draw=d).values
            for k in ("supply", "demand", "substitution")
        )
        regions = [str(r) for r in drawn.region.values]
        one = tp.Market.from_dict(
            {
                "id": "drawn",
                "commodity": "test good",
                "base_year": 2024,
                "regions": regions,
                "base_price": ELASTICITIES["price"],
                "elasticities": {
                    "supply": dict(zip(regions, map(float, eps), strict=True)),
                    "demand": dict(zip(regions, map(float, eta), strict=True)),
                    "substitution": dict(zip(regions, map(float, sig), strict=True)),
                },
                "flows": FOUR,
            },
            source="one-draw",
        )
        ref = tp.solve(SCENARIOS, one).isel(commodity=0)
        for var in ("consumer_price", "welfare_change", "fiscal_cost"):
            got = drawn[f"{var}_draws"].sel(draw=d)
            want = ref.tp.fiscal_cost() if var == "fiscal_cost" else ref[var]
            np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-6)


def test_default_is_one_shared_parameter(drawn):
    eps = drawn["supply_elasticity_draws"].to_pandas()
    shared = [r for r in eps.columns if r != "CHN" and r != "USA"]  # USA has its own value
    assert (eps[shared].nunique(axis=1) == 1).all()
    assert not np.allclose(eps["CHN"], eps[shared[0]])
    # log-normal with median at the point value
    ln = np.log(eps["CHN"] / 0.8)
    assert abs(ln.mean()) < 3 * 0.25 / np.sqrt(40) + 1e-12 and 0.15 < ln.std() < 0.35


def test_same_seed_same_draws_and_zero_se_collapses():
    a = tp.solve(SCENARIOS, _market(), draws=5, seed=11)
    b = tp.solve(SCENARIOS, _market(), draws=5, seed=11)
    xr.testing.assert_identical(a.drop_attrs(), b.drop_attrs())
    flat = tp.solve(SCENARIOS, _market(se={}), draws=5, seed=11).isel(commodity=0)
    point = flat["consumer_price"]
    np.testing.assert_allclose(
        flat["consumer_price_quantiles"],
        np.broadcast_to(point, flat["consumer_price_quantiles"].shape),
    )


def test_world_totals_sum_each_draw_first(drawn):
    world = drawn.tp.total_quantiles("welfare_change")
    direct = drawn["welfare_change_draws"].sum("region").quantile([0.05, 0.5, 0.95], dim="draw")
    np.testing.assert_allclose(world, direct)
    summary = drawn.expand_dims("commodity").tp.summary()
    assert {"world_welfare_change_q05", "budget_cost_q95"} <= set(summary.columns)
    # budget cost is spending > 0: its range is minus the fiscal cost's, bounds swapped
    fiscal = drawn.expand_dims("commodity").tp.total_quantiles("fiscal_cost")
    np.testing.assert_allclose(
        summary["budget_cost_q05"].to_numpy(), -fiscal.sel(quantile=0.95).values.ravel()
    )
    assert (summary["budget_cost_q05"] <= summary["budget_cost_q95"]).all()


def test_netcdf_round_trip(drawn, tmp_path):
    ds = tp.solve(SCENARIOS, _market(), draws=4, seed=2)
    tp.write_results(ds, tmp_path / "d.nc")
    back = tp.open_results(tmp_path / "d.nc")
    xr.testing.assert_identical(back["welfare_change_quantiles"], ds["welfare_change_quantiles"])


def test_draws_argument_checked():
    with pytest.raises(ValueError, match="at least 2"):
        tp.solve(SCENARIOS, _market(), draws=1)


def test_cli_run_with_draws_shows_ranges(tmp_path):
    assert tp.load_market("ndpr_oxide").has_uncertainty  # calibrated standard errors ship
    (tmp_path / "s.toml").write_text(
        'market = "ndpr_oxide"\ntarget_share = 0.6\n[[scenario]]\nname = "floor"\n'
        '[[scenario.measure]]\ntype = "price_floor"\nimporters = ["USA", "JPN", "EU"]\n'
        'exempt = ["USA", "JPN", "EU", "AUS"]\nfloor = 110000.0\n'
    )
    out = tmp_path / "o.nc"
    res = CliRunner().invoke(
        app, ["run", str(tmp_path / "s.toml"), "--draws", "20", "--seed", "1", "-o", str(out)]
    )
    assert res.exit_code == 0, res.output
    assert " to " in res.output and "5–95%" in res.output
    assert tp.open_results(out).tp.has_draws
