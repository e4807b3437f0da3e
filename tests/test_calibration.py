"""The calibration pipeline: data schemas, recipes on simulated data, episode matching,
determinism of `tradepolicy calibrate`, and the shipped markets against their source data."""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import tradepolicy as tp
from tradepolicy import measures as M
from tradepolicy.calibration import pipeline
from tradepolicy.calibration.schema import (
    load_common_data,
    load_market_data,
    market_ids,
)
from tradepolicy.cli import app
from tradepolicy.errors import InputError

ROOT = Path(__file__).parents[1]
DATA = ROOT / "calibration" / "data"
REGIONS = ["CHN", "USA", "EU", "JPN", "ROW"]
PROD = {"CHN": 900.0, "USA": 40.0, "EU": 20.0, "JPN": 0.0, "ROW": 40.0}
CONS = {"CHN": 600.0, "USA": 120.0, "EU": 150.0, "JPN": 100.0, "ROW": 30.0}


def _write(path: Path, frame: pd.DataFrame) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False, lineterminator="\n")


def make_data(root: Path, *, episode: tuple[float, float] | None = None, seed: int = 0) -> Path:
    """A complete synthetic data directory with one market ``toy``."""
    src = "synthetic test data"
    _write(
        root / "markets.csv",
        pd.DataFrame(
            [
                {
                    "market": "toy",
                    "commodity": "Toy metal",
                    "stage": "refined",
                    "quantity_unit": "t",
                    "currency": "USD",
                    "base_year": 2024,
                    "regions": " ".join(REGIONS),
                    "description": "a synthetic market for tests",
                    "source": src,
                }
            ]
        ),
    )
    m = root / "toy"
    _write(
        m / "production.csv",
        pd.DataFrame({"region": REGIONS, "quantity": PROD.values(), "source": src}),
    )
    _write(
        m / "consumption.csv",
        pd.DataFrame({"region": REGIONS, "quantity": CONS.values(), "source": src}),
    )
    _write(
        m / "flows.csv",
        pd.DataFrame(
            {
                "exporter": ["CHN", "USA", "CHN", "CHN"],
                "importer": ["CHN", "USA", "USA", "JPN"],
                "quantity": [600.0, 30.0, 70.0, 90.0],
                "source": src,
            }
        ),
    )
    _write(
        m / "base_prices.csv",
        pd.DataFrame({"region": ["default"], "price": [1000.0], "source": src}),
    )
    _write(
        m / "priors.csv",
        pd.DataFrame(
            {
                "parameter": ["supply", "demand", "substitution"],
                "region": "default",
                "value": [0.8, 0.4, 3.0],
                "low": [0.2, 0.1, 1.0],
                "high": [1.5, 0.8, 6.0],
                "source": src,
            }
        ),
    )
    rng = np.random.default_rng(seed)
    years = np.arange(2000, 2025)
    lp = np.empty(years.size)
    lp[0] = np.log(1000.0)
    for t in range(1, years.size):
        lp[t] = 0.3 * np.log(1000.0) + 0.7 * lp[t - 1] + 0.15 * rng.standard_normal()
    _write(
        root / "price_series.csv",
        pd.DataFrame(
            {
                "market": "toy",
                "series": "toy price",
                "period": years.astype(str),
                "frequency": "annual",
                "price": np.round(np.exp(lp), 6),
                "unit": "USD/t",
                "source": src,
            }
        ),
    )
    _write(
        root / "deflator.csv",
        pd.DataFrame(
            {"year": years, "index": np.round(np.linspace(0.8, 1.3, years.size), 6), "source": src}
        ),
    )
    # supply panel with a true short-run elasticity of 0.6 on last year's real price
    real = pd.Series(np.exp(lp) / np.linspace(0.8, 1.3, years.size), index=years)
    rows = []
    for c, level in (("A", 5.0), ("B", 3.0), ("C", 4.0)):
        for y in years[1:]:
            q = np.exp(level + 0.6 * np.log(real[y - 1]) + 0.05 * rng.standard_normal())
            rows.append(
                {
                    "market": "toy",
                    "country": c,
                    "year": y,
                    "quantity": q,
                    "unit": "t",
                    "source": src,
                }
            )
    _write(root / "supply_panel.csv", pd.DataFrame(rows))
    ep = []
    if episode is not None:
        ep = [
            {
                "market": "toy",
                "episode": "test_controls",
                "variable": "importer_price_change",
                "region": "EU",
                "value": episode[0],
                "unit": "1",
                "source": src,
            },
            {
                "market": "toy",
                "episode": "test_controls",
                "variable": "exporter_price_change",
                "region": "CHN",
                "value": episode[1],
                "unit": "1",
                "source": src,
            },
        ]
    _write(
        root / "episodes.csv",
        pd.DataFrame(
            ep, columns=["market", "episode", "variable", "region", "value", "unit", "source"]
        ),
    )
    return root


def _calibrate(data: Path, out: Path, *extra: str) -> tuple[int, str]:
    res = CliRunner().invoke(
        app,
        [
            "calibrate",
            "--data",
            str(data),
            "--estimates",
            str(out / "e"),
            "--markets",
            str(out / "m"),
            "--docs",
            str(out / "d"),
            *extra,
        ],
    )
    return res.exit_code, res.output


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


# -- schemas ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("file", "edit", "expect"),
    [
        (
            "toy/production.csv",
            lambda f: f.assign(quantity=f["quantity"].where(f.index != 1, -5)),
            r"line 3: quantity",
        ),
        (
            "toy/flows.csv",
            lambda f: f.assign(exporter=f["exporter"].replace("USA", "XXX")),
            r"unknown region 'XXX'",
        ),
        (
            "toy/priors.csv",
            lambda f: f.assign(low=f["low"].where(f.index != 0, 1.2)),
            r"low <= value <= high",
        ),
        (
            "toy/priors.csv",
            lambda f: f.assign(parameter=f["parameter"].replace("demand", "demnd")),
            r"parameter",
        ),
        ("toy/base_prices.csv", lambda f: f.assign(region="CHN"), r"`default` row is required"),
        (
            "toy/consumption.csv",
            lambda f: f.assign(quantity=f["quantity"] * 1.1),
            r"differs from world production",
        ),
        ("toy/production.csv", lambda f: f.drop(columns="source"), r"missing \['source'\]"),
        ("toy/production.csv", lambda f: f.assign(source=""), r"line 2: source"),
        ("toy/flows.csv", lambda f: pd.concat([f, f.iloc[:1]]), r"share a key"),
        ("toy/production.csv", lambda f: f.iloc[1:], r"no row for \['CHN'\]"),
    ],
)
def test_bad_market_data_is_rejected_naming_file_and_field(tmp_path, file, edit, expect):
    root = make_data(tmp_path / "data")
    path = root / file
    _write(path, edit(pd.read_csv(path, keep_default_na=False)))
    with pytest.raises(InputError, match=expect) as info:
        load_market_data(root, "toy")
    assert str(path) in str(info.value)


def test_bad_common_data_is_rejected(tmp_path):
    root = make_data(tmp_path / "data")
    prices = pd.read_csv(root / "price_series.csv", dtype=str)
    prices.loc[3, "period"] = "2003-07"
    _write(root / "price_series.csv", prices)
    with pytest.raises(InputError, match=r"line 5: .*YYYY for annual"):
        load_common_data(root)
    with pytest.raises(InputError, match=r"no market 'nope' \(listed: toy\)"):
        load_market_data(root, "nope")


# -- recipes on simulated data ----------------------------------------------------------------
def test_supply_panel_recovers_the_elasticity(tmp_path):
    root = make_data(tmp_path / "data", seed=3)
    common = load_common_data(root)
    _, prices = pipeline.real_prices(common, "toy")
    est, why = pipeline.fit_supply_panel(common, "toy", prices)
    assert why == "" and est is not None
    b, se = est.params["ln_p_lag"], est.bse["ln_p_lag"]
    assert abs(b - 0.6) < 4 * se and se < 0.1


def test_thin_panel_is_reported_not_estimated(tmp_path):
    root = make_data(tmp_path / "data")
    common = load_common_data(root)
    common.supply_panel = common.supply_panel[common.supply_panel["year"] >= 2022]
    _, prices = pipeline.real_prices(common, "toy")
    est, why = pipeline.fit_supply_panel(common, "toy", prices)
    assert est is None and "too thin" in why


def _episode_from_model(root: Path, sigma: float, tau: float) -> tuple[float, float]:
    """The EU price rise and China's price fall the toy model gives at (σ, τ), with the other
    parameters as the pipeline calibrates them from ``root``."""
    from tradepolicy.calibration.episodes import _market_dict

    cal = pipeline.calibrate_market(load_market_data(root, "toy"), load_common_data(root))
    d = _market_dict(cal.data, cal.matrix, cal.parameters)
    d["elasticities"]["substitution"] = {"default": sigma}
    mkt = tp.Market.from_dict(d, source="episode truth")
    scen = tp.Scenario(name="x", measures=[M.ExportTax(exporter="CHN", rate=tau)])
    ds = tp.solve([scen], mkt).isel(commodity=0)

    def change(var: str, region: str) -> float:
        v = ds[var].sel(region=region)
        return float(v.sel(scenario="x") / v.sel(scenario="baseline") - 1)

    return change("consumer_price", "EU"), change("producer_price", "CHN")


def test_episode_matching_recovers_sigma(tmp_path):
    root = make_data(tmp_path / "data")
    imp, exp_ = _episode_from_model(root, sigma=2.5, tau=0.6)
    assert imp > 0.2 and exp_ < 0
    root = make_data(tmp_path / "data", episode=(imp, exp_))
    data, common = load_market_data(root, "toy"), load_common_data(root)
    cal = pipeline.calibrate_market(data, common)
    fit = cal.episode
    assert fit is not None and fit.identified
    assert fit.sigma == pytest.approx(2.5, rel=2e-3)
    assert np.interp(fit.sigma, fit.profile["sigma"], fit.profile["tau"]) == pytest.approx(
        0.6, rel=2e-2
    )
    assert fit.sigma_se > 0 and np.isfinite(fit.sigma_se)
    sub = next(p for p in cal.parameters if p.kind == "substitution")
    assert sub.basis == "episode+prior" and 0 < sub.weight < 1
    assert min(sub.prior, fit.sigma) <= sub.value <= max(sub.prior, fit.sigma)


def test_unreachable_episode_keeps_the_prior(tmp_path):
    root = make_data(tmp_path / "data", episode=(0.4, 0.9))  # China's price cannot rise +90%
    cal = pipeline.calibrate_market(load_market_data(root, "toy"), load_common_data(root))
    assert not cal.episode.identified
    sub = next(p for p in cal.parameters if p.kind == "substitution")
    assert sub.value == sub.prior and "not identified" in cal.episode.describe()


# -- the command --------------------------------------------------------------------------------
def test_calibrate_is_deterministic_and_check_detects_changes(tmp_path):
    data = make_data(tmp_path / "data")
    code, output = _calibrate(data, tmp_path / "a")
    assert code == 0, output
    assert "Elasticities" in output and "price_process" in output and "coef" in output
    code, _ = _calibrate(data, tmp_path / "b")
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert {
        "e/toy/price_process.nc",
        "e/toy/supply_panel.nc",
        "e/toy/gravity.nc",
        "e/toy/elasticities.nc",
        "m/toy.toml",
        "m/toy_flows.csv",
    } <= set(_digest(tmp_path / "a"))
    code, output = _calibrate(data, tmp_path / "a", "--check")
    assert code == 0 and "all up to date" in output
    prices = pd.read_csv(data / "price_series.csv", dtype=str)
    prices.loc[0, "price"] = "1234.5"
    _write(data / "price_series.csv", prices)
    before = _digest(tmp_path / "a")
    code, output = _calibrate(data, tmp_path / "a", "--check")
    assert code == 1 and "out of date" in output
    assert _digest(tmp_path / "a") == before  # --check writes nothing


def test_calibrated_market_reproduces_its_data(tmp_path):
    data = make_data(tmp_path / "data")
    assert _calibrate(data, tmp_path / "o")[0] == 0
    mkt = tp.load_market(tmp_path / "o" / "m" / "toy.toml")
    np.testing.assert_allclose(mkt.production, [PROD[r] for r in mkt.regions], rtol=1e-9)
    np.testing.assert_allclose(mkt.consumption, [CONS[r] for r in mkt.regions], rtol=1e-9)
    assert mkt.flows[mkt.index("CHN")[0], mkt.index("JPN")[0]] == 90.0  # a known flow, exactly
    assert mkt.spec.elasticity_basis.supply["default"] == "estimated+prior"
    assert mkt.has_uncertainty


def test_bad_data_fails_the_command_cleanly(tmp_path):
    data = make_data(tmp_path / "data")
    _write(data / "toy" / "priors.csv", pd.DataFrame({"parameter": ["supply"]}))
    code, output = _calibrate(data, tmp_path / "o")
    flat = output.replace("\n", "")
    assert code == 2 and "priors.csv" in flat and "header" in flat
    assert not (tmp_path / "o").exists()


# -- shipped data -------------------------------------------------------------------------------
SHIPPED = market_ids(DATA) if (DATA / "markets.csv").exists() else []


@pytest.mark.parametrize("mid", SHIPPED)
def test_shipped_market_replicates_its_source_data(mid):
    data = load_market_data(DATA, mid)
    mkt = tp.load_market(mid)
    assert list(mkt.regions) == data.regions
    prod = data.production.set_index("region")["quantity"].reindex(mkt.regions).to_numpy(float)
    cons = data.consumption.set_index("region")["quantity"].reindex(mkt.regions).to_numpy(float)
    flows = mkt.flows
    if not data.seed_shares.empty:  # seeds move supply between origins, not consumption
        np.testing.assert_allclose(flows.sum(axis=0), cons, rtol=1e-9)
        assert flows.sum() == pytest.approx(prod.sum(), rel=1e-9)
    else:
        np.testing.assert_allclose(flows.sum(axis=1), prod, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(flows.sum(axis=0), cons, rtol=1e-9, atol=1e-9)
        for r in data.flows.itertuples(index=False):
            assert flows[mkt.index(r.exporter)[0], mkt.index(r.importer)[0]] == pytest.approx(
                r.quantity, rel=1e-12
            )
    assert mkt.spec.calibration_id.startswith(mid)
    base = tp.solve([], mkt).isel(commodity=0).sel(scenario="baseline")
    np.testing.assert_allclose(base.trade_flow.values, flows, rtol=1e-10, atol=1e-9)


@pytest.mark.skipif(not SHIPPED, reason="no calibration data in this checkout")
def test_committed_market_files_are_up_to_date(tmp_path):
    for sub in ("calibration/estimates", "models/equilibrium", "docs/markets"):
        if (ROOT / sub).exists():
            shutil.copytree(ROOT / sub, tmp_path / sub)
    res = CliRunner().invoke(
        app,
        [
            "calibrate",
            "--data",
            str(DATA),
            "--estimates",
            str(tmp_path / "calibration/estimates"),
            "--markets",
            str(tmp_path / "models/equilibrium"),
            "--docs",
            str(tmp_path / "docs/markets"),
            "--check",
        ],
    )
    assert res.exit_code == 0, res.output


# -- reproducibility across library versions ------------------------------------------------
def _perturb_outputs(folder: Path, rel: float) -> None:
    """Scale every stored estimate and every market-file float by ``1 + rel``, as a
    different BLAS or library version would (relative noise), keeping all text."""
    import tomllib

    import tomli_w
    import xarray as xr

    for path in sorted((folder / "e").rglob("*.nc")):
        with xr.open_dataset(path, engine="scipy") as ds:
            ds = ds.load()
        for name in ds.data_vars:
            if ds[name].dtype.kind == "f":
                ds[name] = ds[name] * (1 + rel)
        path.unlink()
        ds.to_netcdf(path, engine="scipy")
    for path in sorted((folder / "m").glob("*.toml")):
        header = [ln for ln in path.read_text().splitlines() if ln.startswith("#")]
        doc = tomllib.loads(path.read_text())

        def scale(x):
            if isinstance(x, dict):
                return {k: scale(v) for k, v in x.items()}
            return x * (1 + rel) if isinstance(x, float) else x

        path.write_text("\n".join(header) + "\n" + tomli_w.dumps(scale(doc)))
    for path in sorted((folder / "m").glob("*_flows.csv")):
        flows = pd.read_csv(path, dtype={"quantity": float})
        flows["quantity"] = flows["quantity"] * (1 + rel)
        flows.to_csv(path, index=False, lineterminator="\n", float_format="%.17g")


def test_check_ignores_floating_point_noise_but_not_real_changes(tmp_path):
    data = make_data(tmp_path / "data")
    out = tmp_path / "o"
    assert _calibrate(data, out)[0] == 0
    _perturb_outputs(out, 1e-12)  # what another BLAS gives: passes
    code, output = _calibrate(data, out, "--check")
    assert code == 0 and "all up to date" in output, output
    _perturb_outputs(out, 1e-6)  # a real change of the results: detected
    code, output = _calibrate(data, out, "--check")
    assert code == 1 and "out of date" in output
    flat = output.replace("\n", "")
    assert str(out / "e" / "toy" / "price_process.nc") in flat  # names the real file
    assert str(out / "m" / "toy.toml") in flat


def test_check_detects_a_changed_data_row(tmp_path):
    data = make_data(tmp_path / "data")
    out = tmp_path / "o"
    assert _calibrate(data, out)[0] == 0
    flows = pd.read_csv(data / "toy" / "flows.csv")
    flows.loc[3, "quantity"] = 90.001  # a 1e-5 change in one known flow
    _write(data / "toy" / "flows.csv", flows)
    before = _digest(out)
    code, output = _calibrate(data, out, "--check")
    assert code == 1 and "toy_flows.csv" in output.replace("\n", "")
    assert _digest(out) == before


def test_datasets_match_tolerance_and_nan():
    from tradepolicy.calibration.estimation import RTOL, datasets_match

    est = pipeline.Estimate(
        name="x",
        params=pd.Series({"a": 2.0, "b": -1.0}),
        bse=pd.Series({"a": 0.5, "b": 0.1}),
        cov=pd.DataFrame([[0.25, 1e-3], [1e-3, 0.01]], index=["a", "b"], columns=["a", "b"]),
        method="m",
        sample="s",
        nobs=10,
        data_hash="h",
        extra={"sigma": 0.3},
    )
    ds = est.to_dataset()
    assert datasets_match(ds, ds.copy(deep=True))
    noisy = ds.copy(deep=True)
    noisy["covariance"] = noisy["covariance"] + 1e-3 * RTOL * 0.05  # noise on a variance scale
    noisy["estimate"] = noisy["estimate"] * (1 + RTOL / 10)
    noisy.attrs["extra"] = '{"sigma": 0.30000000000001}'
    assert datasets_match(ds, noisy)
    for edit in (
        lambda d: d.assign(estimate=d["estimate"] * (1 + 100 * RTOL)),
        lambda d: d.assign(std_error=d["std_error"].where(d["param"] != "a")),  # nan
        lambda d: d.assign_attrs(data_hash="other"),
        lambda d: d.assign_attrs(extra='{"sigma": 0.31}'),
    ):
        assert not datasets_match(ds, edit(ds.copy(deep=True)))


@pytest.mark.parametrize("noise", [0.0, 1e-16, 7e-19, np.nan, np.inf])
def test_degenerate_standard_error_is_not_identified(noise):
    est = pipeline.Estimate(
        name="x",
        params=pd.Series({"const": -12.23, "home": 1.0}),
        bse=pd.Series({"const": noise, "home": 0.04}),
        cov=pd.DataFrame(
            np.diag([noise**2, 0.0016]), index=["const", "home"], columns=["const", "home"]
        ),
        method="m",
        sample="s",
        nobs=4,
        data_hash="h",
    )
    assert list(est.identified) == [False, True]
    assert np.isnan(est.bse["const"]) and np.isnan(est.cov.loc["const"]).all()
    assert est.cov.loc["home", "home"] == 0.0016
    row = est.summary_strings().loc["const"]
    assert list(row) == ["-12.23", "not identified", "–", "–", "–"]


def test_gravity_constant_with_one_foreign_flow_is_not_identified(tmp_path):
    """With one known foreign flow the PPML fit reproduces it exactly, so its HC1 variance of
    the constant is zero in exact arithmetic (the home effect absorbs the domestic residuals):
    the constant's standard error is machine noise and must read "not identified"."""
    data = make_data(tmp_path / "data")
    flows = pd.read_csv(data / "toy" / "flows.csv")
    _write(data / "toy" / "flows.csv", flows[flows["importer"] != "JPN"])  # CHN->USA only
    cal = pipeline.calibrate_market(load_market_data(data, "toy"), load_common_data(data))
    g = cal.estimates["gravity"]
    assert not g.identified["const"] and g.identified["home"]
    text = pipeline.market_document(cal)["sources"]["flows"]
    assert "const" in text and "(s.e. not identified)" in text
    assert "nan" not in text and "e-1" not in text
    md = pipeline.estimates_markdown(cal)
    assert "| const |" in md and "not identified" in md and "nan" not in md


# -- what users see carries no internal notes ------------------------------------------------
INTERNAL = re.compile(
    r"\[UNVERIFIED|UNVERIFIED recollection|NOTES\.md|NOTES §|shared/|DESIGN(\.md)? ?§|\[assumption"
    r"|\[2nd|\[gap\]|\(se nan\)|\bnan\b|not in shared"
)


def _no_internal(text: str, where: str) -> None:
    hits = sorted({m.group(0) for m in INTERNAL.finditer(text)})
    assert not hits, f"{where} shows internal notes or machine noise: {hits}"


def test_internal_scan_catches_tags():
    for bad in (
        "x [UNVERIFIED] y",
        "see NOTES.md §6",
        "shared/data/a.csv",
        "[assumption] z",
        "const -12 (se nan)",
        "std err nan",
    ):
        with pytest.raises(AssertionError):
            _no_internal(bad, "probe")
    _no_internal("Assumption: the prior; const -12 (s.e. not identified); finance", "probe")


@pytest.mark.parametrize("mid", SHIPPED)
def test_shipped_market_files_and_docs_carry_no_internal_notes(mid):
    for path in (
        ROOT / "models" / "equilibrium" / f"{mid}.toml",
        ROOT / "models" / "equilibrium" / f"{mid}_flows.csv",
        ROOT / "docs" / "markets" / f"{mid}.md",
    ):
        _no_internal(path.read_text(encoding="utf-8"), str(path))


SETS = sorted((ROOT / "scenarios").glob("*.toml"))


def test_markets_listing_carries_no_internal_notes():
    res = CliRunner().invoke(app, ["markets"])
    assert res.exit_code == 0, res.output
    _no_internal(res.output, "tradepolicy markets")


@pytest.mark.parametrize("path", SETS, ids=[p.stem for p in SETS])
def test_run_output_carries_no_internal_notes(path):
    text = path.read_text(encoding="utf-8")
    _no_internal(text, str(path))
    risk = "[[risk]]" in text  # a risk set is refused without draws (docs/risk.md)
    args = ["run", str(path), *(["--draws", "3", "--seed", "1"] if risk else [])]
    res = CliRunner().invoke(app, args, terminal_width=200)
    assert res.exit_code in (0, 1), res.output
    if risk:  # its own output too: the cost of inaction and the risk table
        assert "Cost of inaction" in res.output and "Disruption risk" in res.output
    _no_internal(res.output, f"tradepolicy run {path.name}")


def test_installed_wheel_ships_its_calibration(tmp_path, monkeypatch) -> None:
    """Without a checkout, calibration data and estimates come from the wheel's copy; writing
    into the installed package needs explicit folders."""
    from tradepolicy import _paths
    from tradepolicy.calibration import pipeline

    shipped = tmp_path / "_shipped" / "calibration"
    (shipped / "data").mkdir(parents=True)
    monkeypatch.setattr(_paths, "_PKG", tmp_path)
    monkeypatch.setattr(_paths, "checkout_root", lambda: None)
    assert _paths.calibration_dir() == shipped
    assert pipeline.data_dir() == shipped / "data"
    res = CliRunner().invoke(app, ["calibrate"])
    assert res.exit_code == 2
    assert "read-only" in " ".join(res.output.split())
