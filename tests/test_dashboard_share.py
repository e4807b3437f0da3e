"""Shareable and durable dashboard scenarios (tradepolicy.dashboard.persist): the address
token, the saved scenarios kept in the browser, scenario-set TOML download and upload, and
scenario names in words. Browser-side behaviour: tests/ui/test_dashboard_share_ui.py."""

from __future__ import annotations

import base64
import json
import warnings
import zlib
from pathlib import Path
from urllib.parse import parse_qs

import pytest

pn = pytest.importorskip("panel")

import tradepolicy as tp  # noqa: E402
from tradepolicy.dashboard import (  # noqa: E402
    DashboardStore,
    catalog,
    persist,
)
from tradepolicy.dashboard.persist import (  # noqa: E402
    ShareError,
    ShareLink,
    decode_state,
    display_name,
    encode_state,
)
from tradepolicy.scenario import Scenario  # noqa: E402

NDPR = "ndpr_oxide"
CHAIN = "ree_magnets"
MAGNET, OXIDE = "ree_ndfeb_magnet", "ree_ndpr_oxide"


@pytest.fixture
def store() -> DashboardStore:
    return DashboardStore(catalog(), NDPR)


def token_of(store: DashboardStore) -> str:
    query = parse_qs(store.share_query())
    assert query["market"] == [store.market]
    return query["s"][0]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


# -- the address ----------------------------------------------------------------------------
def test_the_token_round_trips_any_json_state():
    state = {"market": "m", "settings": {"a": [1, 2.5, None], "b": "é ü", "c": True}, "x": 1e-12}
    token = encode_state(state)
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert decode_state(token) == state


def test_a_link_opens_the_same_scenario_in_a_new_session(store):
    store.config.preset("floor", floor=150.0)
    store.config.preset("subsidy", strike=95.0)
    store.target = 0.5
    token = token_of(store)
    assert len(token) < 1500  # the whole snapshot fits a link
    other = DashboardStore(catalog(), "gallium")  # opened on another market: the link wins
    assert other.apply_share_token(token), other.notice
    assert other.market == NDPR and other.target == 0.5
    assert other.config.snapshot() == store.config.snapshot()
    assert other.current_scenario() == store.current_scenario()
    a, b = store.current.ds, other.current.ds
    assert float(b.bloc_dependency.sel(scenario="current").squeeze()) == pytest.approx(
        float(a.bloc_dependency.sel(scenario="current").squeeze())
    )


def test_a_link_keeps_the_stage_of_a_chain():
    a = DashboardStore(catalog(), CHAIN)
    a.stage = OXIDE
    a.config.preset("floor", stage=MAGNET, floor=70.0)
    b = DashboardStore(catalog(), NDPR)
    assert b.apply_share_token(token_of(a)), b.notice
    assert (b.market, b.stage) == (CHAIN, OXIDE)
    assert b.current_scenario() == a.current_scenario()


def _bomb() -> str:
    return _b64(zlib.compress(b"{" + b" " * (persist.MAX_JSON + 10) + b"}", 9))


@pytest.mark.parametrize(
    ("token", "why"),
    [
        ("", "empty"),
        ("not a token!", "characters"),
        ("A" * (persist.MAX_TOKEN + 1), "longer"),
        ("abc", "damaged"),  # not base64 of zlib
        (_b64(b"plain bytes, not zlib"), "damaged"),
        (_b64(zlib.compress(b"not json")), "damaged"),
        (_b64(zlib.compress(b"[1, 2]")), "does not hold"),
        (_b64(zlib.compress(b'{"v": 99, "market": "ndpr_oxide"}')), "another version"),
        (_b64(zlib.compress(b'{"v": 1}')), "names no market"),
        (_b64(zlib.compress(b'{"v": 1, "market": "ndpr_oxide", "settings": [1]}')), "settings"),
        (_bomb(), "too large"),
    ],
)
def test_a_bad_token_is_refused_with_a_reason(token, why):
    with pytest.raises(ShareError, match=why):
        decode_state(token)


def test_a_cut_short_link_gives_the_defaults_and_a_plain_notice(store):
    defaults = store.config.snapshot()
    other = DashboardStore(catalog(), NDPR)
    other.config.preset("floor", floor=150.0)
    token = token_of(other)
    for bad in (token[: len(token) // 2], token[:-3], "x" + token, "%%%"):
        assert not store.apply_share_token(bad)
        assert "was not opened" in store.notice and "Showing the defaults" in store.notice
        assert store.config.snapshot() == defaults
        assert store.current.ok


def _floor_entry(**values: object) -> dict:
    """A whole price-floor entry of the editor on the default club (``values`` changed)."""
    s = DashboardStore(catalog(), NDPR)
    s.config.preset("floor")
    entry = s.config.entry("floor")
    entry["values"].update(values)
    return entry


@pytest.mark.parametrize(
    "change",
    [
        lambda: {"market": "no_such_market"},
        lambda: {"stage": "no_such_stage"},
        lambda: {"target": 7.0},
        lambda: {"settings": {"measures": [_floor_entry(floor=-5.0)]}},
        lambda: {"settings": {"measures": [_floor_entry()], "members": ["USA", "ATLANTIS"]}},
        lambda: {"settings": {"measures": [{**_floor_entry(), "on": "yes please"}]}},
        lambda: {"settings": {"measures": [{**_floor_entry(), "type": "flor"}]}},
        lambda: {"settings": {"measures": [_floor_entry(no_such_field=1.0)]}},
        lambda: {"settings": {"measures": "yes please"}},
        lambda: {"settings": {"free_trade": "yes please"}},
    ],
    ids=[
        "market",
        "stage",
        "target",
        "negative_floor",
        "member_of_no_market",
        "on_not_a_bool",
        "unknown_type",
        "unknown_field",
        "measures_not_a_list",
        "free_trade_not_a_bool",
    ],
)
def test_a_stale_link_gives_the_defaults_and_says_so(store, change):
    change = change()
    state = store.share_state()
    defaults = state["settings"]
    before = (store.market, store.stage, store.target)
    bad = {**state, **change}
    if "settings" in change:
        bad["settings"] = {**defaults, **change["settings"]}
    assert not store.apply_share_token(encode_state(bad))
    assert "Showing the defaults" in store.notice
    assert (store.market, store.stage, store.target) == before
    assert store.config.snapshot() == defaults  # nothing half applied
    assert store.current.ok


def test_settings_the_editor_no_longer_has_are_ignored(store):
    state = store.share_state()
    state["settings"] = {
        **state["settings"],
        "measures": [_floor_entry()],
        "floor_on": False,  # a setting of an older dashboard
        "retired_setting": 3,
    }
    assert store.apply_share_token(encode_state(state)), store.notice
    assert store.config.entry("floor")["on"]


def test_the_share_link_follows_every_edit_and_opens_a_token():
    s = DashboardStore(catalog(), NDPR)
    assert ShareLink(store=s, token=None).bridge.query == ""  # a notebook's address stays
    link = ShareLink(store=s, token=None, address=True)  # no session: nothing to open
    first = link.bridge.query
    assert parse_qs(first)["market"] == [NDPR]
    s.config.preset("floor")
    assert link.bridge.query != first
    t = DashboardStore(catalog(), "gallium")
    ShareLink(store=t, token=parse_qs(link.bridge.query)["s"][0])
    assert t.market == NDPR and t.config.entry("floor")["on"]


# -- the browser's storage ------------------------------------------------------------------
def test_saved_scenarios_of_every_market_survive_a_new_session(store):
    store.config.preset("floor", floor=140.0)
    assert store.save_current("f140", "Floor at 140")
    store.market = "gallium"
    store.config.preset("restrict")
    assert store.save_current("ban")
    text = store.saved_text()

    fresh = DashboardStore(catalog(), NDPR)
    assert fresh.restore_saved_text(text) == 2
    assert "Restored 2" in fresh.notice
    (f140,) = fresh.saved
    assert f140.scenario == store._saved_by_market[NDPR][0].scenario
    assert f140.display == "Floor at 140" and fresh.compare == ["f140"]
    assert fresh.edit("f140")  # its settings came along
    assert fresh.config.value("floor", "floor") == 140.0
    fresh.market = "gallium"
    assert [s.name for s in fresh.saved] == ["ban"]
    assert fresh.saved[0].scenario == store.saved[0].scenario


def test_names_saved_in_the_session_win_over_the_browser(store):
    store.config.preset("floor")
    store.save_current("mine")
    text = store.saved_text()
    other = DashboardStore(catalog(), NDPR)
    other.config.preset("tariff")
    other.save_current("mine")
    assert other.restore_saved_text(text) == 0
    assert [m.type for m in other.saved[0].scenario.measures][-1] == "tariff"


@pytest.mark.parametrize(
    "text",
    ["not json", "[]", '{"v": 2, "markets": {}}', '{"v": 1, "markets": []}', '{"v": 1}'],
)
def test_unreadable_storage_restores_nothing_and_says_so(store, text):
    assert store.restore_saved_text(text) == 0
    assert "could not be read" in store.notice and store.saved == []


def test_unreadable_stored_scenarios_are_left_out_and_counted(store):
    store.config.preset("floor")
    store.save_current("good")
    doc = json.loads(store.saved_text())
    doc["markets"][NDPR] += [
        {"source": "dashboard", "scenario": {"name": "bad name!", "measure": []}},
        {"source": "dashboard", "scenario": {"name": "x", "measure": [{"type": "nope"}]}},
        "junk",
    ]
    doc["markets"]["retired_market"] = [doc["markets"][NDPR][0]]
    fresh = DashboardStore(catalog(), NDPR)
    assert fresh.restore_saved_text(json.dumps(doc)) == 1
    assert [s.name for s in fresh.saved] == ["good"]
    assert "4 could not be read" in fresh.notice


def test_nothing_is_stored_before_the_browser_has_answered():
    s = DashboardStore(catalog(), NDPR)
    link = ShareLink(store=s, token=None)
    s.config.preset("floor")
    s.save_current("early")
    assert link.bridge.keep == ""  # the browser's scenarios are not overwritten
    kept = DashboardStore(catalog(), NDPR)
    kept.config.preset("tariff")
    kept.save_current("kept")
    link.bridge.stored = kept.saved_text()  # what the browser had
    assert [x.name for x in s.saved] == ["early", "kept"]
    assert {x["scenario"]["name"] for x in json.loads(link.bridge.keep)["markets"][NDPR]} == {
        "early",
        "kept",
    }


# -- scenario-set files ---------------------------------------------------------------------
#: the club presets (with field values, display units) that make every measure type the editor
#: offers (each alone, plus variants); ``None``: free trade among members alone
EVERY_MEASURE: dict[str, tuple[str | None, dict[str, object]]] = {
    "free_trade": (None, {}),
    "floor": ("floor", {"floor": 130.0, "levy_cap": 40.0, "collector": "exporters"}),
    "tariff": ("tariff", {"rate": 12.5}),
    "subsidy": ("subsidy", {"strike": 90.0}),
    "collar": ("subsidy", {"kind": "collar", "upside_threshold": 140.0, "upside_share": 30.0}),
    "ban": ("restrict", {}),
    "quota": ("quota", {"quantity": 900.0}),
    "offtake": ("offtake", {"disposition": "resell"}),
    "release": ("release", {}),
    "cap": ("cap", {"max_share": 70.0, "basis": "imports"}),
    "shock": ("shock", {"fraction": 15.0}),
}


def _save_every_measure(store: DashboardStore) -> None:
    defaults = store.config.snapshot()
    for name, (preset, values) in EVERY_MEASURE.items():
        store.config.restore({**defaults, "free_trade": preset is None})
        if preset is not None:
            store.config.preset(preset, **values)
        assert store.save_current(name), store.notice
    store.config.restore(defaults)


def _load(path: Path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", tp.errors.InputWarning)
        return tp.load_scenarios(path)


@pytest.mark.parametrize("market", [NDPR, CHAIN])
def test_downloaded_scenarios_load_back_to_the_same_measures(market, tmp_path):
    store = DashboardStore(catalog(), market)
    _save_every_measure(store)
    path = tmp_path / "saved.toml"
    path.write_bytes(store.saved_toml())
    sset = _load(path)
    assert sset.market.id == market
    assert sset.bloc_target == store.info.bloc_target(store.target)
    assert sset.names == [s.name for s in store.saved]
    for back, saved in zip(sset.scenarios, store.saved, strict=True):
        assert back == saved.scenario  # every measure field, and the description
    made = {m.type for s in store.saved for m in s.scenario.measures}
    assert made >= {
        "tariff",
        "price_floor",
        "price_gap_subsidy",
        "export_quota",
        "import_quota",
        "offtake",
        "stockpile_release",
        "diversification_cap",
        "supply_shock",
    }


def test_a_downloaded_set_runs_to_the_dashboards_numbers(store, tmp_path):
    """What ``tradepolicy run`` solves from the file equals the dashboard's comparison."""
    store.config.preset("floor", floor=150.0)
    store.save_current("floor_150")
    store.config.switch("floor", False)
    store.config.preset("subsidy")
    store.save_current("subsidy")
    path = tmp_path / "saved.toml"
    path.write_bytes(store.saved_toml())
    ds = tp.solve(_load(path))
    shown = store.comparison.ds
    for name in ("floor_150", "subsidy"):
        assert float(ds.bloc_dependency.sel(scenario=name).squeeze()) == pytest.approx(
            float(shown.bloc_dependency.sel(scenario=name).squeeze()), rel=1e-9
        )


def test_nothing_to_download_without_saved_scenarios(store):
    with pytest.raises(ValueError, match="save a scenario first"):
        store.saved_toml()


def test_an_uploaded_file_becomes_saved_scenarios(store):
    _save_every_measure(store)
    data = store.saved_toml()
    names = [s.name for s in store.saved]
    fresh = DashboardStore(catalog(), NDPR)
    assert fresh.load_toml(data, "my set.toml"), fresh.notice
    assert [s.name for s in fresh.saved] == names
    assert [s.scenario for s in fresh.saved] == [s.scenario for s in store.saved]
    assert fresh.saved[0].origin == "my set.toml (uploaded)"
    assert fresh.compare == names[:6] and fresh.comparison.ok
    assert not fresh.edit(names[0])  # from a file: compared, not edited in the controls


def test_a_shipped_set_uploads_like_it_loads(store):
    path = store.info.scenario_files[0]
    assert store.load_toml(path.read_bytes(), path.name)
    assert [s.name for s in store.saved] == _load(path).names


GOOD_FLOOR = """
[[scenario.measure]]
type = "price_floor"
importers = ["USA", "JPN", "EU"]
floor = 110000.0
"""


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (b"market = 'ndpr_oxide'\n[[scenario]\n", "not valid TOML"),
        (b"\xff\xfe not text", "not a UTF-8 text file"),
        (b"x" * (persist.MAX_UPLOAD + 1), "larger than"),
        (("market = 'gallium'\n[[scenario]]\nname = 'a'\n" + GOOD_FLOOR).encode(), "market:"),
        (b"market = 'ndpr_oxide'\n", "scenario"),
        (
            b"market = 'ndpr_oxide'\n[[scenario]]\nname = 'a'\n[[scenario.measure]]\ntype = 'flor'",
            "scenario[0].measure[0]",
        ),
        (
            ("market = 'ndpr_oxide'\n[[scenario]]\nname = 'a'\n" + GOOD_FLOOR)
            .replace("110000.0", "-1.0")
            .encode(),
            "scenario[0].measure[0].floor",
        ),
        (
            ("market = 'ndpr_oxide'\n[[scenario]]\nname = 'a'\n" + GOOD_FLOOR)
            .replace('"JPN"', '"XXX"')
            .encode(),
            "XXX",
        ),
        ((b"market = 'ndpr_oxide'\n[[scenario]]\nname = 'bad name'\n"), "scenario[0].name"),
        ((b"market = 'ndpr_oxide'\n[[scenario]]\nname = 'current'\n"), "reserved"),
        (
            (b"market = 'ndpr_oxide'\nyears = [2024, 2030]\n[[scenario]]\nname = 'a'\n"),
            "years",
        ),
    ],
)
def test_a_bad_upload_names_the_file_and_field_and_changes_nothing(store, text, where):
    store.config.preset("floor")
    store.save_current("kept")
    before = list(store.saved)
    assert not store.load_toml(text, "upload.toml")
    assert store.notice.startswith("Not loaded: upload.toml")
    assert where in store.notice
    assert store.saved == before


# -- names in words -------------------------------------------------------------------------
def test_display_names_come_from_the_description_words():
    sc = lambda d: Scenario(name="club_floor_oxide_110", description=d)  # noqa: E731
    assert display_name(sc("Oxide-only club floor: the US, Japan, ...")) == "Oxide-only club floor"
    assert display_name(sc("")) == "club floor oxide 110"
    first = display_name(sc("A club floor. It raises prices. More words follow."))
    assert first == "A club floor"
    long = display_name(sc("word " * 60))
    assert len(long) <= persist.MAX_DISPLAY and long.endswith("…")


def test_shipped_sets_and_saved_scenarios_are_named_in_words(store):
    assert store.load_set(store.info.scenario_files[0])
    for s in store.saved:
        assert s.display and s.display != s.name.replace("_", " ")
        assert s.name in store.param.compare.objects  # the identifier stays the key
    store.config.preset("floor")
    store.save_current("f", "A floor at twice the price")
    assert store.saved[-1].display == "A floor at twice the price"
    store.save_current("g")
    assert store.saved[-1].display == "Free trade among members + Club price floor"
    back = DashboardStore(catalog(), NDPR)
    assert back.load_toml(store.saved_toml(), "x.toml")
    assert [s.display for s in back.saved] == [s.display for s in store.saved]


def test_the_compare_choices_show_the_words_beside_the_identifier(store):
    store.config.preset("floor")
    store.save_current("f", "Floor")
    labels = dict(store.param.compare.names)
    assert labels == {"f — Floor": "f"}


def test_the_compare_tab_uploads_a_file_and_says_what_happened(store):
    from tradepolicy.dashboard import DashboardApp

    store.config.preset("floor")
    store.save_current("f", "Floor")
    data = store.saved_toml()
    fresh = DashboardStore(catalog(), NDPR)
    view = DashboardApp(store=fresh).comparison
    assert view.toml.disabled  # nothing saved yet
    view.upload.filename = "mine.toml"
    view.upload.value = data
    assert [s.name for s in fresh.saved] == ["f"] and not view.toml.disabled
    assert "Loaded 1 scenario from mine.toml" in view.file_notice.object
    assert "f — Floor" in view.pick.options
    fresh.delete("f")
    view.upload.value = data  # the same file again
    assert [s.name for s in fresh.saved] == ["f"]
    view.upload.value = b"market = 'ndpr_oxide'\n"
    assert "Not loaded: mine.toml" in view.file_notice.object


def test_a_bad_link_is_still_said_once_the_browser_restores(store):
    other = DashboardStore(catalog(), NDPR)
    other.config.preset("floor")
    other.save_current("kept")
    assert not store.apply_share_token("broken")
    store.restore_saved_text(other.saved_text())
    assert "was not opened" in store.notice and "Restored 1 saved scenario " in store.notice


# -- links made before the generated editor ---------------------------------------------------
def _legacy_settings(**changes: object) -> dict:
    """The flat settings a link held before the generated editor (every control, by name, in
    display units; ``PolicyConfig.snapshot`` of that version), groups switched off."""
    club = ["USA", "JPN", "EU", "AUS"]
    old = {
        "members": club,
        "free_trade": True,
        **{f"{g}_on": False for g in ("floor", "tariff", "subsidy", "restrict", "quota")},
        **{f"{g}_on": False for g in ("offtake", "release", "cap", "shock")},
        "floor": 110.0,
        "levy_cap": 0.0,
        "collector": "importer_government",
        "tariff_rate": 25.0,
        "subsidy_producers": ["AUS", "USA"],
        "strike": 110.0,
        "subsidy_kind": "one_sided",
        "upside_threshold": 170.0,
        "upside_share": 30.0,
        "subsidy_payers": "own",
        "restrict_exporter": "CHN",
        "restrict_destinations": ["USA", "JPN", "EU"],
        "restrict_quantity": 0.0,
        "quota_importers": ["USA", "JPN", "EU"],
        "quota_exporters": ["CHN", "MYS", "ROW"],
        "quota_quantity": 1000.0,
        "offtake_sellers": ["AUS", "USA"],
        "offtake_buyers": ["USA", "JPN", "EU"],
        "offtake_volume": 1000.0,
        "offtake_price": 110.0,
        "offtake_disposition": "stockpile",
        "release_regions": ["USA", "JPN", "EU"],
        "release_quantity": 1000.0,
        "cap_importers": ["USA", "JPN", "EU"],
        "cap_share": 60.0,
        "cap_basis": "consumption",
        "shock_regions": ["CHN"],
        "shock_fraction": 20.0,
        **{f"{g}_stage": None for g in ("floor", "tariff", "subsidy", "restrict", "quota")},
        **{f"{g}_stage": None for g in ("offtake", "release", "cap", "shock")},
    }
    old.update(changes)
    return old


def _legacy_token(market: str, settings: dict, stage: str | None = None) -> str:
    return encode_state(
        {
            "market": market,
            "stage": stage,
            "target": 0.6,
            "uncertainty": False,
            "draws": 200,
            "settings": settings,
        }
    )


def test_a_link_made_before_the_generated_editor_opens_its_measures():
    """An old link (a club floor of 150 USD/kg collected by exporters, a price-gap subsidy
    paid by the club, a release of 1,000 t split over three members) opens as the club
    presets with the same values; the measures are those the old editor built from them,
    written here from its rules (importers: members that import; payers and the release
    split by base consumption)."""
    from tradepolicy.clubs import shares_by
    from tradepolicy.dashboard import market_info
    from tradepolicy.measures import PriceFloor, PriceGapSubsidy, StockpileRelease

    old = _legacy_settings(
        floor_on=True,
        floor=150.0,
        collector="exporters",
        subsidy_on=True,
        subsidy_payers="club",
        strike=120.0,
        release_on=True,
    )
    s = DashboardStore(catalog(), "gallium")
    assert s.apply_share_token(_legacy_token(NDPR, old)), s.notice
    assert s.market == NDPR and s.notice == "Opened the scenario of the link"
    ids = [e["id"] for e in s.config.entries]
    assert ids == ["floor", "subsidy", "release", "release_2", "release_3"]
    info = market_info(NDPR)
    club = old["members"]
    measures = s.current_scenario().measures
    (floor,) = [m for m in measures if isinstance(m, PriceFloor)]
    assert floor.importers == [r for r in club if r in info.importers]
    assert set(floor.exempt) == set(club) and floor.levy_cap is None
    assert floor.floor == pytest.approx(info.to_market_price(150.0))
    assert floor.collector == "exporters"
    (sub,) = [m for m in measures if isinstance(m, PriceGapSubsidy)]
    assert sub.producers == ["AUS", "USA"] and sub.kind == "one_sided"
    assert sub.strike == pytest.approx(info.to_market_price(120.0))
    payers = shares_by(info.market, [r for r in club if r in info.consumers])
    assert sub.payers == pytest.approx(payers)
    releases = {m.region: m.quantity for m in measures if isinstance(m, StockpileRelease)}
    split = shares_by(info.market, ["USA", "JPN", "EU"])
    assert releases == pytest.approx({r: 1000.0 * x for r, x in split.items()})
    assert sum(releases.values()) == pytest.approx(1000.0)
    assert s.current.ok
    # the round trip: its link now holds the editor's snapshot and opens the same measures
    state = decode_state(token_of(s))
    assert set(state["settings"]) == {"members", "free_trade", "measures"}
    t = DashboardStore(catalog(), "gallium")
    assert t.apply_share_token(token_of(s)), t.notice
    assert t.config.snapshot() == s.config.snapshot()
    assert t.current_scenario().measures == measures


def test_an_old_link_keeps_the_stage_of_each_measure_and_is_refused_if_it_no_longer_fits():
    old = _legacy_settings(floor_on=True, floor_stage=OXIDE, tariff_on=True, tariff_stage=MAGNET)
    s = DashboardStore(catalog(), NDPR)
    assert s.apply_share_token(_legacy_token(CHAIN, old, stage=MAGNET)), s.notice
    stages = {e["id"]: e["stage"] for e in s.config.entries}
    assert stages == {"floor": OXIDE, "tariff": MAGNET}
    assert s.config.value("tariff", "rate") == 25.0
    # a stage the chain no longer has: the defaults and a notice, nothing half applied
    u = DashboardStore(catalog(), CHAIN)
    defaults = u.config.snapshot()
    bad = _legacy_settings(floor_on=True, floor_stage="retired_stage")
    assert not u.apply_share_token(_legacy_token(CHAIN, bad, stage=MAGNET))
    assert "no longer fits" in u.notice and "Showing the defaults" in u.notice
    assert u.config.snapshot() == defaults
    # a value out of range: the same
    negative = _legacy_settings(floor_on=True, floor=-1.0)
    assert not u.apply_share_token(_legacy_token(CHAIN, negative, stage=MAGNET))
    assert "no longer fits" in u.notice and u.config.snapshot() == defaults
