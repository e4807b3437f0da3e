"""The dashboard on a laptop, in a real browser at 1280×800 and 1600×1000: the dependence KPI
and the first chart inside the viewport without scrolling, nothing clipped, charts side by side
only where they fit; regions named in full with the code on hover; a legend on every colour
scale. One page per size: a single market (ndpr_oxide), then a chain (ree_magnets)."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tradepolicy import regions
from tradepolicy.dashboard import market_info
from tradepolicy.dashboard.views import CHART_MIN, HELP
from ui.actions import inside

TIMEOUT = 15_000  # ms

# every Bokeh figure on the page: its title, whether its legend shows items, its colour bars,
# the colours its bars use, and (name, code) pairs of the regions it shows
FIGURES_JS = """() => {
  const doc = Bokeh.documents[Bokeh.documents.length - 1];
  const out = [];
  for (const m of doc.all_models) {
    if (m.constructor.__name__ !== "Figure") continue;
    const annotations = [...m.center, ...m.right, ...m.above, ...m.below, ...m.left];
    const legends = annotations.filter(x => x.constructor.__name__ === "Legend");
    const bars = annotations.filter(x => x.constructor.__name__ === "ColorBar");
    const colours = new Set();
    const names = [];
    for (const r of m.renderers) {
      const data = r.data_source ? r.data_source.data : null;
      if (!data) continue;
      for (const c of (data.color || [])) colours.add(c);
      for (const [n, c] of [["category", "code"], ["name", "code"],
                            ["exporter", "exporter_code"], ["importer_name", "importer_code"]]) {
        if (data[n] && data[c]) data[n].forEach((v, i) => names.push([v, data[c][i]]));
      }
    }
    out.push({
      title: m.title ? m.title.text : "",
      legend: legends.some(l => l.visible && l.items.length > 0),
      colorbars: bars.map(b => b.title),
      colours: colours.size,
      names: names,
    });
  }
  return out;
}"""


def check_fold(page: Page, key: str, width: int, height: int, artifacts: Path, name: str):
    """The dependence KPI ``key`` (first, wide) and the first chart of the tab shown inside
    the viewport; no KPI card clipped; charts side by side only at CHART_MIN px or more."""
    page.wait_for_timeout(800)  # charts laid out
    page.screenshot(path=str(artifacts / f"layout_{name}_{width}x{height}.png"))
    cards = page.locator(".tp-kpi")
    assert cards.first.get_attribute("data-kpi") == key  # dependence first
    dep = page.locator(f'[data-kpi="{key}"]')
    expect(dep).to_be_visible(timeout=TIMEOUT)  # the one-year tabs show the KPI strip
    assert inside(dep.bounding_box(), width, height), (name, dep.bounding_box())
    clipped = cards.evaluate_all(
        "els => els.filter(e => e.scrollWidth > e.clientWidth + 1"
        " || e.scrollHeight > e.clientHeight + 1).map(e => e.dataset.kpi)"
    )
    assert clipped == [], clipped
    for i in range(cards.count()):
        assert inside(cards.nth(i).bounding_box(), width, height), (name, i)
    figures = page.locator(".tp-charts .bk-Figure")
    expect(figures.first).to_be_visible(timeout=TIMEOUT)
    first = figures.first.bounding_box()
    assert inside(first, width, height), (name, first)
    boxes = [figures.nth(i).bounding_box() for i in range(figures.count())]
    boxes = [b for b in boxes if b is not None]
    assert all(b["width"] >= CHART_MIN - 1 for b in boxes), [b["width"] for b in boxes]
    for i, a in enumerate(boxes):  # no two charts overlap
        for b in boxes[i + 1 :]:
            apart = (
                a["x"] + a["width"] <= b["x"] + 1
                or b["x"] + b["width"] <= a["x"] + 1
                or a["y"] + a["height"] <= b["y"] + 1
                or b["y"] + b["height"] <= a["y"] + 1
            )
            assert apart, (name, a, b)
    return boxes


def check_names_and_legends(page: Page, name: str) -> None:
    """Every region a chart shows is the regions table's full name of its code (the code is
    in the hover); every figure with more than one bar colour shows a legend; the heat map
    has a colour bar in its unit."""
    figures = page.evaluate(FIGURES_JS)
    assert figures, name
    pairs = {(n, c) for f in figures for n, c in f["names"] if c}
    assert pairs, name
    wrong = {(n, c) for n, c in pairs if n != regions.name(c)}
    assert not wrong, wrong
    for f in figures:
        if f["colours"] > 1:
            assert f["legend"] or f["colorbars"], (name, f["title"])
    heat = [f for f in figures if f["title"].startswith("Who supplies whom")]
    for f in heat:
        assert any("log scale" in t for t in f["colorbars"]), f


def show_help(page: Page, control: str, key: str) -> None:
    """Hovering the ⓘ beside ``control``'s label shows its plain help (``views.HELP``)."""
    page.locator(f"{control} .bk-description").first.hover()
    expect(page.get_by_text(HELP[key][:50]).first).to_be_visible(timeout=TIMEOUT)
    page.mouse.move(0, 0)


@pytest.mark.parametrize("size", [(1280, 800), (1600, 1000)], ids=["1280x800", "1600x1000"])
def test_layout_at_laptop_sizes(browser: Browser, app_url: str, artifacts: Path, size):
    width, height = size
    context = browser.new_context(viewport={"width": width, "height": height})
    try:
        page = context.new_page()
        page.goto(app_url + "?market=ndpr_oxide")
        dep = page.locator('[data-kpi="dependence"]')
        expect(dep.locator("[data-kpi-value]")).not_to_have_text("—", timeout=60_000)
        # the page opens on the 2030 question (tests/ui/test_dashboard_answer_ui.py): the
        # baseline tab's fold is checked here
        page.locator(".bk-tab", has_text="Baseline").first.click()
        # the largest outside supplier and the bloc in full, each code on hover
        expect(dep.locator('.tp-region[title="MYS"]')).to_have_text("Malaysia")
        expect(dep.locator('.tp-region[title="KOR"]')).to_have_text("Republic of Korea")
        boxes = check_fold(page, "dependence", width, height, artifacts, "ndpr_oxide")
        side_by_side = boxes[0]["y"] == boxes[1]["y"]
        assert side_by_side == (width >= 1600), boxes[:2]  # 1280: one chart a row
        check_names_and_legends(page, "ndpr_oxide baseline")
        bloc = page.locator(".tp-bloc-base")
        expect(bloc.locator('.tp-region[title="AUS"]')).to_have_text("Australia")
        show_help(page, ".tp-market", "market")  # the ⓘ beside a control's label
        if width < 1600:  # the ☰ button hides the controls: the charts take the room
            chart = page.locator(".tp-charts .bk-Figure").first
            before = chart.bounding_box()
            page.locator("#sidebar-toggle").click()
            expect(page.locator("#sidebar")).to_be_hidden(timeout=TIMEOUT)
            page.wait_for_timeout(800)
            after = chart.bounding_box()
            # the main column starts at the left edge and now holds two charts a row
            assert before and after and after["x"] < before["x"] - 200, (before, after)
            second = page.locator(".tp-charts .bk-Figure").nth(1).bounding_box()
            assert second and second["y"] == after["y"] and after["width"] >= CHART_MIN - 1
            page.screenshot(path=str(artifacts / f"layout_no_sidebar_{width}x{height}.png"))
            page.locator("#sidebar-toggle").click()
            expect(page.locator("#sidebar")).to_be_visible(timeout=TIMEOUT)
        page.get_by_text("Policy results", exact=True).click()
        table = page.locator(".tp-region-table")
        expect(table.locator('.tp-region[title="USA"]').first).to_have_text(
            "United States", timeout=TIMEOUT
        )
        expect(table.locator('.tp-region[title="ROW"]').first).to_have_text("Rest of the world")
        check_fold(page, "dependence", width, height, artifacts, "ndpr_oxide_results")
        check_names_and_legends(page, "ndpr_oxide results")

        # a chain: the target stage's dependence first, the first chart still above the fold
        info = market_info("ree_magnets")
        page.locator(".bk-tab", has_text="Baseline").first.click()
        page.locator(".tp-market select").select_option(label=info.title)
        target = page.locator('[data-kpi="target_dependence"]')
        expect(target).to_contain_text("target stage", timeout=60_000)
        expect(target.locator('.tp-region[title="CHN"]').first).to_have_text("China")
        check_fold(page, "target_dependence", width, height, artifacts, "ree_magnets")
        check_names_and_legends(page, "ree_magnets baseline")
        page.locator(".tp-stage select").select_option(label="NdPr oxide")
        expect(page.locator('[data-kpi="dependence"]')).to_contain_text(
            "NdPr oxide", timeout=TIMEOUT
        )
        check_fold(page, "target_dependence", width, height, artifacts, "ree_magnets_oxide")
        show_help(page, ".tp-stage", "stage")
        page.get_by_text("Compare scenarios", exact=True).click()
        # every download button inside the window (five did not fit one row at 1280 px)
        for css in (".tp-csv", ".tp-nc", ".tp-pdf", ".tp-docx", ".tp-pptx"):
            button = page.locator(f"{css} button").first
            expect(button).to_be_visible(timeout=TIMEOUT)
            box = button.bounding_box()
            assert box and box["x"] + box["width"] <= width, (css, width, box)
        show_help(page, ".tp-compare", "compare")
        page.screenshot(path=str(artifacts / f"layout_compare_help_{width}x{height}.png"))
    finally:
        context.close()
