"""The dashboard in a real browser: change a floor, see a KPI change, save two scenarios,
compare, download; two sessions at once; a plain message for an infeasible case."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from playwright.sync_api import Browser, Page, expect

import tradepolicy as tp
from ui.actions import add_measure, kpi, set_input

NDPR = "?market=ndpr_oxide"
TIMEOUT = 15_000  # ms; one update takes well under a second


def shot(page: Page, artifacts: Path, name: str) -> None:
    page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)


def open_app(page: Page, url: str) -> None:
    page.goto(url + NDPR)
    expect(kpi(page, "club_price")).to_have_text("55.0", timeout=60_000)


def save_as(page: Page, name: str) -> None:
    set_input(page, ".tp-save-name", name)
    page.locator(".tp-save button").click()
    expect(page.locator(".tp-notice")).to_contain_text(f"Saved '{name}'", timeout=TIMEOUT)


def test_floor_kpi_save_compare_download(page: Page, app_url: str, artifacts: Path):
    open_app(page, app_url)
    shot(page, artifacts, "01_baseline")
    club = kpi(page, "club_price")
    add_measure(page, "Club price floor")
    expect(club).not_to_have_text("55.0", timeout=TIMEOUT)
    first = float(club.inner_text())
    set_input(page, ".tp-floor-floor", "150")
    expect(club).not_to_have_text(f"{first:.1f}", timeout=TIMEOUT)
    assert float(club.inner_text()) > first > 55.0
    expect(kpi(page, "budget_cost")).to_have_text("0.0")  # a floor spends nothing
    dep = page.locator('[data-kpi="dependence"]')
    expect(dep).to_contain_text("Dependence of the G7 and its partners on one outside supplier")
    expect(dep).to_contain_text("Malaysia")
    expect(dep).to_contain_text("meets the 60% target")
    expect(dep).to_contain_text("unattributed")
    expect(page.locator("[data-kpi-warning]")).to_have_count(0)
    shot(page, artifacts, "02_floor_150")
    save_as(page, "floor_150")
    at150 = club.inner_text()
    set_input(page, ".tp-floor-floor", "110")
    expect(club).not_to_have_text(at150, timeout=TIMEOUT)
    save_as(page, "floor_110")

    page.get_by_text("Policy results", exact=True).click()
    expect(page.locator(".tp-region-table")).to_contain_text("Japan", timeout=TIMEOUT)
    expect(page.locator(".tp-caveats")).to_contain_text("How to read these measures")
    shot(page, artifacts, "03_results")

    page.get_by_text("Compare scenarios", exact=True).click()
    table = page.locator(".tp-compare-table")
    expect(table).to_contain_text("floor_150", timeout=TIMEOUT)
    expect(table).to_contain_text("floor_110")
    expect(table).to_contain_text("Cost to bloc buyers")
    expect(table).to_contain_text("raises dependence")
    expect(page.locator(".tp-who-pays")).to_have_count(2)
    shot(page, artifacts, "04_compare")

    with page.expect_download(timeout=TIMEOUT) as info:
        page.locator(".tp-csv button").click()
    df = pd.read_csv(info.value.path())
    assert {"baseline", "floor_150", "floor_110"} == set(df["scenario"])
    assert {"options.dependence", "who_pays.budget_cost"} <= set(df["variable"])
    with page.expect_download(timeout=TIMEOUT) as info:
        page.locator(".tp-nc button").click()
    ds = tp.open_results(info.value.path())
    assert list(ds.scenario.values) == ["baseline", "floor_150", "floor_110"]
    levy = ds["levy_revenue"].sum("region").isel(commodity=0)
    assert float(levy.sel(scenario="floor_150")) > float(levy.sel(scenario="floor_110")) > 0


def test_two_sessions_share_nothing(browser: Browser, app_url: str, artifacts: Path):
    contexts = [
        browser.new_context(viewport={"width": 1500, "height": 1400}, accept_downloads=True)
        for _ in range(2)
    ]
    try:
        a, b = (c.new_page() for c in contexts)
        open_app(a, app_url)
        open_app(b, app_url)
        add_measure(a, "Club price floor")
        expect(kpi(a, "club_price")).not_to_have_text("55.0", timeout=TIMEOUT)
        save_as(a, "only_in_a")
        b.get_by_text("Compare scenarios", exact=True).click()
        expect(b.get_by_text("No saved scenario yet")).to_be_visible(timeout=TIMEOUT)
        expect(kpi(b, "club_price")).to_have_text("55.0")
        expect(b.locator(".tp-card-floor")).to_have_count(0)  # no measure in b
        set_input(b, ".tp-save-name", "b_untouched")
        shot(a, artifacts, "05_session_a")
        shot(b, artifacts, "06_session_b")
        expect(a.locator(".tp-save-name input")).not_to_have_value("b_untouched")
    finally:
        for c in contexts:
            c.close()


def test_infeasible_case_is_a_plain_message(page: Page, app_url: str, artifacts: Path):
    open_app(page, app_url)
    add_measure(page, "Diversification cap")
    page.locator(".tp-cap-basis select").select_option(label="Share of imports")
    set_input(page, ".tp-cap-max_share", "10")
    status = page.locator(".tp-status")
    expect(status).to_contain_text("no market equilibrium", timeout=TIMEOUT)
    expect(kpi(page, "club_price")).to_have_text("—")
    assert "Traceback" not in page.content()
    shot(page, artifacts, "07_infeasible")
    # a value out of bounds: a plain sentence under the field, in its display unit
    set_input(page, ".tp-cap-max_share", "150")
    error = page.locator(".tp-card-cap .tp-field-error", has_text="must be below 100%")
    expect(error).to_be_visible(timeout=TIMEOUT)
    expect(status).to_contain_text("Largest share of one supplier: must be below 100%")
    set_input(page, ".tp-cap-max_share", "60")
    expect(status).to_be_hidden(timeout=TIMEOUT)
    expect(error).to_have_count(0)


def test_uncertainty_ranges(page: Page, app_url: str, artifacts: Path):
    from tradepolicy.dashboard.store import draws_supported

    if not draws_supported():
        pytest.skip("tp.solve has no Monte Carlo draws in this version")
    open_app(page, app_url)
    add_measure(page, "Club price floor")
    expect(kpi(page, "club_price")).not_to_have_text("55.0", timeout=TIMEOUT)
    page.locator(".tp-uncertainty input").click()
    expect(page.locator('[data-kpi="dependence"]')).to_contain_text("90% range", timeout=30_000)
    expect(page.locator('[data-kpi="world_welfare"]')).to_contain_text("90% range")
    page.get_by_text("Policy results", exact=True).click()
    page.wait_for_timeout(1000)
    shot(page, artifacts, "08_uncertainty")


# -- offline: every request goes to the dashboard's own server --------------------------------
def _local(url: str, app_url: str) -> bool:
    origin = app_url.rstrip("/")
    return url.startswith(origin) or url.startswith(f"blob:{origin}") or url.startswith("data:")


def switch_market(page: Page, market: str) -> None:
    from tradepolicy.dashboard import market_info

    info = market_info(market)
    page.locator(".tp-market select").select_option(label=info.title)
    note = f"Base price {info.base_price_display:,.2f} {info.price_label}"  # under the market
    expect(page.get_by_text(note)).to_be_visible(timeout=30_000)


def test_no_request_leaves_the_machine(browser: Browser, app_url: str, artifacts: Path):
    # the dashboard fetched Panel's loading.css from cdn.holoviz.org after a market switch
    context = browser.new_context(viewport={"width": 1500, "height": 1400}, offline=False)
    requests: list[str] = []
    try:
        page = context.new_page()
        page.on("request", lambda r: requests.append(r.url))
        open_app(page, app_url)
        for measure in ("Club price floor", "Price-gap subsidy", "Offtake", "Diversification cap"):
            add_measure(page, measure)
        page.get_by_text("Policy results", exact=True).click()
        expect(page.locator(".tp-region-table")).to_contain_text("Japan", timeout=TIMEOUT)
        for market in ("refined_cobalt", "gallium"):
            switch_market(page, market)
            add_measure(page, "Club price floor")
            expect(kpi(page, "club_price")).not_to_have_text("—", timeout=TIMEOUT)
        page.get_by_text("Compare scenarios", exact=True).click()
        page.locator(".bk-tab", has_text="Baseline").click()
        page.wait_for_timeout(1500)  # late stylesheet fetches
        shot(page, artifacts, "11_offline_after_switches")
    finally:
        context.close()
    assert len(requests) > 10
    outside = sorted({u for u in requests if not _local(u, app_url)})
    assert outside == [], f"requests that leave the machine: {outside}"


# -- after a market switch the widgets show what is solved ------------------------------------
def shown_regions(page: Page, name: str) -> list[str]:
    items = page.locator(f".tp-{name} .choices__list--multiple .choices__item[data-value]")
    values = [str(items.nth(i).get_attribute("data-value")) for i in range(items.count())]
    # the editor shows "Japan (JPN)", the club list the code
    return [v[v.rindex("(") + 1 : -1] if v.endswith(")") else v for v in values]


def shown_number(page: Page, name: str) -> float:
    return float(page.locator(f".tp-{name} input").first.input_value().replace(",", ""))


def expect_kpis(page: Page, market: str, members: list[str], measures: list) -> None:
    """The KPI cards equal a direct ``tp.solve`` of ``measures`` (as the test reads the
    widgets), to the digits shown."""
    from tradepolicy.dashboard import market_info
    from tradepolicy.dashboard.views import _num, _price_digits

    info = market_info(market)
    sc = tp.Scenario(name="direct", measures=measures)
    ds = tp.solve([sc], info.market).isel(commodity=0).sel(scenario="direct")
    use = pd.Series(info.market.flows.sum(axis=0), index=info.regions)
    buyers = [r for r in members if use[r] > 0]
    price = ds["consumer_price"].to_series()[buyers]
    club = float((price * use[buyers]).sum() / use[buyers].sum()) / info.price_factor
    world = float(ds["welfare_change"].sum()) / 1e6
    fiscal = float(ds.tp.budget_cost().sum()) / 1e6
    expect(kpi(page, "club_price")).to_have_text(_num(club, _price_digits(club)), timeout=TIMEOUT)
    expect(kpi(page, "world_welfare")).to_have_text(_num(world, 1, sign=True))
    expect(kpi(page, "budget_cost")).to_have_text(_num(fiscal, 1))


def test_market_switches_keep_widgets_and_results_equal(page: Page, app_url: str, artifacts):
    # NdPr -> cobalt -> gallium dropped KOR from the club; NdPr -> cobalt with a subsidy
    # reported "USA produces nothing" while no widget showed USA
    from tradepolicy.dashboard import market_info
    from tradepolicy.measures import PriceFloor, PriceGapSubsidy, Tariff

    open_app(page, app_url)
    add_measure(page, "Price-gap subsidy")
    expect(kpi(page, "budget_cost")).not_to_have_text("0.0", timeout=TIMEOUT)

    switch_market(page, "refined_cobalt")
    info = market_info("refined_cobalt")
    members = shown_regions(page, "members")
    assert sorted(members) == sorted(info.default_club)  # shown in the market's region order
    expect(page.locator(".tp-card-subsidy")).to_have_count(0)  # no measure on a new market
    add_measure(page, "Price-gap subsidy")
    producers = shown_regions(page, "subsidy-producers")
    assert producers and "USA" not in producers
    strike = info.to_market_price(shown_number(page, "subsidy-strike"))
    free_trade = Tariff(
        importers=[r for r in members if r in info.importers], exporters=members, rate=0.0
    )
    subsidy = PriceGapSubsidy(producers=producers, strike=strike, kind="one_sided")
    expect_kpis(page, "refined_cobalt", members, [free_trade, subsidy])
    expect(page.locator(".tp-status")).to_be_hidden()
    shot(page, artifacts, "12_cobalt_subsidy")

    switch_market(page, "gallium")
    info = market_info("gallium")
    members = shown_regions(page, "members")
    assert sorted(members) == sorted(info.default_club) and "KOR" in members
    add_measure(page, "Club price floor")
    floor = info.to_market_price(shown_number(page, "floor-floor"))
    importers = [r for r in members if r in info.importers]
    measures = [
        Tariff(importers=importers, exporters=members, rate=0.0),
        PriceFloor(importers=importers, exempt=members, floor=floor),
    ]
    expect_kpis(page, "gallium", members, measures)
    page.get_by_text("Policy results", exact=True).click()
    expect(page.locator(".tp-region-table")).to_contain_text("Korea", timeout=TIMEOUT)
    shot(page, artifacts, "13_gallium_floor")
    assert "Traceback" not in page.content()


def test_flagged_gallium_ban_carries_warnings(page: Page, app_url: str, artifacts: Path):
    page.goto(app_url + "?market=gallium")
    dep = kpi(page, "dependence")
    expect(dep).not_to_have_text("—", timeout=60_000)
    expect(page.locator("[data-kpi-warning]")).to_have_count(0)  # the baseline: no flag
    add_measure(page, "Export ban or quota")  # the default export ban
    expect(page.locator("[data-kpi-warning]")).to_have_count(5, timeout=TIMEOUT)
    expect(page.locator(".tp-kpi-warnings")).to_contain_text("outside what the model can")
    shot(page, artifacts, "09_gallium_ban")
    page.get_by_text("Compare scenarios", exact=True).click()
    page.locator(".tp-load-set button").click()
    table = page.locator(".tp-compare-table")
    expect(table).to_contain_text("⚠ below", timeout=60_000)
    expect(page.locator(".tp-compare-warnings")).to_contain_text("prices beyond")
    expect(page.locator(".tp-who-head .tp-warning").first).to_be_visible()
    page.wait_for_timeout(500)
    shot(page, artifacts, "10_gallium_compare")


def test_editor_at_laptop_size(browser: Browser, app_url: str, artifacts: Path):
    """The generated editor at 1280×800: a club preset and any registered type, each control
    with its unit and help; a measure removed is gone from the KPIs."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = context.new_page()
        open_app(page, app_url)
        add_measure(page, "Club price floor")
        club = kpi(page, "club_price")
        expect(club).not_to_have_text("55.0", timeout=TIMEOUT)
        add_measure(page, "Export tax (export_tax)")
        card = page.locator(".tp-card-export_tax")
        expect(card.locator(".tp-export_tax-rate")).to_contain_text("Tax rate (%)")
        expect(page.locator(".tp-card-floor .tp-floor-floor")).to_contain_text(
            "Floor level (USD/kg)"
        )
        assert page.locator(".tp-card-floor .bk-description").count() >= 5  # help on each
        page.locator(".tp-floor-floor .bk-description").first.hover()
        expect(page.get_by_text("lifts their landed price").first).to_be_visible()
        page.screenshot(path=str(artifacts / "editor_1280x800.png"))
        page.locator(".tp-floor-remove button").click()
        expect(page.locator(".tp-card-floor")).to_have_count(0, timeout=TIMEOUT)
        page.locator(".tp-export_tax-remove button").click()
        expect(club).to_have_text("55.0", timeout=TIMEOUT)
    finally:
        context.close()


# -- numbers being replaced are marked ---------------------------------------------------------
#: records each state of the one-year KPI cards from now on: (marked as updating, club price)
WATCH_MARK = """
() => {
  const find = (root) => {
    if (root.querySelector('[data-kpi="club_price"]')) return root;
    for (const n of root.querySelectorAll('*')) {
      if (n.shadowRoot) { const r = find(n.shadowRoot); if (r) return r; }
    }
    return null;
  };
  const root = find(document);
  const seen = [];
  const note = () => {
    const v = root.querySelector('[data-kpi="club_price"] [data-kpi-value]');
    const state = [root.querySelector('[data-kpi-updating]') !== null, v ? v.textContent : null];
    const last = seen[seen.length - 1];
    if (!last || last[0] !== state[0] || last[1] !== state[1]) seen.push(state);
  };
  note();
  new MutationObserver(note).observe(root, {subtree: true, childList: true, characterData: true});
  window.__tp_marks = seen;
}
"""


def test_kpis_being_solved_are_marked_until_the_new_numbers_come(
    page: Page, app_url: str, artifacts: Path
):
    """A slow one-year solve (ranges over Monte Carlo draws): from the change until its
    numbers come, the cards show the previous numbers marked "updating…", and the mark goes
    with the redraw that shows the new numbers (never the old numbers unmarked)."""
    from tradepolicy.dashboard.store import draws_supported

    if not draws_supported():
        pytest.skip("tp.solve has no Monte Carlo draws in this version")
    open_app(page, app_url)
    page.get_by_text("Baseline", exact=True).click()  # the one-year strip on screen
    club = kpi(page, "club_price")
    add_measure(page, "Club price floor")
    expect(club).not_to_have_text("55.0", timeout=TIMEOUT)
    page.locator(".tp-uncertainty input").click()  # every change solved once per draw
    expect(page.locator('[data-kpi="dependence"]')).to_contain_text("90% range", timeout=30_000)
    marked = page.locator("[data-kpi-updating]").filter(has=page.locator('[data-kpi="club_price"]'))
    expect(marked).to_have_count(0)
    old = club.inner_text()
    page.evaluate(WATCH_MARK)
    set_input(page, ".tp-floor-floor", "150")
    expect(club).not_to_have_text(old, timeout=30_000)
    expect(marked).to_have_count(0)
    new = club.inner_text()
    seen = [tuple(s) for s in page.evaluate("window.__tp_marks")]
    assert seen[0] == (False, old)
    assert (True, old) in seen  # marked while the old number was on screen
    after = seen[seen.index((True, old)) :]
    assert (False, old) not in after  # never the old number unmarked once changed
    assert seen[-1] == (False, new)
    shot(page, artifacts, "14_marked_then_updated")
