"""The 2030 question in the dashboard (tradepolicy.dashboard.answer), without a browser.

Every number of the view must be that of the pathway Dataset: the options table is
``ds.tp.pathway_options()`` (also at another stage, where it must equal a run of the set with
its target read at that stage), the edited scenario is one more pathway option solved with the
set's header (a shipped option entered by hand gives the shipped row; no measure gives the
baseline), the yearly budget adds up to the present values, and the caches stay bounded.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd
import pytest

pn = pytest.importorskip("panel")

import tradepolicy as tp  # noqa: E402
from tradepolicy.dashboard import (  # noqa: E402
    DashboardStore,
    catalog,
    views,
)
from tradepolicy.dashboard import answer as ans  # noqa: E402
from tradepolicy.pathway import solve_pathway  # noqa: E402
from tradepolicy.pathway.results import discount_factors  # noqa: E402
from tradepolicy.reports.formatting import fmt_bn, fmt_prob, fmt_share  # noqa: E402
from tradepolicy.reports.pathway import build_pathway_context  # noqa: E402
from tradepolicy.scenario import Scenario  # noqa: E402

SET = "ree_magnets_2030"
NUMERIC = [
    "dependence_2030",
    "points_removed",
    "p_at_most_60",
    "p_at_most_50",
    "pv_budget_cost",
    "pv_budget_cost_bloc",
    "pv_cost_to_buyers",
    "pv_cost_to_bloc_buyers",
    "pv_world_welfare",
    "budget_cost_per_point",
    "buyer_cost_per_point",
    "cost_per_point",
]


@pytest.fixture(scope="module")
def pset():
    return tp.load_scenarios(SET)


@pytest.fixture(scope="module")
def central(pset):
    return ans.solve_central(pset)


@pytest.fixture(scope="module")
def view():
    store = DashboardStore(catalog(), "ree_magnets")
    return ans.AnswerView(store=store, draws=0)


def _same(a: pd.Series | pd.DataFrame, b: pd.Series | pd.DataFrame) -> None:
    np.testing.assert_allclose(
        np.asarray(a, dtype=float), np.asarray(b, dtype=float), rtol=1e-9, atol=1e-6
    )


def test_the_shipped_pathway_sets_of_the_chain_are_offered(view):
    assert list(view.set_select.options) == ["ree_magnets_2030", "ree_magnets_risk"]
    assert view.set_select.value == SET
    assert view.stage_select.value == "ree_ndfeb_magnet"  # the target stage first
    # the set's first policy year: the DoD-MP terms start in 2025, the others in 2026
    assert view.start_input.value == 2025


def test_the_options_table_is_pathway_options(view, pset):
    direct = solve_pathway(pset).tp.pathway_options()
    shown = view.table_frame()
    assert ans.LIVE in shown.index
    shown = shown.drop(index=ans.LIVE)
    assert list(shown.index) == list(direct.index)
    _same(shown[NUMERIC], direct[NUMERIC])
    assert list(shown["largest_outside_supplier"]) == list(direct["largest_outside_supplier"])


def test_the_table_shows_the_numbers_of_the_brief(view, central):
    html = view.table.object
    opts = central.tp.pathway_options()
    brief = build_pathway_context(central)
    cells = {str(r[0].text): [c.text for c in r[1:]] for r in brief.options.rows}
    for n in opts.index:
        label = brief.labels[n]
        assert label in html
        r = opts.loc[n]
        budget = fmt_bn(r["pv_budget_cost_bloc"])
        assert budget in cells[label], (n, budget, cells[label])  # the brief's cell
        assert budget in html and fmt_share(r["dependence_2030"]) in html
        assert fmt_prob(r["p_at_most_60"]) in html


def test_options_are_ranked_by_probability_then_dependence(view):
    t = view.table_frame()
    order = ans.ranked(t, 2030)
    assert order[0] == "baseline" and order[-1] == ans.LIVE  # the edited scenario last
    rest = t.loc[order[1:-1]]
    keys = list(
        zip(-rest["p_at_most_60"], -rest["p_at_most_50"], rest["dependence_2030"], strict=True)
    )
    assert keys == sorted(keys)
    html = view.table.object
    pos = [html.index(f">{ans.labels_for(view.results()).get(n, ans.LIVE_LABEL)}<") for n in order]
    assert pos == sorted(pos)


def test_another_stage_equals_the_set_targeted_at_that_stage(pset):
    stage = "ree_ndpr_oxide"
    ds = ans.solve_central(pset)
    moved = ans.with_scenarios(
        pset, pset.scenarios, target=pset.target.model_copy(update={"stage": stage}), risk=False
    )
    direct = solve_pathway(moved).tp.pathway_options()
    got = ans.options_at_stage(ds, stage)
    _same(got[NUMERIC], direct[NUMERIC])
    assert not np.allclose(got["dependence_2030"], ds.tp.pathway_options()["dependence_2030"])


def test_another_stage_with_draws_equals_the_set_targeted_there(pset):
    stage = "ree_ndpr_metal"
    small = ans.with_scenarios(pset, pset.scenarios[:2], risk=False)
    ds = solve_pathway(small, draws=3, seed=7)
    moved = ans.with_scenarios(
        small, small.scenarios, target=pset.target.model_copy(update={"stage": stage})
    )
    direct = solve_pathway(moved, draws=3, seed=7).tp.pathway_options()
    got = ans.options_at_stage(ds, stage)
    cols = [*NUMERIC, "dependence_2030_p05", "dependence_2030_p95"]
    _same(got[cols], direct[cols])


def test_a_shipped_option_entered_by_hand_gives_its_row(pset, central):
    option = next(s for s in pset.scenarios if s.name == "club_floor_oxide_magnet")
    live = ans.solve_live(pset, option.model_copy(update={"name": "typed"}), 2026)
    got = live.tp.pathway_options()
    _same(got.loc[ans.LIVE, NUMERIC], central.tp.pathway_options().loc[option.name, NUMERIC])
    _same(got.loc["baseline", NUMERIC], central.tp.pathway_options().loc["baseline", NUMERIC])


def test_measures_without_a_start_year_start_in_the_year_chosen(pset):
    option = next(s for s in pset.scenarios if s.name == "club_floor_oxide_magnet")
    bare = Scenario(
        name="bare",
        measures=[m.model_copy(update={"start_year": None}) for m in option.measures],
    )
    assert all(m.start_year == 2028 for m in ans.live_option(bare, 2028).measures)
    late = ans.solve_live(pset, bare, 2028).tp.pathway_options()
    early = ans.solve_live(pset, bare, 2026).tp.pathway_options()
    _same(
        early.loc[ans.LIVE, NUMERIC],
        ans.solve_central(pset).tp.pathway_options().loc[option.name, NUMERIC],
    )
    # two years less of the floor: less levy collected (budget cost less negative)
    assert late.loc[ans.LIVE, "pv_budget_cost_bloc"] > early.loc[ans.LIVE, "pv_budget_cost_bloc"]


def test_no_measure_is_the_baseline(pset):
    live = ans.solve_live(pset, Scenario(name="nothing", measures=[]), 2026)
    dep = live["bloc_dependency"].sel(draw=0)
    _same(dep.sel(scenario=ans.LIVE), dep.sel(scenario="baseline"))
    row = live.tp.pathway_options().loc[ans.LIVE]
    assert row["points_removed"] == pytest.approx(0.0, abs=1e-9)
    assert row["pv_budget_cost"] == pytest.approx(0.0, abs=1e-3)
    assert row["pv_cost_to_buyers"] == pytest.approx(0.0, abs=1e-3)
    assert math.isnan(row["cost_per_point"])


def test_a_measure_change_updates_the_live_kpis(view):
    store = view.store
    before = view.kpis.object
    store.policy.preset("floor")
    after = view.kpis.object
    assert after != before
    row = view.table_frame().loc[ans.LIVE]
    sc = store.current_scenario()
    direct = solve_pathway(
        ans.with_scenarios(view.pset, [ans.live_option(sc, 2025)], risk=False)
    ).tp.pathway_options()
    _same(row[NUMERIC], direct.loc[ans.LIVE, NUMERIC])
    assert fmt_share(direct.loc[ans.LIVE, "dependence_2030"]) in after
    assert fmt_bn(direct.loc[ans.LIVE, "pv_budget_cost_bloc"]) in after
    assert 'data-kpi="answer_dependence"' in after
    # the cards give the unit of the table's money columns below them (bn of the currency)
    assert "bn USD, spending &gt; 0" in after and "(bn USD)" in view.table.object
    assert "Who pays: PV of the net budget cost by payer (bn USD," in view.payers.object
    # another level is another solve (the cache key holds every measure field)
    store.policy.set("floor", floor=0.5 * store.policy.value("floor", "floor"))
    row2 = view.table_frame().loc[ans.LIVE]
    assert row2["pv_budget_cost_bloc"] != row["pv_budget_cost_bloc"]
    direct2 = solve_pathway(
        ans.with_scenarios(view.pset, [ans.live_option(store.current_scenario(), 2025)], risk=False)
    ).tp.pathway_options()
    _same(row2[NUMERIC], direct2.loc[ans.LIVE, NUMERIC])
    assert view.kpis.object != after
    store.policy.switch("floor", False)


def test_yearly_budget_adds_up_to_the_present_value(central):
    rate = float(central.attrs["discount_rate"])
    members = str(central.attrs["target_bloc"]).split()
    for regions, col in ((None, "pv_budget_cost"), (members, "pv_budget_cost_bloc")):
        frame = ans.annual_budget(central, regions)
        pv = frame.mul(discount_factors(frame.index.to_numpy(int), rate), axis=0).sum()
        _same(pv[central.tp.pathway_options().index], central.tp.pathway_options()[col])
    assert ans.annual_budget(central)["baseline"].abs().max() == 0.0


def test_the_answer_names_the_options_under_each_share(central):
    t = central.tp.pathway_options()
    labels = ans.labels_for(central)
    text = ans.answer_sentence(
        t,
        year=2030,
        shares=[0.6, 0.5],
        draws=0,
        stage_words="sintered NdFeB magnets",
        bloc_words="the G7 and its partners",
        labels=labels,
    )
    under60 = [n for n in t.index if n != "baseline" and t.loc[n, "dependence_2030"] <= 0.6]
    over60 = [n for n in t.index if n != "baseline" and t.loc[n, "dependence_2030"] > 0.6]
    assert under60 and over60  # the shipped set has both
    head, _, tail = text.partition("under 60%:")
    part60 = tail.split("under 50%:")[0]
    assert all(labels[n] in part60 for n in under60)
    assert not any(f"{labels[n]} (" in part60 for n in over60)
    assert fmt_share(t.loc["baseline", "dependence_2030"]) in head
    assert "under 50%: none" in text  # no shipped option reaches 50% in the central run


def test_a_market_without_a_pathway_set_gets_the_default_header():
    store = DashboardStore(catalog(), "ndpr_oxide")
    view = ans.AnswerView(store=store, draws=0)
    assert list(view.set_select.options) == [ans.DEFAULT_SET]
    p = view.pset
    assert p.years == (2024, 2035) and p.target_year == 2030
    assert p.target.shares == (0.6, 0.5)
    assert "No pathway set ships for this market" in view.header.object
    t = view.table_frame()
    assert list(t.index) == ["baseline", ans.LIVE]
    store.policy.preset("floor")
    assert view.table_frame().loc[ans.LIVE, "pv_budget_cost"] != 0.0
    store.policy.switch("floor", False)


def test_draws_run_in_one_shared_thread_and_the_cache_is_bounded(pset):
    small = ans.with_scenarios(pset, pset.scenarios[:1], risk=False)
    a = ans.submit_draws(small, 2, 11)
    b = ans.submit_draws(small, 2, 11)
    assert a is b  # a second session asking for the same run waits for the same solve
    ds = a.result(timeout=300)
    assert ds.sizes["draw"] == 3
    deadline = time.monotonic() + 5
    while ans._IN_FLIGHT and time.monotonic() < deadline:
        time.sleep(0.01)
    assert ans.cached_draws(small, 2, 11) is ds
    assert ans.submit_draws(small, 2, 11) is not a  # done: a new future (a cache hit)
    assert ans.PATHWAYS.max_items <= 8
    for seed in range(ans.PATHWAYS.max_items + 2):
        ans.PATHWAYS.get(("probe", seed), lambda: ds)
    assert len(ans.PATHWAYS) == ans.PATHWAYS.max_items
    assert ans.cached_draws(small, 2, 11) is None  # the oldest went first
    ans.PATHWAYS.clear()


def test_draws_replace_the_central_run_when_ready(view):
    view.draws_input.value = 2
    fut = view._future
    if fut is not None:
        fut.result(timeout=600)
        # the view is redrawn by the future's done callback, in the draws' worker thread
        # (no served page): a no-op queued behind it returns once that redraw is over
        ans._DRAWS_POOL.submit(lambda: None).result(timeout=600)
    deadline = time.monotonic() + 60
    while "Probabilities and bands over 2" not in view.status.object:
        assert time.monotonic() < deadline, view.status.object
        time.sleep(0.05)
    ds = view.results()
    assert ds.sizes["draw"] == 3
    shown = view.table_frame().drop(index=ans.LIVE)
    cols = [*NUMERIC, "dependence_2030_p05", "dependence_2030_p95"]
    _same(shown[cols], ds.tp.pathway_options()[cols])
    assert "of 2 draws" in view.sentence.object
    # each dependence cell carries its own 5–95% range, in one short form (one line in a
    # browser at 1280 px: tests/ui); the header says what the brackets are
    html, opts = view.table.object, ds.tp.pathway_options()
    assert "Dependence 2030 (5–\u206095%)" in html  # a word joiner: "95%" stays whole
    for n in opts.index:
        lo, hi = opts.loc[n, "dependence_2030_p05"], opts.loc[n, "dependence_2030_p95"]
        cell = f"{fmt_share(opts.loc[n, 'dependence_2030'])} China ({fmt_share(lo)[:-1]}–"
        assert f"<td>{cell}{fmt_share(hi)})</td>" in html, (n, cell)
    view.draws_input.value = 0
    assert "<th>Dependence 2030</th>" in view.table.object  # the central run: no range
    assert view.results() is view._central and view.results().sizes["draw"] == 1


def test_a_share_range_is_short_and_rounded_as_shares_are():
    assert ans.share_range(0.52139, 0.56351) == "52.1–56.4%"
    assert ans.share_range(0.0, 1.0) == "0.0–100.0%"
    for lo, hi in [(0.12345, 0.6789), (0.59949, 0.6001)]:
        a, b = ans.share_range(lo, hi).split("–")
        assert a + "%" == fmt_share(lo) and b == fmt_share(hi)


def test_numbers_stay_on_one_line_and_text_columns_wrap():
    """Only the option names (and a warnings column) may wrap; every number is no-wrap."""
    cells = [("", ["x", "1", "w"])]
    html = ans._html_table(["Option", "A", "Warnings"], cells, "t", wrap=(0, -1), left=(-1,))
    assert '<td class="w">x</td><td>1</td><td class="w l">w</td>' in html
    assert '<th>A</th><th class="l">Warnings</th>' in html  # the header aligned as its column
    assert "white-space: nowrap" in ans.CSS.split("table.tp-answer-table td {")[1].split("}")[0]


def test_a_rows_note_is_a_line_under_it_across_the_table():
    """A row's note (its validity warnings) is a row of its own under it, one cell across
    every column, marked as the row's (``live-note`` under the edited scenario's), words that
    wrap; rows without a note are plain."""
    rows = [("", ["a", "1"]), ("live", ["b", "2"])]
    html = ans._html_table(["Option", "A"], rows, "t", notes=["", "⚠ price out of range"])
    assert '<tr class=""><td class="w">a</td><td>1</td></tr>' in html
    assert (
        '<tr class="live noted"><td class="w">b</td><td>2</td></tr>'
        f'<tr class="live-note {views.ROW_NOTE_CLASS}"><td colspan="2">⚠ price out of range'
        "</td></tr>"
    ) in html
    note_css = ans.CSS.split(f"tr.{views.ROW_NOTE_CLASS} td {{")[1].split("}")[0]
    assert "white-space: normal" in note_css and "text-align: left" in note_css
    # the edited scenario's note fades with its row while its numbers are replaced
    assert "tr.live-note td" in views.UPDATING_ROWS_CSS


def test_the_pathway_brief_downloads(view):
    labels = [d.label for d in view.downloads.objects]
    assert labels[:2] == ["Pathway brief (PDF)", "Pathway brief (DOCX)"]
    pdf = view._brief_callback("pdf")().getvalue()
    assert pdf.startswith(b"%PDF")
    docx = view._brief_callback("docx")().getvalue()
    assert docx.startswith(b"PK")  # a zip (OOXML)


def test_option_names_in_words_in_the_table_and_the_fans(view, central):
    """The DoD–MP offtake reads as the brief names it in the table and the fans' legend."""
    want = build_pathway_context(central).labels["offtake_dod_mp_terms"]
    assert want == "Offtake on DoD–MP terms"
    assert ans.labels_for(central)["offtake_dod_mp_terms"] == want
    assert f">{want}<" in view.table.object
    legends = [
        item.label.value
        for pane in view.charts.objects
        for legend in pane.object.legend
        for item in legend.items
    ]
    assert want in legends and "Offtake dod mp terms" not in legends


def test_a_warning_several_options_share_is_said_once(view, monkeypatch):
    """A warning every option of the set carries is one line under the table with the count
    of options; rows keep only their own warnings (and the column goes without any)."""
    common = "1 of 100 draws did not solve in some year and are left out of the fan"
    own = "The price is more than 3 times the no-policy price"
    order = ans.ranked(view.table_frame(), 2030)
    options = [n for n in order if n != ans.LIVE]

    def fake(ds, names):
        # the edited scenario is solved without draws: no draws left out
        return {n: [common] + ([own] if n == options[1] else []) for n in names if n != ans.LIVE}

    monkeypatch.setattr(ans, "warnings_of", fake)
    view._warn_key = None
    ans.DERIVED.clear()  # (the warnings are cached per Dataset)
    view._render_table(view._context())
    html = view.table.object
    assert html.count("did not solve in some year") == 1
    assert f"All {len(options)} options: 1 of 100 draws" in html
    assert html.count(own) == 1 and ">Warnings</th>" not in html
    label = ans.labels_for(view.results())[options[1]]
    after = html.split(f'<td class="w">{label}</td>', 1)[1].split("</tr>", 2)
    assert own not in after[0] and own in after[1]  # in the line under its row
    assert f'{views.ROW_NOTE_CLASS}"><td colspan=' in after[1]
    # no option-specific warning: no note under any row
    monkeypatch.setattr(
        ans, "warnings_of", lambda ds, names: {n: [common] for n in names if n != ans.LIVE}
    )
    view._warn_key = None
    ans.DERIVED.clear()  # (the warnings are cached per Dataset)
    view._render_table(view._context())
    html = view.table.object
    assert views.ROW_NOTE_CLASS not in html and html.count("did not solve in some year") == 1
    monkeypatch.undo()
    view._warn_key = None
    ans.DERIVED.clear()  # (the warnings are cached per Dataset)
    view._render_table(view._context())


def test_a_live_job_computes_pathway_options_once(pset, monkeypatch):
    """The edited scenario's job reads ``pathway_options`` once for its options row and its
    validity warnings, and gives the same table and warnings as computing each alone."""
    from tradepolicy.reports.pathway import _Builder
    from tradepolicy.results.accessor import TradePolicyAccessor

    shipped = next(s for s in pset.scenarios if s.name == "club_floor_oxide_magnet")
    option = shipped.model_copy(update={"name": "typed"})
    live = ans.solve_live(pset, option, 2026)
    table = live.tp.pathway_options()
    alone = _Builder(live, [ans.LIVE], None).all_warnings
    calls = []
    real = TradePolicyAccessor.pathway_options

    def counted(self):
        calls.append(1)
        return real(self)

    monkeypatch.setattr(TradePolicyAccessor, "pathway_options", counted)
    ans.DERIVED.clear()
    ds, problem, _ = ans.live_job(pset, option, 2026, None)
    assert ds is live and problem == ""
    assert len(calls) == 1
    pd.testing.assert_frame_equal(ans.table_at(ds, None), table)
    assert ans.warnings_at(ds, ["baseline", ans.LIVE]) == alone
    assert len(calls) == 1


def _chart_data(view) -> list[list[dict]]:
    """A copy of the charts' data (an edit patches the sources' columns in place)."""
    return [
        [{k: np.array(v) for k, v in r.data_source.data.items()} for r in pane.object.renderers]
        for pane in view.charts.objects
    ]


def _live_focused(floor: float | None = None) -> ans.AnswerView:
    store = DashboardStore(catalog(), "ree_magnets")
    view = ans.AnswerView(store=store, draws=0)
    store.policy.preset("floor")
    if floor is not None:
        store.policy.set("floor", floor=floor)
    view.focus.value = ans.LIVE  # the price and capacity charts follow the edited scenario
    return view


def test_an_edit_updates_the_charts_in_place_equal_to_a_fresh_build():
    """Another level of a measure gives charts that look the same: the figures on the page
    stay and get the new data, equal to the charts a new page draws for that level."""
    view = _live_focused()
    store = view.store
    panes = list(view.charts.objects)
    figs = [p.object for p in panes]
    before = _chart_data(view)
    level = 0.5 * store.policy.value("floor", "floor")
    store.policy.set("floor", floor=level)
    assert [p.object for p in view.charts.objects] == figs  # the same figures: in place
    after = _chart_data(view)
    fresh = _live_focused(level)
    assert [p.object for p in fresh.charts.objects] != figs
    want = _chart_data(fresh)
    assert [[sorted(d) for d in f] for f in after] == [[sorted(d) for d in f] for f in want]
    for got_fig, want_fig in zip(after, want, strict=True):
        for got, exp in zip(got_fig, want_fig, strict=True):
            for k in exp:
                np.testing.assert_array_equal(np.asarray(got[k]), np.asarray(exp[k]))
    # the edited scenario's lines moved: the prices of the option in focus differ
    moved = [
        not all(
            np.array_equal(np.asarray(a[k]), np.asarray(b[k]), equal_nan=True)
            for a, b in zip(fb, fa, strict=True)
            for k in a
        )
        for fb, fa in zip(before, after, strict=True)
    ]
    assert moved[1] and moved[0] and moved[3]
    # a chart that looks different (another option in focus) is drawn anew
    other = next(v for v in view.focus.options.values() if v != ans.LIVE)
    view.focus.value = other
    assert all(p.object is not f for p, f in zip(view.charts.objects, figs, strict=True))
    label = ans.labels_for(view.results())[other]
    legend = [item.label.value for lg in view.charts.objects[1].object.legend for item in lg.items]
    assert f"{label}, inside" in legend


def test_chart_specs_are_plain_data_and_draw_the_same_figure():
    """The charts are built as data (no Bokeh model, so a solve thread builds them cheaply);
    two specs of the same view look the same and draw figures with equal data."""
    view = _live_focused()
    ctx = view._context()
    specs = ans.build_charts(ctx, view.focus.value, view.store.info, view._live)
    again = ans.build_charts(ctx, view.focus.value, view.store.info, view._live)
    assert [s.look() for s in specs] == [s.look() for s in again] == view._chart_looks
    for spec in specs:
        for series in spec.series:
            assert all(isinstance(v, (list, np.ndarray)) for v in series.data.values())
    for spec, pane in zip(specs, view.charts.objects, strict=True):
        fig, sources = ans.figure_of(spec)
        assert fig.title.text == pane.object.title.text
        if spec.percent:  # share axes keep decimals when the ticks are close
            assert fig.yaxis[0].formatter.format == ans.PERCENT_TICKS
        assert len(fig.renderers) == len(pane.object.renderers)
        for src, shown in zip(sources, view._chart_sources[specs.index(spec)], strict=True):
            assert ans._same_data(src.data, shown.data)


def test_a_figures_glyphs_are_those_bokehs_plotting_api_draws_without_unused_ones():
    """``figure_of`` makes each glyph as ``figure.line``/``varea`` would (same glyph class and
    visual properties, one legend item per label, renderers in order) but without the
    selection and muting glyphs (left to BokehJS, "auto": no selection tool, legends hide)."""
    from bokeh.plotting import figure

    spec = ans.ChartSpec(
        "t",
        "y",
        (2024, 2025),
        series=(
            ans.Series(
                {"year": [2024, 2025], "v": [0.5, 0.4], "lo": [0.4, 0.3], "hi": [0.6, 0.5]},
                (
                    ans._glyph("varea", x="year", y1="lo", y2="hi", fill_color="#123456"),
                    ans._glyph("line", x="year", y="v", color="#abcdef", legend_label="A"),
                ),
            ),
            ans.Series(
                {"x": [2024, 2025], "y": [1.0, 2.0]},
                (ans._glyph("line", x="x", y="y", color="#00ff00", line_dash="dotted"),),
            ),
        ),
    )
    fig, sources = ans.figure_of(spec)
    ref = figure()
    for series in spec.series:
        for method, kw in series.glyphs:
            getattr(ref, method)(source=series.data, **dict(kw))
    assert len(fig.renderers) == len(ref.renderers) == 3
    for mine, theirs in zip(fig.renderers, ref.renderers, strict=True):
        assert type(mine.glyph) is type(theirs.glyph)
        assert mine.glyph.properties_with_values(include_defaults=False) == (
            theirs.glyph.properties_with_values(include_defaults=False)
        )
        assert mine.nonselection_glyph == mine.muted_glyph == "auto"
    assert [r.data_source for r in fig.renderers] == [sources[0], sources[0], sources[1]]
    (legend,), (ref_legend,) = fig.legend, ref.legend
    assert [item.label for item in legend.items] == [item.label for item in ref_legend.items]
    assert [item.renderers for item in legend.items] == [[fig.renderers[1]]]
    assert legend.click_policy == "hide"


def test_share_ticks_tenths_of_a_point_apart_get_distinct_labels():
    """``PERCENT_TICKS`` read as Numeral.js reads it (BokehJS's ``NumeralTickFormatter``):
    the value in percent with up to two optional decimals. Ticks 0.2 points apart (a
    dependence moving little) were all labelled 40% or 41% with ``0%``."""
    assert ans.PERCENT_TICKS == "0.[00]%"

    def label(v: float) -> str:  # "0.[00]%": two decimals, trailing zeros dropped
        return f"{100 * v:.2f}".rstrip("0").rstrip(".") + "%"

    close = [0.400, 0.402, 0.404, 0.406, 0.408, 0.410]
    assert len({label(v) for v in close}) == len(close)
    assert [label(v) for v in (0.0, 0.1, 0.6)] == ["0%", "10%", "60%"]  # whole: no decimals
    assert len({f"{100 * v:.0f}%" for v in close}) < len(close)  # (what "0%" showed)


def test_update_source_patches_only_changed_columns():
    """Same columns and lengths: the changed columns are patched in place (a replaced source
    makes BokehJS rebuild the figure's legend); else the data is replaced."""
    from bokeh.document import Document
    from bokeh.document.events import ColumnDataChangedEvent, ColumnsPatchedEvent
    from bokeh.models import ColumnDataSource

    src = ColumnDataSource({"year": [2024, 2025, 2026], "v": np.array([0.4, 0.5, np.nan])})
    doc = Document()
    doc.add_root(src)
    events: list = []
    doc.on_change(lambda e: events.append(e))
    ans.update_source(src, {"year": [2024, 2025, 2026], "v": np.array([0.4, 0.5, np.nan])})
    assert events == []  # nothing changed: nothing sent
    ans.update_source(src, {"year": [2024, 2025, 2026], "v": np.array([0.4, 0.6, np.nan])})
    assert len(events) == 1 and isinstance(events[0], ColumnsPatchedEvent)
    assert set(events[0].patches) == {"v"}
    np.testing.assert_array_equal(src.data["v"], [0.4, 0.6, np.nan])
    assert list(src.data["year"]) == [2024, 2025, 2026]
    ans.update_source(src, {"year": [2024, 2025], "v": [0.1, 0.2]})  # another length
    assert isinstance(events[-1], ColumnDataChangedEvent)
    assert src.data == {"year": [2024, 2025], "v": [0.1, 0.2]}
    ans.update_source(src, {"year": [2024, 2025], "w": [0.1, 0.2]})  # another column
    assert isinstance(events[-1], ColumnDataChangedEvent)
    assert list(src.data) == ["year", "w"]


def test_a_patched_chart_leaves_the_results_it_was_drawn_from(central):
    """A chart's columns may be views of the results the sessions share (or of a chart they
    share): its data sources hold copies, so a patch in place (another stage, another edit)
    changes the source only."""
    stages = [str(s) for s in central.stage.values]
    order = [str(s) for s in central.scenario.values]
    labels = ans.labels_for(central)
    first = ans.dependence_chart(central, stages[-1], order, labels, [0.6])
    other = ans.dependence_chart(central, stages[0], order, labels, [0.6])
    assert not np.array_equal(first.series[0].data["v"], other.series[0].data["v"])
    results = central["bloc_dependency"].values.copy()
    drawn = [{k: np.array(v) for k, v in s.data.items()} for s in first.series]
    _fig, sources = ans.figure_of(first)
    for src, series in zip(sources, other.series, strict=True):
        ans.update_source(src, dict(series.data))
        np.testing.assert_array_equal(src.data["v"], series.data["v"])
    np.testing.assert_array_equal(central["bloc_dependency"].values, results)
    for series, kept in zip(first.series, drawn, strict=True):
        for k, v in kept.items():
            np.testing.assert_array_equal(np.asarray(series.data[k]), v)


def test_an_edit_patches_the_charts_data():
    """Another level of a measure patches the charts' sources in place: no source is
    replaced (its figure's legend would be rebuilt in the browser)."""
    from bokeh.document import Document
    from bokeh.document.events import ColumnDataChangedEvent, ColumnsPatchedEvent

    view = _live_focused()
    doc = Document()
    for pane in view.charts.objects:
        doc.add_root(pane.object)
    events: list = []
    doc.on_change(lambda e: events.append(e))
    view.store.policy.set("floor", floor=0.5 * view.store.policy.value("floor", "floor"))
    assert events
    assert not [e for e in events if isinstance(e, ColumnDataChangedEvent)]
    assert all(isinstance(e, ColumnsPatchedEvent) for e in events)


def test_an_edit_sends_the_table_payers_and_chart_data_in_one_held_message(monkeypatch):
    """On a served page the edited scenario's table, payers and charts' new data are set
    with the document held (one message, drawn by the browser in one frame); a rest that
    draws new figures is not held (BokehJS failed on a held message replacing figures)."""
    import contextlib

    from bokeh.document import Document

    view = _live_focused()
    doc = Document()
    held: list[bool] = []
    log: list[tuple[str, bool]] = []

    @contextlib.contextmanager
    def hold(d=None, *args, **kwargs):
        assert d is doc
        held.append(True)
        try:
            yield
        finally:
            held.pop()

    monkeypatch.setattr(ans, "served_document", lambda: doc)
    monkeypatch.setattr(pn.io, "hold", hold)
    for pane in ("table", "payers"):
        getattr(view, pane).param.watch(
            lambda e, n=pane: log.append((n, bool(held))), "object", onlychanged=False
        )
    update = ans.update_source
    monkeypatch.setattr(
        ans, "update_source", lambda s, d: (log.append(("chart", bool(held))), update(s, d))
    )
    store = view.store
    store.policy.set("floor", floor=0.7 * store.policy.value("floor", "floor"))
    ctx = view._context()
    specs = ans.build_charts(ctx, ans.LIVE, store.info, view._live)
    view._live_specs = (ctx["ds"], ctx["stage"], specs)
    view.table.object = view.payers.object = ""  # so that both are set again
    log.clear()
    view._render_live_rest(ctx, view._live_gen)
    assert {n for n, _h in log} == {"table", "payers", "chart"}
    assert all(h for _n, h in log), log
    # charts that look different (new figures): nothing held
    view._live_specs = (ctx["ds"], ctx["stage"], specs)
    view._chart_looks = []
    view.table.object = view.payers.object = ""
    log.clear()
    figs = [p.object for p in view.charts.objects]
    view._render_live_rest(ctx, view._live_gen)
    assert [p.object for p in view.charts.objects] != figs
    assert {n for n, _h in log} == {"table", "payers"}
    assert not any(h for _n, h in log), log
