"""The brief of a pathway set's results (docs/briefs.md, "Pathway briefs"): the 2030 question
answered first.

:func:`build_pathway_context` reads only the Dataset (``tp.solve`` of a pathway set, or the
netCDF of ``tradepolicy run -o``). Page 1 holds the question in the G7's terms, the answer, the
options at a glance (the numbers of ``ds.tp.pathway_options()``, formatted as
``tradepolicy run`` prints them), who pays and, when the results carry disruption risk
(docs/risk.md), the cost of inaction and each option's expected-loss reduction. Then the
dependence trajectories, dependence per stage, capacity, validity warnings, method and
sources. Every format (HTML, PDF, DOCX) renders the same :class:`PathwayBrief`.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from tradepolicy import __version__
from tradepolicy import regions as region_table
from tradepolicy.errors import InputError
from tradepolicy.pathway.views import risk_draws_solved, risk_money_unit
from tradepolicy.reports.context import (
    WARN,
    Cell,
    ChartSpec,
    Table,
    clip,
    option_labels,
    select_scenarios,
)
from tradepolicy.reports.formatting import (
    MISSING,
    fmt_bn,
    fmt_bn2,
    fmt_points,
    fmt_prob,
    fmt_range,
    fmt_scaled2,
    fmt_share,
    fmt_sig,
)
from tradepolicy.reports.names import join_words, region_in_text, region_name
from tradepolicy.reports.plain import clean_strings, plain_note
from tradepolicy.results.accessor import MIN_POINTS
from tradepolicy.results.indicators import PRICE_RATIO_LIMIT

log = logging.getLogger(__name__)

#: variables a pathway brief reads (docs/pathways.md, "Results")
REQUIRED_VARS = (
    "bloc_dependency",
    "bloc_top_supplier",
    "target_dependence",
    "points_removed",
    "pv_budget_cost",
    "pv_cost_to_buyers",
    "pv_welfare_change",
    "budget_cost_per_point",
    "buyer_cost_per_point",
    "cost_per_point",
    "capacity",
    "converged",
    "consumer_price",
    "producer_price",
)
#: attributes a pathway brief reads
REQUIRED_ATTRS = ("target_year", "target_bloc", "first_year", "last_year", "discount_rate")
#: the disruption-risk variables (docs/risk.md) a brief shows when all are present
RISK_VARS = (
    "expected_disruption_loss",
    "disruption_loss_p05",
    "disruption_loss_p95",
    "loss_reduction",
)
#: an option "meets" a share when at least this share of the draws does
MOST = 0.5
#: a capacity change below this share of the no-policy capacity counts as no change
CAPACITY_EPS = 0.005
#: where the published demand paths come from, by the path's name
DEMAND_PATH_WORDS = {
    "iea_steps": "IEA's Stated Policies Scenario (Critical Minerals Data Explorer)",
    "iea_aps": "IEA's Announced Pledges Scenario (Critical Minerals Data Explorer)",
    "iea_nze": "IEA's Net Zero Emissions by 2050 Scenario (Critical Minerals Data Explorer)",
}


@dataclass
class RiskSection:
    """Disruption risk (docs/risk.md): the cost of inaction and each option's expected loss."""

    inaction: str
    table: Table
    lines: list[str] = field(default_factory=list)


@dataclass
class PathwayBrief:
    """The whole brief of a pathway set, for every output format."""

    title: str
    subtitle: str
    date: str
    question: str
    answer: list[str]
    options: Table
    payers: Table | None
    risk: RiskSection | None
    warnings: list[str]
    charts: list[ChartSpec]
    tables: list[Table]
    method_note: str
    sources: list[tuple[str, str]]
    provenance: list[tuple[str, str]]
    has_ranges: bool
    target_year: int
    max_share: float
    ambition: float | None
    #: money unit of the present values (``bn USD``)
    money_unit: str = "bn USD"
    #: each option's label by its identifier (the baseline is "Doing nothing")
    labels: dict[str, str] = field(default_factory=dict)
    #: warnings that two or more options carry word for word (e.g. draws left out), each
    #: once with the options it applies to; shown under the options table and first among
    #: ``warnings`` (they mark no row)
    shared_warnings: list[str] = field(default_factory=list)


# -- validity warnings shared by several options ---------------------------------------------


def split_warnings(
    per_option: dict[str, list[str]], options: list[str]
) -> tuple[dict[str, list[str]], list[tuple[str, list[str]]]]:
    """Split validity warnings into each option's own and those shared by the set.

    A warning that two or more of ``options`` carry word for word (typically "1 of 100 draws
    did not solve ...", a property of the draws rather than of one option) is shared: it is
    returned once with the options that carry it (in ``options`` order); every other warning
    stays with its option.

    Returns
    -------
    own : dict of str to list of str
        Per option, the warnings only it carries (options without any left out).
    shared : list of (str, list of str)
        Each shared warning and the options carrying it, in order of first appearance.
    """
    carriers: dict[str, list[str]] = {}
    for n in options:
        for w in per_option.get(n, []):
            if n not in carriers.setdefault(w, []):
                carriers[w].append(n)
    shared = [(w, ns) for w, ns in carriers.items() if len(ns) > 1]
    common = {w for w, _ns in shared}
    own = {}
    for n, ws in per_option.items():
        mine = [w for w in ws if w not in common or n not in options]
        if mine:
            own[n] = mine
    return own, shared


def shared_warning_text(
    text: str, carriers: list[str], options: list[str], labels: dict[str, str]
) -> str:
    """A shared warning in words, with the options it applies to and their count:
    ``"All 8 options: 1 of 100 draws ..."`` or ``"3 of 8 options (A, B and C): ..."``."""
    if len(carriers) == len(options):
        who = f"All {len(options)} options"
    else:
        names = join_words(labels.get(n, n) for n in carriers)
        who = f"{len(carriers)} of {len(options)} options ({names})"
    return f"{who}: {text[:1].lower() + text[1:]}"


# -- checks ---------------------------------------------------------------------------------


def cost_per_point_text(row: Any) -> str:
    """An option's cost per point of dependence removed in words (bn), as every view shows it:
    the figure, or why there is none (it raises dependence, or moves it by less than
    :data:`~tradepolicy.results.accessor.MIN_POINTS`). ``row``: a row of
    ``ds.tp.pathway_options()``."""
    per = float(row["cost_per_point"])
    if np.isfinite(per):
        return fmt_bn2(per)
    if float(row["points_removed"]) <= -MIN_POINTS:
        return "raises dependence"
    return "does not move dependence"


def is_pathway_results(ds: Any) -> bool:
    """Whether ``ds`` holds a pathway set's results (attribute ``pathway``)."""
    return isinstance(ds, xr.Dataset) and bool(ds.attrs.get("pathway", 0))


def check_pathway_results(ds: xr.Dataset, source: str = "results") -> None:
    """Raise :class:`InputError` naming ``source`` and the missing fields unless ``ds`` holds
    what a pathway brief reads."""
    missing = [v for v in REQUIRED_VARS if v not in ds]
    missing += [f"attribute {a}" for a in REQUIRED_ATTRS if a not in ds.attrs]
    dims = ("year", "scenario", "stage", "region")
    missing += [f"dimension {d}" for d in dims if d not in ds.dims]
    if missing or not str(ds.attrs.get("source", "")).startswith("tradepolicy"):
        what = ", ".join(missing) if missing else "source attribute 'tradepolicy ...'"
        raise InputError(source, [("", f"not a tradepolicy pathway result (missing {what})")])
    if "baseline" not in [str(s) for s in ds.scenario.values]:
        raise InputError(source, [("scenario", "no `baseline` scenario in the results")])
    year = int(ds.attrs["target_year"])
    if year not in [int(y) for y in ds.year.values]:
        raise InputError(
            source,
            [("attribute target_year", f"{year} is not a year of the results")],
        )
    flags = np.asarray(ds["converged"].values, dtype=float)
    if (~np.isin(flags, (0, 1))).any():
        raise InputError(source, [("converged", "values other than 0 and 1")])
    if "markets" in ds.attrs:
        try:
            json.loads(str(ds.attrs["markets"]))
        except ValueError as exc:
            raise InputError(source, [("attribute markets", f"not valid JSON ({exc})")]) from None


# -- entry point ----------------------------------------------------------------------------


def build_pathway_context(
    ds: xr.Dataset,
    scenarios: list[str] | None = None,
    *,
    today: date | None = None,
    source: str = "results",
) -> PathwayBrief:
    """The brief of the pathway results ``ds`` for ``scenarios`` (default: every option).

    Raises
    ------
    InputError
        ``ds`` lacks what a pathway brief reads (naming ``source`` and the fields), or a
        scenario name is not in it.
    """
    check_pathway_results(ds, source)
    names = select_scenarios(ds, scenarios)
    try:
        return clean_strings(_Builder(ds, names, today).build())
    except InputError as exc:
        raise InputError(source, exc.problems) from None
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        log.debug("pathway brief of %s failed", source, exc_info=True)
        raise InputError(
            source, [("", f"cannot make a brief from these results ({type(exc).__name__}: {exc})")]
        ) from None


def stage_names(ds: xr.Dataset) -> dict[str, str]:
    """Plain names of the stages (``ree_ndfeb_magnet`` -> ``Sintered NdFeB magnets``)."""
    try:
        markets = json.loads(str(ds.attrs.get("markets", "{}")))
    except ValueError:
        markets = {}
    found: dict[str, str] = {}
    for m in markets.values() if isinstance(markets, dict) else []:
        if not isinstance(m, dict):
            continue
        inner = m.get("stage_markets")
        pool = inner.values() if isinstance(inner, dict) else [m]
        for sm in pool:
            if isinstance(sm, dict) and sm.get("id"):
                name = str(sm.get("commodity") or sm["id"]).replace(" (chain stage)", "")
                found[str(sm["id"])] = name[:1].upper() + name[1:]
    return {str(s): found.get(str(s), str(s)) for s in ds.stage.values}


def _lower(name: str) -> str:
    """``Sintered NdFeB magnets`` -> ``sintered NdFeB magnets``; ``NdPr oxide`` unchanged."""
    from tradepolicy.reports.summary import lower_first

    return lower_first(name)


def _stage_markets(ds: xr.Dataset) -> dict[str, dict[str, Any]]:
    try:
        markets = json.loads(str(ds.attrs.get("markets", "{}")))
    except ValueError:
        return {}
    out: dict[str, dict[str, Any]] = {}
    for m in markets.values() if isinstance(markets, dict) else []:
        if not isinstance(m, dict):
            continue
        inner = m.get("stage_markets")
        for sm in inner.values() if isinstance(inner, dict) else [m]:
            if isinstance(sm, dict) and sm.get("id"):
                out[str(sm["id"])] = sm
    return out


class _Builder:
    """Builds a :class:`PathwayBrief` from checked pathway results."""

    def __init__(
        self,
        ds: xr.Dataset,
        names: list[str],
        today: date | None,
        opts: pd.DataFrame | None = None,
    ) -> None:
        self.ds = ds
        self.names = names
        self.today = today
        self.year = int(ds.attrs["target_year"])
        self.first, self.last = int(ds.attrs["first_year"]), int(ds.attrs["last_year"])
        self.stage = str(ds.attrs.get("target_stage") or ds.stage.values[-1])
        self.stage_names = stage_names(ds)
        self.currency = str(ds.attrs.get("currency") or ds["pv_budget_cost"].attrs.get("units"))
        self.currency = self.currency or "USD"
        self.unit = f"bn {self.currency}"
        self.members = [r for r in str(ds.attrs["target_bloc"]).split() if r in ds.region.values]
        #: ``ds.tp.pathway_options()`` (``opts``: that table computed already, not changed)
        self.opts = ds.tp.pathway_options() if opts is None else opts
        self.shares = [c for c in self.opts.columns if c.startswith("p_at_most_")]
        share = float(ds.attrs.get("target_max_share", "nan"))
        if not math.isfinite(share) and "share" in ds.coords and ds.sizes.get("share", 0):
            share = float(ds["share"].values[0])
        self.max_share = share
        amb = float(ds.attrs.get("target_ambition", "nan"))
        self.ambition = amb if math.isfinite(amb) else None
        self.draws = int(ds.attrs.get("draws", ds.sizes.get("draw", 1) - 1) or 0)
        self.labels = option_labels(ds, ["baseline", *names])
        #: every option's validity warnings, shared ones included
        self.all_warnings = self._warnings()
        #: each option's own warnings (they mark its rows); ``shared``: those of several
        self.warnings, self.shared = split_warnings(self.all_warnings, self.shown())

    # -- pieces -----------------------------------------------------------------------------

    def shown(self) -> list[str]:
        return ["baseline", *self.names]

    def label(self, n: str) -> str:
        return self.labels[n]

    def row_label(self, n: str) -> Cell:
        """The option's label with the warning mark."""
        return Cell(self.label(n), label=True, flag=WARN if self.warnings.get(n) else "")

    def ref(self, n: str) -> str:
        return (
            self.label(n).lower()
            if n == "baseline"
            else self.label(n) + (f" {WARN}" if self.warnings.get(n) else "")
        )

    def pct_word(self, share: float) -> str:
        return f"{100 * share:g}%"

    @property
    def bloc_words(self) -> str:
        desc = str(self.ds.attrs.get("target_description") or "")
        if desc:
            return desc
        return join_words(region_in_text(r) for r in self.members)

    def supplier(self, n: str) -> str:
        r = self.opts.loc[n, "largest_outside_supplier"]
        return str(r) if r and r != "nan" else ""

    def _solved(self, n: str) -> bool:
        return bool(self.opts.loc[n, "solved"])

    # -- validity ---------------------------------------------------------------------------

    def _warnings(self) -> dict[str, list[str]]:
        """Per option: central-run years not solved, draws left out, prices far from the
        no-policy pathway's in the same year (more than ×3 or below a third)."""
        ds = self.ds
        out: dict[str, list[str]] = {}
        conv = ds["converged"]
        central = conv.sel(draw=0) if "draw" in conv.dims else conv
        for n in self.shown():
            lines: list[str] = []
            bad = [
                int(y)
                for y, ok in zip(ds.year.values, central.sel(scenario=n).values, strict=True)
                if not ok
            ]
            if bad:
                lines.append(
                    f"the central run did not solve in {join_words(map(str, bad))}: no results "
                    "are shown for this option"
                )
            if "draw" in conv.dims and conv.sizes["draw"] > 1:
                rows = conv.sel(scenario=n).isel(draw=slice(1, None)).all("year").values
                left = int((~rows.astype(bool)).sum())
                if left:
                    lines.append(
                        f"{left} of {rows.size} draws did not solve in some year and are left "
                        "out of the probabilities and the fan"
                    )
            if n != "baseline" and not bad:
                lines += self._price_flags(n)
            if lines:
                out[n] = [line[:1].upper() + line[1:] for line in lines]
        return out

    def _price_flags(self, n: str) -> list[str]:
        ds = self.ds
        out = []
        prices = (("consumer_price", "buyers' price"), ("producer_price", "producers' price"))
        dims = ("year", "scenario", "stage", "region")
        at = {str(s): i for i, s in enumerate(ds.scenario.values)}
        stages, regions = ds.stage.values, ds.region.values
        for var, what in prices:
            values = ds[var].transpose(*dims).values
            cur, base = values[:, at[n]], values[:, at["baseline"]]  # (year, stage, region)
            with np.errstate(invalid="ignore", divide="ignore"):
                ratio = np.where(base > 0, cur / base, np.nan)
                hit = (ratio > PRICE_RATIO_LIMIT) | (ratio < 1.0 / PRICE_RATIO_LIMIT)
            if not hit.any():
                continue
            years = [int(y) for y in ds.year.values[hit.any(axis=(1, 2))]]
            where = np.asarray(hit.any(axis=0))  # (stage, region)
            cells = [
                f"{region_name(str(r))} ({self.stage_names.get(str(s), str(s))})"
                for i, s in enumerate(stages)
                for j, r in enumerate(regions)
                if where[i, j]
            ]
            out.append(
                f"the {what} of {join_words(cells[:3])}{' and more' if len(cells) > 3 else ''} "
                f"is more than {PRICE_RATIO_LIMIT:g} times (or below a third of) the no-policy "
                f"price in {years[0]}"
                + (f"–{years[-1]}" if len(years) > 1 else "")
                + ": outside what the model can represent; read as a sign of acute shortage or "
                "glut, not a forecast"
            )
        return out

    # -- page 1 -----------------------------------------------------------------------------

    def question(self) -> str:
        stage = self.stage_names.get(self.stage, self.stage)
        amb = (
            f", and the {self.pct_word(self.ambition)} ambition"
            if self.ambition is not None
            else ""
        )
        return (
            f"Can {self.bloc_words} bring their dependence on a single supplier outside the "
            f"group to at most {self.pct_word(self.max_share)} by {self.year}{amb}? Dependence "
            f"is the share of the group's total use of {_lower(stage)} (own production "
            "included) that comes from its largest single supplier outside the group, at this "
            f"stage of the chain; the answer and the per-stage table give the other stages. Each "
            "option is compared "
            f"with doing nothing over {self.first}–{self.last}."
        )

    def answer(self) -> list[str]:
        o = self.opts
        y = self.year
        lines = []
        base = o.loc["baseline"]
        col = f"dependence_{y}"
        target = self.pct_word(self.max_share)
        dep0 = (
            float(
                self.ds["bloc_dependency"]
                .isel(draw=0)
                .sel(scenario="baseline", stage=self.stage, year=self.first)
            )
            if "draw" in self.ds["bloc_dependency"].dims
            else float(
                self.ds["bloc_dependency"].sel(
                    scenario="baseline", stage=self.stage, year=self.first
                )
            )
        )
        rng = self._dep_range("baseline")
        p_col = self.shares[0] if self.shares else None
        if p_col and self.draws:
            p = float(base[p_col])
            met = (
                "missed in every draw"
                if p == 0
                else ("met in every draw" if p == 1 else f"met in {fmt_prob(p)} of the draws")
            )
        else:
            met = "met" if base[col] <= self.max_share + 1e-12 else "missed"
        sup = self.supplier("baseline")
        lines.append(
            f"Doing nothing, dependence {'on ' + region_in_text(sup) + ' ' if sup else ''}"
            f"is {fmt_share(base[col])} in {y}{rng}, from {fmt_share(dep0)} in {self.first}: "
            f"the {target} target is {met}."
        )
        opts = [n for n in self.names if self._solved(n)]
        if p_col and self.draws:
            meet = [n for n in opts if o.loc[n, p_col] >= MOST]
            how = f"in at least {fmt_prob(MOST)} of the draws"
        else:
            meet = [n for n in opts if o.loc[n, col] <= self.max_share + 1e-12]
            how = "in the central run"
        meet.sort(key=lambda n: -float(o.loc[n, p_col]) if p_col else float(o.loc[n, col]))
        if meet:
            parts = [
                f"{self.ref(n)} ("
                + (f"{fmt_prob(o.loc[n, p_col])} of the draws, " if p_col and self.draws else "")
                + f"{fmt_share(o.loc[n, col])}; budgets {fmt_bn(o.loc[n, 'pv_budget_cost_bloc'])}, "
                f"buyers {fmt_bn(o.loc[n, 'pv_cost_to_bloc_buyers'])})"
                for n in meet
            ]
            lines.append(
                f"{len(meet)} of {len(opts)} option{'s' if len(opts) != 1 else ''} reach "
                f"{target} in {y} {how} (PV costs in {self.unit}, > 0 a cost): "
                f"{'; '.join(parts)}."
            )
        else:
            best = min(opts, key=lambda n: float(o.loc[n, col])) if opts else None
            lines.append(
                f"No option reaches {target} in {y} {how}"
                + (
                    f"; the lowest dependence is {fmt_share(o.loc[best, col])} with "
                    f"{self.ref(best)}."
                    if best
                    else "."
                )
            )
        if self.ambition is not None and len(self.shares) > 1 and opts:
            pa = self.shares[1]
            amb = self.pct_word(self.ambition)
            if self.draws:
                top = max(opts, key=lambda n: float(o.loc[n, pa]))
                hits = [n for n in opts if o.loc[n, pa] >= MOST]
                if hits:
                    lines.append(
                        f"The {amb} ambition is reached in most draws by "
                        f"{join_words(self.ref(n) for n in hits)}."
                    )
                else:
                    lines.append(
                        f"No option reaches the {amb} ambition in more than "
                        f"{fmt_prob(o.loc[top, pa])} of the draws ({self.ref(top)})."
                    )
            else:
                hits = [n for n in opts if o.loc[n, col] <= self.ambition + 1e-12]
                lines.append(
                    f"The {amb} ambition is reached in the central run by "
                    f"{join_words(self.ref(n) for n in hits)}."
                    if hits
                    else f"No option reaches the {amb} ambition in the central run."
                )
        movers = [n for n in opts if np.isfinite(o.loc[n, "cost_per_point"])]
        if movers:
            best = min(movers, key=lambda n: float(o.loc[n, "cost_per_point"]))
            per = float(o.loc[best, "cost_per_point"])
            how_much = (
                f"a net gain of {fmt_bn2(-per)} {self.unit} a point removed for "
                "budgets and buyers together (border revenue exceeds what buyers pay)"
                if per < 0
                else f"{fmt_bn2(per)} {self.unit} a point removed, budgets and buyers together"
            )
            lines.append(
                f"Cheapest per point of {y} dependence removed: {self.ref(best)}, "
                f"{how_much}; it removes {fmt_points(o.loc[best, 'points_removed']).lstrip('+')} "
                "points."
            )
        still = [n for n in opts if not np.isfinite(o.loc[n, "cost_per_point"])]
        if still:
            lines.append(
                f"{join_words(self.ref(n) for n in still)} "
                f"{'does' if len(still) == 1 else 'do'} not lower {y} dependence by "
                f"{MIN_POINTS:g} point or more."
            )
        if not all(v in self.ds for v in RISK_VARS):
            lines.append(
                "The cost of inaction in supply disruptions is not estimated here: these results "
                "carry no disruption risk (a scenario set with risk events, run with draws, "
                "estimates it)."
            )
        stage = self.stage_line()
        if stage:
            lines.insert(1, stage)
        return lines

    def stage_line(self) -> str:
        """Dependence in the target year at every stage: doing nothing, and the option with
        the lowest dependence at the target stage (page 1 answers per stage)."""
        ds = self.ds
        if len(ds.stage) < 2:
            return ""
        dep = ds["bloc_dependency"].sel(year=self.year)
        central = dep.isel(draw=0) if "draw" in dep.dims else dep
        opts = [n for n in self.names if self._solved(n)]
        col = f"dependence_{self.year}"
        best = min(opts, key=lambda n: float(self.opts.loc[n, col])) if opts else None
        stages = [str(s) for s in ds.stage.values]
        order = [self.stage] + [s for s in stages if s != self.stage]
        parts = []
        for st in order:
            v0 = float(central.sel(scenario="baseline", stage=st))
            text = f"{_lower(self.stage_names.get(st, st))} {fmt_share(v0)}"
            if best is not None:
                text += f" → {fmt_share(float(central.sel(scenario=best, stage=st)))}"
            parts.append(text + (" (target stage)" if st == self.stage else ""))
        head = f"Per stage in {self.year}, doing nothing" + (
            f" → {self.ref(best)} (the lowest at the target stage)" if best else ""
        )
        return f"{head}: {'; '.join(parts)}. Every option per stage is in the per-stage table."

    def _dep_range(self, n: str) -> str:
        o = self.opts
        lo, hi = f"dependence_{self.year}_p05", f"dependence_{self.year}_p95"
        if lo not in o.columns or not np.isfinite(o.loc[n, lo]):
            return ""
        return (
            f" (5–95% range over the draws: {fmt_share(o.loc[n, lo])} to {fmt_share(o.loc[n, hi])})"
        )

    def options_table(self) -> Table:
        o = self.opts
        y = self.year
        header = [
            "Option",
            f"Dependence {y} (5–95%)",
            "Points removed",
            *[f"P(≤\u00a0{c.rsplit('_', 1)[1]}%)" for c in self.shares],
            "PV budget cost (spending > 0)",
            "PV cost to buyers (> 0 = cost)",
            f"Cost per point removed ({self.unit})",
        ]
        rows = []
        for n in self.shown():
            r = o.loc[n]
            if not r["solved"]:
                rows.append(
                    [
                        self.row_label(n),
                        Cell("not solved", tone="neg"),
                        *[Cell(MISSING) for _ in header[2:]],
                    ]
                )
                continue
            lo, hi = f"dependence_{y}_p05", f"dependence_{y}_p95"
            sub = (
                fmt_range(fmt_share(r[lo]), fmt_share(r[hi]))
                if lo in o.columns and np.isfinite(r[lo])
                else ""
            )
            sup = self.supplier(n)
            dep = fmt_share(r[f"dependence_{y}"]) + (
                f" {region_table.short_name(sup)}" if sup else ""
            )
            per = MISSING if n == "baseline" else cost_per_point_text(r)
            rows.append(
                [
                    self.row_label(n),
                    Cell(dep, sub=sub),
                    Cell(MISSING if n == "baseline" else fmt_points(r["points_removed"])),
                    *[Cell(fmt_prob(r[c])) for c in self.shares],
                    Cell(
                        fmt_bn(r["pv_budget_cost_bloc"]),
                        tone="neg" if r["pv_budget_cost_bloc"] >= 0.05e9 else "",
                    ),
                    Cell(
                        fmt_bn(r["pv_cost_to_bloc_buyers"]),
                        tone="neg"
                        if r["pv_cost_to_bloc_buyers"] >= 0.05e9
                        else ("pos" if r["pv_cost_to_bloc_buyers"] <= -0.05e9 else ""),
                    ),
                    Cell(per),
                ]
            )
        rate = float(self.ds.attrs["discount_rate"])
        probs = (
            f"P: share of the {self.draws} Monte Carlo draws (that solved every year) with "
            f"{y} dependence at or below the share"
            if self.draws
            else "P: the central run only (1 = 100%, 0 = 0%); run with draws for probabilities"
        )
        note = (
            f"Dependence: the central run, with the largest outside supplier; 5–95%: range over "
            f"the draws. Points removed: percentage points of {y} dependence removed against "
            f"doing nothing. {probs}. Money: present values at {rate:.0%} a year to "
            f"{self.first}, {self.first}–{self.last}, in {self.unit}, for the group's members "
            "(budget: subsidies, offtakes, stocks, grants, expected guarantee losses and public "
            "equity, less border revenue and fees; buyers: consumer surplus lost, < 0 a gain). "
            f"Cost per point: budget plus buyers' cost per point removed ({self.unit}); not "
            f"given below {MIN_POINTS:g} point."
        )
        return Table(
            key="options",
            caption=f"Options at a glance: the {y} target, present values in {self.unit}",
            header=header,
            rows=rows,
            note=note,
        )

    def payers_table(self) -> Table | None:
        from tradepolicy.pathway.views import payers_table

        pay = payers_table(self.ds)
        if pay.empty:
            return None
        pay = pay.loc[[n for n in self.shown() if n in pay.index]]
        # a payer region appears when it pays or receives in an option shown
        cols = [c for c in pay.columns if (pay[c].abs() >= 0.05e9).any()]
        if not cols:
            return None
        rows = [
            [self.row_label(n), *[Cell(fmt_bn(pay.loc[n, c])) for c in cols]]
            for n in pay.index
            if n != "baseline"
        ]
        return Table(
            key="payers",
            caption=f"Who pays: PV of the net budget cost by payer ({self.unit}, spending > 0)",
            header=["Option", *[region_table.short_name(str(c)) for c in cols]],
            rows=rows,
            note="Negative: the payer's border revenue (levies, tariffs) exceeds its spending.",
        )

    # -- disruption risk --------------------------------------------------------------------

    def risk_frame(self) -> pd.DataFrame:
        """``ds.tp.risk_table()`` (the CLI's risk table), or the same table from the
        disruption-risk variables where the accessor does not have it."""
        ds = self.ds
        if hasattr(ds.tp, "risk_table"):
            return ds.tp.risk_table()
        out = pd.DataFrame(index=pd.Index([str(s) for s in ds.scenario.values]))
        out["expected_loss"] = ds["expected_disruption_loss"].values
        out["loss_p05"] = ds["disruption_loss_p05"].values
        out["loss_p95"] = ds["disruption_loss_p95"].values
        out["loss_reduction"] = ds["loss_reduction"].values
        pv = ds["pv_budget_cost"]
        sample = pv.isel(draw=slice(1, None)) if pv.sizes.get("draw", 1) > 1 else pv
        total = sample.sum("region")
        budget = (total.mean("draw") if "draw" in total.dims else total).values
        stock = np.zeros(len(out))
        if "pv_stockpile_cost" in ds:
            stock = ds["pv_stockpile_cost"].sum("region").values
            if "pv_stock_left" in ds:
                budget = budget - ds["pv_stock_left"].sum("region").values
        out["pv_stockpile_cost"] = stock
        out["pv_budget_cost"] = budget
        with np.errstate(invalid="ignore", divide="ignore"):
            out["benefit_cost"] = np.where(budget > 0, out["loss_reduction"] / budget, np.nan)
        return out

    def risk(self) -> RiskSection | None:
        ds = self.ds
        if not all(v in ds for v in RISK_VARS):
            return None
        t = self.risk_frame()
        scale, unit = risk_money_unit(t, self.currency)

        def money(x: float) -> str:
            return fmt_scaled2(x, scale)

        if "cost_of_inaction" in ds:
            inaction = float(ds["cost_of_inaction"])
        elif "cost_of_inaction" in ds.attrs:
            inaction = float(ds.attrs["cost_of_inaction"])
        else:
            inaction = float(t.loc["baseline", "expected_loss"])
        header = [
            "Option",
            "Expected disruption loss (5–95%)",
            "Loss reduction",
            "of which: stockpile cost",
            "PV budget cost (spending > 0)",
            "Benefit / cost",
        ]
        rows = []
        for n in self.shown():
            r = t.loc[n]
            red = float(r["loss_reduction"])
            rows.append(
                [
                    self.row_label(n),
                    Cell(
                        money(r["expected_loss"]),
                        sub=fmt_range(money(r["loss_p05"]), money(r["loss_p95"])),
                    ),
                    Cell(
                        MISSING if n == "baseline" else money(red),
                        tone="pos"
                        if red >= 0.005 * scale
                        else ("neg" if red <= -0.005 * scale else ""),
                    ),
                    Cell(money(r["pv_stockpile_cost"])),
                    Cell(money(r["pv_budget_cost"])),
                    Cell(
                        MISSING
                        if n == "baseline"
                        else (
                            fmt_sig(float(r["benefit_cost"]), 3, max_decimals=2)
                            if np.isfinite(r["benefit_cost"])
                            else "no net budget cost"
                        )
                    ),
                ]
            )
        text = (
            f"The cost of inaction: with no policy, disruptions are expected to cost the group "
            f"{money(inaction)} {unit} (present value over {self.first}–{self.last}; "
            f"{money(t.loc['baseline', 'loss_p05'])} to "
            f"{money(t.loc['baseline', 'loss_p95'])} in 5–95% of the draws)."
        )
        lines = []
        movers = [n for n in self.names if float(t.loc[n, "loss_reduction"]) >= 0.005 * scale]
        if movers:
            best = max(movers, key=lambda n: float(t.loc[n, "loss_reduction"]))
            lines.append(
                f"{self.ref(best)} reduces the expected loss most, by "
                f"{money(t.loc[best, 'loss_reduction'])} {unit}, at a PV budget cost of "
                f"{money(t.loc[best, 'pv_budget_cost'])} {unit}."
            )
        else:
            lines.append(f"No option reduces the expected disruption loss by 0.01 {unit} or more.")
        table = Table(
            key="risk",
            caption=f"Disruption risk: expected loss and what each option costs ({unit}, PV)",
            header=header,
            rows=rows,
            note=(
                "Expected disruption loss: the group's surplus lost in the years of a "
                "disruption against the same years without it, present value, mean over the "
                "draws, with its 5–95% range. Loss reduction: the cost of inaction less the "
                "option's expected loss (> 0 = less loss). Stockpile cost: purchases less "
                "releases plus holding cost less the stock left at book value. Budget cost: "
                "all public spending less revenue and the stock left, mean over the draws. "
                "Benefit / cost: loss reduction per unit of budget cost."
            ),
        )
        solved = risk_draws_solved(ds)
        if solved is not None:
            used, total = solved
            if used < total:
                lines.append(
                    f"⚠ {total - used} of {total} draws did not solve in some year and are left "
                    "out of every figure in this table; if they are severe events, the expected "
                    "losses understate the risk."
                )
        return RiskSection(inaction=text, table=table, lines=lines)

    # -- page 2 on --------------------------------------------------------------------------

    def options_described(self) -> Table | None:
        """What each option does, in the words of the scenario file (stored with the
        results), so options with similar names (or equal results) are told apart."""
        try:
            spec = json.loads(str(self.ds.attrs.get("scenario_spec") or "{}"))
        except ValueError:
            return None
        text = {
            str(s.get("name")): plain_note(str(s.get("description") or ""))
            for s in (spec.get("scenario") or [] if isinstance(spec, dict) else [])
        }
        rows = [[self.row_label(n), Cell(text[n], label=True)] for n in self.names if text.get(n)]
        if not rows:
            return None
        return Table(
            key="described",
            caption="The options, as the scenario file describes them",
            header=["Option", "What it does"],
            rows=rows,
        )

    def trajectory_chart(self) -> ChartSpec:
        ds = self.ds
        dep = ds["bloc_dependency"].sel(stage=self.stage)
        central = dep.isel(draw=0) if "draw" in dep.dims else dep
        lines = {n: [float(v) for v in central.sel(scenario=n).values] for n in self.shown()}
        fans: dict[str, tuple[list[float], list[float]]] = {}
        if "draw" in dep.dims and dep.sizes["draw"] > 1:
            ok = ds["converged"].isel(draw=slice(1, None)).all("year")
            sample = dep.isel(draw=slice(1, None)).where(ok)
            q = sample.quantile([0.05, 0.95], dim="draw", skipna=True)
            for n in self.shown():
                lo = q.sel(quantile=0.05, scenario=n).values
                hi = q.sel(quantile=0.95, scenario=n).values
                if np.isfinite(lo).any():
                    fans[n] = ([float(v) for v in lo], [float(v) for v in hi])
        stage = self.stage_names.get(self.stage, self.stage)
        return ChartSpec(
            key="trajectories",
            title=f"Dependence of the group on its largest outside supplier, {_lower(stage)}, "
            f"{self.first}–{self.last}",
            caption=(
                "Central run (line) and 5–95% range over the draws (band), each option against "
                f"doing nothing (grey); dashed: the {self.pct_word(self.max_share)} target"
                + (
                    f", dotted: the {self.pct_word(self.ambition)} ambition"
                    if self.ambition is not None
                    else ""
                )
                + f"; the vertical line marks {self.year}."
            ),
            data={
                "years": [int(v) for v in ds.year.values],
                "labels": {n: self.ref(n) for n in self.shown()},
                "lines": lines,
                "fans": fans,
                "target": self.max_share,
                "ambition": self.ambition,
                "target_year": self.year,
            },
        )

    def stage_table(self) -> Table:
        ds = self.ds
        dep = ds["bloc_dependency"].sel(year=self.year)
        central = dep.isel(draw=0) if "draw" in dep.dims else dep
        stages = [str(s) for s in ds.stage.values]
        order = [self.stage] + [s for s in stages if s != self.stage]
        rows = []
        for n in self.shown():
            if not self._solved(n):
                continue
            row = [self.row_label(n)]
            for st in order:
                v = float(central.sel(scenario=n, stage=st))
                sup = str(ds["bloc_top_supplier"].sel(year=self.year, scenario=n, stage=st).values)
                ok = sup and sup not in ("nan", "None", "")
                row.append(Cell(fmt_share(v) + (f" {region_table.short_name(sup)}" if ok else "")))
            rows.append(row)
        return Table(
            key="stages",
            caption=f"Dependence per stage in {self.year} (central run; the target stage first)",
            header=["Option", *[self.stage_names.get(s, s) for s in order]],
            rows=rows,
            note="The share of the group's use of each stage's product from its largest "
            "single outside supplier (named); a stage where the group depends on no single "
            "outside supplier shows –.",
        )

    def capacity_table(self) -> Table | None:
        ds = self.ds
        cap = ds["capacity"].sel(stage=self.stage, year=self.year)
        base = cap.sel(scenario="baseline")
        changed = [
            str(r)
            for r in ds.region.values
            if any(
                abs(float(cap.sel(scenario=n, region=r)) - float(base.sel(region=r)))
                > CAPACITY_EPS * max(float(base.sel(region=r)), 1e-9)
                for n in self.names
                if self._solved(n)
            )
        ]
        if not changed:
            return None
        world = float(base.sum())
        regs = [r for r in ds.region.values if str(r) in changed or str(r) in self.members]
        # a region shown holds at least 1% of the stage's capacity in some option
        regs = [str(r) for r in regs if float(cap.sel(region=r).max()) >= 0.01 * world]
        qunit = str(ds["capacity"].attrs.get("units", "")).replace("/year", "/yr")
        rows = []
        for n in self.shown():
            if not self._solved(n):
                continue
            rows.append(
                [
                    self.row_label(n),
                    *[Cell(fmt_sig(float(cap.sel(scenario=n, region=r)))) for r in regs],
                ]
            )
        stage = self.stage_names.get(self.stage, self.stage)
        return Table(
            key="capacity",
            caption=f"Capacity in operation in {self.year}, {_lower(stage)} ({qunit}, central run)",
            header=["Option", *[region_table.short_name(r) for r in regs]],
            rows=rows,
            note="The group's members and any region whose capacity an option changes, each "
            "with at least 1% of the stage's capacity; regions without listed projects follow "
            "IEA's base case in every option.",
        )

    # -- method and sources -----------------------------------------------------------------

    def method_note(self) -> str:
        rate = float(self.ds.attrs["discount_rate"])
        mode = str(self.ds.attrs.get("mode", "expected"))
        path = str(self.ds.attrs.get("demand_path", "") or "")
        demand = (
            f"demand grows along {DEMAND_PATH_WORDS.get(path, 'the path ' + repr(path))}"
            if path
            else "demand does not grow"
        )
        draws = (
            f"{self.draws} Monte Carlo draws (seed {self.ds.attrs.get('draw_seed', MISSING)}) "
            "of the elasticities, link coefficients and project ranges give the ranges and "
            "probabilities; a draw that does not solve in some year is left out"
            if self.draws
            else "no Monte Carlo draws: point estimates without ranges, and probabilities are "
            "0 or 1"
        )
        return (
            "A multi-region Armington partial-equilibrium model of each stage of the chain, "
            f"solved year by year over {self.first}–{self.last}: capacity grows with the "
            "projects that go ahead (committed projects at their announced start; others decide "
            "on the year's prices, their price risk and the policies they would receive), "
            f"output is bounded by capacity, {demand}, and regions without listed projects "
            "follow IEA's base-case output projections. Every number is the central run "
            f"(point parameters, {mode} investment decisions) unless a range is given; {draws}. "
            f"Present values discount each year to {self.first} at {rate:.0%}. Welfare and "
            "money are changes against doing nothing in the same year and the same draw. "
            "Not represented: investors expect today's prices to last; China's capacity and "
            "policy do not respond to the options; stocks and disruptions only where the "
            "results say so."
        )

    def sources(self) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        for sid, sm in _stage_markets(self.ds).items():
            src = sm.get("sources") or {}
            if not isinstance(src, dict):
                continue
            for key in ("data", "production", "base_price"):
                if src.get(key):
                    out.append((self.stage_names.get(sid, sid), clip(plain_note(str(src[key])))))
                    break
        path = str(self.ds.attrs.get("demand_path", "") or "")
        if path in DEMAND_PATH_WORDS:
            out.append(("Demand growth", DEMAND_PATH_WORDS[path] + ", IEA, May 2025 edition."))
        out.append(
            (
                "Capacity and projects",
                "Existing capacity and the project pipeline of the market data, each row with "
                "its public source (company announcements and filings); IEA's base-case "
                "refining output by country for regions without listed projects.",
            )
        )
        return out

    def provenance(self) -> list[tuple[str, str]]:
        a = self.ds.attrs
        made = str(a.get("source", "")).replace("tradepolicy ", "")
        items = [
            (
                "tradepolicy version",
                made if made == __version__ else f"{made} (results), {__version__} (brief)",
            )
        ]
        items.append(("Results created", str(a.get("date_created", MISSING))[:10]))
        items.append(("Calibration", str(a.get("calibration_id", "not recorded"))))
        if self.draws:
            items.append(("Monte Carlo", f"{self.draws} draws, seed {a.get('draw_seed', MISSING)}"))
        hist = str(a.get("history", "")).split(": ", 1)[-1]
        if hist:
            items.append(("Command", hist))
        return items

    # -- all --------------------------------------------------------------------------------

    def build(self) -> PathwayBrief:
        ds = self.ds
        title = str(ds.attrs.get("title") or f"Pathway to {self.year}")
        stage = self.stage_names.get(self.stage, self.stage)
        subtitle = (
            f"{stage} stage and {len(ds.stage) - 1} stage{'s' if len(ds.stage) != 2 else ''} "
            f"upstream, {self.first}–{self.last}, {len(self.names)} options against doing "
            f"nothing; the group: {join_words(region_name(r) for r in self.members)}"
            if len(ds.stage) > 1
            else f"{stage}, {self.first}–{self.last}, {len(self.names)} options against doing "
            f"nothing; the group: {join_words(region_name(r) for r in self.members)}"
        )
        tables = [self.stage_table()]
        described = self.options_described()
        if described is not None:
            tables.insert(0, described)
        cap = self.capacity_table()
        if cap is not None:
            tables.append(cap)
        shared = [shared_warning_text(w, ns, self.shown(), self.labels) for w, ns in self.shared]
        warnings = shared + [
            f"{self.label(n)}: {w}" for n in self.shown() for w in self.warnings.get(n, [])
        ]
        return PathwayBrief(
            title=title,
            subtitle=subtitle,
            date=(self.today or datetime.now(UTC).date()).strftime("%-d %B %Y"),
            question=self.question(),
            answer=self.answer(),
            options=self.options_table(),
            payers=self.payers_table(),
            risk=self.risk(),
            warnings=warnings,
            charts=[self.trajectory_chart()],
            tables=tables,
            method_note=self.method_note(),
            sources=self.sources(),
            provenance=self.provenance(),
            has_ranges=self.draws > 0,
            target_year=self.year,
            max_share=self.max_share,
            ambition=self.ambition,
            money_unit=self.unit,
            labels={n: self.label(n) for n in self.shown()},
            shared_warnings=shared,
        )
