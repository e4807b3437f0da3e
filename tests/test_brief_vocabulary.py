"""Briefs render the results vocabulary (issue 13): bloc dependence, the options and who-pays
tables of ``ds.tp``, validity warnings beside every number, ranges only via ``ds.tp.range``,
caveats from the measure registry, welfare groups and colours from the field table.

Every expected number here comes from ``ds.tp`` (the same numbers as the CLI), formatted by
the brief's documented rules; the brief's own code is never used to make an expectation.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from tests.test_reports import SETS, html_text, norm, pdf_text, rendered, solved, solved_draws
from tradepolicy import regions
from tradepolicy.measures import PriceFloor
from tradepolicy.measures.base import WELFARE_ENTRIES
from tradepolicy.reports.context import build_context
from tradepolicy.reports.formatting import fmt_millions, fmt_points, fmt_share
from tradepolicy.results.accessor import TradePolicyAccessor

WARN = "\u26a0"


def _need(name: str) -> None:
    if name not in SETS:
        pytest.skip(f"{name} scenario set not shipped")


def _table(section, key: str):
    return next(t for t in section.tables if t.key == key)


# -- 1. dependence is the bloc figure ---------------------------------------------------------


def test_dependence_is_the_bloc_figure_with_unattributed_share_and_target() -> None:
    _need("ndpr_oxide")
    ds = solved("ndpr_oxide")
    opts = ds.tp.options()
    section = build_context(ds).sections[0]
    # the lede names the bloc, its members in this market and the target
    note = section.dependence_note
    assert str(ds.attrs["target_description"]).split(" (")[0] in note
    for code in ds.tp.bloc():
        assert regions.in_text(code) in note, code
    assert "60%" in note and "unattributed" in note
    base = opts.loc["baseline"]
    for b in section.scenarios:
        if not b.solved or {"Outcome", "No change"} & set(dict(b.findings)):
            continue
        text = dict(b.findings)["Dependence"]
        r = opts.loc[b.name]
        assert fmt_share(r["dependence"]) in text, (b.name, text)
        assert fmt_share(base["dependence"]) in text, (b.name, text)
        assert regions.in_text(str(r["largest_outside_supplier"])) in text, (b.name, text)
        assert f"{fmt_share(r['unattributed_share'])}, unattributed" in text, (b.name, text)
        met = "meets the 60% target" if r["meets_target"] == "yes" else "above the 60% target"
        assert met in text, (b.name, text)
    # the chart shows the bloc figure per scenario, not per-importer shares
    chart = next(c for c in section.charts if c.key == "dependency")
    shown = [b for b in section.scenarios if b.solved]
    assert chart.data["shares"] == pytest.approx([opts.loc[b.name, "dependence"] for b in shown])
    assert chart.data["baseline"] == pytest.approx(base["dependence"])
    assert chart.data["target"] == pytest.approx(0.6)
    # no per-importer "top foreign supplier" wording left in the brief
    text = norm(pdf_text(rendered("ndpr_oxide", "pdf"))[0])
    assert "top foreign supplier" not in text.lower()
    assert "Dependence of the G7 and its partners" in text


def test_glance_names_the_target_from_the_bloc_figure() -> None:
    _need("gallium")
    ds = solved("gallium")
    opts = ds.tp.options()
    section = build_context(ds).sections[0]
    glance = " ".join(section.glance)
    # gallium: the bloc stays far above 60% on China in every scenario
    assert (opts.drop(index="baseline")["meets_target"] == "no").all()
    assert "No scenario meets the 60% target" in glance
    best = opts.drop(index="baseline")["points_removed"].idxmax()
    assert fmt_points(opts.loc[best, "points_removed"]) + " points removed" in glance


# -- 2. options and who pays: the numbers of ds.tp --------------------------------------------


@pytest.mark.parametrize("name", ["ndpr_oxide", "gallium"])
def test_options_table_equals_ds_tp_options(name: str) -> None:
    _need(name)
    ds = solved(name)
    opts = ds.tp.options()
    section = build_context(ds).sections[0]
    assert section.units.money_unit == ds.tp.money_unit()
    table = _table(section, "options")
    assert ds.tp.money_unit() in table.caption
    head = table.header
    rows = {r[0].text: r for r in table.rows}
    text = norm(pdf_text(rendered(name, "pdf"))[0])
    for b in section.scenarios:
        if not b.solved:
            continue
        r, row = opts.loc[b.name], rows[f"{b.number}  {b.label}"]
        cell = {h: c for h, c in zip(head, row, strict=True)}
        sup = regions.short_name(str(r["largest_outside_supplier"]))
        assert cell["Dependence (largest outside supplier)"].text == (
            f"{fmt_share(r['dependence'])} {sup}"
        )
        assert (
            fmt_share(r["unattributed_share"]) in cell["Dependence (largest outside supplier)"].sub
        )
        assert cell["Meets 60% target"].text == r["meets_target"]
        assert cell["Points removed"].text == fmt_points(r["points_removed"])
        expected = {
            "Budget cost (spending > 0)": fmt_millions(r["budget_cost"], False),
            "Cost to bloc buyers": fmt_millions(r["cost_to_bloc_buyers"], False),
            "Foreign producers": fmt_millions(r["foreign_producers"]),
            "World welfare": fmt_millions(r["world_welfare"]),
        }
        for col, want in expected.items():
            assert cell[col].text == want, (b.name, col)
        per_point = cell["Cost per point removed: budget / buyers"].text
        if r["note"]:
            assert per_point == r["note"], b.name
            assert r["note"] in ("raises dependence", "does not move dependence")
        else:
            assert per_point == (
                f"{fmt_millions(r['budget_cost_per_point'], False)} / "
                f"{fmt_millions(r['buyer_cost_per_point'], False)}"
            )
            assert math.isfinite(r["budget_cost_per_point"])
        # the rendered PDF shows the same numbers
        for want in (*expected.values(), fmt_share(r["dependence"]), per_point):
            assert want in text, (b.name, want)


def test_options_numbers_equal_the_cli_numbers() -> None:
    """The brief's dependence and money are the CLI's (``tradepolicy run``) up to rounding."""
    _need("ndpr_oxide")
    ds = solved("ndpr_oxide")
    opts = ds.tp.options()
    table = _table(build_context(ds).sections[0], "options")
    rows = {r[0].text.split("  ", 1)[-1]: r for r in table.rows}
    r = opts.loc["usa_aus_subsidy_110"]
    row = next(v for k, v in rows.items() if k.startswith("US–Australia subsidy"))
    # CLI: f"{dependence:.1%}" and one decimal in millions
    assert row[1].text.startswith(f"{r['dependence']:.1%}")
    cli_budget = float(f"{r['budget_cost']:.1f}")
    assert float(row[4].text.replace(",", "")) == pytest.approx(cli_budget, abs=0.5)


@pytest.mark.parametrize("name", ["ndpr_oxide", "gallium"])
def test_who_pays_table_from_ds_tp_who_pays(name: str) -> None:
    _need(name)
    ds = solved(name)
    section = build_context(ds).sections[0]
    table = _table(section, "who_pays")
    rows = {r[0].text: r for r in table.rows}
    columns = {
        "Budget cost (spending > 0)": ("budget_cost", False),
        "Cost to buyers (> 0 = cost)": ("cost_to_buyers", False),
        "Producers (gain > 0)": ("producers", True),
        "Revenue and rents (income > 0)": ("revenue_and_rents", True),
    }
    assert table.header[1:] == list(columns)
    checked = 0
    for b in section.scenarios:
        if not b.solved:
            continue
        who = ds.tp.who_pays(b.name)
        row = rows[f"{b.number}  {b.label}"]
        for cell, (col, signed) in zip(row[1:], columns.values(), strict=True):
            vals = who[col][who[col].abs() >= 0.05].sort_values(key=abs, ascending=False)
            if vals.empty:
                assert cell.text == "0"
                continue
            for region, v in list(vals.items())[:2]:
                assert f"{regions.short_name(region)} {fmt_millions(v, signed)}" in cell.text
                checked += 1
            assert cell.text.endswith("…") == (len(vals) > 2)
    assert checked > 5


# -- 3. validity warnings wherever a number is shown ------------------------------------------


def test_flagged_scenarios_carry_their_warning_everywhere() -> None:
    _need("gallium")
    ds = solved("gallium")
    com = ds.tp.commodities[0]
    flagged = ds.tp.flagged().sel(commodity=com)
    section = build_context(ds).sections[0]
    html = norm(html_text(rendered("gallium", "html")))
    pdf = norm(pdf_text(rendered("gallium", "pdf"))[0])
    n_flagged = 0
    for b in section.scenarios:
        if not b.solved:
            continue
        is_flagged = bool(flagged.sel(scenario=b.name))
        n_flagged += is_flagged
        want = [w[:1].upper() + w[1:] for w in ds.tp.warnings(b.name, com)]
        assert b.warnings == want, b.name
        assert bool(b.warnings) == is_flagged, b.name
        # the scenario's section: the warning right under its heading, before its findings
        for w in want:
            assert f"{WARN} Validity warning: {w}." in html, (b.name, w)
            assert norm(w)[:60] in pdf, (b.name, w)
        # every table row of the scenario carries the mark; unflagged rows do not
        for t in section.tables:
            for row in t.rows:
                if row[0].text == f"{b.number}  {b.label}":
                    assert row[0].flag == (WARN if is_flagged else ""), (t.key, b.name)
        # findings and headline lines name it with the mark
        assert b.ref.endswith(WARN) == is_flagged
    assert n_flagged >= 2  # the shipped gallium set has flagged scenarios
    assert html.count("Validity warning:") == sum(len(b.warnings) for b in section.scenarios)
    assert f"{WARN} marks a scenario with results outside what the model can represent" in pdf
    # the rendered rows: the mark follows each flagged scenario's label in the tables
    for b in section.scenarios:
        if b.solved and b.warnings:
            assert re.search(rf"{re.escape(b.label)} {WARN}", html), b.name


def test_unflagged_results_show_no_warning() -> None:
    _need("ndpr_oxide")
    ds = solved("ndpr_oxide")
    section = build_context(ds).sections[0]
    b = next(b for b in section.scenarios if b.name == "usa_aus_subsidy_110")
    assert not b.warnings and not ds.tp.warnings(b.name)
    assert all(
        row[0].flag == "" for t in section.tables for row in t.rows if row[0].text.endswith(b.label)
    )


# -- 4. one vocabulary ------------------------------------------------------------------------


def test_caveats_come_from_the_measure_registry(monkeypatch) -> None:
    _need("ndpr_oxide")
    ds = solved("ndpr_oxide")
    text = "A caveat declared by the measure itself, as one registered from a notebook would."
    monkeypatch.setattr(PriceFloor, "caveat", text)
    caveats = build_context(ds).sections[0].caveats
    assert text in caveats
    monkeypatch.setattr(PriceFloor, "caveat", "")
    assert not any("price floor" in c.lower() for c in build_context(ds).sections[0].caveats)


def test_welfare_chart_groups_labels_and_colours_from_the_field_table() -> None:
    _need("ndpr_oxide")
    ds = solved("ndpr_oxide")
    chart = next(c for c in build_context(ds).sections[0].charts if c.key == "welfare")
    groups: dict[str, list[str]] = {}
    for v in WELFARE_ENTRIES:
        groups.setdefault(ds.tp.field(v)["group"], []).append(v)
    by_label = {
        (ds.tp.label(vs[0], short=True) if len(vs) == 1 else g.capitalize()): vs
        for g, vs in groups.items()
    }
    assert set(chart.data["parts"]) <= set(by_label)
    assert {"Consumers", "Producers"} <= set(chart.data["parts"])
    world = ds.sel(commodity=ds.tp.commodities[0])
    shown = [b for b in build_context(ds).sections[0].scenarios if b.solved]
    for label, values in chart.data["parts"].items():
        vs = by_label[label]
        assert chart.data["colours"][label] == ds.tp.field(vs[0])["colour"]
        want = [float(world[vs].sel(scenario=b.name).to_dataarray().sum()) / 1e6 for b in shown]
        assert values == pytest.approx(want, abs=1e-9)


def test_ranges_only_through_ds_tp_range(monkeypatch) -> None:
    _need("ndpr_oxide")
    ds = solved_draws("ndpr_oxide")
    calls = []

    def fake(self, var, scenario, commodity=None, region=None):
        calls.append((var, region))
        return (11.1e6, 22.2e6)

    monkeypatch.setattr(TradePolicyAccessor, "range", fake)
    section = build_context(ds).sections[0]
    welfare = _table(section, "welfare")
    assert all(row[-1].sub == "+11.1 to +22.2" for row in welfare.rows)
    options = _table(section, "options")
    col = options.header.index("Budget cost (spending > 0)")
    assert all(row[col].sub == "11.1 to 22.2" for row in options.rows[1:])
    assert ("budget_cost", "world") in calls and ("welfare_change", "world") in calls
    assert ("consumer_surplus_change", ds.tp.bloc()) in calls
    # and the brief's code never names how draws are stored
    src = Path(__file__).parents[1] / "tradepolicy" / "reports"
    for f in src.glob("*.py"):
        assert not re.search(r"(?<!has)_draws\b|_quantiles\b", f.read_text()), f.name
