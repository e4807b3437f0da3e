"""The dashboard's HTML panes: a text change sends the text Panel would, and nothing else."""

from __future__ import annotations

import pytest

pn = pytest.importorskip("panel")

from bokeh.document import Document  # noqa: E402

from tradepolicy.dashboard.answer import CSS  # noqa: E402
from tradepolicy.dashboard.panes import TextPane  # noqa: E402

TEXTS = [
    '<div class="k" data-kpi="x"><b>41.6%</b> &amp; “meets” é</div>',
    None,
    "<table><tr><td>a &lt; b</td></tr></table>",
    "",
]


def _texts(cls: type, sanitize: bool = False) -> list[tuple]:
    pane = cls("", sizing_mode="stretch_width", stylesheets=[CSS], css_classes=["tp-x"])
    model = pane.get_root(Document())
    pane.sanitize_html = sanitize
    out = []
    for obj in [*TEXTS, "<script>alert(1)</script><i>z</i>"]:
        pane.object = obj
        out.append((model.text, model.css_classes, len(model.stylesheets), model.sizing_mode))
    pane.visible = False
    pane.object = "<p>hidden</p>"
    out.append((model.text, model.visible))
    return out


@pytest.mark.parametrize("sanitize", [False, True])
def test_the_text_pane_sends_what_panels_html_pane_sends(sanitize):
    assert _texts(TextPane, sanitize) == _texts(pn.pane.HTML, sanitize)


def test_a_text_change_does_not_rebuild_the_panes_stylesheets(monkeypatch):
    """Panel's HTML pane derives every property again (its design's stylesheets rebuilt as
    new models) for a new text; the text pane sets the text only."""
    pane = TextPane("<p>a</p>", stylesheets=[CSS])
    model = pane.get_root(Document())
    sheets = list(model.stylesheets)
    calls: list[int] = []
    design = pane._design
    assert design is not None
    params = design.params
    monkeypatch.setattr(design, "params", lambda *a, **k: (calls.append(1), params(*a, **k))[1])
    pane.object = "<p>b</p>"
    assert model.text == "&lt;p&gt;b&lt;/p&gt;"
    assert calls == []
    assert list(model.stylesheets) == sheets
