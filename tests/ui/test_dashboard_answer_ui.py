"""The 2030 question in a real browser (one page for every check): on ree_magnets the first tab
shows the shipped pathway options ranked as ``ds.tp.pathway_options()`` ranks them, a measure
change updates the edited scenario's 2030 KPI, and at 1280×800 and 1600×1000 the answer and
the top of the ranked table (its header and first three rows) are on screen without scrolling
(the one-year KPI strip is left to the one-year tabs); with the draws, each dependence cell and
its 5–95% range stay on one line."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

import tradepolicy as tp
from tradepolicy.dashboard import answer as ans
from tradepolicy.dashboard import views
from ui.actions import add_measure, inside, set_input

TIMEOUT = 20_000  # ms
SET = "ree_magnets_2030"
ERRORS: list[str] = []


@pytest.fixture(scope="module")
def expected_order() -> list[str]:
    """The option labels in the order the view must rank them (central run)."""
    ds = ans.solve_central(tp.load_scenarios(SET))
    table = ds.tp.pathway_options()
    labels = ans.labels_for(ds)
    return [labels[n] for n in ans.ranked(table, 2030)]


@pytest.fixture(scope="module")
def page(browser: Browser, app_url: str) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    pg = context.new_page()
    pg.on("pageerror", lambda e: ERRORS.append(str(e)))
    pg.goto(app_url + "?market=ree_magnets")
    yield pg
    context.close()


def live_value(page: Page):
    return page.locator('[data-kpi="answer_dependence"] [data-kpi-value]')


def check_answer_fold(page: Page, width: int, height: int) -> None:
    """The answer sentence, the ranked table's header and its first three rows inside the
    viewport; the one-year KPI strip hidden on this tab."""
    expect(page.locator(".tp-kpi").first).to_be_hidden()
    sentence = page.locator(".tp-answer-answer").first
    assert inside(sentence.bounding_box(), width, height), sentence.bounding_box()
    table = page.locator("table.tp-answer-table").first
    head = table.locator("thead tr").first.bounding_box()
    assert inside(head, width, height), (width, height, head)
    rows = table.locator(f"tbody tr:not(.{views.ROW_NOTE_CLASS})")  # (the options' rows)
    for i in range(3):
        box = rows.nth(i).bounding_box()
        assert inside(box, width, height), (width, height, i, box)


#: the height of a cell's text (the box of its line boxes, not the row's) in font sizes: about
#: 1.2 for one line, 2.3 for two
TEXT_HEIGHT_JS = """(td) => { const r = document.createRange(); r.selectNodeContents(td);
  return r.getBoundingClientRect().height / parseFloat(getComputedStyle(td).fontSize); }"""


def check_numbers_one_line(page: Page, width: int) -> None:
    """Every dependence cell with its 5–95% range (``54.2% China (50.4–58.9%)``) on one line,
    and the table no wider than its pane (no number pushed off the side)."""
    table = page.locator("table.tp-answer-table").first
    heads = [h.strip() for h in table.locator("thead th").all_inner_texts()]
    col = next(i for i, h in enumerate(heads) if h.startswith("Dependence 2030"))
    cells = table.locator(f"tbody tr td:nth-child({col + 1})")
    assert cells.count() >= 3
    for i in range(cells.count()):
        cell = cells.nth(i)
        lines = cell.evaluate(TEXT_HEIGHT_JS)
        assert lines < 1.6, (width, cell.inner_text(), lines, cell.bounding_box())
    wide = table.evaluate("(t) => [t.scrollWidth, t.parentElement.clientWidth]")
    assert wide[0] <= wide[1] + 1, (width, wide)


def test_answer_first_table_live_kpi_and_laptop_sizes(
    page: Page, expected_order: list[str], artifacts: Path
):
    # the first tab, selected by default, holds the shipped options ranked
    expect(page.locator(".bk-tab.bk-active").first).to_have_text("2030 question", timeout=60_000)
    rows = page.locator("table.tp-answer-table").first.locator(
        f"tbody tr:not(.{views.ROW_NOTE_CLASS})"
    )
    expect(rows.first).to_be_visible(timeout=60_000)
    labels = [t.strip() for t in rows.locator("td:first-child").all_inner_texts()]
    assert labels[:-1] == expected_order  # the edited scenario's row comes last (no measure)
    assert labels[-1] == ans.LIVE_LABEL
    expect(page.locator(".tp-answer-answer")).to_contain_text("under 60%")
    expect(page.locator(".tp-answer-set select")).to_have_value(SET)
    page.screenshot(path=str(artifacts / "answer_1280x800.png"))
    check_answer_fold(page, 1280, 800)
    # the one-year tabs keep their KPI strip
    page.locator(".bk-tab", has_text="Baseline").first.click()
    expect(page.locator(".tp-kpi").first).to_be_visible(timeout=TIMEOUT)
    page.locator(".bk-tab", has_text="2030 question").first.click()
    expect(page.locator(".tp-kpi").first).to_be_hidden(timeout=TIMEOUT)

    # a measure change updates the 2030 KPI of the edited scenario (read once the tab shows
    # it again: a hidden element's text reads empty)
    expect(live_value(page)).to_be_visible(timeout=TIMEOUT)
    before = live_value(page).inner_text()
    add_measure(page, "Club price floor", timeout=TIMEOUT)
    expect(live_value(page)).not_to_have_text(before, timeout=TIMEOUT)
    after = live_value(page).inner_text()
    assert float(after.split("%")[0]) != float(before.split("%")[0])
    box = page.locator(".tp-floor-floor input").first
    box.fill("150")
    box.press("Enter")
    expect(live_value(page)).not_to_have_text(after, timeout=TIMEOUT)

    page.set_viewport_size({"width": 1600, "height": 1000})
    page.wait_for_timeout(500)
    page.screenshot(path=str(artifacts / "answer_1600x1000.png"))
    check_answer_fold(page, 1600, 1000)
    page.screenshot(path=str(artifacts / "answer_full.png"), full_page=True)

    # with the draws, each dependence cell carries its 5–95% range: still one line, at both
    # laptop sizes
    header = page.locator("table.tp-answer-table thead").first
    expect(header).to_contain_text("(5–", timeout=300_000)
    check_numbers_one_line(page, 1600)
    page.set_viewport_size({"width": 1280, "height": 800})
    page.wait_for_timeout(500)
    page.screenshot(path=str(artifacts / "answer_ranges_1280x800.png"))
    check_numbers_one_line(page, 1280)
    # the edited scenario's validity warning (a floor of 150: its buyers' price out of the
    # model's range) is a line under its row, across the numbers: a few lines at 1280 px
    note = page.locator("table.tp-answer-table tr.live-note td").first
    expect(note).to_contain_text("outside what the model can represent")
    note.evaluate("(td) => td.scrollIntoView({block: 'center'})")
    page.screenshot(path=str(artifacts / "answer_warning_1280x800.png"))
    lines = note.evaluate(TEXT_HEIGHT_JS)
    assert lines < 5.0, (lines, note.inner_text())  # at most four lines
    assert not ERRORS, ERRORS


def test_unchanged_stylesheets_are_not_rewritten(page: Page):
    """The page leaves a Bokeh stylesheet alone when it is given the CSS it holds (each
    rewrite made the browser recompute the page's styles at every chart repaint); new CSS is
    still applied."""
    expect(live_value(page)).to_be_visible(timeout=60_000)
    same, applied = page.evaluate(
        """() => {
          const sheet = new (Bokeh.require("core/dom").InlineStyleSheet)(":host { color: red; }");
          const text = sheet.el.firstChild;
          sheet.replace(":host { color: red; }");
          const same = sheet.el.firstChild === text;
          sheet.replace(":host { color: blue; }");
          return [same, sheet.el.textContent === ":host { color: blue; }"];
        }"""
    )
    assert same and applied
    assert not ERRORS, ERRORS


# -- the edited scenario's numbers being replaced are marked ------------------------------------
#: a dashboard whose 2030 solve of the edited scenario takes ``delay`` seconds more (as on a
#: cold compile cache or a busy server): long enough to see and photograph the mark
SLOW_SERVER = """
import time
from tradepolicy.dashboard import answer, serve
live_job = answer.live_job
def slow(*args, **kwargs):
    time.sleep({delay})
    return live_job(*args, **kwargs)
answer.live_job = slow
serve(port={port}, show=False, market="ree_magnets")
"""
DELAY_S = 4.0

#: records each state of the options table from now on: (marked as updating, the edited
#: scenario's row), and finds the panes and charts marked
WATCH_ROW = """
() => {
  const find = (root, css) => {
    const hit = root.querySelector(css);
    if (hit) return hit;
    for (const n of root.querySelectorAll('*')) {
      if (n.shadowRoot) { const r = find(n.shadowRoot, css); if (r) return r; }
    }
    return null;
  };
  const host = find(document, '.tp-answer-options');
  const seen = [];
  const note = () => {
    const row = host.shadowRoot.querySelector('tr.live');
    const state = [host.hasAttribute('data-live-updating'), row ? row.textContent : null];
    const last = seen[seen.length - 1];
    if (!last || last[0] !== state[0] || last[1] !== state[1]) seen.push(state);
  };
  note();
  new MutationObserver(note).observe(
    host, {attributes: true, attributeFilter: ['data-live-updating']});
  new MutationObserver(note).observe(
    host.shadowRoot, {subtree: true, childList: true, characterData: true});
  window.__tp_rows = seen;
}
"""
#: how the edited scenario's row looks: its label's badge, a number cell's opacity
ROW_LOOK = """
(row) => {
  const cells = row.querySelectorAll('td');
  const badge = getComputedStyle(cells[0], '::after');
  return {badge: badge.content, badge_opacity: parseFloat(badge.opacity),
          number_opacity: parseFloat(getComputedStyle(cells[1]).opacity),
          label_opacity: parseFloat(getComputedStyle(cells[0]).opacity)};
}
"""
#: what of a chart figure is marked: its badge and its plot's opacity
FIGURE_LOOK = """
(fig) => ({badge: getComputedStyle(fig, '::after').content,
           plot_opacity: parseFloat(getComputedStyle(fig.shadowRoot.querySelector('.bk-Canvas'))
             .opacity)})
"""


@pytest.fixture(scope="module")
def slow_url(artifacts: Path) -> Iterator[str]:
    """A dashboard served with a slow 2030 solve of the edited scenario (its own server);
    its log must hold no traceback."""
    import sys

    from ui.conftest import free_port, serving

    port = free_port()
    code = SLOW_SERVER.format(delay=DELAY_S, port=port)
    with serving([sys.executable, "-c", code], port, artifacts / "server_slow_live.log") as url:
        yield url


def test_the_edited_scenarios_row_and_charts_are_marked_until_the_new_numbers_come(
    browser: Browser, slow_url: str, artifacts: Path
):
    """A slow 2030 solve of the edited scenario: from the change until its numbers come, its
    row in the options table and the charts that draw it show the previous numbers marked
    "updating…" (the numbers faded, a badge that covers no text), the other rows and charts
    not; the mark goes with the new numbers, never before."""
    errors: list[str] = []
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = context.new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(slow_url + "?market=ree_magnets")
        table = page.locator(".tp-answer-options")
        row = table.locator("tr.live")
        expect(row).to_be_visible(timeout=120_000)
        expect(live_value(page)).to_be_visible(timeout=TIMEOUT)
        before = live_value(page).inner_text()
        add_measure(page, "Club price floor", timeout=TIMEOUT)
        expect(live_value(page)).not_to_have_text(before, timeout=60_000)
        marked = page.locator(f"[{views.UPDATING_ATTR}]")
        expect(marked).to_have_count(0, timeout=60_000)
        old = row.inner_text()
        page.evaluate(WATCH_ROW)
        set_input(page, ".tp-floor-floor", "150")
        expect(table).to_have_attribute(views.UPDATING_ATTR, "", timeout=TIMEOUT)
        look = row.evaluate(ROW_LOOK)
        for _ in range(40):  # the mark shows after its delay (0.25 s, then a 0.2 s fade)
            if look["badge_opacity"] > 0.99 and look["number_opacity"] < 0.36:
                break
            page.wait_for_timeout(50)
            look = row.evaluate(ROW_LOOK)
        assert look["badge"] == f'"{views.UPDATING_TEXT}"' and look["badge_opacity"] > 0.9, look
        assert look["number_opacity"] < 0.5 and look["label_opacity"] == 1, look
        others = table.locator("tbody tr:not(.live) td").nth(1)
        assert others.evaluate("(td) => parseFloat(getComputedStyle(td).opacity)") == 1
        # the badge sits below the row's label, over no text (the table keeps room for it)
        badge_box = row.locator("td").first.evaluate(
            """(td) => { const r = td.getBoundingClientRect(), s = getComputedStyle(td, '::after');
              return {top: r.bottom + parseFloat(s.marginTop), height: parseFloat(s.height)}; }"""
        )
        note = page.locator(".tp-answer-note", has_text="Ranked by the probability").first
        assert badge_box["top"] + badge_box["height"] <= note.bounding_box()["y"], badge_box
        row.evaluate("(r) => r.scrollIntoView({block: 'center'})")
        page.wait_for_timeout(200)
        shot_marked = artifacts / "15_answer_row_marked_1280x800.png"
        page.screenshot(path=str(shot_marked))
        # the charts that draw the edited scenario (its dependence and budget lines)
        figs = page.locator(".tp-answer .bk-Figure")
        expect(figs).to_have_count(4)
        looks = [figs.nth(i).evaluate(FIGURE_LOOK) for i in range(4)]
        on = [lk["badge"] == f'"{views.UPDATING_TEXT}"' for lk in looks]
        assert on == [True, False, False, True], looks
        assert [lk["plot_opacity"] < 0.6 for lk in looks] == on, looks
        figs.first.evaluate("(f) => f.scrollIntoView({block: 'start'})")
        page.screenshot(path=str(artifacts / "16_answer_charts_marked_1280x800.png"))
        # the new numbers come, unmarked
        expect(row).not_to_have_text(old, timeout=60_000)
        expect(marked).to_have_count(0, timeout=TIMEOUT)
        seen = [tuple(s) for s in page.evaluate("window.__tp_rows")]
        old_text = seen[0][1]
        assert seen[0] == (False, old_text) and (True, old_text) in seen
        after = seen[seen.index((True, old_text)) :]
        assert (False, old_text) not in after  # never the old row unmarked once changed
        assert seen[-1][0] is False and seen[-1][1] != old_text
        row.evaluate("(r) => r.scrollIntoView({block: 'center'})")
        page.wait_for_timeout(300)
        page.screenshot(path=str(artifacts / "17_answer_row_updated_1280x800.png"))
        assert not errors, errors
    finally:
        context.close()
