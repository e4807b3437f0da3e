"""Dashboard store, settings and indicators without a browser (tradepolicy.dashboard)."""

from __future__ import annotations

import io
import math
import subprocess
import sys
from html import escape as html_escape

import numpy as np
import pandas as pd
import pytest

pn = pytest.importorskip("panel")

import tradepolicy as tp  # noqa: E402
from tradepolicy.dashboard import DashboardApp, DashboardStore, catalog, market_info  # noqa: E402
from tradepolicy.dashboard import indicators as ind  # noqa: E402
from tradepolicy.dashboard.config import (  # noqa: E402
    PRESETS,
    ConfigError,
    PolicyConfig,
    scenario_key,
    scenarios_from_key,
)
from tradepolicy.dashboard.markets import display_price_unit  # noqa: E402
from tradepolicy.dashboard.store import (  # noqa: E402
    CURRENT,
    MAX_COMPARE,
    draws_supported,
    evaluate,
    plain_failure,
)
from tradepolicy.dashboard.views import KpiView, kpi_html  # noqa: E402
from tradepolicy.measures import PriceFloor, PriceGapSubsidy, Tariff  # noqa: E402

NDPR = "ndpr_oxide"


@pytest.fixture
def store() -> DashboardStore:
    return DashboardStore(catalog(), NDPR)


def test_prices_are_shown_per_kg_when_the_market_counts_tonnes(toy_market):
    info = market_info(NDPR)
    assert (info.price_label, info.price_factor) == ("USD/kg", 1000.0)
    assert info.to_market_price(110.0) == pytest.approx(110_000.0)
    assert display_price_unit(toy_market) == ("USD/kg", 1000.0)


def test_default_club_comes_from_the_shipped_floor():
    info = market_info(NDPR)
    sset = tp.load_scenarios(info.scenario_files[0])
    floors = [m for s in sset.scenarios for m in s.measures if isinstance(m, PriceFloor)]
    assert set(info.default_club) == set(floors[0].exempt)
    assert info.target == sset.target_share


def test_floor_in_display_units_becomes_a_floor_in_market_units():
    info = market_info(NDPR)
    cfg = PolicyConfig()
    cfg.apply_market(info)
    cfg.free_trade = False
    cfg.preset("floor", floor=120.0)
    (floor,) = cfg.measures(info)
    assert isinstance(floor, PriceFloor)
    assert floor.floor == pytest.approx(120_000.0)
    assert set(floor.exempt) == set(cfg.members)
    assert set(floor.importers) <= set(cfg.members) and set(floor.importers) <= set(info.importers)


def test_settings_that_cannot_work_give_plain_sentences():
    info = market_info(NDPR)
    cfg = PolicyConfig()
    cfg.apply_market(info)
    cfg.members = []
    cfg.preset("floor")
    cfg.preset("subsidy", producers=[])
    with pytest.raises(ConfigError) as err:
        cfg.measures(info)
    text = " | ".join(err.value.problems)
    assert "Club price floor: Importers applying it: choose at least one region" in text
    assert "Price-gap subsidy: Producers covered: choose at least one region" in text
    assert cfg.field_problems[("subsidy", "producers")] == "choose at least one region"
    cfg.remove("subsidy")
    cfg.remove("floor")
    cfg.preset("cap", max_share=0.0)
    with pytest.raises(ConfigError, match="Diversification cap: Largest share of one supplier: "):
        cfg.measures(info)
    assert cfg.field_problems[("cap", "max_share")] == "must be above 0%"


def test_scenario_key_is_a_string_that_gives_back_the_scenarios():
    info = market_info(NDPR)
    sc = tp.club_scenario(info.market, "club", list(info.default_club), floor=110_000.0)
    key = scenario_key([sc])
    assert isinstance(key, str)
    assert scenarios_from_key(key) == [sc]


def test_a_higher_floor_raises_the_club_price(store):
    cfg = store.config
    cfg.preset("floor")
    k1 = ind.kpis(store.current.ds, CURRENT, store.info, list(cfg.members))
    cfg.set("floor", floor=cfg.value("floor", "floor") + 30)
    k2 = ind.kpis(store.current.ds, CURRENT, store.info, list(cfg.members))
    assert k2["club_price"].value > k1["club_price"].value > k1["club_price"].base
    assert k1["club_price"].base == pytest.approx(store.info.base_price_display)


def test_kpis_match_an_independent_solve(store):
    cfg, info = store.config, store.info
    cfg.preset("floor", floor=130.0)
    members = list(cfg.members)
    sc = tp.club_scenario(info.market, "club", members, floor=130_000.0)
    ds = tp.solve([sc], info.market, target_share=store.target).isel(commodity=0)
    use = info.market.flows.sum(axis=0)
    idx = [info.regions.index(r) for r in members if use[info.regions.index(r)] > 0]
    price = ds["consumer_price"].sel(scenario="club").values[idx]
    expected = float(np.sum(price * use[idx]) / np.sum(use[idx])) / 1000
    k = ind.kpis(store.current.ds, CURRENT, info, members)
    assert k["club_price"].value == pytest.approx(expected, rel=1e-9)
    world = float(ds["welfare_change"].sel(scenario="club").sum()) / 1e6
    assert k["world_welfare"].value == pytest.approx(world, rel=1e-9)
    budget = float(ds.tp.budget_cost().sel(scenario="club").sum()) / 1e6
    assert k["budget_cost"].value == pytest.approx(budget, abs=1e-9)
    assert "data-kpi-value>" in kpi_html(k, list(k))


def test_the_same_settings_are_solved_once(store):
    sc = store.current_scenario()
    a = evaluate(store.info, [sc], store.target)
    b = evaluate(store.info, [sc], store.target)
    assert a.ds is b.ds  # pn.cache hit on the scalar key


def test_save_rename_delete_and_compare(store):
    cfg = store.config
    cfg.preset("floor")
    assert store.save_current("floor_a")
    cfg.set("floor", floor=cfg.value("floor", "floor") + 20)
    assert store.save_current("floor_b")
    assert store.compare == ["floor_a", "floor_b"]
    assert store.comparison.scenarios == ("floor_a", "floor_b")
    table = ind.comparison_table(store.comparison.ds, ["floor_a", "floor_b"])
    buyers = table[f"Cost to bloc buyers ({store.comparison.ds.tp.money_unit()})"]
    assert buyers["floor_b"] > buyers["floor_a"] > 0  # a higher floor costs bloc buyers more
    assert not store.save_current("floor_a")
    assert "exists" in store.notice
    assert not store.save_current("baseline")
    assert not store.save_current("bad name!")
    assert store.rename("floor_a", "lower_floor")
    assert store.compare == ["lower_floor", "floor_b"]
    assert store.comparison.scenarios == ("lower_floor", "floor_b")
    assert store.delete("floor_b")
    assert store.compare == ["lower_floor"]
    assert [s.name for s in store.saved] == ["lower_floor"]
    assert not store.delete("floor_b")


def test_edit_restores_the_saved_settings(store):
    cfg = store.config
    cfg.preset("floor", floor=140.0)
    store.save_current("f140")
    cfg.switch("floor", False)
    cfg.set("floor", floor=90.0)
    assert store.edit("f140")
    assert cfg.entry("floor")["on"] and cfg.value("floor", "floor") == 140.0


def test_nothing_to_save_without_a_measure(store):
    store.config.free_trade = False
    assert not store.save_current("empty")
    assert "switch on at least one measure" in store.notice


def test_load_a_shipped_set_and_compare_at_most_six(store):
    path = store.info.scenario_files[0]
    assert store.load_set(path)
    names = tp.load_scenarios(path).names
    assert [s.name for s in store.saved] == names
    assert store.compare == names[:MAX_COMPARE]
    assert len(store.comparison.scenarios) == min(len(names), MAX_COMPARE)
    assert store.comparison.ok and not store.comparison.problems
    assert not store.edit(names[0])  # from a file: compared, not edited
    store.compare = ["nope", *names]  # the widget allows six; the store keeps six known names
    assert store.compare == names[:MAX_COMPARE]


def test_downloads_csv_and_netcdf(store, tmp_path):
    store.config.preset("floor")
    store.save_current("club")
    df = pd.read_csv(io.BytesIO(store.comparison_csv()))
    assert set(df["scenario"]) == {"baseline", "club"}
    assert {"market", "region", "variable", "value", "units"} <= set(df.columns)
    welfare = df[(df.scenario == "club") & (df.variable == "welfare_change")]["value"]
    assert welfare.sum() == pytest.approx(
        float(store.comparison.ds["welfare_change"].sel(scenario="club").sum())
    )
    path = tmp_path / "c.nc"
    path.write_bytes(store.comparison_netcdf())
    back = tp.open_results(path)
    assert list(back.scenario.values) == ["baseline", "club"]


def test_infeasible_and_unsolved_cases_are_plain_words(store):
    info = store.info
    cfg = store.config
    cfg.preset("cap", importers=["JPN"], max_share=10.0, basis="imports")
    out = store.current
    assert not out.solved(CURRENT)
    (msg,) = out.failures.values()
    assert msg.startswith("This combination of measures has no market equilibrium")
    assert "Traceback" not in msg
    assert plain_failure("Newton stalled").startswith("The model did not find an equilibrium")
    k = kpi_html(None, ["club_price"])
    assert "—" in k and "not available" in k
    del info


def test_sessions_share_no_state():
    a, b = DashboardStore(catalog(), NDPR), DashboardStore(catalog(), NDPR)
    a.config.preset("floor")
    a.save_current("mine")
    assert not b.config.entries
    assert b.saved == [] and b.comparison is None
    assert b.current.solved(CURRENT)
    kb = ind.kpis(b.current.ds, CURRENT, b.info, list(b.config.members))
    assert kb["club_price"].value == pytest.approx(kb["club_price"].base)


def test_saved_scenarios_are_kept_per_market(store):
    store.config.preset("floor")
    store.save_current("ndpr_club")
    other = next(m for m in store.markets if m != NDPR)
    store.market = other
    assert store.saved == [] and store.info.id == other
    store.market = NDPR
    assert [s.name for s in store.saved] == ["ndpr_club"]


@pytest.mark.parametrize("market", sorted(catalog()))
def test_every_measure_on_every_shipped_market_gives_numbers_or_a_message(market):
    store = DashboardStore(catalog(), market)
    assert store.baseline.solved("baseline") or store.baseline.scenarios == ()
    for preset in PRESETS:
        store.config.preset(preset)
        out = store.current
        assert out.problems or out.failures or out.solved(CURRENT), preset
        if out.solved(CURRENT):
            k = ind.kpis(out.ds, CURRENT, store.info, list(store.config.members))
            assert math.isfinite(k["world_welfare"].value)
        store.config.remove(preset)


def test_the_app_builds_and_its_views_follow_the_store():
    app = DashboardApp(market=NDPR)
    template = app.template()
    assert isinstance(template, pn.template.BaseTemplate)
    store = app.store
    before = app.kpis.pane.object
    store.config.preset("floor")
    assert app.kpis.pane.object != before
    assert 'data-kpi="club_price"' in app.kpis.pane.object
    assert len(app.results.table.object) == len(store.info.regions)
    assert len(app.results.welfare.source.data["region"]) > 0
    store.save_current("a")
    store.config.set("floor", floor=store.config.value("floor", "floor") + 10)
    store.save_current("b")
    assert list(app.comparison.table.object.index) == ["baseline", "a", "b"]
    assert not app.comparison.csv.disabled
    store.config.preset("cap", importers=["JPN"], max_share=10.0, basis="imports")
    assert app.status.alert.visible and "no market equilibrium" in app.status.alert.object
    assert "—" in app.kpis.pane.object


@pytest.mark.skipif(not draws_supported(), reason="tp.solve has no Monte Carlo draws yet")
def test_uncertainty_ranges_bracket_the_point_values(store):
    store.config.preset("floor")
    store.param.update(uncertainty=True, draws=40)
    out = store.current
    assert ind.has_draws(out.ds)
    ds = out.ds
    assert "draw" in ds.dims and not any(str(v).endswith("_draws") for v in ds.data_vars)
    k = ind.kpis(ds, CURRENT, store.info, list(store.config.members))
    # every number shown is the central estimate (draw 0), every range that of ds.tp.range
    point = ds.tp.point()
    world = float(point["welfare_change"].sel(scenario=CURRENT).sum()) / 1e6
    assert k["world_welfare"].value == pytest.approx(world, rel=1e-12)
    lo, hi = ds.tp.range("welfare_change", CURRENT, region="world")
    assert (k["world_welfare"].lo, k["world_welfare"].hi) == pytest.approx((lo / 1e6, hi / 1e6))
    dep = k["dependence"]
    central = float(point["bloc_dependency"].sel(scenario=CURRENT, commodity=NDPR))
    assert dep.value == pytest.approx(100 * central)
    lo, hi = ds.tp.range("bloc_dependency", CURRENT)
    assert (dep.lo, dep.hi) == pytest.approx((100 * lo, 100 * hi))
    assert dep.lo <= dep.value <= dep.hi
    assert "90% range" in kpi_html(k, ["dependence"])
    pf = ind.price_frame(ds, CURRENT, store.info, "consumer_price")
    q = ds.tp.quantiles("consumer_price").sel(scenario=CURRENT).isel(commodity=0)
    assert pf["lo"].to_numpy() == pytest.approx(
        q.sel(quantile=0.05).to_series().reindex(pf.index).to_numpy() / 1000, nan_ok=True
    )
    assert pf["lo"].notna().any()
    csv = ind.comparison_long(ds, [CURRENT], store.info)
    assert {"welfare_change_q05", "welfare_change_q95"} <= set(csv["variable"])


def test_cli_dashboard_command_does_not_import_panel_until_run():
    code = "import sys, tradepolicy.cli; print('panel' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    from typer.testing import CliRunner

    from tradepolicy.cli import app

    res = CliRunner().invoke(app, ["dashboard", "--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0
    for opt in ("--port", "--no-show", "--address"):
        assert opt in res.output


@pytest.mark.skipif(
    __import__("importlib").util.find_spec("tradepolicy.reports") is None,
    reason="tradepolicy.reports is not available",
)
def test_brief_of_the_compared_scenarios(store):
    store.config.preset("floor")
    store.save_current("club")
    pdf = store.comparison_brief("pdf")
    assert pdf.startswith(b"%PDF")
    docx = store.comparison_brief("docx")
    assert docx[:2] == b"PK"  # a zip container
    from pptx import Presentation

    deck = Presentation(io.BytesIO(store.comparison_brief("pptx")))
    assert len(deck.slides) >= 4


def _rendered_app(market: str) -> DashboardApp:
    """An app whose widgets have Bokeh models, as in a served session: only then do Panel's
    option widgets drop values missing from their options (the market-switch bug)."""
    from bokeh.document import Document

    app = DashboardApp(market=market)
    app.__panel__().get_root(Document())
    return app


def _widgets_differ(app: DashboardApp) -> list[str]:
    cfg = app.store.config
    out = [
        f"members: settings {cfg.members!r}, widget {app.editor.members.value!r}"
        for _ in [0]
        if app.editor.members.value != cfg.members
    ]
    for (eid, name), w in app.editor.measures._widgets.items():
        if w.value != cfg.value(eid, name):
            out.append(f"{eid}.{name}: settings {cfg.value(eid, name)!r}, widget {w.value!r}")
    return out


def test_after_every_market_switch_the_widgets_show_what_is_solved():
    # NdPr -> cobalt -> gallium dropped CAN and then KOR from the club, and a subsidy switched
    # on after NdPr -> cobalt covered USA (NdPr's default) while the widget showed JPN, EU, CAN
    app = _rendered_app(NDPR)
    store, cfg = app.store, app.store.config
    path = ["refined_cobalt", "gallium", NDPR, "refined_nickel", "germanium", "refined_cobalt"]
    for market in path:
        cfg.preset("floor")  # settings of the previous market
        cfg.preset("subsidy")
        assert _widgets_differ(app) == [], market
        app.editor.market.value = market
        assert store.info.id == market
        assert _widgets_differ(app) == [], market
        assert cfg.members == list(market_info(market).default_club)
        assert not cfg.entries  # no measure on a new market
        assert app.editor.members.value == list(store.info.default_club)
    store.market = NDPR
    app.editor.market.value = "refined_cobalt"
    info = store.info
    cfg.preset("subsidy")
    shown = list(app.editor.measures._widgets[("subsidy", "producers")].value)
    assert "USA" not in shown and shown
    (sub,) = [m for m in store.current_scenario().measures if m.type == "price_gap_subsidy"]
    assert sub.producers == shown
    # the KPIs are those of a direct solve of what the widgets show
    members = list(app.editor.members.value)
    sc = tp.Scenario(
        name="direct",
        measures=[
            Tariff(
                importers=[r for r in members if r in info.importers],
                exporters=members,
                rate=0.0,
            ),
            PriceGapSubsidy(
                producers=shown,
                strike=info.to_market_price(cfg.value("subsidy", "strike")),
                kind="one_sided",
            ),
        ],
    )
    ds = tp.solve([sc], info.market, target_share=store.target).isel(commodity=0)
    k = ind.kpis(store.current.ds, CURRENT, info, members)
    use = info.market.flows.sum(axis=0)
    idx = [info.regions.index(r) for r in members if use[info.regions.index(r)] > 0]
    price = ds["consumer_price"].sel(scenario="direct").values[idx]
    expected = float(np.sum(price * use[idx]) / np.sum(use[idx])) / info.price_factor
    assert k["club_price"].value == pytest.approx(expected, rel=1e-9)
    world = float(ds["welfare_change"].sel(scenario="direct").sum()) / 1e6
    assert k["world_welfare"].value == pytest.approx(world, rel=1e-9)
    budget = float(ds.tp.budget_cost().sel(scenario="direct").sum()) / 1e6
    assert budget > 0  # a price-gap subsidy spends
    assert k["budget_cost"].value == pytest.approx(budget, rel=1e-9)


# -- serving: loopback by default, a busy port, the market first shown -------------------------
def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _listening(pid: int, port: int, timeout: float = 90.0) -> set[str]:
    """The addresses process ``pid`` listens on at ``port`` (waits until it listens)."""
    import time

    psutil = pytest.importorskip("psutil")
    proc = psutil.Process(pid)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = {
            c.laddr.ip
            for c in proc.net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN and c.laddr.port == port
        }
        if found:
            return found
        if proc.status() == psutil.STATUS_ZOMBIE:
            break
        time.sleep(0.3)
    raise AssertionError(f"the dashboard did not listen on port {port}")


def _dashboard(*args: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "tradepolicy.cli", "dashboard", "--no-show", *args]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _stop(proc: subprocess.Popen) -> tuple[str, str]:
    proc.terminate()
    try:
        return proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate()


def _read_until(proc: subprocess.Popen, text: str, timeout: float = 60.0) -> str:
    """What the process writes to stderr until ``text`` appears (or the timeout): the
    address is announced just after the port is bound, so it may follow the listening."""
    import os
    import select
    import time

    if proc.stderr is None:
        raise RuntimeError("stderr is not a pipe")
    fd = proc.stderr.fileno()
    got = b""
    deadline = time.monotonic() + timeout
    while text.encode() not in got and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            got += chunk
    return got.decode(errors="replace")


def test_the_dashboard_listens_on_this_machine_only_by_default():
    port = _free_port()
    proc = _dashboard("--port", str(port))
    try:
        assert _listening(proc.pid, port) == {"127.0.0.1"}  # not 0.0.0.0 nor [::]
        first = _read_until(proc, f"http://127.0.0.1:{port}/")
    finally:
        _out, rest = _stop(proc)
    err = first + rest
    assert f"http://127.0.0.1:{port}/" in err
    assert "Traceback" not in err and "anyone who can reach" not in err


def test_sharing_is_explicit_and_warned():
    port = _free_port()
    proc = _dashboard("--port", str(port), "--address", "0.0.0.0")
    try:
        assert _listening(proc.pid, port) == {"0.0.0.0"}
    finally:
        _out, err = _stop(proc)
    assert "anyone who can reach this" in " ".join(err.split())


def test_a_busy_port_is_a_clear_error():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        proc = _dashboard("--port", str(port))
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    assert f"port {port} is in use; pass --port" in " ".join(err.split())
    assert "Traceback" not in err + out


def test_help_and_docs_say_where_the_dashboard_listens():
    from pathlib import Path

    from typer.testing import CliRunner

    from tradepolicy.cli import app
    from tradepolicy.dashboard.app import LOOPBACK, is_loopback, websocket_origins

    res = CliRunner().invoke(app, ["dashboard", "--help"], env={"COLUMNS": "200"})
    text = " ".join(res.output.split())
    assert "127.0.0.1 (default, this machine only)" in text and "0.0.0.0" in text
    docs = (Path(__file__).parents[1] / "docs" / "dashboard.md").read_text()
    assert "127.0.0.1" in docs and "--address 0.0.0.0" in docs
    assert LOOPBACK == "127.0.0.1" and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")
    assert websocket_origins("127.0.0.1", 5006) == ["localhost:5006", "127.0.0.1:5006"]
    assert websocket_origins("0.0.0.0", 5006) == ["*"]
    assert "192.168.1.5:5006" in websocket_origins("192.168.1.5", 5006)


def test_the_dashboard_opens_on_the_market_of_a_results_file(tmp_path):
    from tradepolicy.dashboard import create_app
    from tradepolicy.dashboard.markets import market_of_results
    from tradepolicy.errors import InputError

    info = market_info("gallium")
    sset = tp.load_scenarios(info.scenario_files[0])
    path = tp.write_results(tp.solve(sset), tmp_path / "results.nc")
    assert market_of_results(path) == "gallium"
    template = create_app(market=market_of_results(path))
    (select,) = [o for o in template.sidebar[0] if "tp-market" in o.css_classes]
    assert select.value == "gallium"
    bad = tmp_path / "not_results.nc"
    bad.write_text("not netCDF")
    with pytest.raises(InputError, match=r"not_results\.nc"):
        market_of_results(bad)
    from typer.testing import CliRunner

    from tradepolicy.cli import app

    res = CliRunner().invoke(app, ["dashboard", "--no-show", "--results", str(bad)])
    assert res.exit_code == 2 and "not_results.nc" in res.output
    res = CliRunner().invoke(app, ["dashboard", "--no-show", "--market", "nope"])
    assert res.exit_code == 2 and "unknown market 'nope'" in res.output


# -- sessions freed, solves cached within bounds ---------------------------------------------
def test_closed_sessions_are_freed(monkeypatch):
    """Each GET builds a session server-side; once Bokeh discards it (unused for 0.3 s here),
    its store must be garbage-collected. Panel's link registry used to keep every session."""
    import gc
    import time
    import urllib.request
    import weakref

    from tradepolicy.dashboard import serve
    from tradepolicy.dashboard.app import use_threads

    stores: list[weakref.ref] = []
    init = DashboardStore.__init__

    def recording_init(self, *args, **kwargs):
        init(self, *args, **kwargs)
        stores.append(weakref.ref(self))

    monkeypatch.setattr(DashboardStore, "__init__", recording_init)
    port = _free_port()
    server = serve(
        port=port,
        show=False,
        threaded=True,
        processes=0,  # (this process's memory is measured)
        check_unused_sessions_milliseconds=200,
        unused_session_lifetime_milliseconds=300,
    )
    del stores[:]  # the one warm_up solved the first page's numbers with, before serving
    try:
        url = f"http://127.0.0.1:{port}/?market=ndpr_oxide"
        deadline = time.monotonic() + 60
        while True:  # the server thread starts listening
            try:
                urllib.request.urlopen(url, timeout=30).read()
                break
            except OSError:
                assert time.monotonic() < deadline, "the dashboard did not start"
                time.sleep(0.2)
        for _ in range(5):
            urllib.request.urlopen(url, timeout=30).read()
        assert len(stores) == 6
        deadline = time.monotonic() + 60
        while True:
            gc.collect()
            alive = sum(ref() is not None for ref in stores)
            if alive == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert alive == 0, f"{alive} of {len(stores)} closed sessions still hold their store"
    finally:
        server.stop()
        use_threads(0)  # serve's worker threads are process-wide: none for the next tests


def test_the_solve_cache_is_bounded_in_count_and_bytes(store):
    from tradepolicy.dashboard.store import CACHE_MAX_BYTES, SOLVES, SolveCache

    assert SOLVES.max_bytes == CACHE_MAX_BYTES <= 512 * 2**20
    cfg = store.config
    cfg.preset("floor")
    results = []
    for floor in (100.0, 110.0, 120.0, 130.0):
        cfg.set("floor", floor=floor)
        results.append(store.current.ds)
    size = max(int(ds.nbytes) for ds in results)
    cache = SolveCache(max_items=3, max_bytes=10 * size)
    for i, ds in enumerate(results):
        assert cache.get(("k", i), lambda ds=ds: ds) is ds
    assert len(cache) == 3 and cache.misses == 4  # the oldest was dropped
    assert cache.get(("k", 3), lambda: pytest.fail("not cached")) is results[3]
    solved = []
    again = cache.get(("k", 0), lambda: solved.append(1) or results[0])
    assert again is results[0] and solved == [1]  # solved again after eviction
    small = SolveCache(max_items=100, max_bytes=int(2.5 * size))
    for i, ds in enumerate(results):
        small.get(("k", i), lambda ds=ds: ds)
        assert small.nbytes <= small.max_bytes
    assert 1 <= len(small) <= 2
    tiny = SolveCache(max_items=5, max_bytes=1)
    assert tiny.get(("big",), lambda: results[0]) is results[0] and len(tiny) == 0
    with pytest.raises(ValueError):
        SolveCache(max_items=0)


@pytest.mark.parametrize(("ci", "outcome"), [("true", "error"), ("", "skipped")])
def test_browser_tests_fail_in_ci_without_chromium(ci, outcome, tmp_path):
    import os
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "TP_CHROMIUM": str(tmp_path / "no-chromium"), "CI": ci}
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        str(root / "tests" / "ui"),
        "-k",
        "infeasible",
        "-q",
        "-p",
        "no:cacheprovider",
        "-o",
        "addopts=-ra",
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=root, timeout=300)
    text = " ".join(res.stdout.split())
    assert "chromium not found" in text and "Traceback" not in text
    if outcome == "error":
        assert res.returncode != 0 and "1 error" in text
        assert "cannot be skipped in CI" in text
    else:
        assert res.returncode == 0 and "1 skipped" in text


# -- the results vocabulary (issue 13): the bloc figure, one budget sign, options, warnings ----
def _bloc_dependence_from_flows(ds, scenario: str, members: list[str]) -> tuple[float, str]:
    """The bloc's largest share of its total use (own output included) from one outside
    supplier that is not an aggregate, from the trade flows alone (DESIGN §5)."""
    from tradepolicy import regions

    flow = ds.tp.point()["trade_flow"].sel(scenario=scenario).isel(commodity=0)
    into = flow.sel(importer=members).sum("importer").to_series()  # by exporter
    total = float(into.sum())
    outside = {
        str(e): float(v) / total
        for e, v in into.items()
        if e not in members and not regions.is_aggregate(str(e))
    }
    top = max(outside, key=outside.__getitem__)
    return outside[top], top


def test_dependence_kpi_is_the_bloc_figure_recomputed_from_flows(store):
    from tradepolicy import regions

    store.config.preset("floor")
    ds = store.current.ds
    members = regions.bloc_members("g7_partners", store.info.regions)
    assert ds.attrs["target_bloc"].split() == members  # the set's bloc, recorded
    assert ds.tp.bloc() == members and set(members) != set(store.config.members)
    k = ind.kpis(ds, CURRENT, store.info, list(store.config.members))["dependence"]
    share, top = _bloc_dependence_from_flows(ds, CURRENT, members)
    assert k.value == pytest.approx(100 * share, rel=1e-9)
    assert k.label == regions.name(top) == "Malaysia"
    base, _ = _bloc_dependence_from_flows(ds, "baseline", members)
    assert k.base == pytest.approx(100 * base, rel=1e-9)
    assert k.title == "Dependence of the G7 and its partners on one outside supplier"
    assert k.status == "meets the 60% target"
    row = float(ds.tp.point()["bloc_aggregate_share"].sel(scenario=CURRENT, commodity=NDPR))
    assert f"ROW {100 * row:.1f}% unattributed" in k.detail
    html = kpi_html({"dependence": k}, ["dependence"])
    assert f"{k.value:.1f}</span>" in html and "Malaysia" in html and "meets the 60%" in html
    # a stricter target the bloc misses is "above" it, from the same solve's attrs
    store.target = 0.30
    k = ind.dependence_kpi(store.current.ds, CURRENT, store.info)
    assert k.status == "above the 30% target"


def test_the_dependence_kpi_uses_the_sets_own_bloc():
    # the lithium set reads its target on the EU alone (CRMA benchmark 65%)
    store = DashboardStore(catalog(), "lithium_chemicals")
    ds = store.current.ds
    assert ds.attrs["target_bloc"] == "EU" and store.target == pytest.approx(0.65)
    k = ind.dependence_kpi(ds, CURRENT, store.info)
    assert k.title == "Dependence of the EU on one outside supplier"
    share, _ = _bloc_dependence_from_flows(ds, CURRENT, ["EU"])
    assert k.value == pytest.approx(100 * share, rel=1e-9)
    assert "65% target" in k.status


def test_one_budget_sign_equal_to_the_cli_options_table(store):
    cfg = store.config
    cfg.preset("subsidy")
    assert store.save_current("sub")
    ds = store.comparison.ds
    k = ind.kpis(store.current.ds, CURRENT, store.info, list(cfg.members))
    spent = (
        -sum(
            float(ds[v].sel(scenario="sub").sum())
            for v in ("subsidy_cost", "offtake_cost", "stockpile_cost")
        )
        / 1e6
    )
    assert spent > 0
    assert k["budget_cost"].value == pytest.approx(spent, rel=1e-9)  # spending > 0
    assert k["budget_cost"].title == "Budget cost (spending > 0)"
    options = ds.tp.options()
    assert options.loc["sub", "budget_cost"] == pytest.approx(spent, rel=1e-9)
    table = ind.comparison_table(ds, ["sub"])
    assert table.loc["sub", "Budget cost (spending > 0) (M USD/yr)"] == pytest.approx(spent)
    who = ind.who_pays_table(ds, "sub")
    assert who["Budget cost (spending > 0) (M USD/yr)"].sum() == pytest.approx(spent)


def test_compare_view_shows_the_options_and_who_pays_of_ds_tp():
    app = DashboardApp(market=NDPR)
    store = app.store
    store.config.preset("floor")
    store.save_current("floor")
    store.config.switch("floor", False)
    store.config.preset("subsidy")
    store.save_current("subsidy")
    ds = store.comparison.ds
    options = ds.tp.options()
    shown = app.comparison.table.object
    assert list(shown.index) == ["baseline", "floor", "subsidy"]
    unit = ds.tp.money_unit()
    for col, head, fmt in (
        ("cost_to_bloc_buyers", f"Cost to bloc buyers ({unit})", "{:,.1f}"),  # a cost > 0
        ("world_welfare", f"World welfare ({unit})", "{:+,.1f}"),  # a gain > 0
        ("foreign_producers", f"Foreign producers ({unit})", "{:+,.1f}"),
    ):
        for s in ("floor", "subsidy"):
            assert shown.loc[s, head] == fmt.format(options.loc[s, col])
    assert shown.loc["subsidy", f"Budget cost per point ({unit} per point)"] == (
        f"{options.loc['subsidy', 'budget_cost_per_point']:,.1f}"
    )
    assert shown.loc["floor", "Note"] == options.loc["floor", "note"] == "raises dependence"
    dep = shown.loc["floor", "Dependence (largest outside supplier)"]
    assert dep == f"{100 * options.loc['floor', 'dependence']:.1f}% Malaysia"
    # one who-pays table per solved option, equal to ds.tp.who_pays
    tables = [p.object for p in app.comparison.who_pays if isinstance(p, pn.pane.DataFrame)]
    assert len(tables) == 2
    who = ds.tp.who_pays("subsidy")
    col = f"Cost to buyers ({unit})"
    assert [float(v) for v in tables[1][col]] == pytest.approx(
        [round(v, 1) for v in who["cost_to_buyers"]], abs=0.051
    )
    # the CSV download carries them
    df = pd.read_csv(io.BytesIO(store.comparison_csv()), keep_default_na=False, na_values=[""])
    opt = df[(df.variable == "options.budget_cost") & (df.scenario == "subsidy")]
    assert float(opt["value"].iloc[0]) == pytest.approx(options.loc["subsidy", "budget_cost"])
    wp = df[(df.variable == "who_pays.cost_to_buyers") & (df.scenario == "subsidy")]
    assert wp.set_index("region")["value"].to_dict() == pytest.approx(
        who["cost_to_buyers"].to_dict()
    )
    sup = df[(df.variable == "options.largest_outside_supplier") & (df.scenario == "floor")]
    assert sup["text"].iloc[0] == "MYS"


def test_validity_warnings_beside_every_number_and_none_when_unflagged():
    app = DashboardApp(market="gallium")
    store = app.store
    assert "data-kpi-warning" not in app.kpis.pane.object  # the baseline is not flagged
    store.config.preset("restrict")  # the default ban: prices far beyond the model's range
    warnings_ = store.current.ds.tp.warnings(CURRENT)
    assert warnings_
    html = app.kpis.pane.object
    for key in KpiView.KEYS:
        card = html.split(f'data-kpi="{key}"')[1].split('class="tp-kpi')[0]
        assert "data-kpi-warning" in card and "⚠" in card, key
    assert "data-kpi-warnings" in html
    for w in warnings_:
        assert w.replace("×", "×") in html.replace("&#x27;", "'")
    store.config.remove("restrict")
    store.config.preset("floor")  # a floor: no flag
    assert not store.current.ds.tp.warnings(CURRENT)
    assert "data-kpi-warning" not in app.kpis.pane.object
    # the compare rows: flagged options carry the warning, the others none
    assert store.load_set(store.info.scenario_files[0])
    ds = store.comparison.ds
    shown = app.comparison.table.object
    flagged = ds.tp.flagged().isel(commodity=0).to_series()
    assert flagged.any() and not flagged.all()
    notes = app.comparison.warnings.object
    for s in shown.index:
        text = shown.loc[s, "⚠"]
        assert text.startswith("⚠") == bool(flagged[s]), s
        assert (f"<b>{s}</b>" in notes) == bool(flagged[s]), s
        if flagged[s]:
            assert html_escape(ds.tp.warnings(s)[0]) in notes
    assert ind.comparison_table(ds, list(shown.index))["⚠ Validity"].str.len().gt(0).sum() == (
        flagged.sum()
    )


def test_active_measures_show_their_caveats_from_the_registry():
    from tradepolicy.measures import MEASURES

    app = DashboardApp(market=NDPR)
    app.store.config.preset("floor")
    text = app.results.description.object
    caveat = MEASURES["price_floor"].caveat
    assert caveat and html_escape(caveat) in text
    app.store.config.switch("floor", False)
    assert html_escape(caveat) not in app.results.description.object


def test_names_and_colours_come_from_the_regions_and_field_tables(store):
    from tradepolicy import regions
    from tradepolicy.dashboard.charts import region_colors

    assert region_colors(["CHN", "USA"]) == {
        "CHN": regions.colour("CHN"),
        "USA": regions.colour("USA"),
    }
    store.config.preset("floor")
    ds = store.current.ds
    wf = ind.welfare_frame(ds, CURRENT)
    groups = ds.tp.welfare_groups()
    assert set(zip(wf["component"], wf["color"], strict=True)) <= {
        (label, colour) for label, colour, _ in groups.values()
    }
    assert ("Consumers", ds.tp.field("consumer_surplus_change")["colour"]) in set(
        zip(wf["component"], wf["color"], strict=True)
    )
    # the parts of a group add up to it; the groups add up to the welfare change
    total = wf.groupby("region")["value"].sum()
    assert total.to_dict() == pytest.approx(wf.groupby("region")["total"].first().to_dict())
    table = ind.region_table(ds, CURRENT, store.info)
    assert list(table.index) == [regions.name(r) for r in store.info.regions]
    usa = ds.tp.money(float(ds["welfare_change"].sel(scenario=CURRENT, region="USA")[0]))
    assert table.loc["United States", "Welfare Δ (M USD/yr)"] == pytest.approx(usa)
