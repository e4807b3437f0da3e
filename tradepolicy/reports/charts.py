"""Charts of a brief (matplotlib): SVG for HTML and PDF, PNG for DOCX.

Figures are built with :class:`matplotlib.figure.Figure` directly (no pyplot state, no GUI
backend) and drawn from a :class:`~tradepolicy.reports.context.ChartSpec`.
"""

from __future__ import annotations

import io
import math
from typing import TYPE_CHECKING, Any

import matplotlib as mpl
from matplotlib.figure import Figure

from tradepolicy.reports.context import ChartSpec

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

STYLE: dict[RcKeyType, Any] = {
    "font.family": "DejaVu Sans",
    "font.size": 7.5,
    "axes.titlesize": 8,
    "axes.labelsize": 7.5,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "svg.fonttype": "path",
    "svg.hashsalt": "tradepolicy-brief",
    # labels are names from the results file: "$" is a dollar sign, never TeX math
    "text.parse_math": False,
}
WIDTH_IN = 6.7


def render(spec: ChartSpec, fmt: str = "svg", dpi: int = 200) -> bytes:
    """Draw ``spec`` and return the image bytes (``svg`` or ``png``)."""
    with mpl.rc_context(STYLE):
        fig = _DRAW[spec.key](spec.data)
        buf = io.BytesIO()
        meta: dict[str, Any] = {"Date": None} if fmt == "svg" else {}
        fig.savefig(buf, format=fmt, dpi=dpi, metadata=meta)
    return buf.getvalue()


def _welfare(data: dict[str, Any]) -> Figure:
    labels: list[str] = data["labels"]
    parts: dict[str, list[float]] = data["parts"]
    total: list[float] = data["total"]
    colours: dict[str, str] = data["colours"]  # the field table's group colours
    n = len(labels)
    fig = Figure(figsize=(WIDTH_IN, max(1.3, 0.55 + 0.125 * n)), layout="constrained")
    ax = fig.add_subplot()
    ys = list(range(n))[::-1]
    pos = [0.0] * n
    neg = [0.0] * n
    for name, values in parts.items():
        left = [pos[i] if v >= 0 else neg[i] for i, v in enumerate(values)]
        ax.barh(ys, values, left=left, height=0.62, color=colours[name], label=name)
        for i, v in enumerate(values):
            if v >= 0:
                pos[i] += v
            else:
                neg[i] += v
    ax.scatter(total, ys, marker="D", s=18, color="black", zorder=3, label="World total")
    ax.axvline(0, color="#444444", lw=0.6)
    ax.margins(x=0.04)
    ax.set_yticks(ys, labels)
    ax.set_xlabel("million per year")
    ax.grid(axis="x", color="#dddddd", lw=0.5)
    ax.set_axisbelow(True)
    fig.legend(loc="outside lower center", ncol=len(parts) + 1, frameon=False)
    return fig


def _dependency(data: dict[str, Any]) -> Figure:
    """The bloc's dependence per scenario: the largest outside supplier's share (coloured by
    the supplier, named at the bar's end), the unattributed share stacked in light grey, the
    baseline and the target as lines."""
    labels: list[str] = data["labels"]
    shares = [100.0 * s for s in data["shares"]]
    agg = [100.0 * a if math.isfinite(a) else 0.0 for a in data["unattributed"]]
    target = data.get("target")
    n = len(labels)
    fig = Figure(figsize=(WIDTH_IN, max(1.1, 0.4 + 0.11 * n)), layout="constrained")
    ax = fig.add_subplot()
    ys = list(range(n))[::-1]
    vals = [s if math.isfinite(s) else 0.0 for s in shares]
    ax.barh(ys, vals, height=0.62, color=data["colours"])
    ax.barh(ys, agg, left=vals, height=0.62, color="#dddddd")
    for y, v, a, name in zip(ys, vals, agg, data["suppliers"], strict=True):
        ax.text(v + a + 0.8, y, name, va="center", fontsize=6.5, color="#333333")
    ax.axvline(100.0 * data["baseline"], color="#888888", lw=1.2)
    if target is not None:
        ax.axvline(100.0 * target, color="#D55E00", lw=1.0, ls="--")
    hi = max([100.0 * (target or 0.0)] + [v + a for v, a in zip(vals, agg, strict=True)])
    ax.set_xlim(0, min(100.0, 10 * math.ceil(hi / 10 + 0.5)) + 8)
    ax.set_yticks(ys, labels)
    ax.set_xlabel("% of the bloc's total use")
    ax.grid(axis="x", color="#eeeeee", lw=0.5)
    ax.set_axisbelow(True)
    return fig


def _trajectories(data: dict[str, Any]) -> Figure:
    """A pathway's dependence by year: one small panel per option with its central run, its
    5–95% band over the draws, doing nothing in grey, the target (dashed), the ambition
    (dotted) and the target year."""
    years: list[int] = data["years"]
    lines: dict[str, list[float]] = data["lines"]
    fans: dict[str, tuple[list[float], list[float]]] = data["fans"]
    labels: dict[str, str] = data["labels"]
    options = [n for n in lines if n != "baseline"] or list(lines)
    ncols = min(4, len(options))
    nrows = math.ceil(len(options) / ncols)
    fig = Figure(figsize=(WIDTH_IN, 0.35 + 1.45 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False)
    pct = lambda xs: [100.0 * x for x in xs]  # noqa: E731
    values = [v for xs in lines.values() for v in xs if math.isfinite(v)]
    values += [v for lo, hi in fans.values() for v in (*lo, *hi) if math.isfinite(v)]
    top = min(100.0, 10 * math.ceil(100.0 * max([*values, data["target"]]) / 10 + 0.2))
    bottom = max(0.0, 10 * math.floor(100.0 * min([*values, data["ambition"] or 1.0]) / 10 - 0.2))
    for k, ax in enumerate(axes.flat):
        if k >= len(options):
            ax.set_visible(False)
            continue
        n = options[k]
        if n in fans:
            lo, hi = fans[n]
            ax.fill_between(years, pct(lo), pct(hi), color="#0b3a5d", alpha=0.18, lw=0)
        if "baseline" in lines and n != "baseline":
            ax.plot(years, pct(lines["baseline"]), color="#999999", lw=1.0)
        ax.plot(years, pct(lines[n]), color="#0b3a5d", lw=1.4)
        ax.axhline(100.0 * data["target"], color="#D55E00", lw=0.9, ls="--")
        if data["ambition"] is not None:
            ax.axhline(100.0 * data["ambition"], color="#D55E00", lw=0.9, ls=":")
        ax.axvline(data["target_year"], color="#bbbbbb", lw=0.6)
        ax.set_title(labels[n], fontsize=7, loc="left")
        ax.set_ylim(bottom, top)
        ax.grid(axis="y", color="#eeeeee", lw=0.5)
        ax.set_axisbelow(True)
        ax.set_xticks([years[0], data["target_year"], years[-1]])
    for ax in axes[:, 0]:
        ax.set_ylabel("% of the group's use")
    return fig


_DRAW = {"welfare": _welfare, "dependency": _dependency, "trajectories": _trajectories}
