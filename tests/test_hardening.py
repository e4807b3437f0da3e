"""Hostile input, output paths and interrupts (issue 14): each case is a clear error (exit 2
naming the file and field), a warning, or a clean stop, never a traceback, a hang or an
overwritten input."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import pytest
import xarray as xr
from toy import TOY_SCENARIOS_TOML, to_toml
from typer.testing import CliRunner

import tradepolicy as tp
from tradepolicy import _files
from tradepolicy.cli import app

runner = CliRunner()
ENV = {"COLUMNS": "250"}
ROOT = Path(__file__).resolve().parents[1]

TARIFF = """\
market = "{market}"

[[scenario]]
name = "us_tariff"
[[scenario.measure]]
type = "tariff"
importers = ["USA"]
exporters = ["CHN"]
rate = 0.5
"""


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args], env=ENV)


def flat(text: str) -> str:
    return " ".join(text.split())


def one_measure(body: str, name: str = "opt", market: str = "toy.toml") -> str:
    return f'market = "{market}"\n\n[[scenario]]\nname = "{name}"\n[[scenario.measure]]\n{body}'


@pytest.fixture
def no_solve(monkeypatch):
    """Fail the test if the CLI starts solving (errors must come before the solve)."""

    def boom(*args, **kwargs):
        raise AssertionError("solve_many was called")

    monkeypatch.setattr("tradepolicy.cli.solve_many", boom)


def csv_market(tmp_path: Path, toy_market_dict, name: str = "flows.csv", bom: bool = False):
    """Write the toy market with its flows in a CSV next to it; returns the market path."""
    rows = ["exporter,importer,quantity"] + [
        f"{e},{i},{q}" for e, row in toy_market_dict["flows"].items() for i, q in row.items()
    ]
    text = "\n".join(rows) + "\n"
    (tmp_path / name).write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode())
    spec = dict(toy_market_dict, flows_file=name)
    del spec["flows"]
    market = tmp_path / "toy.toml"
    market.write_text(to_toml(spec), encoding="utf-8")
    return market


# -- 1. outputs never overwrite inputs; output problems before the solve ---------------------
@pytest.mark.parametrize("which", ["scenarios", "market", "flows"])
def test_output_equal_to_an_input_is_refused(tmp_path, toy_market_dict, which, no_solve) -> None:
    market = csv_market(tmp_path, toy_market_dict)
    scen = tmp_path / "s.toml"
    scen.write_text(TARIFF.format(market="toy.toml"), encoding="utf-8")
    target = {"scenarios": scen, "market": market, "flows": tmp_path / "flows.csv"}[which]
    before = target.read_bytes()
    res = invoke("run", scen, "-o", target)
    assert res.exit_code == 2, res.output
    assert f"-o {target}" in flat(res.output)
    assert "is the input file" in res.output and "overwrite" in res.output
    assert target.read_bytes() == before


def test_output_same_file_through_a_link_is_refused(toy_files, tmp_path, no_solve) -> None:
    market, scen = toy_files
    link = tmp_path / "out" / "link.nc"
    link.parent.mkdir()
    os.link(market, link)  # a hard link: another name, the same file
    before = market.read_bytes()
    res = invoke("run", scen, "-o", link)
    assert res.exit_code == 2
    assert "is the input file" in res.output
    assert market.read_bytes() == before


def test_output_is_a_directory_or_under_a_file(toy_files, tmp_path, no_solve) -> None:
    market, scen = toy_files
    res = invoke("run", scen, "-o", tmp_path)
    assert res.exit_code == 2 and "is a directory" in res.output
    res = invoke("run", scen, "-o", market / "x.nc")
    assert res.exit_code == 2
    assert f"{market} is not a directory" in flat(res.output)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only folders")
def test_output_folder_not_writable(toy_files, tmp_path, no_solve) -> None:
    _, scen = toy_files
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o500)
    res = invoke("run", scen, "-o", ro / "x.nc")
    assert res.exit_code == 2 and "not writable" in res.output


def test_brief_output_equal_to_results_is_refused(toy_files, tmp_path) -> None:
    _, scen = toy_files
    out = tmp_path / "r.nc"
    assert invoke("run", scen, "-q", "-o", out).exit_code == 0
    before = out.read_bytes()
    res = invoke("brief", out, "-o", out)
    assert res.exit_code == 2 and "is the input file" in res.output
    assert out.read_bytes() == before


# -- 2. files: special files, size, encoding, paths inside files -----------------------------
def test_directory_fifo_and_device_refused_without_blocking(tmp_path) -> None:
    fifo = tmp_path / "pipe.toml"
    os.mkfifo(fifo)
    start = time.monotonic()
    for path, kind in (
        (tmp_path, "a directory"),
        (fifo, "a named pipe"),
        ("/dev/zero", "a device"),
    ):
        res = invoke("validate", path)
        assert res.exit_code == 2, res.output
        assert f"invalid: {path}" in flat(res.output) and f"is {kind}" in res.output
    assert time.monotonic() - start < 10  # nothing blocked on the pipe or read /dev/zero


def test_flows_file_fifo_refused(tmp_path, toy_market_dict) -> None:
    market = csv_market(tmp_path, toy_market_dict, name="pipe.csv")
    (tmp_path / "pipe.csv").unlink()
    os.mkfifo(tmp_path / "pipe.csv")
    with pytest.raises(tp.InputError) as info:
        tp.load_market(market)
    msg = str(info.value)
    assert msg.splitlines()[0] == str(market)
    assert "flows_file:" in msg and "is a named pipe (FIFO), not a regular file" in msg


def test_input_size_is_capped(tmp_path, toy_files, monkeypatch) -> None:
    market, _ = toy_files
    monkeypatch.setattr(_files, "MAX_INPUT_BYTES", 100)
    res = invoke("validate", market)
    assert res.exit_code == 2
    assert "input files are limited to" in res.output


def test_non_utf8_file(tmp_path) -> None:
    bad = tmp_path / "latin1.toml"
    bad.write_bytes('id = "toy"\ncommodity = "Oxyde de néodyme"\n'.encode("latin-1"))
    res = invoke("validate", bad)
    assert res.exit_code == 2
    assert "not UTF-8 text (byte 0xe9 on line 2)" in res.output


def test_flows_csv_with_byte_order_mark_is_read(tmp_path, toy_market_dict) -> None:
    plain = tp.load_market(csv_market(tmp_path, toy_market_dict))
    excel = tp.load_market(csv_market(tmp_path, toy_market_dict, name="excel.csv", bom=True))
    assert (excel.flows == plain.flows).all() and excel.flows.sum() == pytest.approx(60200.0)


@pytest.mark.parametrize(
    ("line", "expect"),
    [
        ("CHN,USA", "line 2: missing field(s) ['quantity']"),
        ("CHN", "line 2: missing field(s) ['importer', 'quantity']"),
        ("CHN,USA,5,extra", "line 2: 1 field(s) beyond the header columns"),
    ],
)
def test_flows_csv_row_with_wrong_field_count(tmp_path, toy_market_dict, line, expect) -> None:
    market = csv_market(tmp_path, toy_market_dict)
    csv = tmp_path / "flows.csv"
    rows = csv.read_text().splitlines()
    csv.write_text("\n".join([rows[0], line, *rows[1:]]) + "\n")
    res = invoke("validate", market)
    assert res.exit_code == 2
    assert f"invalid: {csv}" in flat(res.output) and expect in res.output


@pytest.mark.parametrize(
    ("ref", "what"),
    [
        ("/etc/passwd", "absolute path '/etc/passwd' not allowed"),
        ("../outside/toy.toml", "resolves to"),
        ("link.toml", "resolves to"),
    ],
)
def test_market_paths_leaving_the_folder_are_refused(tmp_path, toy_market_dict, ref, what):
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "toy.toml").write_text(to_toml(toy_market_dict))
    inner = tmp_path / "sets"
    inner.mkdir()
    (inner / "link.toml").symlink_to(tmp_path / "outside" / "toy.toml")
    scen = inner / "s.toml"
    scen.write_text(TARIFF.format(market=ref))
    res = invoke("validate", scen)
    assert res.exit_code == 2
    out = flat(res.output)
    assert (f"invalid: {scen}" in out and f"market: {ref!r}" in out) or "market: absolute" in out
    assert what in out and "--market PATH" in out
    # the user may name the same file on the command line
    res = invoke("validate", scen, "--market", tmp_path / "outside" / "toy.toml")
    assert res.exit_code == 0, res.output
    assert "scenario set for market 'toy'" in res.output


def test_flows_file_leaving_the_folder_is_refused(tmp_path, toy_market_dict) -> None:
    market = csv_market(tmp_path, toy_market_dict)
    sub = tmp_path / "m"
    sub.mkdir()
    text = market.read_text().replace('flows_file = "flows.csv"', 'flows_file = "../flows.csv"')
    (sub / "toy.toml").write_text(text)
    with pytest.raises(tp.InputError) as info:
        tp.load_market(sub / "toy.toml")
    assert "flows_file: '../flows.csv' resolves to" in str(info.value)


def test_same_market_twice_is_refused(toy_files, tmp_path) -> None:
    _, scen = toy_files
    other = tmp_path / "again.toml"
    other.write_text(TARIFF.format(market="toy.toml"))
    res = invoke("run", scen, other)
    assert res.exit_code == 2
    assert f"{other}" in flat(res.output)
    assert "market 'toy' is already given by" in flat(res.output)


# -- 3. validation: finite, no booleans, bounds, non-empty, long names, markup -------------------
@pytest.mark.parametrize(
    ("body", "field", "expect"),
    [
        (
            'type = "price_floor"\nimporters = ["USA"]\nfloor = true',
            "measure[0]",
            "floor: a number",
        ),
        ('type = "price_floor"\nimporters = ["USA"]\nfloor = inf', "floor", "finite number"),
        (
            'type = "offtake"\nbuyers = {USA = 1.0}\nsellers = ["AUS"]\nvolume = 10.0\nprice = inf',
            "price",
            "finite number",
        ),
        (
            'type = "price_gap_subsidy"\nproducers = ["AUS"]\nstrike = 60000.0\n'
            "payers = {USA = nan}",
            "payers.USA",
            "finite number",
        ),
        ('type = "tariff"\nimporters = ["USA"]\nrate = 25', "rate", "for 25% write 0.25"),
        ('type = "tariff"\nimporters = ["USA"]\nexporters = []\nrate = 0.2', "exporters", "empty"),
        (
            'type = "export_tax"\nexporter = "CHN"\ndestinations = []\nrate = 0.2',
            "destinations",
            "",
        ),
    ],
    ids=[
        "floor-bool",
        "floor-inf",
        "offtake-inf",
        "payer-nan",
        "rate-percent",
        "exporters",
        "dest",
    ],
)
def test_bad_measure_values(write_toml, toy_market_dict, body, field, expect) -> None:
    write_toml(toy_market_dict, "toy.toml")
    path = write_toml(one_measure(body, name="bad_one"), "s.toml")
    res = invoke("validate", path)
    assert res.exit_code == 2, res.output
    out = flat(res.output)
    assert f"invalid: {path}" in out
    assert f"scenario[0].{field}" in out or f"scenario[0].measure[0].{field}" in out
    assert expect in out
    assert "[in scenario 'bad_one']" in out  # errors name the scenario


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda m: m["elasticities"]["supply"].update(default=1e300), "elasticities.supply"),
        (lambda m: m["elasticities"]["substitution"].update(EU=2e4), "elasticities.substitution"),
        (lambda m: m["base_price"].update(default=float("inf")), "base_price"),
        (lambda m: m["flows"]["CHN"].update(USA=float("nan")), "flows.CHN.USA"),
        (lambda m: m.update(base_year=True), "base_year"),
        (lambda m: m["base_tariffs"]["CHN"].update(USA=True), "base_tariffs.CHN.USA"),
    ],
    ids=["supply-huge", "sigma-huge", "price-inf", "flow-nan", "year-bool", "tariff-bool"],
)
def test_bad_market_numbers(write_toml, toy_market_dict, mutate, field) -> None:
    mutate(toy_market_dict)
    path = write_toml(toy_market_dict, "m.toml")
    with pytest.raises(tp.InputError) as info:
        tp.load_market(path)
    assert str(info.value).splitlines()[0] == str(path)
    assert f"  - {field}" in str(info.value)


def test_elasticity_bound_is_documented_in_the_message(write_toml, toy_market_dict) -> None:
    toy_market_dict["elasticities"]["demand"]["EU"] = 500.0
    with pytest.raises(tp.InputError, match=r"elasticities.demand.EU: must be at most 100"):
        tp.load_market(write_toml(toy_market_dict, "m.toml"))


def test_whole_number_rate_above_one_and_empty_scenario_warn(write_toml, toy_market_dict) -> None:
    write_toml(toy_market_dict, "toy.toml")
    text = one_measure('type = "tariff"\nimporters = ["USA"]\nrate = 2', name="r")
    text += '\n[[scenario]]\nname = "nothing"\n'
    path = write_toml(text, "s.toml")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tp.load_scenarios(path)
    msgs = [str(w.message) for w in caught if issubclass(w.category, tp.errors.InputWarning)]
    assert any("rate: 2 is a 200% rate" in m and "write 0.02" in m for m in msgs), msgs
    assert any("scenario 'nothing' equals the baseline" in m for m in msgs), msgs
    res = invoke("validate", path)
    assert res.exit_code == 0 and "warning:" in res.output


def test_long_names_are_refused_fast(write_toml, toy_market_dict) -> None:
    long = "x" * 100_000
    write_toml(dict(toy_market_dict, commodity=long), "toy.toml")
    path = write_toml(
        one_measure('type = "tariff"\nimporters = ["USA"]\nrate = 0.1', long), "s.toml"
    )
    start = time.monotonic()
    for f in (path, path.parent / "toy.toml"):
        res = invoke("validate", f)
        assert res.exit_code == 2
        assert "at most" in res.output and "(100,002 characters)" in res.output
        assert len(res.output) < 2_000  # the name is not echoed in full
    assert time.monotonic() - start < 5


def test_rich_markup_in_names_is_printed_literally(write_toml, toy_market_dict, tmp_path):
    toy_market_dict["commodity"] = "Oxide [/] [bold red]x[/bold red]"
    toy_market_dict["description"] = "[/]"
    write_toml(toy_market_dict, "toy.toml")
    scen = write_toml(TOY_SCENARIOS_TOML.replace('description = "US', 'description = "[/] US'))
    res = invoke("validate", scen.parent / "toy.toml", scen)
    assert res.exit_code == 0, res.output
    assert "(Oxide [/] [bold red]x[/bold red])" in flat(res.output)
    res = invoke("run", scen, "-o", tmp_path / "o.nc")
    assert res.exit_code == 0, res.output
    assert "Oxide [/] [bold red]x[/bold red] — US tariff (us_tariff) vs baseline" in flat(
        res.output
    )
    assert "• [/] US tariff on China" in flat(res.output)


# -- 4. suggestions -------------------------------------------------------------------------------
def test_suggests_the_closest_type_and_field(write_toml, toy_market_dict) -> None:
    write_toml(toy_market_dict, "toy.toml")
    path = write_toml(
        one_measure('type = "pricefloor"\nimporters = ["USA"]\nfloor = 1.0'), "a.toml"
    )
    res = invoke("validate", path)
    assert "unknown measure type 'pricefloor' (did you mean 'price_floor'?)" in flat(res.output)
    path = write_toml(one_measure('type = "tariff"\nimporters = ["USA"]\nrat = 0.1'), "b.toml")
    res = invoke("validate", path)
    assert "rat: unknown field (did you mean 'rate'?)" in flat(res.output)


# -- 5. draws -------------------------------------------------------------------------------------
def test_draws_are_bounded(toy_files) -> None:
    _, scen = toy_files
    res = invoke("run", scen, "--draws", "10001")
    assert res.exit_code == 2
    assert "--draws" in res.output and "10000" in res.output


# -- 6. interrupts during the results write -------------------------------------------------------
def test_interrupt_inside_the_writer_leaves_nothing(toy_files, tmp_path, monkeypatch) -> None:
    _, scen = toy_files
    out = tmp_path / "res" / "o.nc"

    def interrupted(self, path, *args, **kwargs):
        Path(path).write_bytes(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(xr.Dataset, "to_netcdf", interrupted)
    res = invoke("run", scen, "-q", "-o", out)
    assert res.exit_code == 130
    assert "interrupted" in res.output
    assert list(out.parent.iterdir()) == []


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigint_during_a_slow_write_exits_130_and_cleans_up(toy_files, tmp_path) -> None:
    """A real Ctrl+C (SIGINT) arrives while netCDF is being written: no deadlock, exit 130,
    no temporary file, no output."""
    _, scen = toy_files
    out = tmp_path / "o.nc"
    script = textwrap.dedent(
        f"""
        import sys, time
        import xarray as xr
        from tradepolicy.cli import app
        real = xr.Dataset.to_netcdf
        def slow(self, *args, **kwargs):
            print("writing", flush=True)
            time.sleep(1.5)
            return real(self, *args, **kwargs)
        xr.Dataset.to_netcdf = slow
        sys.argv = ["tradepolicy", "run", {str(scen)!r}, "-q", "-o", {str(out)!r}]
        app()
        """
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "writing"
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("the run did not stop after Ctrl+C")
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["toy.toml", scen.name])


def test_write_without_interrupt_is_complete(tmp_path) -> None:
    ds = xr.Dataset({"x": ("a", [1.0, 2.0])})
    path = tp.write_results(ds, tmp_path / "x.nc")
    with xr.open_dataset(path) as back:
        assert back.x.values.tolist() == [1.0, 2.0]
    assert [p.name for p in tmp_path.iterdir()] == ["x.nc"]


# -- 7. shipped ids and extras --------------------------------------------------------------------
def test_validate_accepts_shipped_ids_like_run() -> None:
    res = invoke("validate", "ndpr_oxide", "gallium")
    assert res.exit_code == 0, res.output
    assert "ok ndpr_oxide: scenario set for market 'ndpr_oxide'" in flat(res.output)


def test_missing_reports_extra_names_it(toy_files, tmp_path, monkeypatch) -> None:
    _, scen = toy_files
    out = tmp_path / "r.nc"
    assert invoke("run", scen, "-q", "-o", out).exit_code == 0
    monkeypatch.setitem(sys.modules, "tradepolicy.reports", None)  # import fails
    res = invoke("brief", out, "-o", tmp_path / "b.pdf")
    assert res.exit_code == 2
    assert "install the `reports` extra: pip install 'tradepolicy[reports]'" in flat(res.output)
    assert "Traceback" not in res.output


def test_ctrl_c_is_held_until_the_netcdf_write_returns(tmp_path, monkeypatch) -> None:
    """The signal arrives inside the writer; the writer still finishes (HDF5 is never
    interrupted mid-call), then the temporary file is removed and KeyboardInterrupt raised."""
    real = xr.Dataset.to_netcdf
    finished = []
    before = signal.getsignal(signal.SIGINT)

    def signalled(self, path, *args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)
        real(self, path, *args, **kwargs)
        finished.append(path)

    monkeypatch.setattr(xr.Dataset, "to_netcdf", signalled)
    ds = xr.Dataset({"x": ("a", [1.0, 2.0])})
    with pytest.raises(KeyboardInterrupt):
        tp.write_results(ds, tmp_path / "x.nc")
    assert len(finished) == 1  # not interrupted inside the write
    assert list(tmp_path.iterdir()) == []
    assert signal.getsignal(signal.SIGINT) is before  # the handler in place is restored
