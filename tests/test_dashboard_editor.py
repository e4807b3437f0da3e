"""The measure editor generated from the registry (tradepolicy.dashboard.editor): metadata to
controls, defaults relative to the market, display and market units, snapshot and restore,
and a measure registered in a test that appears in the dashboard and solves."""

from __future__ import annotations

import json
from typing import Literal

import numpy as np
import pytest
from pydantic import Field

pn = pytest.importorskip("panel")

import tradepolicy as tp  # noqa: E402
from tradepolicy._validation import _TAGS  # noqa: E402
from tradepolicy.dashboard import DashboardApp, DashboardStore, catalog, market_info  # noqa: E402
from tradepolicy.dashboard.config import PRESETS, ConfigError, PolicyConfig  # noqa: E402
from tradepolicy.dashboard.editor import editable_types, spec_of, type_spec  # noqa: E402
from tradepolicy.dashboard.store import CURRENT  # noqa: E402
from tradepolicy.measures import MEASURES, Measure, Region, SupplyShock, register  # noqa: E402
from tradepolicy.measures.base import EDITOR_KEY  # noqa: E402

NDPR = "ndpr_oxide"


def two_digits(x: float) -> float:
    """Two significant digits, written out here (not the editor's helper)."""
    return float(f"{x:.2g}")


@pytest.fixture(scope="module")
def app() -> DashboardApp:
    return DashboardApp(market=NDPR)


# -- metadata -> controls --------------------------------------------------------------------------
WIDGET = {
    "regions": pn.widgets.MultiChoice,
    "shares": pn.widgets.MultiChoice,
    "region": pn.widgets.Select,
    "choice": pn.widgets.Select,
    "flag": pn.widgets.Checkbox,
}


def test_every_offered_type_gets_a_control_per_field_with_unit_and_help(app):
    cfg, editor, info = app.store.policy, app.editor.measures, app.store.info
    offered = editable_types()
    # built-in types the one-year dashboard can solve; pathway-only ones are not offered
    assert {"price_floor", "tariff", "offtake", "export_tax", "demand_shift"} <= set(offered)
    assert "capex_grant" not in offered and "stockpile_policy" not in offered
    every = {v for group in editor.add_type.groups.values() for v in group.values()}
    assert {f"type:{t}" for t in offered} | {f"preset:{p}" for p in PRESETS} | {""} == every
    assert editor.add_type.value == ""  # "choose a measure": choosing one adds it
    for name, spec in offered.items():
        eid = cfg.add(name)
        values = cfg.entry(eid)["values"]
        shown = {f for (e, f) in editor._widgets if e == eid}
        assert shown == {f.name for f in spec.fields if f.applies(values)}, name
        for f in spec.fields:
            if f.name not in shown:
                continue
            w = editor._widgets[(eid, f.name)]
            expected = WIDGET.get(
                f.kind, pn.widgets.IntInput if f.integer else pn.widgets.FloatInput
            )
            assert isinstance(w, expected), (name, f.name)
            assert w.label == f.title(info)
            if not isinstance(w, pn.widgets.Checkbox):
                assert w.description and w.description == f.help, (name, f.name)  # plain help
        cfg.remove(eid)
    assert not editor._widgets and not cfg.entries


def test_controls_show_settings_changed_elsewhere(app):
    cfg, editor = app.store.policy, app.editor.measures
    cfg.preset("floor", floor=130.0, levy_cap=20.0)
    snap = cfg.snapshot()
    cfg.set("floor", floor=90.0, levy_cap=None, exporters=["CHN"])
    shown = {k[1]: w.value for k, w in editor._widgets.items() if k[0] == "floor"}
    assert (shown["floor"], shown["levy_cap"], shown["exporters"]) == (90.0, None, ["CHN"])
    cfg.restore(snap)  # e.g. a saved scenario put back, or a shared link
    shown = {k[1]: w.value for k, w in editor._widgets.items() if k[0] == "floor"}
    assert (shown["floor"], shown["levy_cap"], shown["exporters"]) == (130.0, 20.0, [])
    editor._widgets[("floor", "floor")].value = 140.0  # typed in the box
    assert cfg.value("floor", "floor") == 140.0
    cfg.remove("floor")
    assert not editor._widgets


def test_declared_metadata_labels_units_and_choices():
    spec = spec_of("price_floor")
    floor = spec.field("floor")
    assert (floor.kind, floor.label, floor.lo, floor.lo_open) == ("price", "Floor level", 0, True)
    assert "landed price" in floor.help
    collector = spec.field("collector")
    assert dict(collector.choices)["exporters"] == "Undertaking (exporters keep the margin)"
    assert spec_of("offtake").field("buyers").kind == "shares"
    assert spec_of("supply_shock").field("region").kind == "regions"  # Region | list[Region]
    assert spec_of("export_quota").field("exporter").kind == "region"
    # the metadata sits in the JSON schema under its extension key
    schema = tp.measures.PriceFloor.model_json_schema()
    assert schema["properties"]["floor"][EDITOR_KEY]["unit"] == "price"


class Undeclared(Measure):
    """A measure that declares no editor metadata."""

    type: Literal["undeclared"] = "undeclared"
    producer: Region
    buyers: list[Region] | None = None
    cut: float = Field(ge=0.0, le=0.9)
    mode: Literal["fast", "slow"] = "slow"
    strict: bool = False
    note: dict[str, list[int]] | None = None  # nothing the editor can show: left out
    region_fields = ("producer", "buyers")


def test_fallbacks_from_the_pydantic_schema():
    spec = type_spec(Undeclared)
    kinds = {f.name: f.kind for f in spec.fields}
    assert kinds == {
        "producer": "region",
        "buyers": "regions",
        "cut": "number",
        "mode": "choice",
        "strict": "flag",
    }
    cut = spec.field("cut")
    assert (cut.lo, cut.lo_open, cut.hi, cut.hi_open, cut.label) == (0.0, False, 0.9, False, "Cut")
    assert spec.field("mode").choices == (("fast", "fast"), ("slow", "slow"))
    assert spec.usable and spec.label == "Undeclared"
    # plain help read from the schema
    assert cut.help == "A number at least 0 and at most 0.9."
    assert spec.field("producer").help == "Choose a region."
    assert spec.field("mode").help == "One of: fast, slow."

    class Opaque(Undeclared):
        type: Literal["opaque"] = "opaque"
        table: dict[str, list[int]]  # required and not editable: the type is not offered

    assert type_spec(Opaque).missing == ("table",) and not type_spec(Opaque).usable


# -- defaults relative to the market ---------------------------------------------------------------
@pytest.mark.parametrize("market", [NDPR, "gallium"])
def test_defaults_are_relative_to_the_market(market):
    info = market_info(market)
    cfg = PolicyConfig()
    cfg.apply_market(info)
    club = list(cfg.members)
    price = float(np.median(info.market.base_price)) / info.price_factor  # display unit
    cfg.preset("floor")
    assert cfg.value("floor", "floor") == two_digits(2 * price)
    (floor,) = [m for m in cfg.measures(info) if m.type == "price_floor"]
    assert floor.floor == pytest.approx(two_digits(2 * price) * info.price_factor)
    flows, idx = info.market.flows, info.market.index
    importers = [r for r in club if r in info.importers]
    outside = [r for r in info.producers if r not in club]
    cfg.preset("quota")
    assert cfg.value("quota", "importers") == importers
    assert cfg.value("quota", "exporters") == outside
    base = flows[np.ix_(idx(outside), idx(importers))].sum()
    assert cfg.value("quota", "quantity") == two_digits(0.5 * base)
    cfg.preset("offtake")
    sellers = cfg.value("offtake", "sellers")
    assert sellers == ([r for r in club if r in info.producers] or [info.top_producer()])
    assert cfg.value("offtake", "volume") == two_digits(0.5 * flows[idx(sellers)].sum())
    assert cfg.value("offtake", "price") == two_digits(2 * price)


def test_defaults_follow_the_club_until_edited():
    info = market_info(NDPR)
    cfg = PolicyConfig()
    cfg.apply_market(info)
    cfg.preset("floor")
    cfg.members = ["USA", "JPN"]
    assert cfg.value("floor", "exempt") == ["USA", "JPN"]
    assert cfg.value("floor", "importers") == [r for r in ["USA", "JPN"] if r in info.importers]
    cfg.set("floor", importers=["EU"], floor=123.0)
    cfg.members = ["USA", "JPN", "KOR"]
    assert cfg.value("floor", "exempt") == ["USA", "JPN", "KOR"]  # still the default: follows
    assert cfg.value("floor", "importers") == ["EU"]  # typed by the user: kept
    assert cfg.value("floor", "floor") == 123.0


# -- display and market units ----------------------------------------------------------------------
def test_display_and_market_units():
    info = market_info(NDPR)
    assert info.price_factor == 1000.0  # USD/kg shown, USD/t in the market
    floor = spec_of("price_floor").field("floor")
    assert floor.to_market(110.0, info) == pytest.approx(110_000.0)
    assert floor.to_display(floor.to_market(87.5, info), info) == pytest.approx(87.5)
    share = spec_of("diversification_cap").field("max_share")
    assert share.to_market(60.0, info) == pytest.approx(0.6)
    rate = spec_of("tariff").field("rate")
    assert rate.to_display(0.25, info) == pytest.approx(25.0)
    qty = spec_of("offtake").field("volume")
    assert qty.to_market(1234.5, info) == 1234.5 and qty.unit_label(info) == "t/yr"
    assert floor.problem(-1.0, info, tp.measures.PriceFloor) == "must be above 0 USD/kg"
    assert share.problem(100.0, info, tp.measures.DiversificationCap) == "must be below 100%"

    cfg = PolicyConfig()
    cfg.apply_market(info)
    cfg.free_trade = False
    cfg.preset("tariff", rate=30.0)
    cfg.preset("subsidy", kind="collar", strike=100.0, upside_threshold=180.0, upside_share=40.0)
    tariff, subsidy = cfg.measures(info)
    assert tariff.rate == pytest.approx(0.30)
    assert (subsidy.strike, subsidy.upside_threshold) == pytest.approx((100_000.0, 180_000.0))
    assert subsidy.upside_share == pytest.approx(0.40)
    cfg.set("subsidy", kind="one_sided")  # the collar's fields no longer apply: left out
    assert cfg.measures(info)[1].upside_threshold is None


# -- snapshot and restore --------------------------------------------------------------------------
def test_snapshot_restore_round_trip_and_bad_input():
    a = DashboardStore(catalog(), NDPR)
    a.policy.members = ["USA", "JPN", "EU"]
    a.policy.preset("floor", floor=130.0)
    a.policy.preset("cap", max_share=55.0)
    a.policy.switch("cap", False)
    a.policy.add("export_tax", exporter="CHN", rate=15.0)
    snap = json.loads(json.dumps(a.policy.snapshot()))  # JSON-able
    b = DashboardStore(catalog(), NDPR)
    b.policy.restore(snap)
    assert b.policy.snapshot() == snap
    assert b.current_scenario().measures == a.current_scenario().measures
    assert b.current.solved(CURRENT)
    k = [m for m in b.current_scenario().measures if m.type == "export_tax"]
    assert k[0].rate == pytest.approx(0.15)

    before = b.policy.snapshot()
    bad = {**snap, "measures": [{"type": "price_floor", "values": {"flor": 1.0}}]}
    with pytest.raises(ValueError, match=r"measures\[0\]: price_floor has no field 'flor'"):
        b.policy.restore(bad)
    with pytest.raises(ValueError, match=r"measures\[0\]: unknown measure type 'nope'"):
        b.policy.restore({"measures": [{"type": "nope", "values": {}}]})
    assert b.policy.snapshot() == before  # nothing half-written


def test_problems_name_the_field_in_words():
    store = DashboardStore(catalog(), NDPR)
    cfg = store.policy
    cfg.preset("floor", floor=-5.0)
    assert store.current.ds is None
    assert "Club price floor: Floor level: must be above 0 USD/kg" in store.current.problems
    assert cfg.field_problems == {("floor", "floor"): "must be above 0 USD/kg"}
    cfg.set("floor", floor=120.0, exempt=["XXX"])
    assert any("unknown region 'XXX'" in p for p in store.current.problems)
    assert ("floor", "exempt") in cfg.field_problems
    with pytest.raises(ValueError, match="allowed: importers, floor"):
        cfg.set("floor", flor=1.0)
    with pytest.raises(ConfigError):
        cfg.measures(store.info)


# -- a measure registered in a test ----------------------------------------------------------------
class ToyCut(Measure):
    """A producer loses a share of its capacity (a supply shock written anew, in a test)."""

    type: Literal["toy_cut"] = "toy_cut"
    producer: Region
    cut: float = Field(ge=0.0, le=0.9)
    region_fields = ("producer",)

    def apply(self, ctx, b: int) -> None:
        ctx.builder.supply_mult[b, ctx.idx(self.producer)] *= 1.0 - self.cut


@pytest.fixture
def toy_registered():
    register(ToyCut)
    yield ToyCut
    MEASURES.pop("toy_cut", None)
    _TAGS.pop("toy_cut", None)


def test_a_measure_registered_here_appears_edits_and_solves(toy_registered):
    app = DashboardApp(market=NDPR)
    store, editor = app.store, app.editor.measures
    every = editor.add_type.groups["Any measure"]
    assert every["Toy cut (toy_cut)"] == "type:toy_cut"
    store.policy.free_trade = False
    editor.add_type.value = "type:toy_cut"
    before = app.kpis.pane.object
    producer, cut = editor._widgets[("toy_cut", "producer")], editor._widgets[("toy_cut", "cut")]
    assert isinstance(producer, pn.widgets.Select) and isinstance(cut, pn.widgets.FloatInput)
    producer.value = "CHN"
    cut.value = 30.0  # a percent typed where the schema wants a fraction: said in words
    assert "must be at most 0.9" in editor._errors[("toy_cut", "cut")].object
    assert editor._errors[("toy_cut", "cut")].visible
    cut.value = 0.3
    assert not editor._errors[("toy_cut", "cut")].visible
    (m,) = store.current_scenario().measures
    assert isinstance(m, ToyCut) and (m.producer, m.cut) == ("CHN", 0.3)
    assert store.current.solved(CURRENT) and app.kpis.pane.object != before
    # the same numbers as the built-in supply shock it rewrites, solved directly
    sc = tp.Scenario(name="direct", measures=[SupplyShock(region="CHN", fraction=0.3)])
    ds = tp.solve([sc], store.info.market, target_share=store.target)
    for var in ("consumer_price", "welfare_change"):
        got = store.current.ds[var].sel(scenario=CURRENT).values
        want = ds[var].sel(scenario="direct").values
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)
    snap = json.loads(json.dumps(store.policy.snapshot()))
    assert snap["measures"][0]["values"] == {"producer": "CHN", "cut": 0.3}


def test_choosing_a_measure_adds_it_and_the_same_type_can_be_added_again(app):
    """One event adds a measure (no separate Add click that a worker thread could handle before
    the choice arrived); the list goes back to "choose", so a second choice adds a second."""
    cfg, editor = app.store.policy, app.editor.measures
    before = [e["type"] for e in cfg.entries]
    editor.add_type.value = "type:tariff"
    assert editor.add_type.value == ""
    editor.add_type.value = "type:tariff"
    assert [e["type"] for e in cfg.entries] == [*before, "tariff", "tariff"]
    editor.add_type.value = ""  # choosing "choose a measure" adds nothing
    assert len(cfg.entries) == len(before) + 2
