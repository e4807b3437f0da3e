"""The dashboard on a value chain in a real browser: choose ree_magnets, switch the stage shown,
put a floor on the magnet stage and see the magnet-stage dependence KPI change; no console
error; screenshots at laptop sizes."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Browser, Page, expect

from tradepolicy.dashboard import market_info
from ui.actions import set_input

TIMEOUT = 15_000  # ms
CHAIN = "ree_magnets"


def kpi(page: Page, key: str):
    return page.locator(f'[data-kpi="{key}"]')


def value(page: Page, key: str):
    return kpi(page, key).locator("[data-kpi-value]")


def _errors(page: Page) -> list[str]:
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return errors


def test_chain_stages_and_a_magnet_floor(page: Page, app_url: str, artifacts: Path):
    errors = _errors(page)
    info = market_info(CHAIN)
    page.goto(app_url + "?market=ndpr_oxide")
    expect(value(page, "club_price")).to_have_text("55.0", timeout=60_000)
    page.locator(".tp-market select").select_option(label=info.title)  # chosen in the list
    target = kpi(page, "target_dependence")
    expect(target).to_contain_text("Sintered NdFeB magnets (target stage)", timeout=TIMEOUT)
    expect(kpi(page, "dependence")).to_have_count(0)  # the target stage is shown: one card
    base = value(page, "target_dependence").inner_text()
    stage = page.locator(".tp-stage select")
    expect(stage).to_be_visible()

    # every view follows the stage shown; the magnet-stage card stays
    page.locator(".bk-tab", has_text="Baseline").first.click()  # (the 2030 question is first)
    for name in ("NdPr oxide", "NdPr metal", "Dy/Tb oxide"):
        stage.select_option(label=name)
        expect(kpi(page, "dependence")).to_contain_text(name, timeout=TIMEOUT)
        expect(page.locator(".tp-bloc-base")).to_be_visible()
        expect(page.get_by_text(f"{name}: stage", exact=False).first).to_be_visible()
        expect(value(page, "target_dependence")).to_have_text(base)
        expect(kpi(page, "club_price")).to_contain_text(name)
    stage.select_option(label="NdPr oxide")
    expect(kpi(page, "dependence")).to_contain_text("NdPr oxide", timeout=TIMEOUT)

    # a floor on magnets from outside the club (chosen in the card): magnet dependence falls
    page.locator(".tp-add-type select").select_option(label="Club price floor")
    card = page.locator(".tp-card-floor")
    card.locator(".tp-floor-stage select").select_option(label="Sintered NdFeB magnets")
    set_input(page, ".tp-floor-floor", "90")
    expect(value(page, "target_dependence")).not_to_have_text(base, timeout=TIMEOUT)
    assert float(value(page, "target_dependence").inner_text()) < float(base)
    expect(kpi(page, "dependence")).to_contain_text("NdPr oxide")  # still the stage shown
    page.get_by_text("Policy results", exact=True).click()
    expect(page.locator(".tp-region-table")).to_contain_text("Japan", timeout=TIMEOUT)
    page.locator(".bk-tab", has_text="Baseline").first.click()
    expect(page.locator(".tp-bloc-base")).to_contain_text("China", timeout=TIMEOUT)
    page.screenshot(path=str(artifacts / "chain_magnet_floor.png"), full_page=True)
    assert not errors, errors


def test_chain_screenshots_at_laptop_sizes(browser: Browser, app_url: str, artifacts: Path):
    """The chain view at 1280×800 and 1600×1000: the magnet-stage KPI above the fold."""
    for width, height in ((1280, 800), (1600, 1000)):
        context = browser.new_context(viewport={"width": width, "height": height})
        page = context.new_page()
        errors = _errors(page)
        page.goto(app_url + f"?market={CHAIN}")
        target = kpi(page, "target_dependence")
        expect(target).to_contain_text("target stage", timeout=60_000)
        # the one-year KPI strip is on the one-year tabs (the 2030 question opens first)
        page.locator(".bk-tab", has_text="Baseline").first.click()
        page.locator(".tp-stage select").select_option(label="NdPr oxide")
        expect(kpi(page, "dependence")).to_contain_text("NdPr oxide", timeout=TIMEOUT)
        expect(page.locator(".tp-units")).to_contain_text("NdPr oxide: stage 1 of 4")
        expect(target).to_be_visible(timeout=TIMEOUT)
        box = target.bounding_box()
        assert box is not None and box["y"] + box["height"] <= height  # above the fold
        page.screenshot(path=str(artifacts / f"chain_{width}x{height}.png"))
        assert not errors, errors
        context.close()
