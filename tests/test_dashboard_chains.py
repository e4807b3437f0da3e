"""The dashboard on value chains (docs/chains.md, docs/dashboard.md): the stage selector, the
dependence at the target stage on the KPI strip, measures on a chosen stage, chain results."""

from __future__ import annotations

import math

import pytest
import xarray as xr

pn = pytest.importorskip("panel")

import tradepolicy as tp  # noqa: E402
from tradepolicy.dashboard import DashboardApp, DashboardStore, catalog, market_info  # noqa: E402
from tradepolicy.dashboard import indicators as ind  # noqa: E402
from tradepolicy.dashboard.store import CURRENT, scenario_set  # noqa: E402
from tradepolicy.market import list_chains  # noqa: E402
from tradepolicy.measures import PriceFloor, Tariff  # noqa: E402
from tradepolicy.scenario import Scenario, ScenarioSet, Target  # noqa: E402

CHAIN = "ree_magnets"
OXIDE, METAL, DYTB, MAGNET = (
    "ree_ndpr_oxide",
    "ree_ndpr_metal",
    "ree_dytb_oxide",
    "ree_ndfeb_magnet",
)


@pytest.fixture
def store() -> DashboardStore:
    return DashboardStore(catalog(), CHAIN)


def _solve_directly(measures: list, share: float = 0.60) -> xr.Dataset:
    """The chain solved by ``tp.solve`` without the dashboard (the set's target bloc, read at
    the magnet stage)."""
    chain = tp.load_market(CHAIN)
    target = Target(group="g7_partners", max_share=share, stage=MAGNET)
    sset = ScenarioSet(
        market=chain,
        scenarios=[Scenario(name=CURRENT, measures=measures)],
        target_share=share,
        target=target,
    )
    return tp.solve(sset)


def _kpis(app: DashboardApp) -> dict[str, str]:
    """KPI key -> the whole card's text, read from the rendered HTML."""
    import re

    html = app.kpis.pane.object
    cards = re.findall(r'data-kpi="(\w+)">(.*?)</div></div>', html)
    return {k: re.sub(r"<[^>]+>", " ", v) for k, v in cards}


def test_the_shipped_chains_are_offered_beside_the_markets():
    known = catalog()
    for cid in list_chains():
        assert known[cid] == cid
    assert "ndpr_oxide" in known and CHAIN in known
    info = market_info(CHAIN)
    chain = tp.load_market(CHAIN)
    assert info.chain is not None and info.id == CHAIN
    assert list(info.stages) == list(chain.stage_ids)  # upstream first
    assert info.stages[MAGNET] == "Sintered NdFeB magnets"  # names without the file's tag
    # the set's target stage, and the stage shown first
    sset = tp.load_scenarios(CHAIN)
    assert info.target_stage == sset.target.stage == MAGNET
    assert info.stage == MAGNET and info.market.id == MAGNET
    oxide = info.for_stage(OXIDE)
    assert oxide.market.id == OXIDE and oxide.id == CHAIN
    assert oxide.chain is info.chain  # the chain is loaded once
    assert oxide.market.to_dict() == chain.stage(OXIDE).to_dict()
    # one price unit on every stage, so a setting keeps its meaning across stages
    assert (oxide.price_label, oxide.price_factor) == (info.price_label, info.price_factor)


def test_a_market_has_no_stage(store):
    single = DashboardStore(catalog(), "ndpr_oxide")
    assert single.stage is None and single.info.stages == {}
    single.config.preset("floor")
    (floor,) = [m for m in single.current_scenario().measures if isinstance(m, PriceFloor)]
    assert floor.stage is None
    app = DashboardApp(store=single)
    assert not app.editor.stage.visible
    assert app.editor.measures._widgets and not app.editor.measures._stages  # no stage choice


def test_kpis_equal_an_independent_solve_at_the_target_and_the_shown_stage(store):
    cfg = store.config
    cfg.preset("floor", stage=OXIDE, floor=110.0)
    measures = store.current_scenario().measures
    floors = [m for m in measures if isinstance(m, PriceFloor)]
    assert [m.stage for m in floors] == [OXIDE]
    assert floors[0].floor == pytest.approx(110_000.0)  # USD/kg shown, USD/t in the market
    # free trade among members covers every stage
    assert {m.stage for m in measures if isinstance(m, Tariff)} == set(store.info.stages)
    ds = _solve_directly(measures)
    app = DashboardApp(store=store)
    for shown in (MAGNET, OXIDE, METAL):
        store.stage = shown
        assert store.info.stage == shown and app.editor.stage.value == shown
        assert list(store.current.ds.commodity.values) == [shown]
        cards = _kpis(app)
        target = 100 * float(ds.bloc_dependency.sel(scenario=CURRENT, stage=MAGNET))
        assert f"{target:.1f}" in cards["target_dependence"]
        assert "Sintered NdFeB magnets (target stage)" in cards["target_dependence"]
        if shown == MAGNET:
            assert "dependence" not in cards  # one card when the target stage is shown
        else:
            here = 100 * float(ds.bloc_dependency.sel(scenario=CURRENT, stage=shown))
            assert f"{here:.1f}" in cards["dependence"]
            assert store.info.stages[shown] in cards["dependence"]
        # the stage's own numbers are those of that stage; budget and welfare over the chain
        k = ind.kpis(store.current.ds, CURRENT, store.info, list(cfg.members))
        welfare = float(ds.welfare_change.sel(scenario=CURRENT, stage=shown).sum()) / 1e6
        assert k["world_welfare"].value == pytest.approx(welfare, rel=1e-9, abs=1e-9)
        total = float(ds.welfare_change.sel(scenario=CURRENT).sum()) / 1e6
        assert f"whole chain {total:+,.1f}" in cards["world_welfare"]


def test_a_magnet_floor_lowers_magnet_dependence_an_oxide_floor_does_not(store):
    """Leakage: an oxide-only floor raises member magnet makers' costs, so the bloc buys more
    Chinese magnets; a floor on magnets from outside the club lowers that dependence."""
    cfg = store.config
    base = float(store.current.chain_ds.bloc_dependency.sel(scenario=CURRENT, stage=MAGNET))
    assert base == pytest.approx(
        float(_solve_directly([]).bloc_dependency.sel(scenario="baseline", stage=MAGNET))
    )
    cfg.preset("floor", stage=OXIDE, floor=110.0)
    oxide_only = float(store.current.chain_ds.bloc_dependency.sel(scenario=CURRENT, stage=MAGNET))
    cfg.preset("floor", stage=MAGNET, floor=70.65)
    magnet = float(store.current.chain_ds.bloc_dependency.sel(scenario=CURRENT, stage=MAGNET))
    assert oxide_only > base > magnet


def test_the_stage_of_a_measure_is_chosen_by_name_among_the_stages(store):
    app = DashboardApp(store=store)
    names = {v: k for k, v in store.info.stages.items()}
    editor = app.editor.measures
    for choice in ("preset:floor", "preset:tariff", "type:export_tax"):
        editor.add_type.value = choice
    for w in editor._stages.values():
        assert w.visible and w.options == names
        assert w.value == MAGNET  # the target stage by default
    editor._stages["tariff"].value = DYTB
    assert store.config.entry("tariff")["stage"] == DYTB
    store.config.remove("floor")
    store.config.remove("export_tax")
    on_dytb = [m for m in store.current_scenario().measures if m.stage == DYTB]
    (tariff,) = [m for m in on_dytb if isinstance(m, Tariff) and m.rate > 0]  # free trade: 0
    assert tariff.rate == pytest.approx(0.25)
    assert "CHN" in tariff.exporters and "CHN" not in tariff.importers
    assert "Dy/Tb oxide:" in store.current_scenario().description
    # switching the shown stage keeps the settings
    store.stage = OXIDE
    assert store.config.entry("tariff")["on"] and store.config.entry("tariff")["stage"] == DYTB


def test_a_stage_outside_the_chain_is_a_plain_problem(store):
    cfg = store.config
    cfg.preset("floor")
    cfg.set_stage("floor", None)
    assert store.current.ds is None
    assert any("choose the stage" in p for p in store.current.problems)


def test_saved_chain_scenarios_compare_per_stage_and_download_every_stage(store, tmp_path):
    store.config.preset("floor", stage=OXIDE, floor=110.0)
    store.save_current("oxide_floor")
    store.config.preset("floor", stage=MAGNET, floor=70.65)
    store.save_current("magnet_floor")
    out = store.comparison
    assert out.ds is not None and list(out.ds.commodity.values) == [MAGNET]
    table = ind.comparison_table(out.ds, ["oxide_floor", "magnet_floor"])
    dep = out.chain_ds.bloc_dependency.sel(stage=MAGNET)
    assert float(table.loc["magnet_floor", "Dependence %"]) == pytest.approx(
        100 * float(dep.sel(scenario="magnet_floor")), abs=0.05
    )
    store.stage = OXIDE
    assert list(store.comparison.ds.commodity.values) == [OXIDE]
    path = tmp_path / "cmp.nc"
    path.write_bytes(store.comparison_netcdf())
    back = tp.open_results(path)
    assert list(back.stage.values) == list(store.info.stages)
    assert back.attrs["chain"] == CHAIN


def test_the_shipped_chain_set_loads_into_the_compare_view(store):
    files = market_info(CHAIN).scenario_files
    assert files and store.load_set(files[0])
    out = store.comparison
    assert out is not None and out.ds is not None and not out.problems
    sset = tp.load_scenarios(files[0])
    direct = tp.solve(scenario_set(store.info, sset.scenarios, store.target))
    for name in out.scenarios:
        a = float(out.chain_ds.bloc_dependency.sel(scenario=name, stage=MAGNET))
        b = float(direct.bloc_dependency.sel(scenario=name, stage=MAGNET))
        assert a == pytest.approx(b) and math.isfinite(a)


def test_the_dashboard_opens_on_the_chain_of_a_results_file(tmp_path):
    from tradepolicy.dashboard import create_app
    from tradepolicy.dashboard.markets import market_of_results

    sset = tp.load_scenarios(CHAIN)
    path = tp.write_results(tp.solve(sset), tmp_path / "chain.nc")
    assert market_of_results(path) == CHAIN
    template = create_app(market=market_of_results(path))
    sidebar = template.sidebar[0]
    (select,) = [o for o in sidebar if "tp-market" in o.css_classes]
    (stage,) = [o for o in sidebar if "tp-stage" in o.css_classes]
    assert select.value == CHAIN and stage.visible and stage.value == MAGNET
