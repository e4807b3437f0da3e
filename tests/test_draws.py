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
    """Draws are a dimension of the result variables (draw 0 = central), never name suffixes."""
    assert drawn.tp.has_draws and drawn.sizes["draw"] == 41
    assert not [v for v in drawn.data_vars if str(v).endswith(("_draws", "_quantiles"))]
    for var in DRAW_VARIABLES:
        assert drawn[var].dims[0] == "draw", var
        q = drawn.tp.quantiles(var)
        assert q.dims[0] == "quantile" and list(q["quantile"].values) == [0.05, 0.5, 0.95]
        assert "units" in q.attrs
        lo, mid, hi = (q.sel(quantile=x) for x in (0.05, 0.5, 0.95))
        assert bool(((lo <= mid) | lo.isnull()).all()) and bool(((mid <= hi) | mid.isnull()).all())
    assert int(drawn["draw_converged"].sum()) == 41 * 4
    assert drawn.attrs["draws"] == 40 and drawn.attrs["draw_seed"] == 7


def test_draw_zero_is_the_central_solve(drawn):
    point = tp.solve(SCENARIOS, _market()).isel(commodity=0)
    central = drawn.tp.point()
    assert "draw" not in central.dims
    for var in DRAW_VARIABLES:
        np.testing.assert_allclose(central[var], point[var], rtol=1e-12, atol=1e-9)
    # the accessor's tables read the central numbers
    assert (
        drawn.expand_dims("commodity")
        .tp.options()["world_welfare"]
        .equals(point.expand_dims("commodity").tp.options()["world_welfare"])
    )


def test_baseline_is_the_data_in_every_draw(drawn):
    base = drawn.sel(scenario="baseline")
    np.testing.assert_allclose(base["welfare_change"], 0.0, atol=1e-6)
    prod = drawn["production"].sel(scenario="baseline")
    np.testing.assert_allclose(prod, np.broadcast_to(prod.sel(draw=0), prod.shape), rtol=1e-10)


def test_each_draw_equals_an_independent_solve(drawn):
    """Draw d of the batch is the point solve of a market with draw d's elasticities."""
    for d in (1, 17, 40):
        eps, eta, sig = (
            drawn[f"{k}_elasticity"].sel(draw=d).values
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
            got = drawn.tp.draws(var).sel(draw=d)
            want = ref.tp.fiscal_cost() if var == "fiscal_cost" else ref[var]
            np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-6)


def test_default_is_one_shared_parameter(drawn):
    eps = drawn["supply_elasticity"].sel(draw=slice(1, None)).to_pandas()
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
    point = flat.tp.point()["consumer_price"]
    q = flat.tp.quantiles("consumer_price")
    np.testing.assert_allclose(q, np.broadcast_to(point, q.shape))


def test_world_totals_sum_each_draw_first(drawn):
    world = drawn.tp.total_quantiles("welfare_change")
    direct = (
        drawn["welfare_change"]
        .sel(draw=slice(1, None))
        .sum("region")
        .quantile([0.05, 0.5, 0.95], dim="draw")
    )
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
    xr.testing.assert_identical(back["welfare_change"], ds["welfare_change"])
    xr.testing.assert_identical(back.tp.point(), ds.tp.point())
    assert back.tp.range("budget_cost", "subsidy", region="world") == ds.tp.range(
        "budget_cost", "subsidy", region="world"
    )


def test_probability_of_meeting_the_target():
    ds = tp.solve(SCENARIOS, _market(), draws=30, seed=3, target_share=0.6).isel(commodity=0)
    p = ds.tp.target_probability()
    met = (ds["meets_target"].sel(draw=slice(1, None)) == 1).mean("draw")
    np.testing.assert_allclose(p, met)
    assert ((p >= 0) & (p <= 1)).all()


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


@pytest.mark.parametrize("shape", [(4,), (1, 4), (3, 4)])
@pytest.mark.parametrize("writeable", [True, False])
def test_elasticities_reach_the_kernel_as_one_array_type(shape, writeable) -> None:
    """Per-draw elasticities (read-only views) and one row of a market (writable) are one
    numba type: else the whole Newton kernel compiled once more for draws."""
    import numba

    from tradepolicy.core.kernel import _per_row

    a = np.arange(float(np.prod(shape))).reshape(shape)
    a.flags.writeable = writeable
    B = shape[0] if len(shape) == 2 and shape[0] > 1 else 3
    out = _per_row(a, B, 4)
    assert numba.typeof(out) == numba.types.Array(numba.float64, 2, "C", readonly=True)
    assert out.shape == (B, 4)
    np.testing.assert_array_equal(out, np.broadcast_to(a, (B, 4)))


def test_draws_solve_on_the_central_runs_compiled_kernel(monkeypatch) -> None:
    """A solve with draws calls the compiled kernel with the same argument types as the
    central solve (one compilation serves both)."""
    import numba

    from tradepolicy.core import kernel

    seen: set[tuple] = set()
    for name in ("newton_rows", "newton_rows_serial"):
        run = getattr(kernel, name)

        def record(*args, _run=run, _name=name):
            seen.add((_name, *(numba.typeof(a) for a in args)))
            return _run(*args)

        monkeypatch.setattr(kernel, name, record)
    tp.solve(SCENARIOS, _market())
    tp.solve(SCENARIOS, _market(), draws=3, seed=2)
    assert len(seen) == 1, seen
