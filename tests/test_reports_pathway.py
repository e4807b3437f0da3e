"""Briefs of pathway results (docs/briefs.md, "Pathway briefs"): the 2030 question answered
on page 1, the numbers of ``ds.tp.pathway_options()`` as ``tradepolicy run`` prints them, the
target and ambition from the set, disruption risk when the results carry it, and the brief
vocabulary (no internal notes, ⚠ beside every flagged number).

Expected numbers come from ``ds.tp`` and from the CLI's own printout, never from the brief's
code.
"""

from __future__ import annotations

import io
import re
import warnings
from functools import cache
from itertools import pairwise
from pathlib import Path

import numpy as np
import pypdf
import pytest
import xarray as xr
from rich.console import Console

import tradepolicy as tp
import tradepolicy.cli as cli
from tests.test_reports import docx_text, html_text, norm, pptx_text
from tradepolicy.errors import InputError
from tradepolicy.reports import build_context, render_brief, write_brief
from tradepolicy.reports.formatting import fmt_bn, fmt_bn2, fmt_prob, fmt_share
from tradepolicy.reports.pathway import PathwayBrief, split_warnings

ROOT = Path(__file__).parents[1]
WARN = "\u26a0"
MINUS = "\u2212"

#: a small single-market pathway: target year 2028 and a 55% ambition, both from the set
SMALL = """
market = "ndpr_oxide"
title = "NdPr oxide to 2030: a club floor"
years = [2024, 2030]
discount_rate = 0.04
target = { group = "g7_partners", max_share = 0.60, ambition = 0.55, year = 2028 }

[[scenario]]
name = "club_floor_110"
[[scenario.measure]]
type = "price_floor"
importers = ["USA", "JPN", "EU"]
exempt = ["USA", "JPN", "EU", "AUS"]
floor = 110000.0
collector = "importer_government"
start_year = 2026
"""


@cache
def magnets() -> xr.Dataset:
    """The shipped rare-earth pathway set with a few draws."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pset = tp.load_scenarios(ROOT / "scenarios" / "ree_magnets_2030.toml")
    return tp.solve(pset, draws=4, seed=1)


@cache
def small(tmp: str) -> xr.Dataset:
    path = Path(tmp) / "small_2028.toml"
    path.write_text(SMALL, encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pset = tp.load_scenarios(path)
    return tp.solve(pset)


@cache
def rendered(fmt: str) -> bytes:
    return render_brief(magnets(), fmt=fmt)


def pdf_pages(data: bytes) -> list[str]:
    return [norm(p.extract_text()) for p in pypdf.PdfReader(io.BytesIO(data)).pages]


def ascii_minus(text: str) -> str:
    return text.replace(MINUS, "-")


@pytest.fixture(scope="module")
def small_ds(tmp_path_factory) -> xr.Dataset:
    return small(str(tmp_path_factory.mktemp("pathway")))


# -- formats and page 1 -----------------------------------------------------------------------


def test_pdf_page_one_holds_the_question_the_answer_and_the_options() -> None:
    ds = magnets()
    brief = build_context(ds)
    assert isinstance(brief, PathwayBrief)
    pages = pdf_pages(rendered("pdf"))
    assert len(pages) >= 2
    one = pages[0]
    for words in ("The question", "The answer", "Options at a glance", "Who pays"):
        assert words in one, words
    assert "60%" in one and "50% ambition" in one and "2030" in one
    opts = ds.tp.pathway_options()
    # every option's label and its 2030 dependence are on page 1
    for n in opts.index:
        assert brief.labels[n] in one, n
        assert fmt_share(opts.loc[n, "dependence_2030"]) in one, n
    # the answer's first line reads doing nothing's 2030 dependence and the 2024 level
    dep24 = float(ds["bloc_dependency"].sel(draw=0, year=2024, scenario="baseline").isel(stage=-1))
    assert brief.answer[0].startswith("Doing nothing")
    assert fmt_share(dep24) in brief.answer[0]
    assert fmt_share(opts.loc["baseline", "dependence_2030"]) in brief.answer[0]
    # trajectories and per-stage dependence come after page 1
    rest = " ".join(pages[1:])
    assert "Figure 1." in rest and "Dependence per stage in 2030" in rest
    assert "Figure 1." not in one


def test_docx_and_html_carry_the_same_content() -> None:
    pdf = " ".join(pdf_pages(rendered("pdf")))
    doc = norm(docx_text(rendered("docx")))
    html = norm(html_text(rendered("html")))
    brief = build_context(magnets())
    assert isinstance(brief, PathwayBrief)
    cells = [c.text for t in [brief.options, *brief.tables] for row in t.rows for c in row]
    if brief.payers is not None:
        cells += [c.text for row in brief.payers.rows for c in row]
    for text in (brief.question, *brief.answer, *cells):
        for where, body in (("docx", doc), ("html", html)):
            assert norm(text) in body, (where, text)
    for text in cells:
        assert text in pdf or text.split()[0] in pdf, text
    # the HTML is self-contained: the chart is inline, nothing is fetched
    raw = rendered("html").decode("utf-8")
    assert "data:image/svg+xml;base64," in raw
    assert not re.search(r"""(?:src|href)=["']https?:""", raw)


# -- the numbers are those of ds.tp.pathway_options() and the CLI -----------------------------


def _rows(brief: PathwayBrief, table) -> dict:
    """A table's rows by option identifier (the brief's label map)."""
    ids = {label: n for n, label in brief.labels.items()}
    return {ids[row[0].text]: row for row in table.rows}


def _cell(brief: PathwayBrief, option: str, column: str) -> str:
    return _rows(brief, brief.options)[option][brief.options.header.index(column)].text


def test_options_table_equals_pathway_options() -> None:
    ds = magnets()
    opts = ds.tp.pathway_options()
    brief = build_context(ds)
    assert isinstance(brief, PathwayBrief)
    unit = "bn USD"
    assert brief.options.header[1] == "Dependence 2030 (5–95%)"
    for n, r in opts.iterrows():
        assert _cell(brief, n, "Dependence 2030 (5–95%)").startswith(
            fmt_share(r["dependence_2030"])
        )
        assert _cell(brief, n, "P(≤\u00a060%)") == fmt_prob(r["p_at_most_60"])
        assert _cell(brief, n, "P(≤\u00a050%)") == fmt_prob(r["p_at_most_50"])
        assert _cell(brief, n, "PV budget cost (spending > 0)") == fmt_bn(r["pv_budget_cost_bloc"])
        assert _cell(brief, n, "PV cost to buyers (> 0 = cost)") == fmt_bn(
            r["pv_cost_to_bloc_buyers"]
        )
        per = _cell(brief, n, f"Cost per point removed ({unit})")
        if n == "baseline":
            continue
        if np.isfinite(r["cost_per_point"]):
            assert per == fmt_bn2(r["cost_per_point"])
        else:  # an option that does not move dependence says so, never divides by ~0
            assert abs(r["points_removed"]) < 0.1 or r["points_removed"] < 0
            assert per in ("does not move dependence", "raises dependence")
    # the 5–95% range under the dependence is the views' range
    row = _rows(brief, brief.options)["price_gap_subsidy"]
    r = opts.loc["price_gap_subsidy"]
    assert (
        row[1].sub
        == f"{fmt_share(r['dependence_2030_p05'])} to {fmt_share(r['dependence_2030_p95'])}"
    )


def test_brief_numbers_match_the_cli_printout(monkeypatch) -> None:
    """``tradepolicy run`` prints the pathway tables; each of its numbers is in the brief with
    the same sign and unit (bn USD; the brief writes − for -)."""
    ds = magnets()
    buf = io.StringIO()
    monkeypatch.setattr(cli, "console", Console(file=buf, width=260, color_system=None))
    cli.print_pathway(ds)
    printed = buf.getvalue()
    assert "bn USD" in printed
    brief = build_context(ds)
    assert isinstance(brief, PathwayBrief)
    rows = _rows(brief, brief.options)
    n_checked = 0
    lines = printed.splitlines()
    for line, below in pairwise(lines):
        cells = [c.strip() for c in line.split("│") if c.strip()]
        ids = [c.strip() for c in below.split("│") if c.strip()]
        if len(cells) != 10 or len(ids) != 1 or ids[0] not in rows:
            continue
        # the option in words as the brief names it, its identifier underneath
        assert cells[0] == brief.labels[ids[0]], (cells[0], ids)
        n, (dep, pts, p60, p50, budget, buyers) = ids[0], cells[1:7]
        row = [ascii_minus(c.text) for c in rows[n]]
        code = dep.split()[1]
        assert row[1] == f"{dep.split()[0]} {tp.regions.short_name(code)}", (n, dep)
        assert row[3] == p60 and row[4] == p50, n
        assert row[5] == budget and row[6] == buyers, (n, row, cells)
        if n != "baseline":
            assert row[2] == ascii_minus(f"{float(pts):+.1f}" if float(pts) else "0.0"), n
        n_checked += 1
    assert n_checked == ds.sizes["scenario"]
    # who pays: the CLI's payer table, same numbers
    assert brief.payers is not None
    pay = {n: [ascii_minus(c.text) for c in r[1:]] for n, r in _rows(brief, brief.payers).items()}
    for line in printed.split("Who pays")[1].splitlines():
        cells = [c.strip() for c in line.split("│") if c.strip()]
        if cells and cells[0] in pay:
            assert [c for c in cells[1:] if c] == pay[cells[0]], cells[0]


# -- the target, the ambition and the year come from the set ---------------------------------


def test_target_year_and_ambition_come_from_the_set(small_ds) -> None:
    ds = small_ds
    assert int(ds.attrs["target_year"]) == 2028
    brief = build_context(ds)
    assert isinstance(brief, PathwayBrief)
    assert brief.target_year == 2028 and brief.ambition == pytest.approx(0.55)
    assert "by 2028" in brief.question and "55% ambition" in brief.question
    assert "by 2030" not in brief.question and "50%" not in brief.question
    assert brief.options.header[1] == "Dependence 2028 (5–95%)"
    assert "P(≤\u00a055%)" in brief.options.header
    text = " ".join(pdf_pages(render_brief(ds, fmt="pdf")))
    assert "Options at a glance: the 2028 target" in text
    assert "present values at 4% a year" in text


def test_no_draws_says_so(small_ds) -> None:
    brief = build_context(small_ds)
    assert isinstance(brief, PathwayBrief)
    assert not brief.has_ranges
    assert "central run" in " ".join(brief.answer)
    assert "without ranges" in brief.method_note
    assert all(r[1].sub == "" for r in brief.options.rows)


# -- disruption risk (DESIGN §12): the contract's variables, known values -------------------


def with_risk(ds: xr.Dataset) -> xr.Dataset:
    names = [str(s) for s in ds.scenario.values]
    n = len(names)
    exp = np.linspace(12.34e9, 4.56e9, n)  # doing nothing loses most
    inaction = float(exp[0])
    stock = np.zeros((n, ds.sizes["region"]))
    stock[-1, list(ds.region.values).index("USA")] = 2.3e9
    out = ds.assign(
        expected_disruption_loss=("scenario", exp, {"units": "USD", "long_name": "e"}),
        disruption_loss_p05=("scenario", exp * 0.3, {"units": "USD", "long_name": "p05"}),
        disruption_loss_p95=("scenario", exp * 2.5, {"units": "USD", "long_name": "p95"}),
        loss_reduction=("scenario", inaction - exp, {"units": "USD", "long_name": "r"}),
        cost_of_inaction=((), inaction, {"units": "USD", "long_name": "c"}),
        pv_stockpile_cost=(("scenario", "region"), stock, {"units": "USD", "long_name": "s"}),
        pv_stock_left=(("scenario", "region"), stock * 0.5e9 / 2.3e9, {"units": "USD"}),
    )
    out.attrs["cost_of_inaction"] = inaction
    return out


def test_risk_section_shows_the_cost_of_inaction_and_each_option() -> None:
    ds = with_risk(magnets())
    brief = build_context(ds)
    assert isinstance(brief, PathwayBrief) and brief.risk is not None
    assert "12.34 bn USD" in brief.risk.inaction
    assert "3.70 to 30.85" in brief.risk.inaction  # 5–95% of doing nothing
    rows = _rows(brief, brief.risk.table)
    last = str(ds.scenario.values[-1])
    assert rows[last][1].text == "4.56" and rows[last][1].sub == "1.37 to 11.40"
    assert rows[last][2].text == "7.78"  # 12.34 − 4.56
    assert rows[last][3].text == "2.30"  # of which stockpile (USA)
    # budget cost: mean over the draws of every payer's PV, less the stock left (0.5 bn)
    pv = ds["pv_budget_cost"].isel(draw=slice(1, None)).sum("region").mean("draw")
    budget = float(pv.sel(scenario=last)) - 0.5e9
    assert rows[last][4].text == fmt_bn2(budget)
    want = "no net budget cost" if budget <= 0 else f"{7.78e9 / budget:.3g}"
    assert rows[last][5].text.replace(MINUS, "-") == want
    # on page 1 of the PDF, and in the DOCX and HTML
    pdf = pdf_pages(render_brief(ds, fmt="pdf"))
    assert "cost of inaction" in pdf[0] and "12.34 bn USD" in pdf[0]
    for fmt, extract in (("docx", docx_text), ("html", html_text)):
        body = norm(extract(render_brief(ds, fmt=fmt)))
        assert "12.34 bn USD" in body and "7.78" in body, fmt


NOT_ESTIMATED = "The cost of inaction in supply disruptions is not estimated here"


def test_no_risk_section_without_the_risk_variables() -> None:
    brief = build_context(magnets())
    assert isinstance(brief, PathwayBrief) and brief.risk is None
    pages = pdf_pages(rendered("pdf"))
    assert "Disruptions and the cost of inaction" not in " ".join(pages)
    # page 1 says plainly that the cost of inaction is missing, and why, in every format
    assert brief.answer[-1].startswith(NOT_ESTIMATED)
    assert NOT_ESTIMATED in pages[0]
    for fmt, extract in (("docx", docx_text), ("html", html_text)):
        assert NOT_ESTIMATED in norm(extract(rendered(fmt))), fmt
    with_events = build_context(with_risk(magnets()))
    assert not any(NOT_ESTIMATED in line for line in with_events.answer)


# -- vocabulary: warnings everywhere, no internal notes --------------------------------------


def test_every_warning_is_shown_wherever_the_option_is() -> None:
    ds = magnets().copy(deep=True)
    n = "price_gap_subsidy"
    ds["converged"].loc[{"draw": 2, "year": 2027, "scenario": n}] = 0
    brief = build_context(ds)
    assert isinstance(brief, PathwayBrief)
    assert any(
        w.startswith("Price-gap subsidy: 1 of 4 draws did not solve") for w in brief.warnings
    )
    tables = [brief.options, *brief.tables] + ([brief.payers] if brief.payers else [])
    for t in tables:
        for row in t.rows:
            if row[0].text == brief.labels[n]:
                assert row[0].flag == WARN, t.key
    assert f"Price-gap subsidy {WARN}" in " ".join(brief.answer)
    html = norm(html_text(render_brief(ds, fmt="html")))
    assert "1 of 4 draws did not solve in some year" in html
    # a doubled-and-more price is flagged as outside what the model can represent
    ds["consumer_price"].loc[{"scenario": n, "year": 2031}] *= 4.0
    brief = build_context(ds)
    assert any("more than 3 times" in w for w in brief.warnings)  # type: ignore[union-attr]


def test_a_warning_every_option_carries_is_said_once_and_marks_no_row() -> None:
    """Draw 2 fails for every option: one warning for the set (with the count of options),
    under the options table and first among the validity warnings; no row is marked, and
    the HTML, DOCX and PPTX say it once. An option's own warning still marks its rows."""
    ds = magnets().copy(deep=True)
    ds["converged"].loc[{"draw": 2, "year": 2028}] = 0
    own = "price_gap_subsidy"
    ds["consumer_price"].loc[{"scenario": own, "year": 2031}] *= 4.0
    brief = build_context(ds)
    assert isinstance(brief, PathwayBrief)
    n_opts = len(brief.labels)
    text = "1 of 4 draws did not solve in some year"
    assert brief.shared_warnings == [
        f"All {n_opts} options: {text} and are left out of the probabilities and the fan"
    ]
    assert brief.warnings[0] == brief.shared_warnings[0]
    assert sum(text in w for w in brief.warnings) == 1
    flagged = {row[0].text for row in brief.options.rows if row[0].flag == WARN}
    assert flagged == {brief.labels[own]}  # the price flag is its own
    assert any(w.startswith(f"{brief.labels[own]}: The buyers' price") for w in brief.warnings)
    for fmt, extract in (("html", html_text), ("docx", docx_text), ("pptx", pptx_text)):
        said = norm(extract(render_brief(ds, fmt=fmt)))
        assert said.count(text) == (2 if fmt != "pptx" else 1), fmt  # under the table, page 2


def test_split_warnings_keeps_each_options_own() -> None:
    per = {
        "a": ["Draws left out", "Price far off"],
        "b": ["Draws left out"],
        "c": ["Other draws left out"],
        "live": ["Draws left out"],  # not one of the options split: kept as its own
    }
    own, shared = split_warnings(per, ["a", "b", "c"])
    assert shared == [("Draws left out", ["a", "b"])]
    assert own == {
        "a": ["Price far off"],
        "c": ["Other draws left out"],
        "live": ["Draws left out"],
    }
    assert split_warnings({}, ["a"]) == ({}, [])


def test_option_names_read_in_words_in_every_format() -> None:
    """The DoD–MP offtake option is named in words (not "Offtake dod mp terms") on every
    page the brief is written to."""
    want = "Offtake on DoD–MP terms"
    brief = build_context(magnets())
    assert brief.labels["offtake_dod_mp_terms"] == want
    for fmt, extract in (("html", html_text), ("docx", docx_text), ("pptx", pptx_text)):
        said = norm(extract(rendered(fmt)))
        assert want in said and "dod mp" not in said.lower(), fmt
    assert want in " ".join(pdf_pages(rendered("pdf")))


def test_no_internal_notes_reach_the_brief() -> None:
    for fmt, extract in (("html", html_text), ("docx", docx_text)):
        text = extract(rendered(fmt))
        for bad in ("[UNVERIFIED", "[assumption", "../shared", "NOTES.md", "DESIGN", "§"):
            assert bad not in text, (fmt, bad)
        assert "nan" not in re.findall(r"\b\w+\b", text.lower()), fmt
    pdf = " ".join(pdf_pages(rendered("pdf")))
    assert "[UNVERIFIED" not in pdf and "NOTES.md" not in pdf


def test_dependence_means_the_bloc_figure() -> None:
    ds = magnets()
    brief = build_context(ds)
    assert isinstance(brief, PathwayBrief)
    assert "single supplier outside the group" in brief.question
    assert str(ds.attrs["target_description"]) in brief.question
    assert "top foreign supplier" not in " ".join(pdf_pages(rendered("pdf"))).lower()


# -- CLI and bad input -----------------------------------------------------------------------


def test_cli_writes_a_pathway_brief(tmp_path) -> None:
    from typer.testing import CliRunner

    from tradepolicy.results.io import write_results

    nc = tmp_path / "p.nc"
    write_results(magnets(), nc)
    out = tmp_path / "b.pdf"
    result = CliRunner().invoke(cli.app, ["brief", str(nc), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes().startswith(b"%PDF")
    # an unknown option name is refused with the allowed names
    result = CliRunner().invoke(
        cli.app, ["brief", str(nc), "-o", str(tmp_path / "c.pdf"), "--scenarios", "nope"]
    )
    assert result.exit_code == 2 and "combination" in result.output


def test_a_pathway_result_without_its_variables_is_refused(tmp_path) -> None:
    ds = magnets().drop_vars("target_dependence")
    with pytest.raises(InputError, match="target_dependence"):
        build_context(ds, source="p.nc")
    with pytest.raises(InputError, match=r"p\.nc"):
        build_context(ds, source="p.nc")
    with pytest.raises(InputError):
        write_brief(ds, tmp_path / "x.pdf")
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_column_headers_keep_their_parentheses_on_one_line() -> None:
    from tradepolicy.reports.html import keep_parentheses

    assert str(keep_parentheses("Dependence 2030 (5–95%)")) == (
        'Dependence 2030 <span class="nobr">(5–95%)</span>'
    )
    # escaped like any other text, inside and outside the parentheses
    assert str(keep_parentheses("a<b (x & y)")) == 'a&lt;b <span class="nobr">(x &amp; y)</span>'
    assert str(keep_parentheses("Option")) == "Option"
    html = rendered("html").decode()
    assert '<span class="nobr">(5–95%)</span></th>' in html
    assert '<span class="nobr">(bn USD)</span></th>' in html
