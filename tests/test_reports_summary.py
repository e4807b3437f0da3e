"""Briefs answer first (issue 19): page 1 of every static brief, the pathway brief's per-stage
answer, and the PPTX slide deck.

Expected numbers come from ``ds.tp.options()``, ``ds.tp.pathway_options()`` and the results'
variables, formatted by the documented rules (docs/briefs.md); the brief's own code is never
used to make an expectation. The target, the ambition and the year come from the set.
"""

from __future__ import annotations

import io
import re
import warnings
from pathlib import Path

import docx
import pypdf
import pytest
from pptx import Presentation
from pptx.util import Inches

import tradepolicy as tp
from tests.test_reports import (
    SETS,
    _invoke,
    internal_hits,
    norm,
    pptx_text,
    rendered,
    results_file,  # noqa: F401 (a fixture)
    solved,
)
from tests.test_reports_pathway import magnets, with_risk
from tradepolicy import regions
from tradepolicy.reports import build_context, render_brief
from tradepolicy.reports.formatting import fmt_bn, fmt_millions, fmt_points, fmt_prob, fmt_share

ROOT = Path(__file__).parents[1]
WARN = "\u26a0"


def _need(name: str) -> None:
    if name not in SETS:
        pytest.skip(f"{name} scenario set not shipped")


def pdf_pages(data: bytes) -> list[str]:
    return [norm(p.extract_text()) for p in pypdf.PdfReader(io.BytesIO(data)).pages]


def expected_static_row(r, target: float, ambition: float | None) -> list[str]:
    """One row of the options at a glance from a ``ds.tp.options()`` row (after the label)."""
    sup = str(r["largest_outside_supplier"])
    out = [fmt_share(r["dependence"]) + (f" {regions.short_name(sup)}" if sup else "")]
    out.append(str(r["meets_target"]))  # the solver's own verdict on the target
    assert out[-1] == ("yes" if r["dependence"] <= target + 1e-12 else "no")
    if ambition is not None:
        out.append("yes" if r["dependence"] <= ambition + 1e-12 else "no")
    out += [
        fmt_points(r["points_removed"]),
        fmt_millions(r["budget_cost"], False),
        fmt_millions(r["cost_to_bloc_buyers"], False),
        str(r["note"])
        if r["note"]
        else (
            f"{fmt_millions(r['budget_cost_per_point'], False)} / "
            f"{fmt_millions(r['buyer_cost_per_point'], False)}"
        ),
    ]
    return out


def _words(dep: float, share: float) -> str:
    return "within" if dep <= share + 1e-12 else "above"


# -- page 1 of a static brief -----------------------------------------------------------------


def test_static_page_one_answers_with_the_target_the_ambition_and_the_options() -> None:
    _need("ndpr_oxide")
    ds = solved("ndpr_oxide")
    opts = ds.tp.options()
    brief = build_context(ds)
    (sm,) = brief.summaries
    assert sm.max_share == pytest.approx(0.60) and sm.ambition == pytest.approx(0.50)
    base = opts.loc["baseline"]
    sup = regions.in_text(str(base["largest_outside_supplier"]))
    first = (
        f"depend on {sup} for {fmt_share(base['dependence'])} of their use in 2024"
        f" ({fmt_share(base['unattributed_share'])} unattributed: the rest of the world): "
        f"{_words(base['dependence'], 0.6)} the 60% target and "
        f"{_words(base['dependence'], 0.5)} the 50% ambition."
    )
    assert first in sm.answer[0]
    # the options at a glance: the numbers of ds.tp.options(), row by row
    assert sm.options.header[2:4] == ["At most 60%", "At most 50%"]
    labels = {b.name: f"{b.number}  {b.label}" for b in brief.sections[0].scenarios}
    rows = {r[0].text: [c.text for c in r[1:]] for r in sm.options.rows}
    assert rows["Baseline"][:3] == expected_static_row(base, 0.6, 0.5)[:3]
    for n in ds.tp.scenarios[1:]:
        assert rows[labels[n]] == expected_static_row(opts.loc[n], 0.6, 0.5), n
    # the PDF's page 1: the question, the answer and the table, nothing of the detail
    one = pdf_pages(rendered("ndpr_oxide", "pdf"))[0]
    for words in ("The question", "The answer (2024)", "Options at a glance", "Who pays"):
        assert words in one, words
    assert "at most 60%, and to the 50% ambition?" in one
    assert "These results are for one year" in one
    assert norm(first) in one
    for n in ds.tp.scenarios[1:]:
        for want in expected_static_row(opts.loc[n], 0.6, 0.5)[:-1]:
            assert want in one, (n, want)
    assert "Scenarios and findings" not in one and "Figure 1." not in one
    # who pays: the budget cost by paying government, from ds.tp.who_pays
    assert sm.payers is not None
    pay = {r[0].text: r[1:] for r in sm.payers.rows}
    heads = sm.payers.header[1:]
    for n in ds.tp.scenarios[1:]:
        cost = ds.tp.who_pays(n)["budget_cost"]
        if labels[n] not in pay:  # only options some government pays for are rows
            assert (cost.abs() < 0.05).all(), n
            continue
        for h, c in zip(heads, pay[labels[n]], strict=True):
            code = next(r for r in cost.index if regions.short_name(str(r)) == h)
            assert c.text == fmt_millions(cost[code], False), (n, h)


def test_static_docx_and_html_open_with_the_same_page_one() -> None:
    _need("ndpr_oxide")
    ds = solved("ndpr_oxide")
    opts = ds.tp.options()
    brief = build_context(ds)
    labels = {b.name: f"{b.number}  {b.label}" for b in brief.sections[0].scenarios}
    d = docx.Document(io.BytesIO(rendered("ndpr_oxide", "docx")))
    paras = [p.text for p in d.paragraphs]
    assert paras.index("The question") < paras.index("Scenarios and findings")
    # the summary ends with a page break before the detail
    assert any(
        'w:br w:type="page"' in p._p.xml
        for p in d.paragraphs[: paras.index("Scenarios and findings")]
    )
    body = norm(" ".join(paras))
    assert "the 60% target and within the 50% ambition" in body
    first = d.tables[0]  # the options at a glance is the first table
    head = [c.text for c in first.rows[0].cells]
    assert head[2:4] == ["At most 60%", "At most 50%"]
    got = {
        row.cells[0].text.replace(f" {WARN}", ""): [c.text for c in row.cells[1:]]
        for row in first.rows[1:]
    }
    for n in ds.tp.scenarios[1:]:
        assert got[labels[n]] == expected_static_row(opts.loc[n], 0.6, 0.5), n
    html = rendered("ndpr_oxide", "html").decode()
    assert html.index("The question") < html.index("Scenarios and findings")
    assert 'section class="summary page-one"' in html


def test_ambition_comes_from_the_set(tmp_path) -> None:
    _need("ndpr_oxide")
    text = SETS["ndpr_oxide"].read_text("utf-8")
    assert "ambition = 0.50" in text
    path = tmp_path / "ndpr_45.toml"
    path.write_text(text.replace("ambition = 0.50", "ambition = 0.45"), encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = tp.solve(tp.load_scenarios(path))
    (sm,) = build_context(ds).summaries
    assert sm.ambition == pytest.approx(0.45)
    assert "At most 45%" in sm.options.header and "At most 50%" not in sm.options.header
    assert "the 45% ambition" in sm.question and "45% ambition" in sm.answer[0]
    # a set without an ambition: no ambition anywhere on page 1
    _need("gallium")
    (sm,) = build_context(solved("gallium")).summaries
    assert sm.ambition is None
    assert not any("ambition" in s for s in [sm.question, *sm.answer, *sm.options.header])
    assert "At most 60%" in sm.options.header


def test_chain_page_one_shows_every_stage() -> None:
    _need("ree_magnets")
    ds = solved("ree_magnets")
    brief = build_context(ds)
    (sm,) = brief.summaries
    assert sm.stages is not None and brief.chain is not None
    assert "stage_dependence" not in [t.key for t in brief.chain.tables]  # moved, not repeated
    dep = ds.tp.dependence_by_stage()
    order = ds.tp.stage_order()
    base = sm.stages.rows[0]
    assert base[0].text == "Baseline"
    for st, cell in zip(order, base[1:], strict=True):
        r = dep.loc[(st, "baseline")]
        assert cell.text.startswith(fmt_share(r["dependence"])), st
        name = ds.tp.stage_name(st)
        assert f"{name} {fmt_share(r['dependence'])}" in " ".join(sm.answer), st
    one = pdf_pages(rendered("ree_magnets", "pdf"))[0]
    for st in order:
        assert ds.tp.stage_name(st) in one, st
    assert "60% target" in one and "50% ambition" in one
    # dependence at the target stage is the chain's options figure
    opts = ds.tp.options()
    goal = str(ds.tp.target_stage)
    assert float(opts.loc["baseline", "dependence"]) == pytest.approx(
        float(dep.loc[(goal, "baseline")]["dependence"])
    )


# -- the pathway brief: every stage on page 1 -----------------------------------------------


def test_pathway_page_one_names_every_stage_and_the_ambition() -> None:
    ds = magnets()
    brief = build_context(ds)
    line = next(a for a in brief.answer if a.startswith("Per stage in 2030"))
    dep = ds["bloc_dependency"].sel(draw=0, year=2030)
    opts = ds.tp.pathway_options()
    best = opts.drop(index="baseline")["dependence_2030"].idxmin()
    for st in ds.stage.values:
        for n in ("baseline", best):
            assert fmt_share(float(dep.sel(scenario=n, stage=st))) in line, (st, n)
    one = pdf_pages(render_brief(ds, fmt="pdf"))[0]
    assert "Per stage in 2030" in one and "50% ambition" in one and "P(≤ 50%)" in one


# -- the slide deck ---------------------------------------------------------------------------


def _slides(data: bytes) -> list[tuple[str, list]]:
    prs = Presentation(io.BytesIO(data))
    assert prs.slide_width == Inches(13.333) and prs.slide_height == Inches(7.5)
    out = []
    for s in prs.slides:
        boxes = [sh for sh in s.shapes if sh.has_text_frame]
        out.append((boxes[0].text_frame.text if boxes else "", list(s.shapes)))
    return out


def _table_cells(shapes) -> list[list[str]]:
    table = next(sh for sh in shapes if sh.has_table).table
    return [[c.text for c in row.cells] for row in table.rows]


def test_static_deck_has_the_answer_the_options_and_the_charts() -> None:
    _need("ndpr_oxide")
    ds = solved("ndpr_oxide")
    opts = ds.tp.options()
    brief = build_context(ds)
    slides = _slides(rendered("ndpr_oxide", "pptx"))
    titles = [t for t, _ in slides]
    assert titles[1] == "The answer (2024)"
    for want in ("Options at a glance", "Who pays", "Validity warnings", "Method and sources"):
        assert want in titles, want
    answer = next(sh for sh in slides[1][1] if sh.has_text_frame and "60%" in sh.text_frame.text)
    assert "50% ambition" in answer.text_frame.text
    cells = _table_cells(slides[titles.index("Options at a glance")][1])
    assert cells[0][2:4] == ["At most 60%", "At most 50%"]
    labels = {b.name: f"{b.number}  {b.label}" for b in brief.sections[0].scenarios}
    got = {r[0].replace(f" {WARN}", ""): r[1:] for r in cells[1:]}
    for n in ds.tp.scenarios[1:]:
        assert got[labels[n]] == expected_static_row(opts.loc[n], 0.6, 0.5), n
    # one picture per chart of the brief, each on its own slide
    charts = [c for s in brief.sections for c in s.charts]
    pictures = [sh for _, shapes in slides for sh in shapes if sh.shape_type == 13]
    assert len(pictures) == len(charts) >= 2
    assert not internal_hits(pptx_text(rendered("ndpr_oxide", "pptx")))


def test_pathway_deck_numbers_equal_pathway_options() -> None:
    ds = magnets()
    opts = ds.tp.pathway_options()
    brief = build_context(ds)
    data = render_brief(ds, fmt="pptx")
    slides = _slides(data)
    titles = [t for t, _ in slides]
    for want in ("The answer", "Options at a glance", "Dependence per stage in 2030", "Who pays"):
        assert want in titles, want
    cells = _table_cells(slides[titles.index("Options at a glance")][1])
    head = cells[0]
    rows = {r[0].replace(f" {WARN}", ""): dict(zip(head, r, strict=True)) for r in cells[1:]}
    for n, r in opts.iterrows():
        row = rows[brief.labels[n]]
        assert row["Dependence 2030 (5–95%)"].startswith(fmt_share(r["dependence_2030"])), n
        assert row["P(≤\u00a060%)"] == fmt_prob(r["p_at_most_60"]), n
        assert row["P(≤\u00a050%)"] == fmt_prob(r["p_at_most_50"]), n
        assert row["PV budget cost (spending > 0)"] == fmt_bn(r["pv_budget_cost_bloc"]), n
        assert row["PV cost to buyers (> 0 = cost)"] == fmt_bn(r["pv_cost_to_bloc_buyers"]), n
    stage_cells = _table_cells(slides[titles.index("Dependence per stage in 2030")][1])
    assert len(stage_cells[0]) == 1 + ds.sizes["stage"]
    assert sum(sh.shape_type == 13 for _, shapes in slides for sh in shapes) == len(brief.charts)
    text = pptx_text(data)
    assert not internal_hits(text)
    # no risk variables: no risk slide, and the answer says the cost is not estimated
    assert "The cost of inaction" not in titles
    assert "cost of inaction in supply disruptions is not estimated" in norm(text)
    # with disruption risk: the cost of inaction has its slide
    risky = render_brief(with_risk(ds), fmt="pptx")
    titles = [t for t, _ in _slides(risky)]
    assert "The cost of inaction" in titles and "Disruption risk by option" in titles
    assert "12.34 bn USD" in pptx_text(risky)


def test_cli_writes_a_deck(results_file, tmp_path) -> None:  # noqa: F811
    out = tmp_path / "deck.pptx"
    res = _invoke("brief", str(results_file), "-o", str(out))
    assert res.exit_code == 0, res.output
    prs = Presentation(str(out))
    assert len(prs.slides) >= 5
    plain = tmp_path / "deck_noext"
    res = _invoke("brief", str(results_file), "--format", "pptx", "-o", str(plain))
    assert res.exit_code == 0, res.output
    assert plain.read_bytes()[:2] == b"PK"
    res = _invoke("brief", str(results_file), "--format", "pptx", "-o", str(tmp_path / "b.pdf"))
    assert res.exit_code == 2 and "does not match the format" in norm(res.output)
    assert not list(tmp_path.glob("*.part"))


def test_deck_text_is_what_the_brief_says() -> None:
    """Every answer line of page 1 is on the answer slide, word for word."""
    _need("gallium")
    brief = build_context(solved("gallium"))
    text = norm(pptx_text(rendered("gallium", "pptx")))
    for line in brief.summaries[0].answer:
        assert norm(line) in text, line
    assert not re.search(r"\bnan\b", text, re.I)
