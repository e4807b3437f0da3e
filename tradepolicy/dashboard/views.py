"""The dashboard's views: ``param``-based :class:`~panel.viewable.Viewer` classes that read
from one :class:`~tradepolicy.dashboard.store.DashboardStore` and hold no data of their own."""

from __future__ import annotations

import functools
import html
import importlib.util
import io
import logging
import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import panel as pn
import param
from panel.viewable import Viewer

from tradepolicy import regions as region_table
from tradepolicy.dashboard import indicators as ind
from tradepolicy.dashboard.charts import GroupedBars, StackedShares, TradeHeatmap, WelfareChart
from tradepolicy.dashboard.editor import MeasureEditor
from tradepolicy.dashboard.labels import html_frame, mark_regions
from tradepolicy.dashboard.markets import TARGET_LINES, market_info
from tradepolicy.dashboard.panes import TextPane
from tradepolicy.dashboard.persist import ShareLink
from tradepolicy.dashboard.store import (
    CURRENT,
    MAX_COMPARE,
    DashboardStore,
    Outcome,
    draws_supported,
)
from tradepolicy.measures import MEASURES

log = logging.getLogger(__name__)

TARGETS = {
    "60% (G7 2030 aim)": 0.60,
    "50% (G7 ambition)": 0.50,
    "65% (EU CRMA benchmark)": 0.65,
}

CSS = """
.tp-kpis { display: grid; grid-template-columns: repeat(auto-fit, minmax(118px, 1fr));
  gap: 8px; width: 100%; }
.tp-kpi { border: 1px solid #d9dee5; border-radius: 8px; padding: 5px 10px; background: #fff;
  min-width: 0; overflow-wrap: anywhere; }
.tp-kpi:first-child { grid-column: span 2; border-color: #1f4e79; }
.tp-kpi .t { font-size: 12px; line-height: 1.25; color: #4a5560; }
.tp-kpi .v { font-size: 21px; font-weight: 600; color: #102a43; line-height: 1.3;
  overflow-wrap: normal; }
.tp-kpi .v [data-kpi-value] { white-space: nowrap; }
.tp-kpi .u { font-size: 13px; font-weight: 400; color: #4a5560; white-space: nowrap; }
.tp-kpi .d { font-size: 11.5px; line-height: 1.3; color: #4a5560; }
.tp-kpi .tp-region, .tp-kpi .tp-regions { text-decoration: underline dotted #9aa5b1;
  cursor: help; }
.tp-kpi .up { color: #b03a2e; } .tp-kpi .down { color: #1e7b4d; }
.tp-kpi .r { font-size: 12px; color: #6b4fa0; }
.tp-kpi.na .v { color: #9aa5b1; }
.tp-kpi .met { color: #1e7b4d; font-weight: 600; }
.tp-kpi .unmet { color: #b03a2e; font-weight: 600; }
.tp-kpi .w { color: #b7791f; font-size: 15px; cursor: help; }
.tp-kpi-warnings { margin-top: 8px; padding: 6px 12px; border: 1px solid #e0b252;
  border-radius: 8px; background: #fff8e6; font-size: 12px; color: #5c4400; }
.tp-kpi-warnings ul { margin: 2px 0 0 0; padding-left: 18px; }
"""

#: the "updating…" badge's look (a pill over the corner or border of what it marks, no layout
#: shift), shown after a short delay (an update that comes at once does not flicker)
_BADGE = """z-index: 2; padding: 0 8px; border: 1px solid #e0b252; border-radius: 9px;
  background: #fff8e6; color: #5c4400; font-size: 11.5px; font-weight: normal; line-height: 16px;
  white-space: nowrap; opacity: 0; animation: tp-show 0.2s ease-in 0.25s forwards;"""
#: what is marked fades after the same delay
_FADE = "animation: tp-fade 0.2s ease-in 0.25s forwards;"
_KEYFRAMES = """
@keyframes tp-fade { to { opacity: 0.35; } }
@keyframes tp-show { to { opacity: 1; } }
"""
#: KPI cards whose new numbers are being solved (:func:`updating_html`): the values fade and
#: the badge shows over the cards' top right corner
UPDATING_CSS = f"""
.tp-updating {{ position: relative; }}
.tp-updating [data-kpi] .v {{ {_FADE} }}
.tp-updating-note {{ position: absolute; top: -9px; right: 8px; {_BADGE} }}
{_KEYFRAMES}"""
#: the badge's text, and its hover text
UPDATING_TEXT = "updating…"
UPDATING_TITLE = (
    "These numbers are those of the previous settings: the numbers of the settings shown are "
    "being solved and replace them when ready."
)


def updating_html(cards: str) -> str:
    """KPI cards (``kpi_html``) marked as out of date while their new numbers are solved: a
    wrapper with ``data-kpi-updating`` (for tests) that fades the values and shows an
    "updating…" badge. The badge is outside every ``[data-kpi]`` card and the cards' text is
    unchanged, so that what reads the cards' text (tests, ``benchmarks/bench_dashboard*.py``)
    sees a change only when the new numbers come. Empty cards stay empty."""
    if not cards:
        return cards
    return (
        '<div class="tp-updating" data-kpi-updating>'
        f'<span class="tp-updating-note" role="status" title="{html.escape(UPDATING_TITLE)}">'
        f"{UPDATING_TEXT}</span>{cards}</div>"
    )


#: the attribute of a pane's element (a table's, a chart figure's) while numbers of the
#: edited scenario it shows are those of the previous settings, their replacement being
#: solved (:func:`mark_updating`); an attribute, not a class: BokehJS lays the whole page out
#: again for each change of a model's ``css_classes``, not for its ``html_attributes``
UPDATING_ATTR = "data-live-updating"
_MARKED = f":host([{UPDATING_ATTR}])"
#: the class of a line of words under a table row, across the columns after the first (a
#: row's validity warnings; its text starts right of the first column, where the badge below
#: goes): with ``live-note`` under the edited scenario's row
ROW_NOTE_CLASS = "tp-row-note"
#: a table pane marked (:data:`UPDATING_ATTR`): the edited scenario's row (``tr.live``, the
#: last) and its note fade but for its label, and the badge shows just below that label (the
#: table keeps room for it below, and a note under the row starts right of it: nothing is
#: covered, nothing moves)
UPDATING_ROWS_CSS = f"""
{_MARKED} tr.live td:not(:first-child), {_MARKED} tr.live-note td {{ {_FADE} }}
{_MARKED} tr.live td:first-child {{ position: relative; }}
{_MARKED} tr.live td:first-child::after {{ content: "{UPDATING_TEXT}";
  position: absolute; left: 4px; top: 100%; margin-top: 2px; {_BADGE} }}
table:has(tr.live) {{ margin-bottom: 20px; }}
{_KEYFRAMES}"""
#: a Bokeh figure marked (:data:`UPDATING_ATTR`; a stylesheet of the figure itself): the
#: figure fades (less than numbers do: most of its lines stay right), and the badge shows in
#: its bottom right corner, under the legend and right of the x axis (titles can be long)
UPDATING_FIGURE_CSS = f"""
{_MARKED} > * {{ animation: tp-fade-figure 0.2s ease-in 0.25s forwards; }}
{_MARKED}::after {{ content: "{UPDATING_TEXT}"; position: absolute; bottom: 4px; right: 8px;
  {_BADGE} }}
@keyframes tp-fade-figure {{ to {{ opacity: 0.5; }} }}
{_KEYFRAMES}"""


def mark_updating(pane: TextPane | pn.pane.Bokeh, updating: bool) -> None:
    """Mark ``pane`` (a table pane with :data:`UPDATING_ROWS_CSS`, or a Bokeh pane whose
    figure has :data:`UPDATING_FIGURE_CSS`) as updating or not: the :data:`UPDATING_ATTR` of
    its element (of its figure's) is set or removed, a small patch (what it shows is not
    sent again, the page is not laid out again); no message when unchanged."""
    holder = pane.object if isinstance(pane, pn.pane.Bokeh) else pane
    attrs = {k: v for k, v in holder.html_attributes.items() if k != UPDATING_ATTR}
    if updating:
        attrs[UPDATING_ATTR] = ""
    if attrs != holder.html_attributes:
        holder.html_attributes = attrs


class MarkedCards:
    """A pane of KPI cards (``css_class``, with the stylesheet ``css``), marked as updating
    (:func:`updating_html`) while their new numbers are solved; ``cards`` are the last
    result's cards, without the mark."""

    def __init__(self, css: str, css_class: str) -> None:
        self.pane = TextPane(
            "",
            sizing_mode="stretch_width",
            stylesheets=[css, UPDATING_CSS],
            css_classes=[css_class],
        )
        self.cards = ""

    def show(self, updating: bool, cards: str | None = None) -> None:
        """Show ``cards`` (default: the last ones), marked when ``updating`` (no message when
        what is shown is unchanged)."""
        if cards is not None:
            self.cards = cards
        self.pane.object = updating_html(self.cards) if updating else self.cards


#: plain help on the controls outside the measure cards (the ⓘ beside a label, or the
#: tooltip of a button)
HELP: dict[str, str] = {
    "market": "The market or value chain shown. Every measure starts switched off (the "
    "baseline); saved scenarios are kept per market.",
    "stage": "The stage of the value chain whose numbers every view shows. It does not move "
    "any measure: each measure card says which stage it acts on.",
    "target": "The largest share of its use the bloc may take from one supplier outside it. "
    "The dependence KPI says whether the scenario meets it; the charts draw it as a line.",
    "draws": "How many sets of elasticities are drawn for the 5–95% ranges (used when "
    "Uncertainty ranges is ticked) in the one-year views; the 2030 tab sets its own. More "
    "draws give steadier ranges; each change takes longer.",
    "save_name": "A name for the current settings (letters, digits, '_', '-' or '.'); it "
    "appears in Compare scenarios and is the scenario's name in a downloaded TOML file.",
    "save": "Keep the current settings under this name, to compare them with other options "
    "in the Compare scenarios tab.",
    "sets": "Scenario sets shipped with this market (e.g. the G7 options). Loading one adds "
    "its scenarios to the list you can compare.",
    "compare": f"Pick up to {MAX_COMPARE} saved scenarios to put side by side with the "
    "baseline: the options table, the charts and who pays follow this choice.",
    "csv": "The compared scenarios as one tidy table (market, scenario, region, variable, "
    "value, units), with the options table and who pays, for a spreadsheet.",
    "netcdf": "The full results of the compared scenarios as a netCDF file "
    "(tradepolicy.open_results reads it back).",
    "brief": "A policy brief on the compared scenarios: the options table, who pays, charts "
    "and validity warnings.",
}


def _num(x: float, digits: int = 1, sign: bool = False) -> str:
    if x is None or not math.isfinite(x):
        return "—"
    if abs(x) < 0.5 * 10**-digits:
        x = 0.0
    return f"{x:+,.{digits}f}" if sign else f"{x:,.{digits}f}"


def _price_digits(x: float) -> int:
    return 0 if abs(x) >= 1000 else 1 if abs(x) >= 10 else 2


def kpi_html(
    kpis: dict[str, ind.Kpi] | None, keys: Sequence[str], regions: Sequence[str] | None = None
) -> str:
    """KPI cards as HTML; every card carries ``data-kpi=<key>`` for tests and benchmarks, and
    a card whose scenario has validity warnings a ``⚠`` mark (``data-kpi-warning``) with the
    text; the warnings are spelled out once under the cards (``tp-kpi-warnings``). The first
    card is the wide one (the dependence). Region names (of ``regions``, default every region
    of the regions table) carry their code on hover."""
    cards = []
    titles = {
        "club_price": "Consumer price, club",
        "outside_price": "Consumer price, outside the club",
        "budget_cost": ind.BUDGET_TITLE,
        "world_welfare": "World welfare change",
        "dependence": "Dependence of the bloc on one outside supplier",
    }
    warned: list[str] = []
    for key in keys:
        k = None if kpis is None else kpis.get(key)
        if k is None or not math.isfinite(k.value):
            title = html.escape(k.title if k is not None else titles.get(key, key))
            cards.append(
                f'<div class="tp-kpi na" data-kpi="{key}"><div class="t">{title}</div>'
                '<div class="v" data-kpi-value>—</div><div class="d">not available</div></div>'
            )
            continue
        label = f' <span class="u">{mark_regions(k.label, regions)}</span>' if k.label else ""
        if k.unit == "%":
            value = _num(k.value, 1)
            change = f"baseline {_num(k.base, 1)}%"
        elif key.endswith("price"):
            digits = _price_digits(k.value)
            value = _num(k.value, digits)
            pct = k.change_pct
            cls = "up" if pct > 0.05 else "down" if pct < -0.05 else ""
            change = (
                f'<span class="{cls}">{_num(pct, 1, sign=True)}%</span> vs baseline '
                f"{_num(k.base, digits)}"
            )
        else:
            value = _num(k.value, 1, sign=key == "world_welfare")
            change = ""
        if k.status:
            cls = "met" if k.status.startswith("meets") else "unmet"
            change += f' · <span class="{cls}" data-kpi-status>{html.escape(k.status)}</span>'
        rng = (
            f'<div class="r">90% range {_num(k.lo, 1)} – {_num(k.hi, 1)}</div>'
            if k.has_range
            else ""
        )
        warn = ""
        if k.warnings:
            text = html.escape("; ".join(k.warnings))
            warn = f'<span class="w" data-kpi-warning title="{text}">⚠</span> '
            warned.extend(w for w in k.warnings if w not in warned)
        cards.append(
            f'<div class="tp-kpi" data-kpi="{key}"><div class="t">{warn}'
            f"{html.escape(k.title)}</div>"
            f'<div class="v"><span data-kpi-value>{value}</span> '
            f'<span class="u">{html.escape(k.unit)}</span>{label}</div>'
            f'<div class="d">{change}</div>{rng}'
            f'<div class="d">{_detail_html(key, k.detail, regions)}</div></div>'
        )
    notes = ""
    if warned:
        items = "".join(f"<li>{html.escape(w)}</li>" for w in warned)
        notes = (
            '<div class="tp-kpi-warnings" data-kpi-warnings><b>⚠ Read these numbers with care:'
            f"</b><ul>{items}</ul></div>"
        )
    return f'<div class="tp-kpis">{"".join(cards)}</div>{notes}'


#: KPI cards whose detail is a list of regions: shown as "over N regions", the list (full
#: names and codes) on hover, so that the KPI strip stays one row high on a laptop
LISTED = ("club_price", "outside_price")


def _detail_html(key: str, detail: str, regions: Sequence[str] | None) -> str:
    """A KPI card's detail line as HTML: region names with their code on hover; for the
    cards in :data:`LISTED` the count of regions, the list on hover."""
    if key not in LISTED or not detail or regions is None:
        return mark_regions(detail, regions)
    codes = {region_table.name(str(r)): str(r) for r in regions}
    names = detail.split(", ")
    if not all(n in codes for n in names):  # not a list of the market's regions
        return mark_regions(detail, regions)
    listed = ", ".join(f"{n} ({codes[n]})" for n in names)
    count = f"{len(names)} region{'s' if len(names) > 1 else ''}"
    return f'averaged over <span class="tp-regions" title="{html.escape(listed)}">{count}</span>'


def _fmt_table(df: pd.DataFrame, signed: bool = False) -> pd.DataFrame:
    """Numbers as readable strings (thousands separators, one decimal, signs on changes)."""
    out = df.copy().astype(object)
    for col in df.columns:
        if df[col].dtype.kind != "f":
            continue
        sign = signed or "Δ" in col
        digits = 2 if ("price" in col and df[col].abs().max() < 10) else 1
        out[col] = [_num(v, digits, sign=sign) for v in df[col]]
    return out


def _fmt_options(df: pd.DataFrame) -> pd.DataFrame:
    """The options table (:func:`indicators.comparison_table`) as readable strings: shares
    with one decimal, money with one decimal and a sign where it is a gain or loss."""
    out = df.copy().astype(object)
    for col in df.columns:
        if df[col].dtype.kind != "f":
            continue
        sign = col.startswith(("Points", "Foreign", "World"))
        out[col] = [_num(v, 1, sign=sign) for v in df[col]]
    if "Dependence %" in out and "Largest outside supplier" in out:  # "40.5% Malaysia"
        dep = [
            f"{d}% {s}" if d != "—" else "—"
            for d, s in zip(out["Dependence %"], out["Largest outside supplier"], strict=True)
        ]
        out = out.drop(columns=["Largest outside supplier"])
        out["Dependence %"] = dep
        out = out.rename(columns={"Dependence %": "Dependence (largest outside supplier)"})
    return out.rename(columns={"⚠ Validity": "⚠"})


def _when_shown(update: Callable[..., None]) -> Callable[..., None]:
    """An update that a hidden view (a tab not shown, ``shown`` False) skips and runs once
    it is shown again: a served page then spends no time on charts nobody sees."""

    @functools.wraps(update)
    def run(self: _StoreView) -> None:
        if not self.shown:
            self._stale = True
            return
        self._stale = False
        update(self)

    return run


def _on_event_loop(update: Callable[..., None]) -> Callable[..., None]:
    """An update that sets the models of Bokeh charts already on the page runs on the
    server's event loop: Bokeh lets only the loop, holding the document's lock, change a
    served document (a served session's events are handled there, its solves on solve
    threads: :mod:`tradepolicy.dashboard.jobs`). From another thread the update is scheduled
    on the loop; elsewhere (the loop, a notebook, tests) it runs at once."""

    @functools.wraps(update)
    def run(self: _StoreView, *args: Any) -> None:
        doc = pn.state.curdoc
        loop_thread = pn.state._thread_id if doc is not None else None
        if doc is None or doc.session_context is None or loop_thread is None:
            update(self, *args)
        elif threading.get_ident() == loop_thread:
            update(self, *args)
        else:
            pn.state.execute(functools.partial(update, self, *args), schedule=True)

    return run


class _StoreView(Viewer):
    store = param.ClassSelector(class_=DashboardStore)
    shown = param.Boolean(True, doc="On screen (False: a hidden tab; see _when_shown)")
    _stale = False

    @param.depends("shown", watch=True)
    def _catch_up(self) -> None:
        update = getattr(self, "_update", None)
        if self.shown and self._stale and update is not None:
            update()

    @property
    def _store(self) -> DashboardStore:
        """``store``, checked: every view is made with one (param types it as optional)."""
        if self.store is None:
            raise RuntimeError(f"{type(self).__name__} was made without a DashboardStore")
        return self.store

    @property
    def info(self):
        return self._store.info


class PolicyEditor(_StoreView):
    """Sidebar: market, dependency target, uncertainty and every measure's controls."""

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        store, cfg = self._store, self._store.policy
        titles = {market_info(ref).title: mid for mid, ref in store.markets.items()}
        self.market = pn.widgets.Select(
            label="Market",
            options=titles,
            value=store.market,
            css_classes=["tp-market"],
            description=HELP["market"],
        )
        self.market.param.watch(lambda e: setattr(store, "market", e.new), "value")
        self._syncing = False  # widgets being set from the store: their events are not choices
        self.stage = pn.widgets.Select(
            label="Stage shown (every view follows it)",
            options={},
            visible=False,
            css_classes=["tp-stage"],
            description=HELP["stage"],
        )

        def pick_stage(event: Any) -> None:
            if not self._syncing and event.new is not None:
                store.stage = event.new

        self.stage.param.watch(pick_stage, "value")
        self.target = pn.widgets.Select(
            label="Dependence target (largest share)",
            options=dict(TARGETS),
            description=HELP["target"],
        )
        self.target.param.watch(lambda e: setattr(store, "target", e.new), "value")
        ok = draws_supported()
        self.uncertainty = pn.widgets.Checkbox.from_param(
            store.param.uncertainty,
            label="Uncertainty ranges",
            disabled=not ok,
            css_classes=["tp-uncertainty"],
        )
        self.draws = pn.widgets.IntInput.from_param(
            store.param.draws,
            label="Draws for ranges",
            width=110,
            disabled=not ok,
            description=HELP["draws"],
        )
        note = (
            "Tick <i>Uncertainty ranges</i> to show 5–95% ranges over elasticity draws "
            "(slower: every change is solved once per draw)."
            if ok
            else "Ranges need Monte Carlo draws, not available in this version."
        )
        self.units_note = TextPane("", margin=(0, 10), css_classes=["tp-units"])
        self.members = pn.widgets.MultiChoice.from_param(
            cfg.param.members,
            label="Club members",
            description="The regions acting together; club presets start from them.",
            css_classes=["tp-members"],
            solid=False,
        )
        self.club = pn.Card(
            self.members,
            pn.widgets.Checkbox.from_param(cfg.param.free_trade, label="Free trade among members"),
            title="Club",
            sizing_mode="stretch_width",
            margin=(4, 0),
        )
        self.measures = MeasureEditor(store=store)
        self._layout = pn.Column(
            self.market,
            self.stage,
            self.units_note,
            pn.Row(self.target, sizing_mode="stretch_width"),
            pn.Row(self.uncertainty, self.draws, align="center"),
            TextPane(f"<small>{note}</small>", margin=(0, 10)),
            self.club,
            TextPane(
                "<b>Measures</b> <small>(add, then tune; switch off to compare)</small>",
                margin=(8, 10, 0, 10),
            ),
            self.measures,
            sizing_mode="stretch_width",
        )
        self._on_market()

    @param.depends("store.info", watch=True)
    def _on_market(self) -> None:
        info = self.info
        if info is None:
            return
        self.market.value = info.id
        stages = {name: sid for sid, name in info.stages.items()}
        self._syncing = True
        try:
            self.stage.options = stages
            self.stage.value = info.stage
            self.stage.visible = bool(stages)
        finally:
            self._syncing = False
        options = dict(TARGETS)
        if info.target not in options.values():
            options[f"{info.target:.0%} (scenario set target)"] = info.target
        self.target.options = options
        self.target.value = self._store.target
        chain = ""
        if info.chain is not None:
            target = info.stages[info.target_stage]
            chain = (
                f"A value chain: {html.escape(info.stage_title)}; dependence is read at the "
                f"{html.escape(target)} stage. Each measure acts on the stage chosen in it. "
            )
        self.units_note.object = (
            f"<small>{chain}Prices in {info.price_label}, quantities in {info.quantity_label}, "
            f"money in {info.money_label}. Base price {info.base_price_display:,.2f} "
            f"{info.price_label}.</small>"
        )

    def __panel__(self) -> pn.viewable.Viewable:
        return self._layout


class StatusView(_StoreView):
    """Plain messages: settings that cannot be solved, no equilibrium, input warnings."""

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.alert = pn.pane.Alert(
            "",
            alert_type="danger",
            visible=False,
            sizing_mode="stretch_width",
            css_classes=["tp-status"],
            margin=(0, 10),
        )
        self.notes = pn.pane.Alert(
            "", alert_type="warning", visible=False, sizing_mode="stretch_width", margin=(0, 10)
        )
        self._update()

    @param.depends("store.current", watch=True)
    def _update(self) -> None:
        out = self._store.current
        errors: list[str] = []
        if out is not None:
            errors = list(out.problems) + list(out.failures.values())
        if errors:
            head = "**These settings cannot be shown.**" if out and out.problems else ""
            self.alert.object = "\n".join([head, *(f"- {html.escape(e)}" for e in errors)])
        self.alert.visible = bool(errors)
        notes = list(out.notes) if out is not None else []
        if notes:
            self.notes.object = "\n".join(f"- {html.escape(n)}" for n in notes)
        self.notes.visible = bool(notes)

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(self.alert, self.notes, sizing_mode="stretch_width", margin=0)


class KpiView(_StoreView):
    """The headline numbers of the current settings, updated on every change."""

    KEYS = ("dependence", "budget_cost", "world_welfare", "club_price", "outside_price")
    #: a value chain: the dependence at its target stage first, whatever stage is shown
    CHAIN_KEYS = ("target_dependence", *KEYS)

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._kpis = MarkedCards(CSS, "tp-kpi-pane")
        self.pane = self._kpis.pane
        self._update()
        # marked while the one-year solve of the settings shown is pending (and the strip is
        # on screen: hidden on the 2030 tab, it costs no message there)
        self._store.jobs.param.watch(self._mark, "pending")
        self.pane.param.watch(self._mark, "visible")

    def updating(self) -> bool:
        """Whether the cards show the previous settings' numbers while the one-year solve of
        the settings shown is pending (and the strip is on screen)."""
        return bool(self.pane.visible) and CURRENT in self._store.jobs.pending

    def _mark(self, *_events: Any) -> None:
        """The cards shown, marked as updating or not (no message when that is unchanged)."""
        self._kpis.show(self.updating())

    @param.depends("store.current", watch=True)
    def _update(self) -> None:
        out, info = self._store.current, self.info
        k = None
        keys: tuple[str, ...] = self.KEYS
        if out is not None and out.ds is not None and out.solved(CURRENT) and info is not None:
            cfg = self._store.policy
            k = ind.kpis(out.ds, CURRENT, info, list(cfg.members))
            if info.chain is not None:
                k, keys = self._chain_kpis(k, out, info)
        elif info is not None and info.chain is not None:
            keys = self.CHAIN_KEYS
        self._kpis.show(
            self.updating(), kpi_html(k, keys, None if info is None else list(info.regions))
        )

    @staticmethod
    def _chain_kpis(
        k: dict[str, ind.Kpi], out: Outcome, info: Any
    ) -> tuple[dict[str, ind.Kpi], tuple[str, ...]]:
        """A chain's KPIs: the dependence at the target stage (the magnets of ``ree_magnets``)
        first, named with its stage; the other cards are those of the stage shown."""
        names = info.stages
        shown = names[info.stage]
        target = info.target_stage
        k = {key: replace(v, title=f"{v.title} · {shown}") for key, v in k.items()}
        if "dependence" in k:  # the bloc is the target stage's: named once, on that card
            dep = k["dependence"]
            parts = [p for p in dep.detail.split("; ") if not p.startswith("bloc here:")]
            k["dependence"] = replace(dep, detail="; ".join(parts))
        ds = out.at_stage(target)
        if ds is not None:
            dep = ind.dependence_kpi(ds, CURRENT, info.for_stage(target))
            k["target_dependence"] = replace(
                dep, title=f"{dep.title} · {names[target]} (target stage)"
            )
        whole = out.chain_ds
        if whole is not None:  # budget and welfare add up over the stages (docs/chains.md)
            stacked = whole.rename(stage="commodity")
            c = str(stacked.commodity.values[0])
            point = stacked.tp.point().sel(scenario=CURRENT)
            totals = {
                "budget_cost": float(stacked.tp.budget_cost().sel(scenario=CURRENT).sum()),
                "world_welfare": float(point["welfare_change"].sum()),
            }
            for key, total in totals.items():
                text = f"whole chain {stacked.tp.money(total, c):+,.1f} {k[key].unit}"
                detail = "; ".join(x for x in (k[key].detail, text) if x)
                k[key] = replace(k[key], detail=detail)
        keys: tuple[str, ...] = ("target_dependence", *KpiView.KEYS)
        if info.stage == target:  # the stage shown is the target stage: one card
            keys = tuple(x for x in keys if x != "dependence")
        return k, keys

    def __panel__(self) -> pn.viewable.Viewable:
        return self.pane


#: the narrowest a chart gets beside another (px): on a 1600 px screen two charts share a row,
#: on a 1280 px screen each chart takes the whole width of the main column
CHART_MIN = 520


def chart_row(*figures: Any) -> pn.Row:
    """Bokeh figures side by side while each gets :data:`CHART_MIN` px, else one under the
    other, each as wide as the main column: a row that wraps. The rule sizing the figures is
    the row's (a figure's own stylesheets are replaced by the page's design); as an outer
    rule it wins over Bokeh's ``flex: 1 0 0px`` for a stretching figure."""
    return pn.Row(
        *(pn.pane.Bokeh(f, sizing_mode="stretch_width") for f in figures),
        sizing_mode="stretch_width",
        stylesheets=[
            ":host { flex-wrap: wrap !important; }"
            f".bk-Figure {{ flex: 1 1 {CHART_MIN}px; min-width: {CHART_MIN}px; }}"
        ],
        css_classes=["tp-charts"],
    )


def _targets(target: float) -> list[tuple[float, str]]:
    lines = [(v, lab) for v, lab in TARGET_LINES]
    if all(abs(v - target) > 1e-9 for v, _ in lines):
        lines.append((target, f"{target:.0%} target"))
    return lines


class BaselineView(_StoreView):
    """The market at a glance: prices, who supplies whom, dependency against the targets."""

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.header = TextPane("", sizing_mode="stretch_width")
        self._build()

    @param.depends("store.info", "store.baseline", "store.target", watch=True)
    @_when_shown
    @_on_event_loop
    def _build(self) -> None:
        info, out = self.info, self._store.baseline
        if info is None or out is None or out.ds is None:
            return
        ds = out.ds
        self.header.object = (
            "<details class='tp-about' style='font-size:13px;max-width:1100px;margin:2px 0'>"
            f"<summary><b style='font-size:15px'>{html.escape(info.stage_title)}</b> "
            "<small>(about this market)</small></summary>"
            f"{html.escape(info.market.spec.description)}</details>"
            f"<p style='font-size:13px;margin:4px 0' class='tp-bloc-base'><b>"
            f"{mark_regions(bloc_sentence(ds, 'baseline', info), info.regions)}</b></p>"
        )
        prices = pd.DataFrame(
            {
                "Producer price": ds["producer_price"]
                .sel(scenario="baseline")
                .isel(commodity=0)
                .to_series()
                / info.price_factor,
                "Consumer price": ds["consumer_price"]
                .sel(scenario="baseline")
                .isel(commodity=0)
                .to_series()
                / info.price_factor,
            }
        )
        prices.index = prices.index.astype(str)
        self.prices = GroupedBars(
            "Base prices by region", info.price_label, y_label="price", regions=True
        )
        self.prices.update(prices, ["Producer price", "Consumer price"], ["#1f77b4", "#ff7f0e"])
        self.heat = TradeHeatmap(info.quantity_label)
        self.heat.update(ind.trade_matrix(ds), info.regions)
        dep = ind.dependency_frame(ds, "baseline")
        self.dep = GroupedBars(
            f"{ind.PER_IMPORTER} (base)",
            "%",
            value_format="0.0",
            hlines=[(100 * v, lab) for v, lab in _targets(self._store.target)],
            y_label="share of consumption",
            regions=True,
        )
        self.dep.update(
            pd.DataFrame({"Base": 100 * dep["share_base"]}),
            ["Base"],
            notes=pd.DataFrame({"Base": "largest: " + dep["supplier_base"].map(_name)}),
        )
        self._layout[:] = [
            self.header,
            chart_row(self.prices.figure, self.dep.figure),
            chart_row(self.heat.figure),
        ]

    def _update(self) -> None:
        """Built once its tab is opened (a served page opens on another tab)."""
        self._build()

    @property
    def _layout(self) -> pn.Column:
        if not hasattr(self, "_col"):
            self._col = pn.Column(sizing_mode="stretch_width")
        return self._col

    def __panel__(self) -> pn.viewable.Viewable:
        return self._layout


def _name(code: Any) -> str:
    """A region's full name (the regions table); empty for no region."""
    return region_table.name(str(code)) if code else ""


def region_frame(table: pd.DataFrame, regions: Sequence[str]) -> pd.DataFrame:
    """The by-region table (:func:`indicators.region_table`, full names) formatted
    (:func:`_fmt_table`) as HTML with every region's code on hover (index and supplier)."""
    codes = {region_table.name(str(r)): str(r) for r in regions}
    out = _fmt_table(table)
    out.index = pd.Index([codes.get(str(n), str(n)) for n in out.index], name=out.index.name)
    supplier = [c for c in out.columns if str(c).startswith("Largest foreign supplier")]
    for col in supplier:
        out[col] = [codes.get(str(v), "—") if v != "—" else "—" for v in out[col]]
    return html_frame(out, supplier)


def caveats_html(measures: Sequence[Any]) -> str:
    """The caveat each active measure declares (``Measure.caveat``, from the registry), once
    per measure type, as a small list (empty when none)."""
    seen = list(dict.fromkeys(MEASURES[m.type].caveat for m in measures if m.type in MEASURES))
    items = "".join(f"<li>{html.escape(c)}</li>" for c in seen if c)
    if not items:
        return ""
    return (
        "<div class='tp-caveats' style='font-size:12px;color:#4a5560;max-width:1100px'>"
        f"<b>How to read these measures</b><ul style='margin:2px 0'>{items}</ul></div>"
    )


def bloc_sentence(ds: Any, scenario: str, info: Any) -> str:
    """The bloc figure in words (the dependence KPI), for headers."""
    k = ind.dependence_kpi(ds, scenario, info)
    if not math.isfinite(k.value):
        return ""
    text = f"{k.title}: {k.value:.1f}% {k.label}".rstrip()
    if k.status:
        text += f" ({k.status})"
    if k.detail:
        text += f"; {k.detail}"
    return text + "."


class ResultsView(_StoreView):
    """The current settings against the baseline: table, welfare, prices and the largest
    foreign supplier of each importer (the bloc's dependence is a KPI above)."""

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.description = TextPane("", sizing_mode="stretch_width")
        self.table = pn.pane.DataFrame(
            pd.DataFrame(),
            sizing_mode="stretch_width",
            css_classes=["tp-region-table"],
            escape=False,  # region names carry their code on hover (labels.html_frame)
        )
        self._col = pn.Column(sizing_mode="stretch_width")
        self._charts_for = None
        self._update()

    def _make_charts(self) -> None:
        info = self.info
        self.welfare = WelfareChart(info.money_label)
        self.consumer = GroupedBars(
            "Consumer price by region", info.price_label, y_label="price", regions=True
        )
        self.producer = GroupedBars(
            "Producer price by region", info.price_label, y_label="price", regions=True
        )
        self.dep = GroupedBars(
            f"{ind.PER_IMPORTER} (scenario)",
            "%",
            value_format="0.0",
            hlines=[(100 * v, lab) for v, lab in _targets(self._store.target)],
            y_label="share of consumption",
            regions=True,
        )
        self.shares = StackedShares(
            "Who supplies each region (scenario)", info.regions, _targets(self._store.target)
        )
        self._col[:] = [
            self.description,
            chart_row(self.welfare.figure),
            chart_row(self.consumer.figure, self.producer.figure),
            chart_row(self.dep.figure, self.shares.figure),
            TextPane("<b>By region</b>", margin=(10, 10, 0, 10)),
            self.table,
        ]
        self._charts_for = (info.id, info.stage, self._store.target)

    @param.depends("store.current", watch=True)
    @_when_shown
    @_on_event_loop
    def _update(self) -> None:
        out, info = self._store.current, self.info
        if info is None:
            return
        if self._charts_for != (info.id, info.stage, self._store.target):
            self._make_charts()
        if out is None or out.ds is None or not out.solved(CURRENT):
            self.description.object = (
                "<p><i>No results for these settings (see the message above).</i></p>"
            )
            self.table.object = pd.DataFrame()
            for chart in (self.consumer, self.producer, self.dep):
                chart.update(pd.DataFrame(), ["Baseline", "Scenario"])
            self.welfare.update(
                pd.DataFrame(columns=["region", "component", "value", "color", "total"]),
                [],
                pd.DataFrame(columns=["total", "lo", "hi"]),
            )
            self.shares.update(pd.DataFrame())
            return
        ds = out.ds
        active = self._store.policy.active()
        try:
            measures = list(self._store.current_scenario().measures)
        except Exception:  # settings already reported by the status view
            measures = []
        self.description.object = (
            "<p style='font-size:13px'><b>Measures on:</b> "
            + html.escape(", ".join(active) if active else "none (this is the baseline)")
            + "</p>"
            + caveats_html(measures)
        )
        wf = ind.welfare_frame(ds, CURRENT)
        self.welfare.update(wf, list(info.regions), ind.welfare_totals(ds, CURRENT))
        for chart, var in ((self.consumer, "consumer_price"), (self.producer, "producer_price")):
            pf = ind.price_frame(ds, CURRENT, info, var)
            frame = pd.DataFrame(
                {
                    "Baseline": pf["baseline"],
                    "Scenario": pf["scenario"],
                    "Scenario_lo": pf["lo"],
                    "Scenario_hi": pf["hi"],
                }
            )
            notes = pd.DataFrame(
                {"Scenario": pf["change_pct"].map(lambda v: f"{v:+.1f}% vs baseline")}
            )
            chart.update(frame, ["Baseline", "Scenario"], notes=notes)
        dep = ind.dependency_frame(ds, CURRENT)
        self.dep.update(
            pd.DataFrame(
                {
                    "Baseline": 100 * dep["share_base"],
                    "Scenario": 100 * dep["share"],
                    "Scenario_lo": 100 * dep["lo"],
                    "Scenario_hi": 100 * dep["hi"],
                }
            ),
            ["Baseline", "Scenario"],
            notes=pd.DataFrame(
                {
                    "Baseline": "largest: " + dep["supplier_base"].map(_name),
                    "Scenario": "largest: " + dep["supplier"].map(_name),
                }
            ),
        )
        self.shares.update(ind.supplier_shares(ds, CURRENT))
        self.table.object = region_frame(ind.region_table(ds, CURRENT, info), info.regions)

    def __panel__(self) -> pn.viewable.Viewable:
        return self._col


class SaveBar(_StoreView):
    """Save the current settings as a named scenario (always visible above the tabs); keeps
    the edited scenario in the page's address and the saved ones in the browser
    (:class:`~tradepolicy.dashboard.persist.ShareLink`)."""

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.name_input = pn.widgets.TextInput(
            label="",
            placeholder="scenario name",
            value=self._store.next_name(),
            width=160,
            css_classes=["tp-save-name"],
            description=HELP["save_name"],
        )
        self.title_input = pn.widgets.TextInput(
            label="",
            placeholder="in words (optional)",
            width=220,
            css_classes=["tp-save-title"],
            description="A few words shown beside the identifier (default: the measures "
            "switched on); they lead the scenario's description",
        )
        self.button = pn.widgets.Button(
            label="Save as scenario",
            color="primary",
            css_classes=["tp-save"],
            description=HELP["save"],
        )
        self.button.on_click(self._save)
        self.notice = TextPane("", css_classes=["tp-notice"], margin=(12, 10))
        self._store.param.watch(self._show_notice, "notice")
        self.share = ShareLink(store=self._store)
        self._show_notice()  # e.g. a link that could not be opened

    def _save(self, event: Any) -> None:
        if self._store.save_current(self.name_input.value, self.title_input.value):
            self.name_input.value = self._store.next_name()
            self.title_input.value = ""

    def _show_notice(self, *_events: Any) -> None:
        self.notice.object = f"<small>{html.escape(self._store.notice)}</small>"

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Row(
            self.name_input,
            self.title_input,
            self.button,
            self.notice,
            self.share,
            sizing_mode="stretch_width",
        )


def _download(callback: Callable[[], bytes], filename: str, label: str, css: str, hint: str = ""):
    def cb() -> io.BytesIO:
        return io.BytesIO(callback())

    return pn.widgets.FileDownload(
        callback=cb,
        filename=filename,
        label=label,
        color="default",
        embed=False,
        css_classes=[css],
        width=190,
        disabled=True,
        description=hint or None,
    )


class ComparisonView(_StoreView):
    """Saved scenarios side by side (up to six): manage, compare, download."""

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        s = self._store
        self.saved_table = pn.pane.DataFrame(pd.DataFrame(), sizing_mode="stretch_width")
        self.pick = pn.widgets.Select(label="Saved scenario", options=[], width=200)
        self.new_name = pn.widgets.TextInput(label="New name", width=180)
        self.rename_btn = pn.widgets.Button(label="Rename", width=90, css_classes=["tp-rename"])
        self.delete_btn = pn.widgets.Button(
            label="Delete", color="danger", width=90, css_classes=["tp-delete"]
        )
        self.edit_btn = pn.widgets.Button(label="Edit in controls", width=130)

        def rename(_event: Any) -> None:
            s.rename(self.pick.value, self.new_name.value)

        def delete(_event: Any) -> None:
            s.delete(self.pick.value)

        def edit(_event: Any) -> None:
            s.edit(self.pick.value)

        self.rename_btn.on_click(rename)
        self.delete_btn.on_click(delete)
        self.edit_btn.on_click(edit)
        self.sets = pn.widgets.Select(
            label="Shipped scenario set", options={}, width=240, description=HELP["sets"]
        )
        self.load_btn = pn.widgets.Button(label="Load set", width=100, css_classes=["tp-load-set"])

        def load_set(_event: Any) -> None:
            if self.sets.value:
                s.load_set(self.sets.value)

        self.load_btn.on_click(load_set)
        self.toml = _download(s.saved_toml, "scenarios.toml", "Download saved (TOML)", "tp-toml")
        self.toml.description = (
            "The saved scenarios as a scenario-set file: `tradepolicy run` reads it, and it can "
            "be uploaded here again"
        )
        self.upload = pn.widgets.FileInput(
            accept=".toml",
            multiple=False,
            css_classes=["tp-upload"],
            width=240,
            description="Add the scenarios of a scenario-set TOML file for this market",
        )

        self.file_notice = TextPane("", css_classes=["tp-file-notice"], margin=(0, 10))

        def upload(event: Any) -> None:
            if event.new:
                s.load_toml(event.new, self.upload.filename or "upload.toml")
                self.file_notice.object = f"<small>{html.escape(s.notice)}</small>"
                self.upload.clear()  # the same file may be uploaded again
                self.upload.value = None

        self.upload.param.watch(upload, "value")
        self.compare = pn.widgets.MultiChoice.from_param(
            s.param.compare,
            label=f"Compare (up to {MAX_COMPARE})",
            max_items=MAX_COMPARE,
            sizing_mode="stretch_width",
            css_classes=["tp-compare"],
            description=HELP["compare"],
        )
        self.status = pn.pane.Alert("", alert_type="danger", visible=False, margin=(0, 10))
        self.table = pn.pane.DataFrame(
            pd.DataFrame(), sizing_mode="stretch_width", css_classes=["tp-compare-table"]
        )
        self.csv = _download(
            s.comparison_csv, "comparison.csv", "Download CSV", "tp-csv", HELP["csv"]
        )
        self.nc = _download(
            s.comparison_netcdf, "comparison.nc", "Download netCDF", "tp-nc", HELP["netcdf"]
        )
        self.has_reports = importlib.util.find_spec("tradepolicy.reports") is not None
        label = "Download brief ({})" if self.has_reports else "Brief ({}): reports not installed"
        self.pdf = _download(
            lambda: s.comparison_brief("pdf"),
            "brief.pdf",
            label.format("PDF"),
            "tp-pdf",
            HELP["brief"],
        )
        self.docx = _download(
            lambda: s.comparison_brief("docx"),
            "brief.docx",
            label.format("DOCX"),
            "tp-docx",
            HELP["brief"],
        )
        self.pptx = _download(
            lambda: s.comparison_brief("pptx"), "brief.pptx", label.format("slides"), "tp-pptx"
        )
        self.charts = pn.Column(sizing_mode="stretch_width")
        self.heading = TextPane("", sizing_mode="stretch_width", margin=(10, 10, 0, 10))
        self.warnings = TextPane("", sizing_mode="stretch_width", margin=(0, 10))
        self.who_pays = pn.Column(sizing_mode="stretch_width", css_classes=["tp-who-pays-all"])
        self._layout = pn.Column(
            TextPane("<b>Saved scenarios</b>", margin=(4, 10, 0, 10)),
            self.saved_table,
            pn.Row(
                self.pick,
                self.new_name,
                self.rename_btn,
                self.delete_btn,
                self.edit_btn,
                align="end",
            ),
            pn.Row(self.sets, self.load_btn, align="end"),
            pn.Row(
                self.toml,
                TextPane("<small>Upload a scenario set (.toml):</small>", margin=(8, 4)),
                self.upload,
                align="center",
            ),
            self.file_notice,
            self.compare,
            self.status,
            self.heading,
            self.table,
            self.warnings,
            # five buttons are wider than the pane at 1280 px: they wrap, none is cut off
            pn.FlexBox(
                self.csv, self.nc, self.pdf, self.docx, self.pptx, css_classes=["tp-downloads"]
            ),
            self.charts,
            self.who_pays,
            sizing_mode="stretch_width",
        )
        self._on_market()
        self._on_saved()
        self._on_comparison()

    @param.depends("store.info", watch=True)
    def _on_market(self) -> None:
        info = self.info
        if info is None:
            return
        self.sets.options = {p.stem: str(p) for p in info.scenario_files}
        self.sets.value = str(info.scenario_files[0]) if info.scenario_files else None
        self.load_btn.disabled = not info.scenario_files
        self.toml.filename = f"{info.id}_scenarios.toml"
        files = ((self.csv, "csv"), (self.nc, "nc"), (self.pdf, "pdf"), (self.docx, "docx"))
        for w, ext in (*files, (self.pptx, "pptx")):
            w.filename = (
                f"{info.id}_comparison.{ext}" if ext in ("csv", "nc") else f"{info.id}_brief.{ext}"
            )

    @param.depends("store.saved", watch=True)
    def _on_saved(self) -> None:
        saved = self._store.saved
        self.pick.options = {f"{x.name} — {x.display}": x.name for x in saved}
        self.pick.value = saved[-1].name if saved else None
        for w in (self.rename_btn, self.delete_btn, self.edit_btn, self.toml):
            w.disabled = not saved
        rows = [
            {
                "Scenario": x.name,
                "In words": x.display,
                "From": x.origin,
                "Measures": len(x.scenario.measures),
                "Description": (x.scenario.description[:160] + "…")
                if len(x.scenario.description) > 160
                else x.scenario.description,
            }
            for x in saved
        ]
        self.saved_table.object = (
            pd.DataFrame(rows).set_index("Scenario")
            if rows
            else pd.DataFrame(
                {
                    "Saved scenarios": [
                        "No saved scenario yet: tune the measures, then 'Save as "
                        "scenario', or load a shipped set."
                    ]
                },
                index=pd.Index([""]),
            )
        )

    @param.depends("store.comparison", watch=True)
    def _on_comparison(self) -> None:
        out: Outcome | None = self._store.comparison
        info = self.info
        ready = out is not None and out.ds is not None
        for w in (self.csv, self.nc):
            w.disabled = not ready
        for w in (self.pdf, self.docx, self.pptx):
            w.disabled = not (ready and self.has_reports)
        errors = (
            []
            if out is None
            else list(out.problems) + [f"{n}: {m}" for n, m in out.failures.items()]
        )
        self.status.object = "\n".join(f"- {html.escape(e)}" for e in errors)
        self.status.visible = bool(errors)
        if out is None or out.ds is None or info is None:  # not ready, or no market
            self.table.object = pd.DataFrame()
            self.heading.object = ""
            self.warnings.object = ""
            self.who_pays[:] = []
            self.charts[:] = []
            return
        names = [n for n in out.scenarios if out.solved(n)] + [
            n for n in out.scenarios if not out.solved(n)
        ]
        ds = out.ds
        c = str(ds.commodity.values[0])
        unit = ds.tp.money_unit(c)
        share = ds.tp.target_share()
        bloc = ind.names(ds.tp.bloc(c))
        target = f"target {share:.0%}" if math.isfinite(share) else "no target"
        at = f" at the {info.stages[info.stage]} stage" if info.chain is not None else ""
        self.heading.object = (
            f"<b>Options side by side{html.escape(at)}</b> <small>— dependence of "
            f"{html.escape(info.bloc_name)} ({html.escape(bloc)}; {target}) on its largest "
            f"outside supplier, who pays ({html.escape(unit)}) and cost per percentage point "
            "of dependence removed. ⚠ marks options with validity warnings.</small>"
        )
        table = ind.comparison_table(ds, names)
        flagged = table["⚠ Validity"] != ""
        table["⚠ Validity"] = np.where(flagged, "⚠ below", "")
        self.table.object = _fmt_options(table)
        notes = "".join(
            f"<li><b>{html.escape(n)}</b>: {html.escape('; '.join(ind.scenario_warnings(ds, n)))}"
            "</li>"
            for n in table.index[flagged]
        )
        self.warnings.object = (
            f"<div class='tp-compare-warnings' style='font-size:12px;color:#5c4400;"
            "background:#fff8e6;border:1px solid #e0b252;border-radius:8px;padding:4px 10px'>"
            f"<b>⚠ Read these options with care:</b><ul style='margin:2px 0'>{notes}</ul></div>"
            if notes
            else ""
        )
        self.who_pays[:] = self._who_pays(ds, [n for n in names if out.solved(n)])
        self._charts(out, names)

    def _who_pays(self, ds: Any, names: list[str]) -> list[pn.viewable.Viewable]:
        """A who-pays table per option (``ds.tp.who_pays``), its warnings above it."""
        items: list[pn.viewable.Viewable] = [
            TextPane(
                "<b>Who pays, per option</b> <small>(cost to buyers and budget cost: > 0 is a "
                "cost; producers, revenue and rents, welfare: > 0 is a gain; (bloc) marks the "
                "target bloc)</small>",
                margin=(10, 10, 0, 10),
            )
        ]
        for n in names:
            warn = ind.scenario_warnings(ds, n)
            head = f"<b>{html.escape(n)}</b>"
            if warn:
                head += (
                    " <span class='tp-warning' style='color:#8a5a00'>⚠ "
                    f"{html.escape('; '.join(warn))}</span>"
                )
            items.append(TextPane(head, margin=(6, 10, 0, 10), css_classes=["tp-who-head"]))
            items.append(
                pn.pane.DataFrame(
                    _fmt_table(ind.who_pays_table(ds, n), signed=True),
                    sizing_mode="stretch_width",
                    css_classes=["tp-who-pays"],
                )
            )
        return items

    def _charts(self, out: Outcome, names: list[str]) -> None:
        info, ds = self.info, out.ds
        if ds is None:  # only called with solved results
            raise RuntimeError("comparison charts need solved results")
        solved = [n for n in names if out.solved(n)]
        c = str(ds.commodity.values[0])
        t = ind.options_table(ds, solved)
        opts = ["baseline", *solved]
        dep = GroupedBars(
            f"Dependence of {info.bloc_name} on its largest outside supplier",
            "%",
            value_format="0.0",
            hlines=[(100 * v, lab) for v, lab in _targets(self._store.target)],
        )
        frame = pd.DataFrame({"Dependence": 100 * t["dependence"].reindex(opts)})
        rng = [ds.tp.range("bloc_dependency", n, c) for n in opts]
        frame["Dependence_lo"] = [100 * r[0] if r else np.nan for r in rng]
        frame["Dependence_hi"] = [100 * r[1] if r else np.nan for r in rng]
        notes = pd.DataFrame(
            {
                "Dependence": [
                    region_table.name(s) if s else ""
                    for s in t["largest_outside_supplier"].reindex(opts).fillna("")
                ]
            },
            index=opts,
        )
        dep.update(frame, ["Dependence"], ["#d62728"], notes=notes)
        money = GroupedBars("Who pays, by option", ds.tp.money_unit(c))
        cols = {
            ind.BUDGET_TITLE: "budget_cost",
            "Cost to bloc buyers": "cost_to_bloc_buyers",
            "World welfare": "world_welfare",
        }
        frame = pd.DataFrame({k: t[v].reindex(solved) for k, v in cols.items()})
        for key, var, region in (
            (ind.BUDGET_TITLE, "budget_cost", "world"),
            ("World welfare", "welfare_change", "world"),
        ):
            r = [ds.tp.range(var, n, c, region) for n in solved]
            frame[f"{key}_lo"] = [ds.tp.money(x[0], c) if x else np.nan for x in r]
            frame[f"{key}_hi"] = [ds.tp.money(x[1], c) if x else np.nan for x in r]
        colours = [
            ds.tp.field(v)["colour"]
            for v in ("subsidy_cost", "consumer_surplus_change", "welfare_change")
        ]
        money.update(frame, list(cols), colours)
        dep.figure.xaxis.major_label_text_font_size = "11px"
        self.charts[:] = [chart_row(dep.figure, money.figure)]

    def __panel__(self) -> pn.viewable.Viewable:
        return self._layout


__all__ = [
    "ROW_NOTE_CLASS",
    "BaselineView",
    "ComparisonView",
    "KpiView",
    "PolicyEditor",
    "ResultsView",
    "SaveBar",
    "StatusView",
    "kpi_html",
    "mark_updating",
    "updating_html",
]
