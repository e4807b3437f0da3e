"""Region labels in the dashboard (tradepolicy.dashboard.labels): full names from the regions
table everywhere, the code on hover; a legend or colour bar on every colour scale."""

from __future__ import annotations

import html
import re
from dataclasses import replace
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("panel")

from bokeh.core.property.vectorization import Field, Value
from bokeh.models import ColorBar, Legend

from tradepolicy import regions
from tradepolicy.dashboard import indicators as ind
from tradepolicy.dashboard.charts import (
    GroupedBars,
    StackedShares,
    TradeHeatmap,
    WelfareChart,
)
from tradepolicy.dashboard.labels import (
    WRAP,
    axis_label,
    html_frame,
    mark_regions,
    region_html,
    region_name,
)
from tradepolicy.dashboard.views import HELP, kpi_html, region_frame

TABLE = regions.table()
CODES = list(TABLE.index)


class _Spans(HTMLParser):
    """The text of an HTML fragment and the (title, text) of each ``tp-region`` span."""

    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.spans: list[tuple[str, str]] = []
        self._open: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "span" and "tp-region" in (a.get("class") or ""):
            self._open = a.get("title") or ""
            self.spans.append((self._open, ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "span":
            self._open = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._open is not None:
            title, text = self.spans[-1]
            self.spans[-1] = (title, text + data)


def parse(fragment: str) -> _Spans:
    p = _Spans()
    p.feed(fragment)
    p.close()
    return p


@pytest.mark.parametrize("code", CODES)
def test_every_region_is_named_in_full_and_wraps_on_whole_words(code):
    name = TABLE.loc[code, "name"]
    assert region_name(code) == name
    label = axis_label(code)
    lines = label.split("\n")
    assert " ".join(lines) == name  # wrapping only breaks lines, never words or text
    assert all(len(line) <= WRAP or " " not in line for line in lines)
    span = parse(region_html(code))
    assert span.spans == [(code, name)]


def test_wrapping_keeps_short_names_on_one_line():
    assert axis_label("CHN") == "China"
    assert axis_label("COD") == "Democratic\nRepublic of\nthe Congo"
    assert region_name("XXX") == "XXX"  # an unknown code shows as itself


def test_mark_regions_gives_each_full_name_its_code_and_keeps_the_text():
    text = "bloc here: United States, Republic of Korea; most lost: Rest of the world <5%"
    out = mark_regions(text)
    p = parse(out)
    assert "".join(p.text) == text  # nothing added or lost, "<" escaped
    assert "&lt;5%" in out
    assert p.spans == [
        ("USA", "United States"),
        ("KOR", "Republic of Korea"),
        ("ROW", "Rest of the world"),
    ]


def test_mark_regions_matches_whole_names_only_and_the_longest():
    # "Congo" alone is no region; inside "Democratic Republic of the Congo" the whole name wins
    text = "Chinatown; the Democratic Republic of the Congo; Indiana; India"
    p = parse(mark_regions(text))
    assert p.spans == [("COD", "Democratic Republic of the Congo"), ("IND", "India")]
    # limited to the market's regions: other names stay plain text
    assert parse(mark_regions("China and Japan", ["JPN"])).spans == [("JPN", "Japan")]
    assert mark_regions("a & b", []) == "a &amp; b"


def test_html_frame_names_regions_and_escapes_the_rest():
    frame = pd.DataFrame(
        {"Supplier": ["CHN", "—"], "Note": ["<b>x</b>", "ok"], "Value": [1.5, np.nan]},
        index=pd.Index(["USA", "KOR"], name="Region"),
    )
    out = html_frame(frame, ["Supplier"])
    assert [parse(i).spans for i in out.index] == [
        [("USA", "United States")],
        [("KOR", "Republic of Korea")],
    ]
    assert parse(out["Supplier"].iloc[0]).spans == [("CHN", "China")]
    assert out["Supplier"].iloc[1] == "—"
    assert out["Note"].iloc[0] == html.escape("<b>x</b>")
    assert out["Value"].iloc[0] == 1.5
    assert out.index.name == "Region"


def test_region_frame_maps_the_by_region_table_back_to_codes():
    table = pd.DataFrame(
        {
            "Consumer price (USD/kg)": [55.0, 60.0],
            "Largest foreign supplier (per importer)": ["China", "—"],
        },
        index=pd.Index(["United States", "China"], name="Region"),
    )
    out = region_frame(table, ["CHN", "USA"])
    assert [parse(i).spans[0][0] for i in out.index] == ["USA", "CHN"]
    assert parse(out.iloc[0, 1]).spans == [("CHN", "China")]
    assert out.iloc[1, 1] == "—"
    assert out.iloc[0, 0] == "55.0"


def test_kpi_cards_name_regions_in_full_with_the_code_on_hover():
    k = ind.Kpi(
        "dependence",
        "Dependence of the bloc on one outside supplier",
        40.5,
        "%",
        base=40.0,
        detail="bloc here: United States, Republic of Korea",
        label="Malaysia",
    )
    out = kpi_html({"dependence": k}, ["dependence"], ["USA", "KOR", "MYS", "CHN"])
    assert parse(out).spans == [
        ("MYS", "Malaysia"),
        ("USA", "United States"),
        ("KOR", "Republic of Korea"),
    ]


def _legend_labels(fig) -> list[str]:
    legends = [x for x in (*fig.center, *fig.right, *fig.above) if isinstance(x, Legend)]
    assert legends, "no legend"
    out = []
    for legend in legends:
        for item in legend.items:
            lab = item.label
            if isinstance(lab, Field):  # one entry per value of the field
                src = item.renderers[0].data_source
                out.extend(dict.fromkeys(src.data[lab.field]))
            else:
                out.append(lab.value if isinstance(lab, Value) else str(lab))
    return out


def test_grouped_bars_by_region_show_names_codes_and_a_legend():
    chart = GroupedBars("Prices", "USD/kg", y_label="price", regions=True)
    frame = pd.DataFrame({"Baseline": [55.0, 50.0], "Scenario": [60.0, 52.0]}, index=["COD", "USA"])
    chart.update(frame, ["Baseline", "Scenario"])
    data = chart.source.data
    assert data["category"] == ["Democratic Republic of the Congo"] * 2 + ["United States"] * 2
    assert data["code"] == ["COD", "COD", "USA", "USA"]
    assert [f[0] for f in chart.range.factors][::2] == [axis_label("COD"), "United\nStates"]
    assert chart.figure.yaxis[0].axis_label == "price (USD/kg)"
    assert chart.figure.legend[0].visible
    assert _legend_labels(chart.figure) == ["Baseline", "Scenario"]
    hover = " ".join(str(t) for tool in chart.figure.tools for t in tool.tooltips)
    assert "@code" in hover
    # options (not regions): the categories are shown as they are, no code
    opts = GroupedBars("Options", "%")
    opts.update(pd.DataFrame({"Dependence": [40.0]}, index=["floor_150"]), ["Dependence"])
    assert opts.source.data["category"] == ["floor_150"] and opts.source.data["code"] == [""]


def test_welfare_chart_names_regions_and_keeps_a_legend_of_components():
    chart = WelfareChart("M USD/yr")
    frame = pd.DataFrame(
        {
            "region": ["USA", "USA", "KOR"],
            "component": ["Consumers", "Producers", "Consumers"],
            "value": [-2.0, 1.0, -0.5],
            "color": ["#1", "#2", "#1"],
            "total": [-1.0, -1.0, -0.5],
        }
    )
    totals = pd.DataFrame(
        {"total": [-1.0, -0.5], "lo": [np.nan, np.nan], "hi": [np.nan, np.nan]},
        index=["USA", "KOR"],
    )
    chart.update(frame, ["USA", "KOR"], totals)
    assert chart.source.data["name"] == ["United States", "United States", "Republic of Korea"]
    assert chart.source.data["code"] == ["USA", "USA", "KOR"]
    assert chart.range.factors == ["United\nStates", "Republic of\nKorea"]
    assert chart.totals.data["code"] == ["USA", "KOR"]
    assert _legend_labels(chart.figure) == ["Consumers", "Producers", "Net welfare"]
    assert chart.figure.yaxis[0].axis_label == "welfare change (M USD/yr)"


def test_stacked_shares_legend_names_each_supplier():
    chart = StackedShares("Who supplies", ["CHN", "MYS", "USA"], [(0.6, "60%")])
    shares = pd.DataFrame(
        {"CHN": [0.7, 0.0], "MYS": [0.3, 1.0], "USA": [0.0, 0.0]}, index=["USA", "JPN"]
    )
    chart.update(shares)
    assert chart.range.factors == ["Japan", "United States"]
    assert _legend_labels(chart.figure) == ["China", "Malaysia"]
    assert chart.source.data["exporter_code"] == ["CHN", "MYS", "MYS"]
    assert "%" in chart.figure.xaxis[0].axis_label


def test_trade_heatmap_has_a_colour_bar_in_the_flow_unit_on_the_flows_range():
    chart = TradeHeatmap("t/yr")
    frame = pd.DataFrame(
        {
            "exporter": ["CHN", "CHN", "MYS"],
            "importer": ["USA", "KOR", "USA"],
            "flow": [1000.0, 10.0, 0.0],
            "share": [0.9, 1.0, np.nan],
        }
    )
    chart.update(frame, ["CHN", "MYS", "USA", "KOR"])
    bars = [x for x in chart.figure.right if isinstance(x, ColorBar)]
    assert len(bars) == 1 and "t/yr" in bars[0].title
    assert bars[0].color_mapper is chart.mapper
    assert (chart.mapper.low, chart.mapper.high) == (10.0, 1000.0)  # zero flows have no colour
    assert chart.y.factors == ["China"]  # MYS ships nothing: no row
    assert chart.x.factors == ["United\nStates", "Republic of\nKorea"]
    assert chart.source.data["exporter_code"] == ["CHN", "CHN"]


def test_every_control_help_is_plain_words():
    assert set(HELP) >= {"stage", "draws", "compare", "csv", "netcdf", "brief"}
    for key, text in HELP.items():
        assert len(text) > 40, key
        assert not re.search(r"\[|NOTES|\.\./shared|UNVERIFIED|assumption\]", text), key


def test_the_controls_carry_their_help():
    from tradepolicy.dashboard import DashboardApp

    app = DashboardApp(market="ndpr_oxide")
    ed, cmp, save = app.editor, app.comparison, app.save
    shown = {
        "market": ed.market,
        "stage": ed.stage,
        "target": ed.target,
        "draws": ed.draws,
        "save_name": save.name_input,
        "save": save.button,
        "sets": cmp.sets,
        "compare": cmp.compare,
        "csv": cmp.csv,
        "netcdf": cmp.nc,
        "brief": cmp.pdf,
    }
    assert set(shown) == set(HELP)
    for key, widget in shown.items():
        assert widget.description == HELP[key], key
    assert cmp.docx.description == HELP["brief"]


def test_price_cards_count_their_regions_and_list_them_on_hover():
    k = ind.Kpi(
        "club_price", "Consumer price, club", 55.0, "USD/kg", 55.0, detail="United States, Japan"
    )
    out = kpi_html({"club_price": k}, ["club_price"], ["USA", "JPN", "CHN"])
    assert (
        'averaged over <span class="tp-regions" title="United States (USA), Japan (JPN)">'
        "2 regions</span>" in out
    )
    # a detail that is not a list of the market's regions is shown as it is
    k = replace(k, detail="no consuming region")
    assert "no consuming region" in kpi_html({"club_price": k}, ["club_price"], ["USA"])


def test_heatmap_text_is_dark_on_light_cells_and_white_on_dark_ones():
    chart = TradeHeatmap("t/yr")
    frame = pd.DataFrame(
        {"exporter": ["CHN", "CHN"], "importer": ["USA", "KOR"], "flow": [1000.0, 1.0]}
    ).assign(share=[0.5, 0.5])
    chart.update(frame, ["CHN", "USA", "KOR"])
    # reversed Viridis: the largest flow is dark purple, the smallest light yellow
    assert chart.source.data["ink"] == ["white", "#102a43"]
