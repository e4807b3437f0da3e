"""Bokeh charts that update in place (new data into the same ColumnDataSource).

Each chart owns one figure; ``update`` swaps its data, so a widget change sends a small data
patch to the browser instead of a new figure. Every chart names its unit on the axis and in
the hover, every colour has a legend (or a colour bar), and regions are named in full (the
regions table) with their code in the hover.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from bokeh.models import (
    CategoricalAxis,
    ColumnDataSource,
    DataRange1d,
    FactorRange,
    HoverTool,
    LogColorMapper,
    LogTicker,
    NumeralTickFormatter,
    Range,
)

# (bokeh.models re-exports these from a dynamic __all__ that type checkers cannot follow)
from bokeh.models.annotations import ColorBar, Label, Span, Title, Whisker
from bokeh.palettes import Viridis256
from bokeh.plotting import figure

from tradepolicy import regions as region_table
from tradepolicy.dashboard.labels import axis_label, region_name

HEIGHT = 320
GROUP_COLORS = ("#9e9e9e", "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")


def region_colors(regions: Sequence[str]) -> dict[str, str]:
    """The colour of each region in every view (the regions table, :mod:`tradepolicy.regions`)."""
    return {r: region_table.colour(r) for r in regions}


def _fig(title: str, y_label: str, **kw) -> figure:
    f = figure(
        title=title,
        height=HEIGHT,
        sizing_mode="stretch_width",
        toolbar_location=None,
        tools="",
        **kw,
    )
    f.yaxis.axis_label = y_label
    if not isinstance(f.title, Title):  # figure(title=str) makes a Title model
        raise TypeError(f"unexpected figure title {f.title!r}")
    f.title.text_font_size = "13px"
    f.xgrid.grid_line_color = None
    f.outline_line_color = None
    return f


def _data_range(r: Range) -> DataRange1d:
    """A figure's default numeric axis range (``figure`` makes a DataRange1d)."""
    if not isinstance(r, DataRange1d):
        raise TypeError(f"expected the figure's DataRange1d, got {type(r).__name__}")
    return r


def _legend_right(f: figure) -> None:
    """Move the figure's legend out of the plot area, to the right."""
    legend = f.legend[0]
    legend.label_text_font_size = "11px"
    legend.border_line_color = None
    f.center = [r for r in f.center if r is not legend]
    f.add_layout(legend, "right")


def _legend_above(f: figure) -> None:
    """A one-line legend above the plot, where it hides no bar."""
    legend = f.legend[0]
    legend.orientation = "horizontal"
    legend.label_text_font_size = "11px"
    legend.border_line_color = None
    # bokeh's stub nests Property in the type of padding, so a plain int does not match it
    legend.padding = 2  # type: ignore[assignment]
    legend.margin = 0
    f.center = [r for r in f.center if r is not legend]
    f.add_layout(legend, "above")


def _nan_to_none(values) -> list:
    return [None if (v is None or (isinstance(v, float) and math.isnan(v))) else v for v in values]


class GroupedBars:
    """Bars per category (region or scenario), one bar per group, optional 90% whiskers and
    horizontal reference lines (e.g. dependency targets).

    With ``regions=True`` the categories are region codes: the axis shows each full name
    (wrapped onto short lines) and the hover the name and the code.
    """

    def __init__(
        self,
        title: str,
        unit: str,
        value_format: str = "0,0.[00]",
        hlines: Sequence[tuple[float, str]] = (),
        *,
        y_label: str = "",
        regions: bool = False,
    ) -> None:
        self.unit = unit
        self.regions = regions
        self.source = ColumnDataSource(
            {
                k: []
                for k in ("x", "category", "code", "group", "value", "lo", "hi", "color", "note")
            }
        )
        self.range = FactorRange(factors=[], group_padding=0.6, subgroup_padding=0.0)
        self.figure = _fig(title, f"{y_label} ({unit})" if y_label else unit, x_range=self.range)
        self.figure.xaxis.major_label_orientation = 0.0
        for axis in self.figure.xaxis:  # categorical: the x range is a FactorRange
            if not isinstance(axis, CategoricalAxis):
                raise TypeError(f"expected a categorical x axis, got {type(axis).__name__}")
            axis.group_label_orientation = 0.0
            axis.group_text_font_size = "10px"
            axis.group_text_font_style = "normal"
        self.figure.xaxis.major_tick_line_color = None
        self.figure.xaxis.major_label_text_font_size = "0px"  # group names are in the legend
        self.bars = self.figure.vbar(
            x="x",
            top="value",
            width=0.85,
            source=self.source,
            fill_color="color",
            line_color=None,
            legend_field="group",
        )
        self.ranges = ColumnDataSource({"x": [], "lo": [], "hi": []})  # finite ranges only
        self.figure.add_layout(
            Whisker(source=self.ranges, base="x", lower="lo", upper="hi", line_color="#333")
        )
        for value, label in hlines:
            self.figure.add_layout(
                Span(location=value, dimension="width", line_dash="dashed", line_color="#c0392b")
            )
            self.figure.add_layout(
                Label(
                    x=5,
                    y=value,
                    x_units="screen",
                    text=label,
                    text_font_size="11px",
                    text_color="#c0392b",
                    y_offset=2,
                )
            )
        self.figure.yaxis.formatter = NumeralTickFormatter(format="0,0.[0]")
        what = "@category (@code) — @group" if regions else "@category — @group"
        self.figure.add_tools(
            HoverTool(
                renderers=[self.bars],
                tooltips=[
                    ("", what),
                    ("value", f"@value{{{value_format}}} {unit}"),
                    ("90% range", f"@lo{{{value_format}}} – @hi{{{value_format}}}"),
                    ("", "@note"),
                ],
            )
        )
        self.hline_max = max((v for v, _ in hlines), default=0.0)
        _legend_above(self.figure)

    def update(
        self,
        frame: pd.DataFrame,
        groups: Sequence[str],
        colors: Sequence[str] = GROUP_COLORS,
        notes: pd.DataFrame | None = None,
    ) -> None:
        """``frame``: index = category (region codes with ``regions=True``), columns = groups
        (values); optional ``<group>_lo`` and ``<group>_hi`` columns hold 5% and 95%
        quantiles; ``notes`` has text per group."""
        data: dict[str, list] = {k: [] for k in self.source.data}
        single = len(groups) == 1
        for cat, row in frame.iterrows():
            label = axis_label(str(cat)) if self.regions else str(cat)
            for i, g in enumerate(groups):
                data["x"].append(label if single else (label, str(g)))
                data["category"].append(region_name(str(cat)) if self.regions else str(cat))
                data["code"].append(str(cat) if self.regions else "")
                data["group"].append(str(g))
                data["value"].append(row.get(g, math.nan))
                data["lo"].append(row.get(f"{g}_lo", math.nan))
                data["hi"].append(row.get(f"{g}_hi", math.nan))
                data["color"].append(colors[i % len(colors)])
                note = "" if notes is None else notes.get(g, pd.Series(dtype=str)).get(cat, "")
                data["note"].append(str(note) if isinstance(note, str) else "")
        for k in ("value", "lo", "hi"):
            data[k] = _nan_to_none(data[k])
        self.range.factors = list(dict.fromkeys(data["x"]))
        self.source.data = data
        keep = [
            i
            for i, (lo, hi) in enumerate(zip(data["lo"], data["hi"], strict=True))
            if lo is not None and hi is not None
        ]
        self.ranges.data = {k: [data[k][i] for i in keep] for k in ("x", "lo", "hi")}
        self.figure.xaxis.major_label_text_font_size = "10px" if single else "0px"
        self.figure.legend.visible = not single
        tops = [v for v in (*data["value"], *data["hi"]) if v is not None]
        if self.hline_max > 0:
            y_range = _data_range(self.figure.y_range)
            y_range.start = min(0.0, *tops) if tops else 0.0
            y_range.end = 1.12 * max(self.hline_max, *tops) if tops else 1.0


class WelfareChart:
    """Welfare change by region, stacked by component (gains up, losses down), net marked."""

    def __init__(self, unit: str) -> None:
        self.unit = unit
        self.source = ColumnDataSource(
            {
                k: []
                for k in (
                    "region",
                    "name",
                    "code",
                    "component",
                    "value",
                    "top",
                    "bottom",
                    "color",
                    "total",
                )
            }
        )
        self.totals = ColumnDataSource(
            {"region": [], "name": [], "code": [], "total": [], "lo": [], "hi": []}
        )
        self.range = FactorRange(factors=[])
        self.figure = _fig(
            "Welfare change by region and component", f"welfare change ({unit})", x_range=self.range
        )
        self.figure.xaxis.major_label_text_font_size = "10px"
        bars = self.figure.vbar(
            x="region",
            top="top",
            bottom="bottom",
            width=0.7,
            source=self.source,
            fill_color="color",
            line_color="white",
            legend_field="component",
        )
        net = self.figure.scatter(
            x="region",
            y="total",
            source=self.totals,
            marker="diamond",
            size=14,
            color="black",
            legend_label="Net welfare",
        )
        self.ranges = ColumnDataSource({"region": [], "lo": [], "hi": []})
        self.figure.add_layout(
            Whisker(source=self.ranges, base="region", lower="lo", upper="hi", line_color="black")
        )
        self.figure.add_layout(Span(location=0, dimension="width", line_color="#555"))
        self.figure.yaxis.formatter = NumeralTickFormatter(format="0,0.[0]")
        self.figure.add_tools(
            HoverTool(
                renderers=[bars],
                tooltips=[
                    ("", "@name (@code) — @component"),
                    ("change", f"@value{{+0,0.0}} {unit}"),
                    ("net welfare", f"@total{{+0,0.0}} {unit}"),
                ],
            ),
            HoverTool(
                renderers=[net],
                tooltips=[
                    ("", "@name (@code) net welfare"),
                    ("change", f"@total{{+0,0.0}} {unit}"),
                    ("90% range", "@lo{+0,0.0} – @hi{+0,0.0}"),
                ],
            ),
        )
        _legend_right(self.figure)

    def update(self, frame: pd.DataFrame, regions: Sequence[str], totals: pd.DataFrame) -> None:
        """``frame`` from :func:`indicators.welfare_frame` (``region`` holds codes);
        ``regions`` the codes in axis order; ``totals`` indexed by code with ``total``, ``lo``,
        ``hi``."""
        data: dict[str, list] = {k: [] for k in self.source.data}
        pos = dict.fromkeys(regions, 0.0)
        neg = dict.fromkeys(regions, 0.0)
        for row in frame.itertuples(index=False):
            v = float(row.value)
            if not math.isfinite(v) or abs(v) < 1e-9 or row.region not in pos:
                continue
            if v >= 0:
                bottom, top = pos[row.region], pos[row.region] + v
                pos[row.region] = top
            else:
                top, bottom = neg[row.region], neg[row.region] + v
                neg[row.region] = bottom
            data["region"].append(axis_label(row.region))
            data["name"].append(region_name(row.region))
            data["code"].append(str(row.region))
            data["component"].append(row.component)
            data["value"].append(v)
            data["top"].append(top)
            data["bottom"].append(bottom)
            data["color"].append(getattr(row, "color", "#777"))
            data["total"].append(float(row.total))
        self.range.factors = [axis_label(r) for r in regions]
        self.source.data = data
        t = totals.reindex(regions)
        self.totals.data = {
            "region": [axis_label(r) for r in regions],
            "name": [region_name(r) for r in regions],
            "code": [str(r) for r in regions],
            "total": _nan_to_none(t["total"].tolist()),
            "lo": _nan_to_none(t["lo"].tolist()),
            "hi": _nan_to_none(t["hi"].tolist()),
        }
        ok = t["lo"].notna() & t["hi"].notna()
        self.ranges.data = {
            "region": [axis_label(str(r)) for r in t.index[ok]],
            "lo": t.loc[ok, "lo"].tolist(),
            "hi": t.loc[ok, "hi"].tolist(),
        }


class StackedShares:
    """Each importer's consumption split by supplier (horizontal bars adding up to 100%);
    regions by full name, codes in the hover."""

    def __init__(self, title: str, regions: Sequence[str], hlines: Sequence[tuple[float, str]]):
        self.source = ColumnDataSource(
            {
                k: []
                for k in (
                    "importer",
                    "exporter",
                    "importer_code",
                    "exporter_code",
                    "share",
                    "left",
                    "right",
                    "color",
                )
            }
        )
        self.range = FactorRange(factors=[])
        self.figure = _fig(title, "importer", y_range=self.range)
        self.figure.xaxis.axis_label = "share of the importer's consumption (%)"
        self.colors = region_colors(regions)
        bars = self.figure.hbar(
            y="importer",
            left="left",
            right="right",
            height=0.7,
            source=self.source,
            fill_color="color",
            line_color="white",
            legend_field="exporter",
        )
        for value, label in hlines:
            self.figure.add_layout(
                Span(
                    location=100 * value,
                    dimension="height",
                    line_dash="dashed",
                    line_color="#c0392b",
                )
            )
            self.figure.add_layout(
                Label(
                    x=100 * value,
                    y=0,
                    y_units="screen",
                    text=label,
                    text_font_size="10px",
                    text_color="#c0392b",
                    angle=math.pi / 2,
                    x_offset=-2,
                    y_offset=4,
                )
            )
        self.figure.add_tools(
            HoverTool(
                renderers=[bars],
                tooltips=[
                    ("", "@exporter (@exporter_code) → @importer (@importer_code)"),
                    ("share", "@share{0.0}%"),
                ],
            )
        )
        x_range = _data_range(self.figure.x_range)
        x_range.start = 0
        x_range.end = 100
        _legend_right(self.figure)
        self.figure.legend[0].title = "supplier"

    def update(self, shares: pd.DataFrame) -> None:
        """``shares``: importer × exporter fractions (from :func:`indicators.supplier_shares`)."""
        data: dict[str, list] = {k: [] for k in self.source.data}
        for importer, row in shares.iterrows():
            left = 0.0
            for exporter, v in row.items():
                if not math.isfinite(v) or v <= 1e-6:
                    continue
                data["importer"].append(region_name(str(importer)))
                data["exporter"].append(region_name(str(exporter)))
                data["importer_code"].append(str(importer))
                data["exporter_code"].append(str(exporter))
                data["share"].append(100 * v)
                data["left"].append(left)
                data["right"].append(left + 100 * v)
                data["color"].append(self.colors.get(str(exporter), "#777"))
                left += 100 * v
        self.range.factors = [region_name(str(i)) for i in shares.index[::-1]]
        self.source.data = data


class TradeHeatmap:
    """Who supplies whom: base flows exporter × importer, colour on a log scale with its colour
    bar; regions by full name, codes in the hover."""

    def __init__(self, unit: str) -> None:
        self.unit = unit
        self.source = ColumnDataSource(
            {
                k: []
                for k in (
                    "exporter",
                    "importer",
                    "exporter_name",
                    "importer_name",
                    "exporter_code",
                    "importer_code",
                    "flow",
                    "share",
                    "text",
                    "ink",
                )
            }
        )
        self.x = FactorRange(factors=[])
        self.y = FactorRange(factors=[])
        self.figure = _fig(
            "Who supplies whom (base flows, exporter → importer)",
            "exporter",
            x_range=self.x,
            y_range=self.y,
        )
        self.figure.xaxis.axis_label = "importer"
        self.figure.xaxis.major_label_text_font_size = "10px"
        self.figure.height = 380
        self.mapper = LogColorMapper(palette=Viridis256[::-1], low=1, high=10, nan_color="#f4f4f4")
        cells = self.figure.rect(
            x="importer",
            y="exporter",
            width=0.95,
            height=0.95,
            source=self.source,
            fill_color={"field": "flow", "transform": self.mapper},
            line_color=None,
        )
        self.figure.text(
            x="importer",
            y="exporter",
            text="text",
            source=self.source,
            text_align="center",
            text_baseline="middle",
            text_font_size="10px",
            text_color="ink",
        )
        self.colorbar = ColorBar(
            color_mapper=self.mapper,
            ticker=LogTicker(),
            formatter=NumeralTickFormatter(format="0,0.[00]"),
            title=f"base flow ({unit}, log scale)",
            title_text_font_size="11px",
            title_text_font_style="normal",
            major_label_text_font_size="10px",
            width=12,
            padding=4,
        )
        self.figure.add_layout(self.colorbar, "right")
        self.figure.add_tools(
            HoverTool(
                renderers=[cells],
                tooltips=[
                    ("", "@exporter_name (@exporter_code) → @importer_name (@importer_code)"),
                    ("flow", f"@flow{{0,0}} {unit}"),
                    ("share of importer's use", "@share{0.0%}"),
                ],
            )
        )

    def update(self, frame: pd.DataFrame, regions: Sequence[str]) -> None:
        """``frame`` from :func:`indicators.trade_matrix` (codes); ``regions`` in axis order."""
        f = frame[frame["flow"] > 0]
        flow = f["flow"].to_numpy(float)
        self.mapper.low = float(flow.min()) if len(flow) else 1.0
        self.mapper.high = float(flow.max()) if len(flow) else 10.0
        if self.mapper.high <= self.mapper.low:  # one flow: a scale around it
            self.mapper.low, self.mapper.high = self.mapper.low / 10, self.mapper.high * 10
        exporters = [r for r in regions if (frame.loc[frame["exporter"] == r, "flow"] > 0).any()]
        importers = [r for r in regions if (frame.loc[frame["importer"] == r, "flow"] > 0).any()]
        self.x.factors = [axis_label(r) for r in importers]
        self.y.factors = [region_name(r) for r in exporters[::-1]]
        share = f["share"].to_numpy()
        self.source.data = {
            "exporter": [region_name(r) for r in f["exporter"]],
            "importer": [axis_label(r) for r in f["importer"]],
            "exporter_name": [region_name(r) for r in f["exporter"]],
            "importer_name": [region_name(r) for r in f["importer"]],
            "exporter_code": [str(r) for r in f["exporter"]],
            "importer_code": [str(r) for r in f["importer"]],
            "flow": flow.tolist(),
            "share": _nan_to_none(share.tolist()),
            "text": [f"{s:.0%}" if np.isfinite(s) and s >= 0.005 else "" for s in share],
            "ink": _ink(flow, self.mapper.low, self.mapper.high),
        }


def _ink(values: np.ndarray, low: float, high: float) -> list[str]:
    """Text colour on each heat-map cell: white on the dark (large) end of the reversed
    Viridis scale, dark on the light end, so every share stays legible."""
    if len(values) == 0:
        return []
    span = math.log10(high) - math.log10(low)
    level = (np.log10(values) - math.log10(low)) / span if span > 0 else np.ones(len(values))
    return ["white" if t > 0.45 else "#102a43" for t in level]


__all__ = [
    "GROUP_COLORS",
    "GroupedBars",
    "StackedShares",
    "TradeHeatmap",
    "WelfareChart",
    "region_colors",
]
