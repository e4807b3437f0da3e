"""The command line: ``tradepolicy run | validate | markets | scenarios | --version``."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from typer.testing import CliRunner

import tradepolicy as tp
from tradepolicy.cli import app

runner = CliRunner()
ENV = {"COLUMNS": "250"}  # rich wraps at the terminal width; keep tables readable

TARIFF_ONLY = """\
market = "toy.toml"

[[scenario]]
name = "us_tariff"
[[scenario.measure]]
type = "tariff"
importers = ["USA"]
exporters = ["CHN"]
rate = 0.5

[[scenario]]
name = "chn_tax"
[[scenario.measure]]
type = "export_tax"
exporter = "CHN"
destinations = ["USA", "EU"]
rate = 0.1
"""


def invoke(*args: str):
    return runner.invoke(app, list(args), env=ENV)


def test_version() -> None:
    res = invoke("--version")
    assert res.exit_code == 0
    assert res.output.strip() == f"tradepolicy {tp.__version__}"


def test_no_args_shows_help() -> None:
    res = invoke()
    assert res.exit_code in (0, 2)  # click >= 8.2 exits 2 for no_args_is_help
    for cmd in ("run", "validate", "markets", "scenarios"):
        assert cmd in res.output


def test_run_prints_comparison_and_writes_netcdf(toy_files, tmp_path) -> None:
    _, scen = toy_files
    out = tmp_path / "results" / "toy.nc"
    res = invoke("run", str(scen), "-o", str(out))
    assert res.exit_code == 0, res.output
    for name, words in (
        ("us_tariff", "US tariff"),
        ("chn_export_tax", "China export tax"),
        ("shock", "Shock"),
    ):  # each option in words, with the identifier that names it in the file
        assert f"{words} ({name}) vs baseline" in res.output
    assert "World" in res.output
    assert "Summary" in res.output
    assert "target 60%" in res.output  # the set's target_share is shown
    assert f"wrote {out}" in res.output
    ds = tp.open_results(out)
    assert list(ds.scenario.values) == ["baseline", "us_tariff", "chn_export_tax", "shock"]
    assert (ds.converged == 1).all()
    assert ds.attrs["formulation"] == "levels"
    xr.testing.assert_identical(
        ds,
        tp.solve(tp.load_scenarios(scen)).assign_attrs(
            history=ds.attrs["history"], date_created=ds.attrs["date_created"]
        ),
    )


def test_run_quiet(toy_files, tmp_path) -> None:
    _, scen = toy_files
    out = tmp_path / "q.nc"
    res = invoke("run", str(scen), "-q", "-o", str(out))
    assert res.exit_code == 0, res.output
    assert "World" not in res.output and "vs baseline" not in res.output
    assert out.exists()


def test_run_target_share_override(toy_files, tmp_path) -> None:
    _, scen = toy_files
    out = tmp_path / "t.nc"
    res = invoke("run", str(scen), "--target-share", "0.5", "-o", str(out))
    assert res.exit_code == 0, res.output
    assert "target 50%" in res.output
    ds = tp.open_results(out)
    assert ds.attrs["target_share"] == 0.5
    assert set(np.unique(ds.meets_target.values)) <= {0, 1}


def test_run_gsim_linear_tariff_only(toy_files, write_toml, tmp_path) -> None:
    scen = write_toml(TARIFF_ONLY, "tariffs.toml")
    out = tmp_path / "gsim.nc"
    res = invoke("run", str(scen), "--formulation", "gsim-linear", "-o", str(out))
    assert res.exit_code == 0, res.output
    assert "US tariff (us_tariff) vs baseline" in res.output
    assert "World" in res.output
    ds = tp.open_results(out)
    assert ds.attrs["formulation"] == "gsim-linear"
    assert (ds.converged == 1).all()


def test_run_gsim_linear_rejects_shocks(toy_files, tmp_path) -> None:
    _, scen = toy_files
    out = tmp_path / "gsim.nc"
    res = invoke("run", str(scen), "--formulation", "gsim-linear", "-o", str(out))
    assert res.exit_code == 2
    text = " ".join(res.output.split())
    assert "'supply_shock' is not available in the GSIM linear formulation" in text
    assert not out.exists()


def test_run_unknown_formulation(toy_files) -> None:
    _, scen = toy_files
    res = invoke("run", str(scen), "--formulation", "spreadsheet")
    assert res.exit_code == 2
    assert "levels, gsim-linear" in res.output


def test_run_missing_file(tmp_path) -> None:
    res = invoke("run", str(tmp_path / "none.toml"))
    assert res.exit_code == 2
    assert "file does not exist" in res.output


def test_markets_lists_shipped_markets() -> None:
    res = invoke("markets")
    assert res.exit_code == 0, res.output
    assert "Shipped markets" in res.output
    for mid in tp.list_markets():  # may be empty while model files are being written
        assert mid in res.output


def test_scenarios_lists_shipped_sets() -> None:
    from tradepolicy._paths import scenario_files

    res = invoke("scenarios")
    assert res.exit_code == 0, res.output
    assert "Shipped scenario sets" in res.output
    for p in scenario_files():
        assert p.stem in res.output


@pytest.mark.parametrize("market_id", tp.list_markets())
def test_shipped_markets_validate(market_id) -> None:
    from tradepolicy._paths import find_market

    res = invoke("validate", str(find_market(market_id)))
    assert res.exit_code == 0, res.output
    assert f"market {market_id!r}" in res.output


def test_run_history_records_the_command(toy_files, tmp_path) -> None:
    _, scen = toy_files
    out = tmp_path / "h.nc"
    res = invoke("run", str(scen), "-q", "-o", str(out))
    assert res.exit_code == 0, res.output
    history = tp.open_results(out).attrs["history"]
    assert f"tradepolicy run {scen}" in history


MEASURES_TOML = """\
market = "toy.toml"
target_share = 0.6

[[scenario]]
name = "club_floor"
description = "Club floor on Chinese supply"
[[scenario.measure]]
type = "price_floor"
importers = ["USA", "EU"]
exempt = ["USA", "EU", "AUS"]
floor = 75000.0

[[scenario]]
name = "cfd"
[[scenario.measure]]
type = "price_gap_subsidy"
producers = ["AUS"]
strike = 65000.0
payers = { USA = 0.5, EU = 0.5 }

[[scenario]]
name = "unit_slip"
[[scenario.measure]]
type = "price_floor"
importers = ["USA"]
floor = 75.0
"""


def test_run_shows_measures_wedges_and_fiscal_costs(toy_files, tmp_path) -> None:
    path = tmp_path / "measures.toml"
    path.write_text(MEASURES_TOML, encoding="utf-8")
    res = invoke("run", str(path))
    assert res.exit_code == 0, res.output
    out = res.output
    # plain-words description of each measure
    assert "Club floor on Chinese supply" in out
    assert "A landed price floor of 75,000 USD/t applied by USA and EU" in out
    assert "AUS exempt" in out
    # per-unit wedges on the levied pairs, the levy and subsidy columns by region
    assert "Border wedges per unit" in out
    assert "CHN → USA" in out
    assert "levies" in out and "subsidies" in out
    for col in ("levies", "quota rents", "budget cost", "spending > 0", "target 60%"):
        assert col in out
    # a floor a thousand times below the base price is flagged, not refused
    assert "warning:" in out and "is it in the market's unit?" in out


def test_run_shows_bloc_dependence_and_the_options_table(tmp_path) -> None:
    res = runner.invoke(app, ["run", "ndpr_oxide", "-o", str(tmp_path / "r.nc")])
    assert res.exit_code == 0, res.output
    out = " ".join(res.output.split())
    assert "Dependence of the G7 and its partners" in out
    assert "(target 60%: meets)" in out
    assert "Options: NdPr oxide" in out
    assert "spending" in out
    assert "does not move dependence (no cost per point)" in out
    ds = tp.open_results(tmp_path / "r.nc")
    # the printed budget cost of the subsidy equals the Dataset's, with the views' sign
    budget = ds.tp.options().loc["usa_aus_subsidy_110", "budget_cost"]
    assert budget > 0 and f"{budget:,.1f}" in out


# -- the README shows real output ------------------------------------------------------------

README = Path(__file__).resolve().parents[1] / "README.md"


def _readme_block(marker: str) -> list[str]:
    """The lines of the README's fenced block that holds ``marker``."""
    lines = README.read_text(encoding="utf-8").splitlines()
    fences = [i for i, line in enumerate(lines) if line.startswith("```")]
    for start, end in zip(fences[::2], fences[1::2], strict=True):
        if any(marker in line for line in lines[start + 1 : end]):
            return lines[start + 1 : end]
    raise AssertionError(f"no README block with {marker!r}")


def _printed(monkeypatch, *args: str) -> list[str]:
    """What ``tradepolicy run`` prints to a file or a pipe (160 columns), line by line."""
    from rich.console import Console

    from tradepolicy import cli

    buf = io.StringIO()
    monkeypatch.setattr(cli, "console", Console(file=buf, width=160, color_system=None))
    res = runner.invoke(app, ["run", *args])
    assert res.exit_code == 0, res.output
    return [line.rstrip() for line in buf.getvalue().splitlines()]


def _excerpt(block: list[str], printed: list[str]) -> bool:
    n = len(block)
    return any(printed[i : i + n] == block for i in range(len(printed) - n + 1))


@pytest.mark.parametrize(
    ("marker", "args"),
    [
        ("Options: NdPr oxide", ["scenarios/ndpr_oxide.toml"]),
        ("per stage", ["scenarios/ree_magnets.toml"]),
    ],
    ids=["options-table", "chain-stages"],
)
def test_readme_tables_are_what_run_prints(monkeypatch, marker, args) -> None:
    """The README's one-year options table and the chain's stage table are the command's own
    output, line for line: options in words, each with its identifier under it."""
    monkeypatch.chdir(README.parent)
    block = _readme_block(marker)
    printed = _printed(monkeypatch, *args)
    assert _excerpt(block, printed), "\n".join(printed)
    assert any(line.startswith("│ Baseline ") for line in block)


def test_readme_pathway_table_is_what_run_prints(monkeypatch) -> None:
    """The README's 2030 table (1000 draws) is the central run's printout but for the two
    probability columns (the central run prints 0 or 1 there): every label, id, dependence,
    point and present value as printed."""
    block = [ln for ln in _readme_block("The 2030 question") if ln[:1] in "┏┃┡│└"]
    printed = [ln for ln in _printed(monkeypatch, "ree_magnets_2030") if ln[:1] in "┏┃┡│└"]
    assert len(block) > 10

    def without_p(line: str) -> list[str]:
        cells = line.split("│") if line.startswith("│") else [line]
        return cells[:4] + cells[6:]  # cells 4 and 5: P ≤60%, P ≤50%

    n = len(block)
    start = next(i for i, ln in enumerate(printed) if ln == block[0])
    assert [without_p(ln) for ln in printed[start : start + n]] == [without_p(ln) for ln in block]
    title = " ".join(_printed(monkeypatch, "ree_magnets_2030")[:2])
    assert "at the Sintered NdFeB magnets stage" in title  # the stage in words, not its id
    labels = [ln.split("│")[1].strip() for ln in block if ln.startswith("│")]
    assert labels[:2] == ["Doing nothing", "baseline"]
    assert "Price-gap subsidy" in labels and "price_gap_subsidy" in labels
    assert "Offtake on DoD–MP terms" in labels and "offtake_dod_mp_terms" in labels


def test_run_to_a_file_cuts_no_number(monkeypatch) -> None:
    """Printed to a file or a pipe, the tables are wide enough that no cell is cut short
    ("381…" for 381.0): the one-year options table of the widest shipped names."""
    from rich.console import Console

    from tradepolicy import cli

    buf = io.StringIO()  # not a terminal: the width the command gives a file
    monkeypatch.setattr(cli, "console", Console(file=buf, width=cli.FILE_WIDTH))
    res = runner.invoke(app, ["run", "ndpr_oxide"])
    assert res.exit_code == 0, res.output
    table = [ln for ln in buf.getvalue().splitlines() if ln[:1] in "┃│"]
    assert table and not [ln for ln in table if "…" in ln]
