"""Charts of a brief (matplotlib): SVG for HTML and PDF, PNG for DOCX.

Figures are built with :class:`matplotlib.figure.Figure` directly (no pyplot state, no GUI
backend) and drawn from a :class:`~tradepolicy.reports.context.ChartSpec`.
"""

from __future__ import annotations

import io
import math
from typing import Any

import matplotlib as mpl
from matplotlib.figure import Figure

from tradepolicy.reports.context import ChartSpec

#: colours of the welfare parts (colour-blind safe, Okabe–Ito)
PART_COLOURS = {
    "Consumers": "#0072B2",
    "Producers": "#E69F00",
    "Government revenue and rents": "#009E73",
    "Public spending": "#CC79A7",
}
STYLE = {
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
    n = len(labels)
    fig = Figure(figsize=(WIDTH_IN, 0.8 + 0.16 * n), layout="constrained")
    ax = fig.add_subplot()
    ys = list(range(n))[::-1]
    pos = [0.0] * n
    neg = [0.0] * n
    for name, values in parts.items():
        left = [pos[i] if v >= 0 else neg[i] for i, v in enumerate(values)]
        ax.barh(ys, values, left=left, height=0.62, color=PART_COLOURS[name], label=name)
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
    fig.legend(loc="outside lower center", ncol=5, frameon=False)
    return fig


def _dependency(data: dict[str, Any]) -> Figure:
    labels: list[str] = data["labels"]
    shares: dict[str, dict[str, Any]] = data["shares"]
    target = data.get("target")
    k = len(shares)
    cols = k if k <= 5 else 3
    rows = math.ceil(k / cols)
    n = len(labels)
    fig = Figure(figsize=(WIDTH_IN, max(1.6, 0.35 + rows * (0.5 + 0.1 * n))), layout="constrained")
    axes = fig.subplots(rows, cols, sharex=True, sharey=True, squeeze=False)
    ys = list(range(n))[::-1]
    hi = max([target or 0.0] + [max([d["baseline"], *d["scenarios"]]) for d in shares.values()])
    xmax = min(100.0, 10 * math.ceil(hi * 100 / 10 + 0.5))
    ticks = list(range(0, int(xmax) + 1, 20 if xmax > 50 else 10))
    for ax, (region, d) in zip(axes.flat, shares.items(), strict=False):
        vals = [100 * v for v in d["scenarios"]]
        above = [target is not None and v > 100 * target + 1e-9 for v in vals]
        ax.axvline(100 * d["baseline"], color="#888888", lw=1.2)
        if target is not None:
            ax.axvline(100 * target, color="#D55E00", lw=1.0, ls="--")
        ax.scatter(vals, ys, s=14, zorder=3, color=["#D55E00" if a else "#0072B2" for a in above])
        ax.set_title(region)
        ax.set_xlim(-0.04 * xmax, 1.04 * xmax)
        ax.set_xticks(ticks)
        ax.grid(axis="x", color="#eeeeee", lw=0.5)
        ax.set_axisbelow(True)
    for i, ax in enumerate(axes.flat):
        if i >= k:
            ax.set_visible(False)
        elif i + cols >= k:  # no panel below: show its own x axis labels
            ax.xaxis.set_tick_params(labelbottom=True)
            ax.set_xlabel("% of consumption")
    for ax in axes[:, 0]:
        ax.set_yticks(ys, labels)
        ax.set_ylabel("scenario")
    return fig


_DRAW = {"welfare": _welfare, "dependency": _dependency}
