"""Sweeps (docs/sweeps.md): rows equal tp.solve, backends agree, resume, spec errors, CLI."""

from __future__ import annotations

import copy
import importlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
from toy import to_toml
from typer.testing import CliRunner

import tradepolicy as tp
from tradepolicy.cli import app
from tradepolicy.errors import InputError
from tradepolicy.experiments import load_sweep, open_sweep
from tradepolicy.experiments.grid import DEFAULT_VARIABLES

sweep_module = importlib.import_module("tradepolicy.experiments.sweep")
SEED = 11
#: club floor × US/AUS strike × substitution elasticity of JPN and EU (scaled), 2 draws
SPEC: dict[str, Any] = {
    "title": "test sweep",
    "scenarios": "ndpr_oxide",
    "only": ["club_floor_110", "usa_aus_subsidy_110"],
    "draws": 2,
    "seed": SEED,
    "grid": [
        {
            "name": "floor",
            "scenario": "club_floor_110",
            "measure": "price_floor",
            "field": "floor",
            "values": [80_000.0, 110_000.0],
        },
        {
            "name": "strike",
            "measure": "price_gap_subsidy",
            "field": "strike",
            "values": [90_000.0, 120_000.0],
        },
        {
            "name": "sigma",
            "elasticity": "substitution",
            "regions": ["JPN", "EU"],
            "mode": "scale",
            "values": [0.5, 2.0],
        },
    ],
}


@pytest.fixture
def spec_file(tmp_path: Path):
    def write(spec: dict[str, Any] | None = None, name: str = "sweep.toml") -> Path:
        path = tmp_path / name
        path.write_text(to_toml(copy.deepcopy(spec or SPEC)), encoding="utf-8")
        return path

    return write


def _load(path: Path) -> xr.Dataset:
    return open_sweep(path).load()


def _expected(scenario: str, floor: float, strike: float, sigma: float) -> xr.Dataset:
    """The same row solved directly with tp.solve, inputs built here by hand."""
    sset = tp.load_scenarios("ndpr_oxide")
    market = tp.load_market("ndpr_oxide")
    data = market.to_dict()
    sub, se = data["elasticities"]["substitution"], data["elasticity_se"]["substitution"]
    for r in ("JPN", "EU"):  # a scaled default gets own entries with the same relative se
        sub[r] = sub["default"] * sigma
        se[r] = se["default"] * sigma
    mkt = tp.Market.from_dict(data)
    base = sset[scenario]
    m = base.measures[0]
    m = m.model_copy(update={"floor": floor} if m.type == "price_floor" else {"strike": strike})
    scen = tp.Scenario(name=scenario, measures=[m])
    one = tp.ScenarioSet(
        market=mkt, scenarios=[scen], target_share=sset.target_share, target=sset.target
    )
    return tp.solve(one, draws=2, seed=SEED).sel(scenario=scenario).isel(commodity=0)


def test_rows_equal_tp_solve(spec_file, tmp_path: Path) -> None:
    out = tp.sweep(spec_file(), tmp_path / "s.zarr", block_size=6, workers=1, progress=False)
    ds = _load(out)
    assert dict(ds.sizes) == {
        "scenario": 2,
        "floor": 2,
        "strike": 2,
        "sigma": 2,
        "draw": 3,
        "region": 8,
        "block": 8,
    }
    assert ds.attrs["sweep_status"] == "complete" and int(ds.block_done.sum()) == 8
    assert ds.producer_price.attrs["units"] == "USD/t"
    assert ds.floor.attrs["units"] == "USD/t" and ds.sigma.attrs["units"] == "1"
    assert set(ds.data_vars) == {*DEFAULT_VARIABLES, "block_done"}
    points = [
        ("club_floor_110", 80_000.0, 120_000.0, 0.5),
        ("club_floor_110", 110_000.0, 90_000.0, 2.0),
        ("usa_aus_subsidy_110", 110_000.0, 120_000.0, 0.5),
        ("usa_aus_subsidy_110", 80_000.0, 90_000.0, 2.0),
    ]
    for scen, floor, strike, sigma in points:
        want = _expected(scen, floor, strike, sigma)
        got = ds.sel(scenario=scen, floor=floor, strike=strike, sigma=sigma)
        for name in DEFAULT_VARIABLES:
            w = want["draw_converged" if name == "converged" else name]
            assert w.dims[0] == "draw"
            np.testing.assert_allclose(
                got[name].values,
                w.values,
                rtol=1e-12,
                atol=1e-12 * float(np.nanmax(np.abs(w.values))) if w.dtype.kind == "f" else 0,
                err_msg=f"{name} at {scen}",
            )
        assert (got.converged == 1).all()
    # the axes change what they address and nothing else: the strike does not move the floor
    # scenario, the floor level does (a higher floor raises JPN's consumer price)
    club = ds.consumer_price.sel(scenario="club_floor_110", region="JPN", draw=0)
    assert (club.sel(strike=90_000.0) == club.sel(strike=120_000.0)).all()
    assert (club.sel(floor=110_000.0) > club.sel(floor=80_000.0)).all()


def test_local_processes_and_dask_cluster_give_the_same_store(spec_file, tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    spec = spec_file()
    serial = _load(
        tp.sweep(spec, tmp_path / "serial.zarr", block_size=12, workers=1, progress=False)
    )
    local = _load(tp.sweep(spec, tmp_path / "local.zarr", block_size=12, workers=2, progress=False))
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        remote = _load(
            tp.sweep(
                spec,
                tmp_path / "dask.zarr",
                block_size=12,
                scheduler=cluster.scheduler_address,
                progress=False,
            )
        )
    for other in (local, remote):
        xr.testing.assert_identical(serial.drop_attrs(), other.drop_attrs())
        assert other.attrs["sweep_spec_hash"] == serial.attrs["sweep_spec_hash"]


def test_interrupted_sweep_resumes_without_redoing_blocks(
    spec_file, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = spec_file()
    full = _load(tp.sweep(spec, tmp_path / "full.zarr", block_size=6, workers=1, progress=False))
    real = sweep_module.solve_block
    calls: list[int] = []
    interrupt = [True]

    def flaky(plan, layout, b):
        calls.append(b)
        if b == 3 and interrupt.pop() if interrupt else False:
            raise KeyboardInterrupt  # as if Ctrl+C hit while the fourth block was solved
        return real(plan, layout, b)

    monkeypatch.setattr(sweep_module, "solve_block", flaky)
    out = tmp_path / "resumed.zarr"
    with pytest.raises(KeyboardInterrupt):
        tp.sweep(spec, out, block_size=6, workers=1, progress=False)
    assert calls == [0, 1, 2, 3]
    with pytest.raises(InputError, match="incomplete \\(3 of 8 blocks written\\)"):
        open_sweep(out)
    partial = open_sweep(out, allow_incomplete=True)
    assert partial.block_done.values.tolist() == [1, 1, 1, 0, 0, 0, 0, 0]
    calls.clear()
    tp.sweep(spec, out, workers=1, progress=False)  # resume: the store knows its blocks
    assert calls == [3, 4, 5, 6, 7]
    xr.testing.assert_identical(full.drop_attrs(), _load(out).drop_attrs())
    calls.clear()
    tp.sweep(spec, out, workers=1, progress=False)  # nothing left to do
    assert calls == []
    # a changed spec is refused; --overwrite starts again
    changed = copy.deepcopy(SPEC)
    changed["grid"][0]["values"] = [80_000.0, 100_000.0]
    with pytest.raises(InputError, match="different sweep spec"):
        tp.sweep(spec_file(changed, "changed.toml"), out, workers=1, progress=False)
    with pytest.raises(InputError, match="differs from the store's blocks"):
        tp.sweep(spec, out, block_size=3, workers=1, progress=False)
    calls.clear()
    tp.sweep(spec_file(changed, "changed.toml"), out, workers=1, progress=False, resume=False)
    assert calls == [0, 1]  # 48 rows: one default block per substitution grid point
    assert _load(out).floor.values.tolist() == [80_000.0, 100_000.0]


def _bad(**change: Any) -> dict[str, Any]:
    spec = copy.deepcopy(SPEC)
    for key, value in change.items():
        if key.startswith("grid0_"):
            spec["grid"][0][key[6:]] = value
        elif value is None:
            spec.pop(key)
        else:
            spec[key] = value
    return spec


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"only": ["club_floor"]}, "only", "unknown scenario 'club_floor' (did you mean"),
        ({"grid0_scenario": "nope"}, "grid[0].scenario", "unknown scenario 'nope'"),
        ({"grid0_field": "flor"}, "grid[0].field", "did you mean 'floor'?) (allowed: floor"),
        ({"grid0_measure": "tariff"}, "grid[0].measure", "has no 'tariff' measure"),
        ({"grid0_measure": 3}, "grid[0].measure", "has 1 measure(s) (allowed: 0..0)"),
        ({"grid0_values": []}, "grid[0].values", "at least 1 item"),
        ({"grid0_values": [1.0, 1.0]}, "grid[0]", "listed twice"),
        ({"grid0_values": [80_000.0, -5.0]}, "grid[0].values[1]", "greater than 0"),
        ({"grid0_name": "region"}, "grid[0].name", "reserved"),
        ({"grid0_flor": 1.0}, "grid[0].flor", "unknown field"),
        ({"variables": ["welfare"]}, "variables[0]", "unknown variable 'welfare'"),
        ({"variables": ["trade_flow"]}, "variables[0]", "unknown variable 'trade_flow' with draws"),
        ({"seed": None}, "", "draws need a `seed`"),
        ({"draws": 1}, "", "at least 2"),
        ({"scenarios": "nope"}, "scenarios", "no shipped scenario set 'nope'"),
        ({"scenarios": "ree_magnets"}, "scenarios", "is a value chain; sweeps run over single"),
        ({"scenarios": None}, "", "give either `scenarios`"),
        ({"colour": "red"}, "colour", "unknown field"),
    ],
)
def test_bad_specs_name_file_field_and_what_is_allowed(
    spec_file, change: dict[str, Any], field: str, message: str
) -> None:
    path = spec_file(_bad(**change))
    with pytest.raises(InputError) as info:
        load_sweep(path)
    assert info.value.source == str(path)
    assert any(f == field and message in m for f, m in info.value.problems), info.value.problems


def test_bad_elasticity_axes(spec_file) -> None:
    spec = copy.deepcopy(SPEC)
    spec["grid"][2]["regions"] = ["JPN", "JP"]
    with pytest.raises(InputError, match=r"grid\[2\]\.regions: unknown region 'JP'"):
        load_sweep(spec_file(spec))
    spec["grid"][2].update(regions=["JPN"], mode="set", values=[3.0, 20_000.0])
    with pytest.raises(InputError, match=r"grid\[2\]\.values\[1\]: gives an invalid market"):
        load_sweep(spec_file(spec))
    del spec["grid"][2]["mode"]
    with pytest.raises(InputError, match="`mode` is required"):
        load_sweep(spec_file(spec))


def test_bad_block_size_and_output(spec_file, tmp_path: Path) -> None:
    spec = spec_file()
    with pytest.raises(InputError, match="smaller than draws \\+ 1 = 3"):
        tp.sweep(spec, tmp_path / "a.zarr", block_size=2, progress=False)
    with pytest.raises(InputError, match="whole number"):
        tp.sweep(spec, tmp_path / "a.zarr", block_size=0, progress=False)
    assert not (tmp_path / "a.zarr").exists()
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    for resume in (True, False):
        with pytest.raises(InputError, match="not a tradepolicy sweep store"):
            tp.sweep(spec, other, resume=resume, progress=False)
    assert (other / "keep.txt").read_text() == "mine"


def test_inline_scenarios_baseline_and_variables(spec_file, tmp_path: Path) -> None:
    spec = {
        "market": "ndpr_oxide",
        "target_share": 0.6,
        "include_baseline": True,
        "variables": ["trade_flow", "welfare_change"],
        "scenario": [
            {
                "name": "us_tariff",
                "measure": [
                    {"type": "tariff", "importers": ["USA"], "exporters": ["CHN"], "rate": 0.25}
                ],
            }
        ],
        "grid": [{"name": "rate", "measure": 0, "field": "rate", "values": [0.0, 0.25]}],
    }
    ds = _load(tp.sweep(spec_file(spec), tmp_path / "t.zarr", workers=1, progress=False))
    assert ds.scenario.values.tolist() == ["baseline", "us_tariff"]
    assert ds.trade_flow.dims == ("scenario", "rate", "draw", "exporter", "importer")
    assert set(ds.data_vars) == {"trade_flow", "welfare_change", "converged", "block_done"}
    # a zero tariff is the baseline: flows replicate the base data, welfare is zero
    base = ds.sel(scenario="baseline", rate=0.25, draw=0)
    zero = ds.sel(scenario="us_tariff", rate=0.0, draw=0)
    np.testing.assert_allclose(zero.trade_flow, base.trade_flow, rtol=1e-10)
    np.testing.assert_allclose(zero.welfare_change, 0.0, atol=1e-6)
    np.testing.assert_allclose(base.trade_flow, tp.load_market("ndpr_oxide").flows, rtol=1e-10)
    hit = ds.trade_flow.sel(scenario="us_tariff", rate=0.25, draw=0, exporter="CHN", importer="USA")
    assert hit < base.trade_flow.sel(exporter="CHN", importer="USA")


def test_cli_sweep(spec_file, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "cli.zarr"
    res = runner.invoke(
        app, ["sweep", str(spec_file()), "-o", str(out), "--workers", "1", "--block-size", "24"]
    )
    assert res.exit_code == 0, res.output
    assert "48 rows" in res.output
    ds = _load(out)
    assert ds.sizes["block"] == 2 and ds.attrs["history"].endswith(
        f"tradepolicy sweep {spec_file()} -o {out} --block-size 24"
    )
    res = runner.invoke(app, ["sweep", str(spec_file()), "-o", str(out), "--workers", "1"])
    assert res.exit_code == 0, res.output  # resumed: nothing left to solve
    bad = spec_file(_bad(grid0_field="flor"), "bad.toml")
    res = runner.invoke(app, ["sweep", str(bad), "-o", str(tmp_path / "x.zarr")])
    assert res.exit_code == 2
    assert str(bad) in res.output and "grid[0].field" in res.output
    assert not (tmp_path / "x.zarr").exists()
