"""The dashboard's views: ``param``-based :class:`~panel.viewable.Viewer` classes that read
from one :class:`~tradepolicy.dashboard.store.DashboardStore` and hold no data of their own."""

from __future__ import annotations

import html
import importlib.util
import io
import logging
import math
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import panel as pn
import param
from panel.viewable import Viewer

from tradepolicy.dashboard import indicators as ind
from tradepolicy.dashboard.charts import GroupedBars, StackedShares, TradeHeatmap, WelfareChart
from tradepolicy.dashboard.config import (
    BASES,
    COLLECTORS,
    DISPOSITIONS,
    PAYERS,
    SUBSIDY_KINDS,
)
from tradepolicy.dashboard.markets import TARGET_LINES, market_info
from tradepolicy.dashboard.store import (
    CURRENT,
    MAX_COMPARE,
    DashboardStore,
    Outcome,
    draws_supported,
)

log = logging.getLogger(__name__)

TARGETS = {
    "60% (G7 2030 aim)": 0.60,
    "50% (G7 ambition)": 0.50,
    "65% (EU CRMA benchmark)": 0.65,
}

CSS = """
.tp-kpis { display: grid; grid-template-columns: repeat(auto-fit, minmax(190px, 1fr));
  gap: 10px; width: 100%; }
.tp-kpi { border: 1px solid #d9dee5; border-radius: 8px; padding: 8px 12px; background: #fff; }
.tp-kpi .t { font-size: 12px; color: #4a5560; }
.tp-kpi .v { font-size: 24px; font-weight: 600; color: #102a43; white-space: nowrap; }
.tp-kpi .u { font-size: 13px; font-weight: 400; color: #4a5560; }
.tp-kpi .d { font-size: 12px; color: #4a5560; }
.tp-kpi .up { color: #b03a2e; } .tp-kpi .down { color: #1e7b4d; }
.tp-kpi .r { font-size: 12px; color: #6b4fa0; }
.tp-kpi.na .v { color: #9aa5b1; }
"""


def _num(x: float, digits: int = 1, sign: bool = False) -> str:
    if x is None or not math.isfinite(x):
        return "—"
    if abs(x) < 0.5 * 10**-digits:
        x = 0.0
    return f"{x:+,.{digits}f}" if sign else f"{x:,.{digits}f}"


def _price_digits(x: float) -> int:
    return 0 if abs(x) >= 1000 else 1 if abs(x) >= 10 else 2


def kpi_html(kpis: dict[str, ind.Kpi] | None, keys: Sequence[str]) -> str:
    """KPI cards as HTML; every card carries ``data-kpi=<key>`` for tests and benchmarks."""
    cards = []
    titles = {
        "club_price": "Consumer price, club",
        "outside_price": "Consumer price, outside the club",
        "fiscal_cost": "Fiscal cost (subsidies, offtakes, stocks)",
        "world_welfare": "World welfare change",
        "dependency": "Largest dependency on one supplier",
    }
    for key in keys:
        k = None if kpis is None else kpis.get(key)
        if k is None or not math.isfinite(k.value):
            cards.append(
                f'<div class="tp-kpi na" data-kpi="{key}"><div class="t">{titles[key]}</div>'
                '<div class="v" data-kpi-value>—</div><div class="d">not available</div></div>'
            )
            continue
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
        rng = (
            f'<div class="r">90% range {_num(k.lo, 1)} – {_num(k.hi, 1)}</div>'
            if k.has_range
            else ""
        )
        detail = html.escape(k.detail)
        cards.append(
            f'<div class="tp-kpi" data-kpi="{key}"><div class="t">{html.escape(k.title)}</div>'
            f'<div class="v"><span data-kpi-value>{value}</span> '
            f'<span class="u">{html.escape(k.unit)}</span></div>'
            f'<div class="d">{change}</div>{rng}<div class="d">{detail}</div></div>'
        )
    return f'<div class="tp-kpis">{"".join(cards)}</div>'


def _fmt_table(df: pd.DataFrame) -> pd.DataFrame:
    """Numbers as readable strings (thousands separators, one decimal, signs on changes)."""
    out = df.copy().astype(object)
    for col in df.columns:
        if df[col].dtype.kind != "f":
            continue
        signed = "Δ" in col or "Welfare" in col or "welfare" in col
        digits = 2 if ("price" in col and df[col].abs().max() < 10) else 1
        out[col] = [_num(v, digits, sign=signed) for v in df[col]]
    return out


class _StoreView(Viewer):
    store = param.ClassSelector(class_=DashboardStore)

    @property
    def info(self):
        return self.store.info


class PolicyEditor(_StoreView):
    """Sidebar: market, dependency target, uncertainty and every measure's controls."""

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        store, cfg = self.store, self.store.config
        titles = {market_info(ref).title: mid for mid, ref in store.markets.items()}
        self.market = pn.widgets.Select(
            label="Market", options=titles, value=store.market, css_classes=["tp-market"]
        )
        self.market.param.watch(lambda e: setattr(store, "market", e.new), "value")
        self.target = pn.widgets.Select(label="Dependency target", options=dict(TARGETS))
        self.target.param.watch(lambda e: setattr(store, "target", e.new), "value")
        ok = draws_supported()
        self.uncertainty = pn.widgets.Checkbox.from_param(
            store.param.uncertainty,
            label="Uncertainty ranges",
            disabled=not ok,
            css_classes=["tp-uncertainty"],
        )
        self.draws = pn.widgets.IntInput.from_param(
            store.param.draws, label="Monte Carlo draws", width=110, disabled=not ok
        )
        note = (
            "Ranges: 5–95% over elasticity draws."
            if ok
            else "Ranges need Monte Carlo draws, not available in this version."
        )
        w = self._w = {}

        def sl(name: str, label: str, **kw) -> pn.widgets.Widget:
            w[name] = pn.widgets.EditableFloatSlider.from_param(
                cfg.param[name], label=label, css_classes=[f"tp-{name}"], **kw
            )
            return w[name]

        def regions(name: str, label: str) -> pn.widgets.Widget:
            w[name] = pn.widgets.MultiChoice.from_param(
                cfg.param[name], label=label, css_classes=[f"tp-{name}"], solid=False
            )
            return w[name]

        def choice(name: str, label: str, options: dict[str, str]) -> pn.widgets.Widget:
            w[name] = pn.widgets.Select.from_param(
                cfg.param[name], label=label, options=options, css_classes=[f"tp-{name}"]
            )
            return w[name]

        def switch(name: str) -> pn.widgets.Widget:
            w[name] = pn.widgets.Switch.from_param(
                cfg.param[name], label="", css_classes=[f"tp-{name}"], width=40, margin=(8, 4)
            )
            return w[name]

        self.cards: dict[str, pn.Card] = {}

        def card(on: str, title: str, *body: pn.viewable.Viewable) -> pn.Card:
            sw = switch(on)
            c = pn.Card(
                *body,
                header=pn.Row(sw, pn.pane.HTML(f"<b>{title}</b>", margin=(10, 0))),
                collapsed=True,
                sizing_mode="stretch_width",
                margin=(4, 0),
                css_classes=[f"tp-card-{on}"],
            )
            sw.param.watch(lambda e, c=c: setattr(c, "collapsed", not e.new), "value")
            self.cards[on] = c
            return c

        self.units_note = pn.pane.HTML("", margin=(0, 10))
        self.club = pn.Card(
            regions("members", "Club members"),
            pn.widgets.Checkbox.from_param(cfg.param.free_trade, label="Free trade among members"),
            title="Club",
            sizing_mode="stretch_width",
            margin=(4, 0),
        )
        self.measures = pn.Column(
            card(
                "floor_on",
                "Price floor",
                sl("floor", "Floor level"),
                sl("levy_cap", "Levy cap (0 = none)"),
                choice("collector", "Who keeps the margin", COLLECTORS),
            ),
            card("tariff_on", "Tariff on non-members", sl("tariff_rate", "Tariff rate (%)")),
            card(
                "subsidy_on",
                "Price-gap subsidy",
                regions("subsidy_producers", "Producers covered"),
                sl("strike", "Strike"),
                choice("subsidy_kind", "Kind", SUBSIDY_KINDS),
                sl("upside_threshold", "Collar: claw-back above"),
                sl("upside_share", "Collar: share clawed back (%)"),
                choice("subsidy_payers", "Who pays", PAYERS),
            ),
            card(
                "restrict_on",
                "Export ban or quota",
                pn.widgets.Select.from_param(
                    cfg.param.restrict_exporter, label="Exporter", css_classes=["tp-exporter"]
                ),
                regions("restrict_destinations", "To destinations"),
                sl("restrict_quantity", "Export quota (0 = ban)"),
            ),
            card(
                "quota_on",
                "Import quota",
                regions("quota_importers", "Importers"),
                regions("quota_exporters", "From exporters"),
                sl("quota_quantity", "Quota (all covered pairs)"),
            ),
            card(
                "offtake_on",
                "Offtake",
                regions("offtake_sellers", "Sellers"),
                regions("offtake_buyers", "Buyers (split by consumption)"),
                sl("offtake_volume", "Volume"),
                sl("offtake_price", "Contract price"),
                choice("offtake_disposition", "Then", DISPOSITIONS),
            ),
            card(
                "release_on",
                "Stockpile release",
                regions("release_regions", "Releasing regions (split by consumption)"),
                sl("release_quantity", "Total release"),
            ),
            card(
                "cap_on",
                "Diversification cap",
                regions("cap_importers", "Importers"),
                sl("cap_share", "Largest share of one supplier (%)"),
                choice("cap_basis", "Measured on", BASES),
            ),
            card(
                "shock_on",
                "Supply shock",
                regions("shock_regions", "Regions hit"),
                sl("shock_fraction", "Capacity lost (%)"),
            ),
            sizing_mode="stretch_width",
            margin=0,
        )
        self._layout = pn.Column(
            self.market,
            self.units_note,
            pn.Row(self.target, sizing_mode="stretch_width"),
            pn.Row(self.uncertainty, self.draws, align="center"),
            pn.pane.HTML(f"<small>{note}</small>", margin=(0, 10)),
            self.club,
            pn.pane.HTML(
                "<b>Measures</b> <small>(switch on, then tune)</small>", margin=(8, 10, 0, 10)
            ),
            self.measures,
            sizing_mode="stretch_width",
        )
        self._on_market()

    _PRICE = ("floor", "levy_cap", "strike", "upside_threshold", "offtake_price")
    _QTY = ("restrict_quantity", "quota_quantity", "offtake_volume", "release_quantity")
    _LABELS: ClassVar[dict[str, str]] = {
        "floor": "Floor level",
        "levy_cap": "Levy cap (0 = none)",
        "strike": "Strike",
        "upside_threshold": "Collar: claw-back above",
        "offtake_price": "Contract price",
        "restrict_quantity": "Export quota (0 = ban)",
        "quota_quantity": "Quota (all covered pairs)",
        "offtake_volume": "Volume",
        "release_quantity": "Total release",
    }

    @param.depends("store.info", watch=True)
    def _on_market(self) -> None:
        info, cfg = self.info, self.store.config
        if info is None:
            return
        for name in (*self._PRICE, *self._QTY):
            unit = info.price_label if name in self._PRICE else info.quantity_label
            lo, hi = cfg.param[name].softbounds
            wd = self._w[name]
            wd.param.update(label=f"{self._LABELS[name]} ({unit})", start=lo, end=hi)
            wd.step = _step(hi)
        self.market.value = info.id
        options = dict(TARGETS)
        if info.target not in options.values():
            options[f"{info.target:.0%} (scenario set target)"] = info.target
        self.target.options = options
        self.target.value = self.store.target
        self.units_note.object = (
            f"<small>Prices in {info.price_label}, quantities in {info.quantity_label}, "
            f"money in {info.money_label}. Base price {info.base_price_display:,.2f} "
            f"{info.price_label}.</small>"
        )

    def __panel__(self) -> pn.viewable.Viewable:
        return self._layout


def _step(hi: float) -> float:
    if hi <= 0:
        return 1.0
    return float(10 ** (math.floor(math.log10(hi)) - 2))


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
        out = self.store.current
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

    KEYS = ("club_price", "outside_price", "fiscal_cost", "world_welfare", "dependency")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.pane = pn.pane.HTML(
            "", sizing_mode="stretch_width", stylesheets=[CSS], css_classes=["tp-kpi-pane"]
        )
        self._update()

    @param.depends("store.current", watch=True)
    def _update(self) -> None:
        out = self.store.current
        k = None
        if out is not None and out.solved(CURRENT):
            cfg = self.store.config
            k = ind.kpis(out.ds, CURRENT, self.info, list(cfg.members), self.store.target)
        self.pane.object = kpi_html(k, self.KEYS)

    def __panel__(self) -> pn.viewable.Viewable:
        return self.pane


def _targets(target: float) -> list[tuple[float, str]]:
    lines = [(v, lab) for v, lab in TARGET_LINES]
    if all(abs(v - target) > 1e-9 for v, _ in lines):
        lines.append((target, f"{target:.0%} target"))
    return lines


class BaselineView(_StoreView):
    """The market at a glance: prices, who supplies whom, dependency against the targets."""

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.header = pn.pane.HTML("", sizing_mode="stretch_width")
        self._build()

    @param.depends("store.info", "store.baseline", "store.target", watch=True)
    def _build(self) -> None:
        info, out = self.info, self.store.baseline
        if info is None or out is None or out.ds is None:
            return
        ds = out.ds
        self.header.object = (
            f"<h3 style='margin:4px 0'>{html.escape(info.title)}</h3>"
            f"<p style='font-size:13px;max-width:1100px'>"
            f"{html.escape(info.market.spec.description)}</p>"
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
        self.prices = GroupedBars("Base prices by region", info.price_label)
        self.prices.update(prices, ["Producer price", "Consumer price"], ["#1f77b4", "#ff7f0e"])
        self.heat = TradeHeatmap(info.quantity_label)
        self.heat.update(ind.trade_matrix(ds), info.regions)
        dep = ind.dependency_frame(ds, "baseline")
        self.dep = GroupedBars(
            "Dependency: top foreign supplier's share of consumption (base)",
            "%",
            value_format="0.0",
            hlines=[(100 * v, lab) for v, lab in _targets(self.store.target)],
        )
        self.dep.update(
            pd.DataFrame({"Base": 100 * dep["share_base"]}),
            ["Base"],
            notes=pd.DataFrame({"Base": "top foreign supplier: " + dep["supplier_base"]}),
        )
        self.dep.figure.xaxis.major_label_text_font_size = "11px"
        self._layout[:] = [
            self.header,
            pn.Row(
                pn.pane.Bokeh(self.prices.figure, sizing_mode="stretch_width"),
                pn.pane.Bokeh(self.dep.figure, sizing_mode="stretch_width"),
                sizing_mode="stretch_width",
            ),
            pn.pane.Bokeh(self.heat.figure, sizing_mode="stretch_width"),
        ]

    @property
    def _layout(self) -> pn.Column:
        if not hasattr(self, "_col"):
            self._col = pn.Column(sizing_mode="stretch_width")
        return self._col

    def __panel__(self) -> pn.viewable.Viewable:
        return self._layout


class ResultsView(_StoreView):
    """The current settings against the baseline: table, welfare, prices and dependency."""

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.description = pn.pane.HTML("", sizing_mode="stretch_width")
        self.table = pn.pane.DataFrame(
            pd.DataFrame(), sizing_mode="stretch_width", css_classes=["tp-region-table"]
        )
        self._col = pn.Column(sizing_mode="stretch_width")
        self._charts_for = None
        self._update()

    def _make_charts(self) -> None:
        info = self.info
        self.welfare = WelfareChart(info.money_label)
        self.consumer = GroupedBars("Consumer price by region", info.price_label)
        self.producer = GroupedBars("Producer price by region", info.price_label)
        self.dep = GroupedBars(
            "Top foreign supplier's share of consumption",
            "%",
            value_format="0.0",
            hlines=[(100 * v, lab) for v, lab in _targets(self.store.target)],
        )
        self.shares = StackedShares(
            "Who supplies each region (scenario)", info.regions, _targets(self.store.target)
        )
        bk = lambda f: pn.pane.Bokeh(f, sizing_mode="stretch_width")  # noqa: E731
        self._col[:] = [
            self.description,
            pn.Row(bk(self.welfare.figure), sizing_mode="stretch_width"),
            pn.Row(bk(self.consumer.figure), bk(self.producer.figure), sizing_mode="stretch_width"),
            pn.Row(bk(self.dep.figure), bk(self.shares.figure), sizing_mode="stretch_width"),
            pn.pane.HTML("<b>By region</b>", margin=(10, 10, 0, 10)),
            self.table,
        ]
        self._charts_for = (info.id, self.store.target)

    @param.depends("store.current", watch=True)
    def _update(self) -> None:
        out, info = self.store.current, self.info
        if info is None:
            return
        if self._charts_for != (info.id, self.store.target):
            self._make_charts()
        if out is None or not out.solved(CURRENT):
            self.description.object = (
                "<p><i>No results for these settings (see the message above).</i></p>"
            )
            self.table.object = pd.DataFrame()
            for chart in (self.consumer, self.producer, self.dep):
                chart.update(pd.DataFrame(), ["Baseline", "Scenario"])
            self.welfare.update(
                pd.DataFrame(columns=["region", "component", "value", "total"]),
                [],
                pd.DataFrame(columns=["total", "lo", "hi"]),
            )
            self.shares.update(pd.DataFrame())
            return
        ds = out.ds
        sc = ds["description"] if "description" in ds else None
        del sc
        active = self.store.config.active()
        self.description.object = (
            "<p style='font-size:13px'><b>Measures on:</b> "
            + html.escape(", ".join(active) if active else "none (this is the baseline)")
            + "</p>"
        )
        wf = ind.welfare_frame(ds, CURRENT)
        totals = (
            pd.DataFrame(
                {"total": ds["welfare_change"].sel(scenario=CURRENT).isel(commodity=0).to_series()}
            )
            / ind.MONEY
        )
        totals.index = totals.index.astype(str)
        totals["lo"] = totals["hi"] = np.nan
        if ind.has_draws(ds) and "welfare_change_quantiles" in ds:
            q = ds["welfare_change_quantiles"].sel(scenario=CURRENT).isel(commodity=0) / ind.MONEY
            totals["lo"] = q.sel(quantile=0.05).to_series().to_numpy()
            totals["hi"] = q.sel(quantile=0.95).to_series().to_numpy()
        self.welfare.update(wf, info.regions, totals)
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
                {"Baseline": "top: " + dep["supplier_base"], "Scenario": "top: " + dep["supplier"]}
            ),
        )
        self.shares.update(ind.supplier_shares(ds, CURRENT))
        self.table.object = _fmt_table(ind.region_table(ds, CURRENT, info, self.store.target))

    def __panel__(self) -> pn.viewable.Viewable:
        return self._col


class SaveBar(_StoreView):
    """Save the current settings as a named scenario (always visible above the tabs)."""

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.name_input = pn.widgets.TextInput(
            label="",
            placeholder="scenario name",
            value=self.store.next_name(),
            width=200,
            css_classes=["tp-save-name"],
        )
        self.button = pn.widgets.Button(
            label="Save as scenario", color="primary", css_classes=["tp-save"]
        )
        self.button.on_click(self._save)
        self.notice = pn.pane.HTML("", css_classes=["tp-notice"], margin=(12, 10))
        self.store.param.watch(self._show_notice, "notice")

    def _save(self, event: Any) -> None:
        if self.store.save_current(self.name_input.value):
            self.name_input.value = self.store.next_name()

    def _show_notice(self, event: Any) -> None:
        self.notice.object = f"<small>{html.escape(event.new)}</small>"

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Row(self.name_input, self.button, self.notice, sizing_mode="stretch_width")


def _download(callback: Callable[[], bytes], filename: str, label: str, css: str):
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
    )


class ComparisonView(_StoreView):
    """Saved scenarios side by side (up to six): manage, compare, download."""

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        s = self.store
        self.saved_table = pn.pane.DataFrame(pd.DataFrame(), sizing_mode="stretch_width")
        self.pick = pn.widgets.Select(label="Saved scenario", options=[], width=200)
        self.new_name = pn.widgets.TextInput(label="New name", width=180)
        self.rename_btn = pn.widgets.Button(label="Rename", width=90, css_classes=["tp-rename"])
        self.delete_btn = pn.widgets.Button(
            label="Delete", color="danger", width=90, css_classes=["tp-delete"]
        )
        self.edit_btn = pn.widgets.Button(label="Edit in controls", width=130)
        self.rename_btn.on_click(lambda e: s.rename(self.pick.value, self.new_name.value))
        self.delete_btn.on_click(lambda e: s.delete(self.pick.value))
        self.edit_btn.on_click(lambda e: s.edit(self.pick.value))
        self.sets = pn.widgets.Select(label="Shipped scenario set", options={}, width=240)
        self.load_btn = pn.widgets.Button(label="Load set", width=100, css_classes=["tp-load-set"])
        self.load_btn.on_click(lambda e: self.sets.value and s.load_set(self.sets.value))
        self.compare = pn.widgets.MultiChoice.from_param(
            s.param.compare,
            label=f"Compare (up to {MAX_COMPARE})",
            max_items=MAX_COMPARE,
            sizing_mode="stretch_width",
            css_classes=["tp-compare"],
        )
        self.status = pn.pane.Alert("", alert_type="danger", visible=False, margin=(0, 10))
        self.table = pn.pane.DataFrame(
            pd.DataFrame(), sizing_mode="stretch_width", css_classes=["tp-compare-table"]
        )
        self.csv = _download(s.comparison_csv, "comparison.csv", "Download CSV", "tp-csv")
        self.nc = _download(s.comparison_netcdf, "comparison.nc", "Download netCDF", "tp-nc")
        self.has_reports = importlib.util.find_spec("tradepolicy.reports") is not None
        label = "Download brief ({})" if self.has_reports else "Brief ({}): reports not installed"
        self.pdf = _download(
            lambda: s.comparison_brief("pdf"), "brief.pdf", label.format("PDF"), "tp-pdf"
        )
        self.docx = _download(
            lambda: s.comparison_brief("docx"), "brief.docx", label.format("DOCX"), "tp-docx"
        )
        self.charts = pn.Column(sizing_mode="stretch_width")
        self._layout = pn.Column(
            pn.pane.HTML("<b>Saved scenarios</b>", margin=(4, 10, 0, 10)),
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
            self.compare,
            self.status,
            self.table,
            pn.Row(self.csv, self.nc, self.pdf, self.docx),
            self.charts,
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
        for w, ext in ((self.csv, "csv"), (self.nc, "nc"), (self.pdf, "pdf"), (self.docx, "docx")):
            w.filename = (
                f"{info.id}_comparison.{ext}" if ext in ("csv", "nc") else f"{info.id}_brief.{ext}"
            )

    @param.depends("store.saved", watch=True)
    def _on_saved(self) -> None:
        saved = self.store.saved
        self.pick.options = [x.name for x in saved]
        self.pick.value = saved[-1].name if saved else None
        for w in (self.rename_btn, self.delete_btn, self.edit_btn):
            w.disabled = not saved
        rows = [
            {
                "Scenario": x.name,
                "From": "these controls" if x.source == "dashboard" else x.source[4:] + " set",
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
        out: Outcome | None = self.store.comparison
        info = self.info
        ready = out is not None and out.ds is not None
        for w in (self.csv, self.nc):
            w.disabled = not ready
        for w in (self.pdf, self.docx):
            w.disabled = not (ready and self.has_reports)
        errors = (
            []
            if out is None
            else list(out.problems) + [f"{n}: {m}" for n, m in out.failures.items()]
        )
        self.status.object = "\n".join(f"- {html.escape(e)}" for e in errors)
        self.status.visible = bool(errors)
        if not ready or info is None:
            self.table.object = pd.DataFrame()
            self.charts[:] = []
            return
        names = list(out.scenarios)
        members = list(self.store.config.members)
        table = ind.comparison_table(out.ds, names, info, members, self.store.target)
        self.table.object = _fmt_table(table)
        self._charts(out, names)

    def _charts(self, out: Outcome, names: list[str]) -> None:
        info, ds = self.info, out.ds
        solved = [n for n in names if out.solved(n)]
        one = ds.isel(commodity=0)
        # world welfare by scenario
        world = GroupedBars("World welfare change by scenario", info.money_label)
        wv = one["welfare_change"].sum("region").to_series() / ind.MONEY
        frame = pd.DataFrame({"World welfare": wv.reindex(solved)})
        if ind.has_draws(ds) and "welfare_change_draws" in ds:
            d = ds["welfare_change_draws"].isel(commodity=0).sum("region", skipna=False)
            frame["World welfare_lo"] = [
                ind._q(d.sel(scenario=n).values / ind.MONEY)[0] for n in solved
            ]
            frame["World welfare_hi"] = [
                ind._q(d.sel(scenario=n).values / ind.MONEY)[1] for n in solved
            ]
        world.update(frame, ["World welfare"], ["#1f4e79"])
        world.figure.xaxis.major_label_text_font_size = "11px"
        colors = ["#9e9e9e", "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]

        def by_region(var: str, scale: float, with_base: bool) -> pd.DataFrame:
            cols = (["baseline"] if with_base else []) + solved
            f = one[var].sel(scenario=cols).to_pandas().T / scale  # region × scenario
            f.index = f.index.astype(str)
            q = f"{var}_quantiles"
            if ind.has_draws(ds) and q in ds:
                qq = ds[q].isel(commodity=0)
                for n in solved:
                    f[f"{n}_lo"] = (qq.sel(scenario=n, quantile=0.05) / scale).to_series().values
                    f[f"{n}_hi"] = (qq.sel(scenario=n, quantile=0.95) / scale).to_series().values
            return f

        welfare = GroupedBars("Welfare change by region", info.money_label)
        welfare.update(by_region("welfare_change", ind.MONEY, False), solved, colors[1:])
        price = GroupedBars("Consumer price by region", info.price_label)
        pf = by_region("consumer_price", info.price_factor, True)
        price.update(pf[pf["baseline"].notna()], ["baseline", *solved], colors)
        dep = GroupedBars(
            "Top foreign supplier's share of consumption",
            "%",
            value_format="0.0",
            hlines=[(100 * v, lab) for v, lab in _targets(self.store.target)],
        )
        df = by_region("top_supplier_share", 0.01, True)
        dep.update(df[df["baseline"].notna()], ["baseline", *solved], colors)
        bk = lambda f: pn.pane.Bokeh(f, sizing_mode="stretch_width")  # noqa: E731
        self.charts[:] = [
            pn.Row(bk(world.figure), bk(welfare.figure), sizing_mode="stretch_width"),
            pn.Row(bk(price.figure), bk(dep.figure), sizing_mode="stretch_width"),
        ]

    def __panel__(self) -> pn.viewable.Viewable:
        return self._layout


__all__ = [
    "BaselineView",
    "ComparisonView",
    "KpiView",
    "PolicyEditor",
    "ResultsView",
    "SaveBar",
    "StatusView",
    "kpi_html",
]
