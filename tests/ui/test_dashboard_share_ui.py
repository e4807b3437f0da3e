"""Shareable and durable scenarios in a real browser: the address follows an edit and opens the
same scenario in a new browser; a saved scenario survives a reload; the saved scenarios are
downloaded as TOML and uploaded into another browser; a damaged link gives the defaults."""

from __future__ import annotations

import warnings
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from playwright.sync_api import Browser, Page, expect

import tradepolicy as tp
from ui.actions import add_measure, kpi, set_input

TIMEOUT = 15_000  # ms
BASE = "55.0"  # NdPr oxide's club price at base, USD/kg


def _errors(page: Page) -> list[str]:
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return errors


def _context(browser: Browser):
    return browser.new_context(viewport={"width": 1500, "height": 1600}, accept_downloads=True)


def test_link_reload_and_toml_round_trip(browser: Browser, app_url: str, artifacts: Path):
    first, second = _context(browser), _context(browser)  # two browsers: nothing shared
    try:
        a = first.new_page()
        errors = _errors(a)
        a.goto(app_url + "?market=ndpr_oxide")
        club = kpi(a, "club_price")
        expect(club).to_have_text(BASE, timeout=60_000)
        opened = a.url
        add_measure(a, "Club price floor")
        expect(club).not_to_have_text(BASE, timeout=TIMEOUT)
        a.wait_for_function(
            "() => new URLSearchParams(location.search).get('s') !== null", timeout=TIMEOUT
        )
        at_default = club.inner_text()  # the floor at its default level
        a.wait_for_timeout(500)  # the address follows the floor added
        with_default = a.url
        set_input(a, ".tp-floor-floor", "150")
        expect(club).not_to_have_text(at_default, timeout=TIMEOUT)
        # the address follows the last change (replaced once the edit is solved)
        a.wait_for_function("u => location.href !== u", arg=with_default, timeout=TIMEOUT)
        a.wait_for_timeout(500)
        at150 = club.inner_text()
        link = a.url
        assert link != opened and parse_qs(urlparse(link).query)["market"] == ["ndpr_oxide"]
        assert a.evaluate("history.length") <= 2  # replaced, never pushed: one entry per load

        # saved, then the page reloaded: the edited scenario and the saved one are back
        set_input(a, ".tp-save-name", "floor_150")
        set_input(a, ".tp-save-title", "Floor at 150")
        a.locator(".tp-save button").click()
        expect(a.locator(".tp-notice")).to_contain_text("Saved 'floor_150'", timeout=TIMEOUT)
        a.reload()
        expect(kpi(a, "club_price")).to_have_text(at150, timeout=60_000)
        assert a.locator(".tp-floor-on").get_attribute("aria-checked") == "true"
        expect(a.locator(".tp-notice")).to_contain_text("Restored 1 saved", timeout=TIMEOUT)
        a.get_by_text("Compare scenarios", exact=True).click()
        expect(a.locator(".tp-compare-table")).to_contain_text("floor_150", timeout=TIMEOUT)
        expect(a.get_by_text("Floor at 150").first).to_be_visible()
        a.screenshot(path=str(artifacts / "share_01_reloaded.png"), full_page=True)

        with a.expect_download(timeout=TIMEOUT) as dl:
            a.locator(".tp-toml button").click()
        path = artifacts / "share_saved.toml"
        dl.value.save_as(path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", tp.errors.InputWarning)
            sset = tp.load_scenarios(path)
        assert sset.names == ["floor_150"]
        floors = [m for m in sset.scenarios[0].measures if m.type == "price_floor"]
        assert [f.floor for f in floors] == [150_000.0]

        # the link in another browser: the same scenario, no saved scenario; then the upload
        b = second.new_page()
        errors += _errors(b)
        b.goto(link)
        expect(kpi(b, "club_price")).to_have_text(at150, timeout=60_000)
        assert b.locator(".tp-floor-on").get_attribute("aria-checked") == "true"
        b.get_by_text("Compare scenarios", exact=True).click()
        expect(b.get_by_text("No saved scenario yet")).to_be_visible(timeout=TIMEOUT)
        b.locator(".tp-upload input[type=file]").set_input_files(str(path))
        expect(b.locator(".tp-file-notice")).to_contain_text(
            "Loaded 1 scenario from", timeout=TIMEOUT
        )
        expect(b.locator(".tp-compare-table")).to_contain_text("floor_150", timeout=TIMEOUT)
        expect(b.get_by_text("share_saved.toml (uploaded)")).to_be_visible()
        expect(b.get_by_text("Floor at 150").first).to_be_visible()
        b.screenshot(path=str(artifacts / "share_02_uploaded.png"), full_page=True)

        # a file with a mistake: the file and the field named, nothing changed
        bad = artifacts / "share_bad.toml"
        bad.write_text(path.read_text().replace("150000.0", "-1.0"))
        b.locator(".tp-upload input[type=file]").set_input_files(str(bad))
        notice = b.locator(".tp-file-notice")
        expect(notice).to_contain_text("Not loaded: share_bad.toml", timeout=TIMEOUT)
        expect(notice).to_contain_text("scenario[0].measure[1].floor")
        expect(b.locator(".tp-upload input[type=file]")).to_have_value("")  # ready for another

        # a damaged link: a plain notice and the defaults
        c = second.new_page()
        errors += _errors(c)
        c.goto(link[:-12])
        expect(kpi(c, "club_price")).to_have_text(BASE, timeout=60_000)
        expect(c.locator(".tp-notice")).to_contain_text("was not opened", timeout=TIMEOUT)
        c.screenshot(path=str(artifacts / "share_03_bad_link.png"), full_page=True)
        assert errors == []
    finally:
        first.close()
        second.close()
